//! `countersign-gateway`: the reference Countersign enforcement point.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::{Parser, Subcommand};
use countersign_gateway::{app, keys, store, Config, DemoOptions, ServeOptions};
use countersign_protocol::Jwk;

/// The reference Countersign enforcement point: classifies agents' requests with a Rego policy,
/// streams step-ups to approvers' consoles, verifies their signed decisions and issues grants.
#[derive(Debug, Parser)]
#[command(name = "countersign-gateway", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the enforcement point.
    Serve {
        /// Address to listen on; port 0 picks a free port (the chosen one is printed).
        #[arg(long, default_value = "127.0.0.1:8787")]
        listen: SocketAddr,
        /// Data directory: the gateway's key (gateway.key, mode 0600) and database.
        #[arg(long)]
        data: PathBuf,
        /// Rego policy replacing the default one (package `countersign`, rule `decision`).
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Run a steady stream of realistic demo requests from the scenario library.
        #[arg(long)]
        demo: bool,
        /// Milliseconds between two demo requests.
        #[arg(long, default_value_t = 8000)]
        demo_interval_ms: u64,
        /// Demo requests submitted at once on start.
        #[arg(long, default_value_t = 6)]
        demo_initial: usize,
        /// Name published at /.well-known/countersign.
        #[arg(long, default_value = "Countersign reference gateway")]
        name: String,
        /// Requests per minute allowed per workload before 429.
        #[arg(long, default_value_t = 60)]
        rate_limit: u32,
        /// Lifetime of a step-up when the agent asks for none, in seconds.
        #[arg(long, default_value_t = 300)]
        default_ttl: i64,
        /// Log as JSON lines.
        #[arg(long)]
        log_json: bool,
    },
    /// Print the gateway's identity (ep id, key id, JWK) for a data directory.
    Info {
        /// Data directory.
        #[arg(long)]
        data: PathBuf,
    },
    /// Manage the approvers enrolled with this gateway.
    Approvers {
        #[command(subcommand)]
        command: ApproversCommand,
    },
    /// Manage the agents (workloads) allowed to submit requests.
    Agents {
        #[command(subcommand)]
        command: AgentsCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ApproversCommand {
    /// Enrol an approver's public key.
    Add {
        /// Data directory.
        #[arg(long)]
        data: PathBuf,
        /// Display name.
        #[arg(long)]
        name: String,
        /// E-mail of the approver; an approver may never approve a request made on their own behalf.
        #[arg(long)]
        principal: String,
        /// File holding the approver's public JWK (`countersign key export`); `-` reads stdin.
        #[arg(long)]
        jwk: PathBuf,
    },
    /// List enrolled approvers.
    List {
        /// Data directory.
        #[arg(long)]
        data: PathBuf,
    },
    /// Remove an approver by key id.
    Remove {
        /// Data directory.
        #[arg(long)]
        data: PathBuf,
        /// The approver's key id.
        #[arg(long)]
        kid: String,
    },
}

#[derive(Debug, Subcommand)]
enum AgentsCommand {
    /// Register a workload; prints a new bearer token for it (stored hashed, shown once).
    Add {
        /// Data directory.
        #[arg(long)]
        data: PathBuf,
        /// The agent's SPIFFE id.
        #[arg(long)]
        workload: String,
    },
    /// List registered workloads.
    List {
        /// Data directory.
        #[arg(long)]
        data: PathBuf,
    },
    /// Revoke every token of a workload.
    Remove {
        /// Data directory.
        #[arg(long)]
        data: PathBuf,
        /// The agent's SPIFFE id.
        #[arg(long)]
        workload: String,
    },
}

fn init_logs(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            listen,
            data,
            policy,
            demo,
            demo_interval_ms,
            demo_initial,
            name,
            rate_limit,
            default_ttl,
            log_json,
        } => {
            init_logs(log_json);
            let policy = match policy {
                Some(p) => Some(std::fs::read_to_string(&p).with_context(|| format!("reading policy {}", p.display()))?),
                None => None,
            };
            let opts = ServeOptions {
                listen,
                data,
                policy,
                demo: demo.then_some(DemoOptions {
                    interval: Duration::from_millis(demo_interval_ms.max(100)),
                    initial: demo_initial,
                }),
                config: Config { name, rate_per_minute: rate_limit, default_ttl_s: default_ttl, ..Config::default() },
            };
            let running = countersign_gateway::start(opts).await?;
            println!("countersign-gateway {} listening on http://{}", running.app.ep, running.addr);
            tokio::select! {
                r = running.server => { r??; }
                _ = tokio::signal::ctrl_c() => { tracing::info!("shutting down"); }
            }
        }
        Command::Info { data } => {
            let key = keys::load_or_create(&data)?;
            let jwk = Jwk::from_key(&key.verifying_key());
            let kid = jwk.thumbprint();
            println!("ep:  ep-{}", &kid[..16]);
            println!("kid: {kid}");
            println!("fingerprint: {}", countersign_protocol::jwk::fingerprint(&kid));
            println!("{}", serde_json::to_string(&jwk)?);
        }
        Command::Approvers { command } => match command {
            ApproversCommand::Add { data, name, principal, jwk } => {
                let text = if jwk.as_os_str() == "-" {
                    std::io::read_to_string(std::io::stdin())?
                } else {
                    std::fs::read_to_string(&jwk).with_context(|| format!("reading {}", jwk.display()))?
                };
                let value = countersign_protocol::ijson::parse(text.trim().as_bytes())
                    .context("the JWK file is not valid JSON")?;
                let parsed: Jwk = serde_json::from_value(value).context("not a JWK")?;
                let key = parsed.to_key().context("not an Ed25519 public key")?;
                if !principal.contains('@') {
                    bail!("--principal must be an e-mail address");
                }
                let normalized = Jwk::from_key(&key);
                let kid = normalized.thumbprint();
                let db = store::open(&data).await?;
                store::add_approver(
                    &db,
                    &store::Approver {
                        kid: kid.clone(),
                        name,
                        principal,
                        jwk: serde_json::to_string(&normalized)?,
                        created_at: app::now(),
                    },
                )
                .await?;
                println!("enrolled approver {kid}");
            }
            ApproversCommand::List { data } => {
                let db = store::open(&data).await?;
                for a in store::approvers(&db).await? {
                    println!("{}  {}  <{}>", a.kid, a.name, a.principal);
                }
            }
            ApproversCommand::Remove { data, kid } => {
                let db = store::open(&data).await?;
                if !store::remove_approver(&db, &kid).await? {
                    bail!("no approver with key id {kid}");
                }
                println!("removed approver {kid}");
            }
        },
        Command::Agents { command } => match command {
            AgentsCommand::Add { data, workload } => {
                if !workload.starts_with("spiffe://") {
                    bail!("--workload must be a spiffe:// id");
                }
                let db = store::open(&data).await?;
                let token = app::new_agent_token();
                store::add_agent(&db, &app::token_hash(&token), &workload, app::now()).await?;
                println!("{token}");
            }
            AgentsCommand::List { data } => {
                let db = store::open(&data).await?;
                for (workload, n) in store::agents(&db).await? {
                    println!("{workload}  ({n} token{})", if n == 1 { "" } else { "s" });
                }
            }
            AgentsCommand::Remove { data, workload } => {
                let db = store::open(&data).await?;
                let n = store::remove_agent(&db, &workload).await?;
                if n == 0 {
                    bail!("no agent {workload}");
                }
                println!("revoked {n} token(s) of {workload}");
            }
        },
    }
    Ok(())
}
