//! The event log: appended in the transaction of the change it reports, read back for replays.

use sqlx::SqlitePool;

/// Append an event; its sequence number.
pub async fn append_event(
    tx: &mut sqlx::SqliteConnection,
    kind: &str,
    data: &str,
    now: i64,
) -> sqlx::Result<i64> {
    sqlx::query_scalar("INSERT INTO events (kind, data, created_at) VALUES (?, ?, ?) RETURNING seq")
        .bind(kind)
        .bind(data)
        .bind(now)
        .fetch_one(&mut *tx)
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
