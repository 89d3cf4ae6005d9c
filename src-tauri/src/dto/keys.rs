//! The key types that cross IPC: the approver's public key (the core's [`KeyInfo`]) and what a
//! rotation did, as the key screen shows it.

pub use countersign_console::keys::{EpRotation, RotationOutcome};
pub use countersign_console::KeyInfo;
use countersign_protocol::Jwk;
use serde::Serialize;
use ts_rs::TS;

/// A key id and its fingerprint.
#[derive(Debug, Clone, Serialize, TS)]
pub struct KeyRef {
    pub kid: String,
    pub fingerprint: String,
}

/// One enforcement point's part of a key rotation: the core's answer (its `result`, and why when
/// it did not take the new key), with the enforcement point's display name.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct NamedEpRotation {
    #[serde(flatten)]
    pub rotation: EpRotation,
    /// Its display name (from its well-known document: untrusted text).
    pub name: String,
    /// Whether the approver must enroll the new key there by hand.
    pub needs_enrolment: bool,
}

/// What a key rotation did: the new key, and each enforcement point's answer.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct RotationReport {
    pub key: KeyInfo,
    pub old_kid: Option<String>,
    pub eps: Vec<NamedEpRotation>,
}

/// The TypeScript twins of this module's types, as (name, text).
pub(super) fn bindings(cfg: &ts_rs::Config) -> Vec<(String, String)> {
    super::export!(cfg; KeyRef, KeyInfo, Jwk, RotationOutcome, EpRotation, NamedEpRotation, RotationReport)
}
