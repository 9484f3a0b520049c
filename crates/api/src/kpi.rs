//! `GET /api/v1/kpi/{kpi}`: one KPI for a council over a range of local
//! dates, per period and per group. Parameters become domain values first
//! (`request`); the figures are the reports crate's, from the rollups.

use crate::cancel::RequestQueries;
use crate::error::{ApiError, ErrorBody};
use crate::query::{self, KpiQuery};
use crate::request;
use crate::AppState;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use channelshift_kpi::catalogue::{Kpi, Unit};
use channelshift_reports::as_of;
use channelshift_reports::compute::compute;
use channelshift_reports::rows::KpiRow;
use channelshift_store::Source;
use serde::Serialize;
use utoipa::ToSchema;

/// One KPI's rows.
#[derive(Debug, Serialize, ToSchema)]
pub struct KpiResponse {
    pub kpi: Kpi,
    pub unit: Unit,
    #[schema(value_type = String)]
    pub definition: &'static str,
    /// When ingest last stored a batch: the figures include everything ingested up to then.
    #[schema(format = DateTime)]
    pub as_of: Option<String>,
    pub notes: Vec<String>,
    pub rows: Vec<KpiRow>,
}

/// One KPI for a council over a range of local dates, per period and group.
///
/// The KPIs, with the group keys and filters each accepts, are listed below.
#[utoipa::path(
    get,
    path = crate::openapi::KPI_ROUTE,
    params(("kpi" = inline(Kpi), Path, description = "The KPI"), KpiQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The KPI's rows", body = KpiResponse),
        (status = 400, description = "A parameter is missing or invalid; `parameter` names it", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 404, description = "Unknown KPI", body = ErrorBody),
        (status = 503, description = "The KPI store could not answer", body = ErrorBody),
    )
)]
pub async fn get_kpi(
    State(state): State<AppState>,
    Path(kpi): Path<String>,
    RawQuery(params): RawQuery,
) -> Result<Response, ApiError> {
    let kpi: Kpi = kpi.parse().map_err(|_| {
        let known: Vec<&str> = Kpi::ALL.iter().map(|kpi| kpi.as_str()).collect();
        ApiError::NotFound(format!(
            "unknown KPI {kpi:?}; available: {}",
            known.join(", ")
        ))
    })?;
    let spec = kpi.spec();
    let question = format!("kpi/{kpi}?{}", params.as_deref().unwrap_or_default());
    let params: KpiQuery = query::parse(params.as_deref())?;
    let request = request::kpi_request(&params, kpi)?;
    let policy = state.councils.policy(&request.filter.council)?;
    let queries = RequestQueries::new(&state.store);
    // The data version read before the figures: an answer is kept at it.
    let version = queries.store.data_version();
    let answer = state
        .answers
        .ask(question, version, || async {
            // Read before the figures: they then include at least everything up to it.
            let latest = queries.store.latest_ingest().await?;
            let report = compute(&queries.store, &policy, kpi, &request, Source::Rollup).await?;
            request::bounded_answer(report.rows.len(), request.periods.len())?;
            Ok(KpiResponse {
                kpi,
                unit: spec.unit,
                definition: spec.definition,
                as_of: as_of(latest),
                notes: report.notes,
                rows: report.rows,
            })
        })
        .await;
    // An answer or an error: either way no query of it runs on.
    queries.answered();
    answer
}
