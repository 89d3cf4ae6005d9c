//! The approver's key: public parts and rotation. The private key never crosses IPC.

use tauri::State;

use countersign_console::keys::Rotation;

use crate::dto::{KeyInfo, NamedEpRotation, RotationReport};
use crate::error::IpcResult;
use crate::Shell;

/// The current key's id, fingerprint, creation time and public JWK.
#[tauri::command]
pub async fn key_info(shell: State<'_, Shell>) -> IpcResult<KeyInfo> {
    Ok(shell.console.key().await?)
}

/// The IPC view of a rotation: each enforcement point's answer with its display name and whether
/// the approver must enroll the new key there by hand. `names` maps ep ids to display names.
pub fn report(r: Rotation, names: &std::collections::HashMap<String, String>) -> RotationReport {
    let eps = r
        .eps
        .into_iter()
        .map(|e| NamedEpRotation {
            name: names.get(&e.ep).cloned().unwrap_or_else(|| e.ep.clone()),
            needs_enrolment: e.needs_enrolment(),
            rotation: e,
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
