//! The event path from the gateway's stream to the console's commit, step by step, printed (not a
//! criterion harness): run on the private test session,
//!
//!   bash scripts/with-session.sh cargo bench -p countersign-console-core --bench event_path
//!
//! with `COUNTERSIGN_BENCH_N` requests (default 400).
//!
//! - emit → persisted: as in the app, from the gateway handing the event to its subscribers until
//!   the console's watch has verified and committed it (its callback runs);
//! - same-run baseline: the same events read off the same stream by a bare SSE client (HTTP and
//!   event parsing only, no checks, no store) — the floor of the hop;
//! - each step of `Console::ingest` on the same tokens, in a second profile pinned to the same
//!   gateway: the event's JSON, the signature check, the request digest, the display warnings, the
//!   inbox line with its JSON, and the SQLite transaction (the whole ingest less those steps),
//!   against a same-run floor: a relaxed transaction of one small row on the same writer.

mod common;

use std::time::{Duration, Instant};

use common::{draft, env_usize, ms, pct, report, Rig, WORKLOAD};
use countersign_console::display;
use countersign_console::requests::{Ingested, RequestLine};
use countersign_console::watch::WatchEvent;
use countersign_console::{Console, OsKeyring};
use countersign_protocol::{self as protocol, StepUpClaims, Validation, TYP_STEP_UP};
use futures::StreamExt as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n = env_usize("COUNTERSIGN_BENCH_N", 400);
    let rig = Rig::start().await?;
    let app = rig.gw.app.clone();

    // The app's path: the watch, announcing each stored request.
    let (tx, mut stored) = tokio::sync::mpsc::unbounded_channel();
    let (watcher, watch_ep) = (rig.console.clone(), rig.ep.clone());
    tokio::spawn(async move {
        watcher
            .watch_ep(watch_ep, move |e| match e {
                WatchEvent::Request { id, .. } => {
                    let _ = tx.send(Some((id, Instant::now())));
                }
                WatchEvent::Backfilled { .. } => {
                    let _ = tx.send(None);
                }
                _ => {}
            })
            .await
    });
    while let Some(Some(_)) = stored.recv().await {}

    // The baseline: a bare SSE client on the same stream.
    let bare = rig.bare_approver("baseline@acme.example").await?;
    let resp =
        reqwest::Client::new().get(format!("{}/v1/events", rig.url)).bearer_auth(bare.auth()?).send().await?;
    anyhow::ensure!(resp.status().is_success(), "baseline stream refused: {}", resp.status());
    let (bare_tx, mut bare_read) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        use eventsource_stream::Eventsource as _;
        let mut events = resp.bytes_stream().eventsource();
        while let Some(Ok(e)) = events.next().await {
            if e.event == "step-up" {
                let _ = bare_tx.send((e.data, Instant::now()));
            }
        }
    });

    // The replay: a second profile pinned to the same gateway.
    let replay =
        Console::open(&rig.tmp.path().join("replay"), std::sync::Arc::new(OsKeyring::default())).await?;
    let replay_ep = replay.add_ep(&rig.url, &rig.gw_kid).await?;
    let key = replay_ep.key()?;

    println!("countersign-console event path ({n} requests, loopback, debug={})", cfg!(debug_assertions));
    let mut events = app.subscribe();
    let draft = draft()?;
    let (mut e2e, mut floor) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut parse, mut verify, mut digest, mut warn, mut line, mut sqlite, mut ingest) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..n {
        let (_, body) =
            app.submit(WORKLOAD, draft.clone(), None).await.map_err(|e| anyhow::anyhow!(e.message))?;
        let event = events.recv().await?;
        let (id, at) = stored.recv().await.flatten().ok_or_else(|| anyhow::anyhow!("watch ended"))?;
        anyhow::ensure!(body["id"] == id.as_str(), "events out of order");
        let (data, read) = bare_read.recv().await.ok_or_else(|| anyhow::anyhow!("baseline stream ended"))?;
        anyhow::ensure!(data == event.data, "the baseline read another event");
        e2e.push(at - event.emitted);
        floor.push(read - event.emitted);

        // Step by step, as `Console::ingest` does them.
        let t = Instant::now();
        let parsed = protocol::ijson::parse(event.data.as_bytes())?;
        let jwt = parsed["jwt"].as_str().ok_or_else(|| anyhow::anyhow!("no jwt"))?.to_string();
        parse.push(t.elapsed());
        let t = Instant::now();
        let v = protocol::verify::<StepUpClaims>(
            &jwt,
            TYP_STEP_UP,
            &key,
            &Validation::at(countersign_console::now()),
        )?;
        verify.push(t.elapsed());
        let t = Instant::now();
        std::hint::black_box(protocol::request_digest(&v.raw)?);
        digest.push(t.elapsed());
        let t = Instant::now();
        let warnings = display::warnings(&v.raw).len();
        warn.push(t.elapsed());
        let t = Instant::now();
        let l = RequestLine::of(&v.claims, warnings).for_list();
        std::hint::black_box((serde_json::to_string(&l)?, serde_json::to_string(&v.raw)?));
        line.push(t.elapsed());
        let t = Instant::now();
        anyhow::ensure!(matches!(replay.ingest(&replay_ep, Some(&id), &jwt).await?, Ingested::New(_)));
        let whole = t.elapsed();
        ingest.push(whole);
        let steps = verify.last().copied().unwrap_or_default()
            + digest.last().copied().unwrap_or_default()
            + warn.last().copied().unwrap_or_default()
            + line.last().copied().unwrap_or_default();
        sqlite.push(whole.saturating_sub(steps));
    }
    // The floor of a relaxed transaction through sqlx on the same writer: one small row.
    let writer = &replay.profile().writer;
    sqlx::query("CREATE TABLE IF NOT EXISTS bench_floor (v INTEGER)").execute(writer).await?;
    let mut floor_tx = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        let mut tx = writer.begin_with("PRAGMA synchronous = NORMAL; BEGIN IMMEDIATE").await?;
        sqlx::query("INSERT INTO bench_floor (v) VALUES (?)").bind(i as i64).execute(&mut *tx).await?;
        tx.commit().await?;
        floor_tx.push(t.elapsed());
    }
    let p50 = |xs: &mut Vec<Duration>| {
        xs.sort();
        pct(xs, 0.5)
    };
    report("emit → persisted in the console (watch)", &mut e2e);
    report("baseline: emit → read by a bare SSE client", &mut floor);
    println!("  the same ingest, step by step:");
    report("  event JSON (I-JSON parse)", &mut parse);
    report("  signature check (Ed25519, claims)", &mut verify);
    report("  request digest (canonical JSON, SHA-256)", &mut digest);
    report("  display warnings", &mut warn);
    report("  inbox line and stored JSON", &mut line);
    report("  SQLite transaction (request + history row)", &mut sqlite);
    report("  whole ingest", &mut ingest);
    report("baseline: one small row, relaxed, same writer", &mut floor_tx);
    let hop = p50(&mut e2e).saturating_sub(p50(&mut parse) + p50(&mut ingest));
    println!(
        "{:<44} {:.3} ms (emit → persisted p50 less parse and ingest p50; the bare client's p50 is {:.3} ms)",
        "stream hop, at the median",
        ms(hop),
        ms(p50(&mut floor))
    );
    Ok(())
}
