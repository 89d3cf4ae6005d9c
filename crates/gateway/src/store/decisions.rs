//! Decisions received for a request, as approvers may see them.

use sqlx::SqlitePool;

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
