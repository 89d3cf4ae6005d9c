//! Which of the notification daemon's signals are clicks that open a request: the `default`
//! action of a notification this process showed, that is still open, and that the same daemon
//! accepted (the same bus and the same owner of the name) — a daemon that took over the name
//! later hands out the same small ids for notifications of other applications.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use futures::StreamExt as _;
use tokio::sync::broadcast;

use super::{ActionInvokedStream, NotificationClosedStream, RequestRef};

/// How many shown notifications are remembered for their clicks; the oldest is forgotten first
/// (a daemon that never reports closing cannot make this grow).
pub(super) const REMEMBERED: usize = 256;

/// The daemon that accepted a notification: the bus (its server's GUID, unique per bus
/// instance) and the daemon's unique name on it (only unique within one bus instance).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Daemon {
    pub(super) bus: String,
    pub(super) owner: String,
}

/// Notifications shown and still open, by the daemon's id, oldest first.
#[derive(Debug, Default)]
pub(super) struct Open {
    by_id: HashMap<u32, (Daemon, RequestRef)>,
    order: VecDeque<u32>,
}

impl Open {
    /// `daemon` accepted a notification for `request` under `id`.
    pub(super) fn remember(&mut self, id: u32, daemon: Daemon, request: RequestRef) {
        // An id the daemon hands out again is the newest notification, not an old one.
        if self.by_id.insert(id, (daemon, request)).is_some() {
            self.order.retain(|x| *x != id);
        }
        self.order.push_back(id);
        while self.order.len() > REMEMBERED {
            if let Some(old) = self.order.pop_front() {
                self.by_id.remove(&old);
            }
        }
    }

    /// `daemon` says notification `id` was clicked or closed: its request, once, when that daemon
    /// accepted it.
    pub(super) fn forget(&mut self, id: u32, daemon: &Daemon) -> Option<RequestRef> {
        if self.by_id.get(&id).is_none_or(|(d, _)| d != daemon) {
            return None;
        }
        self.order.retain(|x| *x != id);
        self.by_id.remove(&id).map(|(_, request)| request)
    }
}

/// Turn the daemon's signals on the connection to bus `bus` (its GUID) into clicks, forgetting
/// closed notifications. zbus hands on only signals from the name's current owner. Ends with the
/// connection, saying so: clicks are heard again once the next notification connects afresh.
pub(super) async fn hear(
    bus: String,
    invoked: ActionInvokedStream,
    closed: NotificationClosedStream,
    open: Arc<Mutex<Open>>,
    clicks: broadcast::Sender<RequestRef>,
) {
    enum Heard {
        Action(u32, String),
        Closed(u32),
    }
    let from = |m: &zbus::Message| m.header().sender().map(|s| s.to_string());
    let invoked = invoked.filter_map(|s| async move {
        let a = s.args().ok()?;
        Some((from(s.message())?, Heard::Action(a.id, a.action_key)))
    });
    let closed = closed.filter_map(|s| async move {
        let a = s.args().ok()?;
        Some((from(s.message())?, Heard::Closed(a.id)))
    });
    let mut heard = futures::stream::select(Box::pin(invoked), Box::pin(closed));
    while let Some((owner, h)) = heard.next().await {
        let daemon = Daemon { bus: bus.clone(), owner };
        let mut open = open.lock().unwrap_or_else(|p| p.into_inner());
        match h {
            Heard::Action(id, key) if key == "default" => {
                if let Some(request) = open.forget(id, &daemon) {
                    let _ = clicks.send(request);
                }
            }
            Heard::Action(..) => {}
            Heard::Closed(id) => {
                open.forget(id, &daemon);
            }
        }
    }
    tracing::warn!(
        bus = %bus,
        "the connection to the notification daemon ended: notification clicks are not heard until \
         the next notification connects again"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(i: u32) -> RequestRef {
        ("ep".into(), format!("r{i}"))
    }

    fn daemon(owner: &str) -> Daemon {
        Daemon { bus: "guid".into(), owner: owner.into() }
    }

    #[test]
    fn open_notifications_are_bounded_and_forgotten_once() {
        let d = daemon(":1.1");
        let mut open = Open::default();
        for i in 0..(REMEMBERED as u32 + 10) {
            open.remember(i, d.clone(), r(i));
        }
        assert_eq!(open.by_id.len(), REMEMBERED);
        assert_eq!(open.order.len(), REMEMBERED);
        assert_eq!(open.forget(0, &d), None, "the oldest were forgotten");
        assert_eq!(open.forget(REMEMBERED as u32 + 9, &d), Some(r(REMEMBERED as u32 + 9)));
        assert_eq!(open.forget(REMEMBERED as u32 + 9, &d), None, "a click counts once");
        open.remember(5000, d.clone(), r(1));
        open.remember(6000, d.clone(), r(3));
        open.remember(5000, d.clone(), r(2));
        assert_eq!(
            open.order.iter().filter(|x| **x == 5000).count(),
            1,
            "an id the daemon reuses is listed once"
        );
        assert_eq!(open.order.back(), Some(&5000), "and counts as the newest");
        assert_eq!(open.by_id.get(&5000).map(|(_, q)| q), Some(&r(2)), "for the request shown last under it");
    }

    /// A daemon that took over the name (or the same unique name on another bus) hands out the
    /// same ids for other applications' notifications: its signals for them are not ours.
    #[test]
    fn only_the_daemon_that_accepted_a_notification_clicks_or_closes_it() {
        let mut open = Open::default();
        open.remember(1, daemon(":1.1"), r(1));
        assert_eq!(open.forget(1, &daemon(":1.7")), None, "another owner");
        let other_bus = Daemon { bus: "other guid".into(), owner: ":1.1".into() };
        assert_eq!(open.forget(1, &other_bus), None, "the same unique name on another bus");
        assert_eq!(open.forget(1, &daemon(":1.1")), Some(r(1)), "still open for its own daemon");
    }
}
