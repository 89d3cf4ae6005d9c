//! The command line: `stdio`, `http` and `hook claude-code`, and the logging every mode shares (stderr only).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config;

/// Put Countersign between an agent and its tools: every MCP tool call needs the gateway's allow or a human's approval.
#[derive(Debug, Parser)]
#[command(name = "countersign-mcp", version)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The modes.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run as a stdio MCP server in front of the server command given after `--`.
    Stdio {
        /// The proxy's configuration (TOML).
        #[arg(long)]
        config: PathBuf,
        /// The real server's command and arguments.
        #[arg(last = true, required = true)]
        server: Vec<String>,
    },
    /// Run as a streamable-HTTP MCP endpoint in front of the server at `--upstream`.
    Http {
        /// The proxy's configuration (TOML).
        #[arg(long)]
        config: PathBuf,
        /// Where to listen, e.g. 127.0.0.1:8931 (port 0 picks a free one; the URL is printed on stdout).
        #[arg(long)]
        listen: std::net::SocketAddr,
        /// The server's MCP endpoint, e.g. http://127.0.0.1:3001/mcp; the proxy serves the same path.
        #[arg(long)]
        upstream: url::Url,
        /// Allow a non-loopback --listen address (whoever reaches it acts as this agent: put your own
        /// authentication in front).
        #[arg(long)]
        public: bool,
    },
    /// Answer a coding agent's hook: each tool call it is about to make needs the gateway's allow or a human's approval.
    Hook {
        /// Which coding agent's hook protocol.
        #[command(subcommand)]
        agent: HookAgent,
    },
}

/// The coding agents whose hooks `hook` answers.
#[derive(Debug, Subcommand)]
pub enum HookAgent {
    /// A Claude Code PreToolUse hook: the event on stdin; exit 0 with the allow JSON, or exit 2 with the reason.
    ClaudeCode {
        /// The configuration (TOML; `[hook] max_wait_s` bounds the wait).
        #[arg(long)]
        config: PathBuf,
    },
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Run the command line. Logs go to stderr: in stdio mode stdout carries the protocol alone.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Before logging starts: the hook's stderr is the reason the model reads, and its every failure exits 2.
    if let Command::Hook { agent: HookAgent::ClaudeCode { config } } = &cli.command {
        return crate::hook::claude_code(config);
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("COUNTERSIGN_MCP_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("countersign-mcp: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Stdio { config, server } => {
                let loaded = config::load(&config, &env)?;
                crate::stdio::run(loaded, server).await
            }
            Command::Http { config, listen, upstream, public } => {
                let loaded = config::load(&config, &env)?;
                crate::http::run(loaded, listen, upstream, public).await
            }
            // Answered above, before the runtime; blocks if ever reached.
            Command::Hook { .. } => Ok(i32::from(crate::hook::BLOCK)),
        }
    });
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("countersign-mcp: {e:#}");
            ExitCode::FAILURE
        }
    }
}
