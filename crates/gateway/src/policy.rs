//! Runtime classification as policy as code: a Rego policy evaluated with `regorus`.
//!
//! The policy sees the authenticated workload identity, the declared purpose, the data class, the
//! target and the action chain, and answers `data.countersign.decision`:
//! `{ "outcome": "allow"|"deny"|"step_up", "id", "reason", "tier"?, "approvals_required"? }`.
//! The agent's own claims about risk are never consulted: only the policy sets tier and quorum.

use std::sync::Mutex;

use countersign_protocol::{StepUpDraft, Tier};
use serde::{Deserialize, Serialize};

/// The policy that ships with the gateway.
pub const DEFAULT_POLICY: &str = include_str!("../policy/default.rego");

/// The rule the gateway evaluates.
pub const DECISION_RULE: &str = "data.countersign.decision";

/// A policy could not be loaded or evaluated.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The Rego source did not parse or compile.
    #[error("policy failed to load: {0}")]
    Load(String),
    /// Evaluation failed or gave no well-formed decision.
    #[error("policy evaluation failed: {0}")]
    Eval(String),
}

/// What the policy sees.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyInput<'a> {
    /// The workload identity the agent authenticated as (not what it claims).
    pub workload: &'a str,
    /// The draft as submitted (its `identity.workload` equals `workload`).
    #[serde(flatten)]
    pub draft: &'a StepUpDraft,
}

/// What the policy decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Let it through without a human.
    Allow {
        /// Rule id.
        id: String,
        /// Why.
        reason: String,
    },
    /// Refuse without a human.
    Deny {
        /// Rule id.
        id: String,
        /// Why.
        reason: String,
    },
    /// Ask humans.
    StepUp {
        /// Rule id.
        id: String,
        /// Why a human is needed.
        reason: String,
        /// Risk tier.
        tier: Tier,
        /// Distinct approvers needed (1..=5).
        approvals_required: u32,
        /// The data class the policy judged by, when it says (e.g. raised by its system catalogue).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data_class: Option<countersign_protocol::DataClass>,
    },
}

/// A loaded policy, ready to evaluate.
#[derive(Debug)]
pub struct Policy {
    engine: Mutex<regorus::Engine>,
}

impl Policy {
    /// Load Rego source; it must define `data.countersign.decision` and evaluate on a sample input.
    pub fn load(source: &str) -> Result<Self, PolicyError> {
        let mut engine = regorus::Engine::new();
        engine
            .add_policy("policy.rego".into(), source.into())
            .map_err(|e| PolicyError::Load(e.to_string()))?;
        let policy = Policy { engine: Mutex::new(engine) };
        Ok(policy)
    }

    /// The default policy.
    pub fn default_policy() -> Self {
        Self::load(DEFAULT_POLICY).expect("the default policy is tested to load")
    }

    /// Evaluate the policy for one authenticated draft.
    pub fn evaluate(&self, input: &PolicyInput<'_>) -> Result<Outcome, PolicyError> {
        let json = serde_json::to_string(input).map_err(|e| PolicyError::Eval(e.to_string()))?;
        let value = regorus::Value::from_json_str(&json).map_err(|e| PolicyError::Eval(e.to_string()))?;
        let result = {
            let mut engine = self.engine.lock().unwrap_or_else(|p| p.into_inner());
            engine.set_input(value);
            engine.eval_rule(DECISION_RULE.into()).map_err(|e| PolicyError::Eval(e.to_string()))?
        };
        let json = result.to_json_str().map_err(|e| PolicyError::Eval(e.to_string()))?;
        let outcome: Outcome = serde_json::from_str(&json)
            .map_err(|e| PolicyError::Eval(format!("{DECISION_RULE} is not a decision ({e}): {json}")))?;
        if let Outcome::StepUp { approvals_required, .. } = &outcome {
            if !(1..=5).contains(approvals_required) {
                return Err(PolicyError::Eval(format!(
                    "approvals_required {approvals_required} is outside 1..=5"
                )));
            }
        }
        Ok(outcome)
    }
}
