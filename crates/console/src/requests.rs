//! Verified step-up requests: ingestion (verify against the pinned key, then persist), resolution
//! updates from the enforcement point, and reading them back as lines ([`RequestLine`]) and
//! details ([`RequestDetail`]); listing them is in `requests/inbox.rs`.

use countersign_protocol::{
    self as protocol, ProtocolError, RequestState, StepUpClaims, Validation, Verdict, TYP_STEP_UP,
};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::ep::Ep;
use crate::profile::hex;
use crate::{display, history, now, Console, ConsoleError, Result};

mod detail;
mod inbox;
mod line;

pub use detail::{ActionView, DecisionView, RequestDetail};
pub use inbox::InboxPage;
pub use line::{InboxState, RequestLine};

/// What became of a token offered by an enforcement point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ingested {
    /// Verified and stored now.
    New(String),
    /// Already stored.
    Known,
    /// Verified but already expired: not stored, not shown.
    Expired,
    /// Failed verification: recorded in the history, never stored as a request.
    Rejected(String),
}

/// This approver's decision on a request, as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct DecisionSummary {
    /// approve / deny.
    pub verdict: String,
    /// The reason given.
    pub reason: String,
    /// NULL until delivered: accepted / refused.
    pub outcome: Option<String>,
    /// The enforcement point's answer.
    pub answer: Option<String>,
    /// When it was signed.
    pub signed_at: i64,
}

impl DecisionSummary {
    fn view(self) -> DecisionView {
        DecisionView {
            verdict: if self.verdict == "deny" { Verdict::Deny } else { Verdict::Approve },
            reason: self.reason,
            delivered: self.outcome.is_some(),
            answer: self.answer.as_deref().map(crate::review::answer_text),
            signed_at: self.signed_at,
            outcome: self.outcome,
            answer_body: self.answer,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct RequestRow {
    pub ep: String,
    pub id: String,
    pub jwt: String,
    pub claims: String,
    pub digest: String,
    pub state: String,
    pub exp: i64,
}

impl RequestRow {
    /// What the enforcement point last said of it (an unknown word reads as pending: it never
    /// moved, since only known terminal states are stored).
    pub(crate) fn stored_state(&self) -> RequestState {
        self.state.parse().unwrap_or(RequestState::Pending)
    }
}

/// The typed and the raw claims of a stored request (verified when stored).
pub(crate) fn stored_claims(id: &str, text: &str) -> Result<(StepUpClaims, Value)> {
    let raw: Value =
        serde_json::from_str(text).map_err(|e| ConsoleError::Invalid(format!("stored request {id}: {e}")))?;
    let claims = serde_json::from_value(raw.clone())
        .map_err(|e| ConsoleError::Invalid(format!("stored request {id}: {e}")))?;
    Ok((claims, raw))
}

impl Console {
    /// Verify `jwt` (announced as request `id`) against `ep`'s pinned key and store it when valid.
    /// A failure is recorded once in the history as `request rejected`, with the reason.
    pub async fn ingest(&self, ep: &Ep, id: Option<&str>, jwt: &str) -> Result<Ingested> {
        let t = now();
        let checked = ep.key().and_then(|key| {
            let v = protocol::verify::<StepUpClaims>(jwt, TYP_STEP_UP, &key, &Validation::at(t))?;
            if v.claims.iss != ep.ep {
                return Err(ConsoleError::Invalid(format!("issued by {:?}, not {:?}", v.claims.iss, ep.ep)));
            }
            if id.is_some_and(|id| id != v.claims.jti) {
                return Err(ConsoleError::Invalid(format!(
                    "announced as {id:?} but its jti is {:?}",
                    v.claims.jti
                )));
            }
            Ok(v)
        });
        let v = match checked {
            Ok(v) => v,
            Err(ConsoleError::Protocol(ProtocolError::Expired { .. })) => return Ok(Ingested::Expired),
            Err(e) => return self.reject(ep, id, jwt, &e.to_string()).await,
        };
        if v.claims.exp <= t {
            return Ok(Ingested::Expired);
        }
        let digest = protocol::request_digest(&v.raw)?;
        let claims = serde_json::to_string(&v.raw).map_err(|e| ConsoleError::Invalid(e.to_string()))?;
        let line = RequestLine::of(&v.claims, display::warnings(&v.raw).len()).for_list();
        let glance = serde_json::to_string(&line).map_err(|e| ConsoleError::Invalid(e.to_string()))?;
        let mut tx = self.relaxed_tx().await?;
        let inserted = sqlx::query(
            "INSERT INTO requests (ep, id, jwt, claims, digest, tier, workload, iat, exp, received_at, glance)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(&ep.ep)
        .bind(&v.claims.jti)
        .bind(jwt)
        .bind(&claims)
        .bind(&digest)
        .bind(v.claims.policy.tier.as_str())
        .bind(&v.claims.identity.workload)
        .bind(v.claims.iat)
        .bind(v.claims.exp)
        .bind(t)
        .bind(&glance)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Ok(Ingested::Known);
        }
        let c = &v.claims;
        let detail = history::HistoryDetail::RequestReceived(history::Received {
            jwt: jwt.to_string(),
            digest,
            workload: c.identity.workload.clone(),
            display: c.identity.display.clone(),
            on_behalf_of: c.identity.on_behalf_of.iter().map(|p| p.sub.clone()).collect(),
            purpose: c.purpose.code.clone(),
            statement: c.purpose.statement.clone(),
            class: c.data.class,
            tier: c.policy.tier,
            target: format!("{}/{}", c.target.system, c.target.environment),
            policy_reason: c.policy.reason.clone(),
        });
        history::append(&mut tx, t, Some(&ep.ep), Some(&c.jti), &detail).await?;
        tx.commit().await?;
        Ok(Ingested::New(c.jti.clone()))
    }

    async fn reject(&self, ep: &Ep, id: Option<&str>, jwt: &str, reason: &str) -> Result<Ingested> {
        let digest = hex(&Sha256::digest(jwt.as_bytes()));
        let mut tx = self.relaxed_tx().await?;
        let fresh = sqlx::query("INSERT INTO rejected (ep, digest) VALUES (?, ?) ON CONFLICT DO NOTHING")
            .bind(&ep.ep)
            .bind(&digest)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if fresh > 0 {
            let detail = history::Rejected { reason: reason.to_string(), jwt: jwt.to_string() };
            history::append(
                &mut tx,
                now(),
                Some(&ep.ep),
                id,
                &history::HistoryDetail::RequestRejected(detail),
            )
            .await?;
            tx.commit().await?;
        }
        Ok(Ingested::Rejected(reason.to_string()))
    }

    /// Record what the enforcement point says a request's state is. Only a pending request moves,
    /// and only to a terminal state; the move is logged as `resolved`.
    pub async fn apply_state(&self, ep: &str, id: &str, state: &str) -> Result<bool> {
        let Some(state) = state.parse::<RequestState>().ok().filter(|s| s.is_terminal()) else {
            return Ok(false);
        };
        let state = state.as_str();
        let mut tx = self.relaxed_tx().await?;
        let moved =
            sqlx::query("UPDATE requests SET state = ? WHERE ep = ? AND id = ? AND state = 'pending'")
                .bind(state)
                .bind(ep)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if moved > 0 {
            let detail = history::HistoryDetail::Resolved(history::Resolved { state: state.parse()? });
            history::append(&mut tx, now(), Some(ep), Some(id), &detail).await?;
            tx.commit().await?;
        }
        Ok(moved > 0)
    }

    /// The stored request `id` of enforcement point `ep` (its id or URL). A request id is unique
    /// only within its enforcement point: without `ep`, an id that several enforcement points use
    /// is [`ConsoleError::Ambiguous`] (naming them), never one of them picked — and with `ep`, any
    /// of them can still be reached, whatever another enforcement point sends under the same id.
    pub(crate) async fn find(&self, ep: Option<&str>, id: &str) -> Result<RequestRow> {
        let ep = match ep {
            Some(ep) => Some(self.ep(ep).await?.ep),
            None => None,
        };
        let mut rows = sqlx::query_as::<_, RequestRow>(
            "SELECT * FROM requests WHERE id = ? AND (? IS NULL OR ep = ?) ORDER BY ep LIMIT 10",
        )
        .bind(id)
        .bind(&ep)
        .bind(&ep)
        .fetch_all(self.db())
        .await?;
        match rows.len() {
            0 => Err(ConsoleError::NotFound(match &ep {
                Some(ep) => format!("request {id} of {ep}"),
                None => format!("request {id}"),
            })),
            1 => Ok(rows.remove(0)),
            _ => Err(ConsoleError::Ambiguous(format!(
                "request id {id} is used by several enforcement points ({}): name one with --ep",
                rows.iter().map(|r| r.ep.as_str()).collect::<Vec<_>>().join(", ")
            ))),
        }
    }

    pub(crate) async fn latest_decision(&self, ep: &str, id: &str) -> Result<Option<DecisionSummary>> {
        Ok(sqlx::query_as::<_, DecisionSummary>(
            "SELECT verdict, reason, outcome, answer, signed_at FROM decisions WHERE ep = ? AND request_id = ?
             ORDER BY signed_at DESC, rowid DESC LIMIT 1",
        )
        .bind(ep)
        .bind(id)
        .fetch_optional(self.db())
        .await?)
    }

    async fn view(&self, r: RequestRow) -> Result<RequestDetail> {
        let decision = self.latest_decision(&r.ep, &r.id).await?;
        detail_of(r, decision)
    }

    /// One request by id, when only one enforcement point uses that id (see [`Console::request_at`]).
    pub async fn request(&self, id: &str) -> Result<RequestDetail> {
        self.request_at(None, id).await
    }

    /// One request by enforcement point (id or URL; `None`: whichever one uses `id`, if only
    /// one does) and id.
    pub async fn request_at(&self, ep: Option<&str>, id: &str) -> Result<RequestDetail> {
        let row = self.find(ep, id).await?;
        self.view(row).await
    }
}

/// The detail of a stored request and this approver's latest decision on it.
pub(crate) fn detail_of(r: RequestRow, decision: Option<DecisionSummary>) -> Result<RequestDetail> {
    let (claims, raw) = stored_claims(&r.id, &r.claims)?;
    let t = now();
    let undelivered = decision.as_ref().is_some_and(|d| d.outcome.is_none());
    let mut line = RequestLine::of(&claims, 0);
    line.state = InboxState::of(r.stored_state(), undelivered, r.exp, t);
    (line.ep, line.id, line.exp) = (r.ep, r.id, r.exp);
    Ok(RequestDetail::of(line, claims, raw, decision.map(DecisionSummary::view), r.digest, r.jwt, t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(statement: &str) -> Value {
        json!({
            "iss": "ep", "jti": "r", "iat": 7, "exp": 9,
            "identity": {"workload": "spiffe://a/b", "display": "Pay\u{202E}bot",
                         "on_behalf_of": [{"sub": "u1", "display": "Ann"}, {"sub": "u2", "display": ""}]},
            "purpose": {"code": "p", "statement": statement},
            "data": {"class": "restricted", "categories": ["pii"]},
            "target": {"system": "erp", "environment": "prod"},
            "actions": [{"tool": "p\u{0430}y", "args": {}, "reversible": false}],
            "policy": {"id": "x", "reason": "r", "tier": "high", "approvals_required": 2},
            "binding": {"required": true},
        })
    }

    #[test]
    fn the_line_cuts_long_statements_for_lists_only_and_counts_warnings() {
        let long = "é".repeat(RequestLine::STATEMENT_CHARS + 10);
        let raw = claims(&long);
        let c: StepUpClaims = serde_json::from_value(raw.clone()).unwrap();
        let whole = RequestLine::of(&c, display::warnings(&raw).len());
        assert_eq!(whole.purpose_statement, long, "the detail reads it whole");
        let l = whole.clone().for_list();
        assert_eq!(l.purpose_statement.chars().count(), RequestLine::STATEMENT_CHARS + 1);
        assert!(l.purpose_statement.ends_with('…'));
        assert_eq!(l.on_behalf_of, ["Ann", ""]);
        assert_eq!((l.approvals_required, l.binding_required, l.iat), (2, true, 7));
        assert!(l.warning_count >= 2, "bidi in the display name and a mixed-script tool: {l:?}");
    }

    #[test]
    fn inbox_states_follow_the_stored_state_and_the_clock() {
        use InboxState as S;
        assert_eq!(S::of(RequestState::Pending, true, 0, 10), S::Undelivered);
        assert_eq!(S::of(RequestState::Pending, false, 5, 10), S::Expired);
        assert_eq!(S::of(RequestState::Pending, false, 20, 10), S::Pending);
        assert_eq!(S::of(RequestState::Withdrawn, false, 20, 10), S::Withdrawn);
        assert_eq!(S::Undelivered.words(), "decided, not delivered");
    }
}
