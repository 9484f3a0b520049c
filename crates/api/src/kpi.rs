//! `GET /api/v1/kpi/{kpi}`: one KPI for a council over a range of local
//! dates, per period and per group. Parameters become domain values first
//! (`request`); the figures are the reports crate's, from the rollups.

use crate::error::ApiError;
use crate::request;
use crate::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::Json;
use channelshift_kpi::catalogue::{Kpi, Unit};
use channelshift_reports::as_of;
use channelshift_reports::compute::compute;
use channelshift_reports::rows::KpiRow;
use channelshift_store::Source;
use serde::Serialize;
use std::collections::HashMap;

#[derive(Debug, Serialize)]
pub struct KpiResponse {
    pub kpi: Kpi,
    pub unit: Unit,
    pub definition: &'static str,
    /// When ingest last stored a batch: the figures include everything ingested up to then.
    pub as_of: Option<String>,
    pub notes: Vec<String>,
    pub rows: Vec<KpiRow>,
}

pub async fn get_kpi(
    State(state): State<AppState>,
    Path(kpi): Path<String>,
    params: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<KpiResponse>, ApiError> {
    let kpi: Kpi = kpi.parse().map_err(|_| {
        let known: Vec<&str> = Kpi::ALL.iter().map(|kpi| kpi.as_str()).collect();
        ApiError::NotFound(format!(
            "unknown KPI {kpi:?}; available: {}",
            known.join(", ")
        ))
    })?;
    let spec = kpi.spec();
    let Query(params) =
        params.map_err(|rejection| ApiError::bad("query", rejection.body_text()))?;
    let request = request::kpi_request(&params, &spec)?;
    // Read before the figures: they then include at least everything up to it.
    let latest = state.store.latest_ingest().await?;
    let report = compute(&state.store, &state.policy, kpi, &request, Source::Rollup).await?;
    Ok(Json(KpiResponse {
        kpi,
        unit: spec.unit,
        definition: spec.definition,
        as_of: as_of(latest),
        notes: report.notes,
        rows: report.rows,
    }))
}
