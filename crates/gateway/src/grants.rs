//! Grants as credentials: the gateway signs them for approved requests, target systems redeem
//! them, the gateway counts the uses.
//!
//! `POST /v1/grants/redeem`, authenticated as a registered target system (`systems add`), with
//! `{ "grant": JWT }`. The grant must be signed by this gateway, addressed to that system and
//! valid in its environment; each redemption counts one use atomically, and an expired,
//! exhausted or revoked grant is refused. The answer names exactly what was approved (request,
//! digest and, for a step-up, the signed action chain), so the system does that and nothing else.

use countersign_protocol::{self as protocol, GrantClaims, Validation, TYP_GRANT};
use serde_json::{json, Value};

use crate::app::{now, token_hash, App, MAX_GRANT_TTL_S};
use crate::error::ApiError;
use crate::store;

/// Prefix of target-system tokens.
pub const SYSTEM_TOKEN_PREFIX: &str = "cst_";

/// A fresh target-system bearer token (`cst_` + 256 random bits).
pub fn new_system_token() -> String {
    format!("{SYSTEM_TOKEN_PREFIX}{}{}", protocol::new_id(), protocol::new_id())
}

/// A registered target system.
#[derive(Debug, Clone)]
pub struct TargetSystem {
    /// Its name, the `aud` of the grants it may redeem.
    pub system: String,
    /// The environment it runs in.
    pub environment: String,
}

impl App {
    /// Sign a grant for an approved request and the row that counts its uses (the caller stores
    /// the row in the transaction that approves the request).
    #[allow(clippy::too_many_arguments)] // the grant's whole content; two call sites
    pub(crate) fn sign_grant(
        &self,
        row_workload: &str,
        system: &str,
        environment: &str,
        id: &str,
        digest: &str,
        ttl_s: u64,
        max_uses: u32,
    ) -> Result<(String, store::GrantRow), ApiError> {
        let iat = now();
        let claims = GrantClaims {
            iss: self.ep.clone(),
            sub: row_workload.into(),
            aud: system.into(),
            environment: environment.into(),
            iat,
            exp: iat + ttl_s.min(MAX_GRANT_TTL_S) as i64,
            jti: protocol::new_id(),
            request: id.into(),
            digest: digest.into(),
            max_uses,
        };
        let jwt = protocol::sign(&claims, TYP_GRANT, &self.key).map_err(ApiError::internal)?;
        let row = store::GrantRow {
            jti: claims.jti,
            request_id: id.into(),
            workload: row_workload.into(),
            system: system.into(),
            environment: environment.into(),
            digest: digest.into(),
            max_uses: i64::from(max_uses),
            uses: 0,
            exp: claims.exp,
            revoked_at: None,
        };
        Ok((jwt, row))
    }

    /// Authenticate a target system's bearer token.
    pub async fn target_system(&self, token: &str) -> Result<TargetSystem, ApiError> {
        let (system, environment) = store::system_of(self.db(), &token_hash(token))
            .await?
            .ok_or_else(|| ApiError::unauthorized("unknown target-system token"))?;
        Ok(TargetSystem { system, environment })
    }

    /// Redeem one use of a grant for `system`.
    pub async fn redeem(&self, system: &TargetSystem, grant: &str) -> Result<Value, ApiError> {
        let t = now();
        let verified = protocol::verify::<GrantClaims>(
            grant.trim(),
            TYP_GRANT,
            &self.key.verifying_key(),
            &Validation::at(t).audience(&system.system),
        )
        .map_err(|e| match e {
            protocol::ProtocolError::WrongAudience { .. } => {
                ApiError::forbidden(format!("the grant is not for {}: {e}", system.system))
            }
            e => ApiError::from_protocol(e),
        })?;
        let claims = verified.claims;
        if claims.iss != self.ep {
            return Err(ApiError::unauthorized("the grant was not issued by this enforcement point"));
        }
        if crate::facts::normal_name(&claims.environment) != crate::facts::normal_name(&system.environment) {
            return Err(ApiError::forbidden(format!(
                "the grant is for environment {:?}, and {} runs in {:?}",
                claims.environment, system.system, system.environment
            )));
        }
        let row = store::grant(self.db(), &claims.jti)
            .await?
            .ok_or_else(|| ApiError::unauthorized("this grant was never issued here"))?;
        let Some(uses) = store::use_grant(self.db(), &row.jti, t).await? else {
            let row = store::grant(self.db(), &row.jti).await?.unwrap_or(row);
            return Err(if row.revoked_at.is_some() {
                ApiError::forbidden("the grant was revoked")
            } else if row.exp < t {
                ApiError::expired("the grant has expired")
            } else {
                ApiError::conflict(format!("the grant is used up ({} of {} uses)", row.uses, row.max_uses))
            });
        };
        // What was approved, from this gateway's own store: the chain of the request it signed, or
        // the chain its policy allowed without a human.
        let actions = store::approved_actions(self.db(), &row.request_id).await?.unwrap_or(Value::Null);
        tracing::info!(grant = %row.jti, request = %row.request_id, system = %system.system, uses, "grant redeemed");
        Ok(json!({
            "request": row.request_id, "digest": row.digest, "workload": row.workload,
            "system": row.system, "environment": row.environment,
            "uses": uses, "max_uses": row.max_uses, "expires_at": row.exp, "actions": actions,
        }))
    }
}
