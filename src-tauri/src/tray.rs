//! The tray icon: pending count, open, pause notifications, quit. (Linux delivers only menu
//! events, not clicks, so everything is in the menu.)

use tauri::menu::{CheckMenuItem, Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager as _, Runtime};

use crate::Shell;

const TRAY_ID: &str = "countersign";

/// Create the tray icon and its menu.
pub fn create<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<()> {
    let count = MenuItem::with_id(app, "count", "No pending requests", false, None::<&str>)?;
    let open = MenuItem::with_id(app, "open", "Open Countersign", true, None::<&str>)?;
    let pause = CheckMenuItem::with_id(app, "pause", "Pause notifications", true, false, None::<&str>)?;
    let quit = MenuItem::with_id(app, "quit", "Quit", true, None::<&str>)?;
    let sep = PredefinedMenuItem::separator(app)?;
    let menu = Menu::with_items(app, &[&count, &sep, &open, &pause, &sep, &quit])?;
    let icon = tauri::image::Image::from_bytes(include_bytes!("../../icons/tray.png"))?;
    TrayIconBuilder::with_id(TRAY_ID)
        .icon(icon)
        .tooltip("Countersign")
        .menu(&menu)
        .on_menu_event(move |app, event| match event.id().as_ref() {
            "open" => crate::window::focus(app, None),
            "pause" => {
                let app = app.clone();
                tauri::async_runtime::spawn(async move {
                    let shell = app.state::<Shell>();
                    if let Ok(mut s) = shell.console.settings().await {
                        s.notifications_paused = !s.notifications_paused;
                        let _ = shell.console.save_settings(&s).await;
                    }
                    update(&app);
                });
            }
            "quit" => app.exit(0),
            _ => {}
        })
        .build(app)?;
    app.manage(TrayItems { count, pause });
    update(app);
    Ok(())
}

struct TrayItems<R: Runtime> {
    count: MenuItem<R>,
    pause: CheckMenuItem<R>,
}

/// Refresh the pending count and the pause check mark.
pub fn update<R: Runtime>(app: &AppHandle<R>) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let shell = app.state::<Shell>();
        let pending: u32 = shell.console.pending_counts().await.map(|c| c.values().sum()).unwrap_or(0);
        let paused = shell.console.settings().await.map(|s| s.notifications_paused).unwrap_or(false);
        let label = match pending {
            0 => "No pending requests".to_string(),
            1 => "1 pending request".to_string(),
            n => format!("{n} pending requests"),
        };
        if let Some(items) = app.try_state::<TrayItems<R>>() {
            let _ = items.count.set_text(&label);
            let _ = items.pause.set_checked(paused);
        }
        if let Some(tray) = app.tray_by_id(TRAY_ID) {
            let _ = tray.set_tooltip(Some(format!("Countersign — {label}")));
            let _ = tray.set_title(if pending > 0 { Some(pending.to_string()) } else { None });
        }
    });
}

/// Whether the desktop shows tray icons: on Linux, a panel has registered a StatusNotifier host on
/// the session bus (stock GNOME without the AppIndicator extension has none); elsewhere, always.
pub async fn hosted() -> bool {
    #[cfg(target_os = "linux")]
    {
        async fn ask() -> zbus::Result<bool> {
            let conn = zbus::Connection::session().await?;
            let watcher = zbus::Proxy::new(
                &conn,
                "org.kde.StatusNotifierWatcher",
                "/StatusNotifierWatcher",
                "org.kde.StatusNotifierWatcher",
            )
            .await?;
            watcher.get_property::<bool>("IsStatusNotifierHostRegistered").await
        }
        ask().await.unwrap_or(false)
    }
    #[cfg(not(target_os = "linux"))]
    {
        true
    }
}
