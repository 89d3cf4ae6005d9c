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

impl ConsoleError {
    /// The process exit code for this error: 3 keyring, 4 refused by a rule, 5 history tampered,
    /// 6 network, 7 untrusted key, 8 not found, 1 anything else (2 is clap's usage error).
    pub fn exit_code(&self) -> i32 {
        match self {
            ConsoleError::Keyring(_) => 3,
            ConsoleError::Refused(_) => 4,
            ConsoleError::Tampered { .. } => 5,
            ConsoleError::Network { .. } => 6,
            ConsoleError::Untrusted(_) => 7,
            ConsoleError::NotFound(_) | ConsoleError::Ambiguous(_) => 8,
            _ => 1,
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
