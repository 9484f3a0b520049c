//! The ingest service: consumes contact events and satisfaction responses
//! from Kafka, validates them against the contract, writes valid ones to
//! ClickHouse and dead-letters the rest, committing offsets only after.

pub mod batch;
pub mod config;
pub mod consumer;
pub mod decode;
pub mod metrics;
pub mod pipeline;
pub mod privacy;
pub mod rebuild;
pub mod reconcile;
pub mod refetch;
pub mod retention;
pub mod sinks;

use anyhow::{Context, Result};
use channelshift_runtime::health::Health;
use channelshift_runtime::ops;
use channelshift_runtime::shutdown::Shutdown;
use config::IngestConfig;
use privacy::Pseudonymiser;
use prometheus::Registry;

/// The pseudonymisation key, refused at start-up when missing outside dev mode.
pub fn pseudonymiser(config: &IngestConfig) -> Result<Pseudonymiser> {
    match (&config.privacy.pseudonym_key, config.privacy.dev_mode) {
        (Some(key), _) => Ok(Pseudonymiser::new(key.clone())?),
        (None, true) => {
            tracing::warn!("dev mode: customer references are hashed with a built-in key");
            Ok(Pseudonymiser::dev_mode())
        }
        (None, false) => anyhow::bail!(
            "privacy.pseudonym_key is not set (CHANNELSHIFT_PRIVACY__PSEUDONYM_KEY); \
             it is required unless privacy.dev_mode is true"
        ),
    }
}

/// Serves the operator endpoints and runs the pipeline until `shutdown`.
pub async fn run(config: IngestConfig, shutdown: Shutdown) -> Result<()> {
    let pseudonymiser = pseudonymiser(&config)?;
    let registry = Registry::new();
    let metrics = metrics::IngestMetrics::register(&registry)?;
    let health = Health::new();
    metrics::register_readiness(&registry, &health)?;

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding the operator endpoints on {}", config.listen))?;
    tracing::info!(address = %listener.local_addr()?, "operator endpoints listening");
    let ops_shutdown = shutdown.clone();
    let ops_health = health.clone();
    let ops_server = tokio::spawn(async move {
        axum::serve(listener, ops::router(registry, ops_health))
            .with_graceful_shutdown(ops_shutdown.requested())
            .await
    });

    let pipeline =
        pipeline::Pipeline::connect(config, pseudonymiser, metrics, health.clone(), &shutdown)
            .await?;
    let result = pipeline.run(shutdown).await;
    ops_server.abort();
    result
}
