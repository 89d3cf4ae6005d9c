//! Driving `countersign-mcp` as a black box: the real gateway, the real `server-everything` (node), and MCP
//! clients that speak to the proxy over stdio or HTTP — rmcp's client and a raw line client for byte checks.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::ProgressNotificationParam;
use rmcp::service::{NotificationContext, RoleClient, RunningService};
use rmcp::{ClientHandler, ServiceExt};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::{bin, gateway_cli, Agent, Gateway};

/// The workload the proxy acts as in these tests.
pub const WORKLOAD: &str = "spiffe://acme.example/ns/dev/sa/claude";

/// `server-everything`'s entry point, installed by `scripts/setup.sh` (`install_mcp_servers`).
pub fn server_everything() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("mcp/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    assert!(p.exists(), "{} is missing: run `source scripts/setup.sh && install_mcp_servers`", p.display());
    p
}

/// A gateway with the proxy's agent and target system registered, and a config file for the proxy.
#[derive(Debug)]
pub struct Rig {
    /// Holds the gateway's data, the tokens and the config.
    pub dir: tempfile::TempDir,
    /// The real gateway.
    pub gw: Gateway,
    /// The proxy's agent (its token is in `agent.token`).
    pub agent: Agent,
    /// The proxy's config file.
    pub config: PathBuf,
}

impl Rig {
    /// A rig whose config has `extra` TOML appended (e.g. an `[approval]` table).
    pub fn start(extra: &str) -> Rig {
        let dir = tempfile::tempdir().expect("tempdir");
        // The tests and the bench make many calls a minute; the rate limit is not what they test.
        let gw = Gateway::start(&dir.path().join("gw"), &["--rate-limit", "100000"]);
        let agent = gw.agent(WORKLOAD);
        let data = gw.data.to_str().expect("utf-8").to_owned();
        let system = gateway_cli(&[
            "systems",
            "add",
            "--data",
            &data,
            "--system",
            "crm",
            "--environment",
            "production",
        ]);
        write_private(&dir.path().join("agent.token"), &agent.token);
        write_private(&dir.path().join("system.token"), system.trim());
        let config = dir.path().join("countersign.toml");
        std::fs::write(&config, config_text(&gw.url, extra)).expect("write config");
        Rig { dir, gw, agent, config }
    }

    /// Point the config at another gateway URL (one that is down, say).
    pub fn point_at(&self, url: &str, extra: &str) {
        std::fs::write(&self.config, config_text(url, extra)).expect("write config");
    }

    /// `countersign-mcp stdio --config … -- node server-everything stdio`.
    pub fn stdio(&self) -> Command {
        let mut cmd = Command::new(bin("countersign-mcp"));
        cmd.arg("stdio")
            .arg("--config")
            .arg(&self.config)
            .arg("--")
            .arg("node")
            .arg(server_everything())
            .arg("stdio");
        cmd
    }
}

fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).expect("write token");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

fn config_text(url: &str, extra: &str) -> String {
    format!(
        r#"[gateway]
url = "{url}"
token_file = "agent.token"
system_token_file = "system.token"
timeout_ms = 3000

[agent]
workload = "{WORKLOAD}"
display = "Claude Code"
on_behalf_of = [{{ sub = "jo@acme.example", display = "Jo" }}]

[target]
system = "crm"
environment = "production"

[purpose]
code = "test.mcp"
statement = "Answer ticket 4711"

[tools.get-sum]
class = "public"
reversible = true

[tools.echo]
class = "confidential"
categories = ["pii"]
reversible = false
{extra}
"#
    )
}

/// An rmcp client handler that keeps every progress notification it receives.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    /// The notifications, in arrival order.
    pub progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
}

impl ClientHandler for Recorder {
    async fn on_progress(&self, params: ProgressNotificationParam, _: NotificationContext<RoleClient>) {
        self.progress.lock().expect("lock").push(params);
    }
}

/// rmcp's client over stdio to `cmd` (the proxy, or the server directly).
pub async fn rmcp_client(cmd: Command) -> (RunningService<RoleClient, Recorder>, Recorder) {
    let recorder = Recorder::default();
    let transport = rmcp::transport::TokioChildProcess::new(cmd).expect("spawn");
    let client = recorder.clone().serve(transport).await.expect("initialize through the proxy");
    (client, recorder)
}

/// The text of a tool result's first content block.
pub fn text_of(result: &rmcp::model::CallToolResult) -> String {
    serde_json::to_value(result).expect("json")["content"][0]["text"].as_str().unwrap_or_default().to_owned()
}

/// The one request the console lists once a call is held (syncing until it does).
pub async fn held_request(console: &crate::console::Console) -> String {
    for _ in 0..100 {
        console.ok(&["sync"]);
        if let Some(id) = console.pending_ids().first() {
            return id.clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no request was held");
}

/// Wait (up to 8 s) until request `id` is in `state` at the gateway; its last state either way.
pub async fn settles_as(gw: &Gateway, agent: &Agent, id: &str, state: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..80 {
        last = crate::status(gw, agent, id, 0).await["state"].clone();
        if last == state {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last
}

/// A raw JSON-RPC line client over a child's stdio, for checks on exact messages.
#[derive(Debug)]
pub struct Raw {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    /// Every message received, in order.
    pub seen: Vec<Value>,
}

impl Raw {
    /// Start `cmd` and initialize an MCP session with it.
    pub async fn start(mut cmd: Command) -> Raw {
        let mut child =
            cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).kill_on_drop(true).spawn().expect("spawn");
        let stdin = child.stdin.take().expect("stdin");
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut raw = Raw { child, stdin, lines, seen: Vec::new() };
        raw.send(&json!({"jsonrpc": "2.0", "id": "init", "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}}))
            .await;
        raw.answer(&json!("init"), 30).await;
        raw.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await;
        raw
    }

    /// Send one line as it is.
    pub async fn send_line(&mut self, line: &str) {
        self.stdin.write_all(format!("{line}\n").as_bytes()).await.expect("write");
        self.stdin.flush().await.expect("flush");
    }

    /// Send a message.
    pub async fn send(&mut self, message: &Value) {
        self.send_line(&message.to_string()).await;
    }

    /// The answer to request `id`, within `secs`.
    pub async fn answer(&mut self, id: &Value, secs: u64) -> Value {
        if let Some(m) = self.seen.iter().find(|m| m.get("id") == Some(id) && m.get("method").is_none()) {
            return m.clone();
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.next_line())
                .await
                .unwrap_or_else(|_| panic!("no answer to {id} within {secs}s; seen {:?}", self.seen))
                .expect("read")
                .unwrap_or_else(|| {
                    panic!("the stream ended before the answer to {id}; seen {:?}", self.seen)
                });
            let m: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            self.seen.push(m.clone());
            if m.get("id") == Some(id) && m.get("method").is_none() {
                return m;
            }
        }
    }

    /// Messages received within `secs` (for checking that something did not come).
    pub async fn drain(&mut self, secs: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        while let Ok(Ok(Some(line))) = tokio::time::timeout_at(deadline, self.lines.next_line()).await {
            if let Ok(m) = serde_json::from_str(&line) {
                self.seen.push(m);
            }
        }
    }

    /// The process id (for its memory figures).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Close stdin and wait for the process to exit.
    pub async fn close(mut self) -> std::process::ExitStatus {
        drop(self.stdin);
        tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await.expect("exits").expect("wait")
    }
}

/// A child process killed (and reaped) when dropped.
#[derive(Debug)]
pub struct Running {
    child: Child,
    /// Its MCP endpoint.
    pub url: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// `server-everything` in streamable-HTTP mode on a free loopback port; its endpoint is `/mcp`.
pub async fn everything_http() -> Running {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let child = Command::new("node")
        .arg(server_everything())
        .arg("streamableHttp")
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn server-everything");
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Running { child, url: format!("http://127.0.0.1:{port}/mcp") };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("server-everything did not listen on {port}");
}

impl Rig {
    /// `countersign-mcp http` in front of `upstream`, on a free loopback port.
    pub async fn http(&self, upstream: &str) -> Running {
        let mut child = Command::new(bin("countersign-mcp"))
            .arg("http")
            .arg("--config")
            .arg(&self.config)
            .args(["--listen", "127.0.0.1:0", "--upstream", upstream])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn countersign-mcp http");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("the proxy printed its address")
            .expect("read")
            .expect("a line");
        let url = line.rsplit(' ').next().expect("url").to_owned();
        assert!(url.starts_with("http://127.0.0.1:") && url.ends_with("/mcp"), "{line}");
        Running { child, url }
    }
}

/// rmcp's client over streamable HTTP.
pub async fn rmcp_http_client(url: &str) -> (RunningService<RoleClient, Recorder>, Recorder) {
    let recorder = Recorder::default();
    let transport = rmcp::transport::StreamableHttpClientTransport::from_uri(url.to_owned());
    let client = recorder.clone().serve(transport).await.expect("initialize over HTTP");
    (client, recorder)
}

/// A raw streamable-HTTP session: exact messages in, every message of the answer out (JSON or SSE).
#[derive(Debug)]
pub struct RawHttp {
    http: reqwest::Client,
    url: String,
    session: Option<String>,
}

impl RawHttp {
    /// Initialize a session at `url`.
    pub async fn start(url: &str) -> RawHttp {
        let mut raw = RawHttp { http: reqwest::Client::new(), url: url.to_owned(), session: None };
        let (_, headers, _) = raw
            .post_with(&json!({"jsonrpc": "2.0", "id": "init", "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}})
            .to_string(), &[])
            .await;
        raw.session = headers.get("mcp-session-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
        raw.post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string()).await;
        raw
    }

    /// POST a body as it is: the status and the messages of the answer.
    pub async fn post(&self, body: &str) -> (u16, Vec<Value>) {
        let (status, _, messages) = self.post_with(body, &[]).await;
        (status, messages)
    }

    /// POST with extra headers.
    pub async fn post_with(
        &self,
        body: &str,
        extra: &[(&str, &str)],
    ) -> (u16, reqwest::header::HeaderMap, Vec<Value>) {
        let mut req = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .body(body.to_owned());
        if let Some(s) = &self.session {
            req = req.header("mcp-session-id", s);
        }
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let resp =
            tokio::time::timeout(Duration::from_secs(30), req.send()).await.expect("answered").expect("post");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        let messages = text
            .lines()
            .filter_map(|l| l.strip_prefix("data:").map(str::trim).or(Some(l)))
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .flat_map(|v| match v {
                Value::Array(items) => items,
                v => vec![v],
            })
            .collect();
        (status, headers, messages)
    }
}
