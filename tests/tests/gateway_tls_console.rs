//! The whole loop over TLS: the real gateway serving HTTPS with a certificate from a private CA,
//! the real `countersign` CLI pinning it with that CA, syncing, approving and delivering; and the
//! console refusing plain http to a host that is not loopback.

use countersign_blackbox::console::Console;
use countersign_blackbox::*;
use serde_json::Value;

const AGENT: &str = "spiffe://acme.example/ns/test/sa/agent";

/// A private CA and a server certificate for localhost / 127.0.0.1: (ca.pem, cert.pem, key.pem).
fn certificates(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "Countersign test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    let paths = (dir.join("ca.pem"), dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, leaf.pem()).unwrap();
    std::fs::write(&paths.2, leaf_key.serialize_pem()).unwrap();
    paths
}

#[tokio::test]
async fn a_console_decides_over_tls_with_a_pinned_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(dir.path());
    let gw = Gateway::start(
        &dir.path().join("gw"),
        &["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()],
    );
    let trusting = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap())
        .build()
        .unwrap();
    let wk: Value =
        trusting.get(gw.at("/.well-known/countersign")).send().await.unwrap().json().await.unwrap();
    let kid = countersign_protocol::Jwk::thumbprint(
        &serde_json::from_value(wk["jwks"]["keys"][0].clone()).unwrap(),
    );

    let console = Console::new();
    let jwk_file = console.dir().join("me.jwk");
    std::fs::write(&jwk_file, serde_json::to_string(&console.jwk()).unwrap()).unwrap();
    gateway_cli(&[
        "approvers",
        "add",
        "--data",
        gw.data.to_str().unwrap(),
        "--name",
        "Alice",
        "--principal",
        "alice@acme.example",
        "--jwk",
        jwk_file.to_str().unwrap(),
    ]);

    // Without the CA the certificate is not trusted: refused, nothing pinned.
    let r = console.run(&["ep", "add", &gw.url, "--trust", &kid]);
    assert_ne!(r.code, 0, "an untrusted certificate must be refused: {}", r.stdout);
    assert!(console.json(&["ep", "list"]).as_array().unwrap().is_empty());
    console.ok(&["ep", "add", &gw.url, "--trust", &kid, "--ca-cert", ca.to_str().unwrap()]);

    let agent = gw.agent(AGENT);
    let (status, body) = {
        let r = trusting
            .post(gw.at("/v1/step-ups"))
            .bearer_auth(&agent.token)
            .json(&draft(AGENT, "test.high"))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    console.ok(&["sync"]);
    assert_eq!(console.pending_ids(), vec![id.clone()]);
    let out = console.ok(&["approve", &id, "--reason", "checked over TLS"]);
    assert!(out.contains("delivered") && !out.contains("not delivered"), "{out}");
    let state: Value = trusting
        .get(gw.at(&format!("/v1/step-ups/{id}")))
        .bearer_auth(&agent.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["state"], "approved", "{state}");
}

#[tokio::test]
async fn plain_http_to_a_remote_enforcement_point_is_refused() {
    let console = Console::new();
    for url in ["http://gateway.acme.example:8787", "http://10.1.2.3:8787", "http://[2001:db8::1]:8787"] {
        let r = console.run(&["ep", "add", url, "--trust", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"]);
        assert_ne!(r.code, 0, "{url} must be refused");
        assert!(r.stderr.contains("https"), "{url}: the error says why: {}", r.stderr);
    }
    assert!(console.json(&["ep", "list"]).as_array().unwrap().is_empty(), "nothing was pinned");
}
