//! Figures for the README, printed (not a criterion harness): run on the private test session,
//!
//!   bash scripts/with-session.sh cargo bench -p countersign-console-core --bench console
//!
//! with `COUNTERSIGN_BENCH_N` requests per latency series (default 200) and
//! `COUNTERSIGN_BENCH_ROWS` history rows (default 1,000,000).
//!
//! - emit → persisted: from the moment an in-process reference gateway hands the step-up event to
//!   its subscribers (after its own policy, signature and durable commit) until the console's SSE
//!   engine has verified and committed the request; `submit → persisted` adds the gateway's part;
//! - emit → notification sent: the same, until the desktop notification for it (what the app sends,
//!   through `Notifier::request_arrived`) has been accepted by the notification daemon (dunst in the
//!   private session). Each request gets a fresh notifier (burst counts), so none is folded into a
//!   flood summary; all share one session-bus connection, as the app's notifier does;
//! - notification accepted: `Desktop::show` over one long-lived connection, against a fresh
//!   session-bus connection per notification in the same run;
//! - decision round trip: `Console::decide` (checks, re-verify, keyring key, sign, commit with its
//!   outbox row, POST with a fresh auth token, gateway verifies and commits, outcome committed)
//!   against a same-run baseline: an in-memory key signs, one SQLite row is committed with
//!   synchronous FULL, and the decision is POSTed to the same gateway;
//! - sync pass: `Console::sync_ep` with `COUNTERSIGN_BENCH_PENDING` (default 2,000) requests
//!   pending and already stored, against the signed GET of the same pending list; then one inbox
//!   page of 100 lines (what the app fetches), at the top and deep in the list;
//! - history: a filtered page and full-text searches over the chained history.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{draft, env_usize, report, Rig, WORKLOAD};
use countersign_console::history::{self, Filter};
use countersign_console::notify::desktop::{Desktop, Note, Urgency};
use countersign_console::notify::{Notice, Notifier};
use countersign_console::outbox::Delivery;
use countersign_console::settings::Settings;
use countersign_console::sync::SyncReport;
use countersign_console::watch::WatchEvent;
use countersign_console::{Console, DecisionInput, OsKeyring};
use countersign_protocol::{self as protocol, DataClass, DecisionClaims, Tier, Verdict, TYP_DECISION};

const TIERS: [Tier; 4] = [Tier::Low, Tier::Medium, Tier::High, Tier::Critical];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n = env_usize("COUNTERSIGN_BENCH_N", 200);
    let rows = env_usize("COUNTERSIGN_BENCH_ROWS", 1_000_000);
    let rig = Rig::start().await?;
    let (tmp, url, app, console, ep) =
        (&rig.tmp, &rig.url, rig.gw.app.clone(), rig.console.clone(), rig.ep.clone());

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let (notified_tx, mut notified) = tokio::sync::mpsc::unbounded_channel();
    let watcher = console.clone();
    let watch_ep = ep.clone();
    let notifying = console.clone();
    let desktop = Arc::new(Desktop::default());
    tokio::spawn(async move {
        watcher
            .watch_ep(watch_ep, move |e| match e {
                WatchEvent::Request { ep, id } => {
                    let _ = tx.send(Some((id.clone(), Instant::now())));
                    let (console, done, desktop) = (notifying.clone(), notified_tx.clone(), desktop.clone());
                    tokio::spawn(async move {
                        let sent = Notifier::new(desktop).request_arrived(&console, &ep, &id).await;
                        let _ = done.send((sent.map(|n| matches!(n, Notice::Shown(_))), Instant::now()));
                    });
                }
                WatchEvent::Connected { .. } => {
                    let _ = tx.send(None);
                }
                _ => {}
            })
            .await
    });
    while let Some(Some(_)) = rx.recv().await {}

    println!(
        "countersign-console benchmarks ({n} requests per series, loopback, debug={})",
        cfg!(debug_assertions)
    );
    // Emit → persisted.
    let draft = draft()?;
    let mut emitted = Vec::with_capacity(n);
    let mut submitted = Vec::with_capacity(n);
    let mut shown = Vec::with_capacity(n);
    let mut ids = Vec::with_capacity(2 * n);
    let mut gateway_events = app.subscribe();
    for _ in 0..2 * n {
        let t0 = Instant::now();
        let (_, body) =
            app.submit(WORKLOAD, draft.clone(), None).await.map_err(|e| anyhow::anyhow!(e.message))?;
        let event = gateway_events.recv().await?;
        anyhow::ensure!(event.kind == "step-up" && event.data.contains(body["id"].as_str().unwrap_or("?")));
        let (id, t1) = rx.recv().await.flatten().ok_or_else(|| anyhow::anyhow!("watch ended"))?;
        anyhow::ensure!(body["id"] == id.as_str(), "events out of order");
        let (sent, t2) = notified.recv().await.ok_or_else(|| anyhow::anyhow!("notifier ended"))?;
        anyhow::ensure!(sent?, "notification not sent (is the session's notification daemon up?)");
        emitted.push(t1 - event.emitted);
        submitted.push(t1 - t0);
        shown.push(t2 - event.emitted);
        ids.push(id);
        // dunst slows down as its list of shown notifications grows: each request starts from an empty list.
        std::process::Command::new("dunstctl").arg("close-all").status()?;
    }
    report("emit → persisted in the console", &mut emitted);
    report("emit → notification sent (dunst)", &mut shown);
    report("submit → persisted (incl. gateway's commit)", &mut submitted);
    // The notification alone: over the one long-lived connection the app keeps, against the
    // same-run baseline of a session-bus connection per notification (what notify-rust did).
    let note = |i: usize| Note {
        summary: "MEDIUM · Bench agent".into(),
        body: format!("benchmark {i}"),
        urgency: Urgency::Low,
        request: (ep.ep.clone(), format!("bench-{i}")),
    };
    let (mut shared, mut fresh) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let one = Desktop::default();
    let close_all = || std::process::Command::new("dunstctl").arg("close-all").status().map(|_| ());
    for i in 0..n {
        // Each starts from an empty list, as above.
        close_all()?;
        let t0 = Instant::now();
        one.show(note(i)).await?;
        shared.push(t0.elapsed());
        close_all()?;
        let t0 = Instant::now();
        Desktop::default().show(note(i)).await?;
        fresh.push(t0.elapsed());
    }
    report("notification accepted, one connection", &mut shared);
    report("baseline: a connection per notification", &mut fresh);

    // Decision round trip, then the same-run baseline on the other half.
    let (mine, baseline_ids) = ids.split_at(n);
    let mut decided = Vec::with_capacity(n);
    for id in mine {
        let t0 = Instant::now();
        let out = console
            .decide(
                id,
                DecisionInput {
                    verdict: Verdict::Approve,
                    reason: String::new(),
                    ttl_s: None,
                    max_uses: None,
                    binding_code: None,
                },
            )
            .await?;
        decided.push(t0.elapsed());
        anyhow::ensure!(
            matches!(out.delivery, Delivery::Accepted { .. }),
            "not accepted: {:?}",
            out.delivery
        );
    }
    let p99_console = report("decision round trip (console)", &mut decided);
    let mut reads = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        console.key().await?;
        reads.push(t0.elapsed());
    }
    report("  of which: one keyring read (Secret Service)", &mut reads);

    let base = rig.bare_approver("base@acme.example").await?;
    let base_db = countersign_console::profile::open_db(&tmp.path().join("baseline.db")).await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS baseline (jti TEXT PRIMARY KEY, token TEXT NOT NULL)")
        .execute(&base_db)
        .await?;
    let http = reqwest::Client::new();
    let mut baseline = Vec::with_capacity(n);
    for id in baseline_ids {
        let claims = console.request(id).await?.raw;
        let t0 = Instant::now();
        let t = countersign_console::now();
        let decision = DecisionClaims {
            iss: base.kid.clone(),
            aud: ep.ep.clone(),
            sub: id.clone(),
            iat: t,
            exp: t + 120,
            jti: protocol::new_id(),
            digest: protocol::request_digest(&claims)?,
            decision: Verdict::Approve,
            reason: String::new(),
            constraints: None,
            binding_code: None,
        };
        let token = protocol::sign(&decision, TYP_DECISION, &base.key)?;
        sqlx::query("INSERT INTO baseline (jti, token) VALUES (?, ?)")
            .bind(&decision.jti)
            .bind(&token)
            .execute(&base_db)
            .await?;
        let auth = base.auth()?;
        let resp = http
            .post(format!("{url}/v1/step-ups/{id}/decisions"))
            .bearer_auth(auth)
            .header("content-type", "application/jwt")
            .body(token)
            .send()
            .await?;
        anyhow::ensure!(resp.status().as_u16() == 200, "baseline decision refused: {}", resp.text().await?);
        baseline.push(t0.elapsed());
    }
    let p99_base = report("baseline (sign + fsync'd row + POST)", &mut baseline);
    println!(
        "{:<44} {:.2}× (target ≤ 2×)",
        "decision p99 / baseline p99",
        p99_console.as_secs_f64() / p99_base.as_secs_f64()
    );

    // A sync pass (what `sync`, start-up and every reconnect do) with many requests pending and
    // already stored, against the same-run baseline: the signed GET of the pending list alone.
    let stored = env_usize("COUNTERSIGN_BENCH_PENDING", 2_000);
    let quiet = Settings { notifications_paused: true, ..console.settings().await? };
    console.save_settings(&quiet).await?;
    for _ in 0..stored {
        app.submit(WORKLOAD, draft.clone(), None).await.map_err(|e| anyhow::anyhow!(e.message))?;
        while rx.recv().await.ok_or_else(|| anyhow::anyhow!("watch ended"))?.is_none() {}
    }
    let (mut passes, mut gets) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        let t0 = Instant::now();
        let mut pass = SyncReport::default();
        console.sync_ep(&ep, &mut pass).await?;
        passes.push(t0.elapsed());
        anyhow::ensure!(pass.new == 0 && pass.rejected == 0 && pass.resolved == 0, "{pass:?}");
        // The list is paged (by count and bytes, with a cursor), as the sync pass reads it.
        let t0 = Instant::now();
        let (mut listed, mut after) = (0, None::<String>);
        loop {
            let cursor = after.as_deref().map(|a| format!("&after={a}")).unwrap_or_default();
            let page: serde_json::Value = http
                .get(format!(
                    "{url}/v1/step-ups?state=pending&limit={}{cursor}",
                    countersign_console::sync::BACKFILL_PAGE
                ))
                .bearer_auth(base.auth()?)
                .send()
                .await?
                .json()
                .await?;
            listed += page["items"].as_array().map_or(0, Vec::len);
            match page["next"].as_str() {
                Some(next) => after = Some(next.to_string()),
                None => break,
            }
        }
        anyhow::ensure!(listed >= stored, "pending list short: {listed}");
        gets.push(t0.elapsed());
    }
    report(&format!("sync pass, {stored} pending already stored"), &mut passes);
    report("baseline (signed GET of the pending list)", &mut gets);
    let median = |xs: &[Duration]| xs[xs.len() / 2].as_secs_f64();
    println!("{:<44} {:.2}×", "sync pass median / baseline median", median(&passes) / median(&gets));
    // The inbox the app shows: one page of 100 lines, first and deep, with the counts.
    for (label, offset) in [("first", 0u32), ("deep", (stored as u32).saturating_sub(100))] {
        let mut pages = Vec::with_capacity(n);
        for _ in 0..n {
            let t0 = Instant::now();
            let page = console.inbox_page(offset, 100).await?;
            pages.push(t0.elapsed());
            anyhow::ensure!(page.entries.len() == 100 && page.total as usize >= stored, "short inbox page");
        }
        report(&format!("inbox page of 100, {label}, {stored} pending"), &mut pages);
    }
    console.save_settings(&Settings { notifications_paused: false, ..quiet }).await?;

    // History over many rows.
    let hist = Console::open(&tmp.path().join("history"), Arc::new(OsKeyring::default())).await?;
    let db = &hist.profile().db;
    let t0 = Instant::now();
    let words = ["ledger", "refund", "export", "rotate", "invoice", "payroll", "backup", "migrate"];
    let mut i = 0usize;
    while i < rows {
        let mut tx = db.begin().await?;
        for _ in 0..10_000.min(rows - i) {
            let detail = if i % 4 == 3 {
                history::HistoryDetail::DecisionSigned(history::Signed {
                    jti: format!("d{i}"),
                    verdict: if i % 8 == 3 { Verdict::Deny } else { Verdict::Approve },
                    reason: format!("ticket {i}"),
                    kid: String::new(),
                    digest: String::new(),
                    constraints: None,
                    token: String::new(),
                })
            } else {
                let rare = if i % 100_000 == 5 { " zanzibar" } else { "" };
                history::HistoryDetail::RequestReceived(history::Received {
                    jwt: String::new(),
                    digest: String::new(),
                    workload: format!("spiffe://acme.example/agent-{}", i % 100),
                    display: String::new(),
                    on_behalf_of: Vec::new(),
                    purpose: "support".into(),
                    statement: format!("{} account {i}{rare}", words[i % words.len()]),
                    class: DataClass::Confidential,
                    tier: TIERS[i % 4],
                    target: String::new(),
                    policy_reason: String::new(),
                })
            };
            history::append(
                &mut tx,
                1_700_000_000 + i as i64,
                Some("ep-bench"),
                Some(&format!("r{}", i / 4)),
                &detail,
            )
            .await?;
            i += 1;
        }
        tx.commit().await?;
    }
    println!(
        "{:<44} {rows} rows in {:.1} s",
        "history: append (chained, FTS-indexed)",
        t0.elapsed().as_secs_f64()
    );
    let series: [(&str, Filter); 4] = [
        (
            "history page: kind, newest 50",
            Filter { kind: Some(history::HistoryKind::DecisionSigned), limit: Some(50), ..Filter::default() },
        ),
        (
            "history page: since, newest 50",
            Filter { since: Some(1_700_000_000 + rows as i64 / 2), limit: Some(50), ..Filter::default() },
        ),
        (
            "full-text search: rare word",
            Filter { search: Some("zanzibar".into()), limit: Some(50), ..Filter::default() },
        ),
        (
            "full-text search: two words, newest 50",
            Filter { search: Some("payroll account".into()), limit: Some(50), ..Filter::default() },
        ),
    ];
    for (name, filter) in series {
        let mut samples = Vec::with_capacity(50);
        for _ in 0..50 {
            let t0 = Instant::now();
            let found = hist.history(&filter).await?;
            samples.push(t0.elapsed());
            anyhow::ensure!(!found.is_empty(), "{name}: nothing found");
        }
        report(name, &mut samples);
    }
    hist.checkpoint(true).await?;
    let t0 = Instant::now();
    let n_rows = hist.verify_history().await?;
    println!("{:<44} {n_rows} rows in {:.1} s", "history verify", t0.elapsed().as_secs_f64());
    Ok(())
}
