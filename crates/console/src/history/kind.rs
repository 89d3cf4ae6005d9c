//! The history's vocabulary: every kind of row, and the typed detail each kind records.
//!
//! The kind strings and the detail JSON are part of the hash chain: rows already stored keep their
//! exact text, so every name here serializes to the text earlier versions wrote, and a detail is
//! written as a JSON object with sorted keys (what `serde_json::json!` produced before).

use countersign_protocol::{Constraints, DataClass, Jwk, Tier, Verdict};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::keys::RotationOutcome;
use crate::{ConsoleError, Result};

/// What a history row records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum HistoryKind {
    /// A verified step-up request was stored.
    #[serde(rename = "request received")]
    RequestReceived,
    /// A token failed verification and was not stored.
    #[serde(rename = "request rejected")]
    RequestRejected,
    /// This console signed a decision.
    #[serde(rename = "decision signed")]
    DecisionSigned,
    /// The enforcement point accepted a decision.
    #[serde(rename = "delivered")]
    Delivered,
    /// The enforcement point refused a decision for good.
    #[serde(rename = "delivery refused")]
    DeliveryRefused,
    /// A pending request reached a terminal state.
    #[serde(rename = "resolved")]
    Resolved,
    /// The first signing key was created.
    #[serde(rename = "key created")]
    KeyCreated,
    /// The signing key was replaced.
    #[serde(rename = "key rotated")]
    KeyRotated,
    /// How one enforcement point answered a rotation statement.
    #[serde(rename = "key rotation sent")]
    KeyRotationSent,
    /// A signed checkpoint over the chain's head.
    #[serde(rename = "checkpoint")]
    Checkpoint,
    /// The approver accepted a history restored from a backup.
    #[serde(rename = "history re-anchored")]
    Reanchored,
}

impl HistoryKind {
    /// Every kind with its stored name.
    pub const ALL: [(HistoryKind, &'static str); 11] = [
        (HistoryKind::RequestReceived, "request received"),
        (HistoryKind::RequestRejected, "request rejected"),
        (HistoryKind::DecisionSigned, "decision signed"),
        (HistoryKind::Delivered, "delivered"),
        (HistoryKind::DeliveryRefused, "delivery refused"),
        (HistoryKind::Resolved, "resolved"),
        (HistoryKind::KeyCreated, "key created"),
        (HistoryKind::KeyRotated, "key rotated"),
        (HistoryKind::KeyRotationSent, "key rotation sent"),
        (HistoryKind::Checkpoint, "checkpoint"),
        (HistoryKind::Reanchored, "history re-anchored"),
    ];

    /// The stored name (the text the chain hashes).
    pub fn as_str(self) -> &'static str {
        Self::ALL.iter().find(|(k, _)| *k == self).map(|(_, s)| *s).unwrap_or_default()
    }

    /// The kind stored as `name`; `None` for a name this version does not know.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|(_, s)| *s == name).map(|(k, _)| *k)
    }
}

impl std::str::FromStr for HistoryKind {
    type Err = ConsoleError;

    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|(_, s)| *s).collect();
            ConsoleError::Invalid(format!("unknown history kind {s:?} (one of: {})", names.join(", ")))
        })
    }
}

/// The terminal state a request reached (a `resolved` row).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum Resolution {
    /// Approved (by the approvals the enforcement point required).
    Approved,
    /// Denied.
    Denied,
    /// Expired before enough approvals.
    Expired,
    /// Withdrawn by the agent or the enforcement point.
    Withdrawn,
}

impl Resolution {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::Approved => "approved",
            Resolution::Denied => "denied",
            Resolution::Expired => "expired",
            Resolution::Withdrawn => "withdrawn",
        }
    }
}

impl std::str::FromStr for Resolution {
    type Err = ConsoleError;

    fn from_str(s: &str) -> Result<Self> {
        serde_json::from_value(Value::String(s.to_string()))
            .map_err(|_| ConsoleError::Invalid(format!("{s:?} is not a terminal request state")))
    }
}

/// `request received`: what the approver saw of a verified request (the signed token included).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Received {
    /// The signed step-up token.
    #[serde(default)]
    pub jwt: String,
    /// Its request digest.
    #[serde(default)]
    pub digest: String,
    /// Workload identity.
    #[serde(default)]
    pub workload: String,
    /// The agent's display name.
    #[serde(default)]
    pub display: String,
    /// The principals it acts for (their `sub`), outermost first.
    #[serde(default)]
    pub on_behalf_of: Vec<String>,
    /// Purpose code.
    #[serde(default)]
    pub purpose: String,
    /// The agent's statement of intent.
    #[serde(default)]
    pub statement: String,
    /// Data class.
    pub class: DataClass,
    /// Tier.
    pub tier: Tier,
    /// `system/environment`.
    #[serde(default)]
    pub target: String,
    /// Why the policy asked for a human.
    #[serde(default)]
    pub policy_reason: String,
}

/// `request rejected`: a token that failed verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejected {
    /// Why it was rejected.
    pub reason: String,
    /// The token as offered.
    pub jwt: String,
}

/// `decision signed`: a decision of this console (the signed token included).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signed {
    /// The decision's id.
    pub jti: String,
    /// Approve or deny.
    pub verdict: Verdict,
    /// The approver's reason.
    #[serde(default)]
    pub reason: String,
    /// The signing key.
    pub kid: String,
    /// The request digest it is bound to.
    pub digest: String,
    /// Narrower constraints on an approval.
    #[serde(default)]
    pub constraints: Option<Constraints>,
    /// The signed decision token.
    pub token: String,
}

/// `delivered` / `delivery refused`: the enforcement point's answer to a decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryAnswer {
    /// The decision's id.
    pub jti: String,
    /// HTTP status.
    pub status: u16,
    /// Its JSON body as it came (untrusted).
    pub answer: Value,
}

/// `resolved`: the terminal state the enforcement point reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolved {
    /// The state reached.
    pub state: Resolution,
}

/// `key created` / `key rotated`: a signing key and the keys it retired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecorded {
    /// Its thumbprint.
    pub kid: String,
    /// Its public key (what checkpoints are verified against).
    pub jwk: Jwk,
    /// The kids it replaced.
    #[serde(default)]
    pub retired: Vec<String>,
}

/// `key rotation sent`: one enforcement point's answer to a rotation statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationSent {
    /// The key rotated away from, when the keyring still had it.
    pub old_kid: Option<String>,
    /// The new key.
    pub new_kid: String,
    /// What the enforcement point answered.
    pub outcome: RotationOutcome,
}

/// `checkpoint`: the chain's head signed with the keyring key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The last row covered.
    pub upto: i64,
    /// That row's hash.
    pub head: String,
    /// The signing key.
    pub kid: String,
    /// Hex Ed25519 signature over the checkpoint message.
    pub sig: String,
}

/// A row of the chain by number and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainPoint {
    /// Row number.
    pub seq: i64,
    /// Its hash.
    pub hash: String,
}

/// `history re-anchored`: what the approver accepted, so the gap stays on record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReanchorRecord {
    /// The checkpoint row the keyring's anchor recorded before.
    pub previous_anchor: ChainPoint,
    /// Rows the history had when it was accepted.
    pub rows: i64,
    /// The first row missing, when the history was shorter than the anchor.
    pub missing_from: Option<i64>,
    /// The anchor's row, when the history differs from there on.
    pub diverged_at: Option<i64>,
}

/// A history row's detail, typed by its kind. Serialized, it is only the detail object (the kind
/// is a column of its own).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum HistoryDetail {
    /// See [`HistoryKind::RequestReceived`].
    RequestReceived(Received),
    /// See [`HistoryKind::RequestRejected`].
    RequestRejected(Rejected),
    /// See [`HistoryKind::DecisionSigned`].
    DecisionSigned(Signed),
    /// See [`HistoryKind::Delivered`].
    Delivered(DeliveryAnswer),
    /// See [`HistoryKind::DeliveryRefused`].
    DeliveryRefused(DeliveryAnswer),
    /// See [`HistoryKind::Resolved`].
    Resolved(Resolved),
    /// See [`HistoryKind::KeyCreated`].
    KeyCreated(KeyRecorded),
    /// See [`HistoryKind::KeyRotated`].
    KeyRotated(KeyRecorded),
    /// See [`HistoryKind::KeyRotationSent`].
    KeyRotationSent(RotationSent),
    /// See [`HistoryKind::Checkpoint`].
    Checkpoint(Checkpoint),
    /// See [`HistoryKind::Reanchored`].
    Reanchored(ReanchorRecord),
    /// A stored row this version cannot read as its kind (a kind it does not know, or a detail of
    /// another shape): kept as it is, never written.
    Unreadable {
        /// The stored kind.
        kind: String,
        /// The stored detail (`null` when not JSON).
        detail: Value,
    },
}

impl HistoryDetail {
    /// Its kind; `None` for [`HistoryDetail::Unreadable`].
    pub fn kind(&self) -> Option<HistoryKind> {
        Some(match self {
            HistoryDetail::RequestReceived(_) => HistoryKind::RequestReceived,
            HistoryDetail::RequestRejected(_) => HistoryKind::RequestRejected,
            HistoryDetail::DecisionSigned(_) => HistoryKind::DecisionSigned,
            HistoryDetail::Delivered(_) => HistoryKind::Delivered,
            HistoryDetail::DeliveryRefused(_) => HistoryKind::DeliveryRefused,
            HistoryDetail::Resolved(_) => HistoryKind::Resolved,
            HistoryDetail::KeyCreated(_) => HistoryKind::KeyCreated,
            HistoryDetail::KeyRotated(_) => HistoryKind::KeyRotated,
            HistoryDetail::KeyRotationSent(_) => HistoryKind::KeyRotationSent,
            HistoryDetail::Checkpoint(_) => HistoryKind::Checkpoint,
            HistoryDetail::Reanchored(_) => HistoryKind::Reanchored,
            HistoryDetail::Unreadable { .. } => return None,
        })
    }

    /// The detail as stored: a JSON object with sorted keys.
    pub fn to_text(&self) -> Result<String> {
        // Through `Value`, whose objects sort their keys: the same text `json!` wrote before.
        let v = serde_json::to_value(self).map_err(|e| ConsoleError::Invalid(e.to_string()))?;
        serde_json::to_string(&v).map_err(|e| ConsoleError::Invalid(e.to_string()))
    }

    /// Read a stored row's detail as its kind's.
    pub fn parse(kind: &str, detail: &str) -> HistoryDetail {
        fn of<T: serde::de::DeserializeOwned>(
            text: &str,
            f: fn(T) -> HistoryDetail,
        ) -> Option<HistoryDetail> {
            serde_json::from_str(text).ok().map(f)
        }
        let typed = match HistoryKind::parse(kind) {
            Some(HistoryKind::RequestReceived) => of(detail, HistoryDetail::RequestReceived),
            Some(HistoryKind::RequestRejected) => of(detail, HistoryDetail::RequestRejected),
            Some(HistoryKind::DecisionSigned) => of(detail, HistoryDetail::DecisionSigned),
            Some(HistoryKind::Delivered) => of(detail, HistoryDetail::Delivered),
            Some(HistoryKind::DeliveryRefused) => of(detail, HistoryDetail::DeliveryRefused),
            Some(HistoryKind::Resolved) => of(detail, HistoryDetail::Resolved),
            Some(HistoryKind::KeyCreated) => of(detail, HistoryDetail::KeyCreated),
            Some(HistoryKind::KeyRotated) => of(detail, HistoryDetail::KeyRotated),
            Some(HistoryKind::KeyRotationSent) => of(detail, HistoryDetail::KeyRotationSent),
            Some(HistoryKind::Checkpoint) => of(detail, HistoryDetail::Checkpoint),
            Some(HistoryKind::Reanchored) => of(detail, HistoryDetail::Reanchored),
            None => None,
        };
        typed.unwrap_or_else(|| HistoryDetail::Unreadable {
            kind: kind.to_string(),
            detail: serde_json::from_str(detail).unwrap_or(Value::Null),
        })
    }
}
