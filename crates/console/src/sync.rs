//! The subscription engine: backfill, live SSE stream with a persisted Last-Event-ID, and delivery
//! of the decision outbox. Used by `countersign sync` (one pass), `countersign watch` and the
//! desktop app.

use std::time::Duration;

use countersign_protocol::{self as protocol, AuthClaims, TYP_AUTH};
use futures::StreamExt as _;
use rand::Rng as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::ep::Ep;
use crate::requests::Ingested;
use crate::{history, now, Console, ConsoleError, Result, CALL_TIMEOUT};

/// Lifetime of the auth tokens the console signs.
pub const AUTH_LIFETIME_S: i64 = 240;
/// How often `watch` looks for enforcement points added or removed since it started.
pub const EP_RESCAN: Duration = Duration::from_secs(5);
/// First reconnect delay cap; doubles per failure up to [`BACKOFF_MAX`].
const BACKOFF_BASE: Duration = Duration::from_millis(500);
/// Largest reconnect delay cap.
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// How a delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Delivery {
    /// The enforcement point accepted the decision; its state afterwards.
    Accepted {
        /// The request's state at the enforcement point.
        state: String,
        /// Its full answer.
        answer: Value,
    },
    /// The enforcement point refused it for good (409, 410, 422, …): recorded, not retried.
    Refused {
        /// HTTP status.
        status: u16,
        /// Its answer.
        answer: Value,
    },
    /// Not delivered yet (network, 5xx, 401); kept in the outbox and retried.
    Queued {
        /// Why.
        error: String,
    },
}

/// What one `sync` pass did for one enforcement point.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncReport {
    /// The enforcement point.
    pub ep: String,
    /// Requests stored for the first time.
    pub new: usize,
    /// Their ids, in the order stored (for `watch` to announce them).
    #[serde(skip)]
    pub new_ids: Vec<String>,
    /// Requests rejected (bad signature, wrong issuer, …).
    pub rejected: usize,
    /// Requests whose state was updated.
    pub resolved: usize,
    /// Decisions delivered (accepted or refused for good).
    pub delivered: usize,
    /// Decisions still queued.
    pub queued: usize,
    /// The error that stopped this pass, if any.
    pub error: Option<String>,
}

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

/// A spawned task aborted when its handle is dropped (the watch loop that owns it has ended).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One page of an enforcement point's pending list.
#[derive(Deserialize)]
struct Items {
    items: Vec<Item>,
    /// The cursor of the next page, when more remain.
    #[serde(default)]
    next: Option<String>,
}

/// Items asked for per page of the pending list (the enforcement point also ends a page at about
/// 1 MiB of tokens): backfill holds one page at a time, whatever the backlog.
pub const BACKFILL_PAGE: u32 = 200;
/// Most pending requests one backfill reads from one enforcement point; beyond that, it stops
/// with an error instead of following pages forever.
pub const BACKFILL_MAX: usize = 100_000;

#[derive(Deserialize)]
struct Item {
    id: String,
    jwt: String,
}

/// Full-jitter backoff: a uniform delay in [0, min(max, base · 2^attempt)].
pub fn backoff(attempt: u32) -> Duration {
    let cap = BACKOFF_BASE.saturating_mul(2u32.saturating_pow(attempt.min(16))).min(BACKOFF_MAX);
    Duration::from_millis(rand::thread_rng().gen_range(0..=cap.as_millis() as u64))
}

/// An approver auth token for `ep` signed with an already loaded key.
pub(crate) fn auth_with(key: &crate::keys::LoadedKey, ep: &str) -> Result<String> {
    let t = now();
    let claims = AuthClaims {
        iss: key.kid(),
        aud: ep.into(),
        iat: t,
        exp: t + AUTH_LIFETIME_S,
        jti: protocol::new_id(),
    };
    Ok(key.with(|k| protocol::sign(&claims, TYP_AUTH, k))?)
}

/// Statuses after which a decision is never retried: the enforcement point answered for good.
fn final_status(status: u16) -> bool {
    matches!(status, 400 | 403 | 404 | 409 | 410 | 413 | 422)
}

impl Console {
    /// A fresh approver auth token for `ep`, signed with the keyring key.
    pub async fn auth_token(&self, ep: &str) -> Result<String> {
        let key = self.signing_key().await?;
        let t = now();
        let claims = AuthClaims {
            iss: key.kid(),
            aud: ep.into(),
            iat: t,
            exp: t + AUTH_LIFETIME_S,
            jti: protocol::new_id(),
        };
        Ok(key.with(|k| protocol::sign(&claims, TYP_AUTH, k))?)
    }

    async fn get_json(&self, ep: &Ep, url: &str, auth: &str) -> Result<Value> {
        let resp = self
            .client(ep)?
            .get(url)
            .bearer_auth(auth)
            .timeout(CALL_TIMEOUT)
            .send()
            .await
            .map_err(|e| ConsoleError::network(url, crate::with_causes(&e)))?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| ConsoleError::network(url, e))?;
        if !status.is_success() {
            return Err(ConsoleError::network(
                url,
                format!("HTTP {status}: {}", String::from_utf8_lossy(&body)),
            ));
        }
        protocol::ijson::parse(&body).map_err(|e| ConsoleError::network(url, e))
    }

    /// One pass over every enforcement point: backfill, state refresh, outbox delivery. Errors of
    /// one enforcement point are reported in its [`SyncReport`] and do not stop the others;
    /// keyring and database errors stop the pass.
    pub async fn sync(&self) -> Result<Vec<SyncReport>> {
        let mut reports = Vec::new();
        for ep in self.eps().await? {
            let mut report = SyncReport { ep: ep.ep.clone(), ..SyncReport::default() };
            match self.sync_ep(&ep, &mut report).await {
                Ok(()) => self.ep_status(&ep.ep, None).await?,
                Err(
                    e @ (ConsoleError::Network { .. }
                    | ConsoleError::Protocol(_)
                    | ConsoleError::Untrusted(_)
                    | ConsoleError::Invalid(_)),
                ) => {
                    report.error = Some(e.to_string());
                    self.ep_status(&ep.ep, Some(e.to_string())).await?;
                }
                Err(e) => return Err(e),
            }
            reports.push(report);
        }
        self.checkpoint_or_warn().await;
        Ok(reports)
    }

    /// Backfill pending requests page by page (one page in memory at a time), refresh the state of
    /// local pending ones the enforcement point no longer lists, then deliver the outbox.
    pub async fn sync_ep(&self, ep: &Ep, report: &mut SyncReport) -> Result<()> {
        let auth = self.auth_token(&ep.ep).await?;
        let mut listed: std::collections::HashSet<String> = Default::default();
        let mut after: Option<String> = None;
        loop {
            let mut url = url::Url::parse(&ep.at("/v1/step-ups"))
                .map_err(|e| ConsoleError::network(&ep.url, format!("bad URL: {e}")))?;
            url.query_pairs_mut()
                .append_pair("state", "pending")
                .append_pair("limit", &BACKFILL_PAGE.to_string());
            if let Some(after) = &after {
                url.query_pairs_mut().append_pair("after", after);
            }
            let page: Items = serde_json::from_value(self.get_json(ep, url.as_str(), &auth).await?)
                .map_err(|e| ConsoleError::network(&ep.url, format!("bad pending list: {e}")))?;
            // What of this page is stored already, as it was stored (one query per page): a
            // re-listed request with the same token is known without a signature check or a
            // transaction. A different token under a known id still goes through the checks.
            let ids = serde_json::to_string(&page.items.iter().map(|i| &i.id).collect::<Vec<_>>())
                .map_err(|e| ConsoleError::Invalid(e.to_string()))?;
            let stored: std::collections::HashMap<String, String> = sqlx::query_as(
                "SELECT id, jwt FROM requests
                  WHERE ep = ? AND state = 'pending' AND id IN (SELECT value FROM json_each(?))",
            )
            .bind(&ep.ep)
            .bind(&ids)
            .fetch_all(self.db())
            .await?
            .into_iter()
            .collect();
            for item in &page.items {
                if !listed.insert(item.id.clone()) {
                    continue;
                }
                if stored.get(&item.id).is_some_and(|jwt| *jwt == item.jwt) {
                    continue;
                }
                match self.ingest(ep, Some(&item.id), &item.jwt).await? {
                    Ingested::New(id) => {
                        report.new += 1;
                        report.new_ids.push(id);
                    }
                    Ingested::Rejected(_) => report.rejected += 1,
                    Ingested::Known | Ingested::Expired => {}
                }
            }
            if listed.len() > BACKFILL_MAX {
                return Err(ConsoleError::network(
                    &ep.url,
                    format!("more than {BACKFILL_MAX} pending requests listed: backfill stopped"),
                ));
            }
            match page.next {
                // A page that does not move the cursor would be asked for again forever.
                Some(next) if !page.items.is_empty() && after.as_ref() != Some(&next) => after = Some(next),
                _ => break,
            }
        }
        let local: Vec<String> =
            sqlx::query_scalar("SELECT id FROM requests WHERE ep = ? AND state = 'pending'")
                .bind(&ep.ep)
                .fetch_all(self.db())
                .await?;
        for id in local.iter().filter(|id| !listed.contains(id.as_str())) {
            let status = self.get_json(ep, &ep.at(&format!("/v1/step-ups/{id}")), &auth).await?;
            if let Some(state) = status.get("state").and_then(Value::as_str) {
                if self.apply_state(&ep.ep, id, state).await? {
                    report.resolved += 1;
                }
            }
        }
        self.deliver_outbox(ep, true, Some(&auth), report).await
    }

    /// Deliver queued decisions for `ep` (all of them when `all`, else only those due), with `auth`
    /// when the caller holds a fresh token (else one is signed when there is something to send).
    pub async fn deliver_outbox(
        &self,
        ep: &Ep,
        all: bool,
        auth: Option<&str>,
        report: &mut SyncReport,
    ) -> Result<()> {
        let due: Vec<String> = sqlx::query_scalar(
            "SELECT o.jti FROM outbox o JOIN decisions d USING (jti) WHERE d.ep = ? AND (? OR o.next_attempt_at <= ?)
             ORDER BY d.signed_at",
        )
        .bind(&ep.ep)
        .bind(all)
        .bind(now())
        .fetch_all(self.db())
        .await?;
        let auth = match (auth, due.is_empty()) {
            (_, true) => return Ok(()),
            (Some(a), false) => a.to_string(),
            (None, false) => self.auth_token(&ep.ep).await?,
        };
        for jti in due {
            match self.deliver_one(ep, &jti, &auth).await? {
                Delivery::Queued { .. } => report.queued += 1,
                _ => report.delivered += 1,
            }
        }
        Ok(())
    }

    /// One delivery attempt of decision `jti`, authenticated with `auth`. The outcome is committed
    /// before returning.
    pub async fn deliver_one(&self, ep: &Ep, jti: &str, auth: &str) -> Result<Delivery> {
        let (request_id, token): (String, String) =
            sqlx::query_as("SELECT request_id, token FROM decisions WHERE jti = ?")
                .bind(jti)
                .fetch_optional(self.db())
                .await?
                .ok_or_else(|| ConsoleError::NotFound(format!("decision {jti}")))?;
        let url = ep.at(&format!("/v1/step-ups/{request_id}/decisions"));
        let attempt = async {
            let resp = self
                .client(ep)?
                .post(&url)
                .bearer_auth(auth)
                .header("content-type", "application/jwt")
                .body(token.clone())
                .timeout(CALL_TIMEOUT)
                .send()
                .await
                .map_err(|e| ConsoleError::network(&url, crate::with_causes(&e)))?;
            let status = resp.status().as_u16();
            let body = resp.bytes().await.map_err(|e| ConsoleError::network(&url, e))?;
            let answer = serde_json::from_slice::<Value>(&body)
                .unwrap_or_else(|_| json!({"body": String::from_utf8_lossy(&body)}));
            Ok::<_, ConsoleError>((status, answer))
        };
        let delivery = match attempt.await {
            Ok((200, answer)) => {
                let state = answer.get("state").and_then(Value::as_str).unwrap_or("pending").to_string();
                Delivery::Accepted { state, answer }
            }
            Ok((status, answer)) if final_status(status) => Delivery::Refused { status, answer },
            Ok((status, answer)) => Delivery::Queued { error: format!("HTTP {status}: {answer}") },
            Err(ConsoleError::Network { message, .. }) => Delivery::Queued { error: message },
            // The enforcement point may not be called (plain http to a remote host, an id that is
            // not its key's): kept, never sent there.
            Err(e @ (ConsoleError::Untrusted(_) | ConsoleError::Invalid(_))) => {
                Delivery::Queued { error: e.to_string() }
            }
            Err(e) => return Err(e),
        };
        let t = now();
        let mut tx = self.relaxed_tx().await?;
        match &delivery {
            Delivery::Accepted { answer, .. } | Delivery::Refused { answer, .. } => {
                let (outcome, kind): (_, fn(_) -> _) = match &delivery {
                    Delivery::Accepted { .. } => ("accepted", history::HistoryDetail::Delivered),
                    _ => ("refused", history::HistoryDetail::DeliveryRefused),
                };
                sqlx::query("UPDATE decisions SET outcome = ?, answer = ? WHERE jti = ?")
                    .bind(outcome)
                    .bind(answer.to_string())
                    .bind(jti)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM outbox WHERE jti = ?").bind(jti).execute(&mut *tx).await?;
                let status = match &delivery {
                    Delivery::Refused { status, .. } => *status,
                    _ => 200,
                };
                let detail = history::DeliveryAnswer { jti: jti.to_string(), status, answer: answer.clone() };
                history::append(&mut tx, t, Some(&ep.ep), Some(&request_id), &kind(detail)).await?;
            }
            Delivery::Queued { error } => {
                let attempts: i64 = sqlx::query_scalar("SELECT attempts FROM outbox WHERE jti = ?")
                    .bind(jti)
                    .fetch_optional(&mut *tx)
                    .await?
                    .unwrap_or(0);
                let delay = backoff(attempts as u32).as_secs() as i64 + 1;
                sqlx::query("UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE jti = ?")
                    .bind(t + delay)
                    .bind(error)
                    .bind(jti)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        match &delivery {
            Delivery::Accepted { state, .. } => {
                self.apply_state(&ep.ep, &request_id, state).await?;
            }
            Delivery::Refused { status: 410, .. } => {
                // 410 also answers a decision that itself expired before delivery (the request may
                // still be pending): only the request's own expiry makes it expired here.
                let exp: Option<i64> = sqlx::query_scalar("SELECT exp FROM requests WHERE ep = ? AND id = ?")
                    .bind(&ep.ep)
                    .bind(&request_id)
                    .fetch_optional(self.db())
                    .await?;
                if exp.is_some_and(|exp| exp <= now()) {
                    self.apply_state(&ep.ep, &request_id, "expired").await?;
                }
            }
            _ => {}
        }
        Ok(delivery)
    }

    /// Follow every enforcement point's stream until the process ends, reconnecting with full-jitter
    /// backoff. `on_event` is called for everything worth showing.
    pub async fn watch(&self, on_event: impl Fn(WatchEvent) + Clone + Send + Sync + 'static) -> Result<()> {
        if self.eps().await?.is_empty() {
            return Err(ConsoleError::Invalid(
                "no enforcement point: add one with `countersign ep add`".into(),
            ));
        }
        let mut tasks = tokio::task::JoinSet::new();
        // ep id → (pinned kid, url, task): a re-pinned enforcement point (removed and added again
        // with another key or address between two rescans) gets a fresh task with the new pin.
        let mut following: std::collections::HashMap<String, (String, String, tokio::task::AbortHandle)> =
            Default::default();
        // Enforcement points added (say by `countersign ep add` in another terminal) are followed
        // within EP_RESCAN, removed ones dropped.
        let mut rescan = tokio::time::interval(EP_RESCAN);
        loop {
            tokio::select! {
                _ = rescan.tick() => {
                    let eps = self.eps().await?;
                    following.retain(|id, (kid, url, task)| {
                        let kept = eps.iter().any(|e| &e.ep == id && &e.kid == kid && &e.url == url);
                        if !kept {
                            task.abort();
                        }
                        kept
                    });
                    for ep in eps {
                        if !following.contains_key(&ep.ep) {
                            let (console, on_event) = (self.clone(), on_event.clone());
                            let (id, kid, url) = (ep.ep.clone(), ep.kid.clone(), ep.url.clone());
                            let task = tasks.spawn(async move {
                                let id = ep.ep.clone();
                                (id, console.watch_ep(ep, on_event).await)
                            });
                            following.insert(id, (kid, url, task));
                        }
                    }
                }
                Some(done) = tasks.join_next() => match done {
                    Ok((id, Err(e))) => {
                        // An enforcement point removed meanwhile may fail its last write: not fatal.
                        if self.eps().await?.iter().any(|ep| ep.ep == id) {
                            return Err(e);
                        }
                        following.remove(&id);
                    }
                    Ok((_, Ok(()))) => {}
                    Err(e) if e.is_cancelled() => {}
                    Err(e) => return Err(ConsoleError::Invalid(format!("watch task failed: {e}"))),
                },
            }
        }
    }

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
        let mut outbox = tokio::time::interval(Duration::from_secs(2));
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
        loop {
            tokio::select! {
                done = &mut backfill.0, if backfilling => {
                    backfilling = false;
                    let report = done.map_err(|e| ConsoleError::Invalid(format!("backfill task failed: {e}")))??;
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
                _ = outbox.tick(), if !backfilling => {
                    self.deliver_outbox(ep, false, None, &mut SyncReport::default()).await?;
                    // Signed checkpoints every CHECKPOINT_EVERY rows, off the per-event path.
                    self.checkpoint_or_warn().await;
                    self.fold_wal().await?;
                }
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    use crate::keys::MemoryStore;
    use crate::DecisionInput;
    use countersign_protocol::{Jwk, SigningKey, Verdict, TYP_STEP_UP};
    use std::sync::Arc;

    /// A one-answer HTTP server: every request gets `status` with a JSON body.
    async fn stub(status: u16) -> String {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 65536];
                    let _ = s.read(&mut buf).await;
                    let body = r#"{"error":"conflict","message":"stub"}"#;
                    let head = format!("HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
                    let _ = s.write_all(format!("{head}{body}").as_bytes()).await;
                });
            }
        });
        url
    }

    async fn console_with_request(url: &str) -> (tempfile::TempDir, Console, String) {
        let dir = tempfile::tempdir().unwrap();
        let c = Console::open(dir.path(), Arc::new(MemoryStore::default())).await.unwrap();
        let ep_key: SigningKey = protocol::generate_key();
        let jwk = Jwk::from_key(&ep_key.verifying_key());
        crate::testing::pin_key(&c, &ep_key.verifying_key(), url).await;
        let t = now();
        let claims = json!({
            "iss": protocol::jwk::ep_id(&jwk.thumbprint()), "jti": "req-1", "iat": t, "exp": t + 300,
            "identity": {"workload": "spiffe://a/b", "display": "A", "on_behalf_of": []},
            "purpose": {"code": "p", "statement": "s"}, "data": {"class": "internal", "categories": []},
            "target": {"system": "s", "environment": "e"},
            "actions": [{"tool": "t", "args": {}, "reversible": true}],
            "policy": {"id": "x", "reason": "r", "tier": "medium", "approvals_required": 1},
        });
        let jwt = protocol::sign(&claims, TYP_STEP_UP, &ep_key).unwrap();
        let ep = c.eps().await.unwrap().remove(0);
        assert_eq!(c.ingest(&ep, Some("req-1"), &jwt).await.unwrap(), Ingested::New("req-1".into()));
        (dir, c, "req-1".into())
    }

    #[tokio::test]
    async fn inbox_pages_are_most_urgent_first_and_skip_the_expired() {
        let dir = tempfile::tempdir().unwrap();
        let c = Console::open(dir.path(), Arc::new(MemoryStore::default())).await.unwrap();
        let ep_key: SigningKey = protocol::generate_key();
        let jwk = Jwk::from_key(&ep_key.verifying_key());
        crate::testing::pin_key(&c, &ep_key.verifying_key(), "http://127.0.0.1:1").await;
        let ep = c.eps().await.unwrap().remove(0);
        let t = now();
        for (id, tier, ttl) in [
            ("low-soon", "low", 30),
            ("crit-late", "critical", 900),
            ("crit-soon", "critical", 100),
            ("high", "high", 50),
            ("medium", "medium", 20),
            ("gone", "critical", 300),
        ] {
            let claims = json!({
                "iss": protocol::jwk::ep_id(&jwk.thumbprint()), "jti": id, "iat": t, "exp": t + ttl,
                "identity": {"workload": "spiffe://a/b", "display": "A", "on_behalf_of": []},
                "purpose": {"code": "p", "statement": "s"}, "data": {"class": "internal", "categories": []},
                "target": {"system": "s", "environment": "e"},
                "actions": [{"tool": "t", "args": {}, "reversible": true}],
                "policy": {"id": "x", "reason": "r", "tier": tier, "approvals_required": 1},
            });
            let jwt = protocol::sign(&claims, TYP_STEP_UP, &ep_key).unwrap();
            assert_eq!(c.ingest(&ep, Some(id), &jwt).await.unwrap(), Ingested::New(id.into()));
        }
        // One expired since it was stored: no longer in the inbox.
        sqlx::query("UPDATE requests SET exp = ? WHERE id = 'gone'")
            .bind(t - 1)
            .execute(c.db())
            .await
            .unwrap();
        let ids = |p: &crate::requests::InboxPage| p.entries.iter().map(|e| e.id.clone()).collect::<Vec<_>>();
        let all = c.inbox_page(0, 100).await.unwrap();
        assert_eq!(ids(&all), ["crit-soon", "crit-late", "high", "medium", "low-soon"]);
        assert_eq!((all.total, all.pending, all.next_expiry), (5, 5, Some(t + 20)));
        let second = c.inbox_page(2, 2).await.unwrap();
        assert_eq!(ids(&second), ["high", "medium"]);
        assert_eq!(second.total, 5, "counts are of the whole inbox");
    }

    async fn count(c: &Console, sql: &str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(c.db()).await.unwrap()
    }

    fn deny(reason: &str) -> DecisionInput {
        DecisionInput {
            verdict: Verdict::Deny,
            reason: reason.into(),
            ttl_s: None,
            max_uses: None,
            binding_code: None,
        }
    }

    #[tokio::test]
    async fn decision_is_committed_before_delivery_and_kept_until_answered() {
        // Port 1 on loopback: connection refused, the gateway is "down".
        let (_d, c, id) = console_with_request("http://127.0.0.1:1").await;
        let inbox = c.inbox_page(0, 50).await.unwrap();
        assert_eq!((inbox.entries.len(), inbox.total, inbox.pending), (1, 1, 1));
        let line = &inbox.entries[0];
        assert_eq!(line.state, "pending");
        assert_eq!(inbox.next_expiry, Some(line.exp));
        assert_eq!((line.glance.agent.as_str(), line.glance.warnings), ("A", 0));
        // A row stored before glances existed lists the same, computed from its claims.
        let stored = line.glance.clone();
        sqlx::query("UPDATE requests SET glance = NULL").execute(c.db()).await.unwrap();
        assert_eq!(c.inbox_page(0, 50).await.unwrap().entries[0].glance, stored);
        let refused = c.decide(&id, deny("")).await.unwrap_err();
        assert!(matches!(refused, ConsoleError::Refused(_)), "{refused}");
        assert_eq!(count(&c, "SELECT COUNT(*) FROM decisions").await, 0, "a refused decision leaves nothing");

        let out = c.decide(&id, deny("no")).await.unwrap();
        assert!(matches!(out.delivery, Delivery::Queued { .. }), "{:?}", out.delivery);
        assert_eq!(count(&c, "SELECT COUNT(*) FROM outbox").await, 1);
        assert_eq!(count(&c, "SELECT attempts FROM outbox").await, 1);
        assert_eq!(c.request(&id).await.unwrap().state, "decided, not delivered");
        let inbox = c.inbox_page(0, 50).await.unwrap();
        assert_eq!(inbox.entries[0].state, crate::requests::UNDELIVERED);
        assert_eq!((inbox.total, inbox.pending), (1, 0), "decided here: in the inbox, not awaiting me");
        assert!(matches!(c.decide(&id, deny("again")).await, Err(ConsoleError::Refused(_))), "decided once");

        // The enforcement point comes back and answers 409: final, recorded, never retried.
        let url = stub(409).await;
        sqlx::query("UPDATE eps SET url = ?").bind(&url).execute(c.db()).await.unwrap();
        let ep = c.eps().await.unwrap().remove(0);
        let mut report = SyncReport::default();
        c.deliver_outbox(&ep, true, None, &mut report).await.unwrap();
        assert_eq!((report.delivered, report.queued), (1, 0));
        assert_eq!(count(&c, "SELECT COUNT(*) FROM outbox").await, 0);
        assert_eq!(count(&c, "SELECT COUNT(*) FROM decisions WHERE outcome = 'refused'").await, 1);
        assert_eq!(count(&c, "SELECT COUNT(*) FROM history WHERE kind = 'delivery refused'").await, 1);
        crate::history::verify(c.db()).await.unwrap();
    }

    /// Nothing is signed for an enforcement point that may not be called: plain http to a remote
    /// host (a URL stored by an older version, or edited in the file).
    #[tokio::test]
    async fn nothing_is_signed_for_an_enforcement_point_that_may_not_be_called() {
        let (_d, c, id) = console_with_request("http://127.0.0.1:1").await;
        sqlx::query("UPDATE eps SET url = 'http://gateway.example'").execute(c.db()).await.unwrap();
        let e = c.decide(&id, deny("no")).await.unwrap_err();
        assert!(matches!(&e, ConsoleError::Refused(m) if m.contains("https")), "{e}");
        assert_eq!(count(&c, "SELECT COUNT(*) FROM decisions").await, 0);
        let reports = c.sync().await.unwrap();
        assert!(reports[0].error.as_deref().is_some_and(|e| e.contains("https")), "{reports:?}");
    }

    #[tokio::test]
    async fn server_errors_stay_queued() {
        let url = stub(503).await;
        let (_d, c, id) = console_with_request(&url).await;
        let out = c.decide(&id, deny("no")).await.unwrap();
        assert!(matches!(out.delivery, Delivery::Queued { .. }));
        let ep = c.eps().await.unwrap().remove(0);
        let mut report = SyncReport::default();
        c.deliver_outbox(&ep, true, None, &mut report).await.unwrap();
        assert_eq!((report.delivered, report.queued), (0, 1));
        assert_eq!(count(&c, "SELECT attempts FROM outbox").await, 2);
    }

    /// A signed request of the enforcement point whose key is `key`, and that point pinned at `url`.
    fn signed(key: &SigningKey, id: &str) -> String {
        let t = now();
        let claims = json!({
            "iss": protocol::jwk::ep_id(&Jwk::from_key(&key.verifying_key()).thumbprint()),
            "jti": id, "iat": t, "exp": t + 300,
            "identity": {"workload": "spiffe://a/b", "display": "A", "on_behalf_of": []},
            "purpose": {"code": "p", "statement": "s"}, "data": {"class": "internal", "categories": []},
            "target": {"system": "s", "environment": "e"},
            "actions": [{"tool": "t", "args": {}, "reversible": true}],
            "policy": {"id": "x", "reason": "r", "tier": "medium", "approvals_required": 1},
        });
        protocol::sign(&claims, TYP_STEP_UP, key).unwrap()
    }

    async fn pinned(key: &SigningKey, url: &str) -> (tempfile::TempDir, Console, Ep) {
        let dir = tempfile::tempdir().unwrap();
        let c = Console::open(dir.path(), Arc::new(MemoryStore::default())).await.unwrap();
        crate::testing::pin_key(&c, &key.verifying_key(), url).await;
        let ep = c.eps().await.unwrap().remove(0);
        (dir, c, ep)
    }

    /// Backfill follows `next` page by page, and a cursor that does not move (a broken or hostile
    /// enforcement point) ends it instead of asking for the same page forever.
    #[tokio::test]
    async fn backfill_follows_pages_and_stops_on_a_stuck_cursor() {
        let key: SigningKey = protocol::generate_key();
        let (one, two) = (signed(&key, "req-1"), signed(&key, "req-2"));
        let (url, seen) = crate::testing::serve(move |_, path, _| {
            let page = if path.contains("after=req-1") || path.contains("after=req-2") {
                json!({"items": [{"id": "req-2", "jwt": two}], "next": "req-2"})
            } else if path.starts_with("/v1/step-ups?") {
                json!({"items": [{"id": "req-1", "jwt": one}], "next": "req-1"})
            } else {
                json!({"state": "pending"})
            };
            (200, page.to_string())
        })
        .await;
        let (_d, c, ep) = pinned(&key, &url).await;
        let mut report = SyncReport::default();
        c.sync_ep(&ep, &mut report).await.unwrap();
        assert_eq!(report.new, 2);
        let paths: Vec<String> = seen.lock().unwrap().iter().map(|(_, p, _)| p.clone()).collect();
        assert_eq!(paths.len(), 3, "{paths:?}");
        assert!(
            paths[0].contains("state=pending") && paths[0].contains("limit=") && !paths[0].contains("after")
        );
        assert!(paths[1].ends_with("after=req-1") && paths[2].ends_with("after=req-2"), "{paths:?}");
    }

    /// A redirect is never followed (it could lead anywhere, plain http included): the pass fails
    /// for that enforcement point and nothing is stored.
    #[tokio::test]
    async fn redirects_are_not_followed() {
        let key: SigningKey = protocol::generate_key();
        let jwt = signed(&key, "req-1");
        let (elsewhere, reached) = crate::testing::serve(move |_, _, _| {
            (200, json!({"items": [{"id": "req-1", "jwt": jwt}]}).to_string())
        })
        .await;
        let (url, _) = crate::testing::serve(move |_, path, _| (302, format!("{elsewhere}{path}"))).await;
        let (_d, c, ep) = pinned(&key, &url).await;
        let err = c.sync_ep(&ep, &mut SyncReport::default()).await.unwrap_err();
        assert!(err.to_string().contains("302"), "{err}");
        assert!(reached.lock().unwrap().is_empty(), "the redirect was not followed");
        assert_eq!(count(&c, "SELECT COUNT(*) FROM requests").await, 0);
    }

    #[test]
    fn backoff_is_bounded_full_jitter() {
        // The caps written out (0.5 s doubling to the 60 s ceiling), not recomputed from the code.
        let caps_ms: [(u32, u64); 10] = [
            (0, 500),
            (1, 1_000),
            (2, 2_000),
            (3, 4_000),
            (5, 16_000),
            (6, 32_000),
            (7, 60_000),
            (8, 60_000),
            (20, 60_000),
            (u32::MAX, 60_000),
        ];
        for (attempt, cap) in caps_ms {
            let draws: Vec<u64> = (0..2_000).map(|_| backoff(attempt).as_millis() as u64).collect();
            let (min, max) = (*draws.iter().min().unwrap(), *draws.iter().max().unwrap());
            let mean = draws.iter().sum::<u64>() as f64 / draws.len() as f64;
            assert!(max <= cap, "attempt {attempt}: {max} ms is over the {cap} ms cap");
            // Full jitter: uniform over [0, cap]. With 2,000 draws, the extremes come within 10 %
            // of both ends and the mean within 5 % of the middle, except with negligible
            // probability; a constant, a zero or a narrow band all fail.
            assert!(max * 10 >= cap * 9, "attempt {attempt}: never near the cap (max {max} of {cap} ms)");
            assert!(min * 10 <= cap, "attempt {attempt}: never near zero (min {min} of {cap} ms)");
            let centre = mean / cap as f64;
            assert!((0.45..=0.55).contains(&centre), "attempt {attempt}: mean at {centre:.3} of the cap");
        }
    }

    #[test]
    fn final_statuses_are_not_retried() {
        for s in [409, 410, 422, 403] {
            assert!(final_status(s));
        }
        for s in [401, 429, 500, 503] {
            assert!(!final_status(s));
        }
    }
}
