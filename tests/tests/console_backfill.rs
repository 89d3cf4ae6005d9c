//! Finding 10, bounded backfill: a gateway with hundreds of large pending requests pages its list
//! by a byte budget; `countersign sync` reads it page by page in bounded memory; `watch` opens the
//! live stream at once and backfills beside it. Real gateway and CLI processes, real keyring.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use countersign_blackbox::console::Console;
use countersign_blackbox::*;
use serde_json::Value;

const AGENT: &str = "spiffe://acme.example/ns/test/sa/agent";
/// Pending requests in the backlog.
const BACKLOG: usize = 300;
/// Size of each request's arguments.
const ARG_BYTES: usize = 200_000;
/// The gateway's page budget (`LIST_BUDGET`).
const BUDGET: usize = 1 << 20;

/// A high-tier draft carrying about [`ARG_BYTES`] of arguments.
fn large_draft(n: usize) -> Value {
    let mut d = draft(AGENT, "test.high");
    // Strings of at most 10,000 characters each (the gateway caps one string at 16,384).
    let parts: Vec<String> =
        (0..ARG_BYTES / 10_000).map(|p| format!("{n:08}/{p:04}:{}", "x".repeat(9_986))).collect();
    d["actions"][0]["args"] = serde_json::json!({"n": n.to_string(), "parts": parts});
    d
}

/// Submit `count` large requests, a few at a time; their ids.
async fn backlog(gw: &Gateway, agent: &Agent, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    // Two at a time: the policy's 2 s evaluation bound holds for a 200 kB draft on a busy machine.
    for chunk in (0..count).collect::<Vec<_>>().chunks(2) {
        let drafts: Vec<Value> = chunk.iter().map(|n| large_draft(*n)).collect();
        let sent = futures::future::join_all(drafts.iter().map(|d| submit(gw, agent, d))).await;
        for (status, body) in sent {
            assert_eq!(status, 201, "{body}");
            ids.push(body["id"].as_str().expect("id").to_string());
        }
    }
    ids
}

/// The peak resident set (VmHWM, kB) of a running process, or `None` once it is gone.
fn vm_hwm(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_is_paged_bounded_and_beside_the_stream() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gw = Gateway::start(dir.path(), &["--rate-limit", "100000"]);
    let agent = gw.agent(AGENT);
    let ids = backlog(&gw, &agent, BACKLOG).await;

    // The gateway pages by count and by bytes, with a cursor; bad cursors and limits are refused.
    let reader = gw.approver("Auditor", "auditor@acme.example");
    let list = |query: String| {
        let token = reader.auth(&gw.ep);
        let url = gw.at(&format!("/v1/step-ups?{query}"));
        async move {
            let r = http().get(url).bearer_auth(token).send().await.expect("list");
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.expect("json"))
        }
    };
    let (mut seen, mut after, mut pages) = (Vec::new(), None::<String>, 0);
    loop {
        let query = match &after {
            Some(a) => format!("state=pending&limit=1000&after={a}"),
            None => "state=pending&limit=1000".to_string(),
        };
        let (status, page) = list(query).await;
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().expect("items");
        let bytes: usize = items.iter().map(|i| i["jwt"].as_str().expect("jwt").len()).sum();
        assert!(!items.is_empty());
        assert!(
            bytes <= BUDGET || items.len() == 1,
            "a page stops at the byte budget: {bytes} bytes in {}",
            items.len()
        );
        seen.extend(items.iter().map(|i| i["id"].as_str().expect("id").to_string()));
        pages += 1;
        match page.get("next").and_then(Value::as_str) {
            Some(next) => after = Some(next.to_string()),
            None => break,
        }
    }
    let (mut sorted_seen, mut sorted_ids) = (seen.clone(), ids.clone());
    sorted_seen.sort();
    sorted_ids.sort();
    assert_eq!(sorted_seen, sorted_ids, "every pending request exactly once");
    assert!(pages >= (BACKLOG * ARG_BYTES) / BUDGET, "{pages} pages");
    let (status, page) = list("state=pending&limit=3".into()).await;
    assert_eq!((status, page["items"].as_array().expect("items").len()), (200, 3));
    assert_eq!(page["next"], seen[2].as_str(), "the cursor is the page's last item");
    for bad in ["state=pending&after=no-such-request", "state=pending&limit=0", "state=pending&limit=100000"]
    {
        let (status, body) = list(bad.into()).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }

    // `sync` reads the whole backlog page by page, in bounded memory.
    let console = Console::new();
    console.connect(&gw, "alice@acme.example").await;
    let mut sync = console.command(&["sync", "--json"]).stdout(Stdio::piped()).spawn().expect("sync");
    let pid = sync.id();
    let started = Instant::now();
    let mut peak = 0;
    while sync.try_wait().expect("wait").is_none() {
        peak = peak.max(vm_hwm(pid).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = sync.wait_with_output().expect("sync output");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report[0]["new"], BACKLOG, "{report}");
    eprintln!("sync of {BACKLOG} × {ARG_BYTES} B: {:?}, peak RSS {} MB", started.elapsed(), peak / 1024);
    // The backlog's tokens alone are about 80 MB; holding them (and their parse) at once cost far
    // more than this before the list was paged.
    assert!(peak > 0 && peak < 64 * 1024, "peak RSS {peak} kB");

    // `watch` on a fresh profile: the stream is open before the backlog is read, and a request
    // sent meanwhile arrives over it while the backfill is still going.
    let late = Console::new();
    late.connect(&gw, "bob@acme.example").await;
    let mut watch = late.command(&["watch", "--json"]).stdout(Stdio::piped()).spawn().expect("watch");
    let (tx, rx) = std::sync::mpsc::channel::<Value>();
    let stdout = watch.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(serde_json::from_str(&line).unwrap_or(Value::Null)).is_err() {
                return;
            }
        }
    });
    let next_event = |timeout: Duration| rx.recv_timeout(timeout).expect("watch event");
    let connected = next_event(Duration::from_secs(20));
    assert_eq!(connected["event"], "connected", "{connected}");
    let stored = || -> usize {
        let out = Command::new("sqlite3")
            .arg(late.db())
            .arg("SELECT COUNT(*) FROM requests")
            .output()
            .expect("sqlite3");
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0)
    };
    let (status, body) = submit(&gw, &agent, &draft(AGENT, "test.high")).await;
    assert_eq!(status, 201, "{body}");
    let new = body["id"].as_str().expect("id").to_string();
    let arrived = next_event(Duration::from_secs(20));
    let during = stored();
    assert_eq!((arrived["event"].as_str(), arrived["id"].as_str()), (Some("request"), Some(new.as_str())));
    assert!(during < BACKLOG + 1, "it arrived before the backfill ended ({during} stored)");
    let deadline = Instant::now() + Duration::from_secs(120);
    while stored() < BACKLOG + 1 {
        assert!(Instant::now() < deadline, "the backfill finishes beside the stream ({} stored)", stored());
        std::thread::sleep(Duration::from_millis(200));
    }
    watch.kill().expect("kill watch");
    watch.wait().expect("wait watch");
}
