//! Support for the black-box tests: start the real binaries on loopback, act as agents and
//! approvers with real keys and real HTTP.

pub mod app;
pub mod console;
pub mod mcp;
pub mod memory;
pub mod panel;
pub mod tls;
pub mod webdriver;
pub mod x11;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use countersign_protocol::{
    self as protocol, jwk::kid_of, AuthClaims, Constraints, DecisionClaims, Jwk, SigningKey, Verdict,
    TYP_AUTH, TYP_DECISION,
};
use serde_json::{json, Value};

/// The directory holding the workspace's built binaries (`target/debug`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/debug/deps/<test> → target/debug
    exe.parent().and_then(Path::parent).expect("target dir").to_path_buf()
}

/// A built binary of the workspace; panics with the fix when it was not built.
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(path.exists(), "{} is missing: run `cargo build --workspace --bins` first", path.display());
    path
}

/// The test policy (purpose code → outcome).
pub fn test_policy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/test-policy.rego")
}

/// Seconds since the epoch (the protocol's one clock).
pub use protocol::now;

/// Run `countersign-gateway ARGS…` to completion; its stdout, or a panic with stderr.
pub fn gateway_cli(args: &[&str]) -> String {
    let out = Command::new(bin("countersign-gateway")).args(args).output().expect("run countersign-gateway");
    assert!(
        out.status.success(),
        "countersign-gateway {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// A running gateway process; killed on drop.
#[derive(Debug)]
pub struct Gateway {
    /// Its data directory.
    pub data: PathBuf,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The `ep` id.
    pub ep: String,
    child: Child,
    extra: Vec<String>,
}

impl Gateway {
    /// Start a gateway over `data` with the test policy and `extra` flags, on a free port.
    pub fn start(data: &Path, extra: &[&str]) -> Gateway {
        Self::start_at(data, "127.0.0.1:0", extra.iter().map(|s| s.to_string()).collect())
    }

    fn start_at(data: &Path, listen: &str, extra: Vec<String>) -> Gateway {
        let mut cmd = Command::new(bin("countersign-gateway"));
        cmd.args(["serve", "--listen", listen, "--data"]).arg(data);
        if !extra.iter().any(|a| a == "--default-policy") {
            cmd.arg("--policy").arg(test_policy());
        }
        cmd.args(extra.iter().filter(|a| *a != "--default-policy"));
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("spawn gateway");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("read gateway banner");
        // "countersign-gateway EP listening on http://ADDR"
        let mut words = line.split_whitespace();
        let ep = words.nth(1).unwrap_or_else(|| panic!("unexpected banner {line:?}")).to_string();
        let url = line.split_whitespace().last().expect("url").to_string();
        Gateway { data: data.to_path_buf(), url, ep, child, extra }
    }

    /// Kill the process (like a crash) and start it again on the same port and data.
    pub fn restart(&mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("wait");
        let addr = self.url.trim_start_matches("http://").to_string();
        // The port is free again once the process is gone; retry briefly in case the OS lags.
        for attempt in 0..50 {
            let started = std::panic::catch_unwind(|| Self::start_at(&self.data, &addr, self.extra.clone()));
            if let Ok(g) = started {
                let old = std::mem::replace(self, g);
                drop(old);
                return;
            }
            std::thread::sleep(Duration::from_millis(100 * (attempt + 1)));
        }
        panic!("gateway did not restart on {addr}");
    }

    /// `url + path`.
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// Register an agent for `workload`, owned by `owner@acme.example` (the person [`draft`]s act for).
    pub fn agent(&self, workload: &str) -> Agent {
        let data = self.data.to_str().expect("utf-8 path");
        let token = gateway_cli(&[
            "agents",
            "add",
            "--data",
            data,
            "--workload",
            workload,
            "--owner",
            "owner@acme.example",
        ])
        .trim()
        .to_string();
        Agent { token, workload: workload.into() }
    }

    /// Enrol a new approver with a fresh key.
    pub fn approver(&self, name: &str, principal: &str) -> Approver {
        let a = Approver::new(principal);
        let file = self.data.join(format!("{}.jwk", a.kid));
        std::fs::write(&file, serde_json::to_string(&Jwk::from_key(&a.key.verifying_key())).expect("jwk"))
            .expect("write jwk");
        let data = self.data.to_str().expect("utf-8 path");
        gateway_cli(&[
            "approvers",
            "add",
            "--data",
            data,
            "--name",
            name,
            "--principal",
            principal,
            "--jwk",
            file.to_str().expect("utf-8"),
        ]);
        a
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An agent: a workload with a bearer token.
#[derive(Debug, Clone)]
pub struct Agent {
    /// Bearer token.
    pub token: String,
    /// SPIFFE id.
    pub workload: String,
}

/// An approver with an Ed25519 key.
#[derive(Debug)]
pub struct Approver {
    /// Private key (tests only).
    pub key: SigningKey,
    /// Key id.
    pub kid: String,
    /// E-mail.
    pub principal: String,
}

impl Approver {
    /// A fresh, unenrolled approver.
    pub fn new(principal: &str) -> Self {
        let key = protocol::generate_key();
        let kid = kid_of(&key.verifying_key());
        Approver { key, kid, principal: principal.into() }
    }

    /// A 5-minute auth token for `ep`.
    pub fn auth(&self, ep: &str) -> String {
        let t = now();
        let claims = AuthClaims {
            iss: self.kid.clone(),
            aud: ep.into(),
            iat: t,
            exp: t + 240,
            jti: protocol::new_id(),
        };
        protocol::sign(&claims, TYP_AUTH, &self.key).expect("sign auth")
    }

    /// Sign a decision on a verified request's claims.
    pub fn decision(&self, request: &Value, verdict: Verdict, reason: &str, code: Option<&str>) -> String {
        let claims = self.decision_claims(request, verdict, reason, code);
        protocol::sign(&claims, TYP_DECISION, &self.key).expect("sign decision")
    }

    /// The claims [`Approver::decision`] signs, for tests that alter them.
    pub fn decision_claims(
        &self,
        request: &Value,
        verdict: Verdict,
        reason: &str,
        code: Option<&str>,
    ) -> DecisionClaims {
        let t = now();
        DecisionClaims {
            iss: self.kid.clone(),
            aud: request["iss"].as_str().expect("iss").into(),
            sub: request["jti"].as_str().expect("jti").into(),
            iat: t,
            exp: request["exp"].as_i64().expect("exp").min(t + 120),
            jti: protocol::new_id(),
            digest: protocol::request_digest(request).expect("digest"),
            decision: verdict,
            reason: reason.into(),
            constraints: Some(Constraints { ttl_s: Some(120), max_uses: Some(1) }),
            binding_code: code.map(str::to_owned),
        }
    }
}

/// A draft for the test policy: `purpose` picks the outcome.
pub fn draft(workload: &str, purpose: &str) -> Value {
    json!({
        "identity": {"workload": workload, "display": "Test agent",
            "on_behalf_of": [{"sub": "owner@acme.example", "display": "Owner"}]},
        "purpose": {"code": purpose, "statement": "black-box test"},
        "data": {"class": "confidential", "categories": ["pii"]},
        "target": {"system": "crm", "environment": "production"},
        "actions": [{"tool": "crm", "operation": "export", "args": {"rows": "10"}, "reversible": false}]
    })
}

/// A reqwest client with a short timeout for ordinary calls.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client")
}

/// POST a draft as `agent`; (status, body).
pub async fn submit(gw: &Gateway, agent: &Agent, body: &Value) -> (u16, Value) {
    let r =
        http().post(gw.at("/v1/step-ups")).bearer_auth(&agent.token).json(body).send().await.expect("submit");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Fetch the gateway's JWKS and verify a step-up JWT against it; the raw claims.
pub async fn verify_request(gw: &Gateway, jwt: &str) -> Value {
    let wk: Value =
        http().get(gw.at("/.well-known/countersign")).send().await.expect("wk").json().await.expect("json");
    let jwk: Jwk = serde_json::from_value(wk["jwks"]["keys"][0].clone()).expect("jwk");
    let key = jwk.to_key().expect("key");
    protocol::verify::<Value>(jwt, protocol::TYP_STEP_UP, &key, &protocol::Validation::at(now()))
        .expect("verify")
        .raw
}

/// POST a decision as `approver`; (status, body).
pub async fn post_decision(gw: &Gateway, approver: &Approver, id: &str, token: &str) -> (u16, Value) {
    let r = http()
        .post(gw.at(&format!("/v1/step-ups/{id}/decisions")))
        .bearer_auth(approver.auth(&gw.ep))
        .header("content-type", "application/jwt")
        .body(token.to_string())
        .send()
        .await
        .expect("post decision");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The pending list as `approver`; panics unless the gateway answers 200 with an `items` list
/// (a 401 or 500 must never read as "nothing pending").
pub async fn pending(gw: &Gateway, approver: &Approver) -> Vec<Value> {
    let r = http()
        .get(gw.at("/v1/step-ups?state=pending"))
        .bearer_auth(approver.auth(&gw.ep))
        .send()
        .await
        .expect("pending");
    let status = r.status().as_u16();
    let body: Value = r.json().await.expect("json");
    assert_eq!(status, 200, "pending list: {body}");
    body["items"].as_array().cloned().unwrap_or_else(|| panic!("pending list without items: {body}"))
}

/// The decision tokens a gateway holds for request `id`, in arrival order, read from its database
/// with `sqlite3` (the HTTP API never returns them: they carry binding codes).
pub fn decision_tokens(gw: &Gateway, id: &str) -> Vec<String> {
    assert!(id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'), "request id {id:?}");
    let out = Command::new("sqlite3")
        .arg(gw.data.join("gateway.db"))
        .arg(format!("SELECT jwt FROM decisions WHERE request_id = '{id}' ORDER BY received_at, rowid"))
        .output()
        .expect("run sqlite3");
    assert!(out.status.success(), "sqlite3: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8").lines().map(str::to_owned).collect()
}

/// GET a request's status as `agent`, long-polling up to `wait` seconds.
pub async fn status(gw: &Gateway, agent: &Agent, id: &str, wait: u64) -> Value {
    http()
        .get(gw.at(&format!("/v1/step-ups/{id}?wait={wait}")))
        .bearer_auth(&agent.token)
        .timeout(Duration::from_secs(wait + 30))
        .send()
        .await
        .expect("status")
        .json()
        .await
        .expect("json")
}

/// An SSE subscription: (id, event, data) triples.
pub struct Events {
    stream: std::pin::Pin<Box<dyn futures::Stream<Item = (String, String, Value)> + Send>>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Events")
    }
}

impl Events {
    /// Subscribe to `/v1/events`, resuming after `last` when given.
    pub async fn connect(gw: &Gateway, approver: &Approver, last: Option<&str>) -> Events {
        use eventsource_stream::Eventsource as _;
        use futures::StreamExt as _;
        let client =
            reqwest::Client::builder().connect_timeout(Duration::from_secs(5)).build().expect("client");
        let mut req = client.get(gw.at("/v1/events")).bearer_auth(approver.auth(&gw.ep));
        if let Some(last) = last {
            req = req.header("Last-Event-ID", last);
        }
        let resp = req.send().await.expect("events");
        assert_eq!(resp.status().as_u16(), 200, "events status");
        let stream = resp.bytes_stream().eventsource().filter_map(|e| async move {
            let e = e.ok()?;
            Some((e.id, e.event, serde_json::from_str(&e.data).ok()?))
        });
        Events { stream: Box::pin(stream) }
    }

    /// The next event, within `secs` seconds.
    pub async fn next(&mut self, secs: u64) -> Option<(String, String, Value)> {
        use futures::StreamExt as _;
        tokio::time::timeout(Duration::from_secs(secs), self.stream.next()).await.ok().flatten()
    }

    /// Whether the stream ends (the server closes it) within `secs` seconds; events that arrive
    /// meanwhile are skipped. False when it is still open at the deadline — "nothing yet" is not
    /// "closed".
    pub async fn closed_within(&mut self, secs: u64) -> bool {
        use futures::StreamExt as _;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => return false,
                Ok(None) => return true,
                Ok(Some(_)) => continue,
            }
        }
    }
}
