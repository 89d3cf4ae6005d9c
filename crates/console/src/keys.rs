//! The approver's Ed25519 key in the OS keyring.
//!
//! One keyring entry per profile: service [`SERVICE`], account = the profile id. The entry holds
//! the 32-byte private seed as base64url; nothing else anywhere holds it. The database records only
//! public keys, so decisions signed before a rotation stay verifiable. Keyring calls block (D-Bus),
//! so they run on the blocking pool.

use std::sync::Arc;

use base64::Engine as _;
use countersign_protocol::{self as protocol, jwk::kid_of, Jwk, RotationClaims, SigningKey, TYP_ROTATION};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::history::{self, HistoryKind};
use crate::{now, Console, ConsoleError, Result, Sensitive};

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
        self.record_key(&key, Some(HistoryKind::KeyCreated)).await?;
        Ok(key)
    }

    /// Make sure the database lists `key` as the active public key (retiring any other), and log it.
    async fn record_key(&self, key: &LoadedKey, event: Option<HistoryKind>) -> Result<()> {
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

    /// Replace the keyring key with a new one, and tell every pinned enforcement point.
    ///
    /// For each enforcement point a rotation statement (`typ: countersign-rotation+jwt`, naming the
    /// new public key) is signed with the old key while it is still in memory; then the new key
    /// replaces it in the keyring (the commit point: when that fails nothing was sent and nothing
    /// changed); then each statement is posted to `POST /v1/approvers/rotate`. An enforcement point
    /// that does not take it (unreachable, or it answered 401/409/…) is reported, and the others
    /// go on: its approver must be enrolled there again by hand. The old public key stays in the
    /// database (retired) and in the history, so what it signed stays verifiable. With no old key
    /// in the keyring (it was lost), nothing can be signed for the enforcement points.
    pub async fn rotate_key(&self) -> Result<Rotation> {
        // Fails clearly when the keyring is locked, before anything changes.
        let old = self.keyring_get().await?;
        if old.is_some() {
            // The old key signs the history so far; the new one signs right after the rotation.
            self.checkpoint(true).await?;
        }
        let fresh = protocol::generate_key();
        let new_jwk = Jwk::from_key(&fresh.verifying_key());
        let t = now();
        let mut statements = Vec::new();
        for ep in self.eps().await? {
            let statement = match &old {
                Some(old) => {
                    let claims = RotationClaims {
                        iss: old.kid(),
                        aud: ep.ep.clone(),
                        iat: t,
                        exp: t + ROTATION_LIFETIME_S,
                        jti: protocol::new_id(),
                        new_key: new_jwk.clone(),
                    };
                    Some(old.with(|k| protocol::sign(&claims, TYP_ROTATION, k))?)
                }
                None => None,
            };
            statements.push((ep, statement));
        }
        let old_kid = old.as_ref().map(LoadedKey::kid);
        drop(old);
        self.keyring_set(&fresh).await?;
        let key = LoadedKey { seed: Sensitive::new(fresh.to_bytes()) };
        drop(fresh);
        self.record_key(&key, Some(HistoryKind::KeyRotated)).await?;
        self.checkpoint(true).await?;
        let new_kid = key.kid();
        drop(key);
        let mut eps = Vec::with_capacity(statements.len());
        for (ep, statement) in statements {
            let outcome = match statement {
                Some(jwt) => self.send_rotation(&ep, jwt, &new_kid).await,
                None => RotationOutcome::NotSent {
                    reason: "the old key was not in the keyring: nothing could be signed with it".into(),
                },
            };
            eps.push(EpRotation { ep: ep.ep, url: ep.url, outcome });
        }
        // On record: which enforcement points took the new key, and which need it enrolled by hand.
        if !eps.is_empty() {
            let mut tx = self.write_tx().await?;
            for e in &eps {
                let detail = history::RotationSent {
                    old_kid: old_kid.clone(),
                    new_kid: new_kid.clone(),
                    outcome: e.outcome.clone(),
                };
                history::append(
                    &mut tx,
                    now(),
                    Some(&e.ep),
                    None,
                    &history::HistoryDetail::KeyRotationSent(detail),
                )
                .await?;
            }
            tx.commit().await?;
        }
        Ok(Rotation { key: self.key_info(&new_kid).await?, old_kid, eps })
    }

    /// Post one signed rotation statement to `ep`; what it answered.
    async fn send_rotation(&self, ep: &crate::ep::Ep, jwt: String, new_kid: &str) -> RotationOutcome {
        let url = ep.at("/v1/approvers/rotate");
        let http = match self.client(ep) {
            Ok(http) => http,
            Err(e) => return RotationOutcome::NotSent { reason: e.to_string() },
        };
        let sent = http
            .post(&url)
            .header("content-type", "application/jwt")
            .body(jwt)
            .timeout(crate::CALL_TIMEOUT)
            .send()
            .await;
        let resp = match sent {
            Ok(resp) => resp,
            Err(e) => return RotationOutcome::Unreachable { error: crate::with_causes(&e) },
        };
        let status = resp.status().as_u16();
        let body = match resp.bytes().await {
            Ok(body) => body,
            Err(e) => return RotationOutcome::Unreachable { error: e.to_string() },
        };
        let answer: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
        let field = |name: &str| answer.as_ref().and_then(|a| a.get(name)).and_then(|v| v.as_str());
        match (status, field("kid")) {
            (200, Some(kid)) if kid == new_kid => RotationOutcome::Accepted,
            (200, other) => RotationOutcome::Refused {
                status,
                message: format!("answered 200 naming key {other:?}, not the new key {new_kid}"),
            },
            _ => RotationOutcome::Refused {
                status,
                message: field("message")
                    .map(str::to_string)
                    .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(300).collect()),
            },
        }
    }
}

/// Lifetime of a rotation statement (the protocol allows at most five minutes).
pub const ROTATION_LIFETIME_S: i64 = 240;

/// What [`Console::rotate_key`] did.
#[derive(Debug, Clone, Serialize)]
pub struct Rotation {
    /// The new key, now in the keyring.
    pub key: KeyInfo,
    /// The key it replaced, when the keyring still had one.
    pub old_kid: Option<String>,
    /// For each pinned enforcement point, whether it took the rotation.
    pub eps: Vec<EpRotation>,
}

impl Rotation {
    /// The enforcement points where the new key is not enrolled: the approver must be enrolled
    /// there again by hand (`countersign key export`, then the gateway's `approvers add`).
    pub fn needs_enrolment(&self) -> impl Iterator<Item = &EpRotation> {
        self.eps.iter().filter(|e| e.outcome != RotationOutcome::Accepted)
    }
}

/// One enforcement point's answer to a rotation.
#[derive(Debug, Clone, Serialize)]
pub struct EpRotation {
    /// Its `ep` id.
    pub ep: String,
    /// Its base URL.
    pub url: String,
    /// What happened.
    #[serde(flatten)]
    pub outcome: RotationOutcome,
}

/// How a rotation statement fared at one enforcement point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum RotationOutcome {
    /// It answered 200 naming the new key: the new key replaces the old one there.
    Accepted,
    /// It answered with an error (401 unknown or already rotated key, 409 new key already
    /// enrolled, 400 malformed, …), or an unexpected 200. `message` is its text (untrusted).
    Refused {
        /// HTTP status.
        status: u16,
        /// Its message.
        message: String,
    },
    /// It could not be reached.
    Unreachable {
        /// Why.
        error: String,
    },
    /// No statement was sent (no old key, or the enforcement point may not be called).
    NotSent {
        /// Why.
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

    /// Pin a fake enforcement point at `url` (its id derived from a fresh key, as `ep add` would).
    async fn pin(c: &Console, url: &str) -> String {
        crate::testing::pin_key(c, &protocol::generate_key().verifying_key(), url).await
    }

    /// Rotation: every pinned enforcement point gets a statement signed by the old key, for it
    /// alone, naming the new key; one that refuses or cannot be reached is reported, the others
    /// still rotate, and the new key is the keyring's.
    #[tokio::test]
    async fn rotation_statements_signed_by_the_old_key_go_to_every_ep() {
        use crate::testing::serve;
        use protocol::{jws::decode_unverified, Validation};

        let dir = tempfile::tempdir().unwrap();
        let c = Console::open(dir.path(), Arc::new(MemoryStore::default())).await.unwrap();
        let old = c.key().await.unwrap();
        let (taking, took) = serve(|_, _, body| {
            let new = decode_unverified(body)
                .ok()
                .and_then(|c| serde_json::from_value::<Jwk>(c["new_key"].clone()).ok());
            (200, json!({"kid": new.map(|k| k.thumbprint())}).to_string())
        })
        .await;
        let (refusing, _) =
            serve(|_, _, _| (401, r#"{"error":"unauthorized","message":"unknown or rotated key"}"#.into()))
                .await;
        let (lying, _) = serve(|_, _, _| (200, r#"{"kid":"someone-else"}"#.into())).await;
        let a = pin(&c, &taking).await;
        let b = pin(&c, &refusing).await;
        let d = pin(&c, &lying).await;
        let gone = pin(&c, "http://127.0.0.1:1").await;

        let r = c.rotate_key().await.unwrap();
        assert_eq!(r.old_kid.as_deref(), Some(old.kid.as_str()));
        assert_eq!(c.key().await.unwrap().kid, r.key.kid, "the keyring holds the new key");
        let outcome = |ep: &str| r.eps.iter().find(|e| e.ep == ep).unwrap().outcome.clone();
        assert_eq!(outcome(&a), RotationOutcome::Accepted);
        assert_eq!(
            outcome(&b),
            RotationOutcome::Refused { status: 401, message: "unknown or rotated key".into() }
        );
        assert!(matches!(outcome(&d), RotationOutcome::Refused { status: 200, .. }), "{:?}", outcome(&d));
        assert!(matches!(outcome(&gone), RotationOutcome::Unreachable { .. }), "{:?}", outcome(&gone));
        assert_eq!(r.needs_enrolment().count(), 3);
        let recorded: Vec<(String, String)> =
            sqlx::query_as("SELECT ep, detail FROM history WHERE kind = ? ORDER BY seq")
                .bind(HistoryKind::KeyRotationSent.as_str())
                .fetch_all(c.db())
                .await
                .unwrap();
        assert_eq!(recorded.len(), 4, "each answer on record");
        assert!(
            recorded.iter().any(|(ep, d)| *ep == a && d.contains(r#""result":"accepted""#)),
            "{recorded:?}"
        );
        assert!(recorded.iter().any(|(ep, d)| *ep == b && d.contains(r#""status":401"#)), "{recorded:?}");

        let took = took.lock().unwrap().clone();
        assert_eq!(took.len(), 1);
        let (method, path, body) = &took[0];
        assert_eq!((method.as_str(), path.as_str()), ("POST", "/v1/approvers/rotate"));
        let old_key = old.jwk.to_key().unwrap();
        let v = protocol::verify::<RotationClaims>(
            body,
            TYP_ROTATION,
            &old_key,
            &Validation::at(now()).audience(&a).max_lifetime(protocol::AUTH_MAX_LIFETIME_S),
        )
        .expect("signed by the old key, for this enforcement point");
        assert_eq!(v.claims.iss, old.kid);
        assert_eq!(v.claims.new_key.thumbprint(), r.key.kid);
        assert!(v.claims.exp - v.claims.iat <= 300);
        c.verify_history().await.expect("history verifies across the rotation");
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
