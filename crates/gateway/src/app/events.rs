//! The event log's live side: events are appended in the transaction of the change they report
//! and handed to subscribers only after it commits, so the broadcast order is the log's order.

use std::time::Instant;

use serde_json::Value;
use tokio::sync::broadcast;

use crate::error::ApiError;
use crate::store;

/// One entry of the event log.
#[derive(Debug, Clone)]
pub struct Event {
    /// Position in the log; the SSE `id`.
    pub seq: i64,
    /// `step-up` or `resolved`.
    pub kind: &'static str,
    /// JSON data.
    pub data: String,
    /// When it was handed to subscribers (for latency measurements).
    pub emitted: Instant,
}

/// The subscribers of the event log.
#[derive(Debug)]
pub(crate) struct EventLog {
    sender: broadcast::Sender<Event>,
}

impl EventLog {
    /// A log nobody listens to yet.
    pub(crate) fn new() -> Self {
        let (sender, _) = broadcast::channel(4096);
        EventLog { sender }
    }

    /// Subscribe to events published from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.sender.subscribe()
    }

    /// Append an event in the caller's transaction (publish it once that commits).
    pub(crate) async fn append(
        tx: &mut sqlx::SqliteConnection,
        kind: &'static str,
        data: Value,
        now: i64,
    ) -> Result<Event, ApiError> {
        let data = data.to_string();
        let seq = store::append_event(tx, kind, &data, now).await?;
        Ok(Event { seq, kind, data, emitted: Instant::now() })
    }

    /// Hand committed events to the subscribers.
    pub(crate) fn publish(&self, events: Vec<Event>) {
        for mut e in events {
            e.emitted = Instant::now();
            // No subscriber is not an error: the event is in the log for Last-Event-ID replays.
            let _ = self.sender.send(e);
        }
    }
}
