//! Attacks on `countersign-mcp`: bytes the proxy reads as one harmless message but a real MCP server's own
//! parser reads as an unapproved `tools/call`, held calls whose client cancels or leaves, and what an HTTP
//! endpoint must keep refusing. Each test fails if the attack gets a call, or a cancel, past the proxy.
//! Needs node and python3, and the servers `scripts/setup.sh` installs (tests/mcp).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use countersign_blackbox::bin;
use countersign_blackbox::console::Console;
use countersign_blackbox::mcp::{held_request, settles_as, Raw, Rig};
use serde_json::{json, Value};
use tokio::process::{Child, Command};

/// A stdio MCP server that frames its input exactly as the MCP Python SDK's `stdio_server` does (a UTF-8
/// `TextIOWrapper` read line by line, so with universal newlines: `\r` ends a line too), and records every
/// request it receives, one JSON line each, in the file named by its first argument.
const PYTHON_SDK_FRAMING: &str = r#"
import io, json, sys
log = sys.argv[1]
stdin = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace")
while line := stdin.readline():
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if not isinstance(m, dict) or "id" not in m or "method" not in m:
        continue
    with open(log, "a") as f:
        f.write(json.dumps(m) + "\n")
    if m["method"] == "initialize":
        result = {"protocolVersion": m["params"]["protocolVersion"], "capabilities": {"tools": {}},
                  "serverInfo": {"name": "python-sdk-framing", "version": "1"}}
    elif m["method"] == "tools/call":
        result = {"content": [{"type": "text", "text": "ran"}]}
    else:
        result = {}
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": m["id"], "result": result}) + "\n")
    sys.stdout.flush()
"#;

/// A streamable-HTTP MCP server built the way the TypeScript SDK documents it: `createMcpExpressApp()`
/// (which installs `express.json()`) and `transport.handleRequest(req, res, req.body)`. Its one tool,
/// `smuggled`, appends a line to the file named by the second argument each time it runs.
fn express_server_js(sdk: &Path) -> String {
    let esm = sdk.join("dist/esm/server");
    format!(
        r#"
import {{ appendFileSync }} from 'node:fs';
import {{ McpServer }} from '{mcp}';
import {{ StreamableHTTPServerTransport }} from '{transport}';
import {{ createMcpExpressApp }} from '{express}';
const [port, log] = process.argv.slice(2);
const app = createMcpExpressApp();
app.post('/mcp', async (req, res) => {{
  const server = new McpServer({{ name: 'express-json', version: '1' }});
  server.registerTool('smuggled', {{ description: 'records each call' }}, async () => {{
    appendFileSync(log, 'ran\n');
    return {{ content: [{{ type: 'text', text: 'ran' }}] }};
  }});
  const transport = new StreamableHTTPServerTransport({{ sessionIdGenerator: undefined, enableJsonResponse: true }});
  res.on('close', () => {{ transport.close(); server.close(); }});
  await server.connect(transport);
  await transport.handleRequest(req, res, req.body);
}});
app.listen(Number(port), '127.0.0.1');
"#,
        mcp = esm.join("mcp.js").display(),
        transport = esm.join("streamableHttp.js").display(),
        express = esm.join("express.js").display(),
    )
}

fn sdk_dir() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("mcp/node_modules/@modelcontextprotocol/sdk");
    assert!(p.exists(), "{} is missing: run `source scripts/setup.sh && install_mcp_servers`", p.display());
    p
}

/// The lines a recording server wrote (none if it never ran a tool).
fn recorded(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log).unwrap_or_default().lines().map(str::to_owned).collect()
}

/// The requests a recording Python server received.
fn received(log: &Path) -> Vec<Value> {
    recorded(log).iter().map(|l| serde_json::from_str(l).expect("a JSON line")).collect()
}

/// The proxy over stdio in front of the recording Python server, and the server's log.
async fn python_behind_proxy(rig: &Rig) -> (Raw, PathBuf) {
    let log = rig.dir.path().join("requests.log");
    let mut cmd = Command::new(bin("countersign-mcp"));
    cmd.arg("stdio").arg("--config").arg(&rig.config).arg("--").arg("python3").arg("-c");
    cmd.arg(PYTHON_SDK_FRAMING).arg(&log);
    (Raw::start(cmd).await, log)
}

/// The express server on a free loopback port, recording into `log`: the child (killed when dropped) and its URL.
async fn express_server(dir: &Path, log: &Path) -> (Child, String) {
    let script = dir.join("express-server.mjs");
    std::fs::write(&script, express_server_js(&sdk_dir())).expect("write the server");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let child = Command::new("node")
        .arg(&script)
        .arg(port.to_string())
        .arg(log)
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn node");
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return (child, format!("http://127.0.0.1:{port}/mcp"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the express server did not listen on {port}");
}

/// POST `body` with this `content-type`; the status and the JSON answer.
async fn post(url: &str, content_type: &str, body: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(url)
        .header("content-type", content_type)
        .header("accept", "application/json, text/event-stream")
        .body(body.to_owned())
        .send()
        .await
        .expect("post");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// UTF-7 for a string, as `iconv-lite` (and so `express.json()` with `charset=utf-7`) decodes it: one
/// `+…-` block of modified base64 over its UTF-16BE code units.
fn utf7_block(s: &str) -> String {
    use base64::Engine;
    let units: Vec<u8> = s.encode_utf16().flat_map(u16::to_be_bytes).collect();
    format!("+{}-", base64::engine::general_purpose::STANDARD_NO_PAD.encode(units))
}

#[tokio::test]
async fn a_carriage_return_cannot_split_one_message_into_a_tool_call_for_a_python_server() {
    let rig = Rig::start("");
    let (mut raw, log) = python_behind_proxy(&rig).await;

    // One strict JSON object to the proxy (a `ping`; `\r` is whitespace), three lines to a Python server:
    // `{…"x":`, the tool call, `}`. Only the middle one parses, and it is a tool call nobody approved.
    let smuggled = json!({"jsonrpc": "2.0", "id": "smuggled", "method": "tools/call",
        "params": {"name": "echo", "arguments": {"message": "never approved"}}});
    raw.send_line(&format!(r#"{{"jsonrpc":"2.0","id":"p","method":"ping","x":{}{smuggled}{}}}"#, '\r', '\r'))
        .await;
    let pong = raw.answer(&json!("p"), 10).await;
    assert_eq!(pong["result"], json!({}), "the ping itself still reaches the server: {pong}");
    raw.drain(1).await;
    let calls: Vec<Value> = received(&log).into_iter().filter(|m| m["method"] == "tools/call").collect();
    assert_eq!(calls, Vec::<Value>::new(), "the server ran a tool call nobody approved");
    assert!(!raw.seen.iter().any(|m| m["id"] == "smuggled"), "{:?}", raw.seen);
    raw.close().await;
}

#[tokio::test]
async fn a_utf7_charset_cannot_turn_a_ping_into_a_tool_call_for_an_express_server() {
    let rig = Rig::start("");
    let log = rig.dir.path().join("calls.log");
    let (_server, server_url) = express_server(rig.dir.path(), &log).await;
    let proxy = rig.http(&server_url).await;

    // Control: the server does run `smuggled` when asked directly, so the log below can show an attack.
    let direct = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "smuggled", "arguments": {}}});
    let (status, answer) = post(&server_url, "application/json", &direct.to_string()).await;
    assert_eq!((status, &answer["result"]["content"][0]["text"]), (200, &json!("ran")), "{answer}");
    std::fs::remove_file(&log).expect("the control call ran the tool");

    // In UTF-8 (what the proxy reads) a ping with a string `params.z`; in UTF-7 (what express.json() decodes
    // when the client names that charset) the string closes early, and a second `method` and `params`
    // (JSON.parse keeps the last) make it a tools/call.
    let inner = r#""},"method":"tools/call","params":{"name":"smuggled","arguments":{},"z":""#;
    let body =
        format!(r#"{{"jsonrpc":"2.0","id":"p","method":"ping","params":{{"z":"{}"}}}}"#, utf7_block(inner));
    let (status, answer) = post(&proxy.url, "application/json; charset=utf-7", &body).await;
    assert_eq!(recorded(&log), Vec::<String>::new(), "the server ran a tool call nobody approved: {answer}");
    assert_eq!((status, &answer["result"]), (200, &json!({})), "the ping is answered as a ping: {answer}");

    // The proxy states the body's type itself now, so it must still refuse what the server refused: a web
    // page's no-preflight "simple request" (text/plain) stays a 415, as the SDK's own check answers it.
    let ping = json!({"jsonrpc": "2.0", "id": "q", "method": "ping"}).to_string();
    assert_eq!(post(&server_url, "text/plain", &ping).await.0, 415, "the server's own answer");
    for content_type in ["text/plain", "application/x-www-form-urlencoded", "application/jsonx", ""] {
        assert_eq!(post(&proxy.url, content_type, &ping).await.0, 415, "{content_type:?}");
    }
    assert_eq!(post(&proxy.url, "Application/JSON ; charset=UTF-8", &ping).await.0, 200);
}

#[tokio::test]
async fn a_key_that_only_a_case_folding_server_reads_as_method_is_refused_over_stdio() {
    let rig = Rig::start("");
    let (mut raw, log) = python_behind_proxy(&rig).await;
    // Go's encoding/json (mcp-go, go-sdk before CVE-2026-27896) matches `Method` to `method`, last one wins:
    // a tools/call there, a ping here.
    for (id, line) in [
        (
            "p1",
            r#"{"jsonrpc":"2.0","id":"p1","method":"ping","Method":"tools/call","params":{"name":"echo","arguments":{"message":"never approved"}}}"#,
        ),
        (
            "p2",
            r#"{"jsonrpc":"2.0","id":"p2","METHOD":"tools/call","params":{"name":"echo","arguments":{}}}"#,
        ),
        ("p3", r#"{"jsonrpc":"2.0","id":"p3","method":"ping","param\u017f":{"name":"echo"}}"#),
    ] {
        raw.send_line(line).await;
        let answer = raw.answer(&json!(id), 10).await;
        assert_eq!(answer["error"]["code"], json!(-32600), "refused: {answer}");
    }
    raw.send(&json!({"jsonrpc": "2.0", "id": "after", "method": "ping"})).await;
    assert_eq!(raw.answer(&json!("after"), 10).await["result"], json!({}), "the session goes on");
    let ids: Vec<Value> = received(&log).into_iter().map(|m| m["id"].clone()).collect();
    assert_eq!(ids, vec![json!("init"), json!("after")], "none of the look-alikes reached the server");
    raw.close().await;
}

#[tokio::test]
async fn a_key_that_only_a_case_folding_server_reads_as_a_tool_name_is_refused_over_http() {
    let rig = Rig::start("");
    let log = rig.dir.path().join("calls.log");
    let (_server, server_url) = express_server(rig.dir.path(), &log).await;
    let proxy = rig.http(&server_url).await;
    // `get-sum` is allowed by the policy; a Go server would run `Name` instead.
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "get-sum", "Name": "smuggled", "arguments": {"a": 1, "b": 2}}});
    let (status, answer) = post(&proxy.url, "application/json", &body.to_string()).await;
    assert_eq!((status, &answer["error"]["code"]), (400, &json!(-32600)), "refused: {answer}");
    assert!(answer["error"]["message"].as_str().unwrap_or_default().contains("\"Name\""), "{answer}");
    let body = json!({"jsonrpc": "2.0", "id": 2, "method": "ping", "Method": "tools/call",
        "params": {"name": "smuggled"}});
    let (status, answer) = post(&proxy.url, "application/json", &body.to_string()).await;
    assert_eq!((status, &answer["error"]["code"]), (400, &json!(-32600)), "refused: {answer}");
    assert_eq!(recorded(&log), Vec::<String>::new());
}

/// The gateway request a held call reports in its progress notifications for `token`, once one arrives.
async fn reported_request(raw: &mut Raw, token: &str) -> String {
    for _ in 0..20 {
        let found = raw.seen.iter().find_map(|m| {
            let p = &m["params"];
            let text = p["message"].as_str().filter(|_| p["progressToken"] == token)?;
            Some(text.rsplit_once("(request ")?.1.split(')').next()?.to_owned())
        });
        if let Some(id) = found {
            return id;
        }
        raw.drain(1).await;
    }
    panic!("no progress for {token}; seen {:?}", raw.seen);
}

fn held_echo(id: u64, token: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "echo",
        "arguments": {"message": token}, "_meta": {"progressToken": token}}})
}

#[tokio::test]
async fn a_cancelled_calls_id_reused_at_once_still_names_the_new_call() {
    let rig = Rig::start("[approval]\nprogress_interval_ms = 200\n");
    let mut raw = Raw::start(rig.stdio()).await;
    raw.send(&held_echo(7, "first")).await;
    let first = reported_request(&mut raw, "first").await;
    // Cancel the first call and reuse its id before the proxy has withdrawn the first at the gateway.
    raw.send(&json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 7}}))
        .await;
    raw.send(&held_echo(7, "second")).await;
    let second = reported_request(&mut raw, "second").await;
    assert_ne!(first, second);
    assert_eq!(settles_as(&rig.gw, &rig.agent, &first, "withdrawn").await, "withdrawn");
    // The first call's end must not forget the second: cancelling id 7 now withdraws the second.
    raw.send(&json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 7}}))
        .await;
    assert_eq!(settles_as(&rig.gw, &rig.agent, &second, "withdrawn").await, "withdrawn");
    raw.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_json_only_client_that_goes_away_has_its_held_call_withdrawn() {
    let rig = Rig::start("");
    let console = Console::new();
    console.connect(&rig.gw, "alice@acme.example").await;
    let log = rig.dir.path().join("calls.log");
    let (_server, server_url) = express_server(rig.dir.path(), &log).await;
    let proxy = rig.http(&server_url).await;
    // A client that accepts only JSON gets no bytes while its call is held: nothing the proxy writes can
    // fail and tell it the client left. Closing the connection must still withdraw the call.
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"message": "I left"}}});
    let url = proxy.url.clone();
    let pending = tokio::spawn(async move {
        reqwest::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body(call.to_string())
            .send()
            .await
    });
    let id = held_request(&console).await;
    pending.abort();
    let _ = pending.await;
    assert_eq!(settles_as(&rig.gw, &rig.agent, &id, "withdrawn").await, "withdrawn");
}
