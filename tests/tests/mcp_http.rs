//! `countersign-mcp http` in front of the real `server-everything` in its streamable-HTTP mode, against the
//! real gateway: the same guarantees as over stdio, plus what an HTTP endpoint must refuse.
//! Needs the private session of `scripts/with-session.sh` (the console approves on the real keyring).

use std::time::Duration;

use countersign_blackbox::bin;
use countersign_blackbox::console::Console;
use countersign_blackbox::mcp::{
    everything_http, held_request, rmcp_http_client, settles_as, text_of, RawHttp, Rig,
};
use rmcp::model::{CallToolRequest, CallToolRequestParams, ClientRequest};
use rmcp::service::PeerRequestOptions;
use serde_json::{json, Map, Value};

fn params(tool: &str, args: Value) -> CallToolRequestParams {
    let args: Map<String, Value> = args.as_object().expect("object").clone();
    CallToolRequestParams::new(tool.to_owned()).with_arguments(args)
}

async fn tools_list(url: &str) -> Value {
    let raw = RawHttp::start(url).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (code, messages) =
        raw.post(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}).to_string()).await;
    assert_eq!(code, 200);
    messages.into_iter().find(|m| m["id"] == 2).expect("the tools/list answer")
}

#[tokio::test(flavor = "multi_thread")]
async fn tools_list_passes_unchanged_over_http() {
    let rig = Rig::start("");
    let server = everything_http().await;
    let proxy = rig.http(&server.url).await;
    let (direct, proxied) = (tools_list(&server.url).await, tools_list(&proxy.url).await);
    assert!(direct["result"]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .any(|t| t.get("execution").is_some()));
    assert_eq!(proxied, direct);
}

#[tokio::test(flavor = "multi_thread")]
async fn allowed_denied_and_approved_calls_over_http() {
    let rig = Rig::start("[approval]\nprogress_interval_ms = 300\n");
    let console = Console::new();
    console.connect(&rig.gw, "alice@acme.example").await;
    let server = everything_http().await;
    let proxy = rig.http(&server.url).await;
    let (client, recorder) = rmcp_http_client(&proxy.url).await;

    let r = client.call_tool(params("get-sum", json!({"a": 20, "b": 22}))).await.expect("result");
    assert_eq!(text_of(&r), "The sum of 20 and 22 is 42.");

    let r = client.call_tool(params("get-env", json!({}))).await.expect("result");
    assert_eq!(r.is_error, Some(true));
    assert!(text_of(&r).contains("the server's environment holds secrets"), "{}", text_of(&r));

    let message = "wire £100 to \u{202E}moc.evil ‘quoted’ \\n";
    let peer = client.peer().clone();
    let args = json!({"message": message});
    let pending = tokio::spawn(async move { peer.call_tool(params("echo", args)).await.expect("result") });
    let id = held_request(&console).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    console.ok(&["approve", &id]);
    let r = tokio::time::timeout(Duration::from_secs(30), pending).await.expect("answered").expect("join");
    assert_eq!(text_of(&r), format!("Echo: {message}"));
    let progress = recorder.progress.lock().expect("lock").clone();
    assert!(
        progress.iter().any(|p| p
            .message
            .as_deref()
            .unwrap_or_default()
            .starts_with("Waiting for 1 approver")),
        "{progress:?}"
    );
    client.cancel().await.expect("close");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_call_over_http_is_withdrawn() {
    let rig = Rig::start("");
    let console = Console::new();
    console.connect(&rig.gw, "alice@acme.example").await;
    let server = everything_http().await;
    let proxy = rig.http(&server.url).await;
    let (client, _) = rmcp_http_client(&proxy.url).await;
    let request =
        ClientRequest::CallToolRequest(CallToolRequest::new(params("echo", json!({"message": "stop"}))));
    let handle = client
        .peer()
        .send_cancellable_request(request, PeerRequestOptions::no_options())
        .await
        .expect("sent");
    let id = held_request(&console).await;
    handle.cancel(Some("stop".into())).await.expect("cancel");
    assert_eq!(settles_as(&rig.gw, &rig.agent, &id, "withdrawn").await, "withdrawn");
    client.cancel().await.expect("close");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_http_proxy_fails_closed_and_refuses_what_it_must() {
    let rig = Rig::start("");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let down = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    rig.point_at(&down, "");
    let server = everything_http().await;
    let proxy = rig.http(&server.url).await;
    let raw = RawHttp::start(&proxy.url).await;

    // The gateway down: an error result, the server never runs the call.
    let call = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "echo", "arguments": {"message": "x"}}});
    let (code, messages) = raw.post(&call.to_string()).await;
    assert_eq!(code, 200);
    let answer = messages.iter().find(|m| m["id"] == 5).expect("answer");
    assert_eq!(answer["result"]["isError"], true, "{answer}");
    assert!(answer["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .contains("could not be reached"));

    // Duplicate keys: refused before anything else looks at them.
    let (code, messages) = raw
        .post(r#"{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"get-sum","name":"echo","arguments":{}}}"#)
        .await;
    assert_eq!(code, 400);
    assert!(
        messages[0]["error"]["message"].as_str().unwrap_or_default().contains("duplicate key"),
        "{messages:?}"
    );

    // A web page of another origin (DNS rebinding) is refused; this machine's origin is not.
    let ping = json!({"jsonrpc": "2.0", "id": 7, "method": "ping"}).to_string();
    let (code, _, _) = raw.post_with(&ping, &[("origin", "http://evil.example")]).await;
    assert_eq!(code, 403);
    // A rebinding page's request names the page's host, with or without an Origin.
    let status_for_host = |host: &'static str| {
        let (addr, ping) = (
            proxy.url.trim_start_matches("http://").split('/').next().unwrap_or_default().to_owned(),
            ping.clone(),
        );
        async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut tcp = tokio::net::TcpStream::connect(&addr).await.expect("connect");
            let req = format!(
                "POST /mcp HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{ping}",
                ping.len()
            );
            tcp.write_all(req.as_bytes()).await.expect("write");
            let mut answer = String::new();
            let _ = tcp.read_to_string(&mut answer).await;
            answer.lines().next().unwrap_or_default().to_owned()
        }
    };
    let line = status_for_host("evil.example").await;
    assert!(line.contains(" 403 "), "{line}");
    let line = status_for_host("localhost").await;
    assert!(!line.contains(" 403 "), "this machine's name is not refused: {line}");
    let (code, _, messages) = raw.post_with(&ping, &[("origin", "http://localhost:3000")]).await;
    assert_eq!(
        (code, messages.iter().any(|m| m["id"] == 7 && m.get("result").is_some())),
        (200, true),
        "{messages:?}"
    );

    // Listening beyond loopback needs --public: whoever reaches it acts as this agent.
    let out = std::process::Command::new(bin("countersign-mcp"))
        .arg("http")
        .arg("--config")
        .arg(&rig.config)
        .args(["--listen", "0.0.0.0:0", "--upstream", &server.url])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("refusing to listen on 0.0.0.0:0"));
}
