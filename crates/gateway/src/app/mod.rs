//! The enforcement point's logic, free of HTTP. [`App`] composes one part per purpose:
//! `validate` (draft shape), `auth` (agents, approvers and their caches), `events` (the event
//! log and its subscribers), `intake` (submission, rate limits), `judge` (decisions and quorum),
//! `lifecycle` (withdrawal, expiry) and `status` (reads).
//!
//! Every state change happens under one write lock, in one SQLite transaction that also appends
//! the event; the event is broadcast only after the commit, so the event log, the broadcast order
//! and the stored states never disagree, and a restart loses nothing that was acknowledged.

mod auth;
mod events;
mod intake;
mod judge;
mod lifecycle;
mod status;
mod validate;

use std::time::{SystemTime, UNIX_EPOCH};

use countersign_protocol::{self as protocol, jwk::kid_of, Jwk, Jwks, SigningKey, Tier};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use sqlx::SqlitePool;
use tokio::sync::broadcast;

use crate::policy::Policy;

pub use auth::{approver_key, APPROVER_CACHE};
pub use events::Event;
pub use status::Viewer;
pub use validate::{validate_draft, MAX_ACTIONS};

/// Tunables of a running gateway.
#[derive(Debug, Clone)]
pub struct Config {
    /// Display name published at `/.well-known/countersign`.
    pub name: String,
    /// Lifetime of a step-up when the agent asks for none.
    pub default_ttl_s: i64,
    /// Longest lifetime an agent may ask for.
    pub max_ttl_s: i64,
    /// Requests per minute allowed per workload.
    pub rate_per_minute: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            name: "Countersign reference gateway".into(),
            default_ttl_s: 300,
            max_ttl_s: 3600,
            rate_per_minute: 60,
        }
    }
}

/// Shortest lifetime of a step-up.
pub const MIN_TTL_S: i64 = 5;
/// Longest lifetime of a grant.
pub const MAX_GRANT_TTL_S: u64 = 300;
/// Wrong binding codes after which the request is denied.
pub const MAX_BINDING_FAILURES: i64 = 3;
/// The tier a stored request is judged by when its tier is missing or unknown to this gateway:
/// the strictest one.
pub const UNKNOWN_TIER: Tier = Tier::Critical;

/// The tier of a stored request; [`UNKNOWN_TIER`] when it has none this gateway can read.
pub fn stored_tier(tier: Option<&str>) -> Tier {
    tier.and_then(|t| serde_json::from_value::<Tier>(json!(t)).ok()).unwrap_or(UNKNOWN_TIER)
}

/// Seconds since the Unix epoch: the gateway's one clock.
pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Hex SHA-256 of an agent token, as stored.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh agent bearer token (`csa_` + 256 random bits).
pub fn new_agent_token() -> String {
    format!("csa_{}{}", protocol::new_id(), protocol::new_id())
}

/// The running enforcement point.
#[derive(Debug)]
pub struct App {
    /// Enforcement point id (`iss` of requests, `aud` of decisions).
    pub ep: String,
    /// Configuration.
    pub config: Config,
    pub(crate) key: SigningKey,
    jwks: Jwks,
    db: SqlitePool,
    policy: Policy,
    events: events::EventLog,
    write: tokio::sync::Mutex<()>,
    limits: intake::RateLimits,
    approvers: auth::Approvers,
}

impl App {
    /// Assemble a gateway over an opened store.
    pub fn new(key: SigningKey, db: SqlitePool, policy: Policy, config: Config) -> Self {
        let vk = key.verifying_key();
        let kid = kid_of(&vk);
        App {
            ep: protocol::jwk::ep_id(&kid),
            config,
            jwks: Jwks { keys: vec![Jwk::from_key(&vk)] },
            key,
            db,
            policy,
            events: events::EventLog::new(),
            write: tokio::sync::Mutex::new(()),
            limits: intake::RateLimits::default(),
            approvers: auth::Approvers::default(),
        }
    }

    /// The write lock every state change holds.
    pub(crate) fn write_lock(&self) -> &tokio::sync::Mutex<()> {
        &self.write
    }

    /// The store.
    pub fn db(&self) -> &SqlitePool {
        &self.db
    }

    /// The published keys.
    pub fn jwks(&self) -> &Jwks {
        &self.jwks
    }

    /// `GET /.well-known/countersign`.
    pub fn well_known(&self) -> Value {
        json!({ "ep": self.ep, "name": self.config.name, "jwks": self.jwks, "protocol": 1 })
    }

    /// Subscribe to events appended from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }
}
