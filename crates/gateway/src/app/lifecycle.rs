//! Ending a pending request without a decision (withdrawal by its agent, expiry), and the one step
//! every resolution goes through.

use serde_json::{json, Value};

use super::events::{Event, EventLog};
use super::{now, App};
use crate::error::ApiError;
use crate::store;

impl App {
    /// Withdraw a pending request (by the agent that submitted it).
    pub async fn withdraw(&self, workload: &str, id: &str) -> Result<Value, ApiError> {
        let _w = self.write_lock().lock().await;
        let mut tx = store::write_tx(self.db()).await?;
        let row = store::step_up(&mut *tx, id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no request {id}")))?;
        if row.workload != workload {
            return Err(ApiError::forbidden("only the submitting workload may withdraw a request"));
        }
        if row.state != "pending" {
            return Err(ApiError::conflict(format!("request is already {}", row.state)));
        }
        let t = now();
        let event = self.resolve(&mut tx, id, "withdrawn", None, t).await?;
        tx.commit().await?;
        self.events.publish(vec![event]);
        Ok(json!({"id": id, "state": "withdrawn"}))
    }

    /// Move a pending request to `state` (with its grant when approved) and append the event.
    pub(super) async fn resolve(
        &self,
        tx: &mut sqlx::SqliteConnection,
        id: &str,
        state: &str,
        grant: Option<&str>,
        t: i64,
    ) -> Result<Event, ApiError> {
        sqlx::query("UPDATE step_ups SET state = ?, resolved_at = ?, grant_jwt = ? WHERE id = ? AND state = 'pending'")
            .bind(state)
            .bind(t)
            .bind(grant)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tracing::info!(id, state, "step-up resolved");
        EventLog::append(tx, "resolved", json!({"id": id, "state": state}), t).await
    }

    /// Expire every pending request past its `exp`; the number expired.
    pub async fn expire_due(&self) -> Result<usize, ApiError> {
        let t = now();
        let due: Vec<String> =
            sqlx::query_scalar("SELECT id FROM step_ups WHERE state = 'pending' AND exp < ?")
                .bind(t)
                .fetch_all(self.db())
                .await?;
        if due.is_empty() {
            return Ok(0);
        }
        let _w = self.write_lock().lock().await;
        let mut tx = store::write_tx(self.db()).await?;
        let mut events = Vec::new();
        for id in &due {
            events.push(self.resolve(&mut tx, id, "expired", None, t).await?);
        }
        tx.commit().await?;
        let n = events.len();
        self.events.publish(events);
        Ok(n)
    }
}
