//! `--demo`: an embedded reference gateway in demo mode on a loopback port, this profile's key
//! enrolled with it, its key pinned, so a newcomer sees live requests within seconds.

use std::path::Path;
use std::time::Duration;

use countersign_console::Console;
use countersign_gateway::{store, Config, DemoOptions, ServeOptions};

/// The principal the demo approver is enrolled as (no demo request acts on its behalf).
pub const DEMO_PRINCIPAL: &str = "you@countersign.demo";

/// Start the embedded gateway, enrol and pin; returns its URL.
pub async fn start(console: &Console, profile: &Path) -> anyhow::Result<String> {
    let running = countersign_gateway::start(ServeOptions {
        listen: "127.0.0.1:0".parse()?,
        data: profile.join("demo-gateway"),
        policy: None,
        policy_data: None,
        demo: Some(DemoOptions { interval: Duration::from_secs(12), initial: 8 }),
        config: Config { name: "Demo gateway (embedded)".into(), ..Config::default() },
        tls: None,
    })
    .await?;
    let key = console.key().await?;
    let approver = store::Approver::enrol(
        key.kid.clone(),
        "Demo approver".into(),
        DEMO_PRINCIPAL,
        serde_json::to_string(&key.jwk)?,
        countersign_console::now(),
    )
    .map_err(anyhow::Error::msg)?;
    // The demo gateway is this console's own: a key rotated since the last run replaces the old one.
    store::add_approver(running.app.db(), &approver, true).await?;
    let url = format!("http://{}", running.addr);
    let gateway_kid = running.app.jwks().keys[0].thumbprint();
    // Each run listens on a new port: replace an earlier demo pin of the same gateway.
    if console.ep(&running.app.ep).await.is_ok() {
        // The earlier demo gateway process is gone: its undelivered decisions cannot be delivered.
        console.remove_ep(&running.app.ep, true).await?;
    }
    console.add_ep(&url, &gateway_kid).await?;
    tracing::info!(%url, ep = %running.app.ep, "demo gateway running");
    Ok(url)
}
