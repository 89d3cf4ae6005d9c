//! Tauri commands, one module per domain; each is a thin translation onto the console core.

pub mod app;
pub mod decisions;
pub mod eps;
pub mod history;
pub mod keys;
pub mod requests;
pub mod settings;

use tauri::Runtime;

/// Every command of the app (also what the wiring tests invoke).
pub fn handler<R: Runtime>() -> impl Fn(tauri::ipc::Invoke<R>) -> bool + Send + Sync + 'static {
    tauri::generate_handler![
        requests::list_requests,
        requests::get_request,
        decisions::decide,
        history::history_page,
        history::history_stats,
        history::history_verify,
        history::history_export,
        eps::list_eps,
        eps::preview_ep,
        eps::add_ep,
        eps::remove_ep,
        keys::key_info,
        keys::rotate_key,
        settings::get_settings,
        settings::set_settings,
        app::ui_ready,
    ]
}
