//! `channelshift-api [--config api.toml]` serves the API. Committee packs are
//! written by `channelshift-packs` (which the API also runs to render a pack
//! it is asked for).

use anyhow::Result;
use channelshift_api::config::ApiConfig;
use channelshift_runtime::{config, shutdown, telemetry};
use clap::Parser;
use std::path::PathBuf;

/// The KPI API. Settings come from the file given with --config, then
/// CHANNELSHIFT_* variables. Committee packs from the command line:
/// channelshift-packs.
#[derive(Debug, Parser)]
#[command(name = "channelshift-api", version)]
struct Cli {
    /// The configuration file (TOML).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    telemetry::init();
    let config: ApiConfig = config::load(cli.config.as_deref())?;
    let (trigger, stop) = shutdown::channel();
    shutdown::on_signals(trigger);
    channelshift_api::run(config, stop).await
}
