//! Stored step-ups: one by id or idempotency key, and pages of them by state.

use sqlx::SqlitePool;

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
