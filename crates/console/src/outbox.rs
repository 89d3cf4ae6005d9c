//! Delivery of signed decisions: the durable outbox, one attempt at a time, each outcome committed
//! before the next; a decision the enforcement point answered for good is never sent again.

use serde::Serialize;
use serde_json::{json, Value};

use crate::ep::Ep;
use crate::ep_client::{backoff, CALL_TIMEOUT};
use crate::sync::SyncReport;
use crate::{history, now, Console, ConsoleError, Result};

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

/// Statuses after which a decision is never retried: the enforcement point answered for good.
fn final_status(status: u16) -> bool {
    matches!(status, 400 | 403 | 404 | 409 | 410 | 413 | 422)
}

impl Console {
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
                // Another attempt (the upkeep's beside `decide`'s own) may have recorded the answer
                // meanwhile: the first to take the outbox row records it, once.
                let taken = sqlx::query("DELETE FROM outbox WHERE jti = ?")
                    .bind(jti)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if taken > 0 {
                    sqlx::query("UPDATE decisions SET outcome = ?, answer = ? WHERE jti = ?")
                        .bind(outcome)
                        .bind(answer.to_string())
                        .bind(jti)
                        .execute(&mut *tx)
                        .await?;
                    let status = match &delivery {
                        Delivery::Refused { status, .. } => *status,
                        _ => 200,
                    };
                    let detail =
                        history::DeliveryAnswer { jti: jti.to_string(), status, answer: answer.clone() };
                    history::append(&mut tx, t, Some(&ep.ep), Some(&request_id), &kind(detail)).await?;
                }
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
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::keys::MemoryStore;
    use crate::requests::Ingested;
    use crate::testing::count;
    use crate::DecisionInput;
    use countersign_protocol::{self as protocol, Jwk, SigningKey, Verdict, TYP_STEP_UP};
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
        assert_eq!(line.state, crate::requests::InboxState::Pending);
        assert_eq!(inbox.next_expiry, Some(line.exp));
        assert_eq!((line.agent.as_str(), line.warning_count), ("A", 0));
        // A row stored before lines existed lists the same, computed from its claims.
        let stored = line.clone();
        sqlx::query("UPDATE requests SET glance = NULL").execute(c.db()).await.unwrap();
        assert_eq!(c.inbox_page(0, 50).await.unwrap().entries[0], stored);
        let refused = c.decide(&id, deny("")).await.unwrap_err();
        assert!(matches!(refused, ConsoleError::Refused(_)), "{refused}");
        assert_eq!(count(&c, "SELECT COUNT(*) FROM decisions").await, 0, "a refused decision leaves nothing");

        let out = c.decide(&id, deny("no")).await.unwrap();
        assert!(matches!(out.delivery, Delivery::Queued { .. }), "{:?}", out.delivery);
        assert_eq!(count(&c, "SELECT COUNT(*) FROM outbox").await, 1);
        assert_eq!(count(&c, "SELECT attempts FROM outbox").await, 1);
        assert_eq!(c.request(&id).await.unwrap().line.state, crate::requests::InboxState::Undelivered);
        let inbox = c.inbox_page(0, 50).await.unwrap();
        assert_eq!(inbox.entries[0].state, crate::requests::InboxState::Undelivered);
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

    /// Two attempts at the same decision at once (the upkeep's tick beside `decide`'s own send):
    /// the answer is recorded once.
    #[tokio::test]
    async fn an_answer_is_recorded_once_when_two_attempts_overlap() {
        let (_d, c, id) = console_with_request("http://127.0.0.1:1").await;
        c.decide(&id, deny("no")).await.unwrap();
        let url = stub(409).await;
        sqlx::query("UPDATE eps SET url = ?").bind(&url).execute(c.db()).await.unwrap();
        let ep = c.eps().await.unwrap().remove(0);
        let jti: String = sqlx::query_scalar("SELECT jti FROM outbox").fetch_one(c.db()).await.unwrap();
        let (a, b) = tokio::join!(c.deliver_one(&ep, &jti, "auth"), c.deliver_one(&ep, &jti, "auth"));
        assert!(matches!(a.unwrap(), Delivery::Refused { status: 409, .. }));
        assert!(matches!(b.unwrap(), Delivery::Refused { status: 409, .. }));
        assert_eq!(count(&c, "SELECT COUNT(*) FROM history WHERE kind = 'delivery refused'").await, 1);
        assert_eq!(count(&c, "SELECT COUNT(*) FROM outbox").await, 0);
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
