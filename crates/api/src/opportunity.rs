//! `GET /api/v1/opportunities`: where to shift next. Every service's annual
//! saving if its assisted share fell to a benchmark, ranked, with its
//! satisfaction by channel group and every assumption stated (computed by
//! the reports crate, from the rollups).

use crate::cancel::RequestQueries;
use crate::error::{ApiError, ErrorBody};
use crate::query::{self, OpportunityQuery};
use crate::request;
use crate::AppState;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use channelshift_kpi::period::local_date;
use channelshift_reports::as_of;
use channelshift_reports::opportunity::{opportunities, OpportunityReport};
use channelshift_store::Source;
use chrono::Utc;

/// Every service's channel-shift opportunity over the year to `date`, ranked.
#[utoipa::path(
    get,
    path = crate::openapi::OPPORTUNITY_ROUTE,
    params(OpportunityQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The ranked opportunities", body = OpportunityReport),
        (status = 400, description = "A parameter is missing or invalid", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 503, description = "The KPI store could not answer", body = ErrorBody),
    )
)]
pub async fn get_opportunities(
    State(state): State<AppState>,
    RawQuery(params): RawQuery,
) -> Result<Response, ApiError> {
    let params: OpportunityQuery = query::parse(params.as_deref())?;
    let council = request::council(params.council.as_ref())?;
    let date = match params.date {
        Some(_) => request::date(params.date.as_ref(), "date")?,
        None => local_date(Utc::now()),
    };
    let policy = state.councils.policy(&council)?;
    let question = format!("opportunities/{council}/{date}");
    let queries = RequestQueries::new(&state.store);
    let version = queries.store.data_version();
    let answer = state
        .answers
        .ask(question, version, || async {
            let ingested = queries.store.latest_ingest().await?;
            let mut report =
                opportunities(&queries.store, &policy, &council, date, Source::Rollup).await?;
            report.as_of = as_of(ingested);
            Ok::<OpportunityReport, ApiError>(report)
        })
        .await;
    queries.answered();
    answer
}
