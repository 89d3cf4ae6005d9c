//! The Countersign console without a window.
//!
//! [`Console`] is what the `countersign` CLI and the desktop app both drive: it owns the profile
//! (directory, history database, keyring entry), pins enforcement points, receives and verifies
//! step-up requests, signs decisions with the keyring key, delivers them through a durable outbox,
//! and keeps the hash-chained review history.
//!
//! Invariants kept here (not in any front end):
//! - a request that does not verify against the pinned key is never stored as a request, only
//!   recorded as rejected;
//! - nothing is signed for a request that is expired, already decided, or whose digest differs
//!   from what was stored and shown;
//! - the private key exists only in the OS keyring and, during a signature, in zeroized memory;
//! - a decision and its outbox row are committed before the first delivery attempt.

pub mod decide;
pub mod display;
pub mod ep;
pub mod error;
pub mod history;
pub mod keys;
pub mod notify;
pub mod profile;
pub mod requests;
pub mod review;
pub mod secret;
pub mod settings;
pub mod sync;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use decide::{DecisionInput, DecisionOutcome};
pub use error::{ConsoleError, Result};
pub use keys::{KeyInfo, OsKeyring, SecretStore};
pub use profile::Profile;
pub use secret::Sensitive;

/// Connect timeout for every call to an enforcement point.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest silence on a connection; about three of the gateway's 15 s SSE keep-alives.
pub const READ_TIMEOUT: Duration = Duration::from_secs(45);
/// Total timeout of ordinary (non-streaming) calls.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The console core over one profile. Cheap to clone: clones share the database pool, the
/// keyring store and the HTTP client.
#[derive(Clone, Debug)]
pub struct Console {
    profile: Arc<Profile>,
    secrets: Arc<dyn SecretStore>,
    http: reqwest::Client,
    /// One checkpoint (and keyring anchor write) at a time in this process.
    checkpointing: Arc<tokio::sync::Mutex<()>>,
}

impl Console {
    /// Open (creating if needed) the profile in `dir`, with private keys kept in `secrets`.
    pub async fn open(dir: &Path, secrets: Arc<dyn SecretStore>) -> Result<Console> {
        let profile = Profile::open(dir).await?;
        // No total timeout: it would cut long-lived SSE streams. Ordinary calls set their own.
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .build()
            .map_err(|e| ConsoleError::network("(client)", e))?;
        Ok(Console { profile: Arc::new(profile), secrets, http, checkpointing: Default::default() })
    }

    /// The profile this console works on.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    pub(crate) fn db(&self) -> &sqlx::SqlitePool {
        &self.profile.db
    }

    /// Copy what the write-ahead log holds back into the database file without blocking anyone
    /// (`PRAGMA wal_checkpoint(PASSIVE)`). SQLite's automatic checkpoints are off so that none
    /// stalls a commit on the event path; the watch loop calls this every couple of seconds, the
    /// CLI before it exits, and opening a profile does it once.
    pub async fn fold_wal(&self) -> Result<()> {
        sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(self.db()).await?;
        Ok(())
    }

    /// A durable write transaction (synchronous FULL: its commit is fsync'd) on the process's one
    /// writer connection. It takes SQLite's write lock at once (`BEGIN IMMEDIATE`), so that
    /// concurrent processes on one profile (say `watch` and `approve`) queue on the busy timeout
    /// instead of failing when a read-then-append transaction is overtaken.
    pub(crate) async fn write_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(self.profile.writer.begin_with("PRAGMA synchronous = FULL; BEGIN IMMEDIATE").await?)
    }

    /// A write transaction like [`Console::write_tx`] whose commit is not fsync'd (synchronous
    /// NORMAL in WAL mode: atomic and consistent, durable at the next FULL commit or checkpoint).
    /// Only for what the enforcement point will tell us again if a power cut loses it: a received
    /// request (backfilled on the next connect), a resolution (re-read on the next sync), a rejection,
    /// a delivery's answer (the outbox row then survives, and a resend of the same token gets the
    /// same answer). Decisions, checkpoints and keys always commit with [`Console::write_tx`], whose
    /// fsync also makes every earlier relaxed commit durable: the WAL is synced in order.
    pub(crate) async fn relaxed_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(self.profile.writer.begin_with("PRAGMA synchronous = NORMAL; BEGIN IMMEDIATE").await?)
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}
