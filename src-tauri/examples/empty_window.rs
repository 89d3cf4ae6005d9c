//! An empty Tauri 2 window: the desktop bench's same-run baseline. It is built in the app's package, so with the
//! app's tauri features, and runs with the app's WebKit settings (no compositing, the same web view tuning); its
//! page is an empty document served the way the app's UI is (the bundled assets over the custom protocol, the
//! app's CSP). What the app costs beyond this window is the app.
//!
//! `cargo build --release --example empty_window -p countersign-console-app` (the bench builds it).

use tauri::Manager as _;

fn main() {
    #[cfg(target_os = "linux")]
    countersign_console_app::window::disable_compositing();
    tauri::Builder::default()
        .setup(|app| {
            #[cfg(target_os = "linux")]
            if let Some(w) = app.get_webview_window("main") {
                countersign_console_app::window::tune_web_view(&w);
            }
            if let Some(w) = app.get_webview_window("main") {
                w.show()?;
            }
            eprintln!("window shown");
            Ok(())
        })
        .run(tauri::generate_context!("examples/empty_window/tauri.conf.json"))
        .expect("error while running the empty window");
}
