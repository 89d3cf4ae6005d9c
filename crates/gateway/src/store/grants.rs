//! Issued grants and the uses counted against them.

use sqlx::SqlitePool;

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
