//! `GET /api/v1/scorecard`: every headline KPI for one period, with its
//! target and RAG status, direction of travel against the previous period and
//! the same period last year, and how much of the period the data covers
//! (computed by the reports crate, from the rollups).

use crate::cancel::RequestQueries;
use crate::error::{ApiError, ErrorBody};
use crate::query::{self, ScorecardQuery};
use crate::request;
use crate::AppState;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use channelshift_contract::CouncilCode;
use channelshift_kpi::period::{local_date, PeriodKind};
use channelshift_reports::benchmarking::{benchmarks, Benchmarks};
use channelshift_reports::scorecard::{report_period, scorecard, Scorecard, REPORT_PERIODS};
use channelshift_store::Source;
use chrono::{NaiveDate, Utc};

/// `period` of the scorecard and the packs: month, quarter (default) or financial year.
pub(crate) fn period_kind(value: Option<&String>) -> Result<PeriodKind, ApiError> {
    report_period(value.map(String::as_str).unwrap_or("quarter"))
        .ok_or_else(|| ApiError::bad("period", REPORT_PERIODS))
}

/// The council, period kind and date (default today) a scorecard or
/// benchmarks request asks about.
fn scorecard_query(params: Option<&str>) -> Result<(CouncilCode, PeriodKind, NaiveDate), ApiError> {
    let params: ScorecardQuery = query::parse(params)?;
    let council = request::council(params.council.as_ref())?;
    let kind = period_kind(params.period.as_ref())?;
    let date = match params.date {
        Some(_) => request::date(params.date.as_ref(), "date")?,
        None => local_date(Utc::now()),
    };
    Ok((council, kind, date))
}

/// Every headline KPI for the period containing `date`, with target, RAG, direction of travel and coverage.
#[utoipa::path(
    get,
    path = crate::openapi::SCORECARD_ROUTE,
    params(ScorecardQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The scorecard", body = Scorecard),
        (status = 400, description = "A parameter is missing or invalid", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 503, description = "The KPI store could not answer", body = ErrorBody),
    )
)]
pub async fn get_scorecard(
    State(state): State<AppState>,
    RawQuery(params): RawQuery,
) -> Result<Response, ApiError> {
    let (council, kind, date) = scorecard_query(params.as_deref())?;
    let policy = state.councils.policy(&council)?;
    // The date resolved: a question without one changes at midnight.
    let question = format!("scorecard/{council}/{kind:?}/{date}");
    let queries = RequestQueries::new(&state.store);
    // The data version read before the figures: an answer is kept at it.
    let version = queries.store.data_version();
    let answer = state
        .answers
        .ask(question, version, || async {
            Ok(scorecard(
                &queries.store,
                &policy,
                &council,
                kind,
                date,
                Source::Rollup,
            )
            .await?)
        })
        .await;
    // An answer or an error: either way no query of it runs on.
    queries.answered();
    answer
}

/// Where the council stands among the councils on the platform that opted in to benchmarking.
#[utoipa::path(
    get,
    path = crate::openapi::BENCHMARKS_ROUTE,
    params(ScorecardQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The council's standing on each headline KPI", body = Benchmarks),
        (status = 400, description = "A parameter is missing or invalid, or the council has not opted in", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 503, description = "The KPI store could not answer", body = ErrorBody),
    )
)]
pub async fn get_benchmarks(
    State(state): State<AppState>,
    RawQuery(params): RawQuery,
) -> Result<Response, ApiError> {
    let (council, kind, date) = scorecard_query(params.as_deref())?;
    let question = format!("benchmarks/{council}/{kind:?}/{date}");
    let queries = RequestQueries::new(&state.store);
    let version = queries.store.data_version();
    let answer = state
        .answers
        .ask(question, version, || async {
            Ok(benchmarks(&queries.store, &state.councils, &council, kind, date).await?)
        })
        .await;
    queries.answered();
    answer
}
