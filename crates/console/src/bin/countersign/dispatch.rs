//! Which console call each command makes, and its exit code: one function per command group.
//! Printing is [`crate::output`]'s.

use std::process::ExitCode;
use std::sync::Arc;

use countersign_console::error::exit;
use countersign_console::history::Filter;
use countersign_console::notify::Notifier;
use countersign_console::outbox::Delivery;
use countersign_console::watch::WatchEvent;
use countersign_console::{now, Console, ConsoleError, DecisionInput, OsKeyring, Profile, Result};
use countersign_protocol::Verdict;

use crate::args::{Cli, Command, EpCmd, FilterArgs, HistoryArgs, HistoryCmd, KeyCmd};
use crate::output::{self, print_json};

/// Open the profile, run the command, and fold this run's writes into the database file.
pub async fn run(cli: Cli) -> Result<ExitCode> {
    let dir = match cli.home.filter(|h| !h.as_os_str().is_empty()) {
        Some(h) => h,
        None => Profile::default_dir()?,
    };
    let console = Console::open(&dir, Arc::new(OsKeyring::default())).await?;
    let code = command(&console, cli.command).await;
    // Fold this run's writes into the database file (SQLite's automatic checkpoints are off).
    if let Err(e) = console.fold_wal().await {
        tracing::debug!(error = %e, "WAL checkpoint skipped");
    }
    code
}

async fn command(console: &Console, command: Command) -> Result<ExitCode> {
    match command {
        Command::Key(cmd) => key(console, cmd).await,
        Command::Ep(cmd) => ep(console, cmd).await,
        Command::Sync { json } => sync(console, json).await,
        Command::Watch { json } => watch(console, json).await,
        Command::Pending { json } => pending(console, json).await,
        Command::Show { id, ep, json } => show(console, ep.as_deref(), &id, json).await,
        Command::Approve { id, ep, reason, ttl, max_uses, code, json } => {
            let input =
                DecisionInput { verdict: Verdict::Approve, reason, ttl_s: ttl, max_uses, binding_code: code };
            decide(console, ep.as_deref(), &id, input, json).await
        }
        Command::Deny { id, ep, reason, json } => {
            let input = DecisionInput {
                verdict: Verdict::Deny,
                reason,
                ttl_s: None,
                max_uses: None,
                binding_code: None,
            };
            decide(console, ep.as_deref(), &id, input, json).await
        }
        Command::History(args) => history(console, args).await,
    }
}

async fn key(console: &Console, cmd: KeyCmd) -> Result<ExitCode> {
    match cmd {
        KeyCmd::Show { json: true } => print_json(&console.key().await?)?,
        KeyCmd::Show { json: false } => output::key(&console.key().await?, &console.key_history().await?),
        KeyCmd::Export => print_json(&console.key().await?.jwk)?,
        KeyCmd::Rotate { json } => {
            let rotation = console.rotate_key().await?;
            if json {
                print_json(&rotation)?;
            } else {
                output::rotation(&rotation);
            }
            if rotation.needs_enrolment().count() > 0 {
                return Ok(ExitCode::from(exit::NETWORK));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn ep(console: &Console, cmd: EpCmd) -> Result<ExitCode> {
    match cmd {
        EpCmd::Add { url, trust: None, ca_cert } => {
            let ca = read_ca(ca_cert.as_deref())?;
            let wk = console.fetch_well_known_with(&url, ca.as_deref()).await?;
            output::well_known(&wk);
            Err(output::not_pinned(&wk, ca_cert.as_deref()))
        }
        EpCmd::Add { url, trust: Some(kid), ca_cert } => {
            let ca = read_ca(ca_cert.as_deref())?;
            output::pinned(&console.add_ep_with(&url, &kid, ca.as_deref()).await?);
            Ok(ExitCode::SUCCESS)
        }
        EpCmd::List { json } => {
            output::eps(&console.eps().await?, json)?;
            Ok(ExitCode::SUCCESS)
        }
        EpCmd::Remove { ep, force } => {
            output::removed(&console.remove_ep(&ep, force).await?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The text of a `--ca-cert` file.
fn read_ca(path: Option<&std::path::Path>) -> Result<Option<String>> {
    path.map(|p| {
        std::fs::read_to_string(p)
            .map_err(|e| ConsoleError::Invalid(format!("--ca-cert {}: {e}", p.display())))
    })
    .transpose()
}

async fn sync(console: &Console, json: bool) -> Result<ExitCode> {
    let reports = console.sync().await?;
    if json {
        print_json(&reports)?;
    } else {
        output::sync_reports(&reports);
    }
    Ok(if reports.iter().any(|r| r.error.is_some()) {
        ExitCode::from(exit::NETWORK)
    } else {
        ExitCode::SUCCESS
    })
}

/// Follow every stream, printing one line per event. Desktop notifications for new requests
/// (threshold and pause from the settings); a notification only informs: its single action opens
/// nothing here and approves nothing.
async fn watch(console: &Console, json: bool) -> Result<ExitCode> {
    let notifier = Arc::new(Notifier::default());
    let notifying = console.clone();
    console
        .watch(move |event| {
            if let WatchEvent::Request { ep, id } = &event {
                let (console, notifier) = (notifying.clone(), notifier.clone());
                let (ep, id) = (ep.clone(), id.clone());
                tokio::spawn(async move {
                    if let Err(e) = notifier.request_arrived(&console, &ep, &id).await {
                        tracing::warn!(error = %e, "notification not shown");
                    }
                });
            }
            output::watch_event(&event, json);
        })
        .await?;
    Ok(ExitCode::SUCCESS)
}

async fn pending(console: &Console, json: bool) -> Result<ExitCode> {
    let items = console.pending().await?;
    if json {
        print_json(&items.iter().map(|r| r.cli_json()).collect::<Vec<_>>())?;
    } else {
        output::pending(&items);
    }
    Ok(ExitCode::SUCCESS)
}

async fn show(console: &Console, ep: Option<&str>, id: &str, json: bool) -> Result<ExitCode> {
    let r = console.request_at(ep, id).await?;
    if json {
        print_json(&r.cli_json())?;
    } else {
        output::request(&r);
    }
    Ok(ExitCode::SUCCESS)
}

async fn decide(
    console: &Console,
    ep: Option<&str>,
    id: &str,
    input: DecisionInput,
    json: bool,
) -> Result<ExitCode> {
    let verdict = input.verdict;
    let outcome = console.decide_at(ep, id, input).await?;
    if json {
        print_json(&outcome)?;
    } else {
        output::decided(verdict, id, &outcome.delivery);
    }
    // After the outcome is out: the decision is signed and committed whatever happens here.
    console.checkpoint_or_warn().await;
    Ok(match outcome.delivery {
        Delivery::Accepted { .. } => ExitCode::SUCCESS,
        Delivery::Refused { .. } => ExitCode::from(exit::REFUSED),
        Delivery::Queued { .. } => ExitCode::from(exit::NETWORK),
    })
}

async fn history(console: &Console, args: HistoryArgs) -> Result<ExitCode> {
    match args.command {
        Some(HistoryCmd::Verify) => output::verified(console.verify_history().await?),
        Some(HistoryCmd::Reanchor { yes: false }) => {
            return Err(ConsoleError::Refused(
                "re-anchoring accepts the history as it is now, rows missing since the keyring's anchor included; \
                 if history.db was restored from a backup on purpose, run again with --yes"
                    .into(),
            ))
        }
        Some(HistoryCmd::Reanchor { yes: true }) => output::reanchored(console.reanchor_history().await?.as_ref()),
        Some(HistoryCmd::Checkpoint) => output::checkpointed(console.checkpoint(true).await?),
        Some(HistoryCmd::Export { format }) => output::export(console, format.0).await?,
        None => {
            let rows = console.history(&filter(args.filter)?).await?;
            if args.json {
                print_json(&rows)?;
            } else {
                rows.iter().for_each(output::row);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The core's history filter from the command line's.
fn filter(f: FilterArgs) -> Result<Filter> {
    let parse_time = |s: &str| countersign_console::review::parse_when(s, now());
    Ok(Filter {
        since: f.since.as_deref().map(parse_time).transpose()?,
        until: f.until.as_deref().map(parse_time).transpose()?,
        ep: f.ep,
        kind: f.kind.as_deref().map(str::parse).transpose()?,
        search: (!f.search.is_empty()).then(|| f.search.join(" ")),
        identity: f.identity,
        class: f.class,
        tier: f.tier,
        outcome: f.decision.as_deref().map(str::parse).transpose()?,
        limit: f.limit,
        offset: None,
    })
}
