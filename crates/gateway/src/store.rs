//! The gateway's SQLite store: WAL, synchronous FULL, foreign keys, forward-only migrations.

use std::path::Path;
use std::str::FromStr as _;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "gateway.db";

/// Open (creating and migrating) the store in `dir`.
pub async fn open(dir: &Path) -> anyhow::Result<SqlitePool> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating data directory {}", dir.display()))?;
    let path = dir.join(DB_FILE);
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
    sqlx::migrate!("./migrations").run(&pool).await.context("migrating the gateway database")?;
    Ok(pool)
}

/// An enrolled approver.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct Approver {
    /// Key id (thumbprint).
    pub kid: String,
    /// Display name.
    pub name: String,
    /// E-mail, compared with `on_behalf_of` subs to refuse self-approval.
    pub principal: String,
    /// The public JWK as JSON.
    pub jwk: String,
    /// Enrolment time.
    pub created_at: i64,
}

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
    /// Created.
    pub iat: i64,
    /// Expires.
    pub exp: i64,
    /// The grant, once approved.
    pub grant_jwt: Option<String>,
    /// The first response to the agent.
    pub response: String,
}

/// Look up an approver by key id.
pub async fn approver(db: &SqlitePool, kid: &str) -> sqlx::Result<Option<Approver>> {
    sqlx::query_as("SELECT kid, name, principal, jwk, created_at FROM approvers WHERE kid = ?")
        .bind(kid)
        .fetch_optional(db)
        .await
}

/// All approvers.
pub async fn approvers(db: &SqlitePool) -> sqlx::Result<Vec<Approver>> {
    sqlx::query_as("SELECT kid, name, principal, jwk, created_at FROM approvers ORDER BY created_at").fetch_all(db).await
}

/// Enrol an approver (replacing the name and principal of an existing kid).
pub async fn add_approver(db: &SqlitePool, a: &Approver) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO approvers (kid, name, principal, jwk, created_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT(kid) DO UPDATE SET name = excluded.name, principal = excluded.principal",
    )
    .bind(&a.kid)
    .bind(&a.name)
    .bind(&a.principal)
    .bind(&a.jwk)
    .bind(a.created_at)
    .execute(db)
    .await?;
    Ok(())
}

/// Remove an approver; true when one was removed.
pub async fn remove_approver(db: &SqlitePool, kid: &str) -> sqlx::Result<bool> {
    Ok(sqlx::query("DELETE FROM approvers WHERE kid = ?").bind(kid).execute(db).await?.rows_affected() > 0)
}

/// Register an agent token (by hash) for a workload.
pub async fn add_agent(db: &SqlitePool, token_hash: &str, workload: &str, now: i64) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO agents (token_hash, workload, created_at) VALUES (?, ?, ?)")
        .bind(token_hash)
        .bind(workload)
        .bind(now)
        .execute(db)
        .await?;
    Ok(())
}

/// The workload of an agent token hash.
pub async fn agent_workload(db: &SqlitePool, token_hash: &str) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("SELECT workload FROM agents WHERE token_hash = ?").bind(token_hash).fetch_optional(db).await
}

/// Workloads with their number of tokens.
pub async fn agents(db: &SqlitePool) -> sqlx::Result<Vec<(String, i64)>> {
    sqlx::query_as("SELECT workload, COUNT(*) FROM agents GROUP BY workload ORDER BY workload").fetch_all(db).await
}

/// Revoke every token of a workload; the number revoked.
pub async fn remove_agent(db: &SqlitePool, workload: &str) -> sqlx::Result<u64> {
    Ok(sqlx::query("DELETE FROM agents WHERE workload = ?").bind(workload).execute(db).await?.rows_affected())
}

const STEP_UP_COLUMNS: &str = "id, workload, state, jwt, digest, tier, approvals_required, policy_id, reason, \
     binding_code, binding_failures, on_behalf_of, target_system, iat, exp, grant_jwt, response";

/// One step-up by id.
pub async fn step_up<'e, E: sqlx::SqliteExecutor<'e>>(db: E, id: &str) -> sqlx::Result<Option<StepUpRow>> {
    sqlx::query_as(&format!("SELECT {STEP_UP_COLUMNS} FROM step_ups WHERE id = ?")).bind(id).fetch_optional(db).await
}

/// A step-up by the agent's idempotency key.
pub async fn step_up_by_idempotency_key(db: &SqlitePool, workload: &str, key: &str) -> sqlx::Result<Option<StepUpRow>> {
    sqlx::query_as(&format!("SELECT {STEP_UP_COLUMNS} FROM step_ups WHERE workload = ? AND idempotency_key = ?"))
        .bind(workload)
        .bind(key)
        .fetch_optional(db)
        .await
}

/// Step-ups in a state that carry a signed request, oldest first.
pub async fn step_ups_in_state(db: &SqlitePool, state: &str, limit: i64) -> sqlx::Result<Vec<(String, String)>> {
    sqlx::query_as("SELECT id, jwt FROM step_ups WHERE state = ? AND jwt IS NOT NULL ORDER BY iat, id LIMIT ?")
        .bind(state)
        .bind(limit)
        .fetch_all(db)
        .await
}

/// The decisions received for a request, in arrival order.
pub async fn decisions(db: &SqlitePool, id: &str) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar("SELECT jwt FROM decisions WHERE request_id = ? ORDER BY received_at, rowid")
        .bind(id)
        .fetch_all(db)
        .await
}

/// Events after `seq`, in order.
pub async fn events_after(db: &SqlitePool, seq: i64, limit: i64) -> sqlx::Result<Vec<(i64, String, String)>> {
    sqlx::query_as("SELECT seq, kind, data FROM events WHERE seq > ? ORDER BY seq LIMIT ?")
        .bind(seq)
        .bind(limit)
        .fetch_all(db)
        .await
}
