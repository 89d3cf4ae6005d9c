//! Approver and agent authentication, with the approver caches: the enrolled approvers (reloaded
//! at most [`APPROVER_CACHE`] after a change) and the auth tokens already verified.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use countersign_protocol::{self as protocol, Jwk, Validation, TYP_AUTH};
use sha2::{Digest as _, Sha256};
use sqlx::SqlitePool;

use super::{now, token_hash, App};
use crate::error::ApiError;
use crate::store::{self, Approver};

/// How long the in-memory copy of the approvers table is trusted.
pub const APPROVER_CACHE: Duration = Duration::from_millis(500);
/// Most verified auth tokens remembered.
const MAX_VERIFIED_AUTH: usize = 10_000;

/// The approvers by kid.
type ApproverTable = Arc<HashMap<String, Approver>>;

/// What approver authentication remembers between requests.
#[derive(Debug, Default)]
pub(crate) struct Approvers {
    /// Verified auth tokens (by SHA-256) → (kid, exp): a console reuses its token for minutes.
    verified_auth: Mutex<HashMap<[u8; 32], (String, i64)>>,
    /// Enrolled approvers, reloaded at most [`APPROVER_CACHE`] after a change on disk may have
    /// happened (the CLI enrols from another process): removal takes effect within that time.
    table: Mutex<Option<(Instant, ApproverTable)>>,
}

impl Approvers {
    /// Forget every cached approver and verified auth token: after a key is retired it must not
    /// authenticate again, not even from a cache.
    pub(crate) fn forget(&self) {
        *self.table.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.verified_auth.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// An enrolled approver by kid, from a copy of the table at most [`APPROVER_CACHE`] old;
    /// a kid missing from the copy is looked up in the store.
    async fn enrolled(&self, db: &SqlitePool, kid: &str) -> Result<Option<Approver>, ApiError> {
        let cached = {
            let guard = self.table.lock().unwrap_or_else(|p| p.into_inner());
            guard.as_ref().filter(|(at, _)| at.elapsed() < APPROVER_CACHE).map(|(_, m)| m.clone())
        };
        let table = match cached {
            Some(t) => t,
            None => {
                let all = store::approvers(db, false).await?;
                let table: ApproverTable = Arc::new(all.into_iter().map(|a| (a.kid.clone(), a)).collect());
                *self.table.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), table.clone()));
                table
            }
        };
        match table.get(kid) {
            Some(a) => Ok(Some(a.clone())),
            // Enrolled since the copy was taken? Ask the store (one query, as without a cache).
            None => Ok(store::approver(db, kid).await?),
        }
    }

    /// Authenticate an approver's auth JWT addressed to `ep`: the approver and the token's `exp`.
    async fn session(&self, db: &SqlitePool, ep: &str, token: &str) -> Result<(Approver, i64), ApiError> {
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let t = now();
        let known = {
            let cache = self.verified_auth.lock().unwrap_or_else(|p| p.into_inner());
            cache.get(&hash).filter(|(_, exp)| *exp >= t).cloned()
        };
        if let Some((kid, exp)) = known {
            // Still enrolled? (An approver removed since is refused from the next reload on.)
            let approver = self
                .enrolled(db, &kid)
                .await?
                .ok_or_else(|| ApiError::unauthorized(format!("approver key {kid} is not enrolled")))?;
            return Ok((approver, exp));
        }
        let header =
            protocol::jws::decode_header(token).map_err(|e| ApiError::unauthorized(e.to_string()))?;
        let kid = header.kid.ok_or_else(|| ApiError::unauthorized("auth token has no kid"))?;
        let approver = self
            .enrolled(db, &kid)
            .await?
            .ok_or_else(|| ApiError::unauthorized(format!("approver key {kid} is not enrolled")))?;
        let key = approver_key(&approver)?;
        let v = protocol::verify::<protocol::AuthClaims>(
            token,
            TYP_AUTH,
            &key,
            &Validation::at(t).audience(ep).max_lifetime(protocol::AUTH_MAX_LIFETIME_S),
        )
        .map_err(|e| ApiError::unauthorized(format!("auth token rejected: {e}")))?;
        if v.claims.iss != kid {
            return Err(ApiError::unauthorized("auth token iss is not its kid"));
        }
        let mut cache = self.verified_auth.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_VERIFIED_AUTH {
            cache.retain(|_, (_, exp)| *exp >= t);
            if cache.len() >= MAX_VERIFIED_AUTH {
                cache.clear();
            }
        }
        // Remembered until its exp (the leeway is not extended to cached tokens).
        cache.insert(hash, (kid, v.claims.exp));
        Ok((approver, v.claims.exp))
    }
}

impl App {
    /// Authenticate an agent bearer token; its workload.
    pub async fn agent(&self, token: &str) -> Result<String, ApiError> {
        store::agent_workload(self.db(), &token_hash(token))
            .await?
            .ok_or_else(|| ApiError::unauthorized("unknown agent token"))
    }

    /// An enrolled approver by kid, from a copy of the table at most [`APPROVER_CACHE`] old;
    /// a kid missing from the copy is looked up in the store.
    pub async fn enrolled(&self, kid: &str) -> Result<Option<Approver>, ApiError> {
        self.approvers.enrolled(self.db(), kid).await
    }

    /// Authenticate an approver's auth JWT.
    pub async fn approver(&self, token: &str) -> Result<Approver, ApiError> {
        Ok(self.approver_session(token).await?.0)
    }

    /// Authenticate an approver's auth JWT: the approver and the token's `exp` (a session such as
    /// an event stream lives no longer than its token).
    pub async fn approver_session(&self, token: &str) -> Result<(Approver, i64), ApiError> {
        self.approvers.session(self.db(), &self.ep, token).await
    }

    /// Forget every cached approver and verified auth token (see [`Approvers::forget`]).
    pub(crate) fn forget_approvers(&self) {
        self.approvers.forget();
    }
}

/// The verifying key of an enrolled approver.
pub fn approver_key(a: &Approver) -> Result<countersign_protocol::VerifyingKey, ApiError> {
    let jwk: Jwk = serde_json::from_str(&a.jwk).map_err(ApiError::internal)?;
    jwk.to_key().map_err(ApiError::internal)
}
