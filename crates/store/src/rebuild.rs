//! Recomputing the rollups from the raw tables (`channelshift-ingest
//! rebuild-rollups`), after a rollup's definition changed, a new rollup was
//! added (its view sees only rows inserted after it exists), or a repair.
//!
//! Readers never see a half-rebuilt month. Each rollup is rebuilt one local
//! (Europe/London) month at a time: the month is computed from raw rows into
//! `<rollup>_rebuild`, a table made `AS <rollup>`, by the very SELECT the
//! rollup's view runs ([`crate::ROLLUPS`]), then swapped in with `ALTER TABLE
//! <rollup> REPLACE PARTITION <yyyymm> FROM <rollup>_rebuild`, which swaps
//! the partition's parts at once, so a query sees the old month or the new
//! one. A month left in the rollup with no raw rows is removed with `DROP
//! PARTITION` (newer servers refuse `REPLACE PARTITION` from an empty source).
//!
//! Raw tables are partitioned by UTC month and rollups by local month: a
//! contact at 23:30 UTC on 31 July is on 1 August locally. A month is computed
//! from raw rows whose local day is in it, read from the UTC month widened by
//! a day on each side, which keeps partition pruning.
//!
//! Ingest may keep running. Its rows reach the rollup through the views, so a
//! row inserted while its month is being rebuilt could be lost (stored in raw
//! after the month was read, its view row replaced by the swap) or counted
//! twice (read with the month, its view row written after the swap). So each
//! month is checked after its swap: the INSERTs into the raw table that were
//! running when the month was first counted (seen in `system.processes`) must
//! have finished, and so must the merges of the rollup's month running at the
//! swap (on 18.16 a merge of replaced parts that ends after the swap adds its
//! part back, "Obsolete part added"); the raw rows of the month's UTC window
//! must not have changed, and the rollup's month must hold exactly the rows
//! computed. Otherwise the
//! month is computed again, after a short pause; after [`MONTH_ATTEMPTS`]
//! tries the rebuild stops with an error naming the month, which may then be
//! wrong until the rebuild is run again (when ingest is quieter).
//!
//! The check sees the INSERTs of the server it talks to: with inserts through
//! several servers (a cluster), stop ingest during a rebuild.
//!
//! Run one rebuild at a time: two would share the staging tables.
//!
//! A swapped-out month stays on disk, inactive, until ClickHouse removes it
//! (`old_parts_lifetime`, 8 minutes by default). On 18.16, and on current
//! releases until ClickHouse#107605 was fixed, a server restart before then
//! makes those parts active again, so the month counts twice: run the rebuild
//! again after such a restart. Dropped months (`DROP PARTITION`) do not come
//! back; that was checked on 18.16 with `kill -9` and a restart.

use crate::connection::{Store, StoreError};
use crate::migrations::{Rollup, ROLLUPS};
use chrono::{Datelike, NaiveDate, TimeDelta};
use clickhouse::Row;
use serde::Deserialize;
use std::fmt;
use std::time::{Duration, Instant};

/// How many times a month is computed before the rebuild gives up on it
/// because raw rows keep arriving in it.
pub const MONTH_ATTEMPTS: u32 = 5;

/// Pause before computing a month again, times the attempt number, so that a
/// burst of inserts can pass.
const RETRY_PAUSE_SECONDS: f64 = 0.2;

/// How often, and how long at most, to look for the end of the INSERTs that
/// were running when a month was counted.
const INSERT_POLL_SECONDS: f64 = 0.05;
const INSERT_WAIT_LIMIT: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "{rollup} {month} did not settle in {attempts} attempts (last: {last}); the month \
         may be wrong until it is rebuilt: run rebuild-rollups again, when ingest is quieter"
    )]
    MonthUnsettled {
        rollup: &'static str,
        month: Month,
        attempts: u32,
        /// What the last attempt saw.
        last: String,
    },
    #[error(
        "{rollup} {month}: INSERTs into {raw_table} running when the month was counted \
         were still running {waited:?} later; the month may be wrong until it is rebuilt"
    )]
    InsertsOutlasted {
        rollup: &'static str,
        month: Month,
        raw_table: &'static str,
        waited: Duration,
    },
    #[error("{table} has rows in month {yyyymm}, which is not a calendar month")]
    NotAMonth { table: &'static str, yyyymm: u32 },
    #[error(
        "{rollup}: its columns ({table}) are not, in order, those of its view's SELECT \
         ({select}); INSERT … SELECT matches columns by position"
    )]
    ColumnsDiffer {
        rollup: &'static str,
        table: String,
        select: String,
    },
}

impl From<clickhouse::error::Error> for RebuildError {
    fn from(error: clickhouse::error::Error) -> Self {
        Self::Store(StoreError::ClickHouse(error))
    }
}

/// A calendar month, the partition of a rollup (`toYYYYMM(day)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    first_day: NaiveDate,
}

impl Month {
    /// From ClickHouse's `toYYYYMM` value, e.g. `202507`.
    pub fn from_yyyymm(yyyymm: u32) -> Option<Self> {
        let year = i32::try_from(yyyymm / 100).ok()?;
        NaiveDate::from_ymd_opt(year, yyyymm % 100, 1).map(|first_day| Self { first_day })
    }

    /// The partition id, e.g. `202507`.
    pub fn yyyymm(self) -> u32 {
        // Years from toYYYYMM are 1970..=2106, so this cannot be negative.
        u32::try_from(self.first_day.year()).unwrap_or(0) * 100 + self.first_day.month()
    }

    pub fn first_day(self) -> NaiveDate {
        self.first_day
    }

    fn next(self) -> Self {
        let first_day = self
            .first_day
            .checked_add_months(chrono::Months::new(1))
            .unwrap_or(NaiveDate::MAX);
        Self { first_day }
    }

    /// The UTC instants, as `DateTime` seconds `[from, to)`, that can fall on
    /// a local day of this month: its UTC span widened by a day each side.
    fn raw_window(self) -> (u32, u32) {
        let seconds = |day: NaiveDate| {
            let at = day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
            u32::try_from(at.timestamp().max(0)).unwrap_or(u32::MAX)
        };
        (
            seconds(self.first_day - TimeDelta::days(1)),
            seconds(self.next().first_day + TimeDelta::days(1)),
        )
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.first_day.format("%Y-%m"))
    }
}

/// One month of one rollup, rebuilt and visible to readers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RebuildStep {
    pub rollup: &'static str,
    pub month: Month,
    /// Raw rows the month was computed from; 0 when the month was dropped.
    pub raw_rows: u64,
    /// 1, or more when raw rows arrived while the month was being computed.
    pub attempts: u32,
    /// This step's number, from 1, and the number of steps of the whole rebuild.
    pub index: usize,
    pub total: usize,
}

impl RebuildStep {
    pub fn dropped(&self) -> bool {
        self.raw_rows == 0
    }
}

/// What one rollup's rebuild did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RollupRebuilt {
    pub rollup: &'static str,
    pub months: usize,
    pub months_dropped: usize,
    pub raw_rows: u64,
}

/// What the whole rebuild did.
#[derive(Clone, Debug, Default)]
pub struct RebuildReport {
    pub rollups: Vec<RollupRebuilt>,
    /// Months computed more than once because raw rows arrived meanwhile.
    pub months_recomputed: usize,
    pub elapsed: Duration,
}

#[derive(Row, Deserialize)]
struct MonthRow {
    month: u32,
}

#[derive(Row, Deserialize)]
struct Count {
    n: u64,
}

#[derive(Row, Deserialize)]
struct QueryId {
    query_id: String,
}

impl Store {
    /// Recomputes every rollup from the raw tables, month by month (see the
    /// module documentation), calling `progress` after each month is visible.
    /// The tables must exist: run [`Store::migrate`] first.
    pub async fn rebuild_rollups(
        &self,
        mut progress: impl FnMut(&RebuildStep),
    ) -> Result<RebuildReport, RebuildError> {
        let started = Instant::now();
        let mut plan = Vec::with_capacity(ROLLUPS.len());
        for rollup in ROLLUPS {
            self.check_columns(rollup).await?;
            plan.push((rollup, self.months_to_rebuild(rollup).await?));
        }
        let total = plan.iter().map(|(_, months)| months.len()).sum();
        let mut report = RebuildReport::default();
        let mut index = 0;
        for (rollup, months) in plan {
            let mut rebuilt = RollupRebuilt {
                rollup: rollup.table,
                ..RollupRebuilt::default()
            };
            for month in months {
                index += 1;
                let (raw_rows, attempts) = self.rebuild_month(rollup, month).await?;
                let step = RebuildStep {
                    rollup: rollup.table,
                    month,
                    raw_rows,
                    attempts,
                    index,
                    total,
                };
                rebuilt.months += 1;
                rebuilt.months_dropped += usize::from(step.dropped());
                rebuilt.raw_rows += raw_rows;
                report.months_recomputed += usize::from(attempts > 1);
                progress(&step);
            }
            self.client
                .query(&format!("DROP TABLE IF EXISTS {}", self.staging(rollup)))
                .execute()
                .await?;
            if rollup.table.ends_with("_monthly") {
                self.record_coverage(rollup).await?;
            }
            if rollup.table == "journey_contacts" {
                self.drop_settled_journeys().await?;
            }
            report.rollups.push(rebuilt);
        }
        report.elapsed = started.elapsed();
        Ok(report)
    }

    /// Drops every stored settled day (journeys.rs): judged from the rows
    /// before the rebuild, which changes a rollup's rows but not always
    /// their number (all a stored day's basis would notice). They are
    /// judged again when next asked for, or by the next `settle-journeys`.
    async fn drop_settled_journeys(&self) -> Result<(), RebuildError> {
        self.client
            .query(&format!(
                "TRUNCATE TABLE {}",
                self.rollup("journey_settled")
            ))
            .execute()
            .await?;
        Ok(())
    }

    /// Records that `rollup` now holds every row from the first month
    /// retention left whole in its raw table (every month, if none was
    /// dropped): each of those months was just computed from raw rows.
    async fn record_coverage(&self, rollup: &Rollup) -> Result<(), RebuildError> {
        let from_day = match self.first_whole_month(rollup).await? {
            Some(yyyymm) => Month::from_yyyymm(yyyymm)
                .ok_or(RebuildError::NotAMonth {
                    table: rollup.source,
                    yyyymm,
                })?
                .first_day(),
            None => NaiveDate::from_ymd_opt(1970, 1, 2).unwrap_or_default(),
        };
        self.client
            .query(&format!(
                "INSERT INTO {} (rollup, from_day) VALUES (?, toDate(?))",
                self.rollup("rollup_coverage")
            ))
            .bind(rollup.table)
            .bind(from_day.to_string())
            .execute()
            .await?;
        Ok(())
    }

    /// The staging table is filled by position, so the rollup's columns must
    /// be its view's SELECT's, in the same order.
    async fn check_columns(&self, rollup: &Rollup) -> Result<(), RebuildError> {
        let header = |sql: String| async move {
            let bytes = self
                .client
                .query(&sql)
                .fetch_bytes("TSVWithNames")?
                .collect()
                .await?;
            Ok::<_, RebuildError>(
                String::from_utf8_lossy(&bytes)
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .replace('\t', ", "),
            )
        };
        let table = header(format!(
            "SELECT * FROM {} LIMIT 0",
            self.rollup(rollup.table)
        ))
        .await?;
        let select = header(format!(
            "{} WHERE 0{} LIMIT 0",
            rollup.select, rollup.group_by
        ))
        .await?;
        if table == select {
            Ok(())
        } else {
            Err(RebuildError::ColumnsDiffer {
                rollup: rollup.table,
                table,
                select,
            })
        }
    }

    /// The local months with raw rows, and those the rollup holds, in order;
    /// not those that may hold rows retention dropped from the raw table
    /// (see `retention.rs`): their rollup is all that is left of them.
    async fn months_to_rebuild(&self, rollup: &Rollup) -> Result<Vec<Month>, RebuildError> {
        let first = self.first_whole_month(rollup).await?;
        let in_raw = format!(
            "SELECT DISTINCT toYYYYMM({}) AS month FROM {}",
            rollup.local_day, rollup.source
        );
        let in_rollup = format!(
            "SELECT DISTINCT toYYYYMM(day) AS month FROM {}",
            self.rollup(rollup.table)
        );
        let mut months = Vec::new();
        for (table, sql) in [(rollup.source, in_raw), (rollup.table, in_rollup)] {
            for row in self.client.query(&sql).fetch_all::<MonthRow>().await? {
                months.push(
                    Month::from_yyyymm(row.month).ok_or(RebuildError::NotAMonth {
                        table,
                        yyyymm: row.month,
                    })?,
                );
            }
        }
        months.sort_unstable();
        months.dedup();
        if let Some(first) = first {
            months.retain(|month| month.yyyymm() >= first);
        }
        Ok(months)
    }

    /// Computes `month` into the staging table and swaps it in, and does so
    /// again if the month changed meanwhile. Returns the raw rows it was
    /// computed from and the attempts it took.
    async fn rebuild_month(
        &self,
        rollup: &'static Rollup,
        month: Month,
    ) -> Result<(u64, u32), RebuildError> {
        let staging = self.staging(rollup);
        let (from, to) = month.raw_window();
        let raw_in_window = format!(
            "SELECT count() AS n FROM {source} WHERE {time} >= toDateTime(?) AND {time} < toDateTime(?)",
            source = rollup.source,
            time = rollup.source_time,
        );
        let compute = format!(
            "INSERT INTO {staging}{select}
            WHERE {time} >= toDateTime(?) AND {time} < toDateTime(?) AND toYYYYMM({day}) = ?{group_by}",
            select = rollup.select,
            time = rollup.source_time,
            day = rollup.local_day,
            group_by = rollup.group_by,
        );
        let computed_rows = format!(
            "SELECT toUInt64(sum({rows})) AS n FROM {staging}",
            rows = rollup.rows_column
        );
        let published_rows = format!(
            "SELECT toUInt64(sum({rows})) AS n FROM {table} WHERE toYYYYMM(day) = ?",
            rows = rollup.rows_column,
            table = self.rollup(rollup.table),
        );
        let count = |sql: &str, bind: &[u32]| {
            let mut query = self.client.query(sql);
            for value in bind {
                query = query.bind(*value);
            }
            async move { Ok::<_, RebuildError>(query.fetch_one::<Count>().await?.n) }
        };
        let mut last = String::new();
        for attempt in 1..=MONTH_ATTEMPTS {
            if attempt > 1 {
                self.pause(RETRY_PAUSE_SECONDS * f64::from(attempt - 1))
                    .await?;
            }
            let raw_before = count(&raw_in_window, &[from, to]).await?;
            // Taken after the count: an INSERT whose raw rows were counted
            // but whose view rows are not yet written is among these.
            let inserting = self.inserts_running(rollup.source).await?;
            self.client
                .query(&format!("DROP TABLE IF EXISTS {staging}"))
                .execute()
                .await?;
            self.client
                .query(&format!(
                    "CREATE TABLE {staging} AS {}",
                    self.rollup(rollup.table)
                ))
                .execute()
                .await?;
            self.client
                .query(&compute)
                .bind(from)
                .bind(to)
                .bind(month.yyyymm())
                .execute()
                .await?;
            let computed = count(&computed_rows, &[]).await?;
            let swap = if computed == 0 {
                format!("ALTER TABLE {} DROP PARTITION ?", self.rollup(rollup.table))
            } else {
                format!(
                    "ALTER TABLE {} REPLACE PARTITION ? FROM {staging}",
                    self.rollup(rollup.table)
                )
            };
            self.client
                .query(&swap)
                .bind(month.yyyymm())
                .execute()
                .await?;
            // Their view rows, if written after the swap, show in `published`.
            self.await_queries(&inserting, rollup, month).await?;
            // A merge of the month's old parts that was running at the swap
            // can still commit its result on 18.16 ("Obsolete part added"),
            // which brings the old rows back beside the new: it shows in
            // `published` once those merges are over.
            let merges_over = self.await_merges(rollup, month).await?;
            let published = count(&published_rows, &[month.yyyymm()]).await?;
            let raw_after = count(&raw_in_window, &[from, to]).await?;
            last = if !merges_over {
                "a merge of the month's replaced parts was still running".to_string()
            } else if raw_before != raw_after {
                format!(
                    "raw rows arrived meanwhile: {raw_before} then {raw_after} in its UTC window"
                )
            } else if published != computed {
                // A view's rows of an INSERT whose raw rows were already counted.
                format!("{computed} rows computed, but {published} in the rollup after the swap")
            } else {
                return Ok((computed, attempt));
            };
            tracing::warn!(
                rollup = rollup.table,
                %month,
                attempt,
                %last,
                "the month changed while it was rebuilt; computing it again"
            );
        }
        Err(RebuildError::MonthUnsettled {
            rollup: rollup.table,
            month,
            attempts: MONTH_ATTEMPTS,
            last,
        })
    }

    /// Ids of the INSERTs into `source` running on the server now.
    async fn inserts_running(&self, source: &'static str) -> Result<Vec<String>, RebuildError> {
        // `INSERT INTO [db.]source …`, as written by this crate or by hand.
        let pattern = format!(r"(?i)^\s*INSERT\s+INTO\s+(\S+\.)?`?{source}`?[\s(]");
        let running = self
            .client
            .query("SELECT query_id FROM system.processes WHERE match(query, ?)")
            .bind(pattern)
            .fetch_all::<QueryId>()
            .await?;
        Ok(running.into_iter().map(|query| query.query_id).collect())
    }

    /// Returns once none of `query_ids` is running.
    async fn await_queries(
        &self,
        query_ids: &[String],
        rollup: &'static Rollup,
        month: Month,
    ) -> Result<(), RebuildError> {
        let started = Instant::now();
        while !query_ids.is_empty() {
            let running = self
                .client
                .query("SELECT count() AS n FROM system.processes WHERE has(?, query_id)")
                .bind(query_ids)
                .fetch_one::<Count>()
                .await?
                .n;
            if running == 0 {
                break;
            }
            if started.elapsed() > INSERT_WAIT_LIMIT {
                return Err(RebuildError::InsertsOutlasted {
                    rollup: rollup.table,
                    month,
                    raw_table: rollup.source,
                    waited: started.elapsed(),
                });
            }
            self.pause(INSERT_POLL_SECONDS).await?;
        }
        Ok(())
    }

    /// Returns once the merges of `month` in `rollup`'s table that are running
    /// now have finished (merges that start later see only current parts);
    /// false if one still runs after [`INSERT_WAIT_LIMIT`].
    async fn await_merges(
        &self,
        rollup: &'static Rollup,
        month: Month,
    ) -> Result<bool, RebuildError> {
        #[derive(Row, Deserialize)]
        struct Merge {
            result_part_name: String,
        }
        let running = self
            .client
            .query(
                "SELECT result_part_name FROM system.merges \
                 WHERE database = ? AND table = ? AND partition_id = ?",
            )
            .bind(self.rollups_database())
            .bind(rollup.table)
            .bind(month.yyyymm().to_string())
            .fetch_all::<Merge>()
            .await?;
        let parts: Vec<String> = running
            .into_iter()
            .map(|merge| merge.result_part_name)
            .collect();
        let started = Instant::now();
        while !parts.is_empty() {
            let still = self
                .client
                .query(
                    "SELECT count() AS n FROM system.merges \
                     WHERE database = ? AND table = ? AND has(?, result_part_name)",
                )
                .bind(self.rollups_database())
                .bind(rollup.table)
                .bind(&parts)
                .fetch_one::<Count>()
                .await?
                .n;
            if still == 0 {
                break;
            }
            if started.elapsed() > INSERT_WAIT_LIMIT {
                return Ok(false);
            }
            self.pause(INSERT_POLL_SECONDS).await?;
        }
        Ok(true)
    }

    /// Waits between checks (at most 3 s at a time).
    async fn pause(&self, seconds: f64) -> Result<(), RebuildError> {
        tokio::time::sleep(std::time::Duration::from_secs_f64(seconds.clamp(0.0, 3.0))).await;
        Ok(())
    }
}

impl Store {
    /// The table `rebuild-rollups` computes a month of `rollup` into, beside it.
    fn staging(&self, rollup: &Rollup) -> String {
        self.rollup(&format!("{}_rebuild", rollup.table))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn month(yyyymm: u32) -> Month {
        Month::from_yyyymm(yyyymm).expect("a valid month")
    }

    #[test]
    fn months_round_trip_and_order() {
        assert_eq!(month(202507).yyyymm(), 202507);
        assert_eq!(month(202507).to_string(), "2025-07");
        assert_eq!(month(202512).next(), month(202601));
        assert!(month(202412) < month(202501));
        assert_eq!(Month::from_yyyymm(202513), None);
        assert_eq!(Month::from_yyyymm(0), None);
    }

    #[test]
    fn a_months_raw_window_covers_its_local_days_and_a_day_either_side() {
        // July 2025: 30 June 00:00 UTC to 2 August 00:00 UTC.
        let (from, to) = month(202507).raw_window();
        assert_eq!(from, 1_751_241_600);
        assert_eq!(to, 1_754_092_800);
        // 23:30 UTC on 31 July (1 August in London) is inside August's window.
        let (from, to) = month(202508).raw_window();
        let late = 1_754_004_600;
        assert!(from <= late && late < to);
        // No instant before 1970.
        assert_eq!(month(197001).raw_window().0, 0);
    }
}
