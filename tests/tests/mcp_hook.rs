//! `countersign-mcp hook claude-code` as Claude Code runs it: recorded PreToolUse events on stdin, the real
//! gateway deciding, and only exit 2 blocking — allowed, denied, held then approved or denied, timed out,
//! expired, the gateway down, and events or configs the hook must refuse without submitting anything.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use countersign_blackbox::mcp::Rig;
use countersign_blackbox::{bin, pending, post_decision, verify_request};
use countersign_protocol::Verdict;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// A recorded hook event, `tests/fixtures/hooks/NAME.json`, as bytes.
fn fixture(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("fixtures/hooks/{name}.json"));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The `tool_input` of a recorded event.
fn input_of(event: &str) -> Value {
    serde_json::from_str::<Value>(event).expect("fixture is JSON")["tool_input"].clone()
}

/// What one run of the hook did.
#[derive(Debug)]
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
}

impl Ran {
    /// The decision JSON of an allow; panics unless the hook exited 0 with exactly one JSON object.
    fn allowed(&self) -> Value {
        assert_eq!(self.code, Some(0), "{self:?}");
        let v: Value = serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout {e}: {self:?}"));
        assert_eq!(v["hookSpecificOutput"]["hookEventName"], "PreToolUse", "{v}");
        assert_eq!(v["hookSpecificOutput"]["permissionDecision"], "allow", "{v}");
        v["hookSpecificOutput"].clone()
    }

    /// The reason of a block; panics unless the hook exited 2 with a reason and no stdout.
    fn blocked(&self) -> &str {
        assert_eq!(self.code, Some(2), "only exit 2 blocks: {self:?}");
        assert!(self.stdout.is_empty(), "a block says nothing on stdout: {self:?}");
        assert!(self.stderr.starts_with("Countersign"), "the reason for the model: {self:?}");
        &self.stderr
    }
}

/// Run `countersign-mcp hook claude-code --config CONFIG` with `event` on stdin.
async fn hook(config: PathBuf, event: String) -> Ran {
    let started = Instant::now();
    let mut child = Command::new(bin("countersign-mcp"))
        .args(["hook", "claude-code", "--config"])
        .arg(&config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the hook");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(event.as_bytes()).await.expect("write the event");
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the hook answers within 60 s")
        .expect("wait");
    Ran {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("utf-8 stderr"),
        took: started.elapsed(),
    }
}

/// Every request the gateway stored, as (state, policy id), read from its database with `sqlite3`: the
/// agent's API cannot list requests, and the approvers' list holds only those a human must decide.
fn stored(rig: &Rig) -> Vec<(String, String)> {
    let out = std::process::Command::new("sqlite3")
        .arg(rig.gw.data.join("gateway.db"))
        .arg("SELECT state || ' ' || policy_id FROM step_ups ORDER BY iat, rowid")
        .output()
        .expect("run sqlite3");
    assert!(out.status.success(), "sqlite3: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| {
            let (state, policy) = l.split_once(' ').expect("state policy");
            (state.to_owned(), policy.to_owned())
        })
        .collect()
}

fn pair(state: &str, policy: &str) -> (String, String) {
    (state.to_owned(), policy.to_owned())
}

#[tokio::test]
async fn an_allowed_call_runs_with_exactly_its_input() {
    let rig = Rig::start("");
    for (name, policy) in [("edit", "test.hook.edit"), ("mcp", "test.hook.issue")] {
        let event = fixture(name);
        let out = hook(rig.config.clone(), event.clone()).await.allowed();
        assert_eq!(out["updatedInput"], input_of(&event), "{name}: what runs is exactly what was allowed");
        let reason = out["permissionDecisionReason"].as_str().unwrap_or_default();
        assert!(reason.starts_with("Countersign: allowed by the policy (request "), "{name}: {reason}");
        assert_eq!(stored(&rig).last(), Some(&pair("approved", policy)), "{name}");
    }
}

#[tokio::test]
async fn a_denied_call_is_blocked_with_the_policys_reason() {
    let rig = Rig::start("");
    let ran = hook(rig.config.clone(), fixture("write")).await;
    let reason = ran.blocked();
    assert!(
        reason.contains(
            "Countersign denied this tool call: new files need a pull request (policy test.hook.write"
        ),
        "{reason}"
    );
    assert_eq!(stored(&rig), [pair("denied", "test.hook.write")]);
}

/// The one request held for a human, once the hook has submitted it: (id, verified claims).
async fn held(rig: &Rig, approver: &countersign_blackbox::Approver) -> (String, Value) {
    for _ in 0..100 {
        if let Some(item) = pending(&rig.gw, approver).await.first() {
            let claims = verify_request(&rig.gw, item["jwt"].as_str().expect("jwt")).await;
            return (item["id"].as_str().expect("id").to_owned(), claims);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no request held at {}", rig.gw.url);
}

#[tokio::test]
async fn a_held_command_runs_once_a_human_approves_it() {
    let rig = Rig::start("[tools.Bash]\nclass = \"internal\"\noperation = \"run a shell command\"\n");
    let alice = rig.gw.approver("Alice", "alice@acme.example");
    let event = fixture("bash");
    let running = tokio::spawn(hook(rig.config.clone(), event.clone()));
    let (id, claims) = held(&rig, &alice).await;
    // The approver sees the command exactly, where it runs, and the risk the config gives Bash.
    let action = &claims["actions"][0];
    assert_eq!(action["tool"], "Bash");
    assert_eq!(action["args"], input_of(&event));
    assert_eq!(action["target"], "/home/jo/shop", "the event's cwd");
    assert_eq!(action["operation"], "run a shell command");
    assert_eq!(claims["data"]["class"], "internal", "the risk of [tools.Bash]");
    assert!(!claims.to_string().contains("5c1f0e62"), "the session id is not sent: {claims}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!running.is_finished(), "the hook waits while the request is held");
    let decision = alice.decision(&claims, Verdict::Approve, "release window", None);
    let (status, body) = post_decision(&rig.gw, &alice, &id, &decision).await;
    assert_eq!(status, 200, "{body}");
    let out = running.await.expect("join").allowed();
    assert_eq!(out["updatedInput"], input_of(&event), "the approved command, exactly");
    let reason = out["permissionDecisionReason"].as_str().expect("reason");
    assert!(reason.contains(&format!("request {id}")), "{reason}");
}

#[tokio::test]
async fn an_approvers_denial_blocks_with_the_reason() {
    let rig = Rig::start("");
    let alice = rig.gw.approver("Alice", "alice@acme.example");
    let running = tokio::spawn(hook(rig.config.clone(), fixture("bash")));
    let (id, claims) = held(&rig, &alice).await;
    let decision = alice.decision(&claims, Verdict::Deny, "not during the freeze", None);
    assert_eq!(post_decision(&rig.gw, &alice, &id, &decision).await.0, 200);
    let ran = running.await.expect("join");
    let reason = ran.blocked();
    assert!(reason.contains("an approver denied this tool call: not during the freeze"), "{reason}");
}

#[tokio::test]
async fn a_call_nobody_decides_within_max_wait_is_withdrawn_and_blocked() {
    let rig = Rig::start("[hook]\nmax_wait_s = 3\n");
    let ran = hook(rig.config.clone(), fixture("bash")).await;
    let reason = ran.blocked();
    assert!(reason.contains("timed out waiting for approval") && !reason.contains("denied"), "{reason}");
    assert!(ran.took >= Duration::from_secs(3), "it waited max_wait_s: {ran:?}");
    assert!(ran.took < Duration::from_secs(20), "and not much longer: {ran:?}");
    assert_eq!(stored(&rig), [pair("withdrawn", "test.hook.bash")], "withdrawn at the gateway");
}

#[tokio::test]
async fn a_call_that_expires_at_the_gateway_is_blocked_as_timed_out() {
    let rig = Rig::start("[approval]\nttl_s = 5\n");
    let ran = hook(rig.config.clone(), fixture("bash")).await;
    let reason = ran.blocked();
    assert!(reason.contains("timed out waiting for approval") && !reason.contains("denied"), "{reason}");
    assert!(ran.took >= Duration::from_secs(4), "held until it expired: {ran:?}");
    assert_eq!(stored(&rig), [pair("expired", "test.hook.bash")]);
}

#[tokio::test]
async fn the_gateway_down_blocks() {
    let rig = Rig::start("");
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    rig.point_at(&format!("http://127.0.0.1:{closed}"), "");
    let ran = hook(rig.config.clone(), fixture("edit")).await;
    let reason = ran.blocked();
    assert!(reason.contains("could not be reached"), "{reason}");
}

#[tokio::test]
async fn events_the_hook_cannot_trust_are_blocked_and_nothing_is_submitted() {
    let rig = Rig::start("");
    let bash = fixture("bash");
    let cases = [
        ("not json".to_owned(), "not strict JSON"),
        (String::new(), "not strict JSON"),
        (
            bash.replacen("\"tool_name\":\"Bash\"", "\"tool_name\":\"Read\",\"tool_name\":\"Bash\"", 1),
            "duplicate",
        ),
        (bash.replacen("\"command\":\"git", "\"command\":\"ls\",\"command\":\"git", 1), "duplicate"),
        (format!("{bash}{bash}"), "not strict JSON"),
        (bash.replacen("PreToolUse", "PostToolUse", 1), "\"PostToolUse\", not PreToolUse"),
        (bash.replacen("\"hook_event_name\":\"PreToolUse\",", "", 1), "not PreToolUse"),
        (bash.replacen("\"tool_name\":\"Bash\",", "", 1), "no tool_name"),
        (bash.replacen("\"tool_input\":{", "\"tool_input\":\"ls\",\"x\":{", 1), "no tool_input"),
        ("[]".to_owned(), "not a JSON object"),
    ];
    for (event, says) in cases {
        let ran = hook(rig.config.clone(), event.clone()).await;
        let reason = ran.blocked();
        assert!(reason.contains(says), "{event:?} → {reason}");
    }
    assert!(stored(&rig).is_empty(), "nothing reached the gateway: {:?}", stored(&rig));
    // The same rig does store what a good event submits: the empty list above is not a blind spot.
    hook(rig.config.clone(), fixture("edit")).await.allowed();
    assert_eq!(stored(&rig), [pair("approved", "test.hook.edit")]);
}

#[tokio::test]
async fn a_config_the_hook_cannot_use_blocks() {
    let rig = Rig::start("");
    let missing = rig.dir.path().join("missing.toml");
    let ran = hook(missing, fixture("edit")).await;
    assert!(ran.blocked().contains("cannot read the config"), "{ran:?}");
    std::fs::write(&rig.config, "[gateway]\nurl = \"ftp://gw\"\n").expect("write");
    let ran = hook(rig.config.clone(), fixture("edit")).await;
    assert!(ran.blocked().contains("is not valid"), "{ran:?}");
    assert!(stored(&rig).is_empty(), "nothing reached the gateway: {:?}", stored(&rig));
}
