//! Glue from the core's subscriptions actor to the UI: each connection change and watch event
//! becomes a Tauri event, a tray update or a notification. Who is followed is the actor's.

use countersign_console::notify::Notice;
use countersign_console::subscriptions::Update;
use countersign_console::watch::WatchEvent;
use tauri::{AppHandle, Emitter as _, Manager as _, Runtime};

use crate::dto::RequestRef;
use crate::events::{refresh, EV_EPS};
use crate::state::Shell;

/// Start turning the actor's updates into UI events (once; later calls do nothing).
pub fn forward<R: Runtime>(app: &AppHandle<R>) {
    let shell = app.state::<Shell>();
    let Some(mut updates) = shell.updates.lock().unwrap_or_else(|p| p.into_inner()).take() else { return };
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        while let Some(update) = updates.recv().await {
            on_update(&app, update);
        }
    });
}

fn on_update<R: Runtime>(app: &AppHandle<R>, update: Update) {
    match update {
        Update::Connection { .. } => {
            let _ = app.emit(EV_EPS, ());
        }
        Update::Stopped { error, .. } => {
            tracing::error!(error = %error, "subscription stopped");
            let _ = app.emit(EV_EPS, ());
        }
        Update::Watch(WatchEvent::Disconnected { .. }) => {}
        Update::Watch(WatchEvent::Request { ep, id }) => {
            refresh(app);
            notify(app, ep, id);
        }
        // Backfill runs beside the stream: what it stored shows once it is done.
        Update::Watch(
            WatchEvent::Connected { .. }
            | WatchEvent::Resolved { .. }
            | WatchEvent::Rejected { .. }
            | WatchEvent::Backfilled { .. },
        ) => refresh(app),
    }
}

/// Notify of a new request (settings and flood rules permitting). A click only opens the request:
/// nothing is ever approved from a notification.
fn notify<R: Runtime>(app: &AppHandle<R>, ep: String, id: String) {
    let shell = app.state::<Shell>();
    let (console, notifier, app) = (shell.console.clone(), shell.notifier.clone(), app.clone());
    tauri::async_runtime::spawn(async move {
        match notifier.request_arrived(&console, &ep, &id).await {
            Ok(Notice::Shown(shown) | Notice::Flood(shown)) => {
                std::thread::spawn(move || {
                    if let Some((ep, id)) = shown.wait_for_click() {
                        let app2 = app.clone();
                        let request = RequestRef { ep, id };
                        let _ = app.run_on_main_thread(move || crate::window::focus(&app2, Some(request)));
                    }
                });
            }
            Ok(Notice::Quiet) => {}
            Err(e) => tracing::warn!(error = %e, "notification not sent"),
        }
    });
}
