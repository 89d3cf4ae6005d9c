//! Judging: an approver's signed decision is verified, checked against the request (state, expiry,
//! digest, self-approval, reason, one voice per principal, binding code) and counted toward quorum;
//! the last approval needed issues the grant.

use axum::http::StatusCode;
use countersign_protocol::{self as protocol, principal, DecisionClaims, Validation, Verdict, TYP_DECISION};
use serde_json::{json, Value};

use super::auth::approver_key;
use super::events::Event;
use super::{now, stored_tier, App, MAX_BINDING_FAILURES, MAX_GRANT_TTL_S};
use crate::error::ApiError;
use crate::store::{self, Approver};

/// The decisions of request `?` that still count: not those of a key removed since (a distrusted
/// approver's earlier approval stops counting toward quorum); a rotated or replaced key's do, as
/// its principal's.
const COUNTED: &str = "JOIN approvers a ON a.kid = d.approver \
     WHERE d.request_id = ? AND (a.retired_why IS NULL OR a.retired_why != 'removed')";

impl App {
    /// `POST /v1/step-ups/{id}/decisions` by an authenticated approver.
    ///
    /// The same token presented twice gets the same answer and is counted once; a different token
    /// reusing a `jti` is a replay (409).
    pub async fn decide(
        &self,
        approver: &Approver,
        id: &str,
        token: &str,
    ) -> Result<(StatusCode, Value), ApiError> {
        let token = token.trim();
        let header = protocol::jws::decode_header(token).map_err(ApiError::from_protocol)?;
        let kid = header.kid.ok_or_else(|| ApiError::unauthorized("decision has no kid"))?;
        let signer = self
            .enrolled(&kid)
            .await?
            .ok_or_else(|| ApiError::unauthorized(format!("decision signed by unknown key {kid}")))?;
        if signer.kid != approver.kid {
            return Err(ApiError::forbidden("a decision must be signed by the authenticated approver's key"));
        }
        let verified = protocol::verify::<DecisionClaims>(
            token,
            TYP_DECISION,
            &approver_key(&signer)?,
            &Validation::at(now()).audience(&self.ep),
        )
        .map_err(ApiError::from_protocol)?;
        let claims = verified.claims;
        if claims.iss != kid {
            return Err(ApiError::unauthorized("decision iss is not its kid"));
        }

        let _w = self.write_lock().lock().await;
        let mut tx = store::write_tx(self.db()).await?;
        let seen: Option<(String, i64, String)> =
            sqlx::query_as("SELECT jwt, status, body FROM seen_jtis WHERE jti = ?")
                .bind(&claims.jti)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some((jwt, status, body)) = seen {
            if jwt == token {
                let status = StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK);
                let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                return if status.is_success() {
                    Ok((status, body))
                } else {
                    Err(ApiError {
                        status,
                        code: "replayed_rejection",
                        message: body["message"].as_str().unwrap_or("rejected before").into(),
                    })
                };
            }
            return Err(ApiError::conflict(format!("decision jti {} was already used", claims.jti)));
        }
        let t = now();
        let mut events = Vec::new();
        let outcome = self.judge(&mut tx, approver, id, token, &claims, t, &mut events).await;
        let (status, body) = match &outcome {
            Ok((s, b)) => (*s, b.clone()),
            Err(e) => (e.status, json!({"error": e.code, "message": e.message})),
        };
        sqlx::query("INSERT INTO seen_jtis (jti, jwt, status, body, exp) VALUES (?, ?, ?, ?, ?)")
            .bind(&claims.jti)
            .bind(token)
            .bind(i64::from(status.as_u16()))
            .bind(body.to_string())
            .bind(claims.exp)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.events.publish(events);
        outcome
    }

    #[allow(clippy::too_many_arguments)] // one call site; the arguments are the decision's whole context
    async fn judge(
        &self,
        tx: &mut sqlx::SqliteConnection,
        approver: &Approver,
        id: &str,
        token: &str,
        claims: &DecisionClaims,
        t: i64,
        events: &mut Vec<Event>,
    ) -> Result<(StatusCode, Value), ApiError> {
        if claims.sub != id {
            return Err(ApiError::digest_mismatch(format!(
                "decision is for request {}, not {id}",
                claims.sub
            )));
        }
        // The key was checked against a cache before the write lock: a rotation or removal
        // committed since must still stop it.
        let active: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM approvers WHERE kid = ? AND retired_at IS NULL")
                .bind(&approver.kid)
                .fetch_optional(&mut *tx)
                .await?;
        if active.is_none() {
            return Err(ApiError::unauthorized(format!("approver key {} is no longer active", approver.kid)));
        }
        let row = store::step_up(&mut *tx, id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no request {id}")))?;
        if row.state == "pending" && t > row.exp {
            events.push(self.resolve(tx, id, "expired", None, t).await?);
            return Err(ApiError::expired("the request expired before the decision arrived"));
        }
        match row.state.as_str() {
            "pending" => {}
            "expired" => return Err(ApiError::expired("the request has expired")),
            s => return Err(ApiError::conflict(format!("the request is already {s}"))),
        }
        if claims.exp > row.exp {
            return Err(ApiError::unprocessable("decision exp is after the request's exp"));
        }
        if Some(&claims.digest) != row.digest.as_ref() {
            return Err(ApiError::digest_mismatch("decision digest does not match the request as signed"));
        }
        let subs: Vec<String> = serde_json::from_str(&row.on_behalf_of).unwrap_or_default();
        if subs.iter().any(|s| principal::same_principal(s, &approver.principal_key)) {
            return Err(ApiError::forbidden(
                "self-approval: the approver is one of the principals the agent acts for",
            ));
        }
        let owners = store::agent_owners(&mut *tx, &row.workload).await?;
        if owners.iter().any(|o| principal::same_principal(o, &approver.principal_key)) {
            return Err(ApiError::forbidden(
                "self-approval: the approver is a registered owner of the agent",
            ));
        }
        let tier = stored_tier(row.tier.as_deref());
        if protocol::reason_required(claims.decision, tier) && claims.reason.trim().is_empty() {
            return Err(ApiError::unprocessable(format!(
                "a reason is required to {} a {} request",
                if claims.decision == Verdict::Deny { "deny" } else { "approve" },
                tier.as_str()
            )));
        }
        // One voice per principal, whichever of their keys (past or present) signed.
        let already: Option<String> =
            sqlx::query_scalar(&format!("SELECT d.verdict FROM decisions d {COUNTED} AND d.principal = ?"))
                .bind(id)
                .bind(&approver.principal_key)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(v) = already {
            return Err(ApiError::conflict(format!(
                "{} already decided ({v}) on this request",
                approver.principal_key
            )));
        }
        if claims.decision == Verdict::Approve {
            if let Some(expected) = &row.binding_code {
                if claims.binding_code.as_deref().map(str::trim) != Some(expected.as_str()) {
                    let failures = row.binding_failures + 1;
                    sqlx::query("UPDATE step_ups SET binding_failures = ? WHERE id = ?")
                        .bind(failures)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    if failures >= MAX_BINDING_FAILURES {
                        events.push(self.resolve(tx, id, "denied", None, t).await?);
                        return Err(ApiError::forbidden(
                            "wrong binding code, third time: the request is denied",
                        ));
                    }
                    return Err(ApiError::forbidden(format!(
                        "wrong binding code ({failures} of {MAX_BINDING_FAILURES} attempts used)"
                    )));
                }
            }
        }
        sqlx::query("INSERT INTO decisions (jti, request_id, approver, principal, verdict, jwt, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
            .bind(&claims.jti)
            .bind(id)
            .bind(&approver.kid)
            .bind(&approver.principal_key)
            .bind(if claims.decision == Verdict::Approve { "approve" } else { "deny" })
            .bind(token)
            .bind(t)
            .execute(&mut *tx)
            .await?;

        let state = if claims.decision == Verdict::Deny {
            events.push(self.resolve(tx, id, "denied", None, t).await?);
            "denied"
        } else {
            let approvals: Vec<String> = sqlx::query_scalar(&format!(
                "SELECT d.jwt FROM decisions d {COUNTED} AND d.verdict = 'approve'"
            ))
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
            // `decisions` holds one row per principal and request (checked above): rows are
            // distinct principals, never keys.
            let distinct = approvals.len() as i64;
            if distinct >= row.approvals_required {
                let mut ttl = MAX_GRANT_TTL_S;
                let mut max_uses = u32::MAX;
                for c in approvals.iter().filter_map(|j| protocol::jws::decode_unverified(j).ok()) {
                    let c: DecisionClaims = serde_json::from_value(c).map_err(ApiError::internal)?;
                    let k = c.constraints.unwrap_or_default();
                    ttl = ttl.min(k.ttl_s.unwrap_or(MAX_GRANT_TTL_S));
                    max_uses = max_uses.min(k.max_uses.unwrap_or(1));
                }
                let digest = row.digest.as_deref().unwrap_or_default();
                let (grant, grant_row) = self.sign_grant(
                    &row.workload,
                    &row.target_system,
                    &row.target_environment,
                    id,
                    digest,
                    ttl,
                    max_uses.max(1),
                )?;
                store::insert_grant(&mut *tx, &grant_row).await?;
                events.push(self.resolve(tx, id, "approved", Some(&grant), t).await?);
                "approved"
            } else {
                "pending"
            }
        };
        let approvals: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(DISTINCT d.principal) FROM decisions d {COUNTED} AND d.verdict = 'approve'"
        ))
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        Ok((
            StatusCode::OK,
            json!({"id": id, "state": state, "approvals": approvals, "approvals_required": row.approvals_required}),
        ))
    }
}
