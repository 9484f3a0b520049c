//! Splitting a batch's INSERT so that no block touches more partitions than
//! the server allows. Current servers refuse an INSERT whose rows fall in more
//! than `max_partitions_per_insert_block` partitions (100 by default; Code 252,
//! "Too many partitions for single INSERT block"), and would refuse every
//! retry of it too. 18.16 has no such limit; the same split applies there.
//!
//! The raw tables are partitioned by month in the server's time zone, the
//! rollups their views fill by month of the London day. The instants of one
//! London month fall in at most two months of any other time zone, so an
//! INSERT holding rows of at most half the limit of London months touches at
//! most the limit of partitions in every table it writes. A batch within
//! that (nearly every batch: live events span a month or two) is one INSERT,
//! its rows in their order; a back-load of years is a few.

use chrono::{DateTime, Datelike};
use chrono_tz::Europe::London;
use std::collections::BTreeMap;

/// The limit assumed when the server has no `max_partitions_per_insert_block`
/// setting (18.16): current servers' default.
pub const DEFAULT_PARTITION_LIMIT: u64 = 100;

/// London months one INSERT may hold under a server limit of `limit`
/// partitions (0: no limit).
pub fn months_per_insert(limit: u64) -> usize {
    match limit {
        0 => usize::MAX,
        limit => usize::try_from(limit / 2).unwrap_or(usize::MAX).max(1),
    }
}

/// The London month (`yyyymm`) of an instant in Unix seconds.
fn london_month(at: u32) -> u32 {
    let local = DateTime::from_timestamp(i64::from(at), 0)
        .unwrap_or_default()
        .with_timezone(&London);
    u32::try_from(local.year()).unwrap_or(0) * 100 + local.month()
}

/// `rows` in groups of at most `months` London months each (by `at`, the
/// row's instant): one group, in the rows' order, when they fit; otherwise
/// groups of consecutive months, each group's rows in their order.
pub fn split_by_month<R>(rows: &[R], at: impl Fn(&R) -> u32, months: usize) -> Vec<Vec<&R>> {
    let mut by_month: BTreeMap<u32, Vec<&R>> = BTreeMap::new();
    for row in rows {
        by_month.entry(london_month(at(row))).or_default().push(row);
    }
    if by_month.len() <= months {
        return vec![rows.iter().collect()];
    }
    let mut groups = Vec::new();
    let mut group: Vec<&R> = Vec::new();
    for (index, (_, rows)) in by_month.into_iter().enumerate() {
        if index > 0 && index % months == 0 {
            groups.push(std::mem::take(&mut group));
        }
        group.extend(rows);
    }
    groups.push(group);
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    /// Noon UTC on the 15th of `month` months after January 2015.
    fn mid_month(month: u32) -> u32 {
        let day = NaiveDate::from_ymd_opt(2015, 1, 15)
            .and_then(|day| day.checked_add_months(chrono::Months::new(month)))
            .and_then(|day| day.and_hms_opt(12, 0, 0))
            .expect("a date");
        u32::try_from(day.and_utc().timestamp()).expect("after 1970")
    }

    #[test]
    fn the_limit_halves_into_london_months() {
        assert_eq!(months_per_insert(100), 50);
        assert_eq!(months_per_insert(1), 1);
        assert_eq!(months_per_insert(0), usize::MAX);
    }

    #[test]
    fn a_batch_within_the_limit_is_one_insert_in_its_order() {
        let rows = vec![mid_month(3), mid_month(0), mid_month(3), mid_month(1)];
        let groups = split_by_month(&rows, |at| *at, 50);
        assert_eq!(groups, [rows.iter().collect::<Vec<_>>()]);
    }

    #[test]
    fn a_hundred_and_thirty_months_make_three_inserts_of_at_most_fifty() {
        // Two rows a month, the months shuffled.
        let rows: Vec<u32> = (0..260).map(|i| mid_month((i * 37) % 130)).collect();
        let groups = split_by_month(&rows, |at| *at, months_per_insert(100));
        assert_eq!(groups.len(), 3);
        let mut seen = 0;
        for group in &groups {
            let months: std::collections::BTreeSet<u32> =
                group.iter().map(|at| london_month(**at)).collect();
            assert!(months.len() <= 50, "{} months", months.len());
            seen += group.len();
        }
        assert_eq!(seen, rows.len(), "every row in exactly one insert");
        // Groups are consecutive: every month of one is before the next's.
        let last = |group: &Vec<&u32>| group.iter().map(|at| london_month(**at)).max();
        let first = |group: &Vec<&u32>| group.iter().map(|at| london_month(**at)).min();
        assert!(last(&groups[0]) < first(&groups[1]));
        assert!(last(&groups[1]) < first(&groups[2]));
    }

    #[test]
    fn a_late_evening_in_summer_is_the_next_london_month() {
        // 23:30 UTC on 31 July 2025 is 00:30 on 1 August in London.
        assert_eq!(london_month(1_754_004_600), 202508);
        // 23:30 UTC on 31 January is still January in London.
        assert_eq!(london_month(1_738_366_200), 202501);
    }
}
