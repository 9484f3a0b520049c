//! `channelshift-ingest purge-raw`: drops the raw rows older than
//! `retention.raw_months` whole UTC months, for a council's retention
//! schedule under UK GDPR. Run it on a schedule (daily, like `reconcile`).
//! The rollups, the published figures and the id index keep what was
//! dropped; see `channelshift_store`'s `retention` for how the rollup
//! rebuild and the reconciliation account for it.

use anyhow::{Context, Result};
use channelshift_store::{Record, Store};
use chrono::{Datelike, NaiveDate};
use serde::Deserialize;

/// `[retention]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Whole UTC months of raw rows kept before the current one (1 to
    /// 1,200); unset, raw rows are kept for good and `purge-raw` refuses to
    /// run.
    pub raw_months: Option<u32>,
}

/// The first UTC month (`yyyymm`) kept on `today` with `raw_months` whole
/// months kept before the current one.
pub fn first_kept(today: NaiveDate, raw_months: u32) -> u32 {
    let index = today.year() as i64 * 12 + i64::from(today.month0()) - i64::from(raw_months);
    let (year, month0) = (index.div_euclid(12), index.rem_euclid(12));
    (year * 100 + month0 + 1) as u32
}

/// Drops every raw month before [`first_kept`] from both raw tables;
/// returns what was dropped, in order.
pub async fn purge_raw(
    store: &Store,
    raw_months: u32,
    today: NaiveDate,
) -> Result<Vec<(Record, u32)>> {
    anyhow::ensure!(
        (1..=1_200).contains(&raw_months),
        "retention.raw_months is {raw_months}; it must be 1 to 1200"
    );
    let first = first_kept(today, raw_months);
    let mut dropped = Vec::new();
    for record in [Record::Contact, Record::Satisfaction] {
        for month in store.raw_months(record).await? {
            if month < first {
                store
                    .purge_raw_month(record, month)
                    .await
                    .with_context(|| format!("dropping {month} from {}", record.table()))?;
                dropped.push((record, month));
            }
        }
    }
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_months_before_the_current_one_are_kept() {
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("a date");
        assert_eq!(first_kept(day(2026, 12, 6), 24), 202412);
        assert_eq!(first_kept(day(2026, 1, 31), 1), 202512);
        assert_eq!(first_kept(day(2026, 3, 1), 14), 202501);
    }
}
