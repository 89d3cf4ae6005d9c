//! Black-box tests of the console against a hostile network, a hostile enforcement point and
//! other local users (issue 9, findings 7, 8, 9, 13 and key rotation): the real `countersign`
//! binary, real gateway processes on loopback, the real Secret Service of
//! `scripts/with-session.sh`.

use std::io::{BufRead as _, BufReader};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Stdio};

use countersign_blackbox::console::{gateway_kid, signed_step_up, Console, FakeEp};
use countersign_blackbox::*;
use countersign_protocol::{self as protocol, jwk::ep_id, jwk::kid_of};
use serde_json::Value;

use countersign_blackbox::console::{submit_id, AGENT};

async fn setup() -> (tempfile::TempDir, Gateway, Agent, Console) {
    countersign_blackbox::console::connected_console().await
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// `countersign ARGS…` on `console`'s profile under umask 000: whatever the process creates
/// gets exactly the mode the console asks for.
fn under_open_umask(console: &Console, args: &[&str]) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"umask 000; exec "$0" "$@""#)
        .arg(bin("countersign"))
        .args(args)
        .env("COUNTERSIGN_HOME", console.dir());
    cmd
}

/// Finding 7: the profile directory is 0700, the history database and its WAL and shared-memory
/// files 0600 — when created under umask 000, and when an older version left them open to others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_files_are_private_whatever_the_umask() {
    let console = Console::new();
    let profile = console.dir().join("nested").join("profile");
    let mut create = under_open_umask(&console, &["key", "show"]);
    create.env("COUNTERSIGN_HOME", &profile);
    let out = create.output().expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(mode(&profile), 0o700, "a new profile directory is private");
    assert_eq!(mode(&profile.join("history.db")), 0o600, "a new database is private");
    assert_eq!(mode(&profile.join("profile-id")), 0o600, "so is the profile id");

    // An existing profile left open to everyone is put right on the next run, with the database
    // open (WAL and shared-memory files present) while a `watch` follows a real gateway.
    let dir = tempfile::tempdir().expect("tempdir");
    let gw = Gateway::start(dir.path(), &[]);
    console.connect(&gw, "alice@acme.example").await;
    set_mode(console.dir(), 0o777);
    set_mode(&console.db(), 0o666);
    let mut watch = under_open_umask(&console, &["watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("watch");
    let mut line = String::new();
    BufReader::new(watch.stdout.take().expect("stdout")).read_line(&mut line).expect("watch output");
    assert!(line.contains("connected"), "{line}");
    let files = ["history.db", "history.db-wal", "history.db-shm"].map(|f| console.dir().join(f));
    let modes: Vec<(String, u32)> =
        files.iter().map(|f| (f.file_name().unwrap().to_string_lossy().into_owned(), mode(f))).collect();
    let dir_mode = mode(console.dir());
    watch.kill().expect("kill watch");
    watch.wait().expect("wait watch");
    assert_eq!(dir_mode, 0o700, "the profile directory is made private again");
    for (name, m) in modes {
        assert_eq!(m, 0o600, "{name} is private (mode {m:o})");
    }
}

/// Finding 9: plain http is refused for any enforcement point not on this machine — before any
/// connection is made and with nothing stored — and URLs that only look local are not local.
#[tokio::test]
async fn plain_http_to_a_remote_enforcement_point_is_refused() {
    let console = Console::new();
    for url in [
        "http://gateway.example:8080",
        "http://10.0.0.7:8080",
        "http://localhost.attacker.example",
        "http://127.0.0.1.nip.io:8080",
        "http://[::ffff:7f00:1]:8080",
    ] {
        let r = console.fails(&["ep", "add", url, "--trust", "whatever"], 1);
        assert!(r.stderr.contains("use https"), "{url}: {}", r.stderr);
        let r = console.fails(&["ep", "add", url], 1);
        assert!(r.stderr.contains("use https"), "{url}: {}", r.stderr);
    }
    for url in ["ftp://127.0.0.1/", "https://user:pw@gateway.example", "gateway.example"] {
        console.fails(&["ep", "add", url, "--trust", "whatever"], 1);
    }
    let ca = console.dir().join("ca.pem");
    std::fs::write(&ca, "not a certificate").expect("write");
    let r = console
        .fails(&["ep", "add", "https://127.0.0.1:9", "--trust", "k", "--ca-cert", ca.to_str().unwrap()], 1);
    assert!(r.stderr.contains("PEM"), "{}", r.stderr);
    let r = console
        .fails(&["ep", "add", "https://127.0.0.1:9", "--trust", "k", "--ca-cert", "/nonexistent.pem"], 1);
    assert!(r.stderr.contains("--ca-cert"), "{}", r.stderr);
    assert_eq!(console.json(&["ep", "list"]), Value::Array(vec![]), "nothing pinned");
}

/// Finding 8: a look-alike enforcement point that claims a real gateway's id (so that the auth
/// tokens a console signs for it would be accepted by the real one) is refused, nothing pinned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_look_alike_claiming_a_gateway_s_id_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gw = Gateway::start(dir.path(), &[]);
    let console = Console::new();
    let attacker = protocol::generate_key();
    let look_alike = FakeEp::start(&gw.ep, &attacker, vec![]).await;
    let attacker_kid = kid_of(&attacker.verifying_key());

    for args in
        [vec!["ep", "add", &look_alike.url], vec!["ep", "add", &look_alike.url, "--trust", &attacker_kid]]
    {
        let r = console.fails(&args, 7);
        assert!(r.stderr.contains(&gw.ep), "names the claimed id: {}", r.stderr);
        assert!(r.stderr.contains("nothing was pinned"), "{}", r.stderr);
    }
    assert_eq!(console.json(&["ep", "list"]), Value::Array(vec![]), "nothing pinned");

    // The real gateway's id is its key's; it is pinned under that id.
    let kid = gateway_kid(&gw).await;
    assert_eq!(gw.ep, ep_id(&kid));
    console.ok(&["ep", "add", &gw.url, "--trust", &kid]);
    let eps = console.json(&["ep", "list"]);
    assert_eq!(eps[0]["ep"], gw.ep.as_str(), "{eps}");
}

/// Finding 13: a malicious enforcement point that sends a request under the id of another's
/// request cannot make the genuine one undecidable: the bare id is ambiguous (and says how to
/// choose), and with `--ep` each is shown and decided on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_id_reused_by_another_enforcement_point_stays_decidable() {
    let (_dir, gw, agent, console) = setup().await;
    let id = submit_id(&gw, &agent, "test.high").await;
    let key = protocol::generate_key();
    let evil_ep = ep_id(&kid_of(&key.verifying_key()));
    let jwt = signed_step_up(&evil_ep, &id, &key);
    let evil = FakeEp::start(&evil_ep, &key, vec![serde_json::json!({"id": id, "jwt": jwt})]).await;
    console.ok(&["ep", "add", &evil.url, "--trust", &kid_of(&key.verifying_key())]);
    console.json(&["sync"]);
    assert_eq!(console.pending_ids(), vec![id.clone(), id.clone()], "both listed, each under its EP");

    let r = console.fails(&["approve", &id, "--reason", "ticket 1"], 8);
    assert!(r.stderr.contains("--ep"), "{}", r.stderr);
    assert!(r.stderr.contains(&gw.ep) && r.stderr.contains(&evil_ep), "{}", r.stderr);
    console.fails(&["show", &id], 8);

    let shown = console.json(&["show", &id, "--ep", &gw.ep]);
    assert_eq!(shown["ep"], gw.ep.as_str());
    let shown = console.json(&["show", &id, "--ep", &evil.url]);
    assert_eq!(shown["ep"], evil_ep.as_str(), "an enforcement point by URL too");

    let out = console.json(&["approve", &id, "--ep", &gw.ep, "--reason", "ticket 1"]);
    assert_eq!(out["delivery"]["result"], "accepted", "{out}");
    assert_eq!(out["delivery"]["state"], "approved", "{out}");
    let unknown = console.fails(&["approve", &id, "--ep", "ep-nobody", "--reason", "x"], 8);
    assert!(unknown.stderr.contains("ep-nobody"), "{}", unknown.stderr);
    console.ok(&["history", "verify"]);
}

/// Rotation: `key rotate` sends each enforcement point a statement signed by the old key; the
/// gateway takes it, and the new key decides there at once with no manual enrolment. An
/// enforcement point that is down is reported as needing one, and the others still rotate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_is_announced_to_every_enforcement_point() {
    let (_dir, gw, agent, console) = setup().await;
    let old = console.json(&["key", "show"])["kid"].as_str().expect("kid").to_string();
    let down_dir = tempfile::tempdir().expect("tempdir");
    let down = Gateway::start(down_dir.path(), &[]);
    console.connect(&down, "alice@acme.example").await;
    let down_ep = down.ep.clone();
    drop(down);

    let r = console.run(&["key", "rotate", "--json"]);
    assert_eq!(r.code, 6, "one enforcement point did not take it: {}{}", r.stdout, r.stderr);
    let rotation: Value = serde_json::from_str(&r.stdout).expect("json");
    let new = rotation["key"]["kid"].as_str().expect("kid").to_string();
    assert_ne!(new, old);
    assert_eq!(rotation["old_kid"], old.as_str());
    let outcome = |ep: &str| {
        rotation["eps"].as_array().expect("eps").iter().find(|e| e["ep"] == ep).expect("ep")["result"].clone()
    };
    assert_eq!(outcome(&gw.ep), "accepted", "{rotation}");
    assert_eq!(outcome(&down_ep), "unreachable", "{rotation}");

    let text = console.run(&["key", "show"]);
    assert!(text.stdout.contains(&new), "{}", text.stdout);
    let id = submit_id(&gw, &agent, "test.high").await;
    assert_eq!(console.run(&["sync"]).code, 6, "the stopped gateway is reported");
    let out = console.json(&["approve", &id, "--ep", &gw.ep, "--reason", "ticket 2"]);
    assert_eq!(out["delivery"]["result"], "accepted", "the new key decides at once: {out}");
    console.ok(&["history", "verify"]);
}

/// Finding 9, https: a gateway serving TLS with a certificate from a private CA is refused until
/// that CA is given with `ep add --ca-cert`; then backfill, decisions and delivery go over https,
/// trusting that CA for that enforcement point only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_gateway_with_a_private_ca_is_pinned_with_ca_cert() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = countersign_blackbox::tls::TestPki::new(dir.path());
    let ca_file = pki.ca.clone();
    let gw = Gateway::start(&dir.path().join("gw"), &pki.serve_flags());
    assert!(gw.url.starts_with("https://"), "{}", gw.url);
    let agent = gw.agent(AGENT);

    let console = Console::new();
    let jwk = console.dir().join("me.jwk");
    std::fs::write(&jwk, serde_json::to_string(&console.jwk()).expect("jwk")).expect("write");
    let data = gw.data.to_str().expect("utf-8");
    let principal = "alice@acme.example";
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
        jwk.to_str().expect("utf-8"),
    ]);
    let kid = tls_gateway_kid(&gw, &pki.client()).await;
    let r = console.fails(&["ep", "add", &gw.url, "--trust", &kid], 6);
    assert!(r.stderr.to_lowercase().contains("certificate"), "an unknown CA is refused: {}", r.stderr);
    assert_eq!(console.json(&["ep", "list"]), Value::Array(vec![]), "nothing pinned");
    console.ok(&["ep", "add", &gw.url, "--trust", &kid, "--ca-cert", ca_file.to_str().expect("utf-8")]);

    let sent: Value = pki
        .client()
        .post(gw.at("/v1/step-ups"))
        .bearer_auth(&agent.token)
        .json(&draft(AGENT, "test.high"))
        .send()
        .await
        .expect("submit")
        .json()
        .await
        .expect("json");
    let id = sent["id"].as_str().expect("id").to_string();
    let report = console.json(&["sync"]);
    assert_eq!(report[0]["new"], 1, "{report}");
    let out = console.json(&["approve", &id, "--reason", "over TLS"]);
    assert_eq!(out["delivery"]["result"], "accepted", "{out}");
    // The CA is that enforcement point's only: the file can go, the pin keeps it.
    std::fs::remove_file(&ca_file).expect("remove");
    console.ok(&["sync"]);
}

/// The kid of `gw`'s key as its well-known document publishes it, read over TLS with `client`.
async fn tls_gateway_kid(gw: &Gateway, client: &reqwest::Client) -> String {
    let wk: Value = client
        .get(gw.at("/.well-known/countersign"))
        .send()
        .await
        .expect("well-known")
        .json()
        .await
        .expect("json");
    let jwk: protocol::Jwk = serde_json::from_value(wk["jwks"]["keys"][0].clone()).expect("jwk");
    jwk.thumbprint()
}

/// SHA-256 of `bytes`, hex, by `sha256sum` (the tests crate links no hash of its own).
fn sha256_hex(bytes: &[u8]) -> String {
    use std::io::Write as _;
    let mut child =
        Command::new("sha256sum").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("sha256sum");
    child.stdin.take().expect("stdin").write_all(bytes).expect("write");
    let out = child.wait_with_output().expect("sha256sum");
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().expect("hash").to_string()
}

/// Run SQL on a database file with the `sqlite3` command-line shell.
fn sqlite(db: &Path, sql: &str) -> String {
    sqlite_with(&[], db, sql)
}

/// [`sqlite`] with options for the shell (e.g. `-json`).
fn sqlite_with(options: &[&str], db: &Path, sql: &str) -> String {
    let out = Command::new("sqlite3").args(options).arg(db).arg(sql).output().expect("sqlite3");
    assert!(out.status.success(), "sqlite3: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Finding 13: checkpoints are verified against keys from the chain itself. Someone with the file
/// (not the keyring) rewrites a row, recomputes the chain, re-signs every checkpoint with their own
/// key under the real kid, and swaps their public key into the `keys` table with `sqlite3`. Neither
/// `history verify` nor `history reanchor --yes` (which sets the keyring's anchor aside) accepts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_signed_by_a_key_swapped_into_the_key_table_are_caught() {
    use ed25519_dalek::Signer as _;
    let (_dir, gw, agent, console) = setup().await;
    submit_id(&gw, &agent, "test.high").await;
    console.json(&["sync"]);
    console.ok(&["history", "checkpoint"]);
    submit_id(&gw, &agent, "test.medium").await;
    console.json(&["sync"]);
    console.ok(&["history", "checkpoint"]);
    console.ok(&["history", "verify"]);

    let kid = console.json(&["key", "show"])["kid"].as_str().expect("kid").to_string();
    let profile = std::fs::read_to_string(console.dir().join("profile-id")).expect("profile id");
    let forger = protocol::generate_key();
    let db = console.db();
    let rows: Vec<Value> = serde_json::from_str(&sqlite_with(
        &["-json"],
        &db,
        "SELECT seq, at, kind, ep, request_id, detail FROM history ORDER BY seq",
    ))
    .expect("rows");
    let received =
        rows.iter().find(|r| r["kind"] == "request received").expect("a request row")["seq"].clone();
    let mut sql = String::from("DROP TRIGGER history_no_update;\n");
    let mut prev = "0".repeat(64);
    let quote = |s: &str| format!("'{}'", s.replace('\'', "''"));
    for r in &rows {
        let seq = r["seq"].as_i64().expect("seq");
        let mut detail = r["detail"].as_str().expect("detail").to_string();
        if r["seq"] == received {
            detail = r#"{"statement":"nothing to see"}"#.to_string();
        }
        if r["kind"] == "checkpoint" {
            let message =
                format!("countersign-history-checkpoint/v1\n{}\n{}\n{prev}", profile.trim(), seq - 1);
            let sig: String =
                forger.sign(message.as_bytes()).to_bytes().iter().map(|b| format!("{b:02x}")).collect();
            detail = serde_json::json!({"upto": seq - 1, "head": prev, "kid": kid, "sig": sig}).to_string();
        }
        let row = serde_json::json!({"seq": seq, "at": r["at"], "kind": r["kind"], "ep": r["ep"],
            "request_id": r["request_id"], "detail": detail});
        let hash = sha256_hex(format!("{prev}{}", protocol::canonicalize(&row).expect("jcs")).as_bytes());
        sql.push_str(&format!(
            "UPDATE history SET detail = {}, prev_hash = {}, hash = {} WHERE seq = {seq};\n",
            quote(&detail),
            quote(&prev),
            quote(&hash)
        ));
        prev = hash;
    }
    let forged_jwk = serde_json::to_string(&protocol::Jwk::from_key(&forger.verifying_key())).expect("jwk");
    sql.push_str(&format!("UPDATE keys SET jwk = {} WHERE kid = {};\n", quote(&forged_jwk), quote(&kid)));
    sqlite(&db, &sql);

    let r = console.fails(&["history", "verify"], 5);
    assert!(r.stderr.contains("does not verify"), "the forged checkpoint itself is caught: {}", r.stderr);
    let r = console.fails(&["history", "reanchor", "--yes"], 5);
    assert!(r.stderr.contains("does not verify"), "{}", r.stderr);
    assert_eq!(sqlite(&db, "SELECT COUNT(*) FROM history WHERE kind = 'history re-anchored'").trim(), "0");
}
