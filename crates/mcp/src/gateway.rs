//! The enforcement point's agent and target-system routes: submit, wait, withdraw, redeem.

use std::time::Duration;

use countersign_protocol::{Action, RequestState, StepUpDraft, Tier};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;
use url::Url;

/// Longest long-poll the gateway grants, in seconds.
pub const MAX_WAIT_S: u64 = 60;

/// Why a call to the gateway did not give an answer the proxy can act on.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// No HTTP answer: refused connection, timeout, TLS failure.
    #[error("the gateway at {url} could not be reached ({reason})")]
    Unreachable {
        /// The gateway's base URL.
        url: String,
        /// The transport error.
        reason: String,
    },
    /// The gateway answered with an error.
    #[error("the gateway refused the call: {message} (HTTP {status}, {code})")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Its error code (`malformed`, `unauthorized`, …).
        code: String,
        /// Its message.
        message: String,
    },
    /// The gateway answered something this proxy does not understand.
    #[error("the gateway's answer could not be read ({0})")]
    Unreadable(String),
}

impl GatewayError {
    /// The HTTP status of a refusal.
    pub fn status(&self) -> Option<u16> {
        match self {
            GatewayError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// The answer to a submitted draft.
#[derive(Debug, Clone, Deserialize)]
pub struct Submitted {
    /// Request id.
    pub id: String,
    /// `approved` (allowed by policy), `denied` or `pending` (held for a human).
    pub state: RequestState,
    /// Policy rule, for allow and deny.
    #[serde(default)]
    pub policy: Option<String>,
    /// Policy reason, for allow and deny.
    #[serde(default)]
    pub reason: Option<String>,
    /// The grant, when allowed.
    #[serde(default)]
    pub grant: Option<String>,
    /// When a held request expires (seconds since the epoch).
    #[serde(default)]
    pub expires_at: Option<i64>,
    /// Risk tier of a held request.
    #[serde(default)]
    pub tier: Option<Tier>,
    /// Approvals a held request needs.
    #[serde(default)]
    pub approvals_required: Option<u32>,
    /// The code the person the agent acts for reads to the approver (critical requests only).
    #[serde(default)]
    pub binding_code: Option<String>,
}

/// One decision as the agent may see it.
#[derive(Debug, Clone, Deserialize)]
pub struct DecisionSeen {
    /// `approve` or `deny`.
    pub verdict: String,
    /// The denial's reason.
    #[serde(default)]
    pub reason: Option<String>,
}

/// A request's status.
#[derive(Debug, Clone, Deserialize)]
pub struct Status {
    /// Request id.
    pub id: String,
    /// Where it stands.
    pub state: RequestState,
    /// Policy rule.
    #[serde(default)]
    pub policy: Option<String>,
    /// Approvals so far.
    #[serde(default)]
    pub approvals: u32,
    /// Approvals needed.
    #[serde(default)]
    pub approvals_required: u32,
    /// Expiry (seconds since the epoch).
    pub expires_at: i64,
    /// Decisions so far.
    #[serde(default)]
    pub decisions: Vec<DecisionSeen>,
    /// The grant, once approved.
    #[serde(default)]
    pub grant: Option<String>,
}

/// What a redeemed grant allows: exactly this chain, from the gateway's own store.
#[derive(Debug, Clone, Deserialize)]
pub struct Redeemed {
    /// The request the grant was issued for.
    pub request: String,
    /// The approved chain.
    pub actions: Vec<Action>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
    message: String,
}

/// A client of one enforcement point, holding the agent's and the target system's tokens.
#[derive(Debug, Clone)]
pub struct Gateway {
    http: reqwest::Client,
    base: Url,
    agent_token: String,
    system_token: String,
}

impl Gateway {
    /// A client; `timeout` bounds each call (a long-poll gets its wait on top).
    pub fn new(
        base: Url,
        agent_token: String,
        system_token: String,
        timeout: Duration,
    ) -> Result<Self, GatewayError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| GatewayError::Unreachable { url: base.to_string(), reason: e.to_string() })?;
        Ok(Gateway { http, base, agent_token, system_token })
    }

    /// The gateway's base URL.
    pub fn url(&self) -> &Url {
        &self.base
    }

    fn at(&self, method: Method, path: &str, token: &str) -> RequestBuilder {
        let mut url = self.base.clone();
        url.set_path(path);
        self.http.request(method, url).bearer_auth(token)
    }

    async fn send<T: DeserializeOwned>(&self, req: RequestBuilder) -> Result<(StatusCode, T), GatewayError> {
        let unreachable = |e: reqwest::Error| GatewayError::Unreachable {
            url: self.base.to_string(),
            reason: e.without_url().to_string(),
        };
        let resp = req.send().await.map_err(unreachable)?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(unreachable)?;
        if !status.is_success() {
            return Err(match serde_json::from_slice::<ErrorBody>(&body) {
                Ok(e) => GatewayError::Refused { status: status.as_u16(), code: e.error, message: e.message },
                Err(_) => GatewayError::Refused {
                    status: status.as_u16(),
                    code: "http".into(),
                    message: status.canonical_reason().unwrap_or("error").into(),
                },
            });
        }
        serde_json::from_slice(&body)
            .map(|v| (status, v))
            .map_err(|e| GatewayError::Unreadable(e.to_string()))
    }

    /// Submit a draft: the policy allows it, denies it, or holds it for a human.
    pub async fn submit(
        &self,
        draft: &StepUpDraft,
        idempotency_key: &str,
    ) -> Result<Submitted, GatewayError> {
        let req = self
            .at(Method::POST, "/v1/step-ups", &self.agent_token)
            .header("Idempotency-Key", idempotency_key)
            .json(draft);
        Ok(self.send(req).await?.1)
    }

    /// A request's status, waiting up to `wait` for it to be resolved.
    pub async fn wait(&self, id: &str, wait: Duration) -> Result<Status, GatewayError> {
        // Whole seconds, rounded up: a wait of less than a second must not become a busy loop of `wait=0`.
        let s = (wait.as_millis().div_ceil(1000) as u64).min(MAX_WAIT_S);
        let req = self
            .at(Method::GET, &format!("/v1/step-ups/{}", path_segment(id)?), &self.agent_token)
            .query(&[("wait", s)])
            .timeout(wait + Duration::from_secs(10));
        Ok(self.send(req).await?.1)
    }

    /// Withdraw a held request.
    pub async fn withdraw(&self, id: &str) -> Result<(), GatewayError> {
        let req = self.at(Method::DELETE, &format!("/v1/step-ups/{}", path_segment(id)?), &self.agent_token);
        self.send::<serde_json::Value>(req).await.map(|_| ())
    }

    /// Redeem one use of a grant as the target system: what was approved, exactly.
    pub async fn redeem(&self, grant: &str) -> Result<Redeemed, GatewayError> {
        let req =
            self.at(Method::POST, "/v1/grants/redeem", &self.system_token).json(&json!({"grant": grant}));
        Ok(self.send(req).await?.1)
    }
}

/// A request id as one URL path segment: the gateway's ids are URL-safe base64; anything else is refused.
fn path_segment(id: &str) -> Result<&str, GatewayError> {
    if !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Ok(id)
    } else {
        Err(GatewayError::Unreadable(format!("request id {id:?} is not one the gateway issues")))
    }
}
