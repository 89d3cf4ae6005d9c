//! The approver's key: public parts and rotation. The private key never crosses IPC.

use tauri::State;

use countersign_console::keys::{Rotation, RotationOutcome};

use crate::dto::{EpRotation, KeyInfo, RotationReport, RotationResult};
use crate::error::IpcResult;
use crate::Shell;

/// The current key's id, fingerprint, creation time and public JWK.
#[tauri::command]
pub async fn key_info(shell: State<'_, Shell>) -> IpcResult<KeyInfo> {
    Ok(shell.console.key().await?)
}

/// The IPC view of a rotation: for each enforcement point, whether it took the new key or the
/// approver must enroll it there by hand, and why. `names` maps ep ids to display names.
pub fn report(r: Rotation, names: &std::collections::HashMap<String, String>) -> RotationReport {
    let eps = r
        .eps
        .into_iter()
        .map(|e| {
            let (result, reason) = match e.outcome {
                RotationOutcome::Accepted => (RotationResult::Accepted, None),
                RotationOutcome::Refused { status, message } => {
                    (RotationResult::Refused, Some(format!("HTTP {status}: {message}")))
                }
                RotationOutcome::Unreachable { error } => (RotationResult::Unreachable, Some(error)),
                RotationOutcome::NotSent { reason } => (RotationResult::NotSent, Some(reason)),
            };
            EpRotation {
                name: names.get(&e.ep).cloned().unwrap_or_else(|| e.ep.clone()),
                ep: e.ep,
                url: e.url,
                needs_enrolment: result != RotationResult::Accepted,
                result,
                reason,
            }
        })
        .collect();
    RotationReport { key: r.key, old_kid: r.old_kid, eps }
}

/// Rotate the key (history signed by the old key stays verifiable) and announce the new key to
/// every pinned enforcement point; reports which took it and which need it enrolled by hand.
#[tauri::command]
pub async fn rotate_key(shell: State<'_, Shell>) -> IpcResult<RotationReport> {
    let rotation = shell.console.rotate_key().await?;
    // Names are for display only: a failure to read them must not hide the rotation's outcome.
    let names = shell.ep_names().await.unwrap_or_default();
    Ok(report(rotation, &names))
}
