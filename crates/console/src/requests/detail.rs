//! Everything an approver reads about one request before deciding, built from the verified
//! claims: the CLI's `show` and the desktop's detail pane read this one type.

use countersign_protocol::{reason_required, Principal, StepUpClaims, Verdict};
use serde::Serialize;
use serde_json::{json, Value};

use super::line::RequestLine;
use crate::display::{warnings, Warning};

/// One step of the action chain, ready to show.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct ActionView {
    /// Position in the chain, from 0.
    pub index: u32,
    /// Tool name.
    pub tool: String,
    /// Operation within the tool.
    pub operation: Option<String>,
    /// The specific resource, if any.
    pub target: Option<String>,
    /// Whether the step can be undone.
    pub reversible: bool,
    /// Data types the step touches.
    pub datatypes: Vec<String>,
    /// Arguments as pretty JSON text (shown as text, never interpreted).
    pub args_json: String,
}

/// This approver's latest decision on a request.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct DecisionView {
    /// Approve or deny.
    pub verdict: Verdict,
    /// The reason given.
    pub reason: String,
    /// Whether the enforcement point answered it.
    pub delivered: bool,
    /// The enforcement point's answer in words.
    pub answer: Option<String>,
    /// When it was signed (seconds since epoch).
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub signed_at: i64,
    /// NULL until delivered, then `accepted` or `refused` (the CLI prints it).
    #[serde(skip)]
    pub outcome: Option<String>,
    /// The enforcement point's answer as it sent it (the CLI's JSON carries it).
    #[serde(skip)]
    pub answer_body: Option<String>,
}

/// A stored request, whole.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct RequestDetail {
    /// Its line, with the purpose statement whole (a front end shows it beside its own fields).
    #[serde(skip)]
    pub line: RequestLine,
    /// The verified claims.
    #[serde(skip)]
    pub claims: StepUpClaims,
    /// The claims exactly as signed (with any fields [`StepUpClaims`] does not name).
    #[serde(skip)]
    pub raw: Value,
    /// Seconds left before expiry (0 when expired).
    #[serde(skip)]
    pub seconds_left: i64,
    /// Those the agent acts for, outermost first.
    pub on_behalf_of: Vec<Principal>,
    /// The kind of credential the agent presented, if reported.
    pub credential_kind: Option<String>,
    /// The action chain.
    pub actions: Vec<ActionView>,
    /// The policy rule that asked for a human.
    pub policy_id: String,
    /// Why it asked.
    pub policy_reason: String,
    /// Display-safety findings over every string of the signed claims.
    pub warnings: Vec<Warning>,
    /// This approver's latest decision, if any.
    pub decision: Option<DecisionView>,
    /// Whether approving needs a written reason (the tier's rule).
    pub reason_required_to_approve: bool,
    /// Request digest (what a decision is bound to).
    pub digest: String,
    /// The original signed token.
    pub jwt: String,
    /// The signed claims as pretty JSON text.
    pub claims_json: String,
}

impl RequestDetail {
    /// The detail of verified claims `raw` (typed: `claims`), as they stand (`line.state`) at `now`.
    pub fn of(
        mut line: RequestLine,
        claims: StepUpClaims,
        raw: Value,
        decision: Option<DecisionView>,
        digest: String,
        jwt: String,
        now: i64,
    ) -> RequestDetail {
        let warnings = warnings(&raw);
        line.warning_count = warnings.len() as u32;
        RequestDetail {
            seconds_left: (line.exp - now).max(0),
            on_behalf_of: claims.identity.on_behalf_of.clone(),
            credential_kind: claims.identity.credential.as_ref().map(|c| c.kind.clone()),
            actions: claims
                .actions
                .iter()
                .enumerate()
                .map(|(i, a)| ActionView {
                    index: i as u32,
                    tool: a.tool.clone(),
                    operation: a.operation.clone(),
                    target: a.target.clone(),
                    reversible: a.reversible,
                    datatypes: a.datatypes.clone().unwrap_or_default(),
                    args_json: serde_json::to_string_pretty(&raw["actions"][i]["args"]).unwrap_or_default(),
                })
                .collect(),
            policy_id: claims.policy.id.clone(),
            policy_reason: claims.policy.reason.clone(),
            reason_required_to_approve: reason_required(Verdict::Approve, claims.policy.tier),
            claims_json: serde_json::to_string_pretty(&raw).unwrap_or_default(),
            warnings,
            decision,
            digest,
            jwt,
            line,
            claims,
            raw,
        }
    }

    /// The document `countersign show --json` and `pending --json` print (the CLI's contract:
    /// snake_case, the state and warnings in words, the claims as signed).
    pub fn cli_json(&self) -> Value {
        let l = &self.line;
        json!({
            "ep": l.ep, "id": l.id, "state": l.state.words(), "tier": l.tier.as_str(), "workload": l.workload,
            "exp": l.exp, "seconds_left": self.seconds_left, "digest": self.digest,
            "decision": self.decision.as_ref().map(|d| json!({
                "verdict": d.verdict, "reason": d.reason, "outcome": d.outcome,
                "answer": d.answer_body, "signed_at": d.signed_at,
            })),
            "warnings": self.warnings.iter().map(Warning::message).collect::<Vec<_>>(),
            "claims": self.raw, "jwt": self.jwt,
        })
    }
}
