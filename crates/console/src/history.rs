//! The review history: append-only rows chained by hash.
//!
//! Each row's `hash` is hex(SHA-256(prev_hash || RFC 8785 JSON of {seq, at, kind, ep, request_id,
//! detail})), with `detail` hashed as the exact stored text and the first `prev_hash` being 64
//! zeros. Editing, deleting or reordering any row breaks the chain at that row; triggers also
//! refuse UPDATE and DELETE, so only someone bypassing the schema can try.

use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use sqlx::{SqliteConnection, SqlitePool};

use crate::profile::hex;
use crate::{Console, ConsoleError, Result};

/// Rows appended between two signed checkpoints (at most; a checkpoint is due after this many).
pub const CHECKPOINT_EVERY: i64 = 100;
/// A checkpoint is also due when rows were added and the last one is older than this (seconds), so
/// the unanchored tail of an active history stays short.
pub const CHECKPOINT_AGE_S: i64 = 60;

/// What a checkpoint signs: the profile and the chain head it covers.
fn checkpoint_message(profile: &str, upto: i64, head: &str) -> String {
    format!("countersign-history-checkpoint/v1\n{profile}\n{upto}\n{head}")
}

/// `prev_hash` of the first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One history row.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Row {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// When (seconds since epoch).
    pub at: i64,
    /// What happened: `request received`, `request rejected`, `decision signed`, `delivered`,
    /// `delivery refused`, `resolved`, `key created`, `key rotated`, `key rotation sent` (one per
    /// enforcement point, with its answer), `checkpoint`, `history re-anchored`.
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

/// Append a row inside the caller's transaction (so the event and what it records commit together).
pub async fn append(
    conn: &mut SqliteConnection,
    at: i64,
    kind: &str,
    ep: Option<&str>,
    request_id: Option<&str>,
    detail: &Value,
) -> Result<i64> {
    let last: Option<(i64, String)> =
        sqlx::query_as("SELECT seq, hash FROM history ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *conn)
            .await?;
    let (seq, prev) = match last {
        Some((s, h)) => (s + 1, h),
        None => (1, GENESIS.to_string()),
    };
    let detail = serde_json::to_string(detail).map_err(|e| ConsoleError::Invalid(e.to_string()))?;
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

/// Which history rows to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only rows at or after this time.
    pub since: Option<i64>,
    /// Only rows before this time.
    pub until: Option<i64>,
    /// Only rows of this enforcement point.
    pub ep: Option<String>,
    /// Only rows of this kind.
    pub kind: Option<String>,
    /// Full-text search (every word must occur).
    pub search: Option<String>,
    /// Only rows of requests by this workload, or on behalf of this principal.
    pub identity: Option<String>,
    /// Only rows of requests of this data class.
    pub class: Option<String>,
    /// Only rows of requests of this tier.
    pub tier: Option<String>,
    /// Only rows of requests this console decided this way (`approve` / `deny`).
    pub decision: Option<String>,
    /// Most rows returned (newest first); `None` = all.
    pub limit: Option<i64>,
    /// Rows skipped before the first one returned (newest first).
    pub offset: Option<i64>,
}

/// An FTS5 query matching rows that contain every word of `text`, each taken literally.
fn fts_query(text: &str) -> String {
    text.split_whitespace().map(|w| format!("\"{}\"", w.replace('"', "\"\""))).collect::<Vec<_>>().join(" ")
}

/// The query selecting `select` over the history rows `filter` matches (without order or limit);
/// whether full-text search drives it (then `f.rowid` orders it).
fn filtered<'a>(filter: &Filter, select: &str) -> (sqlx::QueryBuilder<'a, sqlx::Sqlite>, bool) {
    // With a search, FTS5 drives the query in rowid (= seq) order, so "newest N" stops early.
    let search = filter.search.as_deref().map(fts_query).filter(|t| !t.is_empty());
    let mut q = match &search {
        Some(text) => {
            let mut q = sqlx::QueryBuilder::new(format!(
                "SELECT {select} FROM history_fts f JOIN history h ON h.seq = f.rowid WHERE history_fts MATCH "
            ));
            q.push_bind(text.clone());
            q
        }
        None => sqlx::QueryBuilder::new(format!("SELECT {select} FROM history h WHERE 1 = 1")),
    };
    if let Some(s) = filter.since {
        q.push(" AND h.at >= ").push_bind(s);
    }
    if let Some(u) = filter.until {
        q.push(" AND h.at < ").push_bind(u);
    }
    if let Some(ep) = &filter.ep {
        q.push(" AND h.ep = ").push_bind(ep.clone());
    }
    if let Some(kind) = &filter.kind {
        q.push(" AND h.kind = ").push_bind(kind.clone());
    }
    // A request is (enforcement point, id): another enforcement point's request under the same id
    // never lends its attributes.
    let received = " AND (h.ep, h.request_id) IN (SELECT ep, request_id FROM history WHERE kind = 'request received' AND ";
    if let Some(who) = &filter.identity {
        q.push(received).push("(json_extract(detail, '$.workload') = ").push_bind(who.clone());
        q.push(" OR EXISTS (SELECT 1 FROM json_each(detail, '$.on_behalf_of') WHERE value = ")
            .push_bind(who.clone());
        q.push(")))");
    }
    if let Some(class) = &filter.class {
        q.push(received).push("json_extract(detail, '$.class') = ").push_bind(class.clone()).push(")");
    }
    if let Some(tier) = &filter.tier {
        q.push(received).push("json_extract(detail, '$.tier') = ").push_bind(tier.clone()).push(")");
    }
    if let Some(verdict) = &filter.decision {
        q.push(" AND (h.ep, h.request_id) IN (SELECT ep, request_id FROM history WHERE kind = 'decision signed' AND ");
        q.push("json_extract(detail, '$.verdict') = ").push_bind(verdict.clone()).push(")");
    }
    (q, search.is_some())
}

impl Console {
    /// History rows matching `filter`, newest first.
    pub async fn history(&self, filter: &Filter) -> Result<Vec<Row>> {
        let (mut q, search) = filtered(filter, "h.*");
        q.push(if search { " ORDER BY f.rowid DESC" } else { " ORDER BY h.seq DESC" });
        if filter.limit.is_some() || filter.offset.is_some() {
            q.push(" LIMIT ").push_bind(filter.limit.unwrap_or(-1));
            q.push(" OFFSET ").push_bind(filter.offset.unwrap_or(0).max(0));
        }
        Ok(q.build_query_as::<Row>().fetch_all(self.db()).await?)
    }

    /// How many history rows match `filter` (ignoring its limit and offset).
    pub async fn history_count(&self, filter: &Filter) -> Result<i64> {
        let (mut q, _) = filtered(filter, "COUNT(*)");
        Ok(q.build_query_scalar::<i64>().fetch_one(self.db()).await?)
    }

    /// Best effort [`Console::checkpoint`] for paths that must go on when it fails (a locked
    /// keyring, say): the failure is logged, the rows stay covered by the chain.
    pub async fn checkpoint_or_warn(&self) {
        if let Err(e) = self.checkpoint(false).await {
            tracing::warn!(error = %e, "history checkpoint not signed; will retry");
        }
    }

    /// Append a checkpoint signed with the keyring key over the current head of the chain, when
    /// `force`, when [`CHECKPOINT_EVERY`] rows were added since the last one, or when rows were added
    /// and the last one is older than [`CHECKPOINT_AGE_S`]. A chain rewritten by someone without the
    /// key no longer matches its checkpoints. The checkpoint row is then anchored in the keyring (see
    /// [`Console::verify_history`]). The row number when one was added.
    pub async fn checkpoint(&self, force: bool) -> Result<Option<i64>> {
        let _one = self.checkpointing.lock().await;
        let head: Option<(i64, i64)> =
            sqlx::query_as("SELECT seq, at FROM history ORDER BY seq DESC LIMIT 1")
                .fetch_optional(self.db())
                .await?;
        let Some((upto, _)) = head else { return Ok(None) };
        let (last, last_at): (i64, i64) = sqlx::query_as(
            "SELECT COALESCE((SELECT MAX(seq) FROM history WHERE kind = 'checkpoint'), 0),
                    COALESCE((SELECT at FROM history WHERE kind = 'checkpoint' ORDER BY seq DESC LIMIT 1),
                             (SELECT at FROM history ORDER BY seq LIMIT 1))",
        )
        .fetch_one(self.db())
        .await?;
        let stale = crate::now() - last_at >= CHECKPOINT_AGE_S;
        if upto == last || (!force && !stale && upto - last < CHECKPOINT_EVERY) {
            return Ok(None);
        }
        // Load the key first (creating it may append a row), then sign the head as it is now.
        let key = self.signing_key().await?;
        let kid = key.kid();
        let mut tx = self.write_tx().await?;
        let (upto, hash, kind): (i64, String, String) =
            sqlx::query_as("SELECT seq, hash, kind FROM history ORDER BY seq DESC LIMIT 1")
                .fetch_one(&mut *tx)
                .await?;
        if kind == "checkpoint" {
            // Another process signed the head meanwhile.
            return Ok(None);
        }
        let message = checkpoint_message(&self.profile().id, upto, &hash);
        let sig = key.with(|k| hex(&ed25519_dalek::Signer::sign(k, message.as_bytes()).to_bytes()));
        drop(key);
        let detail = json!({"upto": upto, "head": hash, "kid": kid, "sig": sig});
        let seq = append(&mut tx, crate::now(), "checkpoint", None, None, &detail).await?;
        let hash: String = sqlx::query_scalar("SELECT hash FROM history WHERE seq = ?")
            .bind(seq)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        // The anchor moves only over a history that still matches it: after a restore or a cut,
        // signing new rows must not paper over the gap (`history reanchor` is the deliberate way).
        match self.check_anchor(seq).await {
            Ok(()) => self.set_anchor(&Anchor { seq, hash }, false).await?,
            Err(ConsoleError::Tampered { message, .. }) => {
                tracing::warn!(%message, "history does not match the keyring's anchor; anchor left in place");
            }
            Err(e) => return Err(e),
        }
        Ok(Some(seq))
    }

    fn anchor_account(&self) -> String {
        format!("{}.history-head", self.profile().id)
    }

    /// Record the newest checkpoint row outside the database, in the OS keyring next to the key;
    /// only ever forward (another process may have anchored a later row meanwhile), unless
    /// `back` ([`Console::reanchor_history`], the approver's explicit choice).
    async fn set_anchor(&self, anchor: &Anchor, back: bool) -> Result<()> {
        if !back && self.anchor().await?.is_some_and(|a| a.seq >= anchor.seq) {
            return Ok(());
        }
        let (store, account) = (self.secrets.clone(), self.anchor_account());
        let text = crate::Sensitive::new(
            serde_json::to_string(anchor).map_err(|e| ConsoleError::Invalid(e.to_string()))?,
        );
        tokio::task::spawn_blocking(move || store.set(&account, &text))
            .await
            .map_err(|e| ConsoleError::Keyring(format!("keyring task failed: {e}")))?
    }

    async fn anchor(&self) -> Result<Option<Anchor>> {
        let (store, account) = (self.secrets.clone(), self.anchor_account());
        let text = tokio::task::spawn_blocking(move || store.get(&account))
            .await
            .map_err(|e| ConsoleError::Keyring(format!("keyring task failed: {e}")))??;
        text.map(|t| {
            serde_json::from_str(t.expose())
                .map_err(|_| ConsoleError::Keyring("the keyring's history anchor is not readable".into()))
        })
        .transpose()
    }

    /// Verify the history: the hash chain (see [`verify`]), then every signed checkpoint against
    /// the public key it names, and that the newest checkpoint is signed by the key now in the
    /// keyring (so a rewritten chain with re-made checkpoints is caught too). Rows after the
    /// newest checkpoint are covered by the chain only.
    pub async fn verify_history(&self) -> Result<i64> {
        let n = self.verify_signed().await?;
        self.check_anchor(n).await?;
        Ok(n)
    }

    /// The chain and its signed checkpoints (everything [`Console::verify_history`] checks but the
    /// keyring's anchor); the number of rows.
    async fn verify_signed(&self) -> Result<i64> {
        let n = verify(self.db()).await?;
        // The keys a checkpoint may be signed with come from the chain itself — the `key created`
        // and `key rotated` rows before it, each holding the public key whose thumbprint is its
        // kid — never from the `keys` table, which anyone editing the file could change.
        let rows = sqlx::query_as::<_, Row>(
            "SELECT * FROM history WHERE kind IN ('checkpoint', 'key created', 'key rotated') ORDER BY seq",
        )
        .fetch_all(self.db())
        .await?;
        let mut keys: std::collections::HashMap<String, countersign_protocol::VerifyingKey> =
            Default::default();
        let mut last: Option<(i64, String)> = None;
        for r in rows {
            let bad = |message: &str| ConsoleError::Tampered { seq: r.seq, message: message.to_string() };
            if r.kind != "checkpoint" {
                let d: Value = serde_json::from_str(&r.detail).map_err(|_| bad("key row is not JSON"))?;
                let jwk = serde_json::from_value::<countersign_protocol::Jwk>(d["jwk"].clone())
                    .map_err(|_| bad("key row holds no JWK"))?;
                let key = jwk.to_key().map_err(|_| bad("key row holds an invalid key"))?;
                let kid = jwk.thumbprint();
                if d["kid"].as_str() != Some(kid.as_str()) {
                    return Err(bad("key row's kid is not its key's thumbprint"));
                }
                keys.insert(kid, key);
                continue;
            }
            let d: Value = serde_json::from_str(&r.detail).map_err(|_| bad("checkpoint is not JSON"))?;
            let (upto, head, kid, sig) =
                (d["upto"].as_i64(), d["head"].as_str(), d["kid"].as_str(), d["sig"].as_str());
            let (Some(upto), Some(head), Some(kid), Some(sig)) = (upto, head, kid, sig) else {
                return Err(bad("checkpoint lacks upto, head, kid or sig"));
            };
            if upto != r.seq - 1 || head != r.prev_hash {
                return Err(bad("checkpoint does not cover the row before it"));
            }
            let key = keys
                .get(kid)
                .ok_or_else(|| bad("checkpoint key is not one the history recorded before it"))?;
            let sig: [u8; 64] = (0..64)
                .map(|i| sig.get(2 * i..2 * i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
                .collect::<Option<Vec<u8>>>()
                .and_then(|v| v.try_into().ok())
                .ok_or_else(|| bad("checkpoint signature is malformed"))?;
            let message = checkpoint_message(&self.profile().id, upto, head);
            key.verify_strict(message.as_bytes(), &ed25519_dalek::Signature::from_bytes(&sig)).map_err(
                |_| bad("checkpoint signature does not verify: the chain before it was rewritten"),
            )?;
            last = Some((r.seq, kid.to_string()));
        }
        match last {
            Some((seq, kid)) => {
                let current = self.signing_key().await?.kid();
                if kid != current {
                    return Err(ConsoleError::Tampered {
                        seq,
                        message: format!(
                            "the newest checkpoint is signed by {kid}, not by the keyring's key {current}"
                        ),
                    });
                }
            }
            None if n > 2 * CHECKPOINT_EVERY => {
                return Err(ConsoleError::Tampered {
                    seq: 1,
                    message: "no signed checkpoint covers the history".into(),
                });
            }
            None => {}
        }
        Ok(n)
    }

    /// Rows deleted from the end (checkpoints included) leave a shorter chain that verifies: the
    /// keyring remembers the newest checkpoint row of a history of `n` rows.
    async fn check_anchor(&self, n: i64) -> Result<()> {
        if let Some(anchor) = self.anchor().await? {
            let found: Option<String> = sqlx::query_scalar("SELECT hash FROM history WHERE seq = ?")
                .bind(anchor.seq)
                .fetch_optional(self.db())
                .await?;
            match found {
                None => {
                    return Err(ConsoleError::Tampered {
                        seq: n + 1,
                        message: format!(
                            "the history ends at row {n}, but the keyring's anchor records checkpoint row {}: rows were deleted from the end",
                            anchor.seq
                        ),
                    })
                }
                Some(h) if h != anchor.hash => {
                    return Err(ConsoleError::Tampered {
                        seq: anchor.seq,
                        message: "differs from the checkpoint the keyring's anchor records".into(),
                    })
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Accept the history as it now is after it was restored from a backup (or lost its newest
    /// rows some other way the approver knows of): only when the chain and every signed checkpoint
    /// still verify — a history edited anywhere is never accepted — and the keyring's anchor no
    /// longer matches it. A `history re-anchored` row naming the anchor it replaces and the rows
    /// missing is appended (so the gap stays on record), a checkpoint is signed over it, and the
    /// anchor moves there, backwards if need be. `None` when the anchor already matched.
    pub async fn reanchor_history(&self) -> Result<Option<Reanchored>> {
        let n = self.verify_signed().await?;
        match self.check_anchor(n).await {
            Ok(()) => return Ok(None),
            Err(ConsoleError::Tampered { .. }) => {}
            Err(e) => return Err(e),
        }
        let previous = self.anchor().await?.ok_or_else(|| ConsoleError::Invalid("no anchor".into()))?;
        // Shorter than the anchor: rows from n + 1 on are gone. As long, but another row where the
        // anchor's checkpoint was: the history took another course from there (a backup restored,
        // then used). Either is put on record.
        let (missing_from, diverged_at) =
            if previous.seq > n { (Some(n + 1), None) } else { (None, Some(previous.seq)) };
        let detail = json!({
            "previous_anchor": {"seq": previous.seq, "hash": previous.hash},
            "rows": n,
            "missing_from": missing_from,
            "diverged_at": diverged_at,
        });
        let mut tx = self.write_tx().await?;
        // The search index follows the rows as they are now (a cut or an edit leaves stale entries).
        sqlx::query("DELETE FROM history_fts").execute(&mut *tx).await?;
        sqlx::query("INSERT INTO history_fts (rowid, body) SELECT seq, kind || ' ' || detail FROM history")
            .execute(&mut *tx)
            .await?;
        append(&mut tx, crate::now(), REANCHORED, None, None, &detail).await?;
        tx.commit().await?;
        let seq = self.checkpoint(true).await?.ok_or_else(|| {
            ConsoleError::Invalid("the history changed while re-anchoring; try again".into())
        })?;
        let hash: String = sqlx::query_scalar("SELECT hash FROM history WHERE seq = ?")
            .bind(seq)
            .fetch_one(self.db())
            .await?;
        self.set_anchor(&Anchor { seq, hash }, true).await?;
        Ok(Some(Reanchored { previous: previous.seq, rows: n, anchored: seq }))
    }
}

/// The history row kind recording a re-anchoring.
pub const REANCHORED: &str = "history re-anchored";

/// What [`Console::reanchor_history`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Reanchored {
    /// The checkpoint row the keyring's anchor recorded before.
    pub previous: i64,
    /// Rows the history had when it was accepted.
    pub rows: i64,
    /// The new checkpoint row, now anchored.
    pub anchored: i64,
}

/// The newest checkpoint row, kept in the OS keyring (account `<profile id>.history-head`): not a
/// secret, but out of reach of whoever edits the database file without the user's keyring.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
struct Anchor {
    seq: i64,
    hash: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn db() -> (tempfile::TempDir, SqlitePool) {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::profile::open_db(&dir.path().join("h.db")).await.unwrap();
        (dir, db)
    }

    async fn fill(db: &SqlitePool, n: i64) {
        for i in 0..n {
            let mut c = db.acquire().await.unwrap();
            append(
                &mut c,
                1000 + i,
                "request received",
                Some("ep"),
                Some(&format!("r{i}")),
                &json!({"i": i}),
            )
            .await
            .unwrap();
        }
    }

    #[tokio::test]
    async fn intact_chain_verifies() {
        let (_d, db) = db().await;
        fill(&db, 5).await;
        assert_eq!(verify(&db).await.unwrap(), 5);
    }

    #[tokio::test]
    async fn append_only_triggers() {
        let (_d, db) = db().await;
        fill(&db, 2).await;
        assert!(sqlx::query("UPDATE history SET at = 0").execute(&db).await.is_err());
        assert!(sqlx::query("DELETE FROM history").execute(&db).await.is_err());
    }

    async fn tamper(db: &SqlitePool, sql: &str) {
        sqlx::query("DROP TRIGGER history_no_update").execute(db).await.unwrap();
        sqlx::query("DROP TRIGGER history_no_delete").execute(db).await.unwrap();
        sqlx::query(sql).execute(db).await.unwrap();
    }

    fn bad_row(e: ConsoleError) -> i64 {
        match e {
            ConsoleError::Tampered { seq, .. } => seq,
            other => panic!("expected Tampered, got {other}"),
        }
    }

    #[tokio::test]
    async fn edit_is_caught_at_that_row() {
        let (_d, db) = db().await;
        fill(&db, 5).await;
        tamper(&db, r#"UPDATE history SET detail = '{"i":99}' WHERE seq = 3"#).await;
        assert_eq!(bad_row(verify(&db).await.unwrap_err()), 3);
    }

    #[tokio::test]
    async fn delete_is_caught() {
        let (_d, db) = db().await;
        fill(&db, 5).await;
        tamper(&db, "DELETE FROM history WHERE seq = 2").await;
        assert_eq!(bad_row(verify(&db).await.unwrap_err()), 2);
    }

    #[tokio::test]
    async fn reorder_is_caught() {
        let (_d, db) = db().await;
        fill(&db, 4).await;
        // Swap rows 2 and 3 wholesale, renumbering them.
        tamper(&db, "UPDATE history SET seq = -2 WHERE seq = 2; UPDATE history SET seq = 2 WHERE seq = 3; UPDATE history SET seq = 3 WHERE seq = -2").await;
        assert_eq!(bad_row(verify(&db).await.unwrap_err()), 2);
    }

    #[tokio::test]
    async fn filters_by_request_attributes() {
        let dir = tempfile::tempdir().unwrap();
        let c = Console::open(dir.path(), std::sync::Arc::new(crate::keys::MemoryStore::default()))
            .await
            .unwrap();
        let mut conn = c.db().acquire().await.unwrap();
        let received = |tier: &str, who: &str| json!({"tier": tier, "class": "internal", "workload": who, "on_behalf_of": ["ann@x"]});
        append(&mut conn, 1, "request received", Some("ep"), Some("r1"), &received("high", "spiffe://a"))
            .await
            .unwrap();
        append(&mut conn, 2, "request received", Some("ep"), Some("r2"), &received("low", "spiffe://b"))
            .await
            .unwrap();
        append(
            &mut conn,
            3,
            "decision signed",
            Some("ep"),
            Some("r1"),
            &json!({"verdict": "deny", "reason": "late payment"}),
        )
        .await
        .unwrap();
        drop(conn);
        let ids = |rows: Vec<Row>| rows.into_iter().map(|r| r.seq).collect::<Vec<_>>();
        let f = Filter { tier: Some("high".into()), ..Filter::default() };
        assert_eq!(ids(c.history(&f).await.unwrap()), vec![3, 1]);
        let f = Filter { identity: Some("spiffe://b".into()), ..Filter::default() };
        assert_eq!(ids(c.history(&f).await.unwrap()), vec![2]);
        let f = Filter { identity: Some("ann@x".into()), ..Filter::default() };
        assert_eq!(ids(c.history(&f).await.unwrap()), vec![3, 2, 1]);
        let f = Filter { decision: Some("deny".into()), ..Filter::default() };
        assert_eq!(ids(c.history(&f).await.unwrap()), vec![3, 1]);
        let f = Filter { search: Some("late".into()), ..Filter::default() };
        assert_eq!(ids(c.history(&f).await.unwrap()), vec![3]);
    }

    /// Rewrite every row from `from` on with recomputed hashes, as someone with the file but
    /// without the key could.
    async fn rewrite_chain(db: &SqlitePool, from: i64, new_detail: &str) {
        sqlx::query("DROP TRIGGER IF EXISTS history_no_update").execute(db).await.unwrap();
        let rows =
            sqlx::query_as::<_, Row>("SELECT * FROM history ORDER BY seq").fetch_all(db).await.unwrap();
        let mut prev = GENESIS.to_string();
        for mut r in rows {
            if r.seq == from {
                r.detail = new_detail.to_string();
            }
            let hash =
                row_hash(&prev, r.seq, r.at, &r.kind, r.ep.as_deref(), r.request_id.as_deref(), &r.detail)
                    .unwrap();
            sqlx::query("UPDATE history SET detail = ?, prev_hash = ?, hash = ? WHERE seq = ?")
                .bind(&r.detail)
                .bind(&prev)
                .bind(&hash)
                .bind(r.seq)
                .execute(db)
                .await
                .unwrap();
            prev = hash;
        }
    }

    /// A console over a fresh profile (in-memory key store) whose history has `n` filler rows.
    async fn console_with_rows(n: i64) -> (tempfile::TempDir, Console) {
        let dir = tempfile::tempdir().unwrap();
        let c = Console::open(dir.path(), std::sync::Arc::new(crate::keys::MemoryStore::default()))
            .await
            .unwrap();
        c.key().await.unwrap();
        fill(c.db(), n).await;
        (dir, c)
    }

    #[tokio::test]
    async fn signed_checkpoints_catch_a_recomputed_chain_and_survive_rotation() {
        let (_dir, c) = console_with_rows(10).await;
        assert_eq!(c.checkpoint(false).await.unwrap(), None, "not due yet");
        let cp = c.checkpoint(true).await.unwrap().expect("forced checkpoint");
        fill(c.db(), 3).await;
        c.rotate_key().await.unwrap();
        fill(c.db(), 2).await;
        c.verify_history().await.expect("intact history with a rotation verifies");

        rewrite_chain(c.db(), 4, r#"{"i":"forged"}"#).await;
        verify(c.db()).await.expect("the bare chain was recomputed consistently");
        match c.verify_history().await.unwrap_err() {
            ConsoleError::Tampered { seq, .. } => assert_eq!(seq, cp, "caught at the first checkpoint"),
            other => panic!("expected Tampered, got {other}"),
        }
    }

    #[tokio::test]
    async fn rows_deleted_from_the_end_are_caught_by_the_keyring_anchor() {
        let (_dir, c) = console_with_rows(10).await;
        let first = c.checkpoint(true).await.unwrap().expect("checkpoint");
        fill(c.db(), 5).await;
        let second = c.checkpoint(true).await.unwrap().expect("checkpoint");
        fill(c.db(), 2).await;
        c.verify_history().await.expect("intact");

        // Someone with the file removes everything after the first checkpoint (the second one too):
        // what is left is a consistent chain under a valid checkpoint.
        sqlx::query("DROP TRIGGER history_no_delete").execute(c.db()).await.unwrap();
        sqlx::query("DELETE FROM history WHERE seq > ?").bind(first).execute(c.db()).await.unwrap();
        verify(c.db()).await.expect("the shortened chain is consistent");
        match c.verify_history().await.unwrap_err() {
            ConsoleError::Tampered { seq, message } => {
                assert_eq!(seq, first + 1, "{message}");
                assert!(message.contains(&format!("checkpoint row {second}")), "{message}");
                assert!(message.contains("deleted from the end"), "{message}");
            }
            other => panic!("expected Tampered, got {other}"),
        }

        // The console goes on recording (the deleted rows' search entries are replaced), and signing
        // new rows does not paper over the gap: the anchor stays where it was.
        fill(c.db(), 2).await;
        c.checkpoint(true).await.unwrap().expect("checkpoint");
        assert!(matches!(c.verify_history().await, Err(ConsoleError::Tampered { .. })), "still caught");
        let first = first + 3;

        // The approver restored this on purpose: re-anchoring accepts it, the gap stays on record.
        let done = c.reanchor_history().await.unwrap().expect("re-anchored");
        assert_eq!((done.previous, done.rows), (second, first));
        c.verify_history().await.expect("accepted history verifies");
        let (kind, detail): (String, String) =
            sqlx::query_as("SELECT kind, detail FROM history WHERE seq = ?")
                .bind(first + 1)
                .fetch_one(c.db())
                .await
                .unwrap();
        assert_eq!(kind, REANCHORED);
        assert!(detail.contains(&format!("\"seq\":{second}")), "{detail}");
        assert_eq!(c.reanchor_history().await.unwrap(), None, "nothing to accept twice");
        fill(c.db(), 3).await;
        c.checkpoint(true).await.unwrap().expect("checkpoint");
        c.verify_history().await.expect("the anchor moves forward again");
    }

    #[tokio::test]
    async fn an_edited_history_is_never_re_anchored() {
        let (_dir, c) = console_with_rows(10).await;
        c.checkpoint(true).await.unwrap().expect("checkpoint");
        fill(c.db(), 4).await;
        c.checkpoint(true).await.unwrap().expect("checkpoint");
        rewrite_chain(c.db(), 4, r#"{"i":"forged"}"#).await;
        assert!(matches!(c.reanchor_history().await, Err(ConsoleError::Tampered { .. })));
        assert_eq!(count_kind(&c, REANCHORED).await, 0);
    }

    /// Finding 13: someone with the file but not the keyring rewrites the history, re-signs every
    /// checkpoint with a key of their own labelled with the real kid, and puts their public key in
    /// the `keys` table under that kid. Only keys recorded in the chain itself count, so the
    /// forgery is caught, and re-anchoring (which ignores the keyring's anchor) refuses it too.
    #[tokio::test]
    async fn checkpoints_are_verified_against_keys_from_the_chain_not_the_key_table() {
        let (_dir, c) = console_with_rows(10).await;
        c.checkpoint(true).await.unwrap().expect("checkpoint");
        fill(c.db(), 3).await;
        c.checkpoint(true).await.unwrap().expect("checkpoint");
        c.verify_history().await.expect("intact");
        let real_kid = c.key().await.unwrap().kid;
        let forger = countersign_protocol::generate_key();

        sqlx::query("DROP TRIGGER IF EXISTS history_no_update").execute(c.db()).await.unwrap();
        let rows =
            sqlx::query_as::<_, Row>("SELECT * FROM history ORDER BY seq").fetch_all(c.db()).await.unwrap();
        let mut prev = GENESIS.to_string();
        for mut r in rows {
            if r.seq == 4 {
                r.detail = r#"{"i":"forged"}"#.into();
            }
            if r.kind == "checkpoint" {
                let message = checkpoint_message(&c.profile().id, r.seq - 1, &prev);
                let sig = hex(&ed25519_dalek::Signer::sign(&forger, message.as_bytes()).to_bytes());
                r.detail = json!({"upto": r.seq - 1, "head": prev, "kid": real_kid, "sig": sig}).to_string();
            }
            let hash =
                row_hash(&prev, r.seq, r.at, &r.kind, r.ep.as_deref(), r.request_id.as_deref(), &r.detail)
                    .unwrap();
            sqlx::query("UPDATE history SET detail = ?, prev_hash = ?, hash = ? WHERE seq = ?")
                .bind(&r.detail)
                .bind(&prev)
                .bind(&hash)
                .bind(r.seq)
                .execute(c.db())
                .await
                .unwrap();
            prev = hash;
        }
        let forged_jwk = countersign_protocol::Jwk::from_key(&forger.verifying_key());
        sqlx::query("UPDATE keys SET jwk = ? WHERE kid = ?")
            .bind(serde_json::to_string(&forged_jwk).unwrap())
            .bind(&real_kid)
            .execute(c.db())
            .await
            .unwrap();
        verify(c.db()).await.expect("the bare chain was recomputed consistently");

        let err = c.verify_history().await.unwrap_err();
        assert!(
            matches!(&err, ConsoleError::Tampered { message, .. } if message.contains("does not verify")),
            "{err}"
        );
        assert!(matches!(c.reanchor_history().await, Err(ConsoleError::Tampered { .. })), "never accepted");
        assert_eq!(count_kind(&c, REANCHORED).await, 0);
    }

    async fn count_kind(c: &Console, kind: &str) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM history WHERE kind = ?")
            .bind(kind)
            .fetch_one(c.db())
            .await
            .unwrap()
    }

    #[test]
    fn fts_query_is_literal() {
        assert_eq!(fts_query(r#"pay "now" OR"#), r#""pay" """now""" "OR""#);
    }
}
