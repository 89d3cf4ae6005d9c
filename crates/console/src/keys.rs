//! The approver's Ed25519 key in the OS keyring.
//!
//! One keyring entry per profile: service [`SERVICE`], account = the profile id. The entry holds
//! the 32-byte private seed as base64url; nothing else anywhere holds it. The database records only
//! public keys, so decisions signed before a rotation stay verifiable. Keyring calls block (D-Bus),
//! so they run on the blocking pool.

use std::sync::Arc;

use base64::Engine as _;
use countersign_protocol::{self as protocol, jwk::kid_of, Jwk, SigningKey};
use serde::Serialize;
use serde_json::json;
use zeroize::Zeroizing;

use crate::{history, now, Console, ConsoleError, Result, Sensitive};

/// The keyring service name of every Countersign entry.
pub const SERVICE: &str = "countersign";

/// Where private keys are kept: the OS keyring in production, a map in unit tests.
pub trait SecretStore: std::fmt::Debug + Send + Sync + 'static {
    /// The secret stored for `account`, or `None` when there is no entry.
    fn get(&self, account: &str) -> Result<Option<Sensitive<String>>>;
    /// Store (or replace) the secret for `account`.
    fn set(&self, account: &str, secret: &Sensitive<String>) -> Result<()>;
}

/// The operating system's keyring (Secret Service on Linux, Keychain on macOS, Credential Manager
/// on Windows), through the `keyring` crate. Any failure is a [`ConsoleError::Keyring`]; there is
/// no fallback.
///
/// On Linux, reads (one per decision) go over one Secret Service connection and encrypted session
/// kept open for the process's life: opening a D-Bus connection and negotiating a Diffie-Hellman
/// session costs several milliseconds, the read itself well under one. The item searched for is the
/// one the `keyring` crate writes (attributes `service`, `username`, `target = default`). A broken
/// connection (daemon restarted, bus gone) is dropped and the read retried once on a fresh one.
#[derive(Default)]
pub struct OsKeyring {
    #[cfg(target_os = "linux")]
    session: std::sync::Mutex<Option<dbus_secret_service::SecretService>>,
}

impl std::fmt::Debug for OsKeyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OsKeyring")
    }
}

fn keyring_error(e: keyring::Error) -> ConsoleError {
    let hint = match &e {
        keyring::Error::NoStorageAccess(_) | keyring::Error::PlatformFailure(_) => {
            " (is a Secret Service such as gnome-keyring running on the session bus, and unlocked?)"
        }
        _ => "",
    };
    ConsoleError::Keyring(format!("{e}{hint}"))
}

#[cfg(target_os = "linux")]
mod secret_service {
    use std::collections::HashMap;

    use dbus_secret_service::{EncryptionType, Error, SecretService};

    use super::SERVICE;
    use crate::{ConsoleError, Result, Sensitive};

    fn failure(e: Error) -> ConsoleError {
        let hint = match e {
            Error::Locked | Error::Prompt => " (the keyring is locked: unlock it and try again)",
            Error::Dbus(_) | Error::Unavailable => {
                " (is a Secret Service such as gnome-keyring running on the session bus, and unlocked?)"
            }
            _ => "",
        };
        ConsoleError::Keyring(format!("Secret Service: {e}{hint}"))
    }

    /// A failed read, and whether a fresh connection might succeed (the bus or the service went
    /// away) — not a refused prompt, a locked keyring or an ambiguous entry.
    pub(super) struct Failed {
        pub(super) error: ConsoleError,
        pub(super) retry: bool,
    }

    impl From<Error> for Failed {
        fn from(e: Error) -> Failed {
            let retry = matches!(e, Error::Dbus(_) | Error::Unavailable);
            Failed { error: failure(e), retry }
        }
    }

    fn final_failure(message: String) -> Failed {
        Failed { error: ConsoleError::Keyring(message), retry: false }
    }

    /// Read `account`'s secret over `ss`, as the `keyring` crate would (unlocking a locked item,
    /// which prompts on a desktop and fails without one).
    pub(super) fn read(
        ss: &SecretService,
        account: &str,
    ) -> std::result::Result<Option<Sensitive<String>>, Failed> {
        let attributes = HashMap::from([("service", SERVICE), ("username", account), ("target", "default")]);
        let found = ss.search_items(attributes)?;
        let mut items =
            found.unlocked.iter().map(|i| (i, false)).chain(found.locked.iter().map(|i| (i, true)));
        let Some((item, locked)) = items.next() else { return Ok(None) };
        if items.next().is_some() {
            return Err(final_failure(format!(
                "several keyring entries match service {SERVICE:?}, account {account:?}; remove all but one"
            )));
        }
        if locked {
            item.unlock()?;
        }
        let bytes = zeroize::Zeroizing::new(item.get_secret()?);
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| final_failure("the keyring entry is not a Countersign key".into()))?;
        Ok(Some(Sensitive::new(text.to_string())))
    }

    pub(super) fn connect() -> Result<SecretService> {
        SecretService::connect(EncryptionType::Dh).map_err(failure)
    }
}

impl SecretStore for OsKeyring {
    #[cfg(target_os = "linux")]
    fn get(&self, account: &str) -> Result<Option<Sensitive<String>>> {
        let mut cached = self.session.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(ss) = cached.as_ref() {
            match secret_service::read(ss, account) {
                Ok(found) => return Ok(found),
                // Maybe only this connection broke: drop it and try once on a fresh one.
                Err(f) if f.retry => tracing::debug!(error = %f.error, "keyring read failed; reconnecting"),
                Err(f) => return Err(f.error),
            }
        }
        *cached = None;
        let ss = secret_service::connect()?;
        let found = secret_service::read(&ss, account).map_err(|f| f.error)?;
        *cached = Some(ss);
        Ok(found)
    }

    #[cfg(not(target_os = "linux"))]
    fn get(&self, account: &str) -> Result<Option<Sensitive<String>>> {
        let entry = keyring::Entry::new(SERVICE, account).map_err(keyring_error)?;
        match entry.get_password() {
            Ok(secret) => Ok(Some(Sensitive::new(secret))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(keyring_error(e)),
        }
    }

    fn set(&self, account: &str, secret: &Sensitive<String>) -> Result<()> {
        let entry = keyring::Entry::new(SERVICE, account).map_err(keyring_error)?;
        entry.set_password(secret.expose()).map_err(keyring_error)
    }
}

/// An in-memory store for unit tests only: nothing persists.
#[cfg(test)]
#[derive(Debug, Default)]
pub struct MemoryStore(std::sync::Mutex<std::collections::HashMap<String, String>>);

#[cfg(test)]
impl SecretStore for MemoryStore {
    fn get(&self, account: &str) -> Result<Option<Sensitive<String>>> {
        let map = self.0.lock().map_err(|_| ConsoleError::Keyring("poisoned".into()))?;
        Ok(map.get(account).cloned().map(Sensitive::new))
    }

    fn set(&self, account: &str, secret: &Sensitive<String>) -> Result<()> {
        let mut map = self.0.lock().map_err(|_| ConsoleError::Keyring("poisoned".into()))?;
        map.insert(account.to_string(), secret.expose().clone());
        Ok(())
    }
}

/// What may be shown about a key.
#[derive(Debug, Clone, Serialize)]
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
    /// Run `f` with the signing key; the key (dalek zeroizes on drop) is gone when `f` returns.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&SigningKey) -> R) -> R {
        let key = SigningKey::from_bytes(self.seed.expose());
        f(&key)
    }

    pub(crate) fn kid(&self) -> String {
        self.with(|k| kid_of(&k.verifying_key()))
    }

    fn jwk(&self) -> Jwk {
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
    async fn keyring_get(&self) -> Result<Option<LoadedKey>> {
        let (store, account) = (Arc::clone(&self.secrets), self.profile.id.clone());
        let secret = tokio::task::spawn_blocking(move || store.get(&account))
            .await
            .map_err(|e| ConsoleError::Keyring(format!("keyring task failed: {e}")))??;
        secret.as_ref().map(decode_seed).transpose()
    }

    async fn keyring_set(&self, key: &SigningKey) -> Result<()> {
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
        let key = LoadedKey { seed: Sensitive::new(fresh.to_bytes()) };
        self.record_key(&key, Some("key created")).await?;
        Ok(key)
    }

    /// Make sure the database lists `key` as the active public key (retiring any other), and log it.
    async fn record_key(&self, key: &LoadedKey, event: Option<&str>) -> Result<()> {
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
        let kind = event.unwrap_or(if old.is_empty() { "key created" } else { "key rotated" });
        history::append(&mut tx, t, kind, None, None, &json!({"kid": kid, "jwk": key.jwk(), "retired": old}))
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The active key (created on first use).
    pub async fn key(&self) -> Result<KeyInfo> {
        let key = self.signing_key().await?;
        self.key_info(&key.kid()).await
    }

    async fn key_info(&self, kid: &str) -> Result<KeyInfo> {
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

    /// Replace the keyring key with a new one. The old public key stays in the database (retired),
    /// so history signed with it stays verifiable. The new key must be enrolled with each
    /// enforcement point before its decisions are accepted.
    pub async fn rotate_key(&self) -> Result<KeyInfo> {
        // Fails clearly when the keyring is locked, before anything changes; the old key signs
        // the history so far, the new one signs right after the rotation.
        self.keyring_get().await?;
        self.checkpoint(true).await?;
        let fresh = protocol::generate_key();
        self.keyring_set(&fresh).await?;
        let key = LoadedKey { seed: Sensitive::new(fresh.to_bytes()) };
        self.record_key(&key, Some("key rotated")).await?;
        self.checkpoint(true).await?;
        self.key_info(&key.kid()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn created_once_rotated_and_old_key_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn SecretStore> = Arc::new(MemoryStore::default());
        let c = Console::open(dir.path(), Arc::clone(&store)).await.unwrap();
        let first = c.key().await.unwrap();
        assert_eq!(c.key().await.unwrap().kid, first.kid, "the key is created once");
        let second = c.rotate_key().await.unwrap();
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
        assert_eq!(err.exit_code(), 3, "{err}");
    }
}
