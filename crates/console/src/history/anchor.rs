//! Signed checkpoints over the chain's head, the keyring's anchor of the newest one, and full
//! verification and re-anchoring of the history.

use serde::Serialize;
use serde_json::Value;

use super::chain::{append, verify, Row};
use super::kind::{ChainPoint, Checkpoint, HistoryDetail, HistoryKind, ReanchorRecord};
use crate::profile::hex;
use crate::{Console, ConsoleError, Result};

/// Rows appended between two signed checkpoints (at most; a checkpoint is due after this many).
pub const CHECKPOINT_EVERY: i64 = 100;
/// A checkpoint is also due when rows were added and the last one is older than this (seconds), so
/// the unanchored tail of an active history stays short.
pub const CHECKPOINT_AGE_S: i64 = 60;

/// A history row's search text, as the insert trigger (migration 0060) indexes it: its kind and its
/// detail without the signed token of a verified request or a decision (random base64 nobody
/// searches for); a rejected request's text stays.
pub(super) const SEARCH_BODY: &str = "kind || ' ' || CASE WHEN NOT json_valid(detail) THEN detail \
     WHEN kind = 'request received' THEN json_remove(detail, '$.jwt') \
     ELSE json_remove(detail, '$.token') END";

/// What a checkpoint signs: the profile and the chain head it covers.
pub(super) fn checkpoint_message(profile: &str, upto: i64, head: &str) -> String {
    format!("countersign-history-checkpoint/v1\n{profile}\n{upto}\n{head}")
}

impl Console {
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
            "SELECT COALESCE((SELECT MAX(seq) FROM history WHERE kind = ?1), 0),
                    COALESCE((SELECT at FROM history WHERE kind = ?1 ORDER BY seq DESC LIMIT 1),
                             (SELECT at FROM history ORDER BY seq LIMIT 1))",
        )
        .bind(HistoryKind::Checkpoint.as_str())
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
        if HistoryKind::parse(&kind) == Some(HistoryKind::Checkpoint) {
            // Another process signed the head meanwhile.
            return Ok(None);
        }
        let message = checkpoint_message(&self.profile().id, upto, &hash);
        let sig = key.with(|k| hex(&ed25519_dalek::Signer::sign(k, message.as_bytes()).to_bytes()));
        drop(key);
        let detail = HistoryDetail::Checkpoint(Checkpoint { upto, head: hash, kid, sig });
        let seq = append(&mut tx, crate::now(), None, None, &detail).await?;
        let hash: String = sqlx::query_scalar("SELECT hash FROM history WHERE seq = ?")
            .bind(seq)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        // The anchor moves only over a history that still matches it: after a restore or a cut,
        // signing new rows must not paper over the gap (`history reanchor` is the deliberate way).
        match self.check_anchor(seq).await {
            Ok(()) => self.set_anchor(&ChainPoint { seq, hash }, false).await?,
            Err(ConsoleError::Tampered { message, .. }) => {
                tracing::warn!(%message, "history does not match the keyring's anchor; anchor left in place");
            }
            Err(e) => return Err(e),
        }
        Ok(Some(seq))
    }

    /// The keyring account holding the anchor: the newest checkpoint row, not a secret, but out of
    /// reach of whoever edits the database file without the user's keyring.
    fn anchor_account(&self) -> String {
        format!("{}.history-head", self.profile().id)
    }

    /// Record the newest checkpoint row outside the database, in the OS keyring next to the key;
    /// only ever forward (another process may have anchored a later row meanwhile), unless
    /// `back` ([`Console::reanchor_history`], the approver's explicit choice).
    async fn set_anchor(&self, anchor: &ChainPoint, back: bool) -> Result<()> {
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

    async fn anchor(&self) -> Result<Option<ChainPoint>> {
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
        let rows = sqlx::query_as::<_, Row>("SELECT * FROM history WHERE kind IN (?, ?, ?) ORDER BY seq")
            .bind(HistoryKind::Checkpoint.as_str())
            .bind(HistoryKind::KeyCreated.as_str())
            .bind(HistoryKind::KeyRotated.as_str())
            .fetch_all(self.db())
            .await?;
        let mut keys: std::collections::HashMap<String, countersign_protocol::VerifyingKey> =
            Default::default();
        let mut last: Option<(i64, String)> = None;
        for r in rows {
            let bad = |message: &str| ConsoleError::Tampered { seq: r.seq, message: message.to_string() };
            if HistoryKind::parse(&r.kind) != Some(HistoryKind::Checkpoint) {
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
        let detail = HistoryDetail::Reanchored(ReanchorRecord {
            previous_anchor: previous.clone(),
            rows: n,
            missing_from,
            diverged_at,
        });
        let mut tx = self.write_tx().await?;
        // The search index follows the rows as they are now (a cut or an edit leaves stale entries).
        sqlx::query("DELETE FROM history_fts").execute(&mut *tx).await?;
        sqlx::query(&format!("INSERT INTO history_fts (rowid, body) SELECT seq, {SEARCH_BODY} FROM history"))
            .execute(&mut *tx)
            .await?;
        append(&mut tx, crate::now(), None, None, &detail).await?;
        tx.commit().await?;
        let seq = self.checkpoint(true).await?.ok_or_else(|| {
            ConsoleError::Invalid("the history changed while re-anchoring; try again".into())
        })?;
        let hash: String = sqlx::query_scalar("SELECT hash FROM history WHERE seq = ?")
            .bind(seq)
            .fetch_one(self.db())
            .await?;
        self.set_anchor(&ChainPoint { seq, hash }, true).await?;
        Ok(Some(Reanchored { previous: previous.seq, rows: n, anchored: seq }))
    }
}

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
