//! The events the shell sends the UI, and the one way it says "the inbox changed".

use tauri::{AppHandle, Emitter as _, Runtime};

/// Event: the inbox changed; refetch.
pub const EV_REQUESTS: &str = "requests-changed";
/// Event: an enforcement point's connection changed.
pub const EV_EPS: &str = "eps-changed";
/// Event: open this request (payload: a [`crate::dto::RequestRef`], its enforcement point and
/// id), e.g. after a notification click.
pub const EV_OPEN: &str = "open-request";

/// Tell the UI to refetch, and update the tray's count.
pub fn refresh<R: Runtime>(app: &AppHandle<R>) {
    let _ = app.emit(EV_REQUESTS, ());
    crate::tray::update(app);
}
