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
pub mod error;
pub mod history;
pub mod keys;
pub mod notify;
pub mod profile;
pub mod requests;
pub mod review;
pub mod secret;
pub mod settings;
pub mod sync;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use decide::{DecisionInput, DecisionOutcome};
pub use error::{ConsoleError, Result};
pub use keys::{KeyInfo, OsKeyring, SecretStore};
pub use profile::Profile;
pub use secret::Sensitive;

/// Connect timeout for every call to an enforcement point.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest silence on a connection; about three of the gateway's 15 s SSE keep-alives.
pub const READ_TIMEOUT: Duration = Duration::from_secs(45);
/// Total timeout of ordinary (non-streaming) calls.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The console core over one profile. Cheap to clone: clones share the database pool, the
/// keyring store and the HTTP client.
#[derive(Clone, Debug)]
pub struct Console {
    profile: Arc<Profile>,
    secrets: Arc<dyn SecretStore>,
    http: reqwest::Client,
    /// Clients for enforcement points with their own trust root, by that root's PEM text.
    tls_clients: Arc<std::sync::Mutex<std::collections::HashMap<String, reqwest::Client>>>,
    /// One checkpoint (and keyring anchor write) at a time in this process.
    checkpointing: Arc<tokio::sync::Mutex<()>>,
}

impl Console {
    /// Open (creating if needed) the profile in `dir`, with private keys kept in `secrets`.
    pub async fn open(dir: &Path, secrets: Arc<dyn SecretStore>) -> Result<Console> {
        let profile = Profile::open(dir).await?;
        let http = http_client(&[])?;
        Ok(Console {
            profile: Arc::new(profile),
            secrets,
            http,
            tls_clients: Default::default(),
            checkpointing: Default::default(),
        })
    }

    /// The HTTP client for calls to `ep`, after checking that they may be made: its URL passes
    /// [`ep::check_url`] (https unless loopback; checked again on every use, so a URL pinned by an
    /// older version is held to the same rule), and its id is the one its pinned key names.
    pub(crate) fn client(&self, ep: &ep::Ep) -> Result<reqwest::Client> {
        ep::check_url(&ep.url)?;
        let derived = countersign_protocol::jwk::ep_id(&ep.kid);
        if ep.ep != derived {
            return Err(ConsoleError::Untrusted(format!(
                "{} was pinned under the id {}, but its key's id is {derived}: remove it and add it again",
                ep.url, ep.ep
            )));
        }
        self.client_with(ep.ca_cert.as_deref())
    }

    /// The shared client, or (with `ca_pem`) one that also trusts the certificates in it as roots.
    pub(crate) fn client_with(&self, ca_pem: Option<&str>) -> Result<reqwest::Client> {
        let Some(pem) = ca_pem else { return Ok(self.http.clone()) };
        let mut clients = self.tls_clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = clients.get(pem) {
            return Ok(c.clone());
        }
        let client = http_client(&ep::parse_ca(pem)?)?;
        clients.insert(pem.to_string(), client.clone());
        Ok(client)
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

/// An HTTP client for enforcement points: TLS by rustls with the platform's roots plus `roots`;
/// `localhost` resolved to loopback only;
/// no total timeout (it would cut long-lived SSE streams; ordinary calls set their own); redirects
/// never followed (an enforcement point answers itself, it never sends a decision elsewhere, nor
/// to plain http).
fn http_client(roots: &[reqwest::Certificate]) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        // `localhost` is this machine, whatever /etc/hosts or a resolver says: plain http is allowed
        // to it only because it is loopback (the URL's port is kept).
        .resolve_to_addrs(
            "localhost",
            &[
                std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0)),
                std::net::SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 0)),
            ],
        );
    for root in roots {
        builder = builder.add_root_certificate(root.clone());
    }
    builder.build().map_err(|e| ConsoleError::Invalid(format!("TLS client: {e}")))
}

/// An error with its causes, outermost first ("error sending request: …: invalid peer
/// certificate: UnknownIssuer"): an HTTP client error alone rarely says what went wrong.
pub(crate) fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let part = c.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = c.source();
    }
    text
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

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
