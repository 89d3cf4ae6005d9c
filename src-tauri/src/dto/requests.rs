//! The request types that cross IPC: the core's inbox line and detail wrapped with what only the
//! shell knows (the enforcement point's name, the flood flag), the decision asked and its result.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

pub use countersign_console::display::{Warning, WarningKind};
pub use countersign_console::requests::{ActionView, DecisionView, InboxState, RequestLine};
pub use countersign_protocol::{DataClass, Principal, Tier, Verdict};

/// A line of the inbox: the core's line, with what only the shell knows beside it.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct RequestSummary {
    /// The line as the core built it.
    #[serde(flatten)]
    pub line: RequestLine,
    /// The enforcement point's display name (its id when it has none).
    pub ep_name: String,
    /// Whether the request's workload is flooding right now (its notifications are folded).
    pub flood: bool,
}

/// A page of the inbox and the whole inbox's counts.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct InboxPage {
    /// The lines asked for, most urgent first (tier, then time left, then id).
    pub rows: Vec<RequestSummary>,
    /// Index of the first line in the whole inbox.
    pub offset: u32,
    /// Lines in the whole inbox.
    pub total: u32,
    /// Of those, the ones awaiting this approver's decision.
    pub pending: u32,
    /// The soonest expiry (Unix seconds) in the whole inbox, if any.
    #[ts(type = "number | null")]
    pub next_expiry: Option<i64>,
}

/// Everything the approver needs about one request: its line (with the purpose statement whole)
/// as the inbox shows it, and the core's detail.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct RequestDetail {
    /// The request's line.
    pub summary: RequestSummary,
    /// The rest of what the core knows of it.
    #[serde(flatten)]
    pub request: countersign_console::requests::RequestDetail,
}

/// Which request: request ids are unique only per enforcement point (another one may reuse an id,
/// by mistake or on purpose), so the UI addresses every request by both. Also the payload of the
/// `open-request` event (a notification click).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct RequestRef {
    /// The enforcement point's id.
    pub ep: String,
    /// The request's id there.
    pub id: String,
}

/// What the UI asks: approve or deny request `id` of enforcement point `ep` with this reason and
/// these constraints.
#[derive(Debug, Clone, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct DecideArgs {
    pub ep: String,
    pub id: String,
    pub verdict: Verdict,
    pub reason: String,
    #[ts(type = "number | null")]
    pub ttl_s: Option<u64>,
    pub max_uses: Option<u32>,
    pub binding_code: Option<String>,
}

/// What became of a signed decision on its first delivery attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryOutcome {
    /// The enforcement point took it.
    Accepted,
    /// The enforcement point answered, refusing it.
    Refused,
    /// Not delivered yet: signed, saved, and retried.
    Queued,
}

/// What became of a decision.
#[derive(Debug, Clone, Serialize, TS)]
pub struct DecisionResult {
    /// Where its delivery stands.
    pub outcome: DeliveryOutcome,
    /// The same in words, with the enforcement point's reason or the error.
    pub message: String,
}

/// The TypeScript twins of this module's types, as (name, text).
pub(super) fn bindings(cfg: &ts_rs::Config) -> Vec<(String, String)> {
    super::export!(cfg; Tier, Verdict, DataClass, InboxState, Warning, WarningKind, RequestSummary, InboxPage, Principal, ActionView, DecisionView, RequestDetail, RequestRef, DecideArgs, DeliveryOutcome, DecisionResult)
}
