//! The Countersign console without a window.
//!
//! [`Console`] is what the `countersign` CLI and the desktop app both drive: it owns the profile
//! (directory, history database, keyring entry), pins enforcement points, receives and verifies
//! step-up requests, signs decisions with the keyring key, delivers them through a durable outbox,
//! and keeps the hash-chained review history.
//!
//! Invariants kept here (not in any front end):
//! - a request that does not verify against the pinned key is never stored as a request, only
//!   recorded as rejected;
//! - nothing is signed for a request that is expired, already decided, or whose digest differs
//!   from what was stored and shown;
//! - the private key exists only in the OS keyring and, during a signature, in zeroized memory;
//! - a decision and its outbox row are committed before the first delivery attempt.

pub mod decide;
pub mod display;
pub mod ep;
pub mod ep_client;
pub mod error;
pub mod history;
pub mod keys;
pub mod notify;
pub mod outbox;
pub mod profile;
pub mod requests;
pub mod review;
pub mod secret;
pub mod settings;
pub mod subscriptions;
pub mod sync;
pub mod watch;

use std::path::Path;
use std::sync::Arc;

pub use decide::{DecisionInput, DecisionOutcome};
pub(crate) use ep_client::with_causes;
pub use ep_client::{CALL_TIMEOUT, CONNECT_TIMEOUT, READ_TIMEOUT};
pub use error::{ConsoleError, Result};
pub use keys::{KeyInfo, OsKeyring, SecretStore};
pub use profile::Profile;
pub use secret::Sensitive;

/// The console core over one profile. Cheap to clone: clones share the database pool, the
/// keyring store and the HTTP client.
#[derive(Clone, Debug)]
pub struct Console {
    profile: Arc<Profile>,
    secrets: Arc<dyn SecretStore>,
    /// The HTTP clients for enforcement points.
    clients: Arc<ep_client::EpClients>,
    /// One checkpoint (and keyring anchor write) at a time in this process.
    checkpointing: Arc<tokio::sync::Mutex<()>>,
}

impl Console {
    /// Open (creating if needed) the profile in `dir`, with private keys kept in `secrets`.
    pub async fn open(dir: &Path, secrets: Arc<dyn SecretStore>) -> Result<Console> {
        let profile = Profile::open(dir).await?;
        Ok(Console {
            profile: Arc::new(profile),
            secrets,
            clients: Arc::new(ep_client::EpClients::new()?),
            checkpointing: Default::default(),
        })
    }

    /// The profile this console works on.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    pub(crate) fn db(&self) -> &sqlx::SqlitePool {
        &self.profile.db
    }

    /// Copy what the write-ahead log holds back into the database file without blocking anyone
    /// (`PRAGMA wal_checkpoint(PASSIVE)`). SQLite's automatic checkpoints are off so that none
    /// stalls a commit on the event path; the watch loop calls this every couple of seconds, the
    /// CLI before it exits, and opening a profile does it once.
    pub async fn fold_wal(&self) -> Result<()> {
        sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(self.db()).await?;
        Ok(())
    }

    /// A durable write transaction (synchronous FULL: its commit is fsync'd) on the process's one
    /// writer connection. It takes SQLite's write lock at once (`BEGIN IMMEDIATE`), so that
    /// concurrent processes on one profile (say `watch` and `approve`) queue on the busy timeout
    /// instead of failing when a read-then-append transaction is overtaken.
    pub(crate) async fn write_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(self.profile.writer.begin_with("PRAGMA synchronous = FULL; BEGIN IMMEDIATE").await?)
    }

    /// A write transaction like [`Console::write_tx`] whose commit is not fsync'd (synchronous
    /// NORMAL in WAL mode: atomic and consistent, durable at the next FULL commit or checkpoint).
    /// Only for what the enforcement point will tell us again if a power cut loses it: a received
    /// request (backfilled on the next connect), a resolution (re-read on the next sync), a rejection,
    /// a delivery's answer (the outbox row then survives, and a resend of the same token gets the
    /// same answer). Decisions, checkpoints and keys always commit with [`Console::write_tx`], whose
    /// fsync also makes every earlier relaxed commit durable: the WAL is synced in order.
    pub(crate) async fn relaxed_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(self.profile.writer.begin_with("PRAGMA synchronous = NORMAL; BEGIN IMMEDIATE").await?)
    }
}

/// Seconds since the Unix epoch (the protocol's one clock).
pub use countersign_protocol::now;

/// Test helpers: a minimal HTTP server on loopback for the enforcement points unit tests need.
#[cfg(test)]
pub(crate) mod testing {
    use std::sync::{Arc, Mutex};

    /// Pin an enforcement point at `url` with `key`'s public half, straight into the store (its id
    /// derived from the key, as `ep add` derives it); the id.
    pub(crate) async fn pin_key(
        c: &crate::Console,
        key: &countersign_protocol::VerifyingKey,
        url: &str,
    ) -> String {
        let jwk = countersign_protocol::Jwk::from_key(key);
        let ep = countersign_protocol::jwk::ep_id(&jwk.thumbprint());
        sqlx::query("INSERT INTO eps (ep, name, url, kid, jwk, added_at) VALUES (?, 'T', ?, ?, ?, 0)")
            .bind(&ep)
            .bind(url)
            .bind(jwk.thumbprint())
            .bind(serde_json::to_string(&jwk).unwrap())
            .execute(c.db())
            .await
            .unwrap();
        ep
    }

    /// The one integer `sql` selects.
    pub(crate) async fn count(c: &crate::Console, sql: &str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(c.db()).await.unwrap()
    }

    /// A request the [`serve`] server received: method, path, body.
    pub(crate) type Seen = Arc<Mutex<Vec<(String, String, String)>>>;

    /// Serve `answer(method, path, body) -> (status, json body)` on `http://127.0.0.1:PORT`, one
    /// request per connection (a 3xx answer's "body" is its `Location`); returns the base URL and
    /// what was received.
    pub(crate) async fn serve(
        answer: impl Fn(&str, &str, &str) -> (u16, String) + Send + Sync + 'static,
    ) -> (String, Seen) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen: Seen = Default::default();
        let (answer, log) = (Arc::new(answer), seen.clone());
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let (answer, log) = (answer.clone(), log.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 65536];
                    let (head_end, length) = loop {
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                            let length = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .unwrap_or(0);
                            break (end + 4, length);
                        }
                    };
                    while buf.len() < head_end + length {
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                    let mut first = head.lines().next().unwrap_or_default().split_whitespace();
                    let (method, path) = (first.next().unwrap_or_default(), first.next().unwrap_or_default());
                    let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).to_string();
                    let (status, reply) = answer(method, path, &body);
                    log.lock().unwrap().push((method.to_string(), path.to_string(), body));
                    let response = if (300..400).contains(&status) {
                        format!("HTTP/1.1 {status} X\r\nlocation: {reply}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    } else {
                        format!(
                            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
                            reply.len()
                        )
                    };
                    let _ = s.write_all(response.as_bytes()).await;
                });
            }
        });
        (url, seen)
    }
}
