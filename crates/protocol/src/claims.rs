//! Typed claims of the four Countersign tokens, and the agent's step-up draft.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `typ` of a step-up request signed by an enforcement point.
pub const TYP_STEP_UP: &str = "countersign-step-up+jwt";
/// `typ` of a decision signed by an approver.
pub const TYP_DECISION: &str = "countersign-decision+jwt";
/// `typ` of an approver's short-lived authentication token.
pub const TYP_AUTH: &str = "countersign-auth+jwt";
/// `typ` of a grant issued by an enforcement point after approval.
pub const TYP_GRANT: &str = "countersign-grant+jwt";
/// `typ` of a key rotation statement (signed by the old key, naming the new one).
pub const TYP_ROTATION: &str = "countersign-rotation+jwt";

/// Longest lifetime of an approver auth token, in seconds.
pub const AUTH_MAX_LIFETIME_S: i64 = 300;

/// Sensitivity of the data an action touches, ordered from least to most sensitive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum DataClass {
    /// Public data.
    Public,
    /// Internal data.
    Internal,
    /// Confidential data.
    Confidential,
    /// Restricted data (regulated, secrets).
    Restricted,
}

impl DataClass {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            DataClass::Public => "public",
            DataClass::Internal => "internal",
            DataClass::Confidential => "confidential",
            DataClass::Restricted => "restricted",
        }
    }
}

/// Risk tier set by the enforcement point's policy, ordered from least to most risky.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Low risk.
    Low,
    /// Medium risk.
    Medium,
    /// High risk: a reason is required to approve.
    High,
    /// Critical risk: a reason and the binding code are required to approve.
    Critical,
}

impl Tier {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Low => "low",
            Tier::Medium => "medium",
            Tier::High => "high",
            Tier::Critical => "critical",
        }
    }
}

/// Where a step-up request stands at its enforcement point (`state` in its answers and events).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum RequestState {
    /// Awaiting the approvals its policy requires.
    Pending,
    /// Approved: a grant was issued.
    Approved,
    /// Denied by an approver.
    Denied,
    /// Its lifetime passed before it was decided.
    Expired,
    /// The agent withdrew it.
    Withdrawn,
}

impl RequestState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::Pending => "pending",
            RequestState::Approved => "approved",
            RequestState::Denied => "denied",
            RequestState::Expired => "expired",
            RequestState::Withdrawn => "withdrawn",
        }
    }

    /// Whether the request can no longer change.
    pub fn is_terminal(self) -> bool {
        self != RequestState::Pending
    }
}

impl std::str::FromStr for RequestState {
    type Err = String;

    /// The state of its wire name; anything else is not a state.
    fn from_str(s: &str) -> Result<Self, String> {
        [
            RequestState::Pending,
            RequestState::Approved,
            RequestState::Denied,
            RequestState::Expired,
            RequestState::Withdrawn,
        ]
        .into_iter()
        .find(|state| state.as_str() == s)
        .ok_or_else(|| format!("unknown request state {s:?}"))
    }
}

/// Someone an agent acts for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Principal {
    /// Stable subject id (e.g. an e-mail address).
    pub sub: String,
    /// Display name.
    pub display: String,
}

/// The credential the agent presented to the enforcement point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    /// Kind of credential (e.g. `x509-svid`, `jwt-svid`, `oauth`).
    pub kind: String,
    /// When it expires (RFC 3339), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// Who is acting, and for whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Workload identity, `spiffe://…`.
    pub workload: String,
    /// Display name of the agent.
    pub display: String,
    /// The chain of principals the agent acts for, outermost first.
    #[serde(default)]
    pub on_behalf_of: Vec<Principal>,
    /// The credential presented, if reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<Credential>,
}

/// The declared intent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Purpose {
    /// Machine-readable purpose code (e.g. `support.ticket`).
    pub code: String,
    /// The agent's own statement of intent.
    pub statement: String,
}

/// What data the request touches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataSpec {
    /// Sensitivity class.
    pub class: DataClass,
    /// Categories such as `pii`, `pci`, `phi`, `secrets`.
    #[serde(default)]
    pub categories: Vec<String>,
}

/// The system acted upon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// System name, e.g. `payments-api`.
    pub system: String,
    /// Environment, e.g. `production`.
    pub environment: String,
}

/// One step of the proposed action chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// Tool name.
    pub tool: String,
    /// Operation within the tool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// Arguments exactly as the agent proposed them.
    #[serde(default)]
    pub args: Map<String, Value>,
    /// The specific resource, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Whether the step can be undone.
    pub reversible: bool,
    /// Data types the step touches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datatypes: Option<Vec<String>>,
}

/// The enforcement point's policy verdict, set by the EP (never by the agent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyClaims {
    /// Policy rule id.
    pub id: String,
    /// Why a human is needed.
    pub reason: String,
    /// Risk tier.
    pub tier: Tier,
    /// Distinct approvals needed.
    pub approvals_required: u32,
}

/// Number matching for critical requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    /// The decision must carry the code the agent's principal reads to the approver.
    pub required: bool,
}

/// What an agent submits to `POST /v1/step-ups`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepUpDraft {
    /// Who is acting (the workload must match the agent's credential).
    pub identity: Identity,
    /// Why.
    pub purpose: Purpose,
    /// On what data.
    pub data: DataSpec,
    /// Against which system.
    pub target: Target,
    /// The ordered chain of actions.
    pub actions: Vec<Action>,
    /// Requested lifetime of the request in seconds (the EP caps it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_s: Option<u64>,
}

/// The claims of a step-up request (`typ: countersign-step-up+jwt`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepUpClaims {
    /// Enforcement point id.
    pub iss: String,
    /// Request id.
    pub jti: String,
    /// Created (seconds since epoch).
    pub iat: i64,
    /// Expires (seconds since epoch); deny when passed.
    pub exp: i64,
    /// Who is acting, and for whom.
    pub identity: Identity,
    /// Declared purpose.
    pub purpose: Purpose,
    /// Data touched.
    pub data: DataSpec,
    /// System acted upon.
    pub target: Target,
    /// The ordered action chain.
    pub actions: Vec<Action>,
    /// The EP's policy verdict.
    pub policy: PolicyClaims,
    /// Number matching requirement (critical tier).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding: Option<Binding>,
}

/// Approve or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Let the agent proceed.
    Approve,
    /// Refuse.
    Deny,
}

/// An approval narrower than what was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Constraints {
    /// Lifetime of the grant, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_s: Option<u64>,
    /// How many times the grant may be used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_uses: Option<u32>,
}

/// The claims of a decision (`typ: countersign-decision+jwt`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionClaims {
    /// The approver's key id.
    pub iss: String,
    /// The enforcement point id.
    pub aud: String,
    /// The request id.
    pub sub: String,
    /// Signed at.
    pub iat: i64,
    /// Expires; never after the request's `exp`.
    pub exp: i64,
    /// Unique id of this decision.
    pub jti: String,
    /// The request digest: the decision is bound to exactly what was shown.
    pub digest: String,
    /// Approve or deny.
    pub decision: Verdict,
    /// Free text; required to deny and to approve high/critical.
    #[serde(default)]
    pub reason: String,
    /// Narrower constraints on an approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraints: Option<Constraints>,
    /// The code the approver typed, when the request requires binding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding_code: Option<String>,
}

/// The claims of an approver's authentication token (`typ: countersign-auth+jwt`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthClaims {
    /// The approver's key id.
    pub iss: String,
    /// The enforcement point id.
    pub aud: String,
    /// Issued at.
    pub iat: i64,
    /// Expires, at most 5 minutes after `iat`.
    pub exp: i64,
    /// Unique id.
    pub jti: String,
}

/// The claims of a grant (`typ: countersign-grant+jwt`): the just-in-time credential the agent
/// presents to the target system after approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantClaims {
    /// The enforcement point id.
    pub iss: String,
    /// The workload the grant is for.
    pub sub: String,
    /// The target system.
    pub aud: String,
    /// The environment the grant is valid in (the target system refuses it elsewhere).
    pub environment: String,
    /// Issued at.
    pub iat: i64,
    /// Expires.
    pub exp: i64,
    /// Unique id.
    pub jti: String,
    /// The request id.
    pub request: String,
    /// The digest of the approved request.
    pub digest: String,
    /// How many times the grant may be used; the gateway counts uses when the target system
    /// redeems the grant (`POST /v1/grants/redeem`).
    pub max_uses: u32,
}

/// The claims of a key rotation statement (`typ: countersign-rotation+jwt`), signed by the
/// approver's current key: from its acceptance on, the old key can no longer decide or
/// authenticate at that enforcement point, and `new_key` is the principal's one active key.
/// What the old key signed before stays verifiable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationClaims {
    /// The old key's id (the signer).
    pub iss: String,
    /// The enforcement point id.
    pub aud: String,
    /// Issued at.
    pub iat: i64,
    /// Expires, at most 5 minutes after `iat`.
    pub exp: i64,
    /// Unique id.
    pub jti: String,
    /// The new public key.
    pub new_key: crate::Jwk,
}

/// Whether a decision with this verdict on a request of this tier needs a written reason.
pub fn reason_required(verdict: Verdict, tier: Tier) -> bool {
    verdict == Verdict::Deny || tier >= Tier::High
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_follow_risk() {
        assert!(Tier::Critical > Tier::High && Tier::High > Tier::Medium && Tier::Medium > Tier::Low);
        assert!(DataClass::Restricted > DataClass::Confidential && DataClass::Internal > DataClass::Public);
    }

    #[test]
    fn request_states_read_their_wire_names() {
        for name in ["pending", "approved", "denied", "expired", "withdrawn"] {
            let state: RequestState = name.parse().unwrap();
            assert_eq!(state.as_str(), name);
            assert_eq!(serde_json::to_value(state).unwrap(), name);
        }
        assert!("decided".parse::<RequestState>().is_err());
        assert!(!RequestState::Pending.is_terminal() && RequestState::Withdrawn.is_terminal());
    }

    #[test]
    fn reason_rules() {
        assert!(reason_required(Verdict::Deny, Tier::Low));
        assert!(!reason_required(Verdict::Approve, Tier::Medium));
        assert!(reason_required(Verdict::Approve, Tier::High));
    }
}
