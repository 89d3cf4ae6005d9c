//! The one IPC error type: `{ code, message }`, where `code` is what the UI branches on.

use countersign_console::ConsoleError;
use serde::Serialize;
use ts_rs::TS;

/// The cases the UI treats differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// No such request, enforcement point or row.
    NotFound,
    /// The input is malformed (bad URL, bad number, unknown verdict…).
    InvalidInput,
    /// A rule refused the action (reason missing, expired, already decided, fingerprint mismatch…).
    Refused,
    /// The OS keyring is locked, missing or refused.
    Keyring,
    /// The enforcement point could not be reached.
    Network,
    /// Anything else; details are in the log.
    Internal,
}

/// An error returned by a command.
#[derive(Debug, Clone, Serialize, TS, thiserror::Error)]
#[error("{message}")]
pub struct IpcError {
    /// What the UI branches on.
    pub code: ErrorCode,
    /// For people.
    pub message: String,
}

impl IpcError {
    /// An error with this code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        IpcError { code, message: message.into() }
    }
}

impl From<ConsoleError> for IpcError {
    fn from(e: ConsoleError) -> Self {
        let code = match &e {
            ConsoleError::NotFound(_) => ErrorCode::NotFound,
            ConsoleError::Invalid(_) | ConsoleError::Ambiguous(_) => ErrorCode::InvalidInput,
            ConsoleError::Refused(_) | ConsoleError::Untrusted(_) | ConsoleError::Protocol(_) => {
                ErrorCode::Refused
            }
            ConsoleError::Keyring(_) => ErrorCode::Keyring,
            ConsoleError::Network { .. } => ErrorCode::Network,
            _ => ErrorCode::Internal,
        };
        if code == ErrorCode::Internal {
            tracing::error!(error = %e, "command failed");
        }
        IpcError::new(code, e.to_string())
    }
}

/// The result type of every command.
pub type IpcResult<T> = Result<T, IpcError>;
