//! Decisions: the UI asks "approve request X of enforcement point E with reason R"; the core
//! checks and signs.

use countersign_console::decide::DecisionInput;
use countersign_console::outbox::Delivery;
use tauri::{AppHandle, Runtime, State};

use crate::dto::{DecideArgs, DecisionResult, DeliveryOutcome};
use crate::error::IpcResult;
use crate::Shell;

/// Check, sign, commit and send a decision. The rules are checked again in the core.
#[tauri::command]
pub async fn decide<R: Runtime>(
    app: AppHandle<R>,
    shell: State<'_, Shell>,
    args: DecideArgs,
) -> IpcResult<DecisionResult> {
    let verdict = args.verdict;
    let input = DecisionInput {
        verdict,
        reason: args.reason,
        ttl_s: args.ttl_s,
        max_uses: args.max_uses,
        binding_code: args.binding_code.filter(|c| !c.trim().is_empty()),
    };
    let outcome = shell.console.decide_at(Some(&args.ep), &args.id, input).await?;
    let (outcome, message) = match &outcome.delivery {
        Delivery::Accepted { state, .. } => {
            (DeliveryOutcome::Accepted, format!("Delivered: the request is {state}."))
        }
        Delivery::Refused { status, answer } => (
            DeliveryOutcome::Refused,
            format!(
                "The enforcement point refused the decision ({status}): {}",
                answer["message"].as_str().unwrap_or("no reason given")
            ),
        ),
        Delivery::Queued { error } => {
            (DeliveryOutcome::Queued, format!("Signed and saved; waiting to deliver ({error})."))
        }
    };
    crate::events::refresh(&app);
    let console = shell.console.clone();
    tauri::async_runtime::spawn(async move { console.checkpoint_or_warn().await });
    Ok(DecisionResult { outcome, message })
}
