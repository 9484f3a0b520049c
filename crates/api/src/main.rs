//! `channelshift-api [--config api.toml]` serves the API. Committee packs are
//! written by `channelshift-packs` (which the API also runs to render a pack
//! it is asked for).

use anyhow::{bail, Result};
use channelshift_api::config::ApiConfig;
use channelshift_runtime::{config, shutdown, telemetry};
use std::path::PathBuf;

const USAGE: &str = "usage: channelshift-api [--config <file.toml>]
settings may also come from CHANNELSHIFT_* variables; committee packs: channelshift-packs";

/// The configuration file given with `--config`, if any.
fn config_path(args: &[String]) -> Result<Option<PathBuf>> {
    match args {
        [] => Ok(None),
        [flag, path] if flag == "--config" => Ok(Some(PathBuf::from(path))),
        [first, ..] if first == "pack" || first == "packs-due" => {
            bail!("`{first}` is a command of channelshift-packs now (same options)\n{USAGE}")
        }
        _ => bail!("unexpected arguments {args:?}\n{USAGE}"),
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    telemetry::init();
    let path = config_path(&args)?;
    let config: ApiConfig = config::load(path.as_deref())?;
    let (trigger, stop) = shutdown::channel();
    shutdown::on_signals(trigger);
    channelshift_api::run(config, stop).await
}
