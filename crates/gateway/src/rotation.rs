//! Approver key rotation: a statement signed by the old key names the new one.
//!
//! `POST /v1/approvers/rotate` with a `countersign-rotation+jwt` body. Once accepted, the old key
//! is retired (`rotated`): it can no longer authenticate or decide, and the new key is the
//! principal's one active key, under the same name and principal. Decisions the old key signed
//! stay in the store with its public key, so they stay verifiable.

use countersign_protocol::{self as protocol, Jwk, RotationClaims, Validation, TYP_ROTATION};
use serde_json::{json, Value};

use crate::app::{approver_key, now, App};
use crate::error::ApiError;
use crate::store;

impl App {
    /// Accept a rotation statement; the new kid.
    pub async fn rotate(&self, statement: &str) -> Result<Value, ApiError> {
        let statement = statement.trim();
        let header = protocol::jws::decode_header(statement).map_err(ApiError::from_protocol)?;
        let kid = header.kid.ok_or_else(|| ApiError::unauthorized("rotation statement has no kid"))?;
        let old = self
            .enrolled(&kid)
            .await?
            .ok_or_else(|| ApiError::unauthorized(format!("key {kid} is not an active approver key")))?;
        let verified = protocol::verify::<RotationClaims>(
            statement,
            TYP_ROTATION,
            &approver_key(&old)?,
            &Validation::at(now()).audience(&self.ep).max_lifetime(protocol::AUTH_MAX_LIFETIME_S),
        )
        .map_err(ApiError::from_protocol)?;
        let claims = verified.claims;
        if claims.iss != kid {
            return Err(ApiError::unauthorized("rotation statement iss is not its kid"));
        }
        let new_key = claims
            .new_key
            .to_key()
            .map_err(|e| ApiError::malformed(format!("new_key is not an Ed25519 public key: {e}")))?;
        let jwk = Jwk::from_key(&new_key);
        let new_kid = jwk.thumbprint();
        if new_kid == kid {
            return Err(ApiError::malformed("new_key is the key being rotated"));
        }
        let _w = self.write_lock().lock().await;
        if store::key_known(self.db(), &new_kid).await? {
            return Err(ApiError::conflict(format!("key {new_kid} is already enrolled or was retired")));
        }
        let new = store::Approver {
            kid: new_kid.clone(),
            name: old.name.clone(),
            principal: old.principal.clone(),
            principal_key: old.principal_key.clone(),
            jwk: serde_json::to_string(&jwk).map_err(ApiError::internal)?,
            created_at: now(),
            retired_at: None,
            retired_why: None,
            replaced_by: None,
        };
        if !store::rotate_approver(self.db(), &old, &new, &claims.jti, statement).await? {
            return Err(ApiError::conflict(
                "this rotation statement was used before, or the key is already rotated",
            ));
        }
        self.forget_approvers();
        tracing::info!(old = %kid, new = %new_kid, principal = %old.principal_key, "approver key rotated");
        Ok(json!({ "kid": new_kid, "replaces": kid, "principal": old.principal_key }))
    }
}
