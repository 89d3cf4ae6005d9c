//! Countersign desktop console: a thin Tauri shell over `countersign-console-core`.
//!
//! The shell only translates: commands (one module per domain) call the core, the subscription
//! engine's events become UI events, notifications and the tray. The private key and the signing
//! stay in the core; the UI asks "approve request X with reason R" and Rust checks and signs.

pub mod commands;
pub mod demo;
pub mod dto;
pub mod error;
pub mod tray;
pub mod view;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use countersign_console::ep::Ep;
use countersign_console::watch::WatchEvent;
use countersign_console::{Console, ConsoleError};
use tauri::{AppHandle, Emitter as _, Manager as _, Runtime};

use crate::dto::{Connection, EpStatus};
use crate::error::{ErrorCode, IpcError, IpcResult};

/// Event: the inbox changed; refetch.
pub const EV_REQUESTS: &str = "requests-changed";
/// Event: an enforcement point's connection changed.
pub const EV_EPS: &str = "eps-changed";
/// Event: open this request (payload: a [`dto::RequestRef`], its enforcement point and id), e.g.
/// after a notification click.
pub const EV_OPEN: &str = "open-request";

impl From<ConsoleError> for IpcError {
    fn from(e: ConsoleError) -> Self {
        let code = match &e {
            ConsoleError::NotFound(_) => ErrorCode::NotFound,
            ConsoleError::Invalid(_) | ConsoleError::Ambiguous(_) => ErrorCode::InvalidInput,
            ConsoleError::Refused(_) | ConsoleError::Untrusted(_) | ConsoleError::Protocol(_) => {
                ErrorCode::Refused
            }
            ConsoleError::Keyring(_) => ErrorCode::Keyring,
            ConsoleError::Network { .. } => ErrorCode::Network,
            _ => ErrorCode::Internal,
        };
        if code == ErrorCode::Internal {
            tracing::error!(error = %e, "command failed");
        }
        IpcError::new(code, e.to_string())
    }
}

/// Live connection state of one enforcement point.
#[derive(Debug, Clone)]
struct Link {
    state: Connection,
    error: Option<String>,
}

/// The shell's state, registered at setup.
#[derive(Debug)]
pub struct Shell {
    /// The console core.
    pub console: Console,
    connections: Mutex<HashMap<String, Link>>,
    watchers: Mutex<HashMap<String, tauri::async_runtime::JoinHandle<()>>>,
    /// Notifications and flood tracking.
    pub notifier: Arc<countersign_console::notify::Notifier>,
}

impl Shell {
    /// The shell's state over an opened console.
    pub fn new(console: Console) -> Shell {
        Shell {
            console,
            connections: Mutex::new(HashMap::new()),
            watchers: Mutex::new(HashMap::new()),
            notifier: Arc::new(countersign_console::notify::Notifier::default()),
        }
    }

    /// Display names of the pinned enforcement points.
    pub async fn ep_names(&self) -> IpcResult<HashMap<String, String>> {
        Ok(self.console.eps().await?.into_iter().map(|e| (e.ep, e.name)).collect())
    }

    /// Every pinned enforcement point with its connection state and pending count.
    pub async fn ep_statuses(&self) -> IpcResult<Vec<EpStatus>> {
        let eps = self.console.eps().await?;
        let pending = self.console.pending_counts().await?;
        let conns = self.connections.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Ok(eps
            .iter()
            .map(|ep| {
                let n = pending.get(&ep.ep).copied().unwrap_or(0);
                let mut s =
                    ep_status(ep, conns.get(&ep.ep).map(|c| c.state).unwrap_or(Connection::Connecting), n);
                s.last_error = conns.get(&ep.ep).and_then(|c| c.error.clone()).or(s.last_error);
                s
            })
            .collect())
    }

    fn set_connection(&self, ep: &str, state: Connection, error: Option<String>) {
        self.connections.lock().unwrap_or_else(|p| p.into_inner()).insert(ep.into(), Link { state, error });
    }

    /// Stop following an enforcement point.
    pub fn unsubscribe(&self, ep: &str) {
        if let Some(task) = self.watchers.lock().unwrap_or_else(|p| p.into_inner()).remove(ep) {
            task.abort();
        }
        self.connections.lock().unwrap_or_else(|p| p.into_inner()).remove(ep);
    }
}

/// The IPC view of a pinned enforcement point.
pub fn ep_status(ep: &Ep, connection: Connection, pending: u32) -> EpStatus {
    EpStatus {
        ep: ep.ep.clone(),
        name: ep.name.clone(),
        url: ep.url.clone(),
        kid: ep.kid.clone(),
        fingerprint: countersign_protocol::jwk::fingerprint(&ep.kid),
        connection,
        last_error: ep.last_error.clone(),
        pending,
    }
}

/// Tell the UI to refetch, and update the tray's count.
pub fn refresh<R: Runtime>(app: &AppHandle<R>) {
    let _ = app.emit(EV_REQUESTS, ());
    tray::update(app);
}

static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
static SHOWN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Time since the app started (since `run`).
pub fn since_start() -> std::time::Duration {
    STARTED.get_or_init(std::time::Instant::now).elapsed()
}

/// Record that the main window has been shown; true the first time only.
pub fn mark_shown() -> bool {
    !SHOWN.swap(true, std::sync::atomic::Ordering::SeqCst)
}

/// How long a launch waits for the UI's first inbox before showing the window anyway.
pub const SHOW_FALLBACK: std::time::Duration = std::time::Duration::from_secs(3);

/// Show the main window (it starts hidden and is shown once the UI has drawn).
pub fn show_main<R: Runtime>(app: &AppHandle<R>) {
    if let Some(w) = app.get_webview_window("main") {
        let _ = w.show();
        let _ = w.set_focus();
    }
}

/// Show and focus the main window, optionally on one request.
pub fn focus<R: Runtime>(app: &AppHandle<R>, request: Option<dto::RequestRef>) {
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

/// Follow one enforcement point's stream in the background.
pub fn subscribe<R: Runtime>(app: &AppHandle<R>, ep: Ep) {
    let shell = app.state::<Shell>();
    let name = ep.ep.clone();
    let key = ep.ep.clone();
    let handle = app.clone();
    shell.set_connection(&name, Connection::Connecting, None);
    let console = shell.console.clone();
    let task = tauri::async_runtime::spawn(async move {
        let on_event = {
            let app = handle.clone();
            move |e: WatchEvent| on_watch_event(&app, e)
        };
        if let Err(e) = console.watch_ep(ep, on_event).await {
            tracing::error!(error = %e, "subscription stopped");
            handle.state::<Shell>().set_connection(&name, Connection::Error, Some(e.to_string()));
            let _ = handle.emit(EV_EPS, ());
        }
    });
    let old = shell.watchers.lock().unwrap_or_else(|p| p.into_inner()).insert(key, task);
    if let Some(old) = old {
        old.abort();
    }
}

fn on_watch_event<R: Runtime>(app: &AppHandle<R>, e: WatchEvent) {
    let shell = app.state::<Shell>();
    match e {
        WatchEvent::Connected { ep } => {
            shell.set_connection(&ep, Connection::Connected, None);
            let _ = app.emit(EV_EPS, ());
            refresh(app);
        }
        WatchEvent::Disconnected { ep, error, .. } => {
            shell.set_connection(&ep, Connection::Offline, Some(error));
            let _ = app.emit(EV_EPS, ());
        }
        WatchEvent::Request { ep, id } => {
            refresh(app);
            let (console, notifier, app) = (shell.console.clone(), shell.notifier.clone(), app.clone());
            tauri::async_runtime::spawn(async move {
                use countersign_console::notify::Notice;
                match notifier.request_arrived(&console, &ep, &id).await {
                    Ok(Notice::Shown(shown) | Notice::Flood(shown)) => {
                        // A click only opens the request: nothing is ever approved from a notification.
                        std::thread::spawn(move || {
                            if let Some((ep, id)) = shown.wait_for_click() {
                                let app2 = app.clone();
                                let request = dto::RequestRef { ep, id };
                                let _ = app.run_on_main_thread(move || focus(&app2, Some(request)));
                            }
                        });
                    }
                    Ok(Notice::Quiet) => {}
                    Err(e) => tracing::warn!(error = %e, "notification not sent"),
                }
            });
        }
        // Backfill runs beside the stream: what it stored shows once it is done.
        WatchEvent::Resolved { .. } | WatchEvent::Rejected { .. } | WatchEvent::Backfilled { .. } => {
            refresh(app)
        }
    }
}

/// Command-line options of `countersign-console`.
#[derive(Debug, Default)]
struct Options {
    demo: bool,
}

fn options() -> Options {
    let mut o = Options::default();
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "--demo" => o.demo = true,
            "--help" | "-h" => {
                println!(
                    "countersign-console [--demo]\n\n  --demo  start an embedded reference gateway in demo mode, enrol this profile's key\n          with it, pin it and subscribe\n\nThe profile is $COUNTERSIGN_HOME (shared with the `countersign` CLI)."
                );
                std::process::exit(0);
            }
            _ => {}
        }
    }
    o
}

fn profile_dir() -> anyhow::Result<PathBuf> {
    match std::env::var_os("COUNTERSIGN_HOME") {
        Some(d) => Ok(PathBuf::from(d)),
        None => Ok(countersign_console::profile::Profile::default_dir()?),
    }
}

/// Every command of the app, one module per domain (also what the wiring tests invoke).
pub fn handler<R: Runtime>() -> impl Fn(tauri::ipc::Invoke<R>) -> bool + Send + Sync + 'static {
    tauri::generate_handler![
        commands::requests::list_requests,
        commands::requests::get_request,
        commands::decisions::decide,
        commands::history::history_page,
        commands::history::history_stats,
        commands::history::history_verify,
        commands::history::history_export,
        commands::eps::list_eps,
        commands::eps::preview_ep,
        commands::eps::add_ep,
        commands::eps::remove_ep,
        commands::keys::key_info,
        commands::keys::rotate_key,
        commands::settings::get_settings,
        commands::settings::set_settings,
        commands::app::ui_ready,
    ]
}

/// WebKitGTK tuned for a document-like UI (lists, text, forms; no video, 3D or animation): no GPU
/// compositing (on a machine without a GPU it loads Mesa's LLVM rasterizer into the web process,
/// ~70 MiB for nothing), no WebGL, no back/forward page cache, the small memory cache of a
/// document viewer. An environment that sets WEBKIT_DISABLE_COMPOSITING_MODE itself wins.
#[cfg(target_os = "linux")]
fn tune_web_view<R: Runtime>(window: &tauri::WebviewWindow<R>) {
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
                if tray::hosted().await && window.hide().is_ok() {
                    tracing::info!("window closed to the tray; Quit in the tray menu ends Countersign");
                } else {
                    tracing::info!("window closed and no tray to keep Countersign in: quitting");
                    window.app_handle().exit(0);
                }
            });
        }
    }
}

/// Run the desktop app.
pub fn run() {
    #[cfg(target_os = "linux")]
    if std::env::var_os("WEBKIT_DISABLE_COMPOSITING_MODE").is_none() {
        // Before GTK and WebKit start (no other thread exists yet); see `tune_web_view`.
        std::env::set_var("WEBKIT_DISABLE_COMPOSITING_MODE", "1");
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).init();
    since_start();
    let opts = options();

    tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|app, _argv, _cwd| focus(app, None)))
        .setup(move |app| {
            let dir = profile_dir()?;
            let console = tauri::async_runtime::block_on(Console::open(
                &dir,
                Arc::new(countersign_console::keys::OsKeyring::default()),
            ))?;
            app.manage(Shell::new(console.clone()));
            if opts.demo {
                tauri::async_runtime::block_on(demo::start(&console, &dir))?;
            }
            tray::create(app.handle())?;
            #[cfg(target_os = "linux")]
            if let Some(w) = app.get_webview_window("main") {
                tune_web_view(&w);
            }
            for ep in tauri::async_runtime::block_on(console.eps())? {
                subscribe(app.handle(), ep);
            }
            // The window starts hidden and the UI shows it after its first inbox; should the UI
            // never report (a broken build), show it anyway rather than run invisibly.
            let handle = app.handle().clone();
            std::thread::spawn(move || {
                std::thread::sleep(SHOW_FALLBACK);
                if mark_shown() {
                    tracing::warn!("the UI did not report ready; showing the window anyway");
                    let h = handle.clone();
                    let _ = handle.run_on_main_thread(move || show_main(&h));
                }
            });
            Ok(())
        })
        .on_window_event(on_window_event)
        .invoke_handler(handler())
        .run(tauri::generate_context!())
        .expect("error while running Countersign");
}
