//! `channelshift-api [--config api.toml]`

use anyhow::Result;
use channelshift_api::config::ApiConfig;
use channelshift_runtime::{config, shutdown, telemetry};

#[tokio::main]
async fn main() -> Result<()> {
    telemetry::init();
    let config: ApiConfig = config::load(config::config_path_from_args()?.as_deref())?;
    let (trigger, stop) = shutdown::channel();
    shutdown::on_signals(trigger);
    channelshift_api::run(config, stop).await
}
