//! Runtime classification as policy as code: a Rego policy evaluated with `regorus`.
//!
//! The policy sees the authenticated workload identity, the draft as submitted (purpose, data
//! class, target, action chain) and, at `input.facts`, what Rust's parsers make of it
//! ([`crate::facts`]); the organisation's data file is its `data` (trust domains, system and tool
//! catalogues, internal domains, approved outside hosts, vocabulary). It answers
//! `data.countersign.decision`:
//! `{ "outcome": "allow"|"deny"|"step_up", "id", "reason", "tier"?, "approvals_required"? }`.
//! The agent's own claims about risk are never consulted: only the policy sets tier and quorum.
//!
//! Evaluation is bounded: inputs larger than [`MAX_INPUT_BYTES`] are refused, and the gateway's
//! [`Policy::evaluate_bounded`] gives up after [`EVAL_TIMEOUT`] with a denial. Each evaluation
//! borrows an engine from a pool (engines are compiled once and cloned), so agents do not wait for
//! each other's evaluations.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use countersign_protocol::{StepUpDraft, Tier};
use serde::{Deserialize, Serialize};

use crate::facts::{self, DataError, Facts, PolicyData};

mod cases;

pub use cases::{eval_draft_json, run_cases, CaseResult};

/// The policy that ships with the gateway.
pub const DEFAULT_POLICY: &str = include_str!("../../policy/default.rego");

/// The rule the gateway evaluates.
pub const DECISION_RULE: &str = "data.countersign.decision";

/// Largest policy input (draft and facts, as JSON) the gateway evaluates.
pub const MAX_INPUT_BYTES: usize = 512 * 1024;

/// Longest an evaluation may take in the gateway before the request is denied.
pub const EVAL_TIMEOUT: Duration = Duration::from_secs(5);

/// A policy could not be loaded or evaluated.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The Rego source did not parse or compile, or gave no decision on a sample request.
    #[error("policy failed to load: {0}")]
    Load(String),
    /// The data file is unusable.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The input (draft and facts) is larger than [`MAX_INPUT_BYTES`].
    #[error("the request is too large to evaluate: its policy input is {size} bytes, more than {limit}")]
    TooLarge {
        /// Size of the input as JSON.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Evaluation failed or gave no well-formed decision.
    #[error("policy evaluation failed: {0}")]
    Eval(String),
    /// A draft or case file given to the command line is not usable.
    #[error("bad input: {0}")]
    Input(String),
}

/// What the policy sees besides the facts.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyInput<'a> {
    /// The workload identity the agent authenticated as (not what it claims).
    pub workload: &'a str,
    /// The draft as submitted (its `identity.workload` equals `workload`).
    #[serde(flatten)]
    pub draft: &'a StepUpDraft,
}

/// The full input: the draft's fields, `workload` and `facts`.
#[derive(Serialize)]
struct FullInput<'a> {
    #[serde(flatten)]
    input: &'a PolicyInput<'a>,
    facts: &'a Facts,
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

/// A decision with the facts it was made on.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    /// The decision.
    pub decision: Outcome,
    /// The facts the policy read.
    pub facts: Facts,
}

/// A loaded policy with its data, ready to evaluate from any number of threads. Cloning is cheap
/// (the compiled engine and the pool are shared).
#[derive(Debug, Clone)]
pub struct Policy {
    shared: Arc<Shared>,
    /// How long [`Policy::evaluate_bounded`] waits ([`EVAL_TIMEOUT`] unless changed).
    timeout: Duration,
}

#[derive(Debug)]
struct Shared {
    /// Compiled once with the data; every pooled engine is a clone of it.
    template: regorus::Engine,
    /// Idle engines; an evaluation takes one (or clones the template) and puts it back.
    idle: Mutex<Vec<regorus::Engine>>,
    data: PolicyData,
    /// Evaluations running in the gateway at once (one per core); further ones wait their turn.
    workers: Arc<tokio::sync::Semaphore>,
    /// Most idle engines kept (two per worker; extra ones made in a burst of direct calls are dropped).
    max_idle: usize,
}

/// A sample request each policy must classify when it is loaded.
fn sample_draft() -> StepUpDraft {
    serde_json::from_value(serde_json::json!({
        "identity": { "workload": "spiffe://acme.example/ns/load/sa/check", "display": "Load check", "on_behalf_of": [] },
        "purpose": { "code": "policy.load", "statement": "Check that the policy gives a decision." },
        "data": { "class": "internal", "categories": [] },
        "target": { "system": "wiki", "environment": "production" },
        "actions": [{ "tool": "wiki.pages.get", "args": { "page": "Home" }, "reversible": true }],
    }))
    .expect("the sample draft is well-formed")
}

impl Policy {
    /// Load Rego source with the default data file.
    pub fn load(source: &str) -> Result<Self, PolicyError> {
        Self::load_with_data(source, PolicyData::default_data())
    }

    /// Load Rego source with a data file; the policy must define `data.countersign.decision` and
    /// give a well-formed decision for a sample request.
    pub fn load_with_data(source: &str, data: PolicyData) -> Result<Self, PolicyError> {
        let mut engine = regorus::Engine::new();
        engine
            .add_policy("policy.rego".into(), source.into())
            .map_err(|e| PolicyError::Load(e.to_string()))?;
        let json = serde_json::to_string(&data).map_err(|e| PolicyError::Load(e.to_string()))?;
        let value = regorus::Value::from_json_str(&json).map_err(|e| PolicyError::Load(e.to_string()))?;
        engine
            .add_data(value)
            .map_err(|e| PolicyError::Load(format!("the data file does not fit the policy: {e}")))?;
        // At least two, so that one slow evaluation never holds up every agent.
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).max(2);
        let policy = Policy {
            shared: Arc::new(Shared {
                template: engine,
                idle: Mutex::new(Vec::new()),
                data,
                workers: Arc::new(tokio::sync::Semaphore::new(workers)),
                max_idle: workers * 2,
            }),
            timeout: EVAL_TIMEOUT,
        };
        let sample = sample_draft();
        policy
            .evaluate(&PolicyInput { workload: &sample.identity.workload, draft: &sample })
            .map_err(|e| PolicyError::Load(format!("no decision for a sample request: {e}")))?;
        Ok(policy)
    }

    /// The default policy with the default data.
    pub fn default_policy() -> Self {
        Self::load(DEFAULT_POLICY).expect("the default policy is tested to load")
    }

    /// The same policy with another time bound for [`Policy::evaluate_bounded`].
    pub fn with_eval_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The data file the policy was loaded with.
    pub fn data(&self) -> &PolicyData {
        &self.shared.data
    }

    /// Evaluate the policy for one authenticated draft.
    pub fn evaluate(&self, input: &PolicyInput<'_>) -> Result<Outcome, PolicyError> {
        self.evaluate_with_facts(input).map(|e| e.decision)
    }

    /// Derive the facts and evaluate; the result says both.
    pub fn evaluate_with_facts(&self, input: &PolicyInput<'_>) -> Result<Evaluation, PolicyError> {
        let facts = facts::derive(input.workload, input.draft, &self.shared.data);
        let json = serde_json::to_string(&FullInput { input, facts: &facts })
            .map_err(|e| PolicyError::Eval(e.to_string()))?;
        if json.len() > MAX_INPUT_BYTES {
            return Err(PolicyError::TooLarge { size: json.len(), limit: MAX_INPUT_BYTES });
        }
        let value = regorus::Value::from_json_str(&json).map_err(|e| PolicyError::Eval(e.to_string()))?;
        let mut engine = self.take_engine();
        engine.set_input(value);
        let result = engine.eval_rule(DECISION_RULE.into());
        self.put_engine(engine);
        let result = result.map_err(|e| PolicyError::Eval(e.to_string()))?;
        let json = result.to_json_str().map_err(|e| PolicyError::Eval(e.to_string()))?;
        let decision: Outcome = serde_json::from_str(&json)
            .map_err(|e| PolicyError::Eval(format!("{DECISION_RULE} is not a decision ({e}): {json}")))?;
        if let Outcome::StepUp { approvals_required, .. } = &decision {
            if !(1..=5).contains(approvals_required) {
                return Err(PolicyError::Eval(format!(
                    "approvals_required {approvals_required} is outside 1..=5"
                )));
            }
        }
        Ok(Evaluation { decision, facts })
    }

    /// What the gateway calls: evaluate on a blocking thread, at most one evaluation per core (and
    /// at least two) at once, within the time bound ([`EVAL_TIMEOUT`] by default; waiting for a turn
    /// included). Fails closed: an evaluation that takes too long is a denial (`policy-timeout`); it
    /// keeps its worker until it ends. A too-large input is [`PolicyError::TooLarge`].
    pub async fn evaluate_bounded(
        &self,
        workload: &str,
        draft: &StepUpDraft,
    ) -> Result<Outcome, PolicyError> {
        let policy = self.clone();
        let timeout = self.timeout;
        let (workload, draft) = (workload.to_owned(), draft.clone());
        let run = async move {
            let permit = policy
                .shared
                .workers
                .clone()
                .acquire_owned()
                .await
                .map_err(|e| PolicyError::Eval(e.to_string()))?;
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
                policy.evaluate(&PolicyInput { workload: &workload, draft: &draft })
            })
            .await
            .map_err(|e| PolicyError::Eval(format!("the evaluation stopped: {e}")))?
        };
        match tokio::time::timeout(timeout, run).await {
            Ok(result) => result,
            Err(_) => Ok(Outcome::Deny {
                id: "policy-timeout".into(),
                reason: format!(
                    "The policy could not classify this request within {} ms, so it is refused.",
                    timeout.as_millis()
                ),
            }),
        }
    }

    fn take_engine(&self) -> regorus::Engine {
        let idle = self.shared.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        idle.unwrap_or_else(|| self.shared.template.clone())
    }

    fn put_engine(&self, engine: regorus::Engine) {
        let mut idle = self.shared.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < self.shared.max_idle {
            idle.push(engine);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// Slow (a quarter of a million iterations) for purpose `slow`, instant otherwise.
    const SLOW_POLICY: &str = r#"package countersign
import rego.v1
default decision := {"outcome": "deny", "id": "default", "reason": "No decision."}
decision := {"outcome": "allow", "id": "fast", "reason": "Fast."} if input.purpose.code != "slow"
decision := {"outcome": "allow", "id": "slow", "reason": "Slow."} if {
	input.purpose.code == "slow"
	count({x | some x in numbers.range(1, 500); some y in numbers.range(1, 500); x == y + 100000}) == 0
}
"#;

    fn draft(purpose: &str) -> StepUpDraft {
        let mut d = sample_draft();
        d.purpose.code = purpose.into();
        d
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_slow_evaluation_is_denied_at_the_bound() {
        let policy = Policy::load(SLOW_POLICY).unwrap().with_eval_timeout(Duration::from_millis(20));
        let d = draft("slow");
        match policy.evaluate_bounded(&d.identity.workload, &d).await.unwrap() {
            Outcome::Deny { id, reason } => {
                assert_eq!(id, "policy-timeout");
                assert!(reason.contains("within 20 ms"), "{reason}");
            }
            other => panic!("a timed-out evaluation must be denied: {other:?}"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_slow_evaluation_does_not_hold_up_another() {
        let policy = Policy::load(SLOW_POLICY).unwrap().with_eval_timeout(Duration::from_secs(120));
        let (slow, fast) = (draft("slow"), draft("fast"));
        let started = Instant::now();
        let slow_policy = policy.clone();
        let slow_task = tokio::spawn(async move {
            let outcome = slow_policy.evaluate_bounded(&slow.identity.workload, &slow).await.unwrap();
            (outcome, started.elapsed())
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let fast_outcome = policy.evaluate_bounded(&fast.identity.workload, &fast).await.unwrap();
        let fast_done = started.elapsed();
        let (slow_outcome, slow_done) = slow_task.await.unwrap();
        assert!(matches!(fast_outcome, Outcome::Allow { ref id, .. } if id == "fast"), "{fast_outcome:?}");
        assert!(matches!(slow_outcome, Outcome::Allow { ref id, .. } if id == "slow"), "{slow_outcome:?}");
        // Under one global lock the fast evaluation would have waited for the slow one.
        assert!(fast_done < slow_done, "fast took {fast_done:?}, slow {slow_done:?}");
    }

    #[test]
    fn an_oversized_input_is_refused() {
        let policy = Policy::default_policy();
        let mut d = sample_draft();
        d.actions[0].args.insert("blob".into(), serde_json::Value::String("x".repeat(MAX_INPUT_BYTES)));
        match policy.evaluate(&PolicyInput { workload: &d.identity.workload, draft: &d }) {
            Err(PolicyError::TooLarge { size, limit }) => assert!(size > limit && limit == MAX_INPUT_BYTES),
            other => panic!("{other:?}"),
        }
    }
}
