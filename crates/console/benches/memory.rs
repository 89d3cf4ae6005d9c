//! What the console core's memory does as the inbox grows, printed (not a criterion harness): run on
//! the private test session,
//!
//!   bash scripts/with-session.sh cargo bench -p countersign-console-core --bench memory
//!
//! The bench fills one profile from an in-process reference gateway (1,000, then 10,000 pending),
//! and for each size starts a fresh process of itself that does what the desktop app's core does:
//! open the profile, the start-up sync (everything already stored), then every inbox page of 100 (an
//! approver scrolling through all of them). That process reports its memory after each step. The
//! same-run baseline is the same process on an empty profile. Memory is the process's anonymous
//! resident memory (heaps, stacks; `/proc/self/smaps_rollup`), where what grows with the work lives.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use common::{draft, Rig, WORKLOAD};
use countersign_console::{Console, OsKeyring};

/// Anonymous resident memory of this process, KiB.
fn anon_kib() -> anyhow::Result<u64> {
    let text = std::fs::read_to_string("/proc/self/smaps_rollup")?;
    text.lines()
        .find_map(|l| l.strip_prefix("Anonymous:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no Anonymous line in smaps_rollup"))
}

/// The child: open `dir`, sync, page through the whole inbox; print the memory after each, in MiB.
async fn child(dir: &Path) -> anyhow::Result<()> {
    let start = anon_kib()?;
    let console = Console::open(dir, Arc::new(OsKeyring::default())).await?;
    let opened = anon_kib()?;
    console.key().await?;
    let keyed = anon_kib()?;
    for report in console.sync().await? {
        anyhow::ensure!(report.error.is_none() && report.new == 0, "{report:?}");
    }
    let synced = anon_kib()?;
    let total = console.inbox_page(0, 1).await?.total;
    let mut listed = 0;
    while listed < total {
        listed += console.inbox_page(listed, 100).await?.entries.len() as u32;
    }
    let paged = anon_kib()?;
    let mib = |k: u64| k as f64 / 1024.0;
    println!(
        "{total:>6} pending: anon {:>5.1} MiB at start, {:>5.1} opened, {:>5.1} key read, {:>5.1} synced, {:>5.1} after every page",
        mib(start),
        mib(opened),
        mib(keyed),
        mib(synced),
        mib(paged)
    );
    Ok(())
}

fn run_child(dir: &Path) -> anyhow::Result<()> {
    let status = Command::new(std::env::current_exe()?).arg("--child").arg(dir).status()?;
    anyhow::ensure!(status.success(), "the measuring process failed");
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--child") {
        return child(Path::new(&args[at + 1])).await;
    }
    let rig = Rig::start().await?;
    let app = rig.gw.app.clone();
    println!(
        "countersign-console core memory (a fresh process per figure; debug={})",
        cfg!(debug_assertions)
    );
    let empty = rig.tmp.path().join("empty");
    // The key exists (the keyring entry is per profile): the child only reads.
    Console::open(&empty, Arc::new(OsKeyring::default())).await?.key().await?;
    println!("same-run baseline, an empty profile:");
    run_child(&empty)?;
    let draft = draft()?;
    let mut filled = 0;
    for n in [1_000, 10_000] {
        while filled < n {
            let batch = (n - filled).min(64);
            let submits = (0..batch).map(|_| app.submit(WORKLOAD, draft.clone(), None));
            for r in futures::future::join_all(submits).await {
                r.map_err(|e| anyhow::anyhow!(e.message))?;
            }
            filled += batch;
        }
        for report in rig.console.sync().await? {
            anyhow::ensure!(report.error.is_none(), "{report:?}");
        }
        run_child(&rig.console.profile().dir)?;
    }
    Ok(())
}
