//! The `countersign` command line: clap's types for every command, flag and help text.

use std::path::PathBuf;

use clap::builder::PossibleValue;
use clap::{Parser, Subcommand, ValueEnum};
use countersign_console::review::ExportFormat;

#[derive(Parser, Debug)]
#[command(name = "countersign", version, about = "Approve or deny AI agents' risky actions, from a terminal")]
pub struct Cli {
    /// Profile directory (default: $COUNTERSIGN_HOME, else the platform data directory).
    #[arg(long, global = true, env = "COUNTERSIGN_HOME")]
    pub home: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
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
pub enum KeyCmd {
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
pub enum EpCmd {
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
        ca_cert: Option<PathBuf>,
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
pub struct HistoryArgs {
    #[command(subcommand)]
    pub command: Option<HistoryCmd>,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct FilterArgs {
    /// Only rows at or after: an RFC 3339 time (2026-11-26T09:30:00Z), a UTC date (2026-11-26),
    /// seconds since the epoch, or an age such as 30m, 2h, 7d.
    #[arg(long)]
    pub since: Option<String>,
    /// Only rows before: same forms as --since.
    #[arg(long)]
    pub until: Option<String>,
    /// Only rows of this enforcement point.
    #[arg(long)]
    pub ep: Option<String>,
    /// Only rows of this kind (e.g. "decision signed").
    #[arg(long)]
    pub kind: Option<String>,
    /// Only requests by this workload (spiffe://…) or on behalf of this principal.
    #[arg(long)]
    pub identity: Option<String>,
    /// Only requests of this data class.
    #[arg(long)]
    pub class: Option<String>,
    /// Only requests of this tier.
    #[arg(long)]
    pub tier: Option<String>,
    /// Only requests that ended this way: approve or deny (this console's decision), expired or
    /// withdrawn (as the enforcement point reported it).
    #[arg(long, value_parser = ["approve", "deny", "expired", "withdrawn"])]
    pub decision: Option<String>,
    /// Full-text search: every word must occur.
    #[arg(long, num_args = 1.., value_delimiter = None)]
    pub search: Vec<String>,
    /// At most this many rows (newest first).
    #[arg(long)]
    pub limit: Option<i64>,
}

#[derive(Subcommand, Debug)]
pub enum HistoryCmd {
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

/// The core's [`ExportFormat`] as a clap value: a thin wrapper, so that the core's type stays free
/// of command-line concerns and the CLI has no second enum of formats.
#[derive(Clone, Copy, Debug)]
pub struct Format(pub ExportFormat);

impl ValueEnum for Format {
    fn value_variants<'a>() -> &'a [Self] {
        &[Format(ExportFormat::Jsonl), Format(ExportFormat::Csv)]
    }

    /// The names [`ExportFormat::parse`] reads.
    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(match self.0 {
            ExportFormat::Jsonl => "jsonl",
            ExportFormat::Csv => "csv",
        }))
    }
}
