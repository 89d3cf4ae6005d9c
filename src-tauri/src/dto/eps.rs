//! The enforcement-point types that cross IPC: a pinned EP's connection and a preview before pinning.

use countersign_console::ep::Connection;
use serde::Serialize;
use ts_rs::TS;

use super::KeyRef;

/// A pinned enforcement point and its connection.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct EpStatus {
    pub ep: String,
    pub name: String,
    pub url: String,
    pub kid: String,
    pub fingerprint: String,
    pub connection: Connection,
    pub last_error: Option<String>,
    pub pending: u32,
}

/// What an enforcement point says about itself, before it is pinned.
#[derive(Debug, Clone, Serialize, TS)]
pub struct EpPreview {
    pub url: String,
    pub ep: String,
    pub name: String,
    pub keys: Vec<KeyRef>,
}

/// The TypeScript twins of this module's types, as (name, text).
pub(super) fn bindings(cfg: &ts_rs::Config) -> Vec<(String, String)> {
    super::export!(cfg; Connection, EpStatus, EpPreview)
}
