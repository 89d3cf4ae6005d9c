//! The shell's state, registered at setup: the console core, the notifier, and the handle on the
//! core's subscriptions actor (which alone knows who is followed and how each connection is).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use countersign_console::ep::{Connection, Ep};
use countersign_console::notify::Notifier;
use countersign_console::subscriptions::{Subscriptions, Update};
use countersign_console::Console;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::dto::EpStatus;
use crate::error::IpcResult;

/// The shell's state.
#[derive(Debug)]
pub struct Shell {
    /// The console core.
    pub console: Console,
    /// Follows the enforcement points; its updates reach the UI through [`crate::subscriptions`].
    pub subscriptions: Subscriptions,
    /// The actor's updates until [`crate::subscriptions::forward`] takes them (the app handle
    /// they need exists only once the app is built).
    pub(crate) updates: Mutex<Option<UnboundedReceiver<Update>>>,
    /// Notifications and flood tracking.
    pub notifier: Arc<Notifier>,
}

impl Shell {
    /// The shell's state over an opened console; starts the subscriptions actor (on Tauri's
    /// runtime), following nothing yet.
    pub fn new(console: Console) -> Shell {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let subscriptions = {
            let _runtime = tauri::async_runtime::handle().inner().enter();
            Subscriptions::start(console.clone(), move |update| {
                let _ = tx.send(update);
            })
        };
        Shell {
            console,
            subscriptions,
            updates: Mutex::new(Some(rx)),
            notifier: Arc::new(Notifier::default()),
        }
    }

    /// Display names of the pinned enforcement points.
    pub async fn ep_names(&self) -> IpcResult<HashMap<String, String>> {
        Ok(self.console.eps().await?.into_iter().map(|e| (e.ep, e.name)).collect())
    }

    /// Every pinned enforcement point with its live connection state and pending count.
    pub async fn ep_statuses(&self) -> IpcResult<Vec<EpStatus>> {
        let eps = self.console.eps().await?;
        let pending = self.console.pending_counts().await?;
        let links = self.subscriptions.status().await?;
        Ok(eps
            .iter()
            .map(|ep| {
                let n = pending.get(&ep.ep).copied().unwrap_or(0);
                let link = links.get(&ep.ep);
                let mut s = ep_status(ep, link.map(|l| l.state).unwrap_or(Connection::Connecting), n);
                s.last_error = link.and_then(|l| l.error.clone()).or(s.last_error);
                s
            })
            .collect())
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
