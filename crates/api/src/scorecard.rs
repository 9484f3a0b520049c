//! `GET /api/v1/scorecard`: every headline KPI for one period, with its
//! target and RAG status, direction of travel against the previous period and
//! the same period last year, and how much of the period the data covers
//! (computed by the reports crate, from the rollups).

use crate::error::ApiError;
use crate::request;
use crate::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use channelshift_kpi::period::{local_date, PeriodKind};
use channelshift_reports::scorecard::{report_period, scorecard, Scorecard, REPORT_PERIODS};
use channelshift_store::Source;
use chrono::Utc;
use std::collections::HashMap;

/// `period` of the scorecard and the packs: month, quarter (default) or financial year.
pub(crate) fn period_kind(value: Option<&String>) -> Result<PeriodKind, ApiError> {
    report_period(value.map(String::as_str).unwrap_or("quarter"))
        .ok_or_else(|| ApiError::bad("period", REPORT_PERIODS))
}

pub async fn get_scorecard(
    State(state): State<AppState>,
    params: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<Scorecard>, ApiError> {
    let Query(params) =
        params.map_err(|rejection| ApiError::bad("query", rejection.body_text()))?;
    if let Some(unknown) = params
        .keys()
        .find(|name| !["council", "period", "date"].contains(&name.as_str()))
    {
        return Err(ApiError::bad(unknown, "unknown parameter"));
    }
    let council = request::council(params.get("council"))?;
    let kind = period_kind(params.get("period"))?;
    let date = match params.get("date") {
        Some(_) => request::date(params.get("date"), "date")?,
        None => local_date(Utc::now()),
    };
    Ok(Json(
        scorecard(
            &state.store,
            &state.policy,
            &council,
            kind,
            date,
            Source::Rollup,
        )
        .await?,
    ))
}
