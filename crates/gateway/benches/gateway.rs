//! Gateway benchmarks that print figures: policy evaluation, decisions verified per second over
//! HTTP on loopback, and emit → received latency on the SSE stream with 1 and 10 subscribers.
//!
//! Run: `cargo bench -p countersign-gateway --bench gateway`. Each figure comes with a baseline
//! measured in the same run, since this machine is shared and noisy.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use countersign_gateway::facts;
use countersign_gateway::policy::{Policy, PolicyInput};
use countersign_gateway::{store, Config, ServeOptions};
use countersign_protocol::{
    self as protocol, jwk::kid_of, AuthClaims, DecisionClaims, Jwk, StepUpDraft, Verdict,
};
use futures::StreamExt as _;
use serde_json::json;

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn report(name: &str, mut xs: Vec<Duration>) {
    xs.sort();
    println!(
        "{name:<44} n={:<6} p50={:>9.1?} p99={:>9.1?} max={:>9.1?}",
        xs.len(),
        pct(&xs, 0.5),
        pct(&xs, 0.99),
        xs[xs.len() - 1]
    );
}

fn draft(purpose: &str) -> StepUpDraft {
    serde_json::from_value(json!({
        "identity": {"workload": "spiffe://acme.example/ns/finance/sa/invoice-agent", "display": "Invoice agent",
            "on_behalf_of": [{"sub": "maria.lopez@acme.example", "display": "María López"}]},
        "purpose": {"code": purpose, "statement": "Pay supplier invoice INV-2026-0412"},
        "data": {"class": "confidential", "categories": ["pci"]},
        "target": {"system": "payments-api", "environment": "production"},
        "actions": [
            {"tool": "erp", "operation": "get_invoice", "args": {"invoice": "INV-2026-0412"}, "reversible": true},
            {"tool": "payments", "operation": "transfer", "args": {"amount": "12450.00", "currency": "EUR"}, "reversible": false}
        ]
    }))
    .expect("draft")
}

const BENCH_POLICY: &str = r#"package countersign
decision := {"outcome": "step_up", "id": "bench", "reason": "bench", "tier": "medium", "approvals_required": 1}
"#;

/// `n` timings of `f`.
fn time(n: usize, mut f: impl FnMut()) -> Vec<Duration> {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect()
}

/// A draft whose SQL is about 240 kB: a long read-only query behind which a drop hides.
fn big_sql_draft() -> StepUpDraft {
    let columns: String =
        (0..4_600).map(|i| format!("SUM(CASE WHEN c = {i} THEN v ELSE 0 END) AS c{i},\n")).collect();
    let sql = format!("SELECT {columns} COUNT(*) FROM fact_orders;\nDROP TABLE fact_orders_staging; --");
    let mut d = draft("bi.weekly-revenue");
    d.target.system = "data-warehouse".into();
    d.actions = vec![serde_json::from_value(json!({
        "tool": "warehouse.query", "operation": "select", "args": {"sql": sql}, "reversible": true
    }))
    .expect("action")];
    d
}

fn bench_policy() {
    let policy = Policy::default_policy();
    let d = draft("ap.pay-invoice");
    let input = PolicyInput { workload: &d.identity.workload, draft: &d };
    for _ in 0..200 {
        policy.evaluate(&input).expect("eval");
    }
    let data = policy.data().clone();
    report(
        "facts alone (URLs, SQL, words)",
        time(5000, || drop(facts::derive(input.workload, input.draft, &data))),
    );
    report(
        "policy evaluation with facts (default policy)",
        time(5000, || drop(policy.evaluate(&input).expect("eval"))),
    );
    let trivial = Policy::load(BENCH_POLICY).expect("load");
    report(
        "  baseline: one-rule policy, facts included",
        time(5000, || drop(trivial.evaluate(&input).expect("eval"))),
    );

    // Two agents at once: each evaluation takes its own engine from the pool (no global lock).
    let per_thread = 2500;
    let parallel: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|_| s.spawn(|| time(per_thread, || drop(policy.evaluate(&input).expect("eval")))))
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("thread")).collect()
    });
    report("policy evaluation with facts, 2 threads at once", parallel);

    let big = big_sql_draft();
    let big_input = PolicyInput { workload: &big.identity.workload, draft: &big };
    report(
        "facts alone, 240 kB SQL draft",
        time(50, || drop(facts::derive(big_input.workload, big_input.draft, &data))),
    );
    report(
        "policy evaluation with facts, 240 kB SQL draft",
        time(50, || drop(policy.evaluate(&big_input).expect("eval"))),
    );
    report(
        "  baseline: one-rule policy, same draft",
        time(50, || drop(trivial.evaluate(&big_input).expect("eval"))),
    );
}

async fn start(dir: &std::path::Path, policy: Option<&str>) -> countersign_gateway::Running {
    countersign_gateway::start(ServeOptions {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data: dir.to_path_buf(),
        policy: policy.map(str::to_owned),
        policy_data: None,
        demo: None,
        config: Config { rate_per_minute: 1_000_000, ..Config::default() },
        tls: None,
    })
    .await
    .expect("start")
}

struct Approver {
    key: protocol::SigningKey,
    kid: String,
}

async fn enrol(app: &countersign_gateway::App) -> Approver {
    let key = protocol::generate_key();
    let kid = kid_of(&key.verifying_key());
    let jwk = serde_json::to_string(&Jwk::from_key(&key.verifying_key())).expect("jwk");
    // Each bench approver is its own principal: quorum counts principals.
    let principal = format!("bench-{}@acme.example", &kid[..8]);
    let approver =
        store::Approver::enrol(kid.clone(), "bench".into(), &principal, jwk, 0).expect("principal");
    store::add_approver(app.db(), &approver, false).await.expect("enrol");
    Approver { key, kid }
}

fn auth(a: &Approver, ep: &str) -> String {
    let t = countersign_gateway::app::now();
    protocol::sign(
        &AuthClaims { iss: a.kid.clone(), aud: ep.into(), iat: t, exp: t + 280, jti: protocol::new_id() },
        protocol::TYP_AUTH,
        &a.key,
    )
    .expect("auth")
}

async fn bench_decisions() {
    let dir = tempfile::tempdir().expect("tmp");
    let gw = start(dir.path(), Some(BENCH_POLICY)).await;
    let app = gw.app.clone();
    let a = enrol(&app).await;
    let base = format!("http://{}", gw.addr);
    let n = 2000usize;
    let d = draft("bench");
    let mut tokens = Vec::with_capacity(n);
    for _ in 0..n {
        let (_, body) = app.submit(&d.identity.workload, d.clone(), None).await.expect("submit");
        let id = body["id"].as_str().expect("id").to_string();
        let jwt = store::step_ups_in_state(app.db(), "pending", None, 1_000_000, usize::MAX)
            .await
            .expect("list")
            .expect("page")
            .items;
        let jwt = jwt.into_iter().find(|(i, _)| *i == id).expect("found").1;
        let raw = protocol::jws::decode_unverified(&jwt).expect("claims");
        let t = countersign_gateway::app::now();
        let c = DecisionClaims {
            iss: a.kid.clone(),
            aud: app.ep.clone(),
            sub: id.clone(),
            iat: t,
            exp: t + 250,
            jti: protocol::new_id(),
            digest: protocol::request_digest(&raw).expect("digest"),
            decision: Verdict::Approve,
            reason: "bench".into(),
            constraints: None,
            binding_code: None,
        };
        tokens.push((id, protocol::sign(&c, protocol::TYP_DECISION, &a.key).expect("sign")));
    }
    let client = reqwest::Client::new();
    let bearer = auth(&a, &app.ep);
    let concurrency = 8;

    // Baseline: the same number of authenticated reads of a small JSON document.
    let t = Instant::now();
    futures::stream::iter(tokens.iter().map(|(id, _)| {
        let (client, base, bearer) = (&client, &base, &bearer);
        async move {
            let r =
                client.get(format!("{base}/v1/step-ups/{id}")).bearer_auth(bearer).send().await.expect("get");
            assert!(r.status().is_success());
        }
    }))
    .buffer_unordered(concurrency)
    .collect::<Vec<_>>()
    .await;
    let baseline = t.elapsed();

    let t = Instant::now();
    futures::stream::iter(tokens.iter().map(|(id, token)| {
        let (client, base, bearer) = (&client, &base, &bearer);
        async move {
            let r = client
                .post(format!("{base}/v1/step-ups/{id}/decisions"))
                .bearer_auth(bearer)
                .body(token.clone())
                .send()
                .await
                .expect("post");
            assert_eq!(r.status().as_u16(), 200);
        }
    }))
    .buffer_unordered(concurrency)
    .collect::<Vec<_>>()
    .await;
    let took = t.elapsed();
    println!(
        "{:<44} n={n:<6} {:>8.0}/s  (durable commit each, concurrency {concurrency})",
        "decisions verified + committed over HTTP",
        n as f64 / took.as_secs_f64()
    );
    println!(
        "{:<44} n={n:<6} {:>8.0}/s  (ratio decisions/baseline time {:.2})",
        "  baseline: authenticated GET status",
        n as f64 / baseline.as_secs_f64(),
        took.as_secs_f64() / baseline.as_secs_f64()
    );
}

async fn bench_sse(subscribers: usize) {
    use eventsource_stream::Eventsource as _;
    let dir = tempfile::tempdir().expect("tmp");
    let gw = start(dir.path(), Some(BENCH_POLICY)).await;
    let app = gw.app.clone();
    let a = enrol(&app).await;
    let base = format!("http://{}", gw.addr);
    let received: Arc<tokio::sync::Mutex<Vec<(i64, Instant)>>> = Default::default();
    for _ in 0..subscribers {
        let resp = reqwest::Client::new()
            .get(format!("{base}/v1/events"))
            .bearer_auth(auth(&a, &app.ep))
            .send()
            .await
            .expect("sse");
        let received = received.clone();
        tokio::spawn(async move {
            let mut s = resp.bytes_stream().eventsource();
            while let Some(Ok(e)) = s.next().await {
                let at = Instant::now();
                received.lock().await.push((e.id.parse().expect("seq"), at));
            }
        });
    }
    let mut rx = app.subscribe();
    let emitted: Arc<tokio::sync::Mutex<HashMap<i64, Instant>>> = Default::default();
    let em = emitted.clone();
    tokio::spawn(async move {
        while let Ok(e) = rx.recv().await {
            em.lock().await.insert(e.seq, e.emitted);
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let d = draft("bench");
    let n = 500;
    for _ in 0..n {
        app.submit(&d.identity.workload, d.clone(), None).await.expect("submit");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let emitted = emitted.lock().await;
    let xs: Vec<Duration> = received
        .lock()
        .await
        .iter()
        .filter_map(|(seq, at)| emitted.get(seq).map(|e| at.saturating_duration_since(*e)))
        .collect();
    assert_eq!(xs.len(), n * subscribers, "every subscriber received every event");
    report(&format!("SSE emit -> received, {subscribers} subscriber(s)"), xs);
}

fn main() {
    // `cargo test --benches` runs bench targets with --bench absent; only measure under cargo bench.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    // An optional filter word after `--`: `policy`, `decisions` or `sse`.
    let only = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let run = |name: &str| only.as_deref().is_none_or(|o| name.contains(o));
    if run("policy") {
        bench_policy();
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        if run("decisions") {
            bench_decisions().await;
        }
        if run("sse") {
            bench_sse(1).await;
            bench_sse(10).await;
        }
    });
}
