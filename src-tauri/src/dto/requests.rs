//! The request types that cross IPC: the inbox line, the detail, the decision asked and its result.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

pub use countersign_protocol::{DataClass, Tier, Verdict};

/// A line of the inbox.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct RequestSummary {
    pub ep: String,
    pub ep_name: String,
    pub id: String,
    /// pending | approved | denied | expired | withdrawn | undelivered
    pub state: String,
    pub tier: Tier,
    pub workload: String,
    pub agent: String,
    pub on_behalf_of: Vec<String>,
    pub purpose_code: String,
    pub purpose_statement: String,
    pub data_class: String,
    pub categories: Vec<String>,
    pub system: String,
    pub environment: String,
    #[ts(type = "number")]
    pub iat: i64,
    #[ts(type = "number")]
    pub exp: i64,
    pub approvals_required: u32,
    pub binding_required: bool,
    pub warning_count: u32,
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

/// Someone an agent acts for.
#[derive(Debug, Clone, Serialize, TS)]
pub struct Principal {
    pub sub: String,
    pub display: String,
}

/// One step of the action chain, ready to show.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ActionView {
    pub index: u32,
    pub tool: String,
    pub operation: Option<String>,
    pub target: Option<String>,
    pub reversible: bool,
    pub datatypes: Vec<String>,
    /// Arguments as pretty JSON text (shown as text, never interpreted).
    pub args_json: String,
}

/// This approver's decision on a request.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct DecisionView {
    pub verdict: Verdict,
    pub reason: String,
    pub delivered: bool,
    pub answer: Option<String>,
    #[ts(type = "number")]
    pub signed_at: i64,
}

/// Everything the approver needs about one request.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct RequestDetail {
    pub summary: RequestSummary,
    pub workload_display: String,
    pub on_behalf_of: Vec<Principal>,
    pub credential_kind: Option<String>,
    pub actions: Vec<ActionView>,
    pub policy_id: String,
    pub policy_reason: String,
    pub warnings: Vec<String>,
    pub decision: Option<DecisionView>,
    pub reason_required_to_approve: bool,
    pub digest: String,
    pub jwt: String,
    pub claims_json: String,
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

/// What became of a decision.
#[derive(Debug, Clone, Serialize, TS)]
pub struct DecisionResult {
    pub ep: String,
    pub id: String,
    pub state: String,
    pub delivered: bool,
    pub message: String,
}

/// The TypeScript twins of this module's types, as (name, text).
pub(super) fn bindings(cfg: &ts_rs::Config) -> Vec<(String, String)> {
    super::export!(cfg; Tier, Verdict, DataClass, RequestSummary, InboxPage, Principal, ActionView, DecisionView, RequestDetail, RequestRef, DecideArgs, DecisionResult)
}
