//! Enforcement points: fetched from `/.well-known/countersign`, pinned by key id on the user's word.

use countersign_protocol::{
    ijson,
    jwk::{ep_id, fingerprint},
    Jwk, VerifyingKey,
};
use serde::{Deserialize, Serialize};

use crate::{now, Console, ConsoleError, Result, CALL_TIMEOUT};

/// The state of the console's connection to an enforcement point: live, as the subscriptions
/// actor follows it, or last known, from what the store recorded of the last call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum Connection {
    /// Streaming (live), or the last call succeeded (stored).
    Connected,
    /// First attempt in progress (live), or never called (stored).
    Connecting,
    /// Lost and retrying with backoff (live), or the last call failed (stored).
    Offline,
    /// Stopped for good on a keyring or database error (live only).
    Error,
}

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
    /// An extra trust root (PEM) for its TLS certificate, given with `ep add --ca-cert`.
    #[serde(skip)]
    pub ca_cert: Option<String>,
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

    /// The last known connection, from the store: offline after a failed call (the error is
    /// `last_error`), connected after a successful one (at `last_ok_at`), else never called.
    pub fn connection(&self) -> Connection {
        match (&self.last_error, self.last_ok_at) {
            (Some(_), _) => Connection::Offline,
            (None, Some(_)) => Connection::Connected,
            (None, None) => Connection::Connecting,
        }
    }
}

/// Parse an enforcement point's base URL (WHATWG rules, as a browser would) and check it may be
/// used: `http` or `https`, no user name or password, no query or fragment, and `https` unless the
/// host is loopback (`127.0.0.0/8`, `::1`, `localhost`): decisions, auth tokens and requests must
/// never cross a network in the clear. Returns the URL without a trailing slash, so that API paths
/// are appended to it.
pub fn check_url(url: &str) -> Result<String> {
    let parsed = url::Url::parse(url.trim())
        .map_err(|e| ConsoleError::Invalid(format!("{url:?} is not a URL: {e}")))?;
    match parsed.scheme() {
        "https" => {}
        "http" if is_loopback(&parsed) => {}
        "http" => {
            return Err(ConsoleError::Invalid(format!(
                "{url:?}: plain http is allowed only to this machine (127.0.0.0/8, ::1, localhost); \
                 use https for an enforcement point on another host"
            )))
        }
        other => return Err(ConsoleError::Invalid(format!("{url:?}: scheme {other:?} is not http(s)"))),
    }
    if parsed.host().is_none() {
        return Err(ConsoleError::Invalid(format!("{url:?} names no host")));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(ConsoleError::Invalid(format!("{url:?}: credentials in the URL are not allowed")));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(ConsoleError::Invalid(format!("{url:?}: a base URL has no query or fragment")));
    }
    Ok(parsed.as_str().trim_end_matches('/').to_string())
}

/// Whether the URL's host is this machine: an IPv4 address in 127.0.0.0/8, `::1`, or the name
/// `localhost` (which the console resolves to loopback only; any other name may resolve anywhere).
fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Check that `pem` holds at least one certificate; the certificates as trust roots.
pub fn parse_ca(pem: &str) -> Result<Vec<reqwest::Certificate>> {
    let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
        .map_err(|e| ConsoleError::Invalid(format!("the CA certificate is not PEM: {e}")))?;
    if certs.is_empty() {
        return Err(ConsoleError::Invalid("the CA file holds no PEM certificate".into()));
    }
    Ok(certs)
}

impl Console {
    /// Fetch an enforcement point's well-known document; every key must be a valid Ed25519 JWK, and
    /// its `ep` must be the id of one of them (`ep-` + the first 16 characters of the kid).
    pub async fn fetch_well_known(&self, url: &str) -> Result<WellKnown> {
        self.fetch_well_known_with(url, None).await
    }

    /// [`Console::fetch_well_known`], trusting the certificates in `ca_pem` as extra roots.
    pub async fn fetch_well_known_with(&self, url: &str, ca_pem: Option<&str>) -> Result<WellKnown> {
        let url = check_url(url)?;
        let http = self.client_with(ca_pem)?;
        let at = format!("{url}/.well-known/countersign");
        let resp = http
            .get(&at)
            .timeout(CALL_TIMEOUT)
            .send()
            .await
            .map_err(|e| ConsoleError::network(&at, crate::with_causes(&e)))?;
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
        if !keys.iter().any(|(kid, _)| ep_id(kid) == ep) {
            return Err(ConsoleError::Untrusted(format!(
                "{url} claims the id {ep:?}, which belongs to none of the keys it offers ({}): \
                 an enforcement point's id is `ep-` and the start of its key id; nothing was pinned",
                keys.iter().map(|(kid, _)| ep_id(kid)).collect::<Vec<_>>().join(", ")
            )));
        }
        Ok(WellKnown { url, ep, name, keys })
    }

    /// Pin the enforcement point at `url` with the key whose kid is `trust`. Refuses (and stores
    /// nothing) when no key has that kid, or when the document's `ep` is not that key's id.
    pub async fn add_ep(&self, url: &str, trust: &str) -> Result<Ep> {
        self.add_ep_with(url, trust, None).await
    }

    /// [`Console::add_ep`] for an enforcement point whose TLS certificate chains to a root in
    /// `ca_pem` (PEM, one or more certificates): stored with it, trusted for its calls only.
    pub async fn add_ep_with(&self, url: &str, trust: &str, ca_pem: Option<&str>) -> Result<Ep> {
        if let Some(pem) = ca_pem {
            parse_ca(pem)?;
        }
        let wk = self.fetch_well_known_with(url, ca_pem).await?;
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
        // The id is the pinned key's: a document naming another enforcement point's id (to collect
        // tokens whose audience is that one) is refused.
        let ep = ep_id(kid);
        if wk.ep != ep {
            return Err(ConsoleError::Untrusted(format!(
                "{} claims the id {:?}, but the id of key {kid} is {ep}: nothing was pinned",
                wk.url, wk.ep
            )));
        }
        let jwk = serde_json::to_string(jwk).map_err(|e| ConsoleError::Invalid(e.to_string()))?;
        sqlx::query(
            "INSERT INTO eps (ep, name, url, kid, jwk, added_at, ca_cert) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&ep)
        .bind(&wk.name)
        .bind(&wk.url)
        .bind(kid)
        .bind(&jwk)
        .bind(now())
        .bind(ca_pem)
        .execute(self.db())
        .await
        .map_err(|e| match e {
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                ConsoleError::Invalid(format!("{} or {} is already added", wk.ep, wk.url))
            }
            e => e.into(),
        })?;
        self.ep(&ep).await
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

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::Arc;

    use countersign_protocol::jwk::kid_of;
    use serde_json::json;

    use crate::keys::MemoryStore;
    use crate::testing::serve;

    #[test]
    fn plain_http_only_to_this_machine() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://127.9.9.9:1/",
            "http://[::1]:7000",
            "http://localhost:9",
            "http://LOCALHOST:9",
            "https://gateway.example",
            "https://gateway.example/countersign/",
            "https://10.0.0.5:8443",
        ] {
            check_url(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        assert_eq!(check_url("https://gateway.example/base/").unwrap(), "https://gateway.example/base");
        assert_eq!(check_url(" http://localhost:9/ ").unwrap(), "http://localhost:9");
        for refused in [
            "http://gateway.example",
            "http://10.0.0.5:8080",
            "http://192.168.1.1",
            "http://[::ffff:127.0.0.1]",
            "http://localhost.attacker.example",
            "http://127.0.0.1.nip.io",
            "http://[fe80::1]",
            "HTTP://gateway.example",
        ] {
            let e = check_url(refused).unwrap_err().to_string();
            assert!(e.contains("https"), "{refused}: {e}");
        }
        for malformed in [
            "ftp://127.0.0.1",
            "file:///etc/passwd",
            "gateway.example",
            "https://user:pw@gateway.example",
            "https://gateway.example/?x=1",
            "https://gateway.example/#f",
            "",
        ] {
            assert!(matches!(check_url(malformed), Err(ConsoleError::Invalid(_))), "{malformed}");
        }
    }

    #[test]
    fn a_ca_file_must_hold_a_certificate() {
        assert!(parse_ca("").is_err());
        assert!(parse_ca("hello").is_err());
        assert!(parse_ca("-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n").is_err());
    }

    async fn console() -> (tempfile::TempDir, Console) {
        let dir = tempfile::tempdir().unwrap();
        let c = Console::open(dir.path(), Arc::new(MemoryStore::default())).await.unwrap();
        (dir, c)
    }

    /// A server whose well-known document claims `ep` with `key`.
    async fn claiming(ep: String, key: &countersign_protocol::SigningKey) -> String {
        let doc =
            json!({"ep": ep, "name": "Look-alike", "jwks": {"keys": [Jwk::from_key(&key.verifying_key())]}})
                .to_string();
        serve(move |_, _, _| (200, doc.clone())).await.0
    }

    /// Finding 8: a look-alike enforcement point claiming a victim's id (to collect auth tokens whose
    /// audience the victim accepts) is refused, and nothing is pinned.
    #[tokio::test]
    async fn a_document_claiming_another_key_s_id_is_refused() {
        let (_d, c) = console().await;
        let (victim, attacker) = (countersign_protocol::generate_key(), countersign_protocol::generate_key());
        let victim_id = ep_id(&kid_of(&victim.verifying_key()));
        let url = claiming(victim_id.clone(), &attacker).await;
        let attacker_kid = kid_of(&attacker.verifying_key());

        let e = c.fetch_well_known(&url).await.unwrap_err();
        assert!(matches!(e, ConsoleError::Untrusted(_)), "{e}");
        assert!(e.to_string().contains(&victim_id), "{e}");
        let e = c.add_ep(&url, &attacker_kid).await.unwrap_err();
        assert!(matches!(e, ConsoleError::Untrusted(_)), "{e}");
        assert!(c.eps().await.unwrap().is_empty(), "nothing pinned");

        // The same server with its own id is pinned, under the id its key names.
        let own = claiming(ep_id(&attacker_kid), &attacker).await;
        let ep = c.add_ep(&own, &attacker_kid).await.unwrap();
        assert_eq!(ep.ep, ep_id(&attacker_kid));
    }

    /// A pin stored under an id that is not its key's (by an older version) is never called.
    #[tokio::test]
    async fn a_pin_whose_id_is_not_its_key_s_is_not_used() {
        let (_d, c) = console().await;
        let key = countersign_protocol::generate_key();
        let url = claiming(ep_id(&kid_of(&key.verifying_key())), &key).await;
        let ep = c.add_ep(&url, &kid_of(&key.verifying_key())).await.unwrap();
        let forged = Ep { ep: "ep-victim".into(), ..ep.clone() };
        assert!(matches!(c.client(&forged), Err(ConsoleError::Untrusted(_))));
        c.client(&ep).expect("the genuine pin is used");
        let remote = Ep { url: "http://gateway.example".into(), ..ep };
        assert!(matches!(c.client(&remote), Err(ConsoleError::Invalid(_))));
    }

    /// Finding 9: plain http to a remote host and a CA file that is no certificate are refused
    /// before anything is fetched or stored.
    #[tokio::test]
    async fn remote_plain_http_and_bad_ca_files_are_refused() {
        let (_d, c) = console().await;
        let e = c.add_ep("http://gateway.example:8080", "kid").await.unwrap_err();
        assert!(e.to_string().contains("use https"), "{e}");
        let e = c.fetch_well_known("http://10.1.2.3").await.unwrap_err();
        assert!(matches!(e, ConsoleError::Invalid(_)), "{e}");
        let e = c.add_ep_with("https://127.0.0.1:1", "kid", Some("not a certificate")).await.unwrap_err();
        assert!(e.to_string().contains("PEM"), "{e}");
        assert!(c.eps().await.unwrap().is_empty());
    }
}
