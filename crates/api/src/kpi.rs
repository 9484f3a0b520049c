//! `GET /api/v1/kpi/{kpi}`: one KPI for a council over a range of local
//! dates, per period and per group. Parameters become domain values first
//! (`request`); cells come from the rollups (`store`); figures from `kpis`.

use crate::error::ApiError;
use crate::kpis::{self, KpiRow, Report};
use crate::request::{self, KpiRequest};
use crate::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::Json;
use channelshift_kpi::catalogue::{GroupKey, Kpi, Unit};
use channelshift_store::{Area, Bucket, CellFilter, Keys, Source};
use chrono::{DateTime, Utc};
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

pub fn as_of(seconds: Option<i64>) -> Option<String> {
    seconds
        .and_then(|seconds| DateTime::<Utc>::from_timestamp(seconds, 0))
        .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
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
    let report = compute(&state, kpi, &request, Source::Rollup).await?;
    Ok(Json(KpiResponse {
        kpi,
        unit: spec.unit,
        definition: spec.definition,
        as_of: as_of(latest),
        notes: report.notes,
        rows: report.rows,
    }))
}

/// Reads the cells `kpi` needs for `request` from `source` and computes its rows.
pub async fn compute(
    state: &AppState,
    kpi: Kpi,
    request: &KpiRequest,
    source: Source,
) -> Result<Report, ApiError> {
    let bucket = request.grouping.bucket();
    let keys = Keys {
        service: request.groups(GroupKey::Service),
        customer_type: request.groups(GroupKey::CustomerType),
        channel: request.groups(GroupKey::Channel) || request.groups(GroupKey::ChannelClass),
    };
    let store = &state.store;
    let contacts = || store.contact_cells(&request.filter, bucket, keys, source);
    Ok(match kpi {
        Kpi::DigitalTakeUp => kpis::digital_take_up_rows(request, state, &contacts().await?),
        Kpi::ChannelMix => kpis::channel_mix_rows(request, state, &contacts().await?),
        Kpi::CompletionRate => kpis::completion_rate_rows(request, state, &contacts().await?),
        Kpi::CostPerTransaction => {
            kpis::cost_per_transaction_rows(request, state, &contacts().await?)
        }
        Kpi::AvoidableContact => kpis::avoidable_contact_rows(request, state, &contacts().await?),
        Kpi::FirstContactResolution => {
            kpis::first_contact_resolution_rows(request, state, &contacts().await?)
        }
        Kpi::Satisfaction => {
            let cells = store
                .satisfaction_cells(&request.filter, bucket, keys, source)
                .await?;
            kpis::satisfaction_rows(request, state, &cells)
        }
        Kpi::EfficiencySavings => {
            let baseline = baseline_contacts(state, &request.filter, source).await?;
            let by_service = Keys {
                service: true,
                ..keys
            };
            let cells = store
                .contact_cells(&request.filter, bucket, by_service, source)
                .await?;
            kpis::efficiency_savings_rows(request, state, &cells, &baseline)
        }
        Kpi::Hotspots => {
            let (area, name) = if request.groups(GroupKey::Lsoa) {
                (Area::Lsoa, "lsoa")
            } else {
                (Area::Ward, "ward")
            };
            let cells = store
                .area_cells(&request.filter, bucket, area, source)
                .await?;
            kpis::hotspot_rows(request, state, &cells, name)
        }
    })
}

/// Contacts per service and channel in the configured baseline period, under
/// the request's filters.
pub async fn baseline_contacts(
    state: &AppState,
    filter: &CellFilter,
    source: Source,
) -> Result<
    std::collections::BTreeMap<String, channelshift_kpi::channel::ContactsByChannel>,
    ApiError,
> {
    let baseline = state.baseline.ok_or_else(|| {
        ApiError::bad(
            "kpi",
            "efficiency-savings needs a baseline period: set kpi.baseline in the API's configuration",
        )
    })?;
    let baseline_filter = CellFilter {
        from: baseline.from,
        to: baseline.to,
        ..filter.clone()
    };
    let keys = Keys {
        service: true,
        ..Keys::default()
    };
    let cells = state
        .store
        .contact_cells(&baseline_filter, Bucket::Total, keys, source)
        .await?;
    Ok(kpis::contacts_by_service(&cells))
}
