//! What the console benches share: an in-process reference gateway with the test policy, a console
//! profile on the session's keyring whose key is an enrolled approver, the gateway pinned in it,
//! and the figures' printing.

#![allow(dead_code)] // Each bench uses its own part of this.

use std::sync::Arc;
use std::time::Duration;

use countersign_console::ep::Ep;
use countersign_console::{Console, OsKeyring};
use countersign_gateway::{store, Config, ServeOptions};
use countersign_protocol::{self as protocol, AuthClaims, StepUpDraft, TYP_AUTH};
use serde_json::json;

pub const WORKLOAD: &str = "spiffe://acme.example/ns/bench/sa/agent";

pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Print p50, p90 and p99 of `samples` (sorted in place); returns p99.
pub fn report(name: &str, samples: &mut [Duration]) -> Duration {
    samples.sort();
    let (p50, p90, p99) = (pct(samples, 0.50), pct(samples, 0.90), pct(samples, 0.99));
    println!(
        "{name:<44} n={:<7} p50 {:>7.3} ms   p90 {:>7.3} ms   p99 {:>7.3} ms",
        samples.len(),
        ms(p50),
        ms(p90),
        ms(p99)
    );
    p99
}

/// The `p` quantile of sorted `samples` (nearest rank).
pub fn pct(samples: &[Duration], p: f64) -> Duration {
    samples[((samples.len() as f64 * p).ceil() as usize).clamp(1, samples.len()) - 1]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The step-up every bench submits: medium tier under the test policy (one approval).
pub fn draft() -> anyhow::Result<StepUpDraft> {
    Ok(serde_json::from_value(json!({
        "identity": {"workload": WORKLOAD, "display": "Bench agent",
            "on_behalf_of": [{"sub": "owner@acme.example", "display": "Owner"}]},
        "purpose": {"code": "test.medium", "statement": "benchmark"},
        "data": {"class": "confidential", "categories": ["pii"]},
        "target": {"system": "crm", "environment": "production"},
        "actions": [{"tool": "crm", "operation": "export", "args": {"rows": "10"}, "reversible": false}],
        "ttl_s": 3600
    }))?)
}

/// A gateway and a console that trusts it and is trusted by it.
pub struct Rig {
    pub tmp: tempfile::TempDir,
    pub gw: countersign_gateway::Running,
    pub url: String,
    /// The gateway's key id, as pinned.
    pub gw_kid: String,
    pub console: Console,
    pub ep: Ep,
}

impl Rig {
    pub async fn start() -> anyhow::Result<Rig> {
        let tmp = tempfile::tempdir()?;
        let policy = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/test-policy.rego"
        ))?;
        std::fs::create_dir_all(tmp.path().join("gw"))?;
        let gw = countersign_gateway::start(ServeOptions {
            listen: "127.0.0.1:0".parse()?,
            data: tmp.path().join("gw"),
            policy: Some(policy),
            policy_data: None,
            demo: None,
            config: Config { rate_per_minute: 1_000_000, ..Config::default() },
            tls: None,
        })
        .await?;
        let url = format!("http://{}", gw.addr);
        let console = Console::open(&tmp.path().join("console"), Arc::new(OsKeyring::default())).await?;
        let key = console.key().await?;
        let rig_gw_kid = gw.app.jwks().keys[0].thumbprint();
        let rig =
            Rig { ep: console.add_ep(&url, &rig_gw_kid).await?, tmp, gw, url, gw_kid: rig_gw_kid, console };
        rig.enrol(key.kid.clone(), serde_json::to_string(&key.jwk)?, "bench@acme.example").await?;
        Ok(rig)
    }

    /// Enrol an approver key at the gateway.
    pub async fn enrol(&self, kid: String, jwk: String, principal: &str) -> anyhow::Result<()> {
        let approver =
            store::Approver::enrol(kid, principal.into(), principal, jwk, countersign_console::now())
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        store::add_approver(self.gw.app.db(), &approver, false).await?;
        Ok(())
    }

    /// A key enrolled at the gateway as another approver, outside the keyring (for baselines), and a
    /// way to sign fresh request-auth tokens with it.
    pub async fn bare_approver(&self, principal: &str) -> anyhow::Result<BareApprover> {
        let key = protocol::generate_key();
        let jwk = protocol::Jwk::from_key(&key.verifying_key());
        let kid = jwk.thumbprint();
        self.enrol(kid.clone(), serde_json::to_string(&jwk)?, principal).await?;
        Ok(BareApprover { key, kid, aud: self.ep.ep.clone() })
    }
}

/// An approver whose key is held in memory.
pub struct BareApprover {
    pub key: protocol::SigningKey,
    pub kid: String,
    aud: String,
}

impl BareApprover {
    /// A fresh request-auth token.
    pub fn auth(&self) -> anyhow::Result<String> {
        let t = countersign_console::now();
        let auth = AuthClaims {
            iss: self.kid.clone(),
            aud: self.aud.clone(),
            iat: t,
            exp: t + 240,
            jti: protocol::new_id(),
        };
        Ok(protocol::sign(&auth, TYP_AUTH, &self.key)?)
    }
}
