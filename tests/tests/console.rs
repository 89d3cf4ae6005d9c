//! Black-box tests of the `countersign` CLI: the real binary, the real gateway on loopback, and the
//! real Secret Service (gnome-keyring on the private session of `scripts/with-session.sh`).
//! Longer than the ~450-line guide on purpose: one independent test per CLI behaviour, sharing
//! this file's set-up.

use base64::Engine as _;
use countersign_blackbox::console::{dunst_history, KillOnDrop};
use countersign_blackbox::console::{gateway_kid, signed_step_up, Console, FakeEp, Proxy, ProxyMode};
use countersign_blackbox::*;
use countersign_protocol::{self as protocol, DecisionClaims, Validation, Verdict, TYP_DECISION};
use serde_json::{json, Value};

use countersign_blackbox::console::{submit_id, AGENT};

async fn setup() -> (tempfile::TempDir, Gateway, Agent, Console) {
    countersign_blackbox::console::connected_console().await
}

/// The decision the gateway holds verifies with the console's exported key and is bound to the
/// digest of the request exactly as the gateway signed it.
fn check_decision(console: &Console, request: &Value, token: &str, verdict: Verdict, reason: &str) {
    let key = console.jwk().to_key().expect("console key");
    let d = protocol::verify::<DecisionClaims>(token, TYP_DECISION, &key, &Validation::at(now()))
        .expect("the decision verifies with the exported key");
    assert_eq!(d.claims.decision, verdict);
    assert_eq!(d.claims.reason, reason);
    assert_eq!(d.claims.sub, request["jti"].as_str().expect("jti"));
    assert_eq!(d.claims.aud, request["iss"].as_str().expect("iss"));
    assert_eq!(d.claims.digest, protocol::request_digest(request).expect("digest"));
    assert!(d.claims.exp <= request["exp"].as_i64().expect("exp"), "never after the request's expiry");
    assert!(d.claims.exp - d.claims.iat <= 120);
}

#[tokio::test]
async fn approve_end_to_end() {
    let (_d, gw, agent, console) = setup().await;
    let id = submit_id(&gw, &agent, "test.high").await;
    console.ok(&["sync"]);
    assert_eq!(console.pending_ids(), vec![id.clone()]);
    let shown = console.ok(&["show", &id]);
    for needle in
        ["test.high", "crm / production", "owner@acme.example", "1. crm.export", "IRREVERSIBLE", "\"rows\""]
    {
        assert!(shown.contains(needle), "show lacks {needle:?}:\n{shown}");
    }

    // High tier: approving needs a reason; the refusal signs and changes nothing.
    let before = console.history_len();
    let r = console.fails(&["approve", &id], 4);
    assert!(r.stderr.contains("reason"), "{}", r.stderr);
    assert_eq!(console.history_len(), before);

    let out = console.ok(&["approve", &id, "--reason", "ticket 4411", "--ttl", "60", "--max-uses", "1"]);
    assert!(out.contains(": delivered; the request is now approved"), "{out}");
    let status = status(&gw, &agent, &id, 0).await;
    assert_eq!(status["state"], "approved", "{status}");
    let tokens = decision_tokens(&gw, &id);
    let token = tokens.first().expect("decision");
    let listed = console.json(&["show", &id]);
    assert_eq!(listed["state"], "approved");
    check_decision(&console, &listed["claims"], token, Verdict::Approve, "ticket 4411");
    assert!(status["grant"].is_string(), "an approval yields a grant");

    // Decided: a second decision is refused locally.
    console.fails(&["deny", &id, "--reason", "changed my mind"], 4);
    assert!(console.pending_ids().is_empty());
    let kinds: Vec<String> = console
        .json(&["history"])
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["kind"].as_str().expect("kind").to_string())
        .collect();
    for kind in ["key created", "request received", "decision signed", "delivered", "resolved"] {
        assert!(kinds.iter().any(|k| k == kind), "history lacks {kind:?}: {kinds:?}");
    }
    console.ok(&["history", "verify"]);
    let found = console.json(&["history", "--search", "4411"]);
    assert_eq!(found.as_array().expect("rows").len(), 1, "{found}");
}

#[tokio::test]
async fn deny_end_to_end_and_deny_without_reason_changes_nothing() {
    let (_d, gw, agent, console) = setup().await;
    let id = submit_id(&gw, &agent, "test.medium").await;
    console.ok(&["sync"]);

    let before = console.history_len();
    let r = console.fails(&["deny", &id], 4);
    assert!(r.stderr.contains("reason is required to deny"), "{}", r.stderr);
    let r = console.fails(&["deny", &id, "--reason", "   "], 4);
    assert!(r.stderr.contains("reason"), "{}", r.stderr);
    assert_eq!(console.history_len(), before, "a refused decision adds nothing to the history");
    assert_eq!(console.json(&["show", &id])["state"], "pending");
    assert_eq!(status(&gw, &agent, &id, 0).await["state"], "pending", "nothing reached the gateway");

    console.ok(&["deny", &id, "--reason", "not during the freeze"]);
    let status = status(&gw, &agent, &id, 0).await;
    assert_eq!(status["state"], "denied", "{status}");
    let shown = console.json(&["show", &id]);
    assert_eq!(shown["state"], "denied");
    check_decision(
        &console,
        &shown["claims"],
        decision_tokens(&gw, &id).first().expect("decision"),
        Verdict::Deny,
        "not during the freeze",
    );
}

#[tokio::test]
async fn offline_console_catches_up_on_sync() {
    let (_d, gw, agent, console) = setup().await;
    // The console is not running while these arrive.
    let first = submit_id(&gw, &agent, "test.medium").await;
    let second = submit_id(&gw, &agent, "test.high").await;
    let resolved = submit_id(&gw, &agent, "test.medium").await;
    assert!(console.pending_ids().is_empty(), "nothing is known before the sync");
    let report = console.json(&["sync"]);
    assert_eq!(report[0]["new"], 3, "{report}");
    let mut ids = console.pending_ids();
    ids.sort();
    let mut want = vec![first, second, resolved.clone()];
    want.sort();
    assert_eq!(ids, want);

    // Another approver decides one while this console is offline; the next sync learns it.
    let bob = gw.approver("Bob", "bob@acme.example");
    let jwt = pending(&gw, &bob).await.into_iter().find(|i| i["id"] == resolved.as_str()).expect("listed")
        ["jwt"]
        .as_str()
        .expect("jwt")
        .to_string();
    let claims = verify_request(&gw, &jwt).await;
    let (code, body) =
        post_decision(&gw, &bob, &resolved, &bob.decision(&claims, Verdict::Deny, "no", None)).await;
    assert_eq!(code, 200, "{body}");
    let report = console.json(&["sync"]);
    assert_eq!(report[0]["new"], 0, "{report}");
    assert_eq!(report[0]["resolved"], 1, "{report}");
    assert_eq!(console.json(&["show", &resolved])["state"], "denied");
    assert_eq!(console.pending_ids().len(), 2);
    console.fails(&["approve", &resolved], 4);
}

#[tokio::test]
async fn watch_streams_requests_and_resolutions() {
    use std::io::{BufRead as _, BufReader};
    let (_d, gw, agent, console) = setup().await;
    let mut child = console
        .command(&["watch", "--json"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn watch");
    let (tx, rx) = std::sync::mpsc::channel::<Value>();
    let stdout = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str(&line) {
                let _ = tx.send(v);
            }
        }
    });
    let next = |kind: &str| loop {
        let v =
            rx.recv_timeout(std::time::Duration::from_secs(15)).unwrap_or_else(|_| panic!("no {kind} event"));
        if v["event"] == kind {
            return v;
        }
    };
    next("connected");
    // Backfill runs beside the stream and says when it is done (the app refreshes then).
    let caught_up = next("backfilled");
    assert_eq!(
        (caught_up["new"].as_u64(), caught_up["resolved"].as_u64()),
        (Some(0), Some(0)),
        "{caught_up}"
    );
    let id = submit_id(&gw, &agent, "test.medium").await;
    assert_eq!(next("request")["id"], id.as_str());
    assert_eq!(console.pending_ids(), vec![id.clone()], "persisted before it is announced");
    let withdrawn = http()
        .delete(gw.at(&format!("/v1/step-ups/{id}")))
        .bearer_auth(&agent.token)
        .send()
        .await
        .expect("withdraw")
        .status();
    assert_eq!(withdrawn.as_u16(), 200);
    let r = next("resolved");
    assert_eq!(r["state"], "withdrawn");
    assert_eq!(console.json(&["show", &id])["state"], "withdrawn");

    // An enforcement point pinned while `watch` runs is followed too.
    let dir2 = tempfile::tempdir().expect("tempdir");
    let gw2 = Gateway::start(dir2.path(), &[]);
    let agent2 = gw2.agent(AGENT);
    console.connect(&gw2, "alice@acme.example").await;
    next("connected");
    let id2 = submit_id(&gw2, &agent2, "test.medium").await;
    assert_eq!(next("request")["id"], id2.as_str());
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test]
async fn edited_history_row_is_caught() {
    let (_d, gw, agent, console) = setup().await;
    let id = submit_id(&gw, &agent, "test.medium").await;
    console.ok(&["sync"]);
    console.ok(&["deny", &id, "--reason", "suspicious"]);
    assert!(console.ok(&["history", "verify"]).contains("intact"));
    let rows = console.json(&["history", "--kind", "decision signed"]);
    let seq = rows[0]["seq"].as_i64().expect("seq");

    // The schema refuses edits; someone with the file drops the trigger and edits anyway.
    let db = console.db();
    let refused = std::process::Command::new("sqlite3")
        .arg(&db)
        .arg("UPDATE history SET detail = replace(detail, 'suspicious', 'fine') WHERE kind = 'decision signed'")
        .output()
        .expect("sqlite3");
    assert!(!refused.status.success(), "the append-only trigger refuses the edit");
    let edited = std::process::Command::new("sqlite3")
        .arg(&db)
        .arg("DROP TRIGGER history_no_update; UPDATE history SET detail = replace(detail, 'suspicious', 'fine') WHERE kind = 'decision signed'")
        .output()
        .expect("sqlite3");
    assert!(edited.status.success(), "{}", String::from_utf8_lossy(&edited.stderr));
    let r = console.fails(&["history", "verify"], 5);
    assert!(r.stderr.contains(&format!("row {seq}")), "names the edited row {seq}: {}", r.stderr);
}

#[tokio::test]
async fn history_cut_short_is_caught_by_the_keyring_anchor() {
    let (_d, gw, agent, console) = setup().await;
    let first = submit_id(&gw, &agent, "test.medium").await;
    console.ok(&["sync"]);
    console.ok(&["deny", &first, "--reason", "not now"]);
    let cut = console.ok(&["history", "checkpoint"]);
    let cut: i64 = cut.trim().rsplit(' ').next().and_then(|n| n.parse().ok()).expect("checkpoint row");
    let second = submit_id(&gw, &agent, "test.medium").await;
    console.ok(&["sync"]);
    console.ok(&["deny", &second, "--reason", "nor now"]);
    console.ok(&["history", "checkpoint"]);
    assert!(console.ok(&["history", "verify"]).contains("intact"));

    // Someone with the file deletes the second decision and everything after it, checkpoints
    // included: the rest is a consistent chain under a valid checkpoint, but the keyring remembers.
    let deleted = std::process::Command::new("sqlite3")
        .arg(console.db())
        .arg(format!("DROP TRIGGER history_no_delete; DELETE FROM history WHERE seq > {cut}"))
        .output()
        .expect("sqlite3");
    assert!(deleted.status.success(), "{}", String::from_utf8_lossy(&deleted.stderr));
    let r = console.fails(&["history", "verify"], 5);
    assert!(r.stderr.contains("deleted from the end"), "{}", r.stderr);
    assert!(r.stderr.contains(&format!("row {}", cut + 1)), "names the first missing row: {}", r.stderr);

    // The approver restored it on purpose: re-anchoring needs confirming, then the gap is on record.
    let refused = console.fails(&["history", "reanchor"], 4);
    assert!(refused.stderr.contains("--yes"), "{}", refused.stderr);
    console.fails(&["history", "verify"], 5);
    let done = console.ok(&["history", "reanchor", "--yes"]);
    assert!(done.contains("re-anchored"), "{done}");
    assert!(console.ok(&["history", "verify"]).contains("intact"));
    let record = console.json(&["history", "--kind", "history re-anchored"]);
    assert_eq!(record.as_array().map(Vec::len), Some(1), "{record}");
    assert!(console.ok(&["history", "reanchor", "--yes"]).contains("nothing to re-anchor"));
}

#[tokio::test]
async fn key_bytes_are_in_no_file_under_the_profile() {
    let (_d, gw, agent, console) = setup().await;
    let id = submit_id(&gw, &agent, "test.high").await;
    console.ok(&["sync"]);
    console.ok(&["approve", &id, "--reason", "ok"]);
    console.ok(&["history", "export", "--format", "jsonl"]);

    let secret = console.keyring_secret();
    let seed = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&secret).expect("base64url seed");
    assert_eq!(seed.len(), 32, "the keyring holds the 32-byte Ed25519 seed");
    let seed_key = protocol::SigningKey::from_bytes(&seed.clone().try_into().expect("32 bytes"));
    assert_eq!(
        protocol::Jwk::from_key(&seed_key.verifying_key()).thumbprint(),
        console.jwk().thumbprint(),
        "the keyring entry is this profile's key"
    );
    let hex: String = seed.iter().map(|b| format!("{b:02x}")).collect();
    let std_b64 = base64::engine::general_purpose::STANDARD.encode(&seed);
    let mut checked = 0;
    for entry in walk(console.dir()) {
        let bytes = std::fs::read(&entry).expect("read");
        for needle in
            [seed.as_slice(), secret.as_bytes(), hex.as_bytes(), std_b64.trim_end_matches('=').as_bytes()]
        {
            assert!(!bytes.windows(needle.len()).any(|w| w == needle), "key material in {}", entry.display());
        }
        checked += 1;
    }
    assert!(checked >= 2, "the profile holds at least the database and the profile id");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir").map(|e| e.expect("entry").path()) {
        if entry.is_dir() {
            out.extend(walk(&entry));
        } else {
            out.push(entry);
        }
    }
    out
}

// Multi-threaded: the fake EP must keep serving while the test blocks on the CLI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_signed_by_an_unpinned_key_is_never_listed() {
    let console = Console::new();
    let (pinned, other) = (protocol::generate_key(), protocol::generate_key());
    // An enforcement point's id is its key's (`ep-` and the start of the kid).
    let fake = protocol::jwk::ep_id(&protocol::jwk::kid_of(&pinned.verifying_key()));
    let fake = fake.as_str();
    let items = vec![
        json!({"id": "forged-request-0000001", "jwt": signed_step_up(fake, "forged-request-0000001", &other)}),
        json!({"id": "genuine-request-000001", "jwt": signed_step_up(fake, "genuine-request-000001", &pinned)}),
        // Validly signed, but announced under another id.
        json!({"id": "relabelled-000000001", "jwt": signed_step_up(fake, "genuine-request-000002", &pinned)}),
    ];
    let ep = FakeEp::start(fake, &pinned, items).await;
    let kid = protocol::jwk::kid_of(&pinned.verifying_key());
    console.ok(&["ep", "add", &ep.url, "--trust", &kid]);

    let report = console.json(&["sync"]);
    assert_eq!(report[0]["new"], 1, "{report}");
    assert_eq!(report[0]["rejected"], 2, "{report}");
    assert_eq!(
        console.pending_ids(),
        vec!["genuine-request-000001".to_string()],
        "only the verified request is listed"
    );
    console.fails(&["show", "forged-request-0000001"], 8);
    console.fails(&["approve", "forged-request-0000001", "--reason", "x"], 8);
    let rejected = console.json(&["history", "--kind", "request rejected"]);
    let rows = rejected.as_array().expect("rows");
    assert_eq!(rows.len(), 2, "each recorded with its reason: {rejected}");
    let reasons: Vec<&str> = rows.iter().map(|r| r["detail"].as_str().expect("detail")).collect();
    assert!(reasons.iter().any(|r| r.contains("unknown key")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("announced as")), "{reasons:?}");
    console.json(&["sync"]);
    let again = console.json(&["history", "--kind", "request rejected"]);
    assert_eq!(again.as_array().expect("rows").len(), 2, "recorded once, not at every sync");

    // A stored request listed again under its id with another token is checked again, not taken
    // as known: the forgery is rejected and the stored request stays as it was.
    let stored = console.json(&["show", "genuine-request-000001"]);
    ep.set_items(vec![
        json!({"id": "genuine-request-000001", "jwt": signed_step_up(fake, "genuine-request-000001", &other)}),
    ]);
    let report = console.json(&["sync"]);
    assert_eq!(report[0]["rejected"], 1, "{report}");
    assert_eq!(report[0]["new"], 0, "{report}");
    let now_stored = console.json(&["show", "genuine-request-000001"]);
    assert_eq!((&now_stored["jwt"], &now_stored["digest"]), (&stored["jwt"], &stored["digest"]));
}

#[tokio::test]
async fn ep_add_with_a_wrong_trust_refuses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gw = Gateway::start(dir.path(), &[]);
    let console = Console::new();
    let kid = gateway_kid(&gw).await;

    let r = console.fails(&["ep", "add", &gw.url], 7);
    assert!(r.stdout.contains(&kid), "shows the kid to compare: {}", r.stdout);
    assert!(r.stdout.contains(&gw.ep), "{}", r.stdout);
    assert!(r.stderr.contains("--trust"), "hints how to pin: {}", r.stderr);

    let wrong = protocol::jwk::kid_of(&protocol::generate_key().verifying_key());
    let r = console.fails(&["ep", "add", &gw.url, "--trust", &wrong], 7);
    assert!(r.stderr.contains("nothing was pinned"), "{}", r.stderr);
    assert_eq!(console.json(&["ep", "list"]), serde_json::json!([]));

    console.ok(&["ep", "add", &gw.url, "--trust", &kid]);
    let eps = console.json(&["ep", "list"]);
    assert_eq!(eps[0]["kid"], kid.as_str());
    console.ok(&["ep", "remove", &gw.ep]);
    assert_eq!(console.json(&["ep", "list"]), serde_json::json!([]));
}

// Multi-threaded: the proxy must keep running while the test blocks on the CLI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decision_made_while_the_gateway_is_down_is_delivered_on_sync() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gw = Gateway::start(dir.path(), &[]);
    let agent = gw.agent(AGENT);
    let proxy = Proxy::start(&gw.url).await;
    let console = Console::new();
    console.connect_via(&gw, &proxy.url, "alice@acme.example").await;
    let id = submit_id(&gw, &agent, "test.medium").await;
    console.ok(&["sync"]);

    proxy.set(ProxyMode::Refuse);
    let r = console.fails(&["approve", &id], 6);
    assert!(r.stdout.contains("decided, not delivered"), "{}", r.stdout);
    let r = console.fails(&["ep", "remove", &gw.ep], 4);
    assert!(
        r.stderr.contains("not delivered"),
        "an undelivered decision is not dropped silently: {}",
        r.stderr
    );
    assert_eq!(console.json(&["show", &id])["state"], "decided, not delivered");
    console.fails(&["approve", &id], 4);
    let report = console.run(&["sync", "--json"]);
    assert_eq!(report.code, 6, "the gateway is still down: {}", report.stdout);
    assert_eq!(status(&gw, &agent, &id, 0).await["state"], "pending");

    proxy.set(ProxyMode::Forward);
    let report = console.json(&["sync"]);
    assert_eq!(report[0]["delivered"], 1, "{report}");
    assert_eq!(status(&gw, &agent, &id, 0).await["state"], "approved");
    assert_eq!(console.json(&["show", &id])["state"], "approved");
    assert_eq!(console.json(&["sync"])[0]["delivered"], 0, "delivered once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_commit_before_delivery_delivers_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gw = Gateway::start(dir.path(), &[]);
    let agent = gw.agent(AGENT);
    let proxy = Proxy::start(&gw.url).await;
    let console = Console::new();
    console.connect_via(&gw, &proxy.url, "alice@acme.example").await;
    let id = submit_id(&gw, &agent, "test.high").await;
    console.ok(&["sync"]);

    // The delivery hangs; the CLI is killed once the decision is committed.
    proxy.set(ProxyMode::Hang);
    let mut child =
        console.command(&["approve", &id, "--reason", "ticket 7"]).spawn().expect("spawn approve");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while console.json(&["history", "--kind", "decision signed"]).as_array().expect("rows").is_empty() {
        assert!(std::time::Instant::now() < deadline, "the decision was never committed");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("wait");
    assert_eq!(status(&gw, &agent, &id, 0).await["state"], "pending");
    assert_eq!(console.json(&["show", &id])["state"], "decided, not delivered");

    proxy.set(ProxyMode::Forward);
    let report = console.json(&["sync"]);
    assert_eq!(report[0]["delivered"], 1, "{report}");
    let report = console.json(&["sync"]);
    assert_eq!(report[0]["delivered"], 0, "{report}");
    let status = status(&gw, &agent, &id, 0).await;
    assert_eq!(status["state"], "approved");
    assert_eq!(status["decisions"].as_array().expect("decisions").len(), 1, "exactly one decision arrived");
    console.ok(&["history", "verify"]);
}

#[tokio::test]
async fn gateway_restart_loses_nothing() {
    let (_d, mut gw, agent, console) = setup().await;
    let before = submit_id(&gw, &agent, "test.medium").await;
    console.ok(&["sync"]);
    gw.restart();
    let after = submit_id(&gw, &agent, "test.medium").await;
    console.ok(&["sync"]);
    let mut ids = console.pending_ids();
    ids.sort();
    let mut want = vec![before.clone(), after];
    want.sort();
    assert_eq!(ids, want);
    console.ok(&["approve", &before]);
    assert_eq!(status(&gw, &agent, &before, 0).await["state"], "approved");
}

#[test]
fn locked_or_missing_keyring_is_a_clear_error_never_a_file() {
    let console = Console::new();
    // No Secret Service on the bus at all.
    let r =
        console.command(&["key", "show"]).env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent").output();
    let r: countersign_blackbox::console::Run = r.expect("run").into();
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("keyring"), "{}", r.stderr);

    // A locked collection, on a session of its own so the other tests' keyring stays unlocked.
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/with-session.sh");
    let bin = bin("countersign");
    let steps = format!(
        "{bin} key show >/dev/null; echo \"unlocked=$?\"; \
         dbus-send --session --print-reply --dest=org.freedesktop.secrets /org/freedesktop/secrets \
           org.freedesktop.Secret.Service.Lock array:objpath:/org/freedesktop/secrets/collection/login >/dev/null; \
         echo \"lock=$?\"; \
         timeout 30 {bin} key show; echo \"exit=$?\"",
        bin = bin.display()
    );
    let out = std::process::Command::new("bash")
        .arg(script)
        .args(["bash", "-c", &steps])
        .env("COUNTERSIGN_HOME", console.dir())
        .output()
        .expect("nested session");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // Each step's status: the key is readable while unlocked, the lock call succeeds, and only
    // then does the same command exit 3.
    assert!(stdout.contains("unlocked=0\n"), "the unlocked keyring serves the key: {stdout}{stderr}");
    assert!(stdout.contains("lock=0\n"), "the collection was locked: {stdout}{stderr}");
    assert!(stdout.contains("exit=3\n"), "a locked keyring exits 3: {stdout}{stderr}");
    assert!(stderr.contains("countersign: keyring:"), "{stderr}");
    let files: Vec<String> = std::fs::read_dir(console.dir())
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(files.iter().all(|f| f.starts_with("history.db") || f == "profile-id"), "no key file: {files:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_request_notifies_through_dunst_with_escaped_text_and_no_approve_action() {
    let (_d, gw, agent, console) = setup().await;
    let mut watch = KillOnDrop(
        console.command(&["watch"]).stdout(std::process::Stdio::piped()).spawn().expect("countersign watch"),
    );
    // Submit only once the stream is connected (not after a guessed sleep).
    let stdout = watch.0.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    loop {
        let line = rx.recv_timeout(std::time::Duration::from_secs(15)).expect("watch said it connected");
        if line.ends_with(": connected") {
            break;
        }
    }
    let mut d = draft(&agent.workload, "test.high");
    d["identity"]["display"] = json!("Payroll <b>agent</b>");
    d["purpose"]["statement"] = json!("Export <i>salaries</i>\u{202E}txt.exe");
    let (status, _) = submit(&gw, &agent, &d).await;
    assert_eq!(status, 201);
    let mut history = String::new();
    for _ in 0..30 {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        history = dunst_history();
        if history.contains("Payroll") {
            break;
        }
    }
    drop(watch);
    assert!(history.contains("HIGH"), "a notification reached dunst: {history}");
    assert!(history.contains("&lt;b&gt;agent&lt;/b&gt;"), "the markup reached dunst escaped: {history}");
    assert!(!history.contains("<b>agent</b>"), "and never raw: {history}");
    assert!(history.contains("U+202E"), "the bidi override is made visible: {history}");
    assert!(!history.to_lowercase().contains("approve"), "no approve action: {history}");
}
