//! The enforcement point's logic, free of HTTP: submit, read, decide, expire, and the event log.
//!
//! Every state change happens under one write lock, in one SQLite transaction that also appends
//! the event; the event is broadcast only after the commit, so the event log, the broadcast order
//! and the stored states never disagree, and a restart loses nothing that was acknowledged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use countersign_protocol::{
    self as protocol, jwk::kid_of, principal, Binding, DecisionClaims, GrantClaims, Jwk, Jwks, PolicyClaims,
    SigningKey, StepUpClaims, StepUpDraft, Tier, Validation, Verdict, TYP_AUTH, TYP_DECISION, TYP_GRANT,
    TYP_STEP_UP,
};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use sqlx::SqlitePool;
use tokio::sync::broadcast;

use crate::error::ApiError;
use crate::policy::{Outcome, Policy};
use crate::store::{self, Approver, StepUpRow};

/// Tunables of a running gateway.
#[derive(Debug, Clone)]
pub struct Config {
    /// Display name published at `/.well-known/countersign`.
    pub name: String,
    /// Lifetime of a step-up when the agent asks for none.
    pub default_ttl_s: i64,
    /// Longest lifetime an agent may ask for.
    pub max_ttl_s: i64,
    /// Requests per minute allowed per workload.
    pub rate_per_minute: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            name: "Countersign reference gateway".into(),
            default_ttl_s: 300,
            max_ttl_s: 3600,
            rate_per_minute: 60,
        }
    }
}

/// Shortest lifetime of a step-up.
pub const MIN_TTL_S: i64 = 5;
/// Longest lifetime of a grant.
pub const MAX_GRANT_TTL_S: u64 = 300;
/// Wrong binding codes after which the request is denied.
pub const MAX_BINDING_FAILURES: i64 = 3;
/// Most actions in one request.
pub const MAX_ACTIONS: usize = 64;

/// One entry of the event log.
#[derive(Debug, Clone)]
pub struct Event {
    /// Position in the log; the SSE `id`.
    pub seq: i64,
    /// `step-up` or `resolved`.
    pub kind: &'static str,
    /// JSON data.
    pub data: String,
    /// When it was handed to subscribers (for latency measurements).
    pub emitted: Instant,
}

/// Who reads a request's status: what they may see differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewer {
    /// The agent that submitted it: it alone receives the grant; it sees decisions as (verdict,
    /// time) and the reason of a denial, never who decided.
    Agent,
    /// An enrolled approver: decisions as (approver, verdict, time, reason) only.
    Approver,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The running enforcement point.
#[derive(Debug)]
pub struct App {
    /// Enforcement point id (`iss` of requests, `aud` of decisions).
    pub ep: String,
    /// Configuration.
    pub config: Config,
    pub(crate) key: SigningKey,
    jwks: Jwks,
    db: SqlitePool,
    policy: Policy,
    events: broadcast::Sender<Event>,
    write: tokio::sync::Mutex<()>,
    buckets: Mutex<HashMap<String, Bucket>>,
    /// Verified auth tokens (by SHA-256) → (kid, exp): a console reuses its token for minutes.
    verified_auth: Mutex<HashMap<[u8; 32], (String, i64)>>,
    /// Enrolled approvers, reloaded at most [`APPROVER_CACHE`] after a change on disk may have
    /// happened (the CLI enrols from another process): removal takes effect within that time.
    approvers: Mutex<Option<(Instant, ApproverTable)>>,
}

/// The approvers by kid.
type ApproverTable = Arc<HashMap<String, Approver>>;

/// How long the in-memory copy of the approvers table is trusted.
pub const APPROVER_CACHE: Duration = Duration::from_millis(500);
/// Most verified auth tokens remembered.
const MAX_VERIFIED_AUTH: usize = 10_000;

/// The decisions of request `?` that still count: not those of a key removed since (a distrusted
/// approver's earlier approval stops counting toward quorum); a rotated or replaced key's do, as
/// its principal's.
const COUNTED: &str = "JOIN approvers a ON a.kid = d.approver \
     WHERE d.request_id = ? AND (a.retired_why IS NULL OR a.retired_why != 'removed')";

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Hex SHA-256 of an agent token, as stored.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh agent bearer token (`csa_` + 256 random bits).
pub fn new_agent_token() -> String {
    format!("csa_{}{}", protocol::new_id(), protocol::new_id())
}

fn check_len(field: &str, s: &str, max: usize) -> Result<(), ApiError> {
    if s.chars().count() > max {
        return Err(ApiError::malformed(format!("{field} is longer than {max} characters")));
    }
    Ok(())
}

fn check_nonempty(field: &str, s: &str, max: usize) -> Result<(), ApiError> {
    if s.trim().is_empty() {
        return Err(ApiError::malformed(format!("{field} must not be empty")));
    }
    check_len(field, s, max)
}

fn check_strings(field: &str, v: &Value, max: usize) -> Result<(), ApiError> {
    match v {
        Value::String(s) => check_len(field, s, max),
        Value::Array(a) => a.iter().try_for_each(|x| check_strings(field, x, max)),
        Value::Object(o) => o.iter().try_for_each(|(k, x)| {
            check_len(field, k, 256)?;
            check_strings(field, x, max)
        }),
        _ => Ok(()),
    }
}

/// Validate a draft's shape and sizes (the body size is capped before this).
pub fn validate_draft(d: &StepUpDraft) -> Result<(), ApiError> {
    let id = &d.identity;
    if !id.workload.starts_with("spiffe://") {
        return Err(ApiError::malformed("identity.workload must be a spiffe:// id"));
    }
    check_nonempty("identity.workload", &id.workload, 512)?;
    check_nonempty("identity.display", &id.display, 200)?;
    if id.on_behalf_of.len() > 8 {
        return Err(ApiError::malformed("identity.on_behalf_of has more than 8 principals"));
    }
    for p in &id.on_behalf_of {
        check_nonempty("identity.on_behalf_of.sub", &p.sub, 320)?;
        check_len("identity.on_behalf_of.display", &p.display, 200)?;
    }
    if let Some(c) = &id.credential {
        check_len("identity.credential.kind", &c.kind, 64)?;
        check_len("identity.credential.expires_at", c.expires_at.as_deref().unwrap_or(""), 64)?;
    }
    check_nonempty("purpose.code", &d.purpose.code, 128)?;
    check_nonempty("purpose.statement", &d.purpose.statement, 2000)?;
    if d.data.categories.len() > 32 {
        return Err(ApiError::malformed("data.categories has more than 32 entries"));
    }
    for c in &d.data.categories {
        check_nonempty("data.categories", c, 64)?;
    }
    check_nonempty("target.system", &d.target.system, 128)?;
    check_nonempty("target.environment", &d.target.environment, 64)?;
    if d.actions.is_empty() || d.actions.len() > MAX_ACTIONS {
        return Err(ApiError::malformed(format!("actions must hold 1 to {MAX_ACTIONS} steps")));
    }
    for a in &d.actions {
        check_nonempty("actions.tool", &a.tool, 128)?;
        check_len("actions.operation", a.operation.as_deref().unwrap_or(""), 128)?;
        check_len("actions.target", a.target.as_deref().unwrap_or(""), 1024)?;
        check_strings("actions.args", &Value::Object(a.args.clone()), 16_384)?;
        for t in a.datatypes.iter().flatten() {
            check_len("actions.datatypes", t, 64)?;
        }
    }
    Ok(())
}

impl App {
    /// Assemble a gateway over an opened store.
    pub fn new(key: SigningKey, db: SqlitePool, policy: Policy, config: Config) -> Self {
        let vk = key.verifying_key();
        let kid = kid_of(&vk);
        let (events, _) = broadcast::channel(4096);
        App {
            ep: protocol::jwk::ep_id(&kid),
            config,
            jwks: Jwks { keys: vec![Jwk::from_key(&vk)] },
            key,
            db,
            policy,
            events,
            write: tokio::sync::Mutex::new(()),
            buckets: Mutex::new(HashMap::new()),
            verified_auth: Mutex::new(HashMap::new()),
            approvers: Mutex::new(None),
        }
    }

    /// Forget every cached approver and verified auth token: after a key is retired it must not
    /// authenticate again, not even from a cache.
    pub(crate) fn forget_approvers(&self) {
        *self.approvers.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.verified_auth.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// The write lock every state change holds.
    pub(crate) fn write_lock(&self) -> &tokio::sync::Mutex<()> {
        &self.write
    }

    /// The store.
    pub fn db(&self) -> &SqlitePool {
        &self.db
    }

    /// The published keys.
    pub fn jwks(&self) -> &Jwks {
        &self.jwks
    }

    /// `GET /.well-known/countersign`.
    pub fn well_known(&self) -> Value {
        json!({ "ep": self.ep, "name": self.config.name, "jwks": self.jwks, "protocol": 1 })
    }

    /// Subscribe to events appended from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    fn rate_limit(&self, workload: &str) -> Result<(), ApiError> {
        let rate = f64::from(self.config.rate_per_minute.max(1));
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let b = buckets.entry(workload.to_owned()).or_insert(Bucket { tokens: rate, at: now });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate / 60.0).min(rate);
        b.at = now;
        if b.tokens < 1.0 {
            return Err(ApiError::rate_limited(format!(
                "workload {workload} is over its limit of {} requests per minute",
                self.config.rate_per_minute
            )));
        }
        b.tokens -= 1.0;
        Ok(())
    }

    async fn append_event(
        tx: &mut sqlx::SqliteConnection,
        kind: &'static str,
        data: Value,
        now: i64,
    ) -> Result<Event, ApiError> {
        let data = data.to_string();
        let seq: i64 =
            sqlx::query_scalar("INSERT INTO events (kind, data, created_at) VALUES (?, ?, ?) RETURNING seq")
                .bind(kind)
                .bind(&data)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
        Ok(Event { seq, kind, data, emitted: Instant::now() })
    }

    fn publish(&self, events: Vec<Event>) {
        for mut e in events {
            e.emitted = Instant::now();
            // No subscriber is not an error: the event is in the log for Last-Event-ID replays.
            let _ = self.events.send(e);
        }
    }

    /// Sign a grant for an approved request and the row that counts its uses (the caller stores
    /// the row in the transaction that approves the request).
    #[allow(clippy::too_many_arguments)] // the grant's whole content; two call sites
    fn grant(
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
        self.rate_limit(workload)?;
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
                let (grant, grant_row) = self.grant(
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
            published.push(Self::append_event(&mut tx, "step-up", data, iat).await?);
        }
        tx.commit().await?;
        self.publish(published);
        tracing::info!(id = %row.id, workload, state = %row.state, policy = %row.policy_id, "step-up submitted");
        Ok((status, body))
    }

    fn first_response(row: &StepUpRow) -> (StatusCode, Value) {
        let body: Value = serde_json::from_str(&row.response).unwrap_or(Value::Null);
        let status = if row.jwt.is_some() { StatusCode::CREATED } else { StatusCode::OK };
        (status, body)
    }

    /// Authenticate an agent bearer token; its workload.
    pub async fn agent(&self, token: &str) -> Result<String, ApiError> {
        store::agent_workload(&self.db, &token_hash(token))
            .await?
            .ok_or_else(|| ApiError::unauthorized("unknown agent token"))
    }

    /// An enrolled approver by kid, from a copy of the table at most [`APPROVER_CACHE`] old;
    /// a kid missing from the copy is looked up in the store.
    pub async fn enrolled(&self, kid: &str) -> Result<Option<Approver>, ApiError> {
        let cached = {
            let guard = self.approvers.lock().unwrap_or_else(|p| p.into_inner());
            guard.as_ref().filter(|(at, _)| at.elapsed() < APPROVER_CACHE).map(|(_, m)| m.clone())
        };
        let table = match cached {
            Some(t) => t,
            None => {
                let all = store::approvers(&self.db, false).await?;
                let table: Arc<HashMap<String, Approver>> =
                    Arc::new(all.into_iter().map(|a| (a.kid.clone(), a)).collect());
                *self.approvers.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some((Instant::now(), table.clone()));
                table
            }
        };
        match table.get(kid) {
            Some(a) => Ok(Some(a.clone())),
            // Enrolled since the copy was taken? Ask the store (one query, as without a cache).
            None => Ok(store::approver(&self.db, kid).await?),
        }
    }

    /// Authenticate an approver's auth JWT.
    pub async fn approver(&self, token: &str) -> Result<Approver, ApiError> {
        Ok(self.approver_session(token).await?.0)
    }

    /// Authenticate an approver's auth JWT: the approver and the token's `exp` (a session such as
    /// an event stream lives no longer than its token).
    pub async fn approver_session(&self, token: &str) -> Result<(Approver, i64), ApiError> {
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let t = now();
        let known = {
            let cache = self.verified_auth.lock().unwrap_or_else(|p| p.into_inner());
            cache.get(&hash).filter(|(_, exp)| *exp >= t).cloned()
        };
        if let Some((kid, exp)) = known {
            // Still enrolled? (An approver removed since is refused from the next reload on.)
            let approver = self
                .enrolled(&kid)
                .await?
                .ok_or_else(|| ApiError::unauthorized(format!("approver key {kid} is not enrolled")))?;
            return Ok((approver, exp));
        }
        let header =
            protocol::jws::decode_header(token).map_err(|e| ApiError::unauthorized(e.to_string()))?;
        let kid = header.kid.ok_or_else(|| ApiError::unauthorized("auth token has no kid"))?;
        let approver = self
            .enrolled(&kid)
            .await?
            .ok_or_else(|| ApiError::unauthorized(format!("approver key {kid} is not enrolled")))?;
        let key = approver_key(&approver)?;
        let v = protocol::verify::<protocol::AuthClaims>(
            token,
            TYP_AUTH,
            &key,
            &Validation::at(t).audience(&self.ep).max_lifetime(protocol::AUTH_MAX_LIFETIME_S),
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

    /// Withdraw a pending request (by the agent that submitted it).
    pub async fn withdraw(&self, workload: &str, id: &str) -> Result<Value, ApiError> {
        let _w = self.write.lock().await;
        let mut tx = store::write_tx(&self.db).await?;
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
        self.publish(vec![event]);
        Ok(json!({"id": id, "state": "withdrawn"}))
    }

    async fn resolve(
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
        Self::append_event(tx, "resolved", json!({"id": id, "state": state}), t).await
    }

    /// Expire every pending request past its `exp`; the number expired.
    pub async fn expire_due(&self) -> Result<usize, ApiError> {
        let t = now();
        let due: Vec<String> =
            sqlx::query_scalar("SELECT id FROM step_ups WHERE state = 'pending' AND exp < ?")
                .bind(t)
                .fetch_all(&self.db)
                .await?;
        if due.is_empty() {
            return Ok(0);
        }
        let _w = self.write.lock().await;
        let mut tx = store::write_tx(&self.db).await?;
        let mut events = Vec::new();
        for id in &due {
            events.push(self.resolve(&mut tx, id, "expired", None, t).await?);
        }
        tx.commit().await?;
        let n = events.len();
        self.publish(events);
        Ok(n)
    }

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

        let _w = self.write.lock().await;
        let mut tx = store::write_tx(&self.db).await?;
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
        self.publish(events);
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
        let tier = row
            .tier
            .as_deref()
            .and_then(|t| serde_json::from_value::<Tier>(json!(t)).ok())
            .unwrap_or(Tier::Critical);
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
                let (grant, grant_row) = self.grant(
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

/// The verifying key of an enrolled approver.
pub fn approver_key(a: &Approver) -> Result<countersign_protocol::VerifyingKey, ApiError> {
    let jwk: Jwk = serde_json::from_str(&a.jwk).map_err(ApiError::internal)?;
    jwk.to_key().map_err(ApiError::internal)
}
