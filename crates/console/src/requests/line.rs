//! What an approver sees of a request in a list: its inbox state and its line, built once from
//! the verified claims when the request is stored.

use countersign_protocol::{DataClass, RequestState, StepUpClaims, Tier};
use serde::{Deserialize, Serialize};

/// Where a request stands for this approver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum InboxState {
    /// Awaiting this approver's decision.
    #[default]
    Pending,
    /// Decided here, but the enforcement point has not answered the decision yet.
    Undelivered,
    /// Approved at the enforcement point.
    Approved,
    /// Denied at the enforcement point.
    Denied,
    /// Its lifetime passed (at the enforcement point, or here while it waited).
    Expired,
    /// The agent withdrew it.
    Withdrawn,
}

impl InboxState {
    /// The state of a stored request (`stored` as its enforcement point last said) at time `now`:
    /// a pending request decided here and not yet delivered is [`InboxState::Undelivered`], one
    /// whose expiry passed is [`InboxState::Expired`].
    pub fn of(stored: RequestState, undelivered: bool, exp: i64, now: i64) -> InboxState {
        match stored {
            RequestState::Pending if undelivered => InboxState::Undelivered,
            RequestState::Pending if exp <= now => InboxState::Expired,
            RequestState::Pending => InboxState::Pending,
            RequestState::Approved => InboxState::Approved,
            RequestState::Denied => InboxState::Denied,
            RequestState::Expired => InboxState::Expired,
            RequestState::Withdrawn => InboxState::Withdrawn,
        }
    }

    /// The state in words, as the CLI prints it.
    pub fn words(self) -> &'static str {
        match self {
            InboxState::Pending => "pending",
            InboxState::Undelivered => "decided, not delivered",
            InboxState::Approved => "approved",
            InboxState::Denied => "denied",
            InboxState::Expired => "expired",
            InboxState::Withdrawn => "withdrawn",
        }
    }
}

/// One request as a line: what the inbox lists and what the detail heads with. Built from the
/// verified claims once, when the request is stored (the stored line cuts the purpose statement
/// to [`RequestLine::STATEMENT_CHARS`]); listing reads it back and parses no claims.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct RequestLine {
    /// Enforcement point id.
    pub ep: String,
    /// Request id.
    pub id: String,
    /// Where it stands for this approver (stored as pending; set when read).
    pub state: InboxState,
    /// Tier set by the enforcement point's policy (typed in the verified claims: a request with a
    /// tier this console does not know never verifies, so none is stored).
    pub tier: Tier,
    /// Workload identity.
    pub workload: String,
    /// The agent's display name.
    pub agent: String,
    /// Display names (or subjects) of those it acts for, outermost first.
    pub on_behalf_of: Vec<String>,
    /// Purpose code.
    pub purpose_code: String,
    /// The purpose statement (cut in the inbox; whole in a request's detail).
    pub purpose_statement: String,
    /// Data class the policy judged by.
    pub data_class: DataClass,
    /// Declared data categories.
    pub categories: Vec<String>,
    /// Target system.
    pub system: String,
    /// Target environment.
    pub environment: String,
    /// Issued at (seconds since epoch).
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub iat: i64,
    /// Expiry (seconds since epoch).
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub exp: i64,
    /// Distinct approvals the policy requires.
    pub approvals_required: u32,
    /// Whether the critical-tier binding code is required.
    pub binding_required: bool,
    /// How many display-safety warnings the request's text raises.
    pub warning_count: u32,
}

impl RequestLine {
    /// Longest purpose statement kept for a list line.
    pub const STATEMENT_CHARS: usize = 280;

    /// The line of verified claims, with the purpose statement whole, as pending.
    pub fn of(c: &StepUpClaims, warning_count: usize) -> RequestLine {
        RequestLine {
            ep: c.iss.clone(),
            id: c.jti.clone(),
            state: InboxState::Pending,
            tier: c.policy.tier,
            workload: c.identity.workload.clone(),
            agent: c.identity.display.clone(),
            on_behalf_of: c.identity.on_behalf_of.iter().map(|p| p.display.clone()).collect(),
            purpose_code: c.purpose.code.clone(),
            purpose_statement: c.purpose.statement.clone(),
            data_class: c.data.class,
            categories: c.data.categories.clone(),
            system: c.target.system.clone(),
            environment: c.target.environment.clone(),
            iat: c.iat,
            exp: c.exp,
            approvals_required: c.policy.approvals_required,
            binding_required: c.binding.as_ref().is_some_and(|b| b.required),
            warning_count: warning_count as u32,
        }
    }

    /// The line for a list: the purpose statement cut to [`RequestLine::STATEMENT_CHARS`]
    /// characters (the detail shows it whole).
    pub fn for_list(mut self) -> RequestLine {
        if let Some((cut, _)) = self.purpose_statement.char_indices().nth(Self::STATEMENT_CHARS) {
            self.purpose_statement = format!("{}…", &self.purpose_statement[..cut]);
        }
        self
    }
}
