//! The desktop's notification server (`org.freedesktop.Notifications`) over one long-lived
//! session-bus connection: notifications go out on it and their clicks come back on it.
//!
//! A click counts only when it is the `default` action of a notification this process showed and
//! that is still open, and the signal came from the process that owns the notification service's
//! name and accepted that notification (see [`clicks`]): zbus matches signals on the owner's
//! unique name, so an `ActionInvoked` emitted by any other process on the session bus is dropped.
//! A click only ever opens a request.
//!
//! A daemon that does not answer within [`NOTIFY_TIMEOUT`] costs that notification, never a task
//! waiting forever: the connection is dropped and the next notification connects afresh (and
//! hears clicks on the new connection).

mod clicks;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::broadcast;
use zbus::Variant as Value;

use self::clicks::{Daemon, Open};

/// A request, as (enforcement point, request id): ids are only unique per enforcement point.
pub type RequestRef = (String, String);

/// How long the daemon has to accept a notification, connecting included, before it counts as
/// lost. dunst answers in about 4 ms and a fresh connection takes a few more, so 2 s is several
/// hundred times the usual answer even on a loaded machine; a notification that shows up later
/// than that is no longer a prompt notice of a new request, and a hung daemon then holds each
/// waiting task for 2 s at most instead of forever.
pub const NOTIFY_TIMEOUT: Duration = Duration::from_secs(2);

#[zbus::proxy(
    interface = "org.freedesktop.Notifications",
    default_service = "org.freedesktop.Notifications",
    default_path = "/org/freedesktop/Notifications"
)]
trait Notifications {
    #[zbus(signal)]
    fn action_invoked(&self, id: u32, action_key: String) -> zbus::Result<()>;

    #[zbus(signal)]
    fn notification_closed(&self, id: u32, reason: u32) -> zbus::Result<()>;
}

/// Why a notification was not shown.
#[derive(Debug, thiserror::Error)]
pub enum ShowError {
    /// The daemon (or the bus) did not answer in time; the connection was dropped.
    #[error("the notification daemon did not answer within {0:?}")]
    NotAnswered(Duration),
    /// The bus or the daemon failed, or the daemon answered with an error.
    #[error(transparent)]
    Bus(#[from] zbus::Error),
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

/// The live link: the proxy on the connection, and the task that hears its signals.
#[derive(Debug)]
struct Link {
    proxy: NotificationsProxy<'static>,
    listener: tokio::task::JoinHandle<()>,
    /// Which connection this is, counted from 1: a failure on an older one leaves this one be.
    made: u64,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// The live link, if any, and how many connections were made.
#[derive(Debug, Default)]
struct Links {
    live: Option<Link>,
    made: u64,
}

/// The notification server, reached over one bus connection made on first use and made again
/// after the connection fails or the daemon does not answer. Needs a Tokio runtime.
#[derive(Debug)]
pub struct Desktop {
    /// The bus address; `None`: the session bus.
    bus: Option<String>,
    links: tokio::sync::Mutex<Links>,
    open: Arc<Mutex<Open>>,
    clicks: broadcast::Sender<RequestRef>,
}

impl Default for Desktop {
    /// The notification server on the session bus.
    fn default() -> Self {
        Desktop {
            bus: None,
            links: tokio::sync::Mutex::default(),
            open: Arc::default(),
            clicks: broadcast::channel(16).0,
        }
    }
}

impl Desktop {
    /// The notification server on the bus at `address` (a D-Bus address such as
    /// `unix:path=/run/…/bus`); checked when the first notification connects.
    pub fn on_bus(address: &str) -> Desktop {
        Desktop { bus: Some(address.to_owned()), ..Desktop::default() }
    }

    /// Requests whose notification was clicked, from now on (over every connection made).
    pub fn clicks(&self) -> broadcast::Receiver<RequestRef> {
        self.clicks.subscribe()
    }

    /// Show `note`; the daemon's id for it once the daemon accepted it, within [`NOTIFY_TIMEOUT`].
    pub async fn show(&self, note: Note) -> Result<u32, ShowError> {
        let mut used = None;
        let shown = tokio::time::timeout(NOTIFY_TIMEOUT, self.try_show(note, &mut used)).await;
        match shown {
            Ok(Ok(id)) => Ok(id),
            // The daemon answered with an error: the link is fine.
            Ok(Err(e @ zbus::Error::MethodError(..))) => Err(e.into()),
            // Anything else may be a broken connection: the next notification connects afresh.
            Ok(Err(e)) => {
                self.drop_link(used, "the notification bus failed").await;
                Err(e.into())
            }
            Err(_) => {
                self.drop_link(used, "the notification daemon did not answer in time").await;
                Err(ShowError::NotAnswered(NOTIFY_TIMEOUT))
            }
        }
    }

    /// Connect when needed and show `note`; `used` says which connection, once there is one.
    async fn try_show(&self, note: Note, used: &mut Option<u64>) -> zbus::Result<u32> {
        let (proxy, made) = self.proxy().await?;
        *used = Some(made);
        let urgency: u8 = match note.urgency {
            Urgency::Low => 0,
            Urgency::Normal => 1,
            Urgency::Critical => 2,
        };
        let hints =
            HashMap::from([("urgency", Value::U8(urgency)), ("category", Value::from("im.received"))]);
        // The only action: open the request. Never an approval.
        let actions: &[&str] = &["default", "Open request"];
        let body =
            ("Countersign", 0u32, "", note.summary.as_str(), note.body.as_str(), actions, hints, -1i32);
        let reply = proxy.inner().call_method("Notify", &body).await?;
        let id: u32 = reply.body().deserialize()?;
        // The daemon that accepted it is the only one whose click on it counts.
        let owner = reply.header().sender().map(|s| s.to_string()).unwrap_or_default();
        let daemon = Daemon { bus: proxy.inner().connection().server_guid().to_string(), owner };
        self.open.lock().unwrap_or_else(|p| p.into_inner()).remember(id, daemon, note.request);
        Ok(id)
    }

    /// Drop connection `made` (when it is still the live one) for `why`. `None`: it failed before
    /// there was one, and a connection being made meanwhile is left be.
    async fn drop_link(&self, made: Option<u64>, why: &str) {
        let Some(made) = made else { return };
        let mut links = self.links.lock().await;
        if links.live.as_ref().is_some_and(|l| l.made == made) {
            tracing::warn!(
                reason = why,
                "dropping the notification connection; the next notification connects again"
            );
            links.live = None;
        }
    }

    /// The proxy on the live link and which connection it is, connecting (and starting to hear
    /// clicks) first when there is none or it ended.
    async fn proxy(&self) -> zbus::Result<(NotificationsProxy<'static>, u64)> {
        let mut links = self.links.lock().await;
        let alive = |l: &&Link| !l.listener.is_finished() && !l.proxy.inner().connection().is_closed();
        if let Some(l) = links.live.as_ref().filter(alive) {
            return Ok((l.proxy.clone(), l.made));
        }
        let builder = match &self.bus {
            None => zbus::connection::Builder::session(),
            Some(address) => zbus::connection::Builder::address(address.as_str()),
        };
        let conn = builder.build().await?;
        let proxy = NotificationsProxy::new(&conn).await?;
        // Subscribed before the first notification goes out, so no click can be missed.
        let invoked = proxy.receive_action_invoked().await?;
        let closed = proxy.receive_notification_closed().await?;
        let bus = conn.server_guid().to_string();
        let listener =
            tokio::spawn(clicks::hear(bus, invoked, closed, self.open.clone(), self.clicks.clone()));
        links.made += 1;
        links.live = Some(Link { proxy: proxy.clone(), listener, made: links.made });
        Ok((proxy, links.made))
    }
}
