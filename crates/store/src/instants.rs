//! The two instants a figure states, as distinct types so one cannot stand
//! in for the other: when ingest last stored a batch (what a live figure
//! includes), and the cut-off a published report is "as of" (what it reads);
//! and the months such a report may read from the rollups.

use crate::audit::Record;
use crate::connection::{Store, StoreError};
use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, Utc};
use clickhouse::Row;
use serde::Deserialize;
use std::fmt;

/// When ingest last stored a batch (Unix seconds), from its checkpoints:
/// every figure read now includes everything ingested up to then.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IngestedUpTo(pub i64);

/// The instant a report is as of (Unix seconds): only rows ingested by then
/// are read, so a report regenerated with the same cut-off has the same
/// figures however much data arrived since.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CutOff(pub i64);

/// RFC 3339 in UTC to the second, e.g. `2026-10-05T09:00:00Z`; empty for an
/// instant chrono cannot represent.
fn rfc3339(seconds: i64) -> String {
    DateTime::<Utc>::from_timestamp(seconds, 0)
        .map(|at| at.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_default()
}

impl fmt::Display for IngestedUpTo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&rfc3339(self.0))
    }
}

impl fmt::Display for CutOff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&rfc3339(self.0))
    }
}

/// The UTC months, of the 128 from `first` on, in which no raw row (contact
/// or response) of one council was ingested after a cut-off and whose raw
/// rows retention has not dropped. For those months the rollups hold exactly
/// what the raw tables held at the cut-off, so a report as of it can read
/// them (see [`crate::Source::AsOf`] and [`crate::Store::settled_months`]).
/// Months outside the 128 count as not settled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SettledMonths {
    /// The first month's index, `year * 12 + month - 1`.
    first: u32,
    /// Bit `i`: month `first + i` is settled.
    mask: u128,
}

/// `YYYYMM` of `day`'s month, as `toYYYYMM` gives it.
pub(crate) fn yyyymm(day: NaiveDate) -> u32 {
    day.year().max(0) as u32 * 100 + day.month()
}

/// A month's index, `year * 12 + month - 1`, from `YYYYMM`.
fn index(yyyymm: u32) -> u32 {
    (yyyymm / 100) * 12 + (yyyymm % 100).saturating_sub(1)
}

impl SettledMonths {
    /// The 128 months ending with `last` (`YYYYMM`), each settled unless it
    /// is in `late` or at or before `purged_through` (`YYYYMM`).
    pub fn ending(last: u32, late: &[u32], purged_through: Option<u32>) -> Self {
        let first = index(last).saturating_sub(127);
        let purged = purged_through.map(index);
        let mut mask = 0u128;
        for i in 0..128u32 {
            let month = first + i;
            let dropped = purged.is_some_and(|through| month <= through);
            if !dropped && !late.iter().any(|yyyymm| index(*yyyymm) == month) {
                mask |= 1 << i;
            }
        }
        Self { first, mask }
    }

    /// Whether every UTC month from the one of `from` to the one of `to`
    /// (`YYYYMM`, both inclusive) is settled.
    pub fn cover(&self, from: u32, to: u32) -> bool {
        let (from, to) = (index(from), index(to));
        from <= to
            && from >= self.first
            && to < self.first + 128
            && (from..=to).all(|month| self.mask & (1 << (month - self.first)) != 0)
    }
}

#[derive(Row, Deserialize)]
struct Month {
    month: u32,
}

impl Store {
    /// The months settled for `council` as of `cut_off` (see
    /// [`SettledMonths`]), the 128 ending with `last`'s UTC month. It reads
    /// the ingest time of every raw row of the council (about 0.4 s at 20 M
    /// contacts on 2 cores), so a report asks once, and once more when done:
    /// if the answer changed meanwhile, rows after the cut-off may have
    /// reached a rollup it read, and it reads the raw tables instead.
    pub async fn settled_months(
        &self,
        council: &str,
        cut_off: CutOff,
        last: NaiveDate,
    ) -> Result<SettledMonths, StoreError> {
        let mut late = Vec::new();
        let mut purged = None;
        for record in [Record::Contact, Record::Satisfaction] {
            let sql = format!(
                "SELECT DISTINCT toYYYYMM({at}) AS month FROM {table} \
                 WHERE council = ? AND ingested_at > toDateTime(toUInt32(?))",
                at = record.timestamp_column(),
                table = record.table(),
            );
            let months = self
                .query(&sql)
                .bind(council)
                .bind(cut_off.0.max(0))
                .fetch_all::<Month>()
                .await?;
            late.extend(months.into_iter().map(|row| row.month));
            purged = purged.max(self.purged_through(record.table()).await?);
        }
        Ok(SettledMonths::ending(yyyymm(last), &late, purged))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_read_as_rfc_3339_utc() {
        assert_eq!(CutOff(1_759_654_800).to_string(), "2025-10-05T09:00:00Z");
        assert_eq!(IngestedUpTo(0).to_string(), "1970-01-01T00:00:00Z");
        assert_eq!(CutOff(i64::MAX).to_string(), "");
    }

    #[test]
    fn months_are_settled_unless_late_purged_or_outside_the_128() {
        let settled = SettledMonths::ending(202606, &[202603], Some(202401));
        assert!(settled.cover(202604, 202606));
        assert!(settled.cover(202402, 202602));
        assert!(!settled.cover(202602, 202604), "March has late rows");
        assert!(!settled.cover(202401, 202402), "January 2024 was purged");
        assert!(
            !settled.cover(202606, 202607),
            "July is past the last month"
        );
        let all = SettledMonths::ending(202606, &[], None);
        assert!(
            all.cover(201511, 202606),
            "the 128 months from November 2015"
        );
        assert!(!all.cover(201510, 201511), "October 2015 is before them");
        assert!(!all.cover(201510, 201510));
        assert!(!all.cover(202606, 202605), "an empty span is not read");
    }
}
