//! Who follows which enforcement point: one actor owns the per-point watch tasks and their live
//! connection states. Fronts (the CLI's `watch`, the desktop app) hold a [`Subscriptions`] handle,
//! send it follow / unfollow / status, and receive every connection change and watch event
//! through the callback given at start.

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::ep::{Connection, Ep};
use crate::watch::WatchEvent;
use crate::{Console, ConsoleError, Result};

/// How often `watch` looks for enforcement points added or removed since it started.
pub const EP_RESCAN: Duration = Duration::from_secs(5);

/// The live connection of one followed enforcement point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Link {
    /// Its state.
    pub state: Connection,
    /// Why it is offline or stopped.
    pub error: Option<String>,
}

/// What the actor tells its owner, in the order it happened.
#[derive(Debug)]
pub enum Update {
    /// A followed enforcement point connected or lost its connection; [`Subscriptions::status`]
    /// answers with `link` from now on.
    Connection {
        /// Which.
        ep: String,
        /// Its new connection.
        link: Link,
    },
    /// Something a watch saw (after the connection change it caused, if any).
    Watch(WatchEvent),
    /// A watch stopped for good on a keyring or database error; its state is now
    /// [`Connection::Error`].
    Stopped {
        /// Which enforcement point.
        ep: String,
        /// Why.
        error: ConsoleError,
    },
}

/// A message to the actor.
enum Msg {
    Follow(Ep),
    Unfollow(String),
    Status(oneshot::Sender<HashMap<String, Link>>),
}

/// A handle on the subscriptions actor; cheap to clone. The actor, and every watch it runs, ends
/// when the last handle is dropped.
#[derive(Debug, Clone)]
pub struct Subscriptions {
    tx: mpsc::UnboundedSender<Msg>,
}

impl Subscriptions {
    /// Start the actor on the current Tokio runtime, following nothing yet; `on_update` is called
    /// from the actor's task for every [`Update`].
    pub fn start(console: Console, on_update: impl Fn(Update) + Send + 'static) -> Subscriptions {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(Actor::new(console, on_update).run(rx));
        Subscriptions { tx }
    }

    /// Follow `ep` (state [`Connection::Connecting`] until its stream opens). Following it again
    /// with the same key and address changes nothing; with another (removed and added again
    /// meanwhile), its watch starts over with the new pin.
    pub fn follow(&self, ep: Ep) {
        let _ = self.tx.send(Msg::Follow(ep));
    }

    /// Stop following `ep` (an id) and forget its connection.
    pub fn unfollow(&self, ep: &str) {
        let _ = self.tx.send(Msg::Unfollow(ep.into()));
    }

    /// The connection of every followed enforcement point, by id.
    pub async fn status(&self) -> Result<HashMap<String, Link>> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(Msg::Status(reply)).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())
    }
}

fn stopped() -> ConsoleError {
    ConsoleError::Invalid("the subscriptions have stopped".into())
}

/// A followed enforcement point's pin and its watch task.
struct Followed {
    kid: String,
    url: String,
    /// The pin's own trust root: a re-pin with another one restarts the watch.
    ca_cert: Option<String>,
    task: tokio::task::AbortHandle,
}

/// The actor's state: only its own task touches it.
struct Actor<F> {
    console: Console,
    on_update: F,
    links: HashMap<String, Link>,
    following: HashMap<String, Followed>,
    tasks: tokio::task::JoinSet<(String, Result<()>)>,
    /// What the watch tasks saw, to be applied here in order.
    seen_tx: mpsc::UnboundedSender<WatchEvent>,
    seen: mpsc::UnboundedReceiver<WatchEvent>,
}

impl<F: Fn(Update) + Send + 'static> Actor<F> {
    fn new(console: Console, on_update: F) -> Self {
        let (seen_tx, seen) = mpsc::unbounded_channel();
        Actor {
            console,
            on_update,
            links: HashMap::new(),
            following: HashMap::new(),
            tasks: tokio::task::JoinSet::new(),
            seen_tx,
            seen,
        }
    }

    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>) {
        loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(Msg::Follow(ep)) => self.follow(ep),
                    Some(Msg::Unfollow(ep)) => self.unfollow(&ep),
                    Some(Msg::Status(reply)) => {
                        let _ = reply.send(self.links.clone());
                    }
                    // Every handle is gone: dropping the join set aborts the watches.
                    None => return,
                },
                Some(event) = self.seen.recv() => self.seen(event),
                Some(done) = self.tasks.join_next_with_id() => match done {
                    Ok((task, (ep, Err(error)))) => self.failed(task, ep, error),
                    // A watch that panicked must not look followed (its link would stay
                    // "connected" and a rescan would never restart it): it stops, with an error.
                    Err(e) if e.is_panic() => self.panicked(e.id()),
                    _ => {}
                }
            }
        }
    }

    fn follow(&mut self, ep: Ep) {
        if let Some(f) = self.following.get(&ep.ep) {
            if f.kid == ep.kid && f.url == ep.url && f.ca_cert == ep.ca_cert {
                return;
            }
            f.task.abort();
        }
        let (id, kid, url, ca_cert) = (ep.ep.clone(), ep.kid.clone(), ep.url.clone(), ep.ca_cert.clone());
        let (console, seen) = (self.console.clone(), self.seen_tx.clone());
        let task = self.tasks.spawn(async move {
            let id = ep.ep.clone();
            let on_event = move |e: WatchEvent| {
                let _ = seen.send(e);
            };
            (id, console.watch_ep(ep, on_event).await)
        });
        self.links.insert(id.clone(), Link { state: Connection::Connecting, error: None });
        self.following.insert(id, Followed { kid, url, ca_cert, task });
    }

    fn unfollow(&mut self, ep: &str) {
        if let Some(f) = self.following.remove(ep) {
            f.task.abort();
        }
        self.links.remove(ep);
    }

    fn seen(&mut self, event: WatchEvent) {
        let change = match &event {
            WatchEvent::Connected { ep } => Some((ep, Link { state: Connection::Connected, error: None })),
            WatchEvent::Disconnected { ep, error, .. } => {
                Some((ep, Link { state: Connection::Offline, error: Some(error.clone()) }))
            }
            _ => None,
        };
        if let Some((ep, link)) = change {
            // A late event of a watch stopped meanwhile changes nothing.
            if self.following.contains_key(ep) {
                self.links.insert(ep.clone(), link.clone());
                (self.on_update)(Update::Connection { ep: ep.clone(), link });
            }
        }
        (self.on_update)(Update::Watch(event));
    }

    fn panicked(&mut self, task: tokio::task::Id) {
        let Some((ep, f)) = self.following.iter().find(|(_, f)| f.task.id() == task) else { return };
        let (ep, url) = (ep.clone(), f.url.clone());
        let error = ConsoleError::Network { url, message: "its watch stopped on an internal error".into() };
        self.failed(task, ep, error);
    }

    fn failed(&mut self, task: tokio::task::Id, ep: String, error: ConsoleError) {
        if self.following.get(&ep).is_none_or(|f| f.task.id() != task) {
            return;
        }
        self.following.remove(&ep);
        self.links.insert(ep.clone(), Link { state: Connection::Error, error: Some(error.to_string()) });
        (self.on_update)(Update::Stopped { ep, error });
    }
}

impl Console {
    /// Follow every enforcement point's stream until the process ends, reconnecting with full-jitter
    /// backoff. `on_event` is called for everything worth showing. Enforcement points added (say by
    /// `countersign ep add` in another terminal) are followed within [`EP_RESCAN`], removed ones
    /// dropped, re-pinned ones followed again with the new pin.
    pub async fn watch(&self, on_event: impl Fn(WatchEvent) + Send + 'static) -> Result<()> {
        if self.eps().await?.is_empty() {
            return Err(ConsoleError::Invalid(
                "no enforcement point: add one with `countersign ep add`".into(),
            ));
        }
        let (stopped_tx, mut stopped) = mpsc::unbounded_channel();
        let subscriptions = Subscriptions::start(self.clone(), move |update| match update {
            Update::Watch(event) => on_event(event),
            Update::Stopped { ep, error } => {
                let _ = stopped_tx.send((ep, error));
            }
            Update::Connection { .. } => {}
        });
        let mut rescan = tokio::time::interval(EP_RESCAN);
        loop {
            tokio::select! {
                _ = rescan.tick() => {
                    let eps = self.eps().await?;
                    for id in subscriptions.status().await?.into_keys() {
                        if !eps.iter().any(|e| e.ep == id) {
                            subscriptions.unfollow(&id);
                        }
                    }
                    for ep in eps {
                        subscriptions.follow(ep);
                    }
                }
                Some((ep, error)) = stopped.recv() => {
                    // An enforcement point removed meanwhile may fail its last write: not fatal.
                    if self.eps().await?.iter().any(|e| e.ep == ep) {
                        return Err(error);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::keys::MemoryStore;

    /// Follow, status and unfollow over the actor: an enforcement point that cannot be reached is
    /// connecting, then offline with its error (a connection change before the watch event), then
    /// gone once unfollowed.
    #[tokio::test]
    async fn follow_status_unfollow() {
        let dir = tempfile::tempdir().unwrap();
        let c = Console::open(dir.path(), Arc::new(MemoryStore::default())).await.unwrap();
        let key = countersign_protocol::generate_key();
        // Port 1 on loopback: connection refused.
        let id = crate::testing::pin_key(&c, &key.verifying_key(), "http://127.0.0.1:1").await;
        let (tx, mut updates) = mpsc::unbounded_channel();
        let subscriptions = Subscriptions::start(c.clone(), move |u| {
            let _ = tx.send(u);
        });
        assert!(subscriptions.status().await.unwrap().is_empty());
        subscriptions.follow(c.eps().await.unwrap().remove(0));
        let link = subscriptions.status().await.unwrap().remove(&id);
        assert!(link.is_some_and(|l| l.state == Connection::Connecting || l.state == Connection::Offline));
        match updates.recv().await.unwrap() {
            Update::Connection { ep, link } => {
                assert_eq!((ep.as_str(), link.state), (id.as_str(), Connection::Offline));
                assert!(link.error.is_some());
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(updates.recv().await.unwrap(), Update::Watch(WatchEvent::Disconnected { .. })));
        assert_eq!(subscriptions.status().await.unwrap()[&id].state, Connection::Offline);
        subscriptions.unfollow(&id);
        assert!(subscriptions.status().await.unwrap().is_empty());
    }
}
