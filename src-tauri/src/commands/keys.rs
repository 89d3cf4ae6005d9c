//! The approver's key: public parts and rotation. The private key never crosses IPC.

use tauri::State;

use crate::dto::KeyInfo;
use crate::error::IpcResult;
use crate::Shell;

fn info(k: countersign_console::keys::KeyInfo) -> KeyInfo {
    KeyInfo {
        kid: k.kid,
        fingerprint: k.fingerprint,
        created_at: k.created_at,
        jwk: serde_json::to_string_pretty(&k.jwk).unwrap_or_default(),
    }
}

/// The current key's id, fingerprint, creation time and public JWK.
#[tauri::command]
pub async fn key_info(shell: State<'_, Shell>) -> IpcResult<KeyInfo> {
    Ok(info(shell.console.key().await?))
}

/// Rotate the key (history signed by the old key stays verifiable).
#[tauri::command]
pub async fn rotate_key(shell: State<'_, Shell>) -> IpcResult<KeyInfo> {
    Ok(info(shell.console.rotate_key().await?.key))
}
