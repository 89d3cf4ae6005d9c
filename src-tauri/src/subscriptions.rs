//! Glue from the core's subscriptions actor to the UI: each connection change and watch event
//! becomes a Tauri event, a tray update or a notification. Who is followed is the actor's.

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
    open_clicked(app);
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

/// Notify of a new request (settings and flood rules permitting). A click only opens the request
/// (see [`open_clicked`]): nothing is ever approved from a notification.
fn notify<R: Runtime>(app: &AppHandle<R>, ep: String, id: String) {
    let shell = app.state::<Shell>();
    let (console, notifier) = (shell.console.clone(), shell.notifier.clone());
    tauri::async_runtime::spawn(async move {
        if let Err(e) = notifier.request_arrived(&console, &ep, &id).await {
            tracing::warn!(error = %e, "notification not sent");
        }
    });
}

/// Open each clicked notification's request in the window. Called once, from [`forward`].
fn open_clicked<R: Runtime>(app: &AppHandle<R>) {
    let mut clicks = app.state::<Shell>().notifier.desktop().clicks();
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        loop {
            match clicks.recv().await {
                Ok((ep, id)) => {
                    let app2 = app.clone();
                    let request = RequestRef { ep, id };
                    let _ = app.run_on_main_thread(move || crate::window::focus(&app2, Some(request)));
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    });
}
