//! Talking to one enforcement point: the HTTP clients (with each pin's own trust root), the
//! approver auth token, authenticated reads, and the backoff between failed attempts.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use countersign_protocol::{self as protocol, AuthClaims, TYP_AUTH};
use rand::Rng as _;
use serde_json::Value;

use crate::ep::{self, Ep};
use crate::keys::LoadedKey;
use crate::{now, Console, ConsoleError, Result};

/// Connect timeout for every call to an enforcement point.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest silence on a connection; about three of the gateway's 15 s SSE keep-alives.
pub const READ_TIMEOUT: Duration = Duration::from_secs(45);
/// Total timeout of ordinary (non-streaming) calls.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Lifetime of the auth tokens the console signs.
pub const AUTH_LIFETIME_S: i64 = 240;
/// First reconnect delay cap; doubles per failure up to [`BACKOFF_MAX`].
const BACKOFF_BASE: Duration = Duration::from_millis(500);
/// Largest reconnect delay cap.
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// The HTTP clients for enforcement points: one shared, plus one per extra trust root.
#[derive(Debug)]
pub(crate) struct EpClients {
    http: reqwest::Client,
    /// Clients for enforcement points with their own trust root, by that root's PEM text.
    tls: Mutex<HashMap<String, reqwest::Client>>,
}

impl EpClients {
    /// The shared client, and none with an extra root yet.
    pub(crate) fn new() -> Result<EpClients> {
        Ok(EpClients { http: http_client(&[])?, tls: Default::default() })
    }
}

/// Full-jitter backoff: a uniform delay in [0, min(max, base · 2^attempt)].
pub fn backoff(attempt: u32) -> Duration {
    let cap = BACKOFF_BASE.saturating_mul(2u32.saturating_pow(attempt.min(16))).min(BACKOFF_MAX);
    Duration::from_millis(rand::thread_rng().gen_range(0..=cap.as_millis() as u64))
}

/// An approver auth token for `ep` signed with an already loaded key.
pub(crate) fn auth_token(key: &LoadedKey, ep: &str) -> Result<String> {
    let t = now();
    let claims = AuthClaims {
        iss: key.kid(),
        aud: ep.into(),
        iat: t,
        exp: t + AUTH_LIFETIME_S,
        jti: protocol::new_id(),
    };
    Ok(key.with(|k| protocol::sign(&claims, TYP_AUTH, k))?)
}

impl Console {
    /// A fresh approver auth token for `ep`, signed with the keyring key.
    pub async fn auth_token(&self, ep: &str) -> Result<String> {
        auth_token(&self.signing_key().await?, ep)
    }

    /// The HTTP client for calls to `ep`, after checking that they may be made: its URL passes
    /// [`ep::check_url`] (https unless loopback; checked again on every use, so a URL pinned by an
    /// older version is held to the same rule), and its id is the one its pinned key names.
    pub(crate) fn client(&self, ep: &Ep) -> Result<reqwest::Client> {
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
        let clients = &self.clients;
        let Some(pem) = ca_pem else { return Ok(clients.http.clone()) };
        let mut tls = clients.tls.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = tls.get(pem) {
            return Ok(c.clone());
        }
        let client = http_client(&ep::parse_ca(pem)?)?;
        tls.insert(pem.to_string(), client.clone());
        Ok(client)
    }

    /// GET `url` of `ep` with `auth`; its JSON answer (any non-2xx status is a network error).
    pub(crate) async fn get_json(&self, ep: &Ep, url: &str, auth: &str) -> Result<Value> {
        let resp = self
            .client(ep)?
            .get(url)
            .bearer_auth(auth)
            .timeout(CALL_TIMEOUT)
            .send()
            .await
            .map_err(|e| ConsoleError::network(url, with_causes(&e)))?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| ConsoleError::network(url, e))?;
        if !status.is_success() {
            return Err(ConsoleError::network(
                url,
                format!("HTTP {status}: {}", String::from_utf8_lossy(&body)),
            ));
        }
        protocol::ijson::parse(&body).map_err(|e| ConsoleError::network(url, e))
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

#[cfg(test)]
mod tests {
    use super::backoff;

    #[test]
    fn backoff_is_bounded_full_jitter() {
        // The caps written out (0.5 s doubling to the 60 s ceiling), not recomputed from the code.
        let caps_ms: [(u32, u64); 10] = [
            (0, 500),
            (1, 1_000),
            (2, 2_000),
            (3, 4_000),
            (5, 16_000),
            (6, 32_000),
            (7, 60_000),
            (8, 60_000),
            (20, 60_000),
            (u32::MAX, 60_000),
        ];
        for (attempt, cap) in caps_ms {
            let draws: Vec<u64> = (0..2_000).map(|_| backoff(attempt).as_millis() as u64).collect();
            let (min, max) = (*draws.iter().min().unwrap(), *draws.iter().max().unwrap());
            let mean = draws.iter().sum::<u64>() as f64 / draws.len() as f64;
            assert!(max <= cap, "attempt {attempt}: {max} ms is over the {cap} ms cap");
            // Full jitter: uniform over [0, cap]. With 2,000 draws, the extremes come within 10 %
            // of both ends and the mean within 5 % of the middle, except with negligible
            // probability; a constant, a zero or a narrow band all fail.
            assert!(max * 10 >= cap * 9, "attempt {attempt}: never near the cap (max {max} of {cap} ms)");
            assert!(min * 10 <= cap, "attempt {attempt}: never near zero (min {min} of {cap} ms)");
            let centre = mean / cap as f64;
            assert!((0.45..=0.55).contains(&centre), "attempt {attempt}: mean at {centre:.3} of the cap");
        }
    }
}
