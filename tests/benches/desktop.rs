//! Desktop app figures: cold start to inbox rendered, resident memory of all the app's processes
//! (web view included) with 1,000 pending, and the inbox with 10,000 pending.
//!
//! Run inside the private session: `bash scripts/with-session.sh cargo bench -p countersign-blackbox --bench desktop`
//! (after `cargo build --workspace --bins`). Prints figures; asserts nothing.

use std::time::{Duration, Instant};

use countersign_blackbox::console::Console;
use countersign_blackbox::webdriver::{Driver, Session};
use countersign_blackbox::*;
use serde_json::json;

const AGENT: &str = "spiffe://acme.example/ns/bench/sa/agent";

/// Fill the gateway with `n` pending requests and sync them into the console profile.
async fn fill(gw: &Gateway, console: &Console, agent: &Agent, n: usize) {
    let client = http();
    let body = draft(AGENT, "test.medium");
    let mut sent = 0;
    while sent < n {
        let batch = (n - sent).min(64);
        let futs = (0..batch).map(|_| {
            let mut d = body.clone();
            d["ttl_s"] = json!(3600);
            client.post(gw.at("/v1/step-ups")).bearer_auth(&agent.token).json(&d).send()
        });
        for r in futures::future::join_all(futs).await {
            assert_eq!(r.expect("submit").status().as_u16(), 201);
        }
        sent += batch;
    }
    console.ok(&["sync"]);
}

/// Memory of every process in the driver's process group but the driver and WebKitWebDriver
/// themselves — the app, its web content and network processes: (RSS, PSS) in KiB. PSS splits
/// shared pages among the processes that share them, so it is the fair sum; RSS counts shared
/// libraries once per process.
fn app_memory_kib(driver: &Driver) -> (u64, u64) {
    let pgid = driver.pid().to_string();
    let (mut rss, mut pss) = (0, 0);
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) else { continue };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.get(2) != Some(&pgid.as_str()) {
            continue;
        }
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if comm.trim() == "tauri-driver" || comm.trim().starts_with("WebKitWebDriver") {
            continue;
        }
        let rollup = std::fs::read_to_string(entry.path().join("smaps_rollup")).unwrap_or_default();
        let field = |name: &str| {
            rollup
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
                .unwrap_or(0)
        };
        rss += field("Rss:");
        pss += field("Pss:");
    }
    (rss, pss)
}

fn mib((rss, pss): (u64, u64)) -> String {
    format!("PSS {:.1} MiB (RSS {:.1} MiB)", pss as f64 / 1024.0, rss as f64 / 1024.0)
}

async fn launch_until_rows(console: &Console, rows: usize) -> (Driver, Session, Duration) {
    let driver = Driver::start(&[
        ("COUNTERSIGN_HOME", console.dir().to_str().expect("utf-8")),
        ("WEBKIT_DISABLE_COMPOSITING_MODE", "1"),
    ]);
    let t = Instant::now();
    let s = Session::new(&driver, &bin("countersign-console"), &[]).await;
    s.wait_for("[data-testid=inbox-row]", rows, 300).await;
    (driver, s, t.elapsed())
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tmp");
        let gw = Gateway::start(dir.path(), &["--rate-limit", "1000000"]);
        let agent = gw.agent(AGENT);
        let console = Console::new();
        console.connect(&gw, "bench@acme.example").await;
        fill(&gw, &console, &agent, 20).await;

        // Cold start: process launch (through WebDriver) → first inbox rows rendered.
        let mut starts = Vec::new();
        for _ in 0..3 {
            let (_driver, s, took) = launch_until_rows(&console, 1).await;
            starts.push(took);
            s.close().await;
        }
        let t = Instant::now();
        for _ in 0..3 {
            console.ok(&["pending", "--json"]);
        }
        let cli = t.elapsed() / 3;
        println!(
            "cold start → inbox rendered (20 pending)    median {} ms  (3 runs; same-run baseline: CLI `pending --json` {} ms)",
            median(starts).as_millis(),
            cli.as_millis()
        );

        fill(&gw, &console, &agent, 980).await;
        let (driver, s, took) = launch_until_rows(&console, 1).await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let mem = app_memory_kib(&driver);
        println!("1,000 pending: start → inbox rendered       {} ms", took.as_millis());
        println!("1,000 pending: memory, all app processes    {}", mib(mem));
        s.close().await;
        drop(driver);

        fill(&gw, &console, &agent, 9_000).await;
        let (driver, s, took) = launch_until_rows(&console, 1).await;
        let ipc = s
            .script(
                "const t = performance.now(); return window.__TAURI_INTERNALS__.invoke('list_requests')\
                 .then(r => [performance.now() - t, r.length]);",
                json!([]),
            )
            .await;
        println!("10,000 pending: start → inbox rendered      {} ms", took.as_millis());
        println!("10,000 pending: list_requests IPC round trip {ipc}  ([ms, rows])");
        let rendered = s.find_all("[data-testid=inbox-row]").await.len();
        println!("10,000 pending: rows in the DOM              {rendered} (virtualized)");
        println!("10,000 pending: memory, all app processes   {}", mib(app_memory_kib(&driver)));
        s.close().await;
    });
}
