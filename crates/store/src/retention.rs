//! Retention of the raw tables (`channelshift-ingest purge-raw`): whole UTC
//! months of raw rows older than the retention are dropped (`ALTER TABLE …
//! DROP PARTITION`, on every server version; no TTL, whose gradual deletes
//! nothing could account for). The rollups and the id index keep them: the
//! published figures do not change, and an id whose raw row is gone is still
//! recognised as stored.
//!
//! Before a month is dropped, `raw_retention` records it. The rollup rebuild
//! then leaves alone every local month that may hold rows of a dropped UTC
//! month (up to the month after the last one dropped: a contact at 23:30 UTC
//! on the last day of a month is on the first of the next, locally), and the
//! reconciliation compares raw rows with the rollups only after those months.

use crate::audit::Record;
use crate::connection::{Store, StoreError};
use crate::migrations::Rollup;
use clickhouse::Row;
use serde::Deserialize;

/// The month after `yyyymm` (`202512` → `202601`).
pub fn next_month(yyyymm: u32) -> u32 {
    if yyyymm % 100 >= 12 {
        (yyyymm / 100 + 1) * 100 + 1
    } else {
        yyyymm + 1
    }
}

#[derive(Row, Deserialize)]
struct Partition {
    partition: String,
}

#[derive(Row, Deserialize)]
struct Through {
    through: u32,
}

#[derive(Row, Deserialize)]
struct Count {
    n: u64,
}

impl Store {
    /// The UTC months (`yyyymm`) `record`'s raw table holds, in order.
    pub async fn raw_months(&self, record: Record) -> Result<Vec<u32>, StoreError> {
        let rows = self
            .client
            .query(
                "SELECT DISTINCT partition FROM system.parts \
                 WHERE database = currentDatabase() AND table = ? AND active",
            )
            .bind(record.table())
            .fetch_all::<Partition>()
            .await?;
        let mut months = rows
            .into_iter()
            .map(|row| {
                row.partition
                    .parse::<u32>()
                    .map_err(|_| StoreError::Unexpected {
                        column: format!("system.parts.partition of {}", record.table()),
                        value: row.partition,
                    })
            })
            .collect::<Result<Vec<u32>, _>>()?;
        months.sort_unstable();
        Ok(months)
    }

    /// The last UTC month of `raw_table` dropped by retention, if any.
    pub async fn purged_through(&self, raw_table: &str) -> Result<Option<u32>, StoreError> {
        let through = self
            .client
            .query("SELECT max(through) AS through FROM raw_retention WHERE raw_table = ?")
            .bind(raw_table)
            .fetch_one::<Through>()
            .await?
            .through;
        Ok((through > 0).then_some(through))
    }

    /// Records `yyyymm` as dropped from `record`'s raw table, then drops it.
    /// Recorded first: a rebuild that starts in between leaves the month alone.
    pub async fn purge_raw_month(&self, record: Record, yyyymm: u32) -> Result<(), StoreError> {
        self.client
            .query("INSERT INTO raw_retention (raw_table, through, purged_at) SELECT ?, ?, now()")
            .bind(record.table())
            .bind(yyyymm)
            .execute()
            .await?;
        self.client
            .query(&format!(
                "ALTER TABLE {} DROP PARTITION ID ?",
                record.table()
            ))
            .bind(yyyymm.to_string())
            .execute()
            .await?;
        Ok(())
    }

    /// The first local month of `rollup` that retention has not touched: the
    /// rebuild and the reconciliation consider only months from it on.
    pub async fn first_whole_month(&self, rollup: &Rollup) -> Result<Option<u32>, StoreError> {
        Ok(self
            .purged_through(rollup.source)
            .await?
            .map(|through| next_month(next_month(through))))
    }

    /// Raw rows and the daily rollup's total from local month `from` on
    /// (everything when `None`): equal when every insert reached the rollup.
    pub async fn retained_totals(
        &self,
        record: Record,
        from: Option<u32>,
    ) -> Result<(u64, u64), StoreError> {
        let Some(from) = from else {
            return Ok((
                self.raw_rows(record).await?,
                self.rollup_total(record).await?,
            ));
        };
        let raw_day = format!("toDate({}, 'Europe/London')", record.timestamp_column());
        let (rollup, counted) = record.rollup();
        let rollup = self.rollup(rollup);
        let raw = self
            .client
            .query(&format!(
                "SELECT count() AS n FROM {} WHERE toYYYYMM({raw_day}) >= ?",
                record.table()
            ))
            .bind(from)
            .fetch_one::<Count>()
            .await?
            .n;
        let total = self
            .client
            .query(&format!(
                "SELECT toUInt64(sum({counted})) AS n FROM {rollup} WHERE toYYYYMM(day) >= ?"
            ))
            .bind(from)
            .fetch_one::<Count>()
            .await?
            .n;
        Ok((raw, total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_month_after_turns_the_year() {
        assert_eq!(next_month(202511), 202512);
        assert_eq!(next_month(202512), 202601);
    }
}
