//! Driving the `countersign` CLI as a black box: each [`Console`] is its own profile
//! (`COUNTERSIGN_HOME` in a temporary directory) on the real Secret Service of the test session.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use countersign_protocol::Jwk;
use serde_json::Value;

use crate::{bin, gateway_cli, http, Gateway};

/// One console profile.
#[derive(Debug)]
pub struct Console {
    /// The temporary profile directory.
    pub home: tempfile::TempDir,
}

/// The exit status and both output streams of one CLI run.
#[derive(Debug)]
pub struct Run {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Default for Console {
    fn default() -> Self {
        Self::new()
    }
}

impl Console {
    /// A fresh profile. Panics with the fix when the test session (private D-Bus with an unlocked
    /// gnome-keyring) is missing: the console tests use the real Secret Service, never a mock.
    pub fn new() -> Console {
        assert!(
            std::env::var_os("COUNTERSIGN_TEST_SESSION").is_some(),
            "the console tests need the real Secret Service on a private session: \
             run them with `bash scripts/with-session.sh cargo test -p countersign-blackbox --test console`"
        );
        Console { home: tempfile::tempdir().expect("tempdir") }
    }

    /// The profile directory.
    pub fn dir(&self) -> &Path {
        self.home.path()
    }

    /// The history database file.
    pub fn db(&self) -> PathBuf {
        self.dir().join("history.db")
    }

    /// A `countersign` command on this profile, not yet run.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin("countersign"));
        cmd.args(args).env("COUNTERSIGN_HOME", self.dir());
        cmd
    }

    /// Run `countersign ARGS…`.
    pub fn run(&self, args: &[&str]) -> Run {
        self.command(args).output().expect("run countersign").into()
    }

    /// Run and require success; stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(r.code, 0, "countersign {args:?} failed ({}): {}{}", r.code, r.stdout, r.stderr);
        r.stdout
    }

    /// Run and require exit `code`; the run.
    pub fn fails(&self, args: &[&str], code: i32) -> Run {
        let r = self.run(args);
        assert_eq!(r.code, code, "countersign {args:?}: expected exit {code}: {}{}", r.stdout, r.stderr);
        r
    }

    /// Run with `--json` appended and parse stdout.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        serde_json::from_str(&self.ok(&args)).expect("json output")
    }

    /// The console's public key, as exported.
    pub fn jwk(&self) -> Jwk {
        serde_json::from_str(&self.ok(&["key", "export"])).expect("jwk")
    }

    /// Enrol this console's key with `gw` as `principal`, and pin `gw` with its real key id.
    pub async fn connect(&self, gw: &Gateway, principal: &str) {
        self.connect_via(gw, &gw.url, principal).await
    }

    /// The ids of the pending requests, as `countersign pending --json` lists them.
    pub fn pending_ids(&self) -> Vec<String> {
        let items = self.json(&["pending"]);
        items.as_array().expect("array").iter().map(|i| i["id"].as_str().expect("id").to_string()).collect()
    }

    /// The profile's private key as stored in the keyring (base64url seed), read with `secret-tool`.
    pub fn keyring_secret(&self) -> String {
        let id = std::fs::read_to_string(self.dir().join("profile-id")).expect("profile id");
        let out = Command::new("secret-tool")
            .args(["lookup", "service", "countersign", "username", id.trim()])
            .output()
            .expect("secret-tool");
        assert!(out.status.success(), "secret-tool lookup failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("utf-8").trim().to_string()
    }

    /// The number of rows in the review history.
    pub fn history_len(&self) -> usize {
        self.json(&["history"]).as_array().expect("array").len()
    }
}

/// The kid of the gateway's (first) key, from its well-known document.
pub async fn gateway_kid(gw: &Gateway) -> String {
    let wk: Value =
        http().get(gw.at("/.well-known/countersign")).send().await.expect("wk").json().await.expect("json");
    let jwk: Jwk = serde_json::from_value(wk["jwks"]["keys"][0].clone()).expect("jwk");
    jwk.thumbprint()
}

/// A minimal enforcement point on loopback that serves fixed documents: the well-known document
/// and a pending list of chosen tokens. For cases the real gateway never produces, such as a
/// request signed by a key other than the one it publishes.
#[derive(Debug)]
pub struct FakeEp {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its `ep` id.
    pub ep: String,
    pending: std::sync::Arc<std::sync::Mutex<String>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeEp {
    /// Serve `key`'s public half as the published key and `items` (`{id, jwt}`) as the pending list.
    pub async fn start(ep: &str, key: &countersign_protocol::SigningKey, items: Vec<Value>) -> FakeEp {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let well_known = serde_json::json!({
            "ep": ep, "name": "Fake EP",
            "jwks": {"keys": [Jwk::from_key(&key.verifying_key())]},
        })
        .to_string();
        let pending =
            std::sync::Arc::new(std::sync::Mutex::new(serde_json::json!({ "items": items }).to_string()));
        let listed = pending.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let well_known = well_known.clone();
                let pending = listed.lock().expect("pending").clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let line = String::from_utf8_lossy(&head).lines().next().unwrap_or_default().to_string();
                    let path = line.split_whitespace().nth(1).unwrap_or_default();
                    let (status, body) = if path == "/.well-known/countersign" {
                        ("200 OK", well_known)
                    } else if path.starts_with("/v1/step-ups?state=pending") {
                        ("200 OK", pending)
                    } else {
                        ("404 Not Found", r#"{"error":"not_found","message":"fake"}"#.to_string())
                    };
                    let response = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(response.as_bytes()).await;
                });
            }
        });
        FakeEp { url, ep: ep.to_string(), pending, task }
    }

    /// List `items` from now on.
    pub fn set_items(&self, items: Vec<Value>) {
        *self.pending.lock().expect("pending") = serde_json::json!({ "items": items }).to_string();
    }
}

impl Drop for FakeEp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A step-up request signed by `key` as if issued by `ep`, with id `jti`, expiring in five minutes.
pub fn signed_step_up(ep: &str, jti: &str, key: &countersign_protocol::SigningKey) -> String {
    let t = crate::now();
    let mut claims = crate::draft("spiffe://acme.example/ns/test/sa/agent", "test.high");
    let extra = serde_json::json!({
        "iss": ep, "jti": jti, "iat": t, "exp": t + 300,
        "policy": {"id": "test.high", "reason": "high step-up", "tier": "high", "approvals_required": 1},
    });
    for (k, v) in extra.as_object().expect("object") {
        claims[k] = v.clone();
    }
    countersign_protocol::sign(&claims, countersign_protocol::TYP_STEP_UP, key).expect("sign")
}

/// What a [`Proxy`] does with new connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    /// Forward to the upstream.
    Forward = 0,
    /// Close at once: the enforcement point is down.
    Refuse = 1,
    /// Accept and never answer: a hung network, to catch a process mid-call.
    Hang = 2,
}

/// A TCP proxy in front of a gateway, to take it off the network without touching it.
#[derive(Debug)]
pub struct Proxy {
    /// `http://127.0.0.1:PORT` of the proxy.
    pub url: String,
    mode: std::sync::Arc<std::sync::atomic::AtomicU8>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Proxy to `upstream` (`http://HOST:PORT`), forwarding.
    pub async fn start(upstream: &str) -> Proxy {
        use std::sync::atomic::Ordering;
        let upstream = upstream.trim_start_matches("http://").to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let mode = std::sync::Arc::new(std::sync::atomic::AtomicU8::new(ProxyMode::Forward as u8));
        let m = mode.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let (upstream, mode) = (upstream.clone(), m.load(Ordering::SeqCst));
                tokio::spawn(async move {
                    if mode == ProxyMode::Refuse as u8 {
                        return;
                    }
                    if mode == ProxyMode::Hang as u8 {
                        tokio::time::sleep(std::time::Duration::from_secs(600)).await;
                        return;
                    }
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Proxy { url, mode, task }
    }

    /// Change what happens to new connections.
    pub fn set(&self, mode: ProxyMode) {
        self.mode.store(mode as u8, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Console {
    /// Like [`Console::connect`], but pin the enforcement point at `url` (e.g. a [`Proxy`]).
    pub async fn connect_via(&self, gw: &Gateway, url: &str, principal: &str) {
        let file = self.dir().join("me.jwk");
        std::fs::write(&file, serde_json::to_string(&self.jwk()).expect("jwk")).expect("write jwk");
        let data = gw.data.to_str().expect("utf-8");
        let jwk = file.to_str().expect("utf-8");
        gateway_cli(&[
            "approvers",
            "add",
            "--data",
            data,
            "--name",
            principal,
            "--principal",
            principal,
            "--jwk",
            jwk,
        ]);
        std::fs::remove_file(&file).expect("remove jwk");
        let kid = gateway_kid(gw).await;
        self.ok(&["ep", "add", url, "--trust", &kid]);
    }
}

/// The workload of the agent the console tests act as.
pub const AGENT: &str = "spiffe://acme.example/ns/test/sa/agent";

/// A gateway (test policy), its agent, and a console connected to it as alice@acme.example.
pub async fn connected_console() -> (tempfile::TempDir, Gateway, crate::Agent, Console) {
    let dir = tempfile::tempdir().expect("tempdir");
    let gw = Gateway::start(dir.path(), &[]);
    let agent = gw.agent(AGENT);
    let console = Console::new();
    console.connect(&gw, "alice@acme.example").await;
    (dir, gw, agent, console)
}

/// Submit a draft of the test policy with `purpose`; its id (panics unless 201).
pub async fn submit_id(gw: &Gateway, agent: &crate::Agent, purpose: &str) -> String {
    let (status, body) = crate::submit(gw, agent, &crate::draft(&agent.workload, purpose)).await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().expect("id").to_string()
}

/// A child process killed (and reaped) when dropped.
#[derive(Debug)]
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What dunst has shown (it lists a notification in its history only once it is closed).
pub fn dunst_history() -> String {
    let _ = Command::new("dunstctl").arg("close-all").status();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out = Command::new("dunstctl").arg("history").output().expect("dunstctl history");
    String::from_utf8_lossy(&out.stdout).into_owned()
}
