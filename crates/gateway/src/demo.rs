//! `--demo`: a steady, realistic stream of agents' requests from the scenario library.

use std::sync::Arc;
use std::time::Duration;

use countersign_protocol::StepUpDraft;
use rand::seq::SliceRandom as _;
use rand::Rng as _;
use serde::Deserialize;

use crate::app::App;

/// The scenario library shipped with the gateway.
pub const SCENARIOS: &str = include_str!("../demo/scenarios.json");

/// One demo scenario.
#[derive(Debug, Clone, Deserialize)]
pub struct Scenario {
    /// Short name.
    pub name: String,
    /// What the agent submits.
    pub draft: StepUpDraft,
}

/// The parsed scenario library.
pub fn scenarios() -> Vec<Scenario> {
    serde_json::from_str(SCENARIOS).expect("the scenario library is tested to parse")
}

/// Submit `initial` scenarios at once, then one every `interval`, forever.
pub async fn run(app: Arc<App>, interval: Duration, initial: usize) {
    let library = scenarios();
    if library.is_empty() {
        tracing::error!("the demo scenario library is empty; no demo requests");
        return;
    }
    let mut deck: Vec<Scenario> = Vec::new();
    let mut next = move || {
        if deck.is_empty() {
            deck = library.clone();
            deck.shuffle(&mut rand::thread_rng());
        }
        deck.pop().expect("the deck was just refilled")
    };
    let mut submitted = 0usize;
    loop {
        let scenario = next();
        let mut draft = scenario.draft;
        draft.ttl_s = Some(rand::thread_rng().gen_range(180..=900));
        let workload = draft.identity.workload.clone();
        match app.submit(&workload, draft, None).await {
            Ok((status, body)) => {
                tracing::debug!(scenario = %scenario.name, %status, state = %body["state"], "demo request")
            }
            Err(e) => tracing::warn!(scenario = %scenario.name, error = %e.message, "demo request refused"),
        }
        submitted += 1;
        if submitted >= initial {
            tokio::time::sleep(interval).await;
        }
    }
}
