//! Desktop app figures: cold start to inbox rendered, resident memory of all the app's processes
//! (web view included) with 1,000 pending, and the inbox with 10,000 pending.
//!
//! Run inside the private session: `bash scripts/with-session.sh cargo bench -p countersign-blackbox --bench desktop`
//! (after `cargo build --workspace --bins`). Prints figures; asserts nothing.

use std::time::{Duration, Instant};

use countersign_blackbox::app::AppProcess;
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
fn app_memory_kib(driver: &Driver) -> (u64, u64, String) {
    let pgid = driver.pid().to_string();
    let (mut rss, mut pss) = (0, 0);
    let mut each = Vec::new();
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
        each.push(format!("{} {:.0}", comm.trim(), field("Pss:") as f64 / 1024.0));
    }
    (rss, pss, each.join(", "))
}

fn mib((rss, pss, each): (u64, u64, String)) -> String {
    format!(
        "PSS {:.1} MiB (RSS {:.1} MiB; PSS MiB by process: {each})",
        pss as f64 / 1024.0,
        rss as f64 / 1024.0
    )
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

/// Launch the app as a user does (no WebDriver), until it logs that the UI drew its first inbox
/// and the window was shown: (wall time from spawn, the app's own figures from its log line:
/// start-up ms and the first inbox render's ms).
fn cold_start(console: &Console) -> (Duration, String, String) {
    use std::io::BufRead as _;
    let t = Instant::now();
    let mut app = AppProcess::spawn(console.dir(), std::process::Stdio::piped());
    let stderr = std::io::BufReader::new(app.child.stderr.take().expect("stderr"));
    let mut took = None;
    for line in stderr.lines() {
        let line = line.expect("log line");
        if line.contains("window shown") {
            let field = |name: &str| {
                let v = line.split(&format!("{name}=")).nth(1).and_then(|r| r.split_whitespace().next());
                v.unwrap_or("?").to_string()
            };
            took = Some((t.elapsed(), field("startup_ms"), field("first_render_ms")));
            break;
        }
    }
    drop(app);
    std::thread::sleep(Duration::from_millis(300));
    took.expect("the app never reported its first inbox")
}

/// The inbox's own timings (`inbox-refresh` performance measures): [total ms, IPC ms, rows] each.
async fn refresh_timings(s: &Session) -> Vec<(f64, f64, u64)> {
    let v = s
        .script(
            "return performance.getEntriesByName('inbox-refresh')\
               .map(m => [m.duration, m.detail.ipcMs, m.detail.rows]);",
            json!([]),
        )
        .await;
    v.as_array()
        .into_iter()
        .flatten()
        .map(|m| (m[0].as_f64().unwrap_or(0.0), m[1].as_f64().unwrap_or(0.0), m[2].as_u64().unwrap_or(0)))
        .collect()
}

/// Scroll the inbox list one screen per frame for `frames` frames; frame intervals in ms, sorted.
async fn scroll_frames(s: &Session, frames: u32) -> Vec<f64> {
    let v = s
        .script(
            "const el = document.querySelector('.list .viewport'); const n = arguments[0];\
             return new Promise(done => { const ts = []; let i = 0;\
               const step = t => { ts.push(t); el.scrollTop += el.clientHeight;\
                 if (++i <= n) requestAnimationFrame(step); else done(ts.slice(1).map((x, k) => x - ts[k])); };\
               requestAnimationFrame(step); });",
            json!([frames]),
        )
        .await;
    let mut xs: Vec<f64> = v.as_array().into_iter().flatten().filter_map(|x| x.as_f64()).collect();
    xs.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
    xs
}

fn pct(xs: &[f64], p: f64) -> f64 {
    xs[((xs.len() as f64 * p).ceil() as usize).clamp(1, xs.len()) - 1]
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

        // Cold start as a user launches it: process spawn → first inbox drawn and window shown.
        let (mut starts, mut own, mut renders) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..5 {
            let (took, app_says, render) = cold_start(&console);
            starts.push(took);
            own.push(app_says);
            renders.push(render);
        }
        let t = Instant::now();
        for _ in 0..3 {
            console.ok(&["pending", "--json"]);
        }
        let cli = t.elapsed() / 3;
        println!(
            "cold start → inbox drawn, window shown (20 pending)  median {} ms of 5 (app's own log: {} ms; same-run baseline: CLI `pending --json` {} ms)",
            median(starts).as_millis(),
            own.join("/"),
            cli.as_millis()
        );
        println!("20 pending: first inbox render (app's log)    {} ms", renders.join("/"));
        let (_driver, s, took) = launch_until_rows(&console, 1).await;
        println!("cold start through WebDriver (session + first row)     {} ms", took.as_millis());
        s.close().await;

        fill(&gw, &console, &agent, 980).await;
        let (driver, s, took) = launch_until_rows(&console, 1).await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let mem = app_memory_kib(&driver);
        println!("1,000 pending: start → inbox rendered (WebDriver) {} ms", took.as_millis());
        println!("1,000 pending: memory, all app processes    {}", mib(mem));
        s.close().await;
        drop(driver);

        fill(&gw, &console, &agent, 9_000).await;
        let (driver, s, took) = launch_until_rows(&console, 1).await;
        println!("10,000 pending: start → rows (WebDriver)      {} ms", took.as_millis());
        let first = refresh_timings(&s).await;
        if let Some((total, ipc, rows)) = first.first() {
            println!(
                "10,000 pending: first inbox render           {total:.0} ms  (IPC {ipc:.0} ms; {rows} rows; target 100 ms)"
            );
        }
        // A new request arrives while 10,000 wait: the app refetches and redraws.
        let mut renders = Vec::new();
        for _ in 0..5 {
            let before = refresh_timings(&s).await.len();
            let mut d = draft(AGENT, "test.medium");
            d["ttl_s"] = json!(3600);
            let r = http().post(gw.at("/v1/step-ups")).bearer_auth(&agent.token).json(&d).send().await;
            assert_eq!(r.expect("submit").status().as_u16(), 201);
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let now = refresh_timings(&s).await;
                if now.len() > before {
                    renders.extend(now[before..].iter().copied());
                    break;
                }
                assert!(Instant::now() < deadline, "no refresh after a new request");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        let mut totals: Vec<f64> = renders.iter().map(|r| r.0).collect();
        totals.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
        let mut ipcs: Vec<f64> = renders.iter().map(|r| r.1).collect();
        ipcs.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
        println!(
            "10,000 pending: re-render on a new request   median {:.0} ms (IPC {:.0} ms) of {}",
            pct(&totals, 0.5),
            pct(&ipcs, 0.5),
            totals.len()
        );
        let frames = scroll_frames(&s, 120).await;
        println!(
            "10,000 pending: scrolling a screen a frame   frame interval p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} frames)",
            pct(&frames, 0.5),
            pct(&frames, 0.99),
            frames.last().copied().unwrap_or(0.0),
            frames.len()
        );
        // The page scrolled to is fetched as the list gets there: wait for its rows.
        let rendered = s.wait_for("[data-testid=inbox-row]", 1, 10).await.len();
        println!("10,000 pending: rows in the DOM              {rendered} (virtualized)");
        println!("10,000 pending: memory, all app processes   {}", mib(app_memory_kib(&driver)));
        s.close().await;
    });
}
