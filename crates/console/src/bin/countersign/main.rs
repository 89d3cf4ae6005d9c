//! `countersign`: the console for approvers who live in a terminal, for scripts, and for tests.
//! Every command is a thin translation onto [`countersign_console::Console`]: [`args`] says what
//! the command line accepts, [`dispatch`] which console call each command makes and its exit code,
//! [`output`] how each answer is printed.

#[macro_use]
mod output;
mod args;
mod dispatch;

use std::process::ExitCode;

use clap::Parser as _;
use countersign_console::display::visible;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
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
    match runtime.block_on(dispatch::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            // Error messages quote enforcement points' answers: made terminal-safe like everything else.
            eprintln!("countersign: {}", visible(&e.to_string()).0);
            ExitCode::from(e.exit_code())
        }
    }
}
