//! Enforcement points: list with connection state, preview, pin, remove.

use tauri::{AppHandle, Runtime, State};

use countersign_console::ep::Connection;

use crate::dto::{EpPreview, EpStatus, KeyRef};
use crate::error::IpcResult;
use crate::events::refresh;
use crate::state::{ep_status, Shell};

/// Pinned enforcement points with their live connection state.
#[tauri::command]
pub async fn list_eps(shell: State<'_, Shell>) -> IpcResult<Vec<EpStatus>> {
    shell.ep_statuses().await
}

/// Fetch what an enforcement point says about itself, to show its fingerprints before pinning.
#[tauri::command]
pub async fn preview_ep(shell: State<'_, Shell>, url: String) -> IpcResult<EpPreview> {
    let wk = shell.console.fetch_well_known(&url).await?;
    Ok(EpPreview {
        url: wk.url,
        ep: wk.ep,
        name: wk.name,
        keys: wk
            .keys
            .into_iter()
            .map(|(kid, _)| KeyRef { fingerprint: countersign_protocol::jwk::fingerprint(&kid), kid })
            .collect(),
    })
}

/// Pin an enforcement point's key `kid` (the one the user confirmed) and subscribe.
#[tauri::command]
pub async fn add_ep<R: Runtime>(
    app: AppHandle<R>,
    shell: State<'_, Shell>,
    url: String,
    kid: String,
) -> IpcResult<EpStatus> {
    let ep = shell.console.add_ep(&url, &kid).await?;
    shell.subscriptions.follow(ep.clone());
    let all = shell.ep_statuses().await?;
    refresh(&app);
    Ok(all.into_iter().find(|s| s.ep == ep.ep).unwrap_or_else(|| ep_status(&ep, Connection::Connecting, 0)))
}

/// Unpin an enforcement point.
#[tauri::command]
pub async fn remove_ep<R: Runtime>(app: AppHandle<R>, shell: State<'_, Shell>, ep: String) -> IpcResult<()> {
    let removed = shell.console.remove_ep(&ep, false).await?;
    shell.subscriptions.unfollow(&removed.ep);
    refresh(&app);
    Ok(())
}
