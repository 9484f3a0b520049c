//! Year-end forecasts of the scorecard's headline KPIs: each KPI's monthly
//! history (as the scorecard counts a month), forecast to the financial
//! year's last month with `channelshift_kpi::forecast`, and what the
//! scorecard and packs say of them. `channelshift-api forecast` makes and
//! stores them nightly; the scorecard, packs and dashboard read them.

use crate::compute::baseline_contacts;
use crate::error::ReportError;
use crate::policy::Policy;
use crate::request::{Grouping, KpiRequest};
use crate::rows::{self, Report};
use crate::scorecard::picked;
use channelshift_contract::CouncilCode;
use channelshift_kpi::catalogue::{Headline as Pick, Kpi, Unit};
use channelshift_kpi::forecast::{year_end, Accrual, Outlook, Projection};
use channelshift_kpi::period::{Period, PeriodKind};
use channelshift_store::{CellFilter, ForecastRecord, Keys, Source, Store, StoredForecasts};
use chrono::{Datelike, Months, NaiveDate};
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// The headline KPIs forecast to the year's end.
pub const FORECAST_KPIS: [Kpi; 5] = [
    Kpi::DigitalTakeUp,
    Kpi::CompletionRate,
    Kpi::Satisfaction,
    Kpi::CostPerTransaction,
    Kpi::EfficiencySavings,
];

/// Months of history read at most (five years).
pub const HISTORY_MONTHS: u32 = 60;

/// How a KPI accrues: savings are a running total through the year.
pub fn accrual(kpi: Kpi) -> Accrual {
    match kpi {
        Kpi::EfficiencySavings => Accrual::RunningTotal,
        _ => Accrual::Level,
    }
}

/// The first day of `day`'s month.
pub fn month_of(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}

/// The first day of the last whole month on or before `day`.
pub fn last_whole_month(day: NaiveDate) -> NaiveDate {
    match day.succ_opt() {
        Some(next) if next.month() != day.month() => month_of(day),
        _ => month_of(day) - Months::new(1),
    }
}

/// The financial year a forecast from history to `history_to` (a month's
/// first day) looks to: the one holding the month after, and how many
/// months ahead its last month is (1 to 12).
pub fn year_ahead(history_to: NaiveDate) -> Result<(Period, usize), ReportError> {
    let next = history_to + Months::new(1);
    let year = Period::containing(PeriodKind::FinancialYear, next)
        .map_err(|error| ReportError::bad("date", error.to_string()))?;
    let last = month_of(year.last_day());
    let months =
        (last.year() - history_to.year()) * 12 + last.month() as i32 - history_to.month() as i32;
    Ok((year, usize::try_from(months).unwrap_or(0)))
}

/// Each forecast KPI's value in each month from `from` to `to` (months'
/// first days), as the scorecard would give that month alone: `None` where
/// withheld or without data.
async fn monthly_history(
    store: &Store,
    policy: &Policy,
    council: &CouncilCode,
    months: &[NaiveDate],
    source: Source,
) -> Result<BTreeMap<Kpi, Vec<Option<f64>>>, ReportError> {
    let (Some(&from), Some(&last)) = (months.first(), months.last()) else {
        return Ok(BTreeMap::new());
    };
    let bad =
        |error: channelshift_kpi::period::PeriodError| ReportError::bad("date", error.to_string());
    let periods = Period::covering(PeriodKind::Month, from, last).map_err(bad)?;
    let to = periods.last().map_or(last, Period::last_day);
    let filter = CellFilter::new(council.clone(), from, to);
    let bucket = Grouping::By(PeriodKind::Month).bucket();
    let request = KpiRequest {
        filter: filter.clone(),
        grouping: Grouping::By(PeriodKind::Month),
        group_by: Vec::new(),
        periods: periods
            .iter()
            .map(|month| (month.first_day(), month.last_day()))
            .collect(),
    };
    let by_service = Keys {
        service: true,
        ..Keys::default()
    };
    let service_cells = async {
        match policy.baseline {
            Some(_) => store
                .contact_cells(&filter, bucket, by_service, source)
                .await
                .map(Some),
            None => Ok(None),
        }
    };
    let (contacts, responses, by_service) = tokio::try_join!(
        store.contact_cells(&filter, bucket, Keys::default(), source),
        store.satisfaction_cells(&filter, bucket, Keys::default(), source),
        service_cells,
    )?;
    let savings = match by_service {
        Some(cells) => {
            let baseline = baseline_contacts(store, policy, &filter, source).await?;
            rows::efficiency_savings_rows(&request, policy, &cells, &baseline, false)
        }
        None => Report::default(),
    };
    let mut savings = Some(savings);
    // A month without a contact has no figure (savings would read £0).
    let with_contacts: std::collections::BTreeSet<NaiveDate> = contacts
        .iter()
        .filter(|cell| cell.all_contacts > 0)
        .filter_map(|cell| cell.period)
        .collect();
    let mut history = BTreeMap::new();
    for kpi in FORECAST_KPIS {
        let report = match kpi {
            Kpi::DigitalTakeUp => rows::digital_take_up_rows(&request, policy, &contacts),
            Kpi::CompletionRate => rows::completion_rate_rows(&request, policy, &contacts),
            Kpi::Satisfaction => rows::satisfaction_rows(&request, policy, &responses),
            Kpi::CostPerTransaction => {
                rows::cost_per_transaction_rows(&request, policy, &contacts, false)
            }
            _ => savings.take().unwrap_or_default(),
        };
        let pick = policy.headline(kpi).unwrap_or(Pick::First);
        let values = months
            .iter()
            .map(|&month| {
                if !with_contacts.contains(&month) {
                    return None;
                }
                report
                    .rows
                    .iter()
                    .find(|row| row.period_start == month && picked(row, pick))
                    .filter(|row| !row.suppressed)
                    .and_then(|row| row.value)
            })
            .collect();
        history.insert(kpi, values);
    }
    Ok(history)
}

/// The values of the months with one, back from the last month without a
/// gap: the history a model may be fitted to.
fn unbroken_tail(values: &[Option<f64>]) -> Vec<f64> {
    let mut tail: Vec<f64> = values.iter().rev().map_while(|value| *value).collect();
    tail.reverse();
    tail
}

/// `council`'s forecasts of each [`FORECAST_KPIS`] from its history up to
/// the month starting `history_to`, made at `made_at` (Unix seconds).
pub async fn make(
    store: &Store,
    policy: &Policy,
    council: &CouncilCode,
    history_to: NaiveDate,
    made_at: i64,
) -> Result<StoredForecasts, ReportError> {
    let history_to = month_of(history_to);
    let (year, horizon) = year_ahead(history_to)?;
    let months: Vec<NaiveDate> = (0..HISTORY_MONTHS)
        .rev()
        .map(|back| history_to - Months::new(back))
        .collect();
    let history = monthly_history(store, policy, council, &months, Source::Rollup).await?;
    let year_last_month = month_of(year.last_day());
    let mut records = Vec::new();
    for kpi in FORECAST_KPIS {
        let values = history.get(&kpi).map(Vec::as_slice).unwrap_or_default();
        let tail = unbroken_tail(values);
        let accrual = accrual(kpi);
        // Savings so far this year: the history's months inside the year.
        let so_far: f64 = months
            .iter()
            .zip(values)
            .filter(|(month, _)| **month >= year.first_day())
            .filter_map(|(_, value)| *value)
            .sum();
        let unit = kpi.unit_of(policy.headline(kpi).and_then(Pick::measure));
        let none = |history_months: usize, note: String| ForecastRecord {
            kpi: kpi.to_string(),
            month: year_last_month,
            value: None,
            low80: None,
            high80: None,
            low95: None,
            high95: None,
            method: String::new(),
            backtest_mae: None,
            backtests: 0,
            history_months: u16::try_from(history_months).unwrap_or(u16::MAX),
            note,
        };
        match year_end(&tail, horizon, accrual, so_far) {
            Ok(Outlook::Forecast(forecast)) => {
                for (step, projection) in forecast.path.iter().enumerate() {
                    let projection = bounded(*projection, unit);
                    records.push(ForecastRecord {
                        kpi: kpi.to_string(),
                        month: history_to + Months::new(step as u32 + 1),
                        value: Some(projection.value),
                        low80: Some(projection.low80),
                        high80: Some(projection.high80),
                        low95: Some(projection.low95),
                        high95: Some(projection.high95),
                        method: forecast.method.clone(),
                        backtest_mae: Some(forecast.backtest_mae),
                        backtests: u16::try_from(forecast.backtests).unwrap_or(u16::MAX),
                        history_months: u16::try_from(forecast.history_months)
                            .unwrap_or(u16::MAX),
                        note: String::new(),
                    });
                }
            }
            Ok(Outlook::TooLittleHistory { months, needed }) => records.push(none(
                months,
                format!(
                    "too little history to forecast: {months} unbroken months to {}, {needed} needed",
                    history_to.format("%B %Y")
                ),
            )),
            Err(error) => records.push(none(
                tail.len(),
                format!("no model could be fitted to the history: {error}"),
            )),
        }
    }
    Ok(StoredForecasts {
        year_end: year.last_day(),
        history_to,
        made_at,
        records,
    })
}

/// A percentage kept within 0–100 and money or time at 0 or more.
fn bounded(projection: Projection, unit: Unit) -> Projection {
    match unit {
        Unit::Percent => projection.clamped(0.0, 100.0),
        Unit::Points => projection,
        _ => projection.clamped(0.0, f64::MAX),
    }
}

/// One projected month of a KPI.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct ProjectedMonth {
    /// The month's first day.
    pub month: NaiveDate,
    pub value: f64,
    pub low80: f64,
    pub high80: f64,
    pub low95: f64,
    pub high95: f64,
}

/// A KPI's year-end forecast as the scorecard and packs give it.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct YearEndForecast {
    /// The financial year's last day.
    pub year_end: NaiveDate,
    /// The first day of the history's last month.
    pub history_to: NaiveDate,
    /// When it was made (RFC 3339, UTC).
    pub made_at: String,
    /// The year-end figure: the last month's value, or for savings the
    /// year's total.
    pub value: f64,
    pub low80: f64,
    pub high80: f64,
    pub low95: f64,
    pub high95: f64,
    /// The model, in words.
    pub method: String,
    /// The mean absolute error of the same forecast made from each earlier
    /// month whose outcome is known, in the KPI's unit.
    pub backtest_mae: f64,
    /// How many earlier months that error is over.
    pub backtests: u16,
    pub history_months: u16,
    /// Each month from the history's end to the year's end.
    pub path: Vec<ProjectedMonth>,
}

/// What the stored forecasts say of `kpi`: its forecast, or why it has none.
pub fn of_kpi(stored: &StoredForecasts, kpi: Kpi) -> Result<YearEndForecast, String> {
    let name = kpi.to_string();
    let records: Vec<&ForecastRecord> = stored
        .records
        .iter()
        .filter(|record| record.kpi == name)
        .collect();
    if let Some(note) = records.iter().find(|record| !record.note.is_empty()) {
        return Err(note.note.clone());
    }
    let path: Vec<ProjectedMonth> = records
        .iter()
        .filter_map(|record| {
            Some(ProjectedMonth {
                month: record.month,
                value: record.value?,
                low80: record.low80?,
                high80: record.high80?,
                low95: record.low95?,
                high95: record.high95?,
            })
        })
        .collect();
    let (Some(first), Some(end)) = (records.first(), path.last()) else {
        return Err(format!("no forecast of {name} was stored"));
    };
    Ok(YearEndForecast {
        year_end: stored.year_end,
        history_to: stored.history_to,
        made_at: chrono::DateTime::from_timestamp(stored.made_at, 0)
            .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default(),
        value: end.value,
        low80: end.low80,
        high80: end.high80,
        low95: end.low95,
        high95: end.high95,
        method: first.method.clone(),
        backtest_mae: first.backtest_mae.unwrap_or(f64::NAN),
        backtests: first.backtests,
        history_months: first.history_months,
        path,
    })
}

/// The stored forecasts a report of `period` may show: for the financial
/// year holding the period, from history no later than the last whole
/// month on or before the period's end or `covered_to` (the as-of day),
/// made by `made_by` (Unix seconds). `None` once that year's last month is
/// in the history, or when none were stored.
pub async fn for_period(
    store: &Store,
    council: &CouncilCode,
    period: &Period,
    covered_to: NaiveDate,
    made_by: i64,
) -> Result<Option<StoredForecasts>, ReportError> {
    let year = Period::containing(PeriodKind::FinancialYear, period.first_day())
        .map_err(|error| ReportError::bad("date", error.to_string()))?;
    let history_to = last_whole_month(period.last_day().min(covered_to));
    if history_to >= month_of(year.last_day()) {
        return Ok(None);
    }
    Ok(store
        .forecasts(council, year.last_day(), history_to, made_by)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("a date")
    }

    #[test]
    fn a_history_looks_to_the_year_after_its_last_month() {
        let (year, months) = year_ahead(day(2026, 9, 1)).expect("a year");
        assert_eq!((year.last_day(), months), (day(2027, 3, 31), 6));
        // A history to March looks a whole year ahead.
        let (year, months) = year_ahead(day(2026, 3, 1)).expect("a year");
        assert_eq!((year.last_day(), months), (day(2027, 3, 31), 12));
        let (year, months) = year_ahead(day(2026, 2, 1)).expect("a year");
        assert_eq!((year.last_day(), months), (day(2026, 3, 31), 1));
    }

    #[test]
    fn the_last_whole_month_ends_on_or_before_the_day() {
        assert_eq!(last_whole_month(day(2026, 9, 30)), day(2026, 9, 1));
        assert_eq!(last_whole_month(day(2026, 9, 29)), day(2026, 8, 1));
        assert_eq!(last_whole_month(day(2026, 1, 15)), day(2025, 12, 1));
    }

    #[test]
    fn a_gap_ends_the_history_a_model_is_fitted_to() {
        let values = [Some(1.0), None, Some(2.0), Some(3.0)];
        assert_eq!(unbroken_tail(&values), vec![2.0, 3.0]);
        assert!(unbroken_tail(&[Some(1.0), None]).is_empty());
    }
}
