//! The operator endpoints every service serves: `/metrics` (Prometheus text),
//! `/healthz` (the process is alive) and `/readyz` (dependencies reachable,
//! loops not stalled). They need no token.

use crate::health::Health;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus::{Encoder, Registry, TextEncoder};

#[derive(Clone)]
struct Ops {
    registry: Registry,
    health: Health,
}

pub fn router(registry: Registry, health: Health) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(Ops { registry, health })
}

async fn metrics(State(ops): State<Ops>) -> impl IntoResponse {
    let mut buffer = Vec::new();
    let encoder = TextEncoder::new();
    match encoder.encode(&ops.registry.gather(), &mut buffer) {
        Ok(()) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, encoder.format_type().to_string())],
            buffer,
        )
            .into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}

async fn ready(State(ops): State<Ops>) -> impl IntoResponse {
    let report = ops.health.report();
    let body: String = report
        .iter()
        .map(|(name, ok)| format!("{name} {}\n", if *ok { "ok" } else { "FAILING" }))
        .collect();
    let status = if ops.health.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, body)
}
