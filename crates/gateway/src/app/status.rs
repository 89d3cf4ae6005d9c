//! Reading a request: its status as the agent or an approver may see it, its owner, and a bounded
//! wait for its resolution.

use std::time::Duration;

use countersign_protocol as protocol;
use serde_json::{json, Value};
use tokio::sync::broadcast;

use super::App;
use crate::error::ApiError;
use crate::store;

/// Who reads a request's status: what they may see differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewer {
    /// The agent that submitted it: it alone receives the grant; it sees decisions as (verdict,
    /// time) and the reason of a denial, never who decided.
    Agent,
    /// An enrolled approver: decisions as (approver, verdict, time, reason) only.
    Approver,
}

impl App {
    /// `GET /v1/step-ups/{id}` as `viewer` may see it: state, policy, and the decisions as
    /// (approver, verdict, time, reason). Only the agent that asked receives its grant; decision
    /// tokens (which carry binding codes) and grants never reach an approver.
    pub async fn status(&self, id: &str, viewer: Viewer) -> Result<Value, ApiError> {
        let row = store::step_up(&self.db, id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no request {id}")))?;
        let decisions: Vec<store::DecisionSummary> = store::decisions(&self.db, id)
            .await?
            .into_iter()
            .map(|(mut summary, jwt)| {
                summary.reason = protocol::jws::decode_unverified(&jwt)
                    .ok()
                    .and_then(|c| c.get("reason").and_then(Value::as_str).map(str::to_owned))
                    .unwrap_or_default();
                summary
            })
            .collect();
        let approvals = decisions.iter().filter(|d| d.verdict == "approve").count();
        let mut body = json!({
            "id": row.id, "state": row.state, "policy": row.policy_id, "reason": row.reason,
            "tier": row.tier, "approvals": approvals, "approvals_required": row.approvals_required,
            "expires_at": row.exp,
        });
        match viewer {
            Viewer::Approver => body["decisions"] = json!(decisions),
            // The agent learns how far its request got and why it was refused, never who decided:
            // a hostile agent must not learn which approver to work on for the second approval.
            Viewer::Agent => {
                let anonymous: Vec<Value> = decisions
                    .iter()
                    .map(|d| {
                        let mut v = json!({"verdict": d.verdict, "at": d.at});
                        if d.verdict == "deny" {
                            v["reason"] = json!(d.reason);
                        }
                        v
                    })
                    .collect();
                body["decisions"] = json!(anonymous);
                if let Some(g) = &row.grant_jwt {
                    body["grant"] = json!(g);
                }
            }
        }
        Ok(body)
    }

    /// The workload that submitted a request.
    pub async fn owner(&self, id: &str) -> Result<String, ApiError> {
        let row = store::step_up(&self.db, id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no request {id}")))?;
        Ok(row.workload)
    }

    /// Wait up to `wait` for a pending request to be resolved, then its status.
    pub async fn wait_status(&self, id: &str, wait: Duration, viewer: Viewer) -> Result<Value, ApiError> {
        let mut rx = self.subscribe();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let body = self.status(id, viewer).await?;
            if body["state"] != "pending" {
                return Ok(body);
            }
            loop {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Err(_) => return self.status(id, viewer).await,
                    Ok(Ok(e)) if e.kind == "resolved" && e.data.contains(id) => break,
                    Ok(Ok(_)) => continue,
                    Ok(Err(broadcast::error::RecvError::Lagged(_))) => break,
                    Ok(Err(broadcast::error::RecvError::Closed)) => return self.status(id, viewer).await,
                }
            }
        }
    }
}
