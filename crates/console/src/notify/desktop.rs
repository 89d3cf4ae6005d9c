//! The desktop's notification server (`org.freedesktop.Notifications`) over one long-lived
//! session-bus connection: notifications go out on it and their clicks come back on it.
//!
//! A click counts only when it is the `default` action of a notification this process showed and
//! that is still open, and the signal came from the process that owns the notification service's
//! name: zbus matches signals on the owner's unique name, so an `ActionInvoked` emitted by any
//! other process on the session bus is dropped. A click only ever opens a request.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use futures::StreamExt as _;
use tokio::sync::broadcast;
use zbus::Variant as Value;

/// A request, as (enforcement point, request id): ids are only unique per enforcement point.
pub type RequestRef = (String, String);

/// How many shown notifications are remembered for their clicks; the oldest is forgotten first
/// (a daemon that never reports closing cannot make this grow).
const REMEMBERED: usize = 256;

#[zbus::proxy(
    interface = "org.freedesktop.Notifications",
    default_service = "org.freedesktop.Notifications",
    default_path = "/org/freedesktop/Notifications"
)]
trait Notifications {
    #[allow(clippy::too_many_arguments)]
    fn notify(
        &self,
        app_name: &str,
        replaces_id: u32,
        app_icon: &str,
        summary: &str,
        body: &str,
        actions: &[&str],
        hints: HashMap<&str, Value<'_>>,
        expire_timeout: i32,
    ) -> zbus::Result<u32>;

    #[zbus(signal)]
    fn action_invoked(&self, id: u32, action_key: String) -> zbus::Result<()>;

    #[zbus(signal)]
    fn notification_closed(&self, id: u32, reason: u32) -> zbus::Result<()>;
}

/// How urgent a notification is (the specification's `urgency` hint).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Urgency {
    /// 0.
    Low,
    /// 1.
    Normal,
    /// 2: the daemon keeps it until dismissed.
    Critical,
}

/// One notification to show.
#[derive(Debug, Clone)]
pub struct Note {
    /// The first line; markup already escaped.
    pub summary: String,
    /// The rest; markup already escaped.
    pub body: String,
    /// Its urgency.
    pub urgency: Urgency,
    /// The request a click opens.
    pub request: RequestRef,
}

/// Notifications shown and still open, by the daemon's id, oldest first.
#[derive(Debug, Default)]
struct Open {
    by_id: HashMap<u32, RequestRef>,
    order: VecDeque<u32>,
}

impl Open {
    fn remember(&mut self, id: u32, request: RequestRef) {
        // An id the daemon hands out again is the newest notification, not an old one.
        if self.by_id.insert(id, request).is_some() {
            self.order.retain(|x| *x != id);
        }
        self.order.push_back(id);
        while self.order.len() > REMEMBERED {
            if let Some(old) = self.order.pop_front() {
                self.by_id.remove(&old);
            }
        }
    }

    fn forget(&mut self, id: u32) -> Option<RequestRef> {
        let request = self.by_id.remove(&id)?;
        self.order.retain(|x| *x != id);
        Some(request)
    }
}

/// The live link: the proxy on the connection, and the task that hears its signals.
#[derive(Debug)]
struct Link {
    proxy: NotificationsProxy<'static>,
    listener: tokio::task::JoinHandle<()>,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// The notification server, reached over one session-bus connection made on first use and made
/// again after the connection fails. Needs a Tokio runtime.
#[derive(Debug)]
pub struct Desktop {
    link: tokio::sync::Mutex<Option<Link>>,
    open: Arc<Mutex<Open>>,
    clicks: broadcast::Sender<RequestRef>,
}

impl Default for Desktop {
    fn default() -> Self {
        Desktop {
            link: tokio::sync::Mutex::new(None),
            open: Arc::default(),
            clicks: broadcast::channel(16).0,
        }
    }
}

impl Desktop {
    /// Requests whose notification was clicked, from now on.
    pub fn clicks(&self) -> broadcast::Receiver<RequestRef> {
        self.clicks.subscribe()
    }

    /// Show `note`; the daemon's id for it once the daemon accepted it.
    pub async fn show(&self, note: Note) -> zbus::Result<u32> {
        let proxy = self.proxy().await?;
        let urgency: u8 = match note.urgency {
            Urgency::Low => 0,
            Urgency::Normal => 1,
            Urgency::Critical => 2,
        };
        let hints =
            HashMap::from([("urgency", Value::U8(urgency)), ("category", Value::from("im.received"))]);
        // The only action: open the request. Never an approval.
        let actions = ["default", "Open request"];
        match proxy.notify("Countersign", 0, "", &note.summary, &note.body, &actions, hints, -1).await {
            Ok(id) => {
                self.open.lock().unwrap_or_else(|p| p.into_inner()).remember(id, note.request);
                Ok(id)
            }
            Err(e) => {
                // The daemon answered with an error: the link is fine. Anything else may be a
                // broken connection: the next notification connects afresh.
                if !matches!(e, zbus::Error::MethodError(..)) {
                    *self.link.lock().await = None;
                }
                Err(e)
            }
        }
    }

    /// The proxy on the live link, connecting (and starting to hear clicks) first when there is none.
    async fn proxy(&self) -> zbus::Result<NotificationsProxy<'static>> {
        let mut link = self.link.lock().await;
        if let Some(l) = link.as_ref().filter(|l| !l.listener.is_finished()) {
            return Ok(l.proxy.clone());
        }
        let conn = zbus::Connection::session().await?;
        let proxy = NotificationsProxy::new(&conn).await?;
        // Subscribed before the first notification goes out, so no click can be missed.
        let invoked = proxy.receive_action_invoked().await?;
        let closed = proxy.receive_notification_closed().await?;
        let listener = tokio::spawn(hear(invoked, closed, self.open.clone(), self.clicks.clone()));
        *link = Some(Link { proxy: proxy.clone(), listener });
        Ok(proxy)
    }
}

/// Turn the daemon's signals into clicks, forgetting closed notifications; ends with the connection.
async fn hear(
    invoked: ActionInvokedStream,
    closed: NotificationClosedStream,
    open: Arc<Mutex<Open>>,
    clicks: broadcast::Sender<RequestRef>,
) {
    enum Heard {
        Action(u32, String),
        Closed(u32),
    }
    let invoked =
        invoked.filter_map(|s| async move { s.args().ok().map(|a| Heard::Action(a.id, a.action_key)) });
    let closed = closed.filter_map(|s| async move { s.args().ok().map(|a| Heard::Closed(a.id)) });
    let mut heard = futures::stream::select(Box::pin(invoked), Box::pin(closed));
    while let Some(h) = heard.next().await {
        let mut open = open.lock().unwrap_or_else(|p| p.into_inner());
        match h {
            Heard::Action(id, key) if key == "default" => {
                if let Some(request) = open.forget(id) {
                    let _ = clicks.send(request);
                }
            }
            Heard::Action(..) => {}
            Heard::Closed(id) => {
                open.forget(id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(i: u32) -> RequestRef {
        ("ep".into(), format!("r{i}"))
    }

    #[test]
    fn open_notifications_are_bounded_and_forgotten_once() {
        let mut open = Open::default();
        for i in 0..(REMEMBERED as u32 + 10) {
            open.remember(i, r(i));
        }
        assert_eq!(open.by_id.len(), REMEMBERED);
        assert_eq!(open.order.len(), REMEMBERED);
        assert_eq!(open.forget(0), None, "the oldest were forgotten");
        assert_eq!(open.forget(REMEMBERED as u32 + 9), Some(r(REMEMBERED as u32 + 9)));
        assert_eq!(open.forget(REMEMBERED as u32 + 9), None, "a click counts once");
        open.remember(5000, r(1));
        open.remember(6000, r(3));
        open.remember(5000, r(2));
        assert_eq!(
            open.order.iter().filter(|x| **x == 5000).count(),
            1,
            "an id the daemon reuses is listed once"
        );
        assert_eq!(open.order.back(), Some(&5000), "and counts as the newest");
        assert_eq!(open.by_id.get(&5000), Some(&r(2)), "for the request shown last under it");
    }
}
