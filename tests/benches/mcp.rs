//! The MCP proxy's cost on an allowed call, with same-run baselines: `get-sum` straight to `server-everything`
//! over stdio, the same call through `countersign-mcp stdio`, and the gateway's own part of it (submit the draft,
//! redeem the grant) over loopback HTTP. Also the proxy's resident memory after the run.
//!
//! Run: `cargo bench -p countersign-blackbox --bench mcp` (after `source scripts/setup.sh && install_mcp_servers`).
//! The bench builds the release gateway and proxy itself. Prints figures; asserts nothing but that calls succeed.

use std::time::{Duration, Instant};

use countersign_blackbox::mcp::{server_everything, Raw, Rig};
use countersign_blackbox::{bin_dir, http};
use serde_json::{json, Value};
use tokio::process::Command;

const ROUNDS: usize = 8;
const PER_ROUND: usize = 50;

fn build_release() {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args(["build", "--release", "--bins", "-p", "countersign-gateway", "-p", "countersign-mcp"])
        .status()
        .expect("run cargo build");
    assert!(status.success(), "building the release gateway and proxy failed");
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn report(name: &str, samples: &mut [f64]) -> (f64, f64) {
    samples.sort_by(f64::total_cmp);
    let (p50, p99) = (pct(samples, 0.5), pct(samples, 0.99));
    println!(
        "{name:<48} n={:<4} p50 {p50:>7.3} ms   p90 {:>7.3} ms   p99 {p99:>7.3} ms",
        samples.len(),
        pct(samples, 0.9)
    );
    (p50, p99)
}

async fn call(raw: &mut Raw, id: u64) -> Duration {
    let t = Instant::now();
    raw.send(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": "get-sum", "arguments": {"a": 2, "b": 3}}}))
        .await;
    let answer = raw.answer(&json!(id), 30).await;
    let took = t.elapsed();
    assert_eq!(answer["result"]["content"][0]["text"], "The sum of 2 and 3 is 5.", "{answer}");
    took
}

/// What the proxy asks of the gateway for one allowed call: submit the draft, redeem the grant.
async fn gateway_part(
    client: &reqwest::Client,
    rig: &Rig,
    agent_token: &str,
    system_token: &str,
) -> Duration {
    let draft = json!({
        "identity": {"workload": countersign_blackbox::mcp::WORKLOAD, "display": "Claude Code",
            "on_behalf_of": [{"sub": "jo@acme.example", "display": "Jo"}]},
        "purpose": {"code": "test.mcp", "statement": "Answer ticket 4711"},
        "data": {"class": "public", "categories": []},
        "target": {"system": "crm", "environment": "production"},
        "actions": [{"tool": "get-sum", "args": {"a": 2, "b": 3}, "reversible": true}],
    });
    let t = Instant::now();
    let r: Value = client
        .post(rig.gw.at("/v1/step-ups"))
        .bearer_auth(agent_token)
        .header("Idempotency-Key", countersign_protocol::new_id())
        .json(&draft)
        .send()
        .await
        .expect("submit")
        .json()
        .await
        .expect("json");
    let grant = r["grant"].as_str().unwrap_or_else(|| panic!("allowed with a grant: {r}"));
    let redeemed = client
        .post(rig.gw.at("/v1/grants/redeem"))
        .bearer_auth(system_token)
        .json(&json!({"grant": grant}))
        .send()
        .await
        .expect("redeem");
    assert!(redeemed.status().is_success());
    let _ = redeemed.bytes().await;
    t.elapsed()
}

fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    build_release();
    println!("binaries: {}", bin_dir().display());
    // The gateway logs at warn and the proxy's log goes nowhere: the figures, not a log, on the terminal.
    std::env::set_var("RUST_LOG", "warn");
    let rig = Rig::start("");
    let agent_token = std::fs::read_to_string(rig.dir.path().join("agent.token")).expect("token");
    let system_token = std::fs::read_to_string(rig.dir.path().join("system.token")).expect("token");
    let mut direct_cmd = Command::new("node");
    direct_cmd.arg(server_everything()).arg("stdio");
    direct_cmd.stderr(std::process::Stdio::null());
    let mut direct = Raw::start(direct_cmd).await;
    let mut proxy_cmd = rig.stdio();
    proxy_cmd.stderr(std::process::Stdio::null());
    let mut proxied = Raw::start(proxy_cmd).await;
    let client = http();
    let proxy_pid = proxied.pid().expect("proxy pid");
    let rss_start = status_kib(proxy_pid, "VmRSS:");

    // Warm up every path, then interleave rounds so that the machine's load falls on all three alike.
    let mut id = 0;
    for _ in 0..20 {
        id += 1;
        call(&mut direct, id).await;
        call(&mut proxied, id).await;
        gateway_part(&client, &rig, &agent_token, &system_token).await;
    }
    let (mut d, mut p, mut g) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        for _ in 0..PER_ROUND {
            id += 1;
            d.push(ms(call(&mut direct, id).await));
        }
        for _ in 0..PER_ROUND {
            id += 1;
            p.push(ms(call(&mut proxied, id).await));
        }
        for _ in 0..PER_ROUND {
            g.push(ms(gateway_part(&client, &rig, &agent_token, &system_token).await));
        }
    }
    println!(
        "allowed tools/call (get-sum), {} calls per series, release build, loopback",
        ROUNDS * PER_ROUND
    );
    let (d50, d99) = report("baseline: straight to server-everything (stdio)", &mut d);
    let (p50, p99) = report("through countersign-mcp stdio", &mut p);
    let (g50, g99) = report("baseline: the gateway's part (submit + redeem)", &mut g);
    println!("added by the proxy: p50 {:.3} ms, p99 {:.3} ms", p50 - d50, p99 - d99);
    // Medians subtract; tails do not (the slowest proxied calls need not be the slowest gateway calls), so the
    // tail is compared with the gateway's own tail rather than reduced to a difference.
    println!(
        "the proxy's own work at the median (added − the gateway's part): {:.3} ms (target ≤ 1 ms)",
        p50 - d50 - g50
    );
    println!("tails: added p99 {:.3} ms against the gateway part's p99 {g99:.3} ms", p99 - d99);
    println!(
        "proxy memory: VmRSS {:.1} MiB after start, {:.1} MiB after {} calls, peak (VmHWM) {:.1} MiB",
        rss_start as f64 / 1024.0,
        status_kib(proxy_pid, "VmRSS:") as f64 / 1024.0,
        id,
        status_kib(proxy_pid, "VmHWM:") as f64 / 1024.0
    );
    proxied.close().await;
    direct.close().await;
}
