//! The console core's error type. Every variant maps to a process exit code so scripts can branch
//! on the kind of failure without reading messages.

use countersign_protocol::ProtocolError;

/// Everything the console core can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// The OS keyring is locked, missing, or refused the operation; there is never a file fallback.
    #[error("keyring: {0}")]
    Keyring(String),
    /// The profile directory or its files could not be read or written.
    #[error("profile {path}: {message}")]
    Profile {
        /// The file or directory concerned.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The history database failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// The history database could not be migrated.
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A token or key failed the protocol's checks.
    #[error("protocol: {0}")]
    Protocol(#[from] ProtocolError),
    /// An enforcement point could not be reached or answered something unusable.
    #[error("enforcement point {url}: {message}")]
    Network {
        /// Where.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The enforcement point's key does not match what the user said to trust (or nothing was said).
    #[error("{0}")]
    Untrusted(String),
    /// No such request, enforcement point or key.
    #[error("not found: {0}")]
    NotFound(String),
    /// The request id matches requests from several enforcement points.
    #[error("ambiguous: {0}")]
    Ambiguous(String),
    /// A rule forbids signing this decision; nothing was signed or changed.
    #[error("refused: {0}")]
    Refused(String),
    /// The review history failed verification.
    #[error("history verification failed at row {seq}: {message}")]
    Tampered {
        /// The first bad row.
        seq: i64,
        /// What does not match.
        message: String,
    },
    /// The user's input is not valid.
    #[error("invalid input: {0}")]
    Invalid(String),
}

/// The `countersign` CLI's exit codes, one per kind of outcome a script branches on (2 is clap's
/// usage error, 0 success).
pub mod exit {
    /// Any other failure.
    pub const OTHER: u8 = 1;
    /// The keyring is locked, missing, or refused.
    pub const KEYRING: u8 = 3;
    /// A rule refused the decision: this console's, or the enforcement point's answer to it.
    pub const REFUSED: u8 = 4;
    /// The history failed verification.
    pub const TAMPERED: u8 = 5;
    /// An enforcement point was not reached or did not take what was sent (a decision stays
    /// queued for `sync`, a rotated key must be enrolled by hand).
    pub const NETWORK: u8 = 6;
    /// The enforcement point's key is not the one trusted.
    pub const UNTRUSTED: u8 = 7;
    /// No such request, enforcement point or key, or an ambiguous id.
    pub const NOT_FOUND: u8 = 8;
}

impl ConsoleError {
    /// The process exit code for this error (see [`exit`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            ConsoleError::Keyring(_) => exit::KEYRING,
            ConsoleError::Refused(_) => exit::REFUSED,
            ConsoleError::Tampered { .. } => exit::TAMPERED,
            ConsoleError::Network { .. } => exit::NETWORK,
            ConsoleError::Untrusted(_) => exit::UNTRUSTED,
            ConsoleError::NotFound(_) | ConsoleError::Ambiguous(_) => exit::NOT_FOUND,
            _ => exit::OTHER,
        }
    }

    pub(crate) fn profile(path: &std::path::Path, e: impl std::fmt::Display) -> Self {
        ConsoleError::Profile { path: path.display().to_string(), message: e.to_string() }
    }

    pub(crate) fn network(url: &str, e: impl std::fmt::Display) -> Self {
        ConsoleError::Network { url: url.to_string(), message: e.to_string() }
    }
}

/// Shorthand for results of the console core.
pub type Result<T, E = ConsoleError> = std::result::Result<T, E>;
