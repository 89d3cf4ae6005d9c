//! Sign, verify and digest of a typical step-up request.

use countersign_protocol::{request_digest, sign, verify, Validation, TYP_STEP_UP};
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Value};

fn typical_request() -> Value {
    json!({
        "iss": "ep-7d2f", "jti": "q3J8x0m9Zt1bB2vC4nD6eA", "iat": 1_800_000_000, "exp": 1_800_000_300,
        "identity": {"workload": "spiffe://acme.example/ns/finance/sa/invoice-agent", "display": "Invoice agent",
            "on_behalf_of": [{"sub": "maria.lopez@acme.example", "display": "María López"}],
            "credential": {"kind": "x509-svid", "expires_at": "2027-01-01T00:00:00Z"}},
        "purpose": {"code": "ap.pay-invoice", "statement": "Pay supplier invoice INV-2026-0412 approved in the AP workflow"},
        "data": {"class": "confidential", "categories": ["pci", "financial"]},
        "target": {"system": "payments-api", "environment": "production"},
        "actions": [
            {"tool": "erp", "operation": "get_invoice", "args": {"invoice": "INV-2026-0412"}, "reversible": true},
            {"tool": "payments", "operation": "transfer", "args": {"amount": "12450.00", "currency": "EUR",
              "iban": "DE89370400440532013000", "reference": "INV-2026-0412"}, "reversible": false}
        ],
        "policy": {"id": "payments.large", "reason": "Irreversible payment over 10,000 EUR in production", "tier": "critical", "approvals_required": 2},
        "binding": {"required": true}
    })
}

fn bench(c: &mut Criterion) {
    let key = countersign_protocol::generate_key();
    let vk = key.verifying_key();
    let claims = typical_request();
    let token = sign(&claims, TYP_STEP_UP, &key).unwrap();
    c.bench_function("sign step-up", |b| b.iter(|| sign(&claims, TYP_STEP_UP, &key).unwrap()));
    c.bench_function("verify step-up", |b| {
        b.iter(|| verify::<Value>(&token, TYP_STEP_UP, &vk, &Validation::at(1_800_000_100)).unwrap())
    });
    c.bench_function("digest step-up", |b| b.iter(|| request_digest(&claims).unwrap()));
}

criterion_group!(benches, bench);
criterion_main!(benches);
