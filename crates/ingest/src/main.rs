//! `channelshift-ingest [--config ingest.toml]`

use anyhow::Result;
use channelshift_ingest::config::IngestConfig;
use channelshift_runtime::{config, shutdown, telemetry};

#[tokio::main]
async fn main() -> Result<()> {
    telemetry::init();
    let config: IngestConfig = config::load(config::config_path_from_args()?.as_deref())?;
    let (trigger, stop) = shutdown::channel();
    shutdown::on_signals(trigger);
    channelshift_ingest::run(config, stop).await
}
