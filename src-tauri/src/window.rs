//! The main window: hidden until the UI has drawn (with a fallback), shown and focused on demand,
//! closed to the tray, and WebKitGTK tuned for a document-like UI.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tauri::{AppHandle, Emitter as _, Manager as _, Runtime};

use crate::dto::RequestRef;
use crate::events::EV_OPEN;

static STARTED: OnceLock<Instant> = OnceLock::new();
static SHOWN: AtomicBool = AtomicBool::new(false);

/// Time since the app started (since `run`).
pub fn since_start() -> Duration {
    STARTED.get_or_init(Instant::now).elapsed()
}

/// Record that the main window has been shown; true the first time only.
pub fn mark_shown() -> bool {
    !SHOWN.swap(true, Ordering::SeqCst)
}

/// How long a launch waits for the UI's first inbox before showing the window anyway.
pub const SHOW_FALLBACK: Duration = Duration::from_secs(3);

/// Show the main window (it starts hidden and is shown once the UI has drawn).
pub fn show_main<R: Runtime>(app: &AppHandle<R>) {
    if let Some(w) = app.get_webview_window("main") {
        let _ = w.show();
        let _ = w.set_focus();
    }
}

/// Show the window after [`SHOW_FALLBACK`] should the UI never report ready (a broken build),
/// rather than run invisibly.
pub fn show_if_the_ui_never_does<R: Runtime>(app: &AppHandle<R>) {
    let handle = app.clone();
    std::thread::spawn(move || {
        std::thread::sleep(SHOW_FALLBACK);
        if mark_shown() {
            tracing::warn!("the UI did not report ready; showing the window anyway");
            let h = handle.clone();
            let _ = handle.run_on_main_thread(move || show_main(&h));
        }
    });
}

/// Show and focus the main window, optionally on one request.
pub fn focus<R: Runtime>(app: &AppHandle<R>, request: Option<RequestRef>) {
    mark_shown();
    if let Some(w) = app.get_webview_window("main") {
        let _ = w.unminimize();
        let _ = w.show();
        let _ = w.set_focus();
    }
    if let Some(request) = request {
        let _ = app.emit(EV_OPEN, request);
    }
}

/// WebKitGTK tuned for a document-like UI (lists, text, forms; no video, 3D or animation): no GPU
/// compositing (on a machine without a GPU it loads Mesa's LLVM rasterizer into the web process,
/// ~70 MiB for nothing), no WebGL, no back/forward page cache, the small memory cache of a
/// document viewer. An environment that sets WEBKIT_DISABLE_COMPOSITING_MODE itself wins.
#[cfg(target_os = "linux")]
pub fn tune_web_view<R: Runtime>(window: &tauri::WebviewWindow<R>) {
    let _ = window.with_webview(|platform| {
        use webkit2gtk::{
            CacheModel, HardwareAccelerationPolicy, SettingsExt as _, WebContextExt as _, WebViewExt,
        };
        let view = platform.inner();
        if let Some(settings) = WebViewExt::settings(&view) {
            settings.set_hardware_acceleration_policy(HardwareAccelerationPolicy::Never);
            settings.set_enable_webgl(false);
            settings.set_enable_page_cache(false);
        }
        if let Some(context) = view.context() {
            context.set_cache_model(CacheModel::DocumentViewer);
        }
    });
}

/// Before GTK and WebKit start (no other thread exists yet): no compositing, see [`tune_web_view`].
#[cfg(target_os = "linux")]
pub fn disable_compositing() {
    if std::env::var_os("WEBKIT_DISABLE_COMPOSITING_MODE").is_none() {
        std::env::set_var("WEBKIT_DISABLE_COMPOSITING_MODE", "1");
    }
}

/// Closing the main window hides it to the tray when the desktop shows one: the console keeps its
/// subscriptions and keeps notifying, which an on-call approver relies on. The tray's Open (or a
/// notification, or a second launch) brings it back; the tray's Quit ends the app. Without a tray
/// to come back from, closing quits, rather than leave an app running that cannot be seen.
pub fn on_window_event<R: Runtime>(window: &tauri::Window<R>, event: &tauri::WindowEvent) {
    if let tauri::WindowEvent::CloseRequested { api, .. } = event {
        if window.label() == "main" {
            api.prevent_close();
            let window = window.clone();
            tauri::async_runtime::spawn(async move {
                if crate::tray::hosted().await && window.hide().is_ok() {
                    tracing::info!("window closed to the tray; Quit in the tray menu ends Countersign");
                } else {
                    tracing::info!("window closed and no tray to keep Countersign in: quitting");
                    window.app_handle().exit(0);
                }
            });
        }
    }
}
