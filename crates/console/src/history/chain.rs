//! The hash chain: the stored row, appending one, and verifying them all.
//!
//! Each row's `hash` is hex(SHA-256(prev_hash || RFC 8785 JSON of {seq, at, kind, ep, request_id,
//! detail})), with `detail` hashed as the exact stored text and the first `prev_hash` being 64
//! zeros. Editing, deleting or reordering any row breaks the chain at that row; triggers also
//! refuse UPDATE and DELETE, so only someone bypassing the schema can try.

use serde::Serialize;
use serde_json::json;
use sha2::{Digest as _, Sha256};
use sqlx::{SqliteConnection, SqlitePool};

use super::kind::HistoryDetail;
use crate::profile::hex;
use crate::{ConsoleError, Result};

/// `prev_hash` of the first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One history row as stored: `kind` and `detail` are the exact text the chain hashes (read them
/// typed with [`Row::typed_detail`]).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Row {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// When (seconds since epoch).
    pub at: i64,
    /// What happened: a [`super::HistoryKind`]'s name.
    pub kind: String,
    /// The enforcement point concerned.
    pub ep: Option<String>,
    /// The request concerned.
    pub request_id: Option<String>,
    /// Details as JSON text (including original signed tokens).
    pub detail: String,
    /// Hash of the previous row.
    pub prev_hash: String,
    /// This row's hash.
    pub hash: String,
}

impl Row {
    /// The detail, typed by the row's kind.
    pub fn typed_detail(&self) -> HistoryDetail {
        HistoryDetail::parse(&self.kind, &self.detail)
    }
}

/// The hash of a row given its predecessor's hash.
pub fn row_hash(
    prev_hash: &str,
    seq: i64,
    at: i64,
    kind: &str,
    ep: Option<&str>,
    request_id: Option<&str>,
    detail: &str,
) -> Result<String> {
    let row =
        json!({"seq": seq, "at": at, "kind": kind, "ep": ep, "request_id": request_id, "detail": detail});
    let canonical = countersign_protocol::canonicalize(&row)?;
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(canonical.as_bytes());
    Ok(hex(&h.finalize()))
}

/// Append a row recording `detail` (its kind is the detail's) inside the caller's transaction (so
/// the event and what it records commit together).
pub async fn append(
    conn: &mut SqliteConnection,
    at: i64,
    ep: Option<&str>,
    request_id: Option<&str>,
    detail: &HistoryDetail,
) -> Result<i64> {
    let kind = detail
        .kind()
        .ok_or_else(|| ConsoleError::Invalid("an unreadable history row is never written".into()))?
        .as_str();
    let last: Option<(i64, String)> =
        sqlx::query_as("SELECT seq, hash FROM history ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *conn)
            .await?;
    let (seq, prev) = match last {
        Some((s, h)) => (s + 1, h),
        None => (1, GENESIS.to_string()),
    };
    let detail = detail.to_text()?;
    let hash = row_hash(&prev, seq, at, kind, ep, request_id, &detail)?;
    sqlx::query(
        "INSERT INTO history (seq, at, kind, ep, request_id, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(seq)
    .bind(at)
    .bind(kind)
    .bind(ep)
    .bind(request_id)
    .bind(&detail)
    .bind(&prev)
    .bind(&hash)
    .execute(&mut *conn)
    .await?;
    Ok(seq)
}

/// Check the whole chain; the number of rows when intact, or [`ConsoleError::Tampered`] naming the
/// first bad row.
pub async fn verify(db: &SqlitePool) -> Result<i64> {
    use futures::TryStreamExt as _;
    let mut rows = sqlx::query_as::<_, Row>("SELECT * FROM history ORDER BY seq").fetch(db);
    let (mut expected_seq, mut prev) = (1i64, GENESIS.to_string());
    while let Some(r) = rows.try_next().await? {
        if r.seq != expected_seq {
            return Err(ConsoleError::Tampered {
                seq: expected_seq,
                message: format!("row {expected_seq} is missing (next row is {})", r.seq),
            });
        }
        if r.prev_hash != prev {
            return Err(ConsoleError::Tampered {
                seq: r.seq,
                message: "prev_hash does not match the previous row (deleted or reordered)".into(),
            });
        }
        let hash = row_hash(
            &r.prev_hash,
            r.seq,
            r.at,
            &r.kind,
            r.ep.as_deref(),
            r.request_id.as_deref(),
            &r.detail,
        )?;
        if hash != r.hash {
            return Err(ConsoleError::Tampered {
                seq: r.seq,
                message: "contents do not match the row's hash (edited)".into(),
            });
        }
        prev = r.hash;
        expected_seq += 1;
    }
    Ok(expected_seq - 1)
}
