//! Held tool calls through `countersign-mcp stdio`: approved in the real console on the real keyring and
//! forwarded with exactly the approved arguments, denied, expired, and withdrawn when the client cancels.
//! Needs the private session of `scripts/with-session.sh` (the console's key lives in gnome-keyring).

use std::time::Duration;

use countersign_blackbox::console::Console;
use countersign_blackbox::mcp::{held_request, rmcp_client, settles_as, text_of, Recorder, Rig};
use countersign_blackbox::status;
use rmcp::model::{CallToolRequest, CallToolRequestParams, CallToolResult, ClientRequest};
use rmcp::service::{Peer, PeerRequestOptions, RoleClient};
use serde_json::{json, Map, Value};

/// A message an approver must see and the server must receive exactly: quotes, escapes, bidi and
/// invisible characters, astral emoji, a control character.
const TRICKY: &str =
    "héllo \"quoted\" \\back\\ \u{202E}txt.exe \u{200B}zero-width 🙂 tab\tnew\nline \u{0007}";

fn echo(message: &str) -> CallToolRequestParams {
    let args: Map<String, Value> = json!({"message": message}).as_object().expect("object").clone();
    CallToolRequestParams::new("echo").with_arguments(args)
}

fn call(peer: &Peer<RoleClient>, params: CallToolRequestParams) -> tokio::task::JoinHandle<CallToolResult> {
    let peer = peer.clone();
    tokio::spawn(async move { peer.call_tool(params).await.expect("a tool result") })
}

async fn connected() -> (Rig, Console) {
    let rig = Rig::start("[approval]\nprogress_interval_ms = 300\n");
    let console = Console::new();
    console.connect(&rig.gw, "alice@acme.example").await;
    (rig, console)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_held_call_is_approved_in_the_console_and_forwarded_exactly() {
    let (rig, console) = connected().await;
    let (client, recorder): (_, Recorder) = rmcp_client(rig.stdio()).await;
    let pending = call(client.peer(), echo(TRICKY));
    let id = held_request(&console).await;
    // The approver sees the arguments exactly (escaped for the terminal, never interpreted).
    let shown = console.json(&["show", &id]);
    assert_eq!(shown["claims"]["actions"][0]["args"]["message"], TRICKY, "{shown}");
    assert_eq!(shown["claims"]["actions"][0]["tool"], "echo");
    assert_eq!(shown["claims"]["data"]["class"], "confidential");
    assert_eq!(shown["claims"]["identity"]["on_behalf_of"][0]["sub"], "jo@acme.example");
    tokio::time::sleep(Duration::from_millis(800)).await;
    console.ok(&["approve", &id]);
    let r = tokio::time::timeout(Duration::from_secs(30), pending).await.expect("answered").expect("join");
    assert_ne!(r.is_error, Some(true), "{r:?}");
    assert_eq!(text_of(&r), format!("Echo: {TRICKY}"), "the server received exactly the approved message");
    let progress = recorder.progress.lock().expect("lock").clone();
    assert!(!progress.is_empty(), "progress was reported while held");
    let said = progress[0].message.clone().unwrap_or_default();
    assert!(said.starts_with("Waiting for 1 approver, expires in ") && said.contains(&id), "{said}");
    // The grant was used once: the gateway counts it.
    assert_eq!(status(&rig.gw, &rig.agent, &id, 0).await["state"], "approved");
    client.cancel().await.expect("close");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_approvers_denial_reaches_the_model_with_the_reason() {
    let (rig, console) = connected().await;
    let (client, _) = rmcp_client(rig.stdio()).await;
    let pending = call(client.peer(), echo("export everything"));
    let id = held_request(&console).await;
    console.ok(&["deny", &id, "--reason", "not during the freeze"]);
    let r = tokio::time::timeout(Duration::from_secs(30), pending).await.expect("answered").expect("join");
    assert_eq!(r.is_error, Some(true));
    let text = text_of(&r);
    assert!(text.contains("an approver denied this tool call: not during the freeze"), "{text}");
    assert!(!text.contains("Echo:"), "{text}");
    client.cancel().await.expect("close");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_held_call_that_expires_says_it_timed_out() {
    let rig = Rig::start("[approval]\nttl_s = 5\nprogress_interval_ms = 500\n");
    let (client, _) = rmcp_client(rig.stdio()).await;
    let started = std::time::Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(30), client.call_tool(echo("too late")))
        .await
        .expect("answered")
        .expect("result");
    assert!(started.elapsed() >= Duration::from_secs(4), "held until it expired");
    assert_eq!(r.is_error, Some(true));
    let text = text_of(&r);
    assert!(text.contains("timed out waiting for approval") && !text.contains("denied"), "{text}");
    client.cancel().await.expect("close");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_call_is_withdrawn_at_the_gateway() {
    let (rig, console) = connected().await;
    let (client, _) = rmcp_client(rig.stdio()).await;
    let request = ClientRequest::CallToolRequest(CallToolRequest::new(echo("changed my mind")));
    let handle = client
        .peer()
        .send_cancellable_request(request, PeerRequestOptions::no_options())
        .await
        .expect("sent");
    let id = held_request(&console).await;
    handle.cancel(Some("the user pressed stop".into())).await.expect("cancel sent");
    assert_eq!(settles_as(&rig.gw, &rig.agent, &id, "withdrawn").await, "withdrawn");
    console.ok(&["sync"]);
    assert!(console.pending_ids().is_empty(), "the approver no longer sees it");
    // The session goes on: a later call is answered.
    let r = client
        .call_tool(
            CallToolRequestParams::new("get-sum")
                .with_arguments(json!({"a": 1, "b": 1}).as_object().expect("o").clone()),
        )
        .await
        .expect("result");
    assert_eq!(text_of(&r), "The sum of 1 and 1 is 2.");
    client.cancel().await.expect("close");
}

#[tokio::test(flavor = "multi_thread")]
async fn closing_the_client_withdraws_what_it_left_held() {
    let (rig, console) = connected().await;
    let (client, _) = rmcp_client(rig.stdio()).await;
    let _pending = call(client.peer(), echo("left behind"));
    let id = held_request(&console).await;
    client.cancel().await.expect("close");
    assert_eq!(settles_as(&rig.gw, &rig.agent, &id, "withdrawn").await, "withdrawn");
}
