//! The profile's one active key: read from the keyring, created there on first use, and recorded
//! (public half only) in the database and the history.

use std::sync::Arc;

use base64::Engine as _;
use countersign_protocol::{self as protocol, jwk::kid_of, Jwk, SigningKey};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::history::{self, HistoryKind};
use crate::{now, Console, ConsoleError, Result, Sensitive};

/// What may be shown about a key: the CLI's `key show --json` and the desktop UI's key screen.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct KeyInfo {
    /// RFC 7638 thumbprint.
    pub kid: String,
    /// Short form of the kid for people to compare.
    pub fingerprint: String,
    /// When this profile created it (seconds since epoch).
    pub created_at: i64,
    /// The public key.
    pub jwk: Jwk,
}

/// A private key read from the keyring, held only as long as a signature takes.
pub(crate) struct LoadedKey {
    seed: Sensitive<[u8; 32]>,
}

impl std::fmt::Debug for LoadedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoadedKey(<redacted>)")
    }
}

impl LoadedKey {
    /// Hold `key`'s seed (the caller drops `key` right after).
    pub(super) fn of(key: &SigningKey) -> LoadedKey {
        LoadedKey { seed: Sensitive::new(key.to_bytes()) }
    }

    /// Run `f` with the signing key; the key (dalek zeroizes on drop) is gone when `f` returns.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&SigningKey) -> R) -> R {
        let key = SigningKey::from_bytes(self.seed.expose());
        f(&key)
    }

    pub(crate) fn kid(&self) -> String {
        self.with(|k| kid_of(&k.verifying_key()))
    }

    pub(super) fn jwk(&self) -> Jwk {
        self.with(|k| Jwk::from_key(&k.verifying_key()))
    }
}

fn decode_seed(secret: &Sensitive<String>) -> Result<LoadedKey> {
    let bytes = Zeroizing::new(
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(secret.expose().trim())
            .map_err(|_| ConsoleError::Keyring("the keyring entry is not a Countersign key".into()))?,
    );
    let seed: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| ConsoleError::Keyring("the keyring entry is not a 32-byte Ed25519 key".into()))?;
    Ok(LoadedKey { seed: Sensitive::new(seed) })
}

fn encode_seed(key: &SigningKey) -> Sensitive<String> {
    Sensitive::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.to_bytes()))
}

impl Console {
    pub(super) async fn keyring_get(&self) -> Result<Option<LoadedKey>> {
        let (store, account) = (Arc::clone(&self.secrets), self.profile.id.clone());
        let secret = tokio::task::spawn_blocking(move || store.get(&account))
            .await
            .map_err(|e| ConsoleError::Keyring(format!("keyring task failed: {e}")))??;
        secret.as_ref().map(decode_seed).transpose()
    }

    pub(super) async fn keyring_set(&self, key: &SigningKey) -> Result<()> {
        let (store, account) = (Arc::clone(&self.secrets), self.profile.id.clone());
        let secret = encode_seed(key);
        tokio::task::spawn_blocking(move || store.set(&account, &secret))
            .await
            .map_err(|e| ConsoleError::Keyring(format!("keyring task failed: {e}")))?
    }

    /// The profile's key when the keyring has it (recorded as the active public key); `None` when
    /// there is none yet. Never creates one.
    pub(crate) async fn existing_key(&self) -> Result<Option<LoadedKey>> {
        match self.keyring_get().await? {
            Some(key) => {
                self.record_key(&key, None).await?;
                Ok(Some(key))
            }
            None => Ok(None),
        }
    }

    /// The profile's key, read from the keyring; created there on first use. When the database
    /// knows a key but the keyring has none, that is an error (the key was lost), not a new key.
    pub(crate) async fn signing_key(&self) -> Result<LoadedKey> {
        if let Some(key) = self.keyring_get().await? {
            self.record_key(&key, None).await?;
            return Ok(key);
        }
        let active: Option<String> = sqlx::query_scalar("SELECT kid FROM keys WHERE retired_at IS NULL")
            .fetch_optional(self.db())
            .await?;
        if let Some(kid) = active {
            return Err(ConsoleError::Keyring(format!(
                "the keyring has no key for this profile, but it signed with {kid}; \
                 unlock the right keyring, or run `countersign key rotate` to make a new key"
            )));
        }
        let fresh = protocol::generate_key();
        self.keyring_set(&fresh).await?;
        let key = LoadedKey::of(&fresh);
        self.record_key(&key, Some(HistoryKind::KeyCreated)).await?;
        Ok(key)
    }

    /// Make sure the database lists `key` as the active public key (retiring any other), and log it.
    pub(super) async fn record_key(&self, key: &LoadedKey, event: Option<HistoryKind>) -> Result<()> {
        let kid = key.kid();
        let active = "SELECT COUNT(*) FROM keys WHERE kid = ? AND retired_at IS NULL";
        // The common case (the key is already the active one) takes no write lock.
        if sqlx::query_scalar::<_, i64>(active).bind(&kid).fetch_one(self.db()).await? > 0 {
            return Ok(());
        }
        let mut tx = self.write_tx().await?;
        if sqlx::query_scalar::<_, i64>(active).bind(&kid).fetch_one(&mut *tx).await? > 0 {
            return Ok(());
        }
        let t = now();
        let old: Vec<String> =
            sqlx::query_scalar("SELECT kid FROM keys WHERE retired_at IS NULL").fetch_all(&mut *tx).await?;
        sqlx::query("UPDATE keys SET retired_at = ? WHERE retired_at IS NULL")
            .bind(t)
            .execute(&mut *tx)
            .await?;
        let jwk = serde_json::to_string(&key.jwk()).map_err(|e| ConsoleError::Invalid(e.to_string()))?;
        sqlx::query("INSERT INTO keys (kid, jwk, created_at) VALUES (?, ?, ?) ON CONFLICT (kid) DO UPDATE SET retired_at = NULL")
            .bind(&kid)
            .bind(&jwk)
            .bind(t)
            .execute(&mut *tx)
            .await?;
        let kind =
            event.unwrap_or(if old.is_empty() { HistoryKind::KeyCreated } else { HistoryKind::KeyRotated });
        let detail = history::KeyRecorded { kid, jwk: key.jwk(), retired: old };
        let detail = match kind {
            HistoryKind::KeyCreated => history::HistoryDetail::KeyCreated(detail),
            _ => history::HistoryDetail::KeyRotated(detail),
        };
        history::append(&mut tx, t, None, None, &detail).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The active key (created on first use).
    pub async fn key(&self) -> Result<KeyInfo> {
        let key = self.signing_key().await?;
        self.key_info(&key.kid()).await
    }

    pub(super) async fn key_info(&self, kid: &str) -> Result<KeyInfo> {
        let (jwk, created_at): (String, i64) =
            sqlx::query_as("SELECT jwk, created_at FROM keys WHERE kid = ?")
                .bind(kid)
                .fetch_optional(self.db())
                .await?
                .ok_or_else(|| ConsoleError::NotFound(format!("key {kid}")))?;
        let jwk: Jwk = serde_json::from_str(&jwk).map_err(|e| ConsoleError::Invalid(e.to_string()))?;
        Ok(KeyInfo { kid: kid.to_string(), fingerprint: protocol::jwk::fingerprint(kid), created_at, jwk })
    }

    /// Every public key this profile has used, newest first, with whether it is retired.
    pub async fn key_history(&self) -> Result<Vec<(KeyInfo, Option<i64>)>> {
        let rows: Vec<(String, Option<i64>)> =
            sqlx::query_as("SELECT kid, retired_at FROM keys ORDER BY created_at DESC, rowid DESC")
                .fetch_all(self.db())
                .await?;
        let mut out = Vec::with_capacity(rows.len());
        for (kid, retired) in rows {
            out.push((self.key_info(&kid).await?, retired));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{MemoryStore, SecretStore};

    #[tokio::test]
    async fn created_once_rotated_and_old_key_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn SecretStore> = Arc::new(MemoryStore::default());
        let c = Console::open(dir.path(), Arc::clone(&store)).await.unwrap();
        let first = c.key().await.unwrap();
        assert_eq!(c.key().await.unwrap().kid, first.kid, "the key is created once");
        let second = c.rotate_key().await.unwrap().key;
        assert_ne!(second.kid, first.kid);
        let all = c.key_history().await.unwrap();
        assert_eq!(all.len(), 2);
        assert!(all.iter().any(|(k, retired)| k.kid == first.kid && retired.is_some()));
        assert_eq!(c.key().await.unwrap().kid, second.kid);
    }

    #[tokio::test]
    async fn lost_keyring_entry_is_an_error_not_a_new_key() {
        let dir = tempfile::tempdir().unwrap();
        let c = Console::open(dir.path(), Arc::new(MemoryStore::default())).await.unwrap();
        c.key().await.unwrap();
        drop(c);
        let c = Console::open(dir.path(), Arc::new(MemoryStore::default())).await.unwrap();
        let err = c.key().await.unwrap_err();
        assert_eq!(err.exit_code(), crate::error::exit::KEYRING, "{err}");
    }
}
