//! `countersign-gateway`: the reference Countersign enforcement point.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::{Parser, Subcommand};
use countersign_gateway::{app, keys, store, Config, DemoOptions, ServeOptions, TlsFiles};
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
        /// Organisation data for the policy (JSON: trust domains, system and tool catalogues,
        /// internal domains, approved outside hosts, vocabulary) replacing the default one.
        #[arg(long)]
        policy_data: Option<PathBuf>,
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
        /// Serve HTTPS with this PEM certificate chain (with --tls-key). Consoles refuse plain
        /// http to any enforcement point that is not on loopback: serve TLS here, or put a
        /// TLS-terminating reverse proxy in front.
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The PEM private key of --tls-cert.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
    /// Try the policy offline: classify a draft, or run a table of cases.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
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
    /// Manage the target systems that redeem grants.
    Systems {
        #[command(subcommand)]
        command: SystemsCommand,
    },
    /// Manage issued grants.
    Grants {
        #[command(subcommand)]
        command: GrantsCommand,
    },
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Classify one draft: prints the decision and the facts it was made on, as JSON.
    Eval {
        /// The draft (what an agent would POST to /v1/step-ups), an I-JSON file; `-` reads stdin.
        #[arg(long)]
        input: PathBuf,
        /// Rego policy instead of the default one.
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Organisation data instead of the default one.
        #[arg(long)]
        policy_data: Option<PathBuf>,
        /// The workload that authenticated (default: the draft's own `identity.workload`).
        #[arg(long)]
        workload: Option<String>,
    },
    /// Run a table of cases `[{name, input, workload?, expect: {outcome, id?, tier?, approvals_required?}}]`:
    /// one line per case; exits non-zero when any case fails.
    Test {
        /// The cases, an I-JSON file.
        #[arg(long)]
        cases: PathBuf,
        /// Rego policy instead of the default one.
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Organisation data instead of the default one.
        #[arg(long)]
        policy_data: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum ApproversCommand {
    /// Enrol an approver's public key. A principal has one active key: enrolling a second one
    /// for the same principal is refused unless --replace retires the first.
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
        /// Retire the principal's active key (it can no longer decide) and enrol this one.
        #[arg(long)]
        replace: bool,
    },
    /// List enrolled approvers.
    List {
        /// Data directory.
        #[arg(long)]
        data: PathBuf,
        /// Include retired keys (rotated, replaced, removed).
        #[arg(long)]
        all: bool,
    },
    /// Remove an approver's key by key id: it can no longer authenticate or decide (open event
    /// streams end within a second and receive nothing after half a second); what it signed stays
    /// verifiable.
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
        /// E-mail of a person who owns the agent (repeatable): they may never approve its
        /// requests, whatever it declares on whose behalf it acts.
        #[arg(long = "owner", required_unless_present = "no_owner")]
        owners: Vec<String>,
        /// Register the agent with no owner (it acts for nobody in particular). Without owners,
        /// self-approval is judged on the people it declares it acts for alone.
        #[arg(long, conflicts_with = "owners")]
        no_owner: bool,
    },
    /// List registered workloads.
    List {
        /// Data directory.
        #[arg(long)]
        data: PathBuf,
    },
    /// Revoke every token of a workload, and its grants still usable.
    Remove {
        /// Data directory.
        #[arg(long)]
        data: PathBuf,
        /// The agent's SPIFFE id.
        #[arg(long)]
        workload: String,
    },
}

#[derive(Debug, Subcommand)]
enum SystemsCommand {
    /// Register a target system; prints the bearer token it redeems grants with (stored hashed,
    /// shown once).
    Add {
        /// Data directory.
        #[arg(long)]
        data: PathBuf,
        /// The system's name: the `aud` of the grants it may redeem (the request's target.system).
        #[arg(long)]
        system: String,
        /// The environment it runs in; grants for another environment are refused.
        #[arg(long)]
        environment: String,
    },
}

#[derive(Debug, Subcommand)]
enum GrantsCommand {
    /// Revoke a grant by id (its `jti`): every later redemption is refused.
    Revoke {
        /// Data directory.
        #[arg(long)]
        data: PathBuf,
        /// The grant's id.
        #[arg(long)]
        jti: String,
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
            policy_data,
            demo,
            demo_interval_ms,
            demo_initial,
            name,
            rate_limit,
            default_ttl,
            log_json,
            tls_cert,
            tls_key,
        } => {
            init_logs(log_json);
            let policy = match policy {
                Some(p) => Some(
                    std::fs::read_to_string(&p).with_context(|| format!("reading policy {}", p.display()))?,
                ),
                None => None,
            };
            let policy_data = policy_data.map(|p| read_file(&p, "policy data")).transpose()?;
            let opts = ServeOptions {
                listen,
                data,
                policy,
                policy_data,
                demo: demo.then_some(DemoOptions {
                    interval: Duration::from_millis(demo_interval_ms.max(100)),
                    initial: demo_initial,
                }),
                config: Config {
                    name,
                    rate_per_minute: rate_limit,
                    default_ttl_s: default_ttl,
                    ..Config::default()
                },
                tls: tls_cert.zip(tls_key).map(|(cert, key)| TlsFiles { cert, key }),
            };
            let scheme = if opts.tls.is_some() { "https" } else { "http" };
            let running = countersign_gateway::start(opts).await?;
            println!("countersign-gateway {} listening on {scheme}://{}", running.app.ep, running.addr);
            tokio::select! {
                r = running.server => { r??; }
                _ = tokio::signal::ctrl_c() => { tracing::info!("shutting down"); }
            }
        }
        Command::Policy { command } => run_policy_command(command)?,
        Command::Info { data } => {
            store::private_dir(&data)?;
            let key = keys::load_or_create(&data)?;
            let jwk = Jwk::from_key(&key.verifying_key());
            let kid = jwk.thumbprint();
            println!("ep:  ep-{}", &kid[..16]);
            println!("kid: {kid}");
            println!("fingerprint: {}", countersign_protocol::jwk::fingerprint(&kid));
            println!("{}", serde_json::to_string(&jwk)?);
        }
        Command::Approvers { command } => match command {
            ApproversCommand::Add { data, name, principal, jwk, replace } => {
                let text = if jwk.as_os_str() == "-" {
                    std::io::read_to_string(std::io::stdin())?
                } else {
                    std::fs::read_to_string(&jwk).with_context(|| format!("reading {}", jwk.display()))?
                };
                let value = countersign_protocol::ijson::parse(text.trim().as_bytes())
                    .context("the JWK file is not valid JSON")?;
                let parsed: Jwk = serde_json::from_value(value).context("not a JWK")?;
                let key = parsed.to_key().context("not an Ed25519 public key")?;
                let jwk = serde_json::to_string(&Jwk::from_key(&key))?;
                let kid = Jwk::from_key(&key).thumbprint();
                let approver = store::Approver::enrol(kid.clone(), name, &principal, jwk, app::now())
                    .map_err(|e| anyhow::anyhow!("--principal: {e}"))?;
                let db = store::open(&data).await?;
                let replaced = store::add_approver(&db, &approver, replace).await?;
                match replaced {
                    Some(old) => println!("enrolled approver {kid} (retired {old})"),
                    None => println!("enrolled approver {kid}"),
                }
            }
            ApproversCommand::List { data, all } => {
                let db = store::open(&data).await?;
                for a in store::approvers(&db, all).await? {
                    let state = match (&a.retired_why, &a.replaced_by) {
                        (None, _) => String::new(),
                        (Some(why), Some(by)) => format!("  [{why}, now {by}]"),
                        (Some(why), None) => format!("  [{why}]"),
                    };
                    println!("{}  {}  <{}>{state}", a.kid, a.name, a.principal_key);
                }
            }
            ApproversCommand::Remove { data, kid } => {
                let db = store::open(&data).await?;
                if !store::remove_approver(&db, &kid, app::now()).await? {
                    bail!("no active approver with key id {kid}");
                }
                println!("removed approver {kid}");
            }
        },
        Command::Agents { command } => match command {
            AgentsCommand::Add { data, workload, owners, no_owner: _ } => {
                countersign_protocol::spiffe::check_canonical(&workload).map_err(|e| {
                    anyhow::anyhow!("--workload {workload:?} is not a canonical SPIFFE ID: {e}")
                })?;
                let owners = owners
                    .iter()
                    .map(|o| countersign_protocol::principal::validate(o))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| anyhow::anyhow!("--owner: {e}"))?;
                let db = store::open(&data).await?;
                if let Some((other, _)) = store::agents(&db)
                    .await?
                    .into_iter()
                    .find(|(w, _)| countersign_protocol::spiffe::look_alike(w, &workload))
                {
                    bail!("--workload {workload} looks like the registered workload {other}; look-alikes are refused");
                }
                let token = app::new_agent_token();
                store::add_agent(&db, &app::token_hash(&token), &workload, &owners, app::now()).await?;
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
                let (n, revoked) = store::remove_agent(&db, &workload, app::now()).await?;
                if n == 0 {
                    bail!("no agent {workload}");
                }
                println!("revoked {n} token(s) and {revoked} usable grant(s) of {workload}");
            }
        },
        Command::Systems { command } => match command {
            SystemsCommand::Add { data, system, environment } => {
                if system.trim().is_empty() || environment.trim().is_empty() {
                    bail!("--system and --environment must not be empty");
                }
                let db = store::open(&data).await?;
                let token = countersign_gateway::grants::new_system_token();
                // Stored in the normal form grants name them in.
                let (system, environment) = (
                    countersign_gateway::facts::normal_name(&system),
                    countersign_gateway::facts::normal_name(&environment),
                );
                store::add_system(&db, &app::token_hash(&token), &system, &environment, app::now()).await?;
                println!("{token}");
            }
        },
        Command::Grants { command } => match command {
            GrantsCommand::Revoke { data, jti } => {
                let db = store::open(&data).await?;
                if !store::revoke_grant(&db, &jti, app::now()).await? {
                    bail!("no unrevoked grant {jti}");
                }
                println!("revoked grant {jti}");
            }
        },
    }
    Ok(())
}

/// A text file, or stdin for `-`, with its name in the error.
fn read_file(path: &std::path::Path, what: &str) -> anyhow::Result<String> {
    if path.as_os_str() == "-" {
        return std::io::read_to_string(std::io::stdin())
            .with_context(|| format!("reading {what} from stdin"));
    }
    std::fs::read_to_string(path).with_context(|| format!("reading {what} {}", path.display()))
}

fn run_policy_command(command: PolicyCommand) -> anyhow::Result<()> {
    use countersign_gateway::facts::PolicyData;
    use countersign_gateway::policy::{self, Policy};
    let load = |rego: Option<PathBuf>, data: Option<PathBuf>| -> anyhow::Result<Policy> {
        let source = rego.map(|p| read_file(&p, "policy")).transpose()?;
        let data = match data {
            Some(p) => PolicyData::from_json(&read_file(&p, "policy data")?)
                .with_context(|| format!("loading policy data {}", p.display()))?,
            None => PolicyData::default_data(),
        };
        Ok(Policy::load_with_data(source.as_deref().unwrap_or(policy::DEFAULT_POLICY), data)?)
    };
    match command {
        PolicyCommand::Eval { input, policy, policy_data, workload } => {
            let text = read_file(&input, "draft")?;
            let loaded = load(policy, policy_data)?;
            let evaluation = policy::eval_draft_json(&loaded, &text, workload.as_deref())
                .with_context(|| format!("evaluating {}", input.display()))?;
            println!("{}", serde_json::to_string_pretty(&evaluation)?);
        }
        PolicyCommand::Test { cases, policy, policy_data } => {
            let text = read_file(&cases, "cases")?;
            let loaded = load(policy, policy_data)?;
            let results = policy::run_cases(&loaded, &text)
                .with_context(|| format!("reading cases {}", cases.display()))?;
            let failed = results.iter().filter(|r| !r.passed).count();
            for r in &results {
                println!("{} {}: {}", if r.passed { "ok  " } else { "FAIL" }, r.name, r.detail);
            }
            println!("{} passed, {failed} failed", results.len() - failed);
            if failed > 0 {
                bail!("{failed} of {} policy cases failed", results.len());
            }
        }
    }
    Ok(())
}
