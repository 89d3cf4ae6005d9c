//! Settings: notification threshold and pause.

use tauri::{AppHandle, Runtime, State};

use crate::dto::Settings;
use crate::error::IpcResult;
use crate::Shell;

/// The current settings.
#[tauri::command]
pub async fn get_settings(shell: State<'_, Shell>) -> IpcResult<Settings> {
    Ok(shell.console.settings().await?)
}

/// Save settings; the saved values.
#[tauri::command]
pub async fn set_settings<R: Runtime>(
    app: AppHandle<R>,
    shell: State<'_, Shell>,
    settings: Settings,
) -> IpcResult<Settings> {
    let saved = shell.console.save_settings(&settings).await?;
    crate::tray::update(&app);
    Ok(saved)
}
