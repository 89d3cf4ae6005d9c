//! Intake: a workload's draft becomes a request — validated, rate-limited, judged by the policy,
//! and answered at once (allowed with a grant, denied) or stored as a signed step-up for approvers.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use axum::http::StatusCode;
use countersign_protocol::{
    self as protocol, Binding, PolicyClaims, StepUpClaims, StepUpDraft, Tier, TYP_STEP_UP,
};
use serde_json::{json, Value};

use super::events::EventLog;
use super::validate::{check_nonempty, validate_draft};
use super::{now, App, MAX_GRANT_TTL_S, MIN_TTL_S};
use crate::error::ApiError;
use crate::policy::Outcome;
use crate::store::{self, StepUpRow};

/// Per-workload token buckets: each workload may submit `rate_per_minute` requests a minute.
#[derive(Debug, Default)]
pub(crate) struct RateLimits {
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimits {
    /// Take one request from `workload`'s bucket, or refuse when it is empty.
    fn take(&self, workload: &str, rate_per_minute: u32) -> Result<(), ApiError> {
        let rate = f64::from(rate_per_minute.max(1));
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let b = buckets.entry(workload.to_owned()).or_insert(Bucket { tokens: rate, at: now });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate / 60.0).min(rate);
        b.at = now;
        if b.tokens < 1.0 {
            return Err(ApiError::rate_limited(format!(
                "workload {workload} is over its limit of {rate_per_minute} requests per minute"
            )));
        }
        b.tokens -= 1.0;
        Ok(())
    }
}

impl App {
    /// `POST /v1/step-ups` for an authenticated workload. Returns the status and body.
    pub async fn submit(
        &self,
        workload: &str,
        draft: StepUpDraft,
        idempotency_key: Option<&str>,
    ) -> Result<(StatusCode, Value), ApiError> {
        validate_draft(&draft)?;
        if draft.identity.workload != workload {
            return Err(ApiError::forbidden(format!(
                "agent authenticated as {workload} may not submit requests for {}",
                draft.identity.workload
            )));
        }
        if let Some(key) = idempotency_key {
            check_nonempty("Idempotency-Key", key, 200)?;
            if let Some(row) = store::step_up_by_idempotency_key(&self.db, workload, key).await? {
                return Ok(Self::first_response(&row));
            }
        }
        self.limits.take(workload, self.config.rate_per_minute)?;
        let outcome = self.policy.evaluate_bounded(workload, &draft).await.map_err(|e| match e {
            crate::policy::PolicyError::TooLarge { .. } => ApiError::too_large(e.to_string()),
            e => ApiError::internal(e),
        })?;
        // A grant names the system in its normal form and the environment the catalogue knows it
        // in (the agent's declaration only for a system the catalogue does not know): a grant for
        // `payments-api` declared "sandbox" is a production grant, which only production redeems.
        let grant_system = crate::facts::normal_name(&draft.target.system);
        let grant_environment = self
            .policy
            .data()
            .systems
            .get(&grant_system)
            .map(|s| s.environment.clone())
            .unwrap_or_else(|| crate::facts::normal_name(&draft.target.environment));
        let id = protocol::new_id();
        let iat = now();
        let subs: Vec<&str> = draft.identity.on_behalf_of.iter().map(|p| p.sub.as_str()).collect();
        let subs = serde_json::to_string(&subs).map_err(ApiError::internal)?;
        let mut row = StepUpRow {
            id: id.clone(),
            workload: workload.into(),
            state: String::new(),
            jwt: None,
            digest: None,
            tier: None,
            approvals_required: 0,
            policy_id: String::new(),
            reason: String::new(),
            binding_code: None,
            binding_failures: 0,
            on_behalf_of: subs,
            target_system: grant_system.clone(),
            target_environment: grant_environment.clone(),
            iat,
            exp: iat,
            grant_jwt: None,
            response: String::new(),
        };
        let mut issued = None;
        let mut allowed_actions = None;
        let (status, body, event) = match outcome {
            Outcome::Allow { id: rule, reason } => {
                let digest =
                    protocol::request_digest(&serde_json::to_value(&draft).map_err(ApiError::internal)?)
                        .map_err(|e| ApiError::malformed(e.to_string()))?;
                let (grant, grant_row) = self.sign_grant(
                    workload,
                    &grant_system,
                    &grant_environment,
                    &id,
                    &digest,
                    MAX_GRANT_TTL_S,
                    1,
                )?;
                issued = Some(grant_row);
                allowed_actions = Some(serde_json::to_string(&draft.actions).map_err(ApiError::internal)?);
                row.state = "approved".into();
                row.grant_jwt = Some(grant.clone());
                (row.policy_id, row.reason) = (rule.clone(), reason.clone());
                (
                    StatusCode::OK,
                    json!({"id": id, "state": "approved", "policy": rule, "reason": reason, "grant": grant}),
                    None,
                )
            }
            Outcome::Deny { id: rule, reason } => {
                row.state = "denied".into();
                (row.policy_id, row.reason) = (rule.clone(), reason.clone());
                (StatusCode::OK, json!({"id": id, "state": "denied", "policy": rule, "reason": reason}), None)
            }
            Outcome::StepUp { id: rule, reason, tier, approvals_required, data_class } => {
                // The approver sees the class the policy judged by; an agent can only be corrected upwards.
                let mut data = draft.data;
                if let Some(class) = data_class {
                    data.class = data.class.max(class);
                }
                let ttl = draft
                    .ttl_s
                    .map(|t| t.min(i64::MAX as u64) as i64)
                    .unwrap_or(self.config.default_ttl_s)
                    .clamp(MIN_TTL_S, self.config.max_ttl_s);
                let binding_code = (tier == Tier::Critical).then(|| {
                    use rand::Rng as _;
                    format!("{:06}", rand::rngs::OsRng.gen_range(0..1_000_000u32))
                });
                let claims = StepUpClaims {
                    iss: self.ep.clone(),
                    jti: id.clone(),
                    iat,
                    exp: iat + ttl,
                    identity: draft.identity,
                    purpose: draft.purpose,
                    data,
                    target: draft.target,
                    actions: draft.actions,
                    policy: PolicyClaims {
                        id: rule.clone(),
                        reason: reason.clone(),
                        tier,
                        approvals_required,
                    },
                    binding: binding_code.as_ref().map(|_| Binding { required: true }),
                };
                let raw = serde_json::to_value(&claims).map_err(ApiError::internal)?;
                let digest =
                    protocol::request_digest(&raw).map_err(|e| ApiError::malformed(e.to_string()))?;
                let jwt = protocol::sign(&raw, TYP_STEP_UP, &self.key)
                    .map_err(|e| ApiError::malformed(e.to_string()))?;
                row.state = "pending".into();
                row.exp = claims.exp;
                row.tier = Some(tier.as_str().into());
                row.approvals_required = i64::from(approvals_required);
                (row.policy_id, row.reason) = (rule, reason);
                row.digest = Some(digest);
                row.jwt = Some(jwt.clone());
                row.binding_code = binding_code.clone();
                let mut body = json!({"id": id, "state": "pending", "expires_at": claims.exp, "tier": tier,
                    "approvals_required": approvals_required});
                if let Some(code) = &binding_code {
                    body["binding_code"] = json!(code);
                }
                (StatusCode::CREATED, body, Some(json!({"id": id, "jwt": jwt})))
            }
        };
        row.response = body.to_string();

        let _w = self.write.lock().await;
        let mut tx = store::write_tx(&self.db).await?;
        let inserted = sqlx::query(
            "INSERT INTO step_ups (id, workload, state, jwt, digest, tier, approvals_required, policy_id, reason,
               binding_code, on_behalf_of, target_system, target_environment, iat, exp, grant_jwt,
               idempotency_key, response, allowed_actions)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT DO NOTHING",
        )
        .bind(&row.id)
        .bind(&row.workload)
        .bind(&row.state)
        .bind(&row.jwt)
        .bind(&row.digest)
        .bind(&row.tier)
        .bind(row.approvals_required)
        .bind(&row.policy_id)
        .bind(&row.reason)
        .bind(&row.binding_code)
        .bind(&row.on_behalf_of)
        .bind(&row.target_system)
        .bind(&row.target_environment)
        .bind(row.iat)
        .bind(row.exp)
        .bind(&row.grant_jwt)
        .bind(idempotency_key)
        .bind(&row.response)
        .bind(&allowed_actions)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            // A concurrent retry with the same Idempotency-Key won the race: answer what it answered.
            drop(tx);
            let key = idempotency_key.unwrap_or_default();
            let existing = store::step_up_by_idempotency_key(&self.db, workload, key)
                .await?
                .ok_or_else(|| ApiError::conflict("request id collision"))?;
            return Ok(Self::first_response(&existing));
        }
        if let Some(g) = &issued {
            store::insert_grant(&mut tx, g).await?;
        }
        let mut published = Vec::new();
        if let Some(data) = event {
            published.push(EventLog::append(&mut tx, "step-up", data, iat).await?);
        }
        tx.commit().await?;
        self.events.publish(published);
        tracing::info!(id = %row.id, workload, state = %row.state, policy = %row.policy_id, "step-up submitted");
        Ok((status, body))
    }

    fn first_response(row: &StepUpRow) -> (StatusCode, Value) {
        let body: Value = serde_json::from_str(&row.response).unwrap_or(Value::Null);
        let status = if row.jwt.is_some() { StatusCode::CREATED } else { StatusCode::OK };
        (status, body)
    }
}
