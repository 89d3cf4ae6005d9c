//! `countersign-mcp stdio` between a real MCP client and the real `server-everything`, against the real gateway:
//! what passes unchanged, what is allowed, denied or refused, and that it fails closed.

use countersign_blackbox::mcp::{rmcp_client, server_everything, text_of, Raw, Rig};
use rmcp::model::CallToolRequestParams;
use serde_json::{json, Map, Value};
use tokio::process::Command;

fn args(v: Value) -> Map<String, Value> {
    v.as_object().expect("object").clone()
}

async fn tools_list(cmd: Command) -> Value {
    let mut raw = Raw::start(cmd).await;
    // server-everything registers more tools once initialized; give it a moment, the same for both.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    raw.send(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})).await;
    let answer = raw.answer(&json!(2), 30).await;
    raw.close().await;
    answer
}

#[tokio::test]
async fn tools_list_passes_unchanged() {
    let rig = Rig::start("");
    let mut direct = Command::new("node");
    direct.arg(server_everything()).arg("stdio");
    let (direct, proxied) = (tools_list(direct).await, tools_list(rig.stdio()).await);
    let tools = direct["result"]["tools"].as_array().expect("tools");
    assert!(tools.len() >= 10, "{direct}");
    // A field rmcp's typed model does not know survives: the relay does not round-trip through types.
    assert!(tools.iter().any(|t| t.get("execution").is_some()), "the direct list has an `execution` field");
    assert_eq!(proxied, direct, "the list through the proxy is the server's own");
}

#[tokio::test]
async fn an_allowed_call_returns_the_servers_result() {
    let rig = Rig::start("");
    let (client, _) = rmcp_client(rig.stdio()).await;
    let r = client
        .call_tool(CallToolRequestParams::new("get-sum").with_arguments(args(json!({"a": 2, "b": 40}))))
        .await
        .expect("call");
    assert_ne!(r.is_error, Some(true), "{r:?}");
    assert_eq!(text_of(&r), "The sum of 2 and 40 is 42.");
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn a_denied_call_is_an_error_result_with_the_reason() {
    let rig = Rig::start("");
    let (client, _) = rmcp_client(rig.stdio()).await;
    let r = client
        .call_tool(CallToolRequestParams::new("get-env"))
        .await
        .expect("a tool result, not a transport error");
    assert_eq!(r.is_error, Some(true), "{r:?}");
    let text = text_of(&r);
    assert!(text.contains("denied") && text.contains("the server's environment holds secrets"), "{text}");
    assert!(!text.contains("COUNTERSIGN") && !text.contains("PATH"), "the server never ran: {text}");
    // A tool the config does not name still goes to the gateway (whose test policy denies it).
    let r = client.call_tool(CallToolRequestParams::new("get-tiny-image")).await.expect("result");
    assert_eq!(r.is_error, Some(true));
    assert!(text_of(&r).contains("unknown test purpose"), "{}", text_of(&r));
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn the_gateway_down_fails_closed() {
    let rig = Rig::start("");
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    rig.point_at(&url, "");
    let (client, _) = rmcp_client(rig.stdio()).await;
    for (tool, a) in [("echo", json!({"message": "must not run"})), ("get-sum", json!({"a": 1, "b": 2}))] {
        let r =
            client.call_tool(CallToolRequestParams::new(tool).with_arguments(args(a))).await.expect("result");
        assert_eq!(r.is_error, Some(true), "{r:?}");
        let text = text_of(&r);
        assert!(text.contains("could not be reached") && text.contains("Nothing was forwarded"), "{text}");
        assert!(!text.contains("Echo:") && !text.contains("The sum"), "{text}");
    }
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn look_alike_messages_never_reach_the_server() {
    let rig = Rig::start("");
    let mut raw = Raw::start(rig.stdio()).await;
    // Two `name`s: a lenient parser keeps the last, another the first. Refused, whatever either would pick.
    raw.send_line(r#"{"jsonrpc":"2.0","id":10,"method":"tools/call","params":{"name":"get-sum","arguments":{"a":1,"b":2},"name":"echo"}}"#).await;
    let a = raw.answer(&json!(10), 10).await;
    assert_eq!(a["error"]["code"], -32600, "{a}");
    assert!(a["error"]["message"].as_str().unwrap_or_default().contains("duplicate key"), "{a}");
    // The method spelled with a JSON escape is still tools/call to the proxy: held, and here denied.
    raw.send_line(r#"{"jsonrpc":"2.0","id":11,"method":"tools\/call","params":{"name":"get-env"}}"#).await;
    assert_eq!(raw.answer(&json!(11), 10).await["result"]["isError"], true);
    // A batch holding a tool call is refused whole; a tool call sent as a notification is dropped.
    raw.send(&json!([{"jsonrpc": "2.0", "id": 12, "method": "tools/call", "params": {"name": "get-sum", "arguments": {"a": 1, "b": 1}}},
        {"jsonrpc": "2.0", "id": 13, "method": "ping"}])).await;
    assert_eq!(raw.answer(&json!(12), 10).await["error"]["code"], -32600);
    assert_eq!(raw.answer(&json!(13), 10).await["error"]["code"], -32600);
    raw.send(&json!({"jsonrpc": "2.0", "method": "tools/call", "params": {"name": "echo", "arguments": {"message": "sneaky"}}})).await;
    // Arguments that are not an object are refused before the gateway.
    raw.send(&json!({"jsonrpc": "2.0", "id": 14, "method": "tools/call", "params": {"name": "echo", "arguments": ["x"]}})).await;
    assert_eq!(raw.answer(&json!(14), 10).await["error"]["code"], -32602);
    raw.drain(2).await;
    let ran = raw.seen.iter().any(|m| {
        let t = m["result"]["content"][0]["text"].as_str().unwrap_or_default();
        t.starts_with("Echo:") || t.starts_with("The sum")
    });
    assert!(!ran, "the server ran a call: {:?}", raw.seen);
    // The session still works.
    raw.send(&json!({"jsonrpc": "2.0", "id": 15, "method": "ping"})).await;
    assert!(raw.answer(&json!(15), 10).await.get("result").is_some());
    raw.close().await;
}
