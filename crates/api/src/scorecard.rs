//! `GET /api/v1/scorecard`: every headline KPI for one period, with its
//! target and RAG status, direction of travel against the previous period and
//! the same period last year, and how much of the period the data covers
//! (computed by the reports crate, from the rollups).

use crate::answers::Answer;
use crate::cancel::RequestQueries;
use crate::error::{ApiError, ErrorBody};
use crate::query::{self, ScorecardQuery};
use crate::request;
use crate::AppState;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use channelshift_kpi::period::{local_date, PeriodKind};
use channelshift_reports::scorecard::{report_period, scorecard, Scorecard, REPORT_PERIODS};
use channelshift_store::Source;
use chrono::Utc;

/// `period` of the scorecard and the packs: month, quarter (default) or financial year.
pub(crate) fn period_kind(value: Option<&String>) -> Result<PeriodKind, ApiError> {
    report_period(value.map(String::as_str).unwrap_or("quarter"))
        .ok_or_else(|| ApiError::bad("period", REPORT_PERIODS))
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
    let params: ScorecardQuery = query::parse(params.as_deref())?;
    let council = request::council(params.council.as_ref())?;
    let kind = period_kind(params.period.as_ref())?;
    let date = match params.date {
        Some(_) => request::date(params.date.as_ref(), "date")?,
        None => local_date(Utc::now()),
    };
    let policy = state.councils.policy(&council)?;
    // The date resolved: a question without one changes at midnight.
    let question = format!("scorecard/{council}/{kind:?}/{date}");
    let queries = RequestQueries::new(&state.store);
    let answer = async {
        // Read before the figures: an answer is kept at the version it saw.
        let version = state.answers.version(queries.store.data_version().await);
        if let Some(kept) = state.answers.get(&question, version.as_ref()) {
            return Ok(Answer::Kept(kept));
        }
        let card = scorecard(
            &queries.store,
            &policy,
            &council,
            kind,
            date,
            Source::Rollup,
        )
        .await?;
        Ok::<_, ApiError>(Answer::Computed(version, card))
    }
    .await;
    // An answer or an error: either way no query of it runs on.
    queries.answered();
    match answer? {
        Answer::Computed(version, card) => state.answers.answer(question, version, &card),
        Answer::Kept(kept) => Ok(kept),
    }
}
