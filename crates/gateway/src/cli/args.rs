//! The command line: every subcommand and flag, as clap parses them.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// The reference Countersign enforcement point: classifies agents' requests with a Rego policy,
/// streams step-ups to approvers' consoles, verifies their signed decisions and issues grants.
#[derive(Debug, Parser)]
#[command(name = "countersign-gateway", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
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
pub enum PolicyCommand {
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
pub enum ApproversCommand {
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
        /// The approver's key id (base64url: it may begin with "-").
        #[arg(long, allow_hyphen_values = true)]
        kid: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AgentsCommand {
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
pub enum SystemsCommand {
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
pub enum GrantsCommand {
    /// Revoke a grant by id (its `jti`): every later redemption is refused.
    Revoke {
        /// Data directory.
        #[arg(long)]
        data: PathBuf,
        /// The grant's id (base64url: it may begin with "-").
        #[arg(long, allow_hyphen_values = true)]
        jti: String,
    },
}
