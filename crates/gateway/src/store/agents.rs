//! Agents (token hashes, workloads, owners) and target systems (redemption tokens).

use sqlx::SqlitePool;

use super::write_tx;

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
