//! Enforcement points: fetched from `/.well-known/countersign`, pinned by key id on the user's word.

use countersign_protocol::{ijson, jwk::fingerprint, Jwk, VerifyingKey};
use serde::Serialize;

use crate::{now, Console, ConsoleError, Result, CALL_TIMEOUT};

/// What an enforcement point says about itself.
#[derive(Debug, Clone, Serialize)]
pub struct WellKnown {
    /// The base URL it was fetched from.
    pub url: String,
    /// Its `ep` id.
    pub ep: String,
    /// Its display name (untrusted text).
    pub name: String,
    /// Its keys, each with its kid.
    pub keys: Vec<(String, Jwk)>,
}

/// A pinned enforcement point.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Ep {
    /// Its `ep` id.
    pub ep: String,
    /// Display name given at pinning time.
    pub name: String,
    /// Base URL.
    pub url: String,
    /// The pinned key id.
    pub kid: String,
    /// The pinned public key (JWK JSON).
    #[serde(skip)]
    pub jwk: String,
    /// When it was added.
    pub added_at: i64,
    /// The last SSE event id handled.
    pub last_event_id: Option<String>,
    /// The last time a call to it succeeded.
    pub last_ok_at: Option<i64>,
    /// The last error talking to it, cleared on success.
    pub last_error: Option<String>,
}

impl Ep {
    /// The pinned verifying key.
    pub fn key(&self) -> Result<VerifyingKey> {
        let jwk: Jwk = serde_json::from_str(&self.jwk).map_err(|e| ConsoleError::Invalid(e.to_string()))?;
        Ok(jwk.to_key()?)
    }

    /// `url` joined with `path`.
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// "connected", "never synced" or the last error.
    pub fn connection(&self) -> String {
        match (&self.last_error, self.last_ok_at) {
            (Some(e), _) => format!("error: {e}"),
            (None, Some(t)) => format!("ok ({}s ago)", (now() - t).max(0)),
            (None, None) => "never synced".into(),
        }
    }
}

fn normalize_url(url: &str) -> Result<String> {
    let url = url.trim().trim_end_matches('/');
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(ConsoleError::Invalid(format!("{url:?} is not an http(s) URL")));
    }
    Ok(url.to_string())
}

impl Console {
    /// Fetch an enforcement point's well-known document; every key must be a valid Ed25519 JWK.
    pub async fn fetch_well_known(&self, url: &str) -> Result<WellKnown> {
        let url = normalize_url(url)?;
        let at = format!("{url}/.well-known/countersign");
        let resp = self
            .http
            .get(&at)
            .timeout(CALL_TIMEOUT)
            .send()
            .await
            .map_err(|e| ConsoleError::network(&at, e))?;
        if !resp.status().is_success() {
            return Err(ConsoleError::network(&at, format!("HTTP {}", resp.status())));
        }
        let body = resp.bytes().await.map_err(|e| ConsoleError::network(&at, e))?;
        let value = ijson::parse(&body).map_err(|e| ConsoleError::network(&at, e))?;
        let field =
            |name: &str| {
                value.get(name).and_then(|v| v.as_str()).map(str::to_string).ok_or_else(|| {
                    ConsoleError::network(&at, format!("no `{name}` in the well-known document"))
                })
            };
        let (ep, name) = (field("ep")?, field("name")?);
        let jwks = value
            .get("jwks")
            .and_then(|j| j.get("keys"))
            .and_then(|k| k.as_array())
            .cloned()
            .unwrap_or_default();
        let mut keys = Vec::new();
        for k in jwks {
            let jwk: Jwk =
                serde_json::from_value(k).map_err(|e| ConsoleError::network(&at, format!("bad JWK: {e}")))?;
            jwk.to_key().map_err(|e| ConsoleError::network(&at, format!("bad JWK: {e}")))?;
            keys.push((jwk.thumbprint(), jwk));
        }
        if keys.is_empty() {
            return Err(ConsoleError::network(&at, "the well-known document lists no keys"));
        }
        Ok(WellKnown { url, ep, name, keys })
    }

    /// Pin the enforcement point at `url` with the key whose kid is `trust`. Refuses (and stores
    /// nothing) when no key has that kid.
    pub async fn add_ep(&self, url: &str, trust: &str) -> Result<Ep> {
        let wk = self.fetch_well_known(url).await?;
        let Some((kid, jwk)) = wk.keys.iter().find(|(kid, _)| kid == trust.trim()) else {
            let offered: Vec<String> =
                wk.keys.iter().map(|(kid, _)| format!("{kid} ({})", fingerprint(kid))).collect();
            return Err(ConsoleError::Untrusted(format!(
                "{} ({}) offers key(s) {}; none is {trust:?}: nothing was pinned",
                wk.ep,
                wk.url,
                offered.join(", ")
            )));
        };
        let jwk = serde_json::to_string(jwk).map_err(|e| ConsoleError::Invalid(e.to_string()))?;
        sqlx::query("INSERT INTO eps (ep, name, url, kid, jwk, added_at) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(&wk.ep)
            .bind(&wk.name)
            .bind(&wk.url)
            .bind(kid)
            .bind(&jwk)
            .bind(now())
            .execute(self.db())
            .await
            .map_err(|e| match e {
                sqlx::Error::Database(d) if d.is_unique_violation() => {
                    ConsoleError::Invalid(format!("{} or {} is already added", wk.ep, wk.url))
                }
                e => e.into(),
            })?;
        self.ep(&wk.ep).await
    }

    /// One pinned enforcement point, by `ep` id or URL.
    pub async fn ep(&self, ep_or_url: &str) -> Result<Ep> {
        let url = ep_or_url.trim_end_matches('/');
        sqlx::query_as::<_, Ep>("SELECT * FROM eps WHERE ep = ? OR url = ?")
            .bind(ep_or_url)
            .bind(url)
            .fetch_optional(self.db())
            .await?
            .ok_or_else(|| ConsoleError::NotFound(format!("enforcement point {ep_or_url}")))
    }

    /// Every pinned enforcement point.
    pub async fn eps(&self) -> Result<Vec<Ep>> {
        Ok(sqlx::query_as::<_, Ep>("SELECT * FROM eps ORDER BY added_at, ep").fetch_all(self.db()).await?)
    }

    /// Unpin an enforcement point; its requests go with it (the history stays). Refuses while
    /// decisions for it are still undelivered, unless `force` (then they are dropped).
    pub async fn remove_ep(&self, ep_or_url: &str, force: bool) -> Result<Ep> {
        let ep = self.ep(ep_or_url).await?;
        let queued: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM outbox JOIN decisions USING (jti) WHERE ep = ?")
                .bind(&ep.ep)
                .fetch_one(self.db())
                .await?;
        if queued > 0 && !force {
            return Err(ConsoleError::Refused(format!(
                "{queued} decision(s) for {} are not delivered yet: run `countersign sync`, or remove with --force",
                ep.ep
            )));
        }
        sqlx::query("DELETE FROM eps WHERE ep = ?").bind(&ep.ep).execute(self.db()).await?;
        Ok(ep)
    }

    pub(crate) async fn ep_status(&self, ep: &str, error: Option<String>) -> Result<()> {
        if let Some(e) = error {
            sqlx::query("UPDATE eps SET last_error = ? WHERE ep = ?")
                .bind(e)
                .bind(ep)
                .execute(self.db())
                .await?;
        } else {
            sqlx::query("UPDATE eps SET last_error = NULL, last_ok_at = ? WHERE ep = ?")
                .bind(now())
                .bind(ep)
                .execute(self.db())
                .await?;
        }
        Ok(())
    }
}
