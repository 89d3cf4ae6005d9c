//! One call's life at the gateway: submit, hold while humans decide, and redeem exactly what was approved.

use std::time::Duration;

use countersign_protocol::{RequestState, StepUpDraft};
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use crate::gateway::{Gateway, GatewayError, Status};

/// What becomes of a call.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Forward it with these arguments: the ones the gateway says were allowed or approved.
    Forward {
        /// The request at the gateway.
        id: String,
        /// Whether a human approved it (otherwise the policy allowed it).
        approved_by_people: bool,
        /// The grant's arguments.
        args: Map<String, Value>,
    },
    /// Do not forward it; tell the model this.
    Refuse(Refusal),
    /// The client abandoned it: it was withdrawn at the gateway, and nobody waits for an answer.
    Withdrawn,
}

/// Why a call was not forwarded, worded for the model (and for a coding agent's transcript).
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// The policy or an approver said no.
    Denied(String),
    /// Nobody decided in time. Never worded as a denial.
    Expired(String),
    /// The gateway could not be asked, or its answer did not fit: fail closed.
    Failed(String),
}

impl Refusal {
    /// The text the model reads.
    pub fn text(&self) -> &str {
        match self {
            Refusal::Denied(t) | Refusal::Expired(t) | Refusal::Failed(t) => t,
        }
    }
}

/// Where a held call stands, for progress reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Waiting {
    /// Request id at the gateway.
    pub id: String,
    /// Approvals still missing.
    pub missing: u32,
    /// Seconds until it expires.
    pub expires_in_s: i64,
    /// The code to read to the approver, for critical requests.
    pub binding_code: Option<String>,
}

impl Waiting {
    /// "Waiting for 2 approvers, expires in 4:12".
    pub fn message(&self) -> String {
        let who =
            if self.missing == 1 { "1 approver".to_owned() } else { format!("{} approvers", self.missing) };
        let left = self.expires_in_s.max(0);
        let mut text =
            format!("Waiting for {who}, expires in {}:{:02} (request {})", left / 60, left % 60, self.id);
        if let Some(code) = &self.binding_code {
            text.push_str(&format!(
                "; the person this agent acts for must read the code {code} to the approver"
            ));
        }
        text
    }
}

/// How to hold a call.
#[derive(Debug, Clone, Copy)]
pub struct Hold {
    /// How often to report progress while held.
    pub every: Duration,
    /// Give up (and withdraw) after this long, before the request's own expiry.
    pub max_wait: Option<Duration>,
}

/// Attempts at a long-poll the gateway did not answer before the call fails closed.
const WAIT_ATTEMPTS: u32 = 3;

fn now_s() -> i64 {
    countersign_protocol::now()
}

fn failed(e: &GatewayError) -> Refusal {
    Refusal::Failed(format!("Countersign blocked this tool call: {e}. Nothing was forwarded."))
}

/// Decide one call. `progress` is told where a held call stands every `hold.every`; `cancel` withdraws it.
pub async fn enforce(
    gw: &Gateway,
    draft: &StepUpDraft,
    hold: Hold,
    mut progress: impl FnMut(&Waiting),
    cancel: &CancellationToken,
) -> Outcome {
    let tool = draft.actions.first().map(|a| a.tool.clone()).unwrap_or_default();
    let key = countersign_protocol::new_id();
    let submitted = match gw.submit(draft, &key).await {
        Ok(s) => s,
        Err(e) => return Outcome::Refuse(failed(&e)),
    };
    let id = submitted.id.clone();
    match submitted.state {
        RequestState::Approved => {
            return match submitted.grant {
                Some(grant) => redeem(gw, &id, &tool, &grant, false).await,
                None => Outcome::Refuse(Refusal::Failed(format!(
                    "Countersign blocked this tool call: the gateway allowed request {id} without a grant. Nothing was forwarded."
                ))),
            }
        }
        RequestState::Denied => {
            return Outcome::Refuse(Refusal::Denied(format!(
                "Countersign denied this tool call: {} (policy {}, request {id}).",
                submitted.reason.as_deref().unwrap_or("no reason given"),
                submitted.policy.as_deref().unwrap_or("unknown"),
            )))
        }
        RequestState::Pending => {}
        other => {
            return Outcome::Refuse(Refusal::Failed(format!(
                "Countersign blocked this tool call: the gateway answered {} for a new request {id}. Nothing was forwarded.",
                other.as_str()
            )))
        }
    }
    let expires_at = submitted.expires_at.unwrap_or_else(now_s);
    let give_up = hold.max_wait.map(|d| tokio::time::Instant::now() + d);
    let mut waiting = Waiting {
        id: id.clone(),
        missing: submitted.approvals_required.unwrap_or(1),
        expires_in_s: expires_at - now_s(),
        binding_code: submitted.binding_code.clone(),
    };
    let mut misses = 0;
    loop {
        progress(&waiting);
        let left = (expires_at - now_s()).max(0) as u64;
        let mut wait = hold.every.min(Duration::from_secs(left + 1));
        if let Some(g) = give_up {
            wait = wait.min(g.saturating_duration_since(tokio::time::Instant::now()));
        }
        let status = tokio::select! {
            _ = cancel.cancelled() => {
                let _ = gw.withdraw(&id).await;
                return Outcome::Withdrawn;
            }
            s = gw.wait(&id, wait) => s,
        };
        match status {
            Ok(s) => {
                misses = 0;
                if let Some(done) = resolved(gw, &id, &tool, &s).await {
                    return done;
                }
                waiting.missing = s.approvals_required.saturating_sub(s.approvals).max(1);
            }
            Err(e @ GatewayError::Unreachable { .. }) if misses + 1 < WAIT_ATTEMPTS => {
                misses += 1;
                tracing::warn!(request = %id, error = %e, "waiting on the gateway failed; trying again");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => {
                let _ = gw.withdraw(&id).await;
                return Outcome::Refuse(failed(&e));
            }
        }
        waiting.expires_in_s = expires_at - now_s();
        let gave_up = give_up.is_some_and(|g| tokio::time::Instant::now() >= g);
        // The gateway expires requests itself; if its clock or sweeper lags, the proxy does not wait longer.
        if gave_up || now_s() > expires_at + 5 {
            let _ = gw.withdraw(&id).await;
            return Outcome::Refuse(Refusal::Expired(format!(
                "Countersign: timed out waiting for approval (request {id}); the call was not made."
            )));
        }
    }
}

/// The outcome of a request that is no longer pending; `None` while it is.
async fn resolved(gw: &Gateway, id: &str, tool: &str, s: &Status) -> Option<Outcome> {
    Some(match s.state {
        RequestState::Pending => return None,
        RequestState::Approved => match &s.grant {
            Some(grant) => redeem(gw, id, tool, grant, true).await,
            None => Outcome::Refuse(Refusal::Failed(format!(
                "Countersign blocked this tool call: request {id} was approved but no grant was returned. Nothing was forwarded."
            ))),
        },
        RequestState::Denied => {
            let reason = s.decisions.iter().rev().find(|d| d.verdict == "deny").and_then(|d| d.reason.clone());
            Outcome::Refuse(Refusal::Denied(format!(
                "Countersign: an approver denied this tool call: {} (request {id}).",
                reason.as_deref().unwrap_or("no reason given")
            )))
        }
        RequestState::Expired => Outcome::Refuse(Refusal::Expired(format!(
            "Countersign: timed out waiting for approval (request {id} expired); the call was not made."
        ))),
        RequestState::Withdrawn => Outcome::Refuse(Refusal::Failed(format!(
            "Countersign: request {id} was withdrawn; the call was not made."
        ))),
    })
}

/// Redeem the grant and forward exactly the one action it approved, if it is this call's tool.
async fn redeem(gw: &Gateway, id: &str, tool: &str, grant: &str, approved_by_people: bool) -> Outcome {
    match gw.redeem(grant).await {
        Err(e) => Outcome::Refuse(failed(&e)),
        Ok(r) if r.request != id => Outcome::Refuse(Refusal::Failed(format!(
            "Countersign blocked this tool call: the grant for request {id} names another request. Nothing was forwarded."
        ))),
        Ok(mut r) if r.actions.len() == 1 && r.actions[0].tool == tool => Outcome::Forward {
            id: id.to_owned(),
            approved_by_people,
            args: std::mem::take(&mut r.actions[0].args),
        },
        Ok(_) => Outcome::Refuse(Refusal::Failed(format!(
            "Countersign blocked this tool call: what was approved in request {id} is not this call. Nothing was forwarded."
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_reads_as_a_countdown() {
        let w = Waiting { id: "r1".into(), missing: 2, expires_in_s: 252, binding_code: None };
        assert_eq!(w.message(), "Waiting for 2 approvers, expires in 4:12 (request r1)");
        let w = Waiting { missing: 1, expires_in_s: -3, binding_code: Some("123456".into()), ..w };
        assert_eq!(
            w.message(),
            "Waiting for 1 approver, expires in 0:00 (request r1); the person this agent acts for must read the code 123456 to the approver"
        );
    }
}
