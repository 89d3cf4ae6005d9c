//! Trying the policy offline: `policy eval` (one draft) and `policy test` (a table of cases).

use countersign_protocol::{StepUpDraft, Tier};
use serde::{Deserialize, Serialize};

use super::{Evaluation, Outcome, Policy, PolicyError, PolicyInput};

/// `policy eval`: classify a draft given as I-JSON text, as `workload` (default: the draft's own).
pub fn eval_draft_json(
    policy: &Policy,
    text: &str,
    workload: Option<&str>,
) -> Result<Evaluation, PolicyError> {
    let value = countersign_protocol::ijson::parse(text.trim().as_bytes())
        .map_err(|e| PolicyError::Input(format!("the draft is not I-JSON: {e}")))?;
    let draft: StepUpDraft =
        serde_json::from_value(value).map_err(|e| PolicyError::Input(format!("not a step-up draft: {e}")))?;
    let workload = workload.unwrap_or(&draft.identity.workload);
    policy.evaluate_with_facts(&PolicyInput { workload, draft: &draft })
}

/// One case of a `policy test` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    /// The draft.
    input: serde_json::Value,
    /// The authenticated workload (default: the draft's own).
    #[serde(default)]
    workload: Option<String>,
    expect: Expect,
}

/// What a case must come out as; absent fields are not checked.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    outcome: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    tier: Option<Tier>,
    #[serde(default)]
    approvals_required: Option<u32>,
}

/// The result of one case of a `policy test` table.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    /// The case's name.
    pub name: String,
    /// Whether the decision matched every expected field.
    pub passed: bool,
    /// What was decided, and what was expected when it differs.
    pub detail: String,
}

/// `policy test`: run a table of cases (I-JSON `[{name, input, workload?, expect: {outcome, id?,
/// tier?, approvals_required?}}]`). A malformed table is an error; a draft that does not parse or
/// evaluate is a failed case.
pub fn run_cases(policy: &Policy, text: &str) -> Result<Vec<CaseResult>, PolicyError> {
    let value = countersign_protocol::ijson::parse(text.trim().as_bytes())
        .map_err(|e| PolicyError::Input(format!("the cases are not I-JSON: {e}")))?;
    let cases: Vec<Case> = serde_json::from_value(value).map_err(|e| {
        PolicyError::Input(format!(
            "not a list of {{name, input, expect: {{outcome, tier?, approvals_required?}}}}: {e}"
        ))
    })?;
    if cases.is_empty() {
        return Err(PolicyError::Input("the case table is empty".into()));
    }
    Ok(cases.into_iter().map(|c| run_case(policy, c)).collect())
}

fn run_case(policy: &Policy, case: Case) -> CaseResult {
    let fail = |name: String, detail: String| CaseResult { name, passed: false, detail };
    let draft: StepUpDraft = match serde_json::from_value(case.input) {
        Ok(d) => d,
        Err(e) => return fail(case.name, format!("the input is not a step-up draft: {e}")),
    };
    let workload = case.workload.as_deref().unwrap_or(&draft.identity.workload);
    let decision = match policy.evaluate(&PolicyInput { workload, draft: &draft }) {
        Ok(d) => d,
        Err(e) => return fail(case.name, e.to_string()),
    };
    let (outcome, id, tier, approvals) = match &decision {
        Outcome::Allow { id, .. } => ("allow", id, None, None),
        Outcome::Deny { id, .. } => ("deny", id, None, None),
        Outcome::StepUp { id, tier, approvals_required, .. } => {
            ("step_up", id, Some(*tier), Some(*approvals_required))
        }
    };
    let got = match (tier, approvals) {
        (Some(t), Some(n)) => format!("{outcome} {} x{n} ({id})", t.as_str()),
        _ => format!("{outcome} ({id})"),
    };
    let e = &case.expect;
    let passed = e.outcome == outcome
        && e.id.as_ref().is_none_or(|want| want == id)
        && e.tier.is_none_or(|want| Some(want) == tier)
        && e.approvals_required.is_none_or(|want| Some(want) == approvals);
    let detail = if passed {
        got
    } else {
        let mut want = e.outcome.clone();
        if let Some(t) = e.tier {
            want.push_str(&format!(" {}", t.as_str()));
        }
        if let Some(n) = e.approvals_required {
            want.push_str(&format!(" x{n}"));
        }
        if let Some(id) = &e.id {
            want.push_str(&format!(" ({id})"));
        }
        format!("got {got}, expected {want}")
    };
    CaseResult { name: case.name, passed, detail }
}
