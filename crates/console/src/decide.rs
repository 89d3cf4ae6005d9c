//! Signing decisions. The rules run here, in Rust, before anything is signed; the decision and its
//! outbox row are committed (synchronous FULL) before the first delivery attempt.

use countersign_protocol::{
    self as protocol, reason_required, Constraints, DecisionClaims, RequestState, StepUpClaims, Validation,
    Verdict, TYP_DECISION, TYP_STEP_UP,
};
use serde::Serialize;

use crate::ep::Ep;
use crate::requests::RequestRow;
use crate::{history, now, Console, ConsoleError, Result};

/// Longest lifetime of a signed decision, in seconds (never beyond the request's own expiry).
pub const DECISION_LIFETIME_S: i64 = 120;

/// What the approver decided, before it is checked and signed.
#[derive(Debug, Clone)]
pub struct DecisionInput {
    /// Approve or deny.
    pub verdict: Verdict,
    /// The approver's reason (required to deny, and to approve high/critical).
    pub reason: String,
    /// Narrower grant lifetime, approvals only.
    pub ttl_s: Option<u64>,
    /// Narrower number of uses, approvals only.
    pub max_uses: Option<u32>,
    /// The binding code the agent's principal read out (critical approvals).
    pub binding_code: Option<String>,
}

/// What became of a signed decision.
#[derive(Debug, Clone, Serialize)]
pub struct DecisionOutcome {
    /// The decision's jti.
    pub jti: String,
    /// The signed decision.
    pub token: String,
    /// The delivery result (delivered or still queued).
    pub delivery: crate::outbox::Delivery,
}

/// The rules a decision must satisfy, given the verified request. `Err` names the first missing rule.
pub fn check_rules(request: &StepUpClaims, input: &DecisionInput) -> std::result::Result<(), String> {
    if reason_required(input.verdict, request.policy.tier) && input.reason.trim().is_empty() {
        return Err(match input.verdict {
            Verdict::Deny => "a reason is required to deny".into(),
            Verdict::Approve => {
                format!("a reason is required to approve a {} request", request.policy.tier.as_str())
            }
        });
    }
    if input.verdict == Verdict::Deny && (input.ttl_s.is_some() || input.max_uses.is_some()) {
        return Err("constraints (ttl, max uses) apply to approvals only".into());
    }
    if input.ttl_s == Some(0) || input.max_uses == Some(0) {
        return Err("ttl and max uses must be at least 1".into());
    }
    let binding = request.binding.as_ref().is_some_and(|b| b.required);
    let code = input.binding_code.as_deref().map(str::trim).filter(|c| !c.is_empty());
    if binding && input.verdict == Verdict::Approve && code.is_none() {
        return Err(
            "this request requires the binding code: ask the person the agent acts for to read it to you"
                .into(),
        );
    }
    if !binding && code.is_some() {
        return Err("this request has no binding code".into());
    }
    Ok(())
}

/// A stored request that may be decided: the row, its enforcement point, the claims as verified
/// again now, and their digest.
type Signable = (RequestRow, Ep, protocol::Verified<StepUpClaims>, String);

impl Console {
    /// Everything checked before signing a decision on `id` at time `t`.
    async fn signable(&self, ep: Option<&str>, id: &str, input: &DecisionInput, t: i64) -> Result<Signable> {
        let req = self.find(ep, id).await?;
        // Fail closed: only a request stored as pending, in a word this version knows, is decided.
        if req.state.parse::<RequestState>().ok() != Some(RequestState::Pending) {
            return Err(ConsoleError::Refused(format!("the request is already {}", req.state)));
        }
        if req.exp <= t {
            return Err(ConsoleError::Refused("the request has expired".into()));
        }
        if let Some(d) = self.latest_decision(&req.ep, &req.id).await? {
            if d.outcome.as_deref() != Some("refused") {
                return Err(ConsoleError::Refused(format!(
                    "you already decided ({}) on this request",
                    d.verdict
                )));
            }
        }
        // Verify again what was stored and shown, and bind the decision to exactly that.
        let ep = self.ep(&req.ep).await?;
        // Nothing is signed for an enforcement point it could never be sent to (plain http to a
        // remote host, a pinned id that is not its key's).
        self.client(&ep).map_err(|e| ConsoleError::Refused(format!("not signed: {e}")))?;
        let verified = ep
            .key()
            .and_then(|k| {
                Ok(protocol::verify::<StepUpClaims>(&req.jwt, TYP_STEP_UP, &k, &Validation::at(t))?)
            })
            .map_err(|e| ConsoleError::Refused(format!("the request no longer verifies: {e}")))?;
        let digest = protocol::request_digest(&verified.raw)?;
        if digest != req.digest {
            return Err(ConsoleError::Refused("the request differs from what was shown".into()));
        }
        check_rules(&verified.claims, input).map_err(ConsoleError::Refused)?;

        Ok((req, ep, verified, digest))
    }

    /// Check, sign, commit and try to deliver a decision on request `id`.
    ///
    /// Refuses ([`ConsoleError::Refused`], nothing changed) when the request is resolved, expired,
    /// already decided here, no longer verifies against the pinned key, or a rule is missing.
    pub async fn decide(&self, id: &str, input: DecisionInput) -> Result<DecisionOutcome> {
        self.decide_at(None, id, input).await
    }

    /// [`Console::decide`] on request `id` of enforcement point `ep` (its id or URL; `None`:
    /// whichever one uses `id`, refused as ambiguous when several do).
    pub async fn decide_at(
        &self,
        ep: Option<&str>,
        id: &str,
        input: DecisionInput,
    ) -> Result<DecisionOutcome> {
        let t = now();
        // The keyring read (a D-Bus round trip) overlaps the checks; the key is dropped unused
        // (zeroized) when they refuse. A key is only created (first use) once they passed.
        let (checked, key) = tokio::join!(self.signable(ep, id, &input, t), self.existing_key());
        let (req, ep, verified, digest) = checked?;
        let key = match key? {
            Some(key) => key,
            None => self.signing_key().await?,
        };
        let kid = key.kid();
        let constraints = (input.ttl_s.is_some() || input.max_uses.is_some())
            .then_some(Constraints { ttl_s: input.ttl_s, max_uses: input.max_uses });
        let claims = DecisionClaims {
            iss: kid.clone(),
            aud: req.ep.clone(),
            sub: req.id.clone(),
            iat: t,
            exp: verified.claims.exp.min(t + DECISION_LIFETIME_S),
            jti: protocol::new_id(),
            digest: digest.clone(),
            decision: input.verdict,
            reason: input.reason.trim().to_string(),
            constraints,
            binding_code: input.binding_code.map(|c| c.trim().to_string()).filter(|c| !c.is_empty()),
        };
        let token = key.with(|k| protocol::sign(&claims, TYP_DECISION, k))?;
        // One keyring read per decision: the first delivery's auth token is signed now too.
        let auth = crate::ep_client::auth_token(&key, &req.ep)?;
        drop(key);
        let verdict = match claims.decision {
            Verdict::Approve => "approve",
            Verdict::Deny => "deny",
        };

        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO decisions (jti, ep, request_id, kid, verdict, reason, token, signed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&claims.jti)
        .bind(&req.ep)
        .bind(&req.id)
        .bind(&kid)
        .bind(verdict)
        .bind(&claims.reason)
        .bind(&token)
        .bind(t)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO outbox (jti, next_attempt_at) VALUES (?, ?)")
            .bind(&claims.jti)
            .bind(t)
            .execute(&mut *tx)
            .await?;
        let detail = history::HistoryDetail::DecisionSigned(history::Signed {
            jti: claims.jti.clone(),
            verdict: claims.decision,
            reason: claims.reason.clone(),
            kid,
            digest,
            constraints: claims.constraints,
            token: token.clone(),
        });
        history::append(&mut tx, t, Some(&req.ep), Some(&req.id), &detail).await?;
        tx.commit().await?;

        // Signed checkpoints are the caller's (and the watch loop's) to make, off this path.
        let delivery = self.deliver_one(&ep, &claims.jti, &auth).await?;
        Ok(DecisionOutcome { jti: claims.jti, token, delivery })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use countersign_protocol::Tier;
    use serde_json::json;

    fn request(tier: Tier, binding: bool) -> StepUpClaims {
        let raw = json!({
            "iss": "ep", "jti": "r1", "iat": 0, "exp": 100,
            "identity": {"workload": "spiffe://a/b", "display": "A", "on_behalf_of": []},
            "purpose": {"code": "p", "statement": "s"},
            "data": {"class": "internal", "categories": []},
            "target": {"system": "s", "environment": "e"},
            "actions": [{"tool": "t", "args": {}, "reversible": true}],
            "policy": {"id": "x", "reason": "r", "tier": tier.as_str(), "approvals_required": 1},
        });
        let mut c: StepUpClaims = serde_json::from_value(raw).unwrap();
        c.binding = binding.then_some(protocol::Binding { required: true });
        c
    }

    fn input(verdict: Verdict, reason: &str, code: Option<&str>) -> DecisionInput {
        DecisionInput {
            verdict,
            reason: reason.into(),
            ttl_s: None,
            max_uses: None,
            binding_code: code.map(Into::into),
        }
    }

    #[test]
    fn reasons() {
        assert!(check_rules(&request(Tier::Low, false), &input(Verdict::Deny, "  ", None)).is_err());
        assert!(check_rules(&request(Tier::Medium, false), &input(Verdict::Approve, "", None)).is_ok());
        assert!(check_rules(&request(Tier::High, false), &input(Verdict::Approve, "", None)).is_err());
        assert!(check_rules(&request(Tier::High, false), &input(Verdict::Approve, "ticket 1", None)).is_ok());
    }

    #[test]
    fn binding_code() {
        let critical = request(Tier::Critical, true);
        assert!(check_rules(&critical, &input(Verdict::Approve, "ok", None)).is_err());
        assert!(check_rules(&critical, &input(Verdict::Approve, "ok", Some("123456"))).is_ok());
        assert!(check_rules(&critical, &input(Verdict::Deny, "no", None)).is_ok(), "denying needs no code");
        assert!(check_rules(&request(Tier::High, false), &input(Verdict::Approve, "ok", Some("1"))).is_err());
    }

    #[test]
    fn constraints_only_on_approvals() {
        let mut i = input(Verdict::Deny, "no", None);
        i.ttl_s = Some(60);
        assert!(check_rules(&request(Tier::Low, false), &i).is_err());
    }
}
