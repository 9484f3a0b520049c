//! The KPI API: authenticated JSON over the ClickHouse rollups, plus the open
//! operator endpoints. `router` builds the whole app, so tests can drive it
//! in-process; `run` serves it.

pub mod auth;
pub mod config;
pub mod error;
pub mod kpi;
mod metrics;

use anyhow::{Context, Result};
use axum::routing::get;
use axum::Router;
use channelshift_kpi::channel::ChannelClasses;
use channelshift_kpi::suppression::Suppression;
use channelshift_kpi::take_up::TakeUpDefinition;
use channelshift_runtime::health::Health;
use channelshift_runtime::ops;
use channelshift_runtime::shutdown::Shutdown;
use channelshift_store::Store;
use config::ApiConfig;
use prometheus::Registry;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub token_hashes: Arc<Vec<String>>,
    pub channel_classes: Arc<ChannelClasses>,
    pub take_up_definition: TakeUpDefinition,
    pub suppression: Suppression,
}

impl AppState {
    pub fn new(config: &ApiConfig, store: Store) -> Result<Self> {
        let token_hashes: Vec<String> = config
            .auth
            .token_sha256
            .iter()
            .map(|hash| hash.trim().to_ascii_lowercase())
            .collect();
        if let Some(bad) = token_hashes
            .iter()
            .find(|hash| hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            anyhow::bail!(
                "auth.token_sha256 holds {:?}, which is not a SHA-256 hex digest",
                bad.get(..8).unwrap_or(bad)
            );
        }
        Ok(Self {
            store,
            token_hashes: Arc::new(token_hashes),
            channel_classes: Arc::new(ChannelClasses::default()),
            take_up_definition: config.kpi.take_up_definition()?,
            suppression: Suppression {
                threshold: config.kpi.suppression_threshold,
            },
        })
    }
}

/// The whole application: `/api/v1/*` behind a bearer token, operator
/// endpoints open, request metrics on everything.
pub fn router(state: AppState, registry: &Registry, health: Health) -> Result<Router> {
    let request_metrics = metrics::RequestMetrics::register(registry)?;
    let api = Router::new()
        .route("/api/v1/kpi/{kpi}", get(kpi::get_kpi))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .with_state(state);
    Ok(api.merge(ops::router(registry.clone(), health)).layer(
        axum::middleware::from_fn_with_state(request_metrics, metrics::record),
    ))
}

/// Serves the API on `config.listen` until `shutdown`.
pub async fn run(config: ApiConfig, shutdown: Shutdown) -> Result<()> {
    let store = Store::connect(&config.clickhouse)
        .await
        .context("connecting to ClickHouse")?;
    let health = Health::new();
    health.set("clickhouse", true);
    let registry = Registry::new();
    let state = AppState::new(&config, store.clone())?;
    let app = router(state, &registry, health.clone())?;
    spawn_store_probe(store, health, shutdown.clone());

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    tracing::info!(address = %listener.local_addr()?, "KPI API listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.requested())
        .await
        .context("serving the API")
}

/// Keeps the readiness flag for ClickHouse current.
fn spawn_store_probe(store: Store, health: Health, shutdown: Shutdown) {
    tokio::spawn(async move {
        while !shutdown.is_requested() {
            health.set("clickhouse", store.ping().await);
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        }
    });
}
