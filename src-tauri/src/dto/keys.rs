//! The key types that cross IPC: the approver's public key (the core's [`KeyInfo`]) and what a
//! rotation did, as the key screen shows it.

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

/// How one enforcement point answered a key rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum RotationResult {
    /// It took the new key: nothing to do there.
    Accepted,
    /// It answered with an error: the new key must be enrolled there by hand.
    Refused,
    /// It could not be reached: the new key must be enrolled there by hand.
    Unreachable,
    /// Nothing was sent (no old key to sign with, or it may not be called): enrol by hand.
    NotSent,
}

/// One enforcement point's part of a key rotation.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct EpRotation {
    pub ep: String,
    /// Its display name (from its well-known document: untrusted text).
    pub name: String,
    pub url: String,
    pub result: RotationResult,
    /// Whether the approver must enroll the new key there by hand.
    pub needs_enrolment: bool,
    /// Why, when it did not accept: its HTTP status and message, or the network error (untrusted
    /// text when it comes from the enforcement point).
    pub reason: Option<String>,
}

/// What a key rotation did: the new key, and each enforcement point's answer.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct RotationReport {
    pub key: KeyInfo,
    pub old_kid: Option<String>,
    pub eps: Vec<EpRotation>,
}

/// The TypeScript twins of this module's types, as (name, text).
pub(super) fn bindings(cfg: &ts_rs::Config) -> Vec<(String, String)> {
    super::export!(cfg; KeyRef, KeyInfo, Jwk, RotationResult, EpRotation, RotationReport)
}
