//! Desktop app figures, each with a same-run baseline: cold start to inbox rendered, the first inbox render at
//! every start-up, and the memory of all the app's processes (web view included) with 1,000 pending and with
//! 10,000 after scrolling through them — as ratios to an empty Tauri 2 window measured the same way in the run.
//!
//! `COUNTERSIGN_BENCH_STARTUP_ONLY=1` stops after the cold starts with 20 and 1,000 pending.
//!
//! Run inside the private session: `bash scripts/with-session.sh cargo bench -p countersign-blackbox --bench desktop`
//! (after `cargo build --workspace --bins`). The bench itself builds the release binaries and the empty window
//! (`src-tauri/examples/empty_window.rs`) with the bench's profile, so both are fresh and built alike. Prints
//! figures; asserts nothing.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use countersign_blackbox::app::AppProcess;
use countersign_blackbox::console::Console;
use countersign_blackbox::memory::Memory;
use countersign_blackbox::webdriver::{Driver, Session};
use countersign_blackbox::*;
use serde_json::json;

const AGENT: &str = "spiffe://acme.example/ns/bench/sa/agent";

/// The binaries this bench runs (gateway, CLI, app) and the app's same-run baseline, built release like the
/// bench itself (`bin_dir` is `target/release`): a stale release binary, or a baseline built with other
/// features, would measure something else.
fn build_app_and_baseline() -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args(["build", "--release", "--bins", "--example", "empty_window"])
        .args([
            "-p",
            "countersign-gateway",
            "-p",
            "countersign-console-core",
            "-p",
            "countersign-console-app",
        ])
        .status()
        .expect("run cargo build");
    assert!(status.success(), "building the release app and the empty window failed");
    let empty = bin_dir().join("examples/empty_window");
    assert!(empty.exists(), "{} is missing", empty.display());
    empty
}

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

/// Memory of every process in the driver's process group but the driver and WebKitWebDriver themselves — the
/// app (or the empty window), its web content and network processes.
fn memory_of(driver: &Driver) -> Memory {
    Memory::of_group(driver.pid(), |comm| comm == "tauri-driver" || comm.starts_with("WebKitWebDriver"))
}

/// How many groups the "where it grew" lines name.
const TOP_GROUPS: usize = 8;

/// The page's JavaScript heap, when the web view tells (`performance.memory` is Chromium's; WebKit has none).
async fn js_heap(s: &Session) -> String {
    let v = s
        .script(
            "const m = performance.memory;\
             return m ? [m.usedJSHeapSize, m.totalJSHeapSize] : null;",
            json!([]),
        )
        .await;
    match v.as_array() {
        Some(m) => format!(
            "used {:.1} MiB of {:.1} MiB",
            m[0].as_f64().unwrap_or(0.0) / 1048576.0,
            m[1].as_f64().unwrap_or(0.0) / 1048576.0
        ),
        None => "not exposed by this web view (no performance.memory)".into(),
    }
}

/// tauri-driver with the environment the app is launched with in these runs.
fn driver(console: &Console) -> Driver {
    Driver::start(&[
        ("COUNTERSIGN_HOME", console.dir().to_str().expect("utf-8")),
        ("WEBKIT_DISABLE_COMPOSITING_MODE", "1"),
    ])
}

async fn launch_until_rows(console: &Console, rows: usize) -> (Driver, Session, Duration) {
    let driver = driver(console);
    let t = Instant::now();
    let s = Session::new(&driver, &bin("countersign-console"), &[]).await;
    s.wait_for("[data-testid=inbox-row]", rows, 300).await;
    (driver, s, t.elapsed())
}

/// The same-run baseline: the empty window launched through the same driver, with the same environment and
/// the same settling time as the app before its memory is read.
async fn empty_window_memory(console: &Console, empty: &std::path::Path) -> Memory {
    let driver = driver(console);
    let s = Session::new(&driver, empty, &[]).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while s.script("return document.readyState", json!([])).await != json!("complete") {
        assert!(Instant::now() < deadline, "the empty window never loaded its page");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(SETTLE).await;
    let m = memory_of(&driver);
    s.close().await;
    m
}

/// How long the app idles after scrolling through before its memory is read again.
const IDLE: Duration = Duration::from_secs(30);

/// How long a launched window settles before its memory is read.
const SETTLE: Duration = Duration::from_secs(3);

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

/// Five cold starts; prints every run's first inbox render (the app's own log), not only a median.
fn cold_starts(console: &Console, pending: &str) -> Vec<Duration> {
    let (mut starts, mut own, mut renders) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..5 {
        let (took, app_says, render) = cold_start(console);
        starts.push(took);
        own.push(app_says);
        renders.push(render);
    }
    println!(
        "{pending} pending: first inbox render at start-up, every run (app's log)   {} ms  (target ≤ 100 ms each; start-up to window shown {} ms)",
        renders.join(", "),
        own.join(", ")
    );
    starts
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

/// Scroll the inbox from the top to the bottom, a screen per frame (every page is fetched on the way), in
/// calls short enough for the driver's script timeout; then wait for the last rows to be drawn.
async fn scroll_through(s: &Session) {
    s.script("document.querySelector('.list .viewport').scrollTop = 0;", json!([])).await;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let at_end = s
            .script(
                "const el = document.querySelector('.list .viewport');\
                 return new Promise(done => { let i = 0;\
                   const step = () => { el.scrollTop += el.clientHeight;\
                     const end = el.scrollTop + el.clientHeight >= el.scrollHeight - 1;\
                     if (end || ++i >= 200) done(end); else requestAnimationFrame(step); };\
                   requestAnimationFrame(step); });",
                json!([]),
            )
            .await;
        if at_end == json!(true) {
            break;
        }
        assert!(Instant::now() < deadline, "scrolling through the inbox took over 300 s");
    }
    let last = s.script(
        "return new Promise(done => { const t0 = performance.now(); const check = () => {\
           const rows = document.querySelectorAll('[data-testid=inbox-row]');\
           const slots = document.querySelectorAll('.list .slot');\
           if ((rows.length > 0 && rows.length === slots.length) || performance.now() - t0 > 10000) done(rows.length);\
           else setTimeout(check, 50); }; check(); });",
        json!([]),
    );
    assert!(last.await.as_u64().unwrap_or(0) > 0, "the last page never landed");
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
    let empty = build_app_and_baseline();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tmp");
        let gw = Gateway::start(dir.path(), &["--rate-limit", "1000000"]);
        let agent = gw.agent(AGENT);
        let console = Console::new();
        console.connect(&gw, "bench@acme.example").await;
        fill(&gw, &console, &agent, 20).await;

        // Cold start as a user launches it: process spawn → first inbox drawn and window shown.
        let starts = cold_starts(&console, "20");
        let t = Instant::now();
        for _ in 0..3 {
            console.ok(&["pending", "--json"]);
        }
        let cli = t.elapsed() / 3;
        println!(
            "cold start → inbox drawn, window shown (20 pending)  median {} ms of 5 (same-run baseline: CLI `pending --json` {} ms)",
            median(starts).as_millis(),
            cli.as_millis()
        );
        let (driver, s, took) = launch_until_rows(&console, 1).await;
        println!("cold start through WebDriver (session + first row)     {} ms", took.as_millis());
        s.close().await;
        // One WebDriver at a time: the baseline's session failed to start while this driver still ran.
        drop(driver);

        let baseline = empty_window_memory(&console, &empty).await;
        println!("same-run baseline: memory, empty Tauri 2 window   {baseline}");
        for line in baseline.largest(TOP_GROUPS) {
            println!("    largest groups, {line}");
        }

        fill(&gw, &console, &agent, 980).await;
        cold_starts(&console, "1,000");
        if std::env::var_os("COUNTERSIGN_BENCH_STARTUP_ONLY").is_some() {
            // Quick iterations on start-up: the cold starts alone (20 and 1,000 pending).
            return;
        }
        let (driver, s, took) = launch_until_rows(&console, 1).await;
        tokio::time::sleep(SETTLE).await;
        let mem_1k = memory_of(&driver);
        println!("1,000 pending: start → inbox rendered (WebDriver) {} ms", took.as_millis());
        println!(
            "1,000 pending: memory, all app processes    {mem_1k}\n    = {:.2}× the empty window (target ≤ 1.2×)",
            mem_1k.mib() / baseline.mib()
        );
        println!("    over the empty window {}", mem_1k.growth_over(&baseline, TOP_GROUPS));
        println!("    JS heap: {}", js_heap(&s).await);
        s.close().await;
        drop(driver);

        fill(&gw, &console, &agent, 9_000).await;
        cold_starts(&console, "10,000");
        let (driver, s, took) = launch_until_rows(&console, 1).await;
        println!("10,000 pending: start → rows (WebDriver)      {} ms", took.as_millis());
        // Before any scrolling: what the 10,000 rows cost on their own, apart from scrolling through them.
        tokio::time::sleep(SETTLE).await;
        let mem_10k_top = memory_of(&driver);
        println!(
            "10,000 pending, not scrolled: memory, all app processes   {mem_10k_top}\n    = {:.2}× the 1,000-pending figure\n    over 1,000 pending {}",
            mem_10k_top.mib() / mem_1k.mib(),
            mem_10k_top.growth_over(&mem_1k, TOP_GROUPS)
        );
        let first = s
            .script(
                "const m = performance.getEntriesByName('inbox-refresh')[0];\
                 return m ? Object.assign({ ms: m.duration }, m.detail) : null;",
                json!([]),
            )
            .await;
        println!("10,000 pending: first inbox render (WebDriver launch; ms, where it went)  {first}");
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
        let t = Instant::now();
        scroll_through(&s).await;
        println!("10,000 pending: scrolled through all of them  {:.1} s", t.elapsed().as_secs_f64());
        tokio::time::sleep(SETTLE).await;
        let mem_10k = memory_of(&driver);
        println!(
            "10,000 pending, scrolled through: memory, all app processes   {mem_10k}\n    = {:.2}× the 1,000-pending figure (target ≤ 1.1×), {:.2}× the empty window",
            mem_10k.mib() / mem_1k.mib(),
            mem_10k.mib() / baseline.mib()
        );
        println!("    over 1,000 pending {}", mem_10k.growth_over(&mem_1k, TOP_GROUPS));
        println!("    over 10,000 not scrolled {}", mem_10k.growth_over(&mem_10k_top, TOP_GROUPS));
        println!("    over the empty window {}", mem_10k.growth_over(&baseline, TOP_GROUPS));
        println!("    JS heap: {}", js_heap(&s).await);
        // Whether what scrolling added is held or only not yet given back (garbage collection, allocators'
        // scavengers): the same processes after a while idle.
        tokio::time::sleep(IDLE).await;
        let idle = memory_of(&driver);
        println!(
            "10,000 pending, scrolled through, then {} s idle: memory   {idle}\n    = {:.2}× the 1,000-pending figure\n    over scrolled, not idle {}",
            IDLE.as_secs(),
            idle.mib() / mem_1k.mib(),
            idle.growth_over(&mem_10k, TOP_GROUPS)
        );
        // Whether a second pass adds as much again (held per row fetched) or nothing (a high-water mark).
        scroll_through(&s).await;
        tokio::time::sleep(SETTLE).await;
        let twice = memory_of(&driver);
        println!(
            "10,000 pending, scrolled through twice: memory   {twice}\n    = {:.2}× the 1,000-pending figure\n    over once, then idle {}",
            twice.mib() / mem_1k.mib(),
            twice.growth_over(&idle, TOP_GROUPS)
        );
        s.close().await;
        drop(driver);
        let again = empty_window_memory(&console, &empty).await;
        println!("same-run baseline again (the machine's drift): empty window   {again}");
        println!("    over the first baseline {}", again.growth_over(&baseline, TOP_GROUPS));
    });
}
