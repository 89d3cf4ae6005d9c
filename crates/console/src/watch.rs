//! Following one enforcement point's event stream: a persisted Last-Event-ID, the backfill as a
//! task of its own beside the stream, reconnects with full-jitter backoff, and the outbox delivered
//! while connected. [`crate::subscriptions`] runs one of these per enforcement point.

use std::time::Duration;

use countersign_protocol as protocol;
use futures::StreamExt as _;
use serde::Serialize;
use serde_json::Value;

use crate::ep::Ep;
use crate::ep_client::backoff;
use crate::requests::Ingested;
use crate::sync::SyncReport;
use crate::{Console, ConsoleError, Result};

/// Something `watch` saw, for the caller to show.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum WatchEvent {
    /// Connected to an enforcement point's stream.
    Connected {
        /// Which.
        ep: String,
    },
    /// A verified request was stored.
    Request {
        /// Enforcement point.
        ep: String,
        /// Request id.
        id: String,
    },
    /// A request was rejected.
    Rejected {
        /// Enforcement point.
        ep: String,
        /// Why.
        reason: String,
    },
    /// A request was resolved.
    Resolved {
        /// Enforcement point.
        ep: String,
        /// Request id.
        id: String,
        /// New state.
        state: String,
    },
    /// The backfill that runs beside a new connection's stream finished: requests it stored
    /// (`new`, not announced one by one) and states it updated are in the store now.
    Backfilled {
        /// Enforcement point.
        ep: String,
        /// Requests stored for the first time.
        new: usize,
        /// Requests whose state it updated.
        resolved: usize,
    },
    /// The connection failed; retrying after `retry_ms`.
    Disconnected {
        /// Enforcement point.
        ep: String,
        /// Why.
        error: String,
        /// Delay before the next attempt.
        retry_ms: u64,
    },
}

/// How often a connected watch delivers due decisions, signs a due checkpoint and folds the WAL.
const UPKEEP_EVERY: Duration = Duration::from_secs(2);

/// A task of the watch that did not finish: a panic goes on as a panic (the subscriptions actor
/// stops that enforcement point's watch with an error) instead of a reconnect that would meet it
/// again; a cancelled one is an error.
fn task_failed(e: tokio::task::JoinError) -> ConsoleError {
    if e.is_panic() {
        std::panic::resume_unwind(e.into_panic());
    }
    ConsoleError::Invalid(format!("a task of the watch stopped: {e}"))
}

/// A spawned task aborted when its handle is dropped (the watch loop that owns it has ended).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Console {
    /// Follow one enforcement point forever; returns only on keyring or database errors.
    pub async fn watch_ep(&self, ep: Ep, on_event: impl Fn(WatchEvent)) -> Result<()> {
        let mut attempt = 0u32;
        loop {
            let error = match self.stream_ep(&ep, &on_event, &mut attempt).await {
                Ok(()) => "the stream ended".to_string(),
                Err(
                    e @ (ConsoleError::Network { .. }
                    | ConsoleError::Protocol(_)
                    | ConsoleError::Untrusted(_)
                    | ConsoleError::Invalid(_)),
                ) => e.to_string(),
                Err(e) => return Err(e),
            };
            self.ep_status(&ep.ep, Some(error.clone())).await?;
            let delay = backoff(attempt);
            attempt = attempt.saturating_add(1);
            on_event(WatchEvent::Disconnected {
                ep: ep.ep.clone(),
                error,
                retry_ms: delay.as_millis() as u64,
            });
            tokio::time::sleep(delay).await;
        }
    }

    /// Open `ep`'s event stream, then backfill beside it: a request sent while a long backlog is
    /// still being read arrives over the stream at once, not after the backlog.
    async fn stream_ep(&self, ep: &Ep, on_event: &impl Fn(WatchEvent), attempt: &mut u32) -> Result<()> {
        use eventsource_stream::Eventsource as _;
        let last: Option<String> = sqlx::query_scalar("SELECT last_event_id FROM eps WHERE ep = ?")
            .bind(&ep.ep)
            .fetch_optional(self.db())
            .await?
            .flatten();
        let url = ep.at("/v1/events");
        let mut req = self.client(ep)?.get(&url).bearer_auth(self.auth_token(&ep.ep).await?);
        if let Some(last) = &last {
            req = req.header("Last-Event-ID", last);
        }
        let resp = req.send().await.map_err(|e| ConsoleError::network(&url, crate::with_causes(&e)))?;
        if !resp.status().is_success() {
            return Err(ConsoleError::network(&url, format!("HTTP {}", resp.status())));
        }
        self.ep_status(&ep.ep, None).await?;
        *attempt = 0;
        on_event(WatchEvent::Connected { ep: ep.ep.clone() });
        let mut events = resp.bytes_stream().eventsource();
        // The backfill runs as a task of its own, not as a future polled by the select below: an
        // arm's body (handling a stream event) awaits the store's one writer, and a backfill
        // suspended while holding that writer would never be polled again to release it.
        let mut backfill = AbortOnDrop(tokio::spawn({
            let (console, ep) = (self.clone(), ep.clone());
            async move {
                let mut report = SyncReport::default();
                console.sync_ep(&ep, &mut report).await.map(|_| report)
            }
        }));
        let mut backfilling = true;
        // The upkeep (outbox, signed checkpoints, WAL folding) starts once the backfill is done, as a
        // task of its own too: a checkpoint reads and writes the keyring and fsyncs, and an event
        // must not wait behind it to be read off the stream.
        let (backfilled, upkeep_starts) = tokio::sync::oneshot::channel();
        let mut backfilled = Some(backfilled);
        let mut upkeep = AbortOnDrop(tokio::spawn(self.clone().upkeep(ep.clone(), upkeep_starts)));
        loop {
            tokio::select! {
                done = &mut backfill.0, if backfilling => {
                    backfilling = false;
                    let report = done.map_err(task_failed)??;
                    // Each request the backfill stored first is announced like one from the stream:
                    // a request submitted while the backfill ran may be listed by it before its
                    // event arrives (the event then finds it known), and it must still be notified.
                    for id in &report.new_ids {
                        on_event(WatchEvent::Request { ep: ep.ep.clone(), id: id.clone() });
                    }
                    on_event(WatchEvent::Backfilled {
                        ep: ep.ep.clone(),
                        new: report.new,
                        resolved: report.resolved,
                    });
                    if let Some(backfilled) = backfilled.take() {
                        let _ = backfilled.send(());
                    }
                }
                next = events.next() => {
                    let Some(next) = next else { return Ok(()) };
                    let event = next.map_err(|e| ConsoleError::network(&url, e))?;
                    self.handle_event(ep, &event.event, &event.data, on_event).await?;
                    if !event.id.is_empty() {
                        // Relaxed: a lost update only makes the next resume replay known events.
                        let mut tx = self.relaxed_tx().await?;
                        sqlx::query("UPDATE eps SET last_event_id = ? WHERE ep = ?")
                            .bind(&event.id)
                            .bind(&ep.ep)
                            .execute(&mut *tx)
                            .await?;
                        tx.commit().await?;
                    }
                }
                // The upkeep only ends on an error (a database or keyring one, or a network one that
                // ends this connection too).
                ended = &mut upkeep.0 => {
                    ended.map_err(task_failed)??;
                    return Ok(());
                }
            }
        }
    }

    /// While connected to `ep`: every couple of seconds, sign a history checkpoint when one is due
    /// (off the per-event path), fold the write-ahead log, and, once the backfill is done (it
    /// delivers the outbox itself at its end), deliver the due decisions. A backfill that never ends
    /// holds back only the deliveries.
    async fn upkeep(self, ep: Ep, mut backfilled: tokio::sync::oneshot::Receiver<()>) -> Result<()> {
        let mut tick = tokio::time::interval(UPKEEP_EVERY);
        let mut delivering = false;
        loop {
            tick.tick().await;
            delivering = delivering || backfilled.try_recv().is_ok();
            if delivering {
                self.deliver_outbox(&ep, false, None, &mut SyncReport::default()).await?;
            }
            self.checkpoint_or_warn().await;
            self.fold_wal().await?;
        }
    }

    async fn handle_event(
        &self,
        ep: &Ep,
        kind: &str,
        data: &str,
        on_event: &impl Fn(WatchEvent),
    ) -> Result<()> {
        let Ok(data) = protocol::ijson::parse(data.as_bytes()) else {
            return Ok(());
        };
        let field = |name: &str| data.get(name).and_then(Value::as_str);
        match (kind, field("id")) {
            ("step-up", Some(id)) => {
                if let Some(jwt) = field("jwt") {
                    match self.ingest(ep, Some(id), jwt).await? {
                        Ingested::New(id) => on_event(WatchEvent::Request { ep: ep.ep.clone(), id }),
                        Ingested::Rejected(reason) => {
                            on_event(WatchEvent::Rejected { ep: ep.ep.clone(), reason })
                        }
                        Ingested::Known | Ingested::Expired => {}
                    }
                }
            }
            ("resolved", Some(id)) => {
                if let Some(state) = field("state") {
                    if self.apply_state(&ep.ep, id, state).await? {
                        on_event(WatchEvent::Resolved {
                            ep: ep.ep.clone(),
                            id: id.into(),
                            state: state.into(),
                        });
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}
