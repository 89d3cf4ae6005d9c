//! The desktop panel's side of the tray, for the tests: a StatusNotifierWatcher on the private
//! session bus (what a panel such as GNOME's AppIndicator extension or KDE's system tray owns), so
//! the app's real tray icon (libayatana-appindicator through Tauri) registers with it; the icon's
//! properties and its menu are then read and clicked over D-Bus (`org.kde.StatusNotifierItem`,
//! `com.canonical.dbusmenu`) exactly as a panel does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zbus::names::InterfaceName;
use zbus::{OwnedObjectPath, OwnedVariant as OwnedValue, Variant as Value};

const ITEM: &str = "org.kde.StatusNotifierItem";
const MENU: &str = "com.canonical.dbusmenu";

/// Registered items as (bus name, object path).
type Items = Arc<Mutex<Vec<(String, String)>>>;

struct Watcher {
    items: Items,
}

#[zbus::interface(name = "org.kde.StatusNotifierWatcher")]
impl Watcher {
    /// An item registers with its object path (AppIndicator) or its bus name (the spec's form).
    async fn register_status_notifier_item(
        &self,
        #[zbus(header)] header: zbus::message::Header<'_>,
        service: &str,
    ) {
        let sender = header.sender().map(|s| s.to_string()).unwrap_or_default();
        let entry = if service.starts_with('/') {
            (sender, service.to_string())
        } else {
            (service.to_string(), "/StatusNotifierItem".to_string())
        };
        self.items.lock().expect("items").push(entry);
    }

    async fn register_status_notifier_host(&self, _service: &str) {}

    #[zbus(property)]
    async fn registered_status_notifier_items(&self) -> Vec<String> {
        self.items.lock().expect("items").iter().map(|(bus, path)| format!("{bus}{path}")).collect()
    }

    #[zbus(property)]
    async fn is_status_notifier_host_registered(&self) -> bool {
        true
    }

    #[zbus(property)]
    async fn protocol_version(&self) -> i32 {
        0
    }
}

/// The panel: owns `org.kde.StatusNotifierWatcher` until dropped.
#[derive(Debug)]
pub struct Panel {
    conn: zbus::Connection,
    items: Items,
}

/// One entry of a tray menu as a panel would draw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuEntry {
    pub id: i32,
    pub label: String,
    pub enabled: bool,
    /// `Some(0|1)` for a check item.
    pub checked: Option<i32>,
    pub separator: bool,
}

/// A tray icon registered with the panel.
#[derive(Debug)]
pub struct TrayItem {
    conn: zbus::Connection,
    bus: String,
    path: String,
}

impl Panel {
    /// Take the watcher's name on the session bus (panics when another panel holds it).
    pub async fn start() -> Panel {
        let items = Items::default();
        let conn = zbus::connection::Builder::session()
            .name("org.kde.StatusNotifierWatcher")
            .serve_at("/StatusNotifierWatcher", Watcher { items: items.clone() })
            .build()
            .await
            .expect("the StatusNotifierWatcher name (is another panel running on this bus?)");
        Panel { conn, items }
    }

    /// The first item that registers within `secs`.
    pub async fn item(&self, secs: u64) -> TrayItem {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some((bus, path)) = self.items.lock().expect("items").first().cloned() {
                return TrayItem { conn: self.conn.clone(), bus, path };
            }
            assert!(Instant::now() < deadline, "no tray icon registered with the panel within {secs} s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl TrayItem {
    async fn property(&self, name: &str) -> zbus::Result<OwnedValue> {
        let props = zbus::fdo::PropertiesProxy::builder(&self.conn)
            .destination(self.bus.as_str())
            .path(self.path.as_str())
            .build()
            .await?;
        Ok(props.get(InterfaceName::from_static_str_unchecked(ITEM), name).await?)
    }

    /// The text shown beside the icon (AppIndicator's label; Tauri's `set_title`); empty while the
    /// icon does not answer (the tests poll it).
    pub async fn label(&self) -> String {
        match self.property("XAyatanaLabel").await {
            Ok(v) => String::try_from(v).expect("label is a string"),
            Err(_) => String::new(),
        }
    }

    async fn menu_path(&self) -> OwnedObjectPath {
        OwnedObjectPath::try_from(self.property("Menu").await.expect("Menu")).expect("Menu is an object path")
    }

    /// The top level of the icon's menu, in order.
    pub async fn menu(&self) -> Vec<MenuEntry> {
        let path = self.menu_path().await;
        let reply = self
            .conn
            .call_method(
                Some(self.bus.as_str()),
                &path,
                Some(MENU),
                "GetLayout",
                &(0i32, 1i32, Vec::<String>::new()),
            )
            .await
            .expect("GetLayout");
        type Node = (i32, HashMap<String, OwnedValue>, Vec<OwnedValue>);
        let (_revision, (_root, _props, children)): (u32, Node) = reply.body().deserialize().expect("layout");
        children
            .into_iter()
            .map(|child| {
                let (id, props, _): Node = Node::try_from(child).expect("menu node");
                let text = |k: &str| props.get(k).and_then(|v| String::try_from(v.try_clone().ok()?).ok());
                let int = |k: &str| props.get(k).and_then(|v| i32::try_from(v.try_clone().ok()?).ok());
                let flag = |k: &str| props.get(k).and_then(|v| bool::try_from(v.try_clone().ok()?).ok());
                MenuEntry {
                    id,
                    label: text("label").unwrap_or_default().replace('_', ""),
                    enabled: flag("enabled").unwrap_or(true),
                    checked: text("toggle-type")
                        .filter(|t| t == "checkmark")
                        .map(|_| int("toggle-state").unwrap_or(0)),
                    separator: text("type").as_deref() == Some("separator"),
                }
            })
            .collect()
    }

    /// The menu entry labelled `label` (panics with the menu when there is none).
    pub async fn entry(&self, label: &str) -> MenuEntry {
        let menu = self.menu().await;
        menu.iter()
            .find(|e| e.label == label)
            .cloned()
            .unwrap_or_else(|| panic!("no {label:?} in the tray menu: {menu:?}"))
    }

    /// Click a menu entry, as a panel does when the user picks it.
    pub async fn click(&self, id: i32) {
        self.event(id).await.expect("menu Event");
    }

    /// Click an entry that ends the app: the app may leave the bus before it replies, which is
    /// what quitting is; any other error still fails.
    pub async fn click_to_quit(&self, id: i32) {
        match self.event(id).await {
            Ok(_) => {}
            Err(zbus::Error::FDO(e)) if matches!(*e, zbus::fdo::Error::NoReply(_)) => {}
            Err(e) => panic!("menu Event: {e:?}"),
        }
    }

    async fn event(&self, id: i32) -> zbus::Result<zbus::Message> {
        let path = self.menu_path().await;
        let now = u32::try_from(crate::now()).unwrap_or(0);
        self.conn
            .call_method(
                Some(self.bus.as_str()),
                &path,
                Some(MENU),
                "Event",
                &(id, "clicked", Value::from(0i32), now),
            )
            .await
    }
}
