//! countersign-gateway: the reference enforcement point of Countersign protocol v1.
//!
//! An axum server that classifies agents' requests with its Rego policy, signs and streams
//! step-ups to approvers' consoles, verifies their signed decisions, applies quorum, binding codes
//! and expiry, and issues short-lived grants. Its own SQLite store makes restarts lossless.

pub mod api;
pub mod app;
pub mod demo;
pub mod error;
pub mod facts;
pub mod grants;
pub mod keys;
pub mod policy;
pub mod rotation;
pub mod store;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

pub use app::{App, Config};

/// How to run a gateway.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Address to listen on (port 0 picks one).
    pub listen: SocketAddr,
    /// Data directory (key, database).
    pub data: PathBuf,
    /// Rego policy source replacing the default one.
    pub policy: Option<String>,
    /// Organisation data file (JSON) replacing the default `policy/data.json`.
    pub policy_data: Option<String>,
    /// Run the demo stream.
    pub demo: Option<DemoOptions>,
    /// Tunables.
    pub config: Config,
    /// Serve HTTPS with this certificate chain and key (PEM files) instead of plain HTTP.
    pub tls: Option<TlsFiles>,
}

/// The PEM files of the gateway's TLS certificate chain and private key.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// Private key (PKCS #8, PKCS #1 or SEC1).
    pub key: PathBuf,
}

/// The demo stream's pace.
#[derive(Debug, Clone, Copy)]
pub struct DemoOptions {
    /// Time between two demo requests.
    pub interval: Duration,
    /// Requests submitted at once on start.
    pub initial: usize,
}

/// A started gateway.
#[derive(Debug)]
pub struct Running {
    /// The bound address.
    pub addr: SocketAddr,
    /// The gateway.
    pub app: Arc<App>,
    /// The server task.
    pub server: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Build the app from options (opening the store, loading key and policy).
pub async fn build(opts: &ServeOptions) -> anyhow::Result<Arc<App>> {
    let db = store::open(&opts.data).await?;
    let key = keys::load_or_create(&opts.data)?;
    let data = match &opts.policy_data {
        Some(json) => facts::PolicyData::from_json(json)?,
        None => facts::PolicyData::default_data(),
    };
    let policy =
        policy::Policy::load_with_data(opts.policy.as_deref().unwrap_or(policy::DEFAULT_POLICY), data)?;
    Ok(Arc::new(App::new(key, db, policy, opts.config.clone())))
}

/// Start serving: bind, spawn the server, the expiry sweeper and (with `--demo`) the demo stream.
pub async fn start(opts: ServeOptions) -> anyhow::Result<Running> {
    let app = build(&opts).await?;
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .with_context(|| format!("binding {}", opts.listen))?;
    let addr = listener.local_addr()?;
    let sweeper = app.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tick.tick().await;
            if let Err(e) = sweeper.expire_due().await {
                tracing::error!(error = %e.message, "expiry sweep failed");
            }
        }
    });
    if let Some(demo) = opts.demo {
        tokio::spawn(demo::run(app.clone(), demo.interval, demo.initial));
    }
    let router = api::router(app.clone());
    let server = match &opts.tls {
        None => tokio::spawn(async move { axum::serve(listener, router).await }),
        Some(tls) => {
            // rustls needs a process-wide provider; ring is the one reqwest already brings.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key)
                .await
                .with_context(|| {
                    format!(
                        "loading the TLS certificate {} and key {}",
                        tls.cert.display(),
                        tls.key.display()
                    )
                })?;
            let server = axum_server::from_tcp_rustls(listener.into_std()?, config)?;
            tokio::spawn(async move { server.serve(router.into_make_service()).await })
        }
    };
    tracing::info!(%addr, ep = %app.ep, "gateway listening");
    Ok(Running { addr, app, server })
}
