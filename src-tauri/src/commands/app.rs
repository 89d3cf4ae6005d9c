//! The app's own lifecycle: the window stays hidden until the UI has drawn its first inbox, so an
//! approver never sees a blank white window at launch.

use tauri::{AppHandle, Runtime};

/// The UI drew its first inbox (`rows` lines in it; `render_ms` from asking for it to laid out,
/// `ipc_ms` of which waiting for Rust): show the main window, the first time only — a later call
/// (a reloaded web view, or after the fallback already showed it) neither pops up a window hidden
/// to the tray nor steals focus.
#[tauri::command]
pub fn ui_ready<R: Runtime>(app: AppHandle<R>, rows: u32, render_ms: f64, ipc_ms: f64) {
    if crate::window::mark_shown() {
        tracing::info!(
            startup_ms = crate::window::since_start().as_millis() as u64,
            rows,
            first_render_ms = render_ms.round() as u64,
            ipc_ms = ipc_ms.round() as u64,
            "inbox rendered; window shown"
        );
        crate::window::show_main(&app);
    }
}
