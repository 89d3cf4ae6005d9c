//! `countersign-gateway`: the reference Countersign enforcement point.

mod cli;

use clap::Parser as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    cli::dispatch::run(cli::args::Cli::parse().command).await
}
