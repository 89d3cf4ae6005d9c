//! The gateway's SQLite store: WAL, synchronous FULL, foreign keys, forward-only migrations.

use std::path::Path;
use std::str::FromStr as _;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "gateway.db";

/// Open (creating and migrating) the store in `dir`.
///
/// The directory is made 0700 and the database 0600 before SQLite opens it (SQLite gives its WAL
/// and shared-memory files the database's mode); files left by older versions are tightened too.
/// Binding codes and grants live here: no other local user may read them.
pub async fn open(dir: &Path) -> anyhow::Result<SqlitePool> {
    private_dir(dir)?;
    let path = dir.join(DB_FILE);
    private_file(&path)?;
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5));
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .with_context(|| format!("opening {}", path.display()))?;
    for suffix in ["-wal", "-shm"] {
        let side = dir.join(format!("{DB_FILE}{suffix}"));
        if side.exists() {
            set_mode(&side, 0o600)?;
        }
    }
    sqlx::migrate!("./migrations").run(&pool).await.context("migrating the gateway database")?;
    normalize_principals(&pool).await.context("normalizing approver principals")?;
    Ok(pool)
}

/// A write transaction: `BEGIN IMMEDIATE` takes the write lock up front, waiting out the busy
/// timeout. A deferred transaction that reads and then writes fails at once with "database is
/// locked" when another connection (another request, or the admin CLI) wrote in between.
pub async fn write_tx(db: &SqlitePool) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
    db.begin_with("BEGIN IMMEDIATE").await
}

/// Create `dir` (and parents) and make it 0700.
pub fn private_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating data directory {}", dir.display()))?;
    set_mode(dir, 0o700)
}

/// Create `path` empty with mode 0600 when it does not exist; make an existing one 0600.
pub fn private_file(path: &Path) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).with_context(|| format!("creating {}", path.display()))?;
    set_mode(path, 0o600)
}

fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("setting the mode of {}", path.display()))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

/// Fill in the normalized principal of approvers enrolled before principals were normalized (or
/// normalized in an older form), newest first; an older active key of a principal that already has one is retired
/// (`duplicate`), so that from now on every principal has one active key. Decisions made before
/// get the principal of the key that signed them.
async fn normalize_principals(db: &SqlitePool) -> anyhow::Result<()> {
    let mut tx = write_tx(db).await?;
    // A principal stored in an older normal form is normalized again (NULL first, so that the
    // one-active-key index never sees two rows mid-way).
    let stored: Vec<(String, String, String)> =
        sqlx::query_as("SELECT kid, principal, principal_key FROM approvers WHERE principal_key IS NOT NULL")
            .fetch_all(&mut *tx)
            .await?;
    for (kid, principal, key) in stored {
        if countersign_protocol::principal::normalize(&principal) != key {
            sqlx::query("UPDATE approvers SET principal_key = NULL WHERE kid = ?")
                .bind(&kid)
                .execute(&mut *tx)
                .await?;
        }
    }
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT kid, principal FROM approvers WHERE principal_key IS NULL ORDER BY created_at DESC, kid",
    )
    .fetch_all(&mut *tx)
    .await?;
    for (kid, principal) in rows {
        let key = countersign_protocol::principal::normalize(&principal);
        let taken: Option<String> = sqlx::query_scalar(
            "SELECT kid FROM approvers WHERE principal_key = ? AND retired_at IS NULL AND kid != ?",
        )
        .bind(&key)
        .bind(&kid)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(newer) = &taken {
            tracing::warn!(kid, newer, principal = key, "retiring an older key of a principal with two");
            sqlx::query(
                "UPDATE approvers SET principal_key = ?, retired_at = ?, retired_why = 'duplicate', replaced_by = ?
                 WHERE kid = ?",
            )
            .bind(&key)
            .bind(crate::app::now())
            .bind(newer)
            .bind(&kid)
            .execute(&mut *tx)
            .await?;
        } else {
            sqlx::query("UPDATE approvers SET principal_key = ? WHERE kid = ?")
                .bind(&key)
                .bind(&kid)
                .execute(&mut *tx)
                .await?;
        }
    }
    sqlx::query(
        "UPDATE decisions SET principal = (SELECT principal_key FROM approvers WHERE kid = decisions.approver)
         WHERE principal IS NOT (SELECT principal_key FROM approvers WHERE kid = decisions.approver)",
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// An enrolled approver key.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct Approver {
    /// Key id (thumbprint).
    pub kid: String,
    /// Display name.
    pub name: String,
    /// The principal as enrolled (an e-mail address).
    pub principal: String,
    /// The normalized principal: what quorum counts and self-approval compares.
    pub principal_key: String,
    /// The public JWK as JSON.
    pub jwk: String,
    /// Enrolment time.
    pub created_at: i64,
    /// When the key stopped deciding (rotated, replaced or removed); `None` while active.
    pub retired_at: Option<i64>,
    /// Why it stopped.
    pub retired_why: Option<String>,
    /// The key that took its place.
    pub replaced_by: Option<String>,
}

impl Approver {
    /// A new, active approver key for `principal` (checked and normalized with
    /// [`countersign_protocol::principal::validate`]).
    pub fn enrol(
        kid: String,
        name: String,
        principal: &str,
        jwk: String,
        created_at: i64,
    ) -> Result<Self, String> {
        let principal_key = countersign_protocol::principal::validate(principal)?;
        Ok(Approver {
            kid,
            name,
            principal: principal.trim().to_owned(),
            principal_key,
            jwk,
            created_at,
            retired_at: None,
            retired_why: None,
            replaced_by: None,
        })
    }
}

const APPROVER_COLUMNS: &str =
    "kid, name, principal, COALESCE(principal_key, '') AS principal_key, jwk, created_at, retired_at, retired_why, replaced_by";

/// A stored step-up (or a request the policy answered at once).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StepUpRow {
    /// Request id.
    pub id: String,
    /// The authenticated workload that submitted it.
    pub workload: String,
    /// Lifecycle state.
    pub state: String,
    /// The signed request (None when no human was needed).
    pub jwt: Option<String>,
    /// Its digest.
    pub digest: Option<String>,
    /// Policy tier.
    pub tier: Option<String>,
    /// Quorum.
    pub approvals_required: i64,
    /// Policy rule id.
    pub policy_id: String,
    /// Policy reason.
    pub reason: String,
    /// Number-matching code, critical tier only.
    pub binding_code: Option<String>,
    /// Wrong codes so far.
    pub binding_failures: i64,
    /// JSON array of on-behalf-of subs.
    pub on_behalf_of: String,
    /// Target system (the grant's audience).
    pub target_system: String,
    /// Target environment (the grant's environment).
    pub target_environment: String,
    /// Created.
    pub iat: i64,
    /// Expires.
    pub exp: i64,
    /// The grant, once approved.
    pub grant_jwt: Option<String>,
    /// The first response to the agent.
    pub response: String,
}

/// An active approver key by key id.
pub async fn approver(db: &SqlitePool, kid: &str) -> sqlx::Result<Option<Approver>> {
    sqlx::query_as(&format!("SELECT {APPROVER_COLUMNS} FROM approvers WHERE kid = ? AND retired_at IS NULL"))
        .bind(kid)
        .fetch_optional(db)
        .await
}

/// Active approver keys, or every key ever enrolled with `all`.
pub async fn approvers(db: &SqlitePool, all: bool) -> sqlx::Result<Vec<Approver>> {
    let filter = if all { "" } else { "WHERE retired_at IS NULL" };
    sqlx::query_as(&format!("SELECT {APPROVER_COLUMNS} FROM approvers {filter} ORDER BY created_at, kid"))
        .fetch_all(db)
        .await
}

/// Why an enrolment was refused.
#[derive(Debug, thiserror::Error)]
pub enum EnrolError {
    /// The principal already has an active key and replacing it was not asked for.
    #[error(
        "{principal} already has an active key {kid}; a principal has one key (use --replace to retire it)"
    )]
    PrincipalHasKey {
        /// The normalized principal.
        principal: String,
        /// Its active key.
        kid: String,
    },
    /// The key is enrolled for another principal.
    #[error("key {kid} is already enrolled for {principal}")]
    KeyTaken {
        /// The key.
        kid: String,
        /// Its principal.
        principal: String,
    },
    /// The principal looks like another enrolled principal (same UTS #39 skeleton): two
    /// look-alike principals could be one person meeting a two-person rule.
    #[error("{principal} looks like the enrolled principal {other}; look-alike principals are refused")]
    LookAlike {
        /// The normalized principal.
        principal: String,
        /// The enrolled principal it looks like.
        other: String,
    },
    /// The key was rotated away, replaced or removed: it never decides again.
    #[error("key {0} was retired and cannot be enrolled again")]
    Retired(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] sqlx::Error),
}

/// Enrol an approver key for a principal (`principal_key` set by the caller). With `replace`, the
/// principal's active key, if any, is retired (`replaced`) in the same transaction. Enrolling the
/// same key for the same principal again updates the name.
pub async fn add_approver(
    db: &SqlitePool,
    a: &Approver,
    replace: bool,
) -> Result<Option<String>, EnrolError> {
    let mut tx = write_tx(db).await?;
    let existing: Option<Approver> =
        sqlx::query_as(&format!("SELECT {APPROVER_COLUMNS} FROM approvers WHERE kid = ?"))
            .bind(&a.kid)
            .fetch_optional(&mut *tx)
            .await?;
    if let Some(e) = existing {
        if e.retired_at.is_some() {
            return Err(EnrolError::Retired(e.kid));
        }
        if e.principal_key != a.principal_key {
            return Err(EnrolError::KeyTaken { kid: e.kid, principal: e.principal_key });
        }
        sqlx::query("UPDATE approvers SET name = ? WHERE kid = ?")
            .bind(&a.name)
            .bind(&a.kid)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        return Ok(None);
    }
    let enrolled: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT principal_key FROM approvers WHERE principal_key IS NOT NULL")
            .fetch_all(&mut *tx)
            .await?;
    if let Some(other) = enrolled.into_iter().find(|p| {
        *p != a.principal_key && countersign_protocol::principal::same_principal(p, &a.principal_key)
    }) {
        return Err(EnrolError::LookAlike { principal: a.principal_key.clone(), other });
    }
    let active: Option<String> =
        sqlx::query_scalar("SELECT kid FROM approvers WHERE principal_key = ? AND retired_at IS NULL")
            .bind(&a.principal_key)
            .fetch_optional(&mut *tx)
            .await?;
    if let Some(old) = &active {
        if !replace {
            return Err(EnrolError::PrincipalHasKey { principal: a.principal_key.clone(), kid: old.clone() });
        }
        retire(&mut tx, old, "replaced", Some(&a.kid), a.created_at).await?;
    }
    insert_approver(&mut tx, a).await?;
    tx.commit().await?;
    Ok(active)
}

async fn insert_approver(tx: &mut sqlx::SqliteConnection, a: &Approver) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO approvers (kid, name, principal, principal_key, jwk, created_at) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(&a.kid)
    .bind(&a.name)
    .bind(&a.principal)
    .bind(&a.principal_key)
    .bind(&a.jwk)
    .bind(a.created_at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn retire(
    tx: &mut sqlx::SqliteConnection,
    kid: &str,
    why: &str,
    replaced_by: Option<&str>,
    at: i64,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE approvers SET retired_at = ?, retired_why = ?, replaced_by = ? WHERE kid = ? AND retired_at IS NULL",
    )
    .bind(at)
    .bind(why)
    .bind(replaced_by)
    .bind(kid)
    .execute(&mut *tx)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Remove an approver key: it is retired (`removed`), so it can no longer authenticate or decide,
/// and what it signed stays verifiable. True when an active key was removed.
pub async fn remove_approver(db: &SqlitePool, kid: &str, at: i64) -> sqlx::Result<bool> {
    let mut tx = write_tx(db).await?;
    let done = retire(&mut tx, kid, "removed", None, at).await?;
    tx.commit().await?;
    Ok(done)
}

/// Apply an accepted rotation statement: retire `old` (`rotated`) and enrol `new` for the same
/// principal, in one transaction. False when `old` is no longer active or the statement's jti was
/// seen before (nothing changes then).
pub async fn rotate_approver(
    db: &SqlitePool,
    old: &Approver,
    new: &Approver,
    jti: &str,
    jwt: &str,
) -> sqlx::Result<bool> {
    let mut tx = write_tx(db).await?;
    let fresh = sqlx::query("INSERT INTO rotations (jti, old_kid, new_kid, jwt, at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING")
        .bind(jti)
        .bind(&old.kid)
        .bind(&new.kid)
        .bind(jwt)
        .bind(new.created_at)
        .execute(&mut *tx)
        .await?
        .rows_affected()
        > 0;
    if !fresh || !retire(&mut tx, &old.kid, "rotated", Some(&new.kid), new.created_at).await? {
        return Ok(false);
    }
    insert_approver(&mut tx, new).await?;
    tx.commit().await?;
    Ok(true)
}

/// Whether any key (active or retired) has this kid.
pub async fn key_known(db: &SqlitePool, kid: &str) -> sqlx::Result<bool> {
    Ok(sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM approvers WHERE kid = ?")
        .bind(kid)
        .fetch_one(db)
        .await?
        > 0)
}

/// Register an agent token (by hash) for a workload, with the workload's registered owners
/// (normalized principals) added to those it has.
pub async fn add_agent(
    db: &SqlitePool,
    token_hash: &str,
    workload: &str,
    owners: &[String],
    now: i64,
) -> sqlx::Result<()> {
    let mut tx = write_tx(db).await?;
    sqlx::query("INSERT INTO agents (token_hash, workload, created_at) VALUES (?, ?, ?)")
        .bind(token_hash)
        .bind(workload)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    for owner in owners {
        sqlx::query("INSERT INTO agent_owners (workload, owner) VALUES (?, ?) ON CONFLICT DO NOTHING")
            .bind(workload)
            .bind(owner)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The registered owners of a workload (normalized principals).
pub async fn agent_owners<'e, E: sqlx::SqliteExecutor<'e>>(
    db: E,
    workload: &str,
) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar("SELECT owner FROM agent_owners WHERE workload = ? ORDER BY owner")
        .bind(workload)
        .fetch_all(db)
        .await
}

/// Register a target system's redemption token (by hash).
pub async fn add_system(
    db: &SqlitePool,
    token_hash: &str,
    system: &str,
    environment: &str,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO target_systems (token_hash, system, environment, created_at) VALUES (?, ?, ?, ?)",
    )
    .bind(token_hash)
    .bind(system)
    .bind(environment)
    .bind(now)
    .execute(db)
    .await?;
    Ok(())
}

/// The (system, environment) of a target system's token hash.
pub async fn system_of(db: &SqlitePool, token_hash: &str) -> sqlx::Result<Option<(String, String)>> {
    sqlx::query_as("SELECT system, environment FROM target_systems WHERE token_hash = ?")
        .bind(token_hash)
        .fetch_optional(db)
        .await
}

/// A grant as the gateway counts its uses.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct GrantRow {
    /// Grant id (`jti`).
    pub jti: String,
    /// The approved request.
    pub request_id: String,
    /// The workload it was issued to.
    pub workload: String,
    /// The target system (its audience).
    pub system: String,
    /// The environment it is valid in.
    pub environment: String,
    /// The approved request's digest.
    pub digest: String,
    /// Most uses.
    pub max_uses: i64,
    /// Uses so far.
    pub uses: i64,
    /// Expiry.
    pub exp: i64,
    /// Revocation time.
    pub revoked_at: Option<i64>,
}

/// Record an issued grant.
pub async fn insert_grant(tx: &mut sqlx::SqliteConnection, g: &GrantRow) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO grants (jti, request_id, workload, system, environment, digest, max_uses, uses, exp)
         VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?)",
    )
    .bind(&g.jti)
    .bind(&g.request_id)
    .bind(&g.workload)
    .bind(&g.system)
    .bind(&g.environment)
    .bind(&g.digest)
    .bind(g.max_uses)
    .bind(g.exp)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The action chain a request's grant covers: that of the signed request, or the one the policy
/// allowed without a human.
pub async fn approved_actions(db: &SqlitePool, id: &str) -> sqlx::Result<Option<serde_json::Value>> {
    let row: Option<(Option<String>, Option<String>)> =
        sqlx::query_as("SELECT jwt, allowed_actions FROM step_ups WHERE id = ?")
            .bind(id)
            .fetch_optional(db)
            .await?;
    Ok(row.and_then(|(jwt, allowed)| match (jwt, allowed) {
        (Some(jwt), _) => {
            countersign_protocol::jws::decode_unverified(&jwt).ok().map(|c| c["actions"].clone())
        }
        (None, Some(a)) => serde_json::from_str(&a).ok(),
        (None, None) => None,
    }))
}

/// A grant by id.
pub async fn grant(db: &SqlitePool, jti: &str) -> sqlx::Result<Option<GrantRow>> {
    sqlx::query_as(
        "SELECT jti, request_id, workload, system, environment, digest, max_uses, uses, exp, revoked_at
         FROM grants WHERE jti = ?",
    )
    .bind(jti)
    .fetch_optional(db)
    .await
}

/// Count one use of a grant, atomically: the new use count, or `None` when it is expired,
/// exhausted or revoked (nothing changes then).
pub async fn use_grant(db: &SqlitePool, jti: &str, now: i64) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar(
        "UPDATE grants SET uses = uses + 1
         WHERE jti = ? AND uses < max_uses AND revoked_at IS NULL AND exp >= ? RETURNING uses",
    )
    .bind(jti)
    .bind(now)
    .fetch_optional(db)
    .await
}

/// Revoke a grant; true when an unrevoked grant was revoked.
pub async fn revoke_grant(db: &SqlitePool, jti: &str, now: i64) -> sqlx::Result<bool> {
    Ok(sqlx::query("UPDATE grants SET revoked_at = ? WHERE jti = ? AND revoked_at IS NULL")
        .bind(now)
        .bind(jti)
        .execute(db)
        .await?
        .rows_affected()
        > 0)
}

/// The workload of an agent token hash.
pub async fn agent_workload(db: &SqlitePool, token_hash: &str) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("SELECT workload FROM agents WHERE token_hash = ?")
        .bind(token_hash)
        .fetch_optional(db)
        .await
}

/// Workloads with their number of tokens.
pub async fn agents(db: &SqlitePool) -> sqlx::Result<Vec<(String, i64)>> {
    sqlx::query_as("SELECT workload, COUNT(*) FROM agents GROUP BY workload ORDER BY workload")
        .fetch_all(db)
        .await
}

/// Revoke every token of a workload and its grants still usable; the numbers revoked.
pub async fn remove_agent(db: &SqlitePool, workload: &str, now: i64) -> sqlx::Result<(u64, u64)> {
    let mut tx = write_tx(db).await?;
    let tokens = sqlx::query("DELETE FROM agents WHERE workload = ?")
        .bind(workload)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    // Its grants still usable go with it: a removed agent's approvals are not redeemable.
    let grants = sqlx::query(
        "UPDATE grants SET revoked_at = ? WHERE workload = ? AND revoked_at IS NULL AND exp >= ? AND uses < max_uses",
    )
    .bind(now)
    .bind(workload)
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok((tokens, grants))
}

const STEP_UP_COLUMNS: &str =
    "id, workload, state, jwt, digest, tier, approvals_required, policy_id, reason, \
     binding_code, binding_failures, on_behalf_of, target_system, target_environment, iat, exp, grant_jwt, response";

/// One step-up by id.
pub async fn step_up<'e, E: sqlx::SqliteExecutor<'e>>(db: E, id: &str) -> sqlx::Result<Option<StepUpRow>> {
    sqlx::query_as(&format!("SELECT {STEP_UP_COLUMNS} FROM step_ups WHERE id = ?"))
        .bind(id)
        .fetch_optional(db)
        .await
}

/// A step-up by the agent's idempotency key.
pub async fn step_up_by_idempotency_key(
    db: &SqlitePool,
    workload: &str,
    key: &str,
) -> sqlx::Result<Option<StepUpRow>> {
    sqlx::query_as(&format!(
        "SELECT {STEP_UP_COLUMNS} FROM step_ups WHERE workload = ? AND idempotency_key = ?"
    ))
    .bind(workload)
    .bind(key)
    .fetch_optional(db)
    .await
}

/// One page of [`step_ups_in_state`].
#[derive(Debug)]
pub struct StepUpPage {
    /// `(id, jwt)` in (iat, id) order.
    pub items: Vec<(String, String)>,
    /// The id to pass as `after` for the next page, when more remain.
    pub next: Option<String>,
}

/// The signed requests in `state`, oldest first (by iat, then id), after the request `after` (from
/// the start when `None`): at most `limit` of them, and no more once their tokens reach `budget`
/// bytes (but always at least one, so that a page moves on). Rows are read one at a time, so a page
/// costs its own size in memory, not the backlog's. `None` when `after` names no request.
pub async fn step_ups_in_state(
    db: &SqlitePool,
    state: &str,
    after: Option<&str>,
    limit: i64,
    budget: usize,
) -> sqlx::Result<Option<StepUpPage>> {
    use futures::TryStreamExt as _;
    let cursor: (i64, String) = match after {
        Some(id) => match sqlx::query_as("SELECT iat, id FROM step_ups WHERE id = ?")
            .bind(id)
            .fetch_optional(db)
            .await?
        {
            Some(c) => c,
            None => return Ok(None),
        },
        None => (i64::MIN, String::new()),
    };
    let mut rows = sqlx::query_as::<_, (String, String)>(
        "SELECT id, jwt FROM step_ups
          WHERE state = ? AND jwt IS NOT NULL AND (iat > ? OR (iat = ? AND id > ?))
          ORDER BY iat, id LIMIT ?",
    )
    .bind(state)
    .bind(cursor.0)
    .bind(cursor.0)
    .bind(&cursor.1)
    .bind(limit.saturating_add(1))
    .fetch(db);
    let (mut items, mut bytes, mut more) = (Vec::new(), 0usize, false);
    while let Some((id, jwt)) = rows.try_next().await? {
        if !items.is_empty() && (items.len() as i64 >= limit || bytes + jwt.len() > budget) {
            more = true;
            break;
        }
        bytes += jwt.len();
        items.push((id, jwt));
    }
    let next = if more { items.last().map(|(id, _)| id.clone()) } else { None };
    Ok(Some(StepUpPage { items, next }))
}

/// One decision as approvers may see it: who, what, when and why — never the token itself
/// (it carries the binding code).
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct DecisionSummary {
    /// The approver's display name.
    pub approver: String,
    /// Their principal.
    pub principal: String,
    /// The key that signed.
    pub kid: String,
    /// `approve` or `deny`.
    pub verdict: String,
    /// When it was received (Unix seconds).
    pub at: i64,
    /// The reason they gave.
    pub reason: String,
}

/// The decisions received for a request, in arrival order: (summary without reason, token).
pub async fn decisions(db: &SqlitePool, id: &str) -> sqlx::Result<Vec<(DecisionSummary, String)>> {
    let rows: Vec<(String, String, String, String, i64, String)> = sqlx::query_as(
        "SELECT COALESCE(a.name, ''), COALESCE(a.principal, d.principal, ''), d.approver, d.verdict, d.received_at, d.jwt
         FROM decisions d LEFT JOIN approvers a ON a.kid = d.approver
         WHERE d.request_id = ? ORDER BY d.received_at, d.rowid",
    )
    .bind(id)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(approver, principal, kid, verdict, at, jwt)| {
            (DecisionSummary { approver, principal, kid, verdict, at, reason: String::new() }, jwt)
        })
        .collect())
}

/// Events after `seq`, in order.
pub async fn events_after(db: &SqlitePool, seq: i64, limit: i64) -> sqlx::Result<Vec<(i64, String, String)>> {
    sqlx::query_as("SELECT seq, kind, data FROM events WHERE seq > ? ORDER BY seq LIMIT ?")
        .bind(seq)
        .bind(limit)
        .fetch_all(db)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store from before principals were normalized may hold two keys of one person: on open,
    /// the newest stays active, the older is retired, and old decisions get their principal.
    #[tokio::test]
    async fn older_stores_keep_one_active_key_per_principal() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path()).await.unwrap();
        for (kid, principal, at) in
            [("k1", "Alice@Acme.Example", 1), ("k2", " alice@acme.example", 2), ("k3", "bob@acme.example", 3)]
        {
            sqlx::query(
                "INSERT INTO approvers (kid, name, principal, jwk, created_at) VALUES (?, 'x', ?, '{}', ?)",
            )
            .bind(kid)
            .bind(principal)
            .bind(at)
            .execute(&db)
            .await
            .unwrap();
        }
        sqlx::query("INSERT INTO step_ups (id, workload, state, policy_id, reason, target_system, iat, exp, response) VALUES ('r', 'w', 'pending', 'p', 'r', 's', 0, 0, '{}')")
            .execute(&db).await.unwrap();
        sqlx::query("INSERT INTO decisions (jti, request_id, approver, verdict, jwt, received_at) VALUES ('j', 'r', 'k1', 'approve', 't', 0)")
            .execute(&db).await.unwrap();
        drop(db);
        let db = open(dir.path()).await.unwrap();
        let active: Vec<String> = approvers(&db, false).await.unwrap().into_iter().map(|a| a.kid).collect();
        assert_eq!(active, ["k2", "k3"]);
        let k1 = approvers(&db, true).await.unwrap().into_iter().find(|a| a.kid == "k1").unwrap();
        assert_eq!((k1.retired_why.as_deref(), k1.replaced_by.as_deref()), (Some("duplicate"), Some("k2")));
        let p: String = sqlx::query_scalar("SELECT principal FROM decisions WHERE jti = 'j'")
            .fetch_one(&db)
            .await
            .unwrap();
        assert_eq!(p, "alice@acme.example");
    }
}
