//! Countersign desktop console: a thin Tauri shell over `countersign-console-core`.
//!
//! The shell only translates: commands (one module per domain) call the core, the subscriptions
//! actor's updates become UI events, notifications and the tray. The private key and the signing
//! stay in the core; the UI asks "approve request X with reason R" and Rust checks and signs.

pub mod cli;
pub mod commands;
pub mod demo;
pub mod dto;
pub mod error;
pub mod events;
pub mod state;
pub mod subscriptions;
pub mod tray;
pub mod view;
pub mod window;

use std::sync::Arc;

use countersign_console::Console;
use tauri::Manager as _;

pub use commands::handler;
pub use state::Shell;
pub use window::on_window_event;

/// Run the desktop app.
pub fn run() {
    #[cfg(target_os = "linux")]
    window::disable_compositing();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).init();
    window::since_start();
    let opts = cli::options();

    tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|app, _argv, _cwd| window::focus(app, None)))
        .setup(move |app| {
            let dir = cli::profile_dir()?;
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
                window::tune_web_view(&w);
            }
            subscriptions::forward(app.handle());
            let shell = app.state::<Shell>();
            for ep in tauri::async_runtime::block_on(console.eps())? {
                shell.subscriptions.follow(ep);
            }
            // The window starts hidden and the UI shows it after its first inbox.
            window::show_if_the_ui_never_does(app.handle());
            Ok(())
        })
        .on_window_event(on_window_event)
        .invoke_handler(handler())
        .run(tauri::generate_context!())
        .expect("error while running Countersign");
}
