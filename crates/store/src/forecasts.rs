//! Year-end forecasts, made by `channelshift-api forecast` (nightly, as a
//! user that may write) and read by the scorecard, the packs and the
//! managers' dashboard (`forecast`, migration 15). Each run of a council's
//! forecasts is numbered (`run`); readers take the newest run made from the
//! latest history they may use.

use crate::connection::{Store, StoreError};
use crate::journeys::{date, days_since_epoch as days};
use channelshift_contract::CouncilCode;
use chrono::NaiveDate;
use clickhouse::Row;
use serde::{Deserialize, Serialize};

/// One KPI's forecast for one month of a run: a month projected, or (with
/// `value` `None` and a `note`) why the KPI has no forecast.
#[derive(Clone, Debug, PartialEq)]
pub struct ForecastRecord {
    /// The KPI's name, `digital_take_up`.
    pub kpi: String,
    /// The first day of the month projected (the year's last month when the
    /// KPI has no forecast).
    pub month: NaiveDate,
    pub value: Option<f64>,
    pub low80: Option<f64>,
    pub high80: Option<f64>,
    pub low95: Option<f64>,
    pub high95: Option<f64>,
    /// The model, in words.
    pub method: String,
    pub backtest_mae: Option<f64>,
    pub backtests: u16,
    pub history_months: u16,
    /// Why there is no forecast, in words; empty when there is one.
    pub note: String,
}

/// A council's forecasts for one financial year from one history.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredForecasts {
    /// The financial year's last day.
    pub year_end: NaiveDate,
    /// The first day of the history's last month.
    pub history_to: NaiveDate,
    /// When they were made (Unix seconds).
    pub made_at: i64,
    pub records: Vec<ForecastRecord>,
}

#[derive(Row, Serialize, Deserialize)]
struct ForecastRow {
    council: String,
    year_end: u16,
    history_to: u16,
    run: u64,
    made_at: u32,
    kpi: String,
    month: u16,
    value: Option<f64>,
    low80: Option<f64>,
    high80: Option<f64>,
    low95: Option<f64>,
    high95: Option<f64>,
    method: String,
    backtest_mae: Option<f64>,
    backtests: u16,
    history_months: u16,
    note: String,
}

#[derive(Row, Deserialize)]
struct Latest {
    history_to: u16,
    run: u64,
}

impl Store {
    /// Stores a run of `council`'s forecasts; returns the run's number.
    pub async fn store_forecasts(
        &self,
        council: &CouncilCode,
        forecasts: &StoredForecasts,
    ) -> Result<u64, StoreError> {
        let run = self.next_number("forecast", "run").await?;
        let mut insert = self
            .rollups_client()
            .insert::<ForecastRow>("forecast")
            .await?;
        for record in &forecasts.records {
            insert
                .write(&ForecastRow {
                    council: council.to_string(),
                    year_end: days(forecasts.year_end),
                    history_to: days(forecasts.history_to),
                    run,
                    made_at: u32::try_from(forecasts.made_at).unwrap_or(0),
                    kpi: record.kpi.clone(),
                    month: days(record.month),
                    value: record.value,
                    low80: record.low80,
                    high80: record.high80,
                    low95: record.low95,
                    high95: record.high95,
                    method: record.method.clone(),
                    backtest_mae: record.backtest_mae,
                    backtests: record.backtests,
                    history_months: record.history_months,
                    note: record.note.clone(),
                })
                .await?;
        }
        insert.end().await?;
        Ok(run)
    }

    /// `council`'s forecasts for the year ending `year_end`, from the latest
    /// history whose last month starts on or before `history_to`, as the
    /// newest run made by `made_by` (Unix seconds) left them.
    pub async fn forecasts(
        &self,
        council: &CouncilCode,
        year_end: NaiveDate,
        history_to: NaiveDate,
        made_by: i64,
    ) -> Result<Option<StoredForecasts>, StoreError> {
        let table = self.rollup("forecast");
        let latest = self
            .query(&format!(
                "SELECT history_to, max(run) AS run FROM {table}
                WHERE council = ? AND year_end = toDate(?) AND history_to <= toDate(?)
                    AND made_at <= toDateTime(?)
                GROUP BY history_to ORDER BY history_to DESC LIMIT 1"
            ))
            .bind(council.as_str())
            .bind(year_end.to_string())
            .bind(history_to.to_string())
            .bind(made_by.clamp(0, i64::from(u32::MAX)))
            .fetch_optional::<Latest>()
            .await?;
        let Some(latest) = latest else {
            return Ok(None);
        };
        let rows = self
            .query(&format!(
                "SELECT ?fields FROM {table}
                WHERE council = ? AND year_end = toDate(?) AND history_to = toDate(?) AND run = ?
                ORDER BY kpi, month"
            ))
            .bind(council.as_str())
            .bind(year_end.to_string())
            .bind(date(latest.history_to).to_string())
            .bind(latest.run)
            .fetch_all::<ForecastRow>()
            .await?;
        let made_at = rows.first().map_or(0, |row| i64::from(row.made_at));
        Ok(Some(StoredForecasts {
            year_end,
            history_to: date(latest.history_to),
            made_at,
            records: rows
                .into_iter()
                .map(|row| ForecastRecord {
                    kpi: row.kpi,
                    month: date(row.month),
                    value: row.value,
                    low80: row.low80,
                    high80: row.high80,
                    low95: row.low95,
                    high95: row.high95,
                    method: row.method,
                    backtest_mae: row.backtest_mae,
                    backtests: row.backtests,
                    history_months: row.history_months,
                    note: row.note,
                })
                .collect(),
        }))
    }
}
