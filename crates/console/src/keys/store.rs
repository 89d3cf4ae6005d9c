//! Where the private seed is kept: the [`SecretStore`] seam, the OS keyring behind it (one
//! cached Secret Service session on Linux), and an in-memory store for unit tests.

use crate::{ConsoleError, Result, Sensitive};

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
