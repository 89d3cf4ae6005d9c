//! `countersign`: the console for approvers who live in a terminal, for scripts, and for tests.
//! Every command is a thin translation onto [`countersign_console::Console`].

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use countersign_console::display::{json_safe, visible, visible_line};
use countersign_console::history::{Filter, Row};
use countersign_console::keys::RotationOutcome;
use countersign_console::requests::RequestView;
use countersign_console::sync::{Delivery, WatchEvent};
use countersign_console::{now, Console, ConsoleError, DecisionInput, OsKeyring, Profile, Result};
use countersign_protocol::{jwk::fingerprint, Verdict};
use serde_json::Value;

/// `println!` that ends the process quietly when stdout is closed (e.g. piped into `head`).
/// Every line goes through [`visible`]: whatever a caller forgot, no control character (ESC, CSI
/// U+009B, BEL, backspace, CR), bidi control or invisible character reaches the terminal raw.
/// Fields from an enforcement point or an agent are passed through [`visible_line`] as well, so
/// they also stay on their own line.
macro_rules! out {
    ($($arg:tt)*) => {{
        let line = visible(&format!($($arg)*)).0;
        let mut stdout = std::io::stdout().lock();
        if writeln!(stdout, "{line}").is_err() {
            std::process::exit(0);
        }
    }};
}

#[derive(Parser, Debug)]
#[command(name = "countersign", version, about = "Approve or deny AI agents' risky actions, from a terminal")]
struct Cli {
    /// Profile directory (default: $COUNTERSIGN_HOME, else the platform data directory).
    #[arg(long, global = true, env = "COUNTERSIGN_HOME")]
    home: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The approver key in the OS keyring.
    #[command(subcommand)]
    Key(KeyCmd),
    /// Enforcement points this console listens to.
    #[command(subcommand)]
    Ep(EpCmd),
    /// One pass: backfill pending requests, refresh states, deliver queued decisions.
    Sync {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Follow every enforcement point's stream until interrupted.
    Watch {
        /// Print one JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Requests waiting for a decision.
    Pending {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Everything about one request.
    Show {
        /// Request id.
        #[arg(allow_hyphen_values = true)]
        id: String,
        /// The enforcement point (its id or URL) the request came from, when several use that id.
        #[arg(long)]
        ep: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Approve a request.
    Approve {
        /// Request id.
        #[arg(allow_hyphen_values = true)]
        id: String,
        /// The enforcement point (its id or URL) the request came from, when several use that id.
        #[arg(long)]
        ep: Option<String>,
        /// Why (required for high and critical requests).
        #[arg(long, default_value = "", allow_hyphen_values = true)]
        reason: String,
        /// Narrow the grant's lifetime, in seconds.
        #[arg(long)]
        ttl: Option<u64>,
        /// Narrow how many times the grant may be used.
        #[arg(long)]
        max_uses: Option<u32>,
        /// The binding code read to you by the person the agent acts for (critical requests).
        #[arg(long)]
        code: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Deny a request.
    Deny {
        /// Request id.
        #[arg(allow_hyphen_values = true)]
        id: String,
        /// The enforcement point (its id or URL) the request came from, when several use that id.
        #[arg(long)]
        ep: Option<String>,
        /// Why (required).
        #[arg(long, default_value = "", allow_hyphen_values = true)]
        reason: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The tamper-evident review history.
    History(HistoryArgs),
}

#[derive(Subcommand, Debug)]
enum KeyCmd {
    /// Key id, fingerprint, creation time (creates the key on first use).
    Show {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The public key as a JWK, for `countersign-gateway approvers add --jwk`.
    Export,
    /// Replace the key and send each enforcement point a rotation statement signed by the old key;
    /// old public keys are kept so history stays verifiable. Exit 6 when some enforcement point did
    /// not take it (the new key must then be enrolled there by hand).
    Rotate {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum EpCmd {
    /// Pin an enforcement point's key.
    Add {
        /// Base URL, e.g. https://gateway.example.
        url: String,
        /// The key id you expect (compare the fingerprint out of band).
        #[arg(long, allow_hyphen_values = true)]
        trust: Option<String>,
        /// A PEM file with the CA certificate(s) its TLS certificate chains to, when not a public
        /// CA: stored with it and trusted for its calls only.
        #[arg(long, value_name = "FILE.pem")]
        ca_cert: Option<std::path::PathBuf>,
    },
    /// Pinned enforcement points and their connection state.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Unpin an enforcement point (its history stays).
    Remove {
        /// Its `ep` id or URL.
        #[arg(allow_hyphen_values = true)]
        ep: String,
        /// Remove even when decisions for it are not delivered yet (they are dropped).
        #[arg(long)]
        force: bool,
    },
}

#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
struct HistoryArgs {
    #[command(subcommand)]
    command: Option<HistoryCmd>,
    #[command(flatten)]
    filter: FilterArgs,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
struct FilterArgs {
    /// Only rows at or after: an RFC 3339 time (2026-11-26T09:30:00Z), a UTC date (2026-11-26),
    /// seconds since the epoch, or an age such as 30m, 2h, 7d.
    #[arg(long)]
    since: Option<String>,
    /// Only rows before: same forms as --since.
    #[arg(long)]
    until: Option<String>,
    /// Only rows of this enforcement point.
    #[arg(long)]
    ep: Option<String>,
    /// Only rows of this kind (e.g. "decision signed").
    #[arg(long)]
    kind: Option<String>,
    /// Only requests by this workload (spiffe://…) or on behalf of this principal.
    #[arg(long)]
    identity: Option<String>,
    /// Only requests of this data class.
    #[arg(long)]
    class: Option<String>,
    /// Only requests of this tier.
    #[arg(long)]
    tier: Option<String>,
    /// Only requests this console decided this way.
    #[arg(long, value_parser = ["approve", "deny"])]
    decision: Option<String>,
    /// Full-text search: every word must occur.
    #[arg(long, num_args = 1.., value_delimiter = None)]
    search: Vec<String>,
    /// At most this many rows (newest first).
    #[arg(long)]
    limit: Option<i64>,
}

#[derive(Subcommand, Debug)]
enum HistoryCmd {
    /// Every row, oldest first, with hashes and original signed tokens.
    Export {
        /// Output format.
        #[arg(long, value_enum, default_value = "jsonl")]
        format: Format,
    },
    /// Check the hash chain, the signed checkpoints and the keyring's anchor of the newest one: exit 0
    /// when intact, 5 naming the first bad row (edited, deleted, reordered, or cut from the end).
    Verify,
    /// Sign a checkpoint over the current head now and anchor it in the keyring (they are also made
    /// every 100 rows, and a minute after the last one when rows were added).
    Checkpoint,
    /// Accept the history as it is now after restoring `history.db` from a backup: only when the
    /// chain and its signed checkpoints verify; the gap is recorded in the history itself.
    Reanchor {
        /// Confirm: rows missing since the keyring's anchor are accepted as gone.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Format {
    Jsonl,
    Csv,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("COUNTERSIGN_LOG"))
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: a log piped to a file or another program stays text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("countersign: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            // Error messages quote enforcement points' answers: made terminal-safe like everything else.
            eprintln!("countersign: {}", visible(&e.to_string()).0);
            ExitCode::from(e.exit_code() as u8)
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

fn print_json(value: &impl serde::Serialize) -> Result<()> {
    let s = serde_json::to_string_pretty(value).map_err(|e| ConsoleError::Invalid(e.to_string()))?;
    out!("{}", json_safe(&s));
    Ok(())
}

async fn run(cli: Cli) -> Result<ExitCode> {
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
    let console = console.clone();
    match command {
        Command::Key(KeyCmd::Show { json }) => {
            let key = console.key().await?;
            if json {
                print_json(&key)?;
            } else {
                out!(
                    "kid          {}\nfingerprint  {}\ncreated      {}",
                    key.kid,
                    key.fingerprint,
                    key.created_at
                );
                for (old, retired) in console.key_history().await?.iter().skip(1) {
                    out!("retired      {} (until {})", old.kid, retired.unwrap_or_default());
                }
            }
        }
        Command::Key(KeyCmd::Export) => print_json(&console.key().await?.jwk)?,
        Command::Key(KeyCmd::Rotate { json }) => {
            let rotation = console.rotate_key().await?;
            let missing = rotation.needs_enrolment().count();
            if json {
                print_json(&rotation)?;
            } else {
                let key = &rotation.key;
                out!("new key {} ({})", key.kid, key.fingerprint);
                for e in &rotation.eps {
                    let outcome = match &e.outcome {
                        RotationOutcome::Accepted => "rotated: the new key replaces the old one there".into(),
                        RotationOutcome::Refused { status, message } => {
                            format!("NOT rotated (HTTP {status}: {})", visible_line(message))
                        }
                        RotationOutcome::Unreachable { error } => {
                            format!("NOT rotated (unreachable: {})", visible_line(error))
                        }
                        RotationOutcome::NotSent { reason } => {
                            format!("NOT rotated ({})", visible_line(reason))
                        }
                    };
                    out!("{} ({}): {outcome}", visible_line(&e.ep), visible_line(&e.url));
                }
                if missing > 0 {
                    out!(
                        "{missing} enforcement point(s) need the new key enrolled by hand: \
                         countersign key export > me.jwk, then `countersign-gateway approvers add` there"
                    );
                }
            }
            if missing > 0 {
                return Ok(ExitCode::from(6));
            }
        }
        Command::Ep(EpCmd::Add { url, trust: None, ca_cert }) => {
            let ca = read_ca(ca_cert.as_deref())?;
            let wk = console.fetch_well_known_with(&url, ca.as_deref()).await?;
            out!(
                "name  {}\nep    {}\nurl   {}",
                visible_line(&wk.name),
                visible_line(&wk.ep),
                visible_line(&wk.url)
            );
            for (kid, _) in &wk.keys {
                out!("key   {}  fingerprint {}", visible_line(kid), visible_line(&fingerprint(kid)));
            }
            return Err(ConsoleError::Untrusted(format!(
                "not pinned: compare the fingerprint with the gateway's operator, then run\n  countersign ep add {} --trust KID{}",
                visible_line(&wk.url),
                ca_cert.map(|f| format!(" --ca-cert {}", visible_line(&f.display().to_string()))).unwrap_or_default()
            )));
        }
        Command::Ep(EpCmd::Add { url, trust: Some(kid), ca_cert }) => {
            let ca = read_ca(ca_cert.as_deref())?;
            let ep = console.add_ep_with(&url, &kid, ca.as_deref()).await?;
            out!(
                "pinned {} ({}) key {} ({})",
                visible_line(&ep.ep),
                visible_line(&ep.name),
                visible_line(&ep.kid),
                visible_line(&fingerprint(&ep.kid))
            );
        }
        Command::Ep(EpCmd::List { json }) => {
            let eps = console.eps().await?;
            if json {
                let out: Vec<Value> = eps
                    .iter()
                    .map(|e| {
                        serde_json::json!({"ep": e.ep, "name": e.name, "url": e.url, "kid": e.kid,
                        "connection": e.connection(), "last_event_id": e.last_event_id})
                    })
                    .collect();
                print_json(&out)?;
            } else {
                for e in eps {
                    out!(
                        "{}  {}  {}  key {}  {}",
                        visible_line(&e.ep),
                        visible_line(&e.name),
                        visible_line(&e.url),
                        visible_line(&fingerprint(&e.kid)),
                        visible_line(&e.connection())
                    );
                }
            }
        }
        Command::Ep(EpCmd::Remove { ep, force }) => {
            let ep = console.remove_ep(&ep, force).await?;
            out!("removed {} ({})", visible_line(&ep.ep), visible_line(&ep.url));
        }
        Command::Sync { json } => {
            let reports = console.sync().await?;
            if json {
                print_json(&reports)?;
            } else {
                for r in &reports {
                    out!(
                        "{}: {} new, {} rejected, {} resolved, {} delivered, {} queued{}",
                        visible_line(&r.ep),
                        r.new,
                        r.rejected,
                        r.resolved,
                        r.delivered,
                        r.queued,
                        r.error
                            .as_ref()
                            .map(|e| format!(" — error: {}", visible_line(e)))
                            .unwrap_or_default()
                    );
                }
            }
            if reports.iter().any(|r| r.error.is_some()) {
                return Ok(ExitCode::from(6));
            }
        }
        Command::Watch { json } => {
            // Desktop notifications for new requests (threshold and pause from the settings); a
            // notification only informs: its single action opens nothing here and approves nothing.
            let notifier = std::sync::Arc::new(countersign_console::notify::Notifier::default());
            let notifying = console.clone();
            console
                .watch(move |event| {
                    if let countersign_console::sync::WatchEvent::Request { ep, id } = &event {
                        let (console, notifier) = (notifying.clone(), notifier.clone());
                        let (ep, id) = (ep.clone(), id.clone());
                        tokio::spawn(async move {
                            if let Err(e) = notifier.request_arrived(&console, &ep, &id).await {
                                tracing::warn!(error = %e, "notification not shown");
                            }
                        });
                    }
                    let line = if json {
                        json_safe(&serde_json::to_string(&event).unwrap_or_default())
                    } else {
                        describe(&event)
                    };
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{}", visible_line(&line));
                    let _ = out.flush();
                })
                .await?;
        }
        Command::Pending { json } => {
            let items = console.pending().await?;
            if json {
                print_json(&items)?;
            } else if items.is_empty() {
                out!("no pending requests");
            } else {
                for r in items {
                    let c = &r.claims;
                    out!(
                        "{}  {:8}  {:>5}s left  {}  {}  {}",
                        visible_line(&r.id),
                        visible_line(&r.tier),
                        r.seconds_left,
                        visible_line(c["identity"]["display"].as_str().unwrap_or("")),
                        visible_line(c["purpose"]["code"].as_str().unwrap_or("")),
                        visible_line(&r.state)
                    );
                }
            }
        }
        Command::Show { id, ep, json } => {
            let r = console.request_at(ep.as_deref(), &id).await?;
            if json {
                print_json(&r)?;
            } else {
                print_request(&r);
            }
        }
        Command::Approve { id, ep, reason, ttl, max_uses, code, json } => {
            let input =
                DecisionInput { verdict: Verdict::Approve, reason, ttl_s: ttl, max_uses, binding_code: code };
            return decide(&console, ep.as_deref(), &id, input, json).await;
        }
        Command::Deny { id, ep, reason, json } => {
            let input = DecisionInput {
                verdict: Verdict::Deny,
                reason,
                ttl_s: None,
                max_uses: None,
                binding_code: None,
            };
            return decide(&console, ep.as_deref(), &id, input, json).await;
        }
        Command::History(args) => history(&console, args).await?,
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
        let what = if verdict == Verdict::Approve { "approved" } else { "denied" };
        match &outcome.delivery {
            Delivery::Accepted { state, .. } => {
                out!("{what} {}: delivered; the request is now {}", visible_line(id), visible_line(state))
            }
            Delivery::Refused { status, answer } => {
                let words = countersign_console::review::answer_words(answer);
                out!(
                    "{what} {}: the enforcement point refused the decision (HTTP {status}): {}",
                    visible_line(id),
                    visible_line(&words)
                )
            }
            Delivery::Queued { error } => {
                out!(
                    "{what} {}: decided, not delivered ({}); `countersign sync` retries",
                    visible_line(id),
                    visible_line(error)
                )
            }
        }
    }
    // After the outcome is out: the decision is signed and committed whatever happens here.
    console.checkpoint_or_warn().await;
    Ok(match outcome.delivery {
        Delivery::Accepted { .. } => ExitCode::SUCCESS,
        Delivery::Refused { .. } => ExitCode::from(4),
        Delivery::Queued { .. } => ExitCode::from(6),
    })
}

/// A watch event in one line; every field from an enforcement point through [`visible_line`].
fn describe(event: &WatchEvent) -> String {
    let l = |s: &str| visible_line(s);
    match event {
        WatchEvent::Connected { ep } => format!("{}: connected", l(ep)),
        WatchEvent::Backfilled { ep, new, resolved } => {
            format!("{}: caught up ({new} new, {resolved} resolved)", l(ep))
        }
        WatchEvent::Request { ep, id } => {
            format!("{ep}: new request {id} (countersign show {id} --ep {ep})", ep = l(ep), id = l(id))
        }
        WatchEvent::Rejected { ep, reason } => format!("{}: REJECTED a request: {}", l(ep), l(reason)),
        WatchEvent::Resolved { ep, id, state } => format!("{}: {} is {}", l(ep), l(id), l(state)),
        WatchEvent::Disconnected { ep, error, retry_ms } => {
            format!("{}: disconnected ({}); retrying in {retry_ms} ms", l(ep), l(error))
        }
    }
}

/// A request string for one line of `show`: hidden characters and newlines made visible.
fn text(v: &Value) -> String {
    visible_line(v.as_str().unwrap_or(""))
}

fn print_request(r: &RequestView) {
    let c = &r.claims;
    out!("request   {}  ({})", visible_line(&r.id), visible_line(&r.ep));
    out!("state     {}", visible_line(&r.state));
    out!(
        "tier      {} — {} approval(s) required",
        visible_line(&r.tier),
        visible_line(&c["policy"]["approvals_required"].to_string())
    );
    out!("policy    {} ({})", text(&c["policy"]["reason"]), text(&c["policy"]["id"]));
    out!("expires   in {}s", r.seconds_left);
    out!("agent     {} <{}>", text(&c["identity"]["display"]), text(&c["identity"]["workload"]));
    for (i, p) in c["identity"]["on_behalf_of"].as_array().into_iter().flatten().enumerate() {
        out!("{}for {} <{}>", "  ".repeat(i + 5), text(&p["display"]), text(&p["sub"]));
    }
    if let Some(cred) = c["identity"].get("credential") {
        out!("credential {} (expires {})", text(&cred["kind"]), text(&cred["expires_at"]));
    }
    out!("purpose   {}: {}", text(&c["purpose"]["code"]), text(&c["purpose"]["statement"]));
    let cats: Vec<String> = c["data"]["categories"].as_array().into_iter().flatten().map(text).collect();
    out!("data      {} [{}]", text(&c["data"]["class"]), cats.join(", "));
    out!("target    {} / {}", text(&c["target"]["system"]), text(&c["target"]["environment"]));
    out!("actions");
    for (i, a) in c["actions"].as_array().into_iter().flatten().enumerate() {
        let op = a.get("operation").map(|o| format!(".{}", text(o))).unwrap_or_default();
        let target = a.get("target").map(|t| format!(" on {}", text(t))).unwrap_or_default();
        let rev = if a["reversible"].as_bool() == Some(true) { "reversible" } else { "IRREVERSIBLE" };
        out!("  {}. {}{op}{target}  ({rev})", i + 1, text(&a["tool"]));
        let args = serde_json::to_string_pretty(&a["args"]).unwrap_or_default();
        for line in visible(&args).0.lines() {
            out!("       {line}");
        }
        // Text smuggled in invisible characters (tag characters, variation selectors), decoded.
        let mut strings = Vec::new();
        collect_strings(&a["args"], &mut strings);
        for hidden in strings.iter().flat_map(|s| countersign_console::display::smuggled(s)) {
            out!("       ⚠ HIDDEN TEXT in invisible characters: {hidden}");
        }
        // Text pushed out of view by padding (a terminal that does not wrap, a pager with -S).
        for n in strings.iter().filter_map(|s| countersign_console::display::padding(s)) {
            out!("       ⚠ PADDED with {n} blank characters in a row: the text continues beyond view");
        }
    }
    if c.get("binding").and_then(|b| b["required"].as_bool()) == Some(true) {
        out!("binding   REQUIRED: approve with --code CODE, read to you by the person the agent acts for");
    }
    if let Some(d) = &r.decision {
        let outcome = d.outcome.as_deref().unwrap_or("not delivered");
        out!("decision  {} ({}): {}", d.verdict, visible_line(outcome), visible_line(&d.reason));
    }
    for w in &r.warnings {
        out!("WARNING   {}", visible_line(w));
    }
    out!("digest    {}", visible_line(&r.digest));
}

/// Every string in `v` (keys included), depth first.
fn collect_strings<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::String(s) => out.push(s),
        Value::Array(a) => a.iter().for_each(|x| collect_strings(x, out)),
        Value::Object(o) => o.iter().for_each(|(k, x)| {
            out.push(k);
            collect_strings(x, out)
        }),
        _ => {}
    }
}

fn parse_time(s: &str) -> Result<i64> {
    countersign_console::review::parse_when(s, now())
}

async fn history(console: &Console, args: HistoryArgs) -> Result<()> {
    match args.command {
        Some(HistoryCmd::Verify) => {
            let n = console.verify_history().await?;
            out!("history intact: {n} rows");
        }
        Some(HistoryCmd::Reanchor { yes: false }) => {
            return Err(ConsoleError::Refused(
                "re-anchoring accepts the history as it is now, rows missing since the keyring's anchor included; \
                 if history.db was restored from a backup on purpose, run again with --yes"
                    .into(),
            ))
        }
        Some(HistoryCmd::Reanchor { yes: true }) => match console.reanchor_history().await? {
            Some(r) => out!(
                "history re-anchored at checkpoint row {} ({} rows accepted; the keyring's anchor was at row {})",
                r.anchored,
                r.rows,
                r.previous
            ),
            None => out!("the history already matches the keyring's anchor: nothing to re-anchor"),
        },
        Some(HistoryCmd::Checkpoint) => match console.checkpoint(true).await? {
            Some(seq) => out!("checkpoint signed at row {seq}"),
            None => out!("nothing new to sign"),
        },
        Some(HistoryCmd::Export { format }) => {
            let format = match format {
                Format::Jsonl => countersign_console::review::ExportFormat::Jsonl,
                Format::Csv => countersign_console::review::ExportFormat::Csv,
            };
            // Into a file or a pipe the export is exact; on a terminal it is shown like any output.
            if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                let mut buf = Vec::new();
                console.export_history(format, &mut buf).await?;
                let text = String::from_utf8_lossy(&buf);
                let mut out = std::io::stdout().lock();
                write!(out, "{}", visible(&text).0).map_err(|e| ConsoleError::Invalid(e.to_string()))?;
            } else {
                let mut out = std::io::BufWriter::new(std::io::stdout().lock());
                console.export_history(format, &mut out).await?;
                out.flush().map_err(|e| ConsoleError::Invalid(e.to_string()))?;
            }
        }
        None => {
            let f = args.filter;
            let filter = Filter {
                since: f.since.as_deref().map(parse_time).transpose()?,
                until: f.until.as_deref().map(parse_time).transpose()?,
                ep: f.ep,
                kind: f.kind,
                search: (!f.search.is_empty()).then(|| f.search.join(" ")),
                identity: f.identity,
                class: f.class,
                tier: f.tier,
                decision: f.decision,
                limit: f.limit,
                offset: None,
            };
            let rows = console.history(&filter).await?;
            if args.json {
                print_json(&rows)?;
            } else {
                for r in rows {
                    print_row(&r);
                }
            }
        }
    }
    Ok(())
}

fn print_row(r: &Row) {
    let detail: Value = serde_json::from_str(&r.detail).unwrap_or(Value::Null);
    // Request-derived text: hidden characters made visible and one row stays one line (a newline
    // in a statement must not print a fake row).
    let words = visible_line(&countersign_console::review::row_summary(&r.kind, &detail));
    let field = |k: &str| visible_line(detail[k].as_str().unwrap_or(""));
    let summary = match r.kind.as_str() {
        "request received" => format!("{} {} {words}", field("tier"), field("workload")),
        _ => words,
    };
    let id = visible_line(r.request_id.as_deref().unwrap_or("-"));
    out!("{:>6}  {}  {:16}  {}  {}", r.seq, r.at, r.kind, id, summary);
}
