//! `GET /api/v1/kpi/{kpi}`: one KPI for a council over a range of local
//! dates, per period. Parameters are parsed into domain types first; only
//! those reach the store, as bound values.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::Json;
use channelshift_contract::CouncilCode;
use channelshift_kpi::channel::{Channel, ChannelClass};
use channelshift_kpi::period::{Period, PeriodKind};
use channelshift_kpi::suppression::Published;
use channelshift_kpi::take_up::{digital_take_up, CompletedTransactions};
use chrono::{NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
pub struct KpiQuery {
    council: Option<String>,
    from: Option<String>,
    to: Option<String>,
    period: Option<String>,
}

/// How rows are grouped in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Grouping {
    Total,
    By(PeriodKind),
}

#[derive(Debug, Serialize)]
pub struct KpiResponse {
    kpi: &'static str,
    unit: &'static str,
    definition: &'static str,
    /// When this answer was computed; rows reflect everything ingested by then.
    as_of: String,
    rows: Vec<KpiRow>,
}

#[derive(Debug, Serialize)]
pub struct KpiRow {
    period_start: NaiveDate,
    period_end: NaiveDate,
    value: Option<f64>,
    numerator: Option<u64>,
    denominator: Option<u64>,
    n: Option<u64>,
    ci95_low: Option<f64>,
    ci95_high: Option<f64>,
    suppressed: bool,
}

const TAKE_UP_DEFINITION: &str = "Completed transactions (completed or ineligible) through digital self-service channels (web, app, kiosk) as a percentage of all completed transactions, by the local (Europe/London) day they occurred.";

pub async fn get_kpi(
    State(state): State<AppState>,
    Path(kpi): Path<String>,
    Query(query): Query<KpiQuery>,
) -> Result<Json<KpiResponse>, ApiError> {
    match kpi.as_str() {
        "digital-take-up" => digital_take_up_kpi(&state, &query).await.map(Json),
        other => Err(ApiError::NotFound(format!(
            "unknown KPI {other:?}; available: digital-take-up"
        ))),
    }
}

fn council(query: &KpiQuery) -> Result<CouncilCode, ApiError> {
    let value = query
        .council
        .as_deref()
        .ok_or_else(|| ApiError::bad("council", "required: the council's GSS code"))?;
    CouncilCode::parse(value).ok_or_else(|| ApiError::bad("council", CouncilCode::RULE))
}

fn date(value: Option<&str>, parameter: &str) -> Result<NaiveDate, ApiError> {
    let value = value.ok_or_else(|| ApiError::bad(parameter, "required: a date YYYY-MM-DD"))?;
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map_err(|_| ApiError::bad(parameter, "expected a date YYYY-MM-DD"))
}

fn grouping(value: Option<&str>) -> Result<Grouping, ApiError> {
    Ok(match value.unwrap_or("total") {
        "total" => Grouping::Total,
        "day" => Grouping::By(PeriodKind::Day),
        "week" => Grouping::By(PeriodKind::IsoWeek),
        "month" => Grouping::By(PeriodKind::Month),
        "quarter" => Grouping::By(PeriodKind::FinancialQuarter),
        "financial_year" => Grouping::By(PeriodKind::FinancialYear),
        _ => {
            return Err(ApiError::bad(
                "period",
                "one of day, week, month, quarter, financial_year, total",
            ))
        }
    })
}

async fn digital_take_up_kpi(state: &AppState, query: &KpiQuery) -> Result<KpiResponse, ApiError> {
    let council = council(query)?;
    let from = date(query.from.as_deref(), "from")?;
    let to = date(query.to.as_deref(), "to")?;
    if from > to {
        return Err(ApiError::bad("from", "must not be after `to`"));
    }
    let grouping = grouping(query.period.as_deref())?;
    let as_of = Utc::now();

    let counts = state
        .store
        .completed_by_channel(council.as_str(), from, to)
        .await?;
    // Bucket each day's counts into its period (clamped to the asked range).
    let mut buckets: BTreeMap<(NaiveDate, NaiveDate), Vec<CompletedTransactions>> = BTreeMap::new();
    let periods = match grouping {
        Grouping::Total => vec![(from, to)],
        Grouping::By(kind) => Period::covering(kind, from, to)
            .map_err(|error| ApiError::bad("from", error.to_string()))?
            .into_iter()
            .map(|period| (period.first_day().max(from), period.last_day().min(to)))
            .collect(),
    };
    for bounds in &periods {
        buckets.insert(*bounds, Vec::new());
    }
    for row in counts {
        let day = NaiveDate::parse_from_str(&row.local_day, "%Y-%m-%d")
            .map_err(|_| ApiError::Internal(format!("store returned day {:?}", row.local_day)))?;
        // Channels outside the contract (none are stored) cannot count as digital.
        let class = row
            .channel
            .parse::<Channel>()
            .map(|channel| state.channel_classes.class_of(channel))
            .unwrap_or(ChannelClass::Other);
        let bucket = periods
            .iter()
            .find(|(first, last)| (*first..=*last).contains(&day))
            .and_then(|bounds| buckets.get_mut(bounds));
        if let Some(bucket) = bucket {
            bucket.push(CompletedTransactions {
                class,
                assisted: row.assisted == 1,
                count: row.completed,
            });
        }
    }
    let rows = buckets
        .into_iter()
        .map(|((period_start, period_end), completed)| {
            let rate = digital_take_up(&completed, state.take_up_definition);
            match state.suppression.rate(rate) {
                Published::Shown(rate) => KpiRow {
                    period_start,
                    period_end,
                    value: rate.percent(),
                    numerator: Some(rate.numerator()),
                    denominator: Some(rate.denominator()),
                    n: Some(rate.denominator()),
                    ci95_low: rate.interval().map(|i| i.low),
                    ci95_high: rate.interval().map(|i| i.high),
                    suppressed: false,
                },
                Published::Suppressed => KpiRow {
                    period_start,
                    period_end,
                    value: None,
                    numerator: None,
                    denominator: None,
                    n: None,
                    ci95_low: None,
                    ci95_high: None,
                    suppressed: true,
                },
            }
        })
        .collect();
    Ok(KpiResponse {
        kpi: "digital-take-up",
        unit: "percent",
        definition: TAKE_UP_DEFINITION,
        as_of: as_of.to_rfc3339(),
        rows,
    })
}
