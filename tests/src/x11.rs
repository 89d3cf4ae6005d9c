//! The X display as a window manager sees it (the test session has none): find the app's window,
//! ask it to close as a title bar's close button does (`WM_DELETE_WINDOW`), tell whether it is shown.

use x11rb::connection::Connection as _;
use x11rb::protocol::xproto::{self, ConnectionExt as _};
use x11rb::rust_connection::RustConnection;

/// A connection to the session's display (`DISPLAY`).
#[derive(Debug)]
pub struct Display {
    conn: RustConnection,
    root: xproto::Window,
}

impl Display {
    pub fn open() -> Display {
        let (conn, screen) = x11rb::connect(None).expect("the X display (DISPLAY)");
        let root = conn.setup().roots[screen].root;
        Display { conn, root }
    }

    fn atom(&self, name: &str) -> xproto::Atom {
        self.conn.intern_atom(false, name.as_bytes()).expect("intern").reply().expect("atom").atom
    }

    /// Top-level windows titled `title` (`_NET_WM_NAME`), shown or not.
    pub fn windows_titled(&self, title: &str) -> Vec<xproto::Window> {
        let (name, utf8) = (self.atom("_NET_WM_NAME"), self.atom("UTF8_STRING"));
        let tree = self.conn.query_tree(self.root).expect("query_tree").reply().expect("tree");
        tree.children
            .into_iter()
            .filter(|&w| {
                self.conn
                    .get_property(false, w, name, utf8, 0, 256)
                    .ok()
                    .and_then(|c| c.reply().ok())
                    .is_some_and(|p| p.value == title.as_bytes())
            })
            .collect()
    }

    /// Whether `window` exists (shown or not).
    pub fn exists(&self, window: xproto::Window) -> bool {
        self.conn.get_window_attributes(window).ok().and_then(|c| c.reply().ok()).is_some()
    }

    /// Whether `window` is mapped and viewable.
    pub fn is_shown(&self, window: xproto::Window) -> bool {
        self.conn
            .get_window_attributes(window)
            .ok()
            .and_then(|c| c.reply().ok())
            .is_some_and(|a| a.map_state == xproto::MapState::VIEWABLE)
    }

    /// Ask `window` to close, as a window manager does for its close button.
    pub fn close(&self, window: xproto::Window) {
        let (protocols, delete) = (self.atom("WM_PROTOCOLS"), self.atom("WM_DELETE_WINDOW"));
        let event =
            xproto::ClientMessageEvent::new(32, window, protocols, [delete, x11rb::CURRENT_TIME, 0, 0, 0]);
        self.conn.send_event(false, window, xproto::EventMask::NO_EVENT, event).expect("send_event");
        self.conn.flush().expect("flush");
    }
}
