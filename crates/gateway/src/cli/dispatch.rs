//! What each subcommand does: serve, try the policy, and the admin commands on a data directory.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _};
use countersign_gateway::facts::PolicyData;
use countersign_gateway::policy::{self, Policy};
use countersign_gateway::{app, facts, grants, keys, store, Config, DemoOptions, ServeOptions, TlsFiles};
use countersign_protocol::Jwk;

use super::args::{AgentsCommand, ApproversCommand, Command, GrantsCommand, PolicyCommand, SystemsCommand};
use super::output;

/// Run one command.
pub async fn run(command: Command) -> anyhow::Result<()> {
    match command {
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
            output::listening(&running.app.ep, scheme, running.addr);
            tokio::select! {
                r = running.server => { r??; }
                _ = tokio::signal::ctrl_c() => { tracing::info!("shutting down"); }
            }
        }
        Command::Policy { command } => run_policy_command(command)?,
        Command::Info { data } => {
            store::private_dir(&data)?;
            let key = keys::load_or_create(&data)?;
            output::identity(&Jwk::from_key(&key.verifying_key()))?;
        }
        Command::Approvers { command } => approvers(command).await?,
        Command::Agents { command } => agents(command).await?,
        Command::Systems { command: SystemsCommand::Add { data, system, environment } } => {
            if system.trim().is_empty() || environment.trim().is_empty() {
                bail!("--system and --environment must not be empty");
            }
            let db = store::open(&data).await?;
            let token = grants::new_system_token();
            // Stored in the normal form grants name them in.
            let (system, environment) = (facts::normal_name(&system), facts::normal_name(&environment));
            store::add_system(&db, &app::token_hash(&token), &system, &environment, app::now()).await?;
            output::line(&token);
        }
        Command::Grants { command: GrantsCommand::Revoke { data, jti } } => {
            let db = store::open(&data).await?;
            if !store::revoke_grant(&db, &jti, app::now()).await? {
                bail!("no unrevoked grant {jti}");
            }
            output::line(&format!("revoked grant {jti}"));
        }
    }
    Ok(())
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

async fn approvers(command: ApproversCommand) -> anyhow::Result<()> {
    match command {
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
            output::enrolled(&kid, replaced.as_deref());
        }
        ApproversCommand::List { data, all } => {
            let db = store::open(&data).await?;
            for a in store::approvers(&db, all).await? {
                output::approver(&a);
            }
        }
        ApproversCommand::Remove { data, kid } => {
            let db = store::open(&data).await?;
            if !store::remove_approver(&db, &kid, app::now()).await? {
                bail!("no active approver with key id {kid}");
            }
            output::line(&format!("removed approver {kid}"));
        }
    }
    Ok(())
}

async fn agents(command: AgentsCommand) -> anyhow::Result<()> {
    match command {
        AgentsCommand::Add { data, workload, owners, no_owner: _ } => {
            countersign_protocol::spiffe::check_canonical(&workload)
                .map_err(|e| anyhow::anyhow!("--workload {workload:?} is not a canonical SPIFFE ID: {e}"))?;
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
            output::line(&token);
        }
        AgentsCommand::List { data } => {
            let db = store::open(&data).await?;
            for (workload, n) in store::agents(&db).await? {
                output::agent(&workload, n);
            }
        }
        AgentsCommand::Remove { data, workload } => {
            let db = store::open(&data).await?;
            let (n, revoked) = store::remove_agent(&db, &workload, app::now()).await?;
            if n == 0 {
                bail!("no agent {workload}");
            }
            output::line(&format!("revoked {n} token(s) and {revoked} usable grant(s) of {workload}"));
        }
    }
    Ok(())
}

/// A text file, or stdin for `-`, with its name in the error.
fn read_file(path: &Path, what: &str) -> anyhow::Result<String> {
    if path.as_os_str() == "-" {
        return std::io::read_to_string(std::io::stdin())
            .with_context(|| format!("reading {what} from stdin"));
    }
    std::fs::read_to_string(path).with_context(|| format!("reading {what} {}", path.display()))
}

fn run_policy_command(command: PolicyCommand) -> anyhow::Result<()> {
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
            output::json(&evaluation)?;
        }
        PolicyCommand::Test { cases, policy, policy_data } => {
            let text = read_file(&cases, "cases")?;
            let loaded = load(policy, policy_data)?;
            let results = policy::run_cases(&loaded, &text)
                .with_context(|| format!("reading cases {}", cases.display()))?;
            let failed = output::case_results(&results);
            if failed > 0 {
                bail!("{failed} of {} policy cases failed", results.len());
            }
        }
    }
    Ok(())
}
