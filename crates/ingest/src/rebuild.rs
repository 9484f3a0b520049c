//! What `rebuild-rollups` prints: a progress line per month rebuilt and a
//! summary at the end.

use channelshift_runtime::text::grouped;
use channelshift_store::{RebuildReport, RebuildStep};
use std::fmt;

/// One month rebuilt, as a progress line.
pub struct StepLine<'a>(pub &'a RebuildStep);

/// The whole rebuild, as one line.
pub struct ReportLine<'a>(pub &'a RebuildReport);

impl fmt::Display for StepLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.dropped() {
            write!(
                f,
                "{} {}: no raw rows, month dropped",
                self.0.rollup, self.0.month
            )?;
        } else {
            let rows = if self.0.raw_rows == 1 { "row" } else { "rows" };
            write!(
                f,
                "{} {}: {} {rows} from raw",
                self.0.rollup,
                self.0.month,
                grouped(self.0.raw_rows)
            )?;
        }
        if self.0.attempts > 1 {
            write!(
                f,
                " (computed {} times: rows arrived meanwhile)",
                self.0.attempts
            )?;
        }
        write!(f, " [{}/{}]", self.0.index, self.0.total)
    }
}

impl fmt::Display for ReportLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rebuilt")?;
        for (i, rollup) in self.0.rollups.iter().enumerate() {
            let separator = if i == 0 { " " } else { ", " };
            write!(
                f,
                "{separator}{} ({} from {} raw rows",
                rollup.rollup,
                months(rollup.months - rollup.months_dropped),
                grouped(rollup.raw_rows)
            )?;
            if rollup.months_dropped > 0 {
                write!(f, ", {} dropped", months(rollup.months_dropped))?;
            }
            write!(f, ")")?;
        }
        if self.0.months_recomputed > 0 {
            write!(
                f,
                "; {} computed again after inserts",
                months(self.0.months_recomputed)
            )?;
        }
        write!(f, " in {:.1} s", self.0.elapsed.as_secs_f64())
    }
}

fn months(n: usize) -> String {
    if n == 1 {
        "1 month".into()
    } else {
        format!("{n} months")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use channelshift_store::{Month, RollupRebuilt};
    use std::time::Duration;

    fn month(yyyymm: u32) -> Month {
        Month::from_yyyymm(yyyymm).expect("a valid month")
    }

    #[test]
    fn steps_read_as_progress_lines() {
        let step = RebuildStep {
            rollup: "contact_daily",
            month: month(202507),
            raw_rows: 12_345,
            attempts: 1,
            index: 3,
            total: 26,
        };
        assert_eq!(
            StepLine(&step).to_string(),
            "contact_daily 2025-07: 12,345 rows from raw [3/26]"
        );
        let dropped = RebuildStep {
            raw_rows: 0,
            attempts: 2,
            ..step
        };
        assert_eq!(
            StepLine(&dropped).to_string(),
            "contact_daily 2025-07: no raw rows, month dropped \
             (computed 2 times: rows arrived meanwhile) [3/26]"
        );
        let report = RebuildReport {
            rollups: vec![
                RollupRebuilt {
                    rollup: "contact_daily",
                    months: 14,
                    months_dropped: 1,
                    raw_rows: 1_234_567,
                },
                RollupRebuilt {
                    rollup: "satisfaction_daily",
                    months: 1,
                    months_dropped: 0,
                    raw_rows: 10,
                },
            ],
            months_recomputed: 1,
            elapsed: Duration::from_millis(4_250),
        };
        assert_eq!(
            ReportLine(&report).to_string(),
            "rebuilt contact_daily (13 months from 1,234,567 raw rows, 1 month dropped), \
             satisfaction_daily (1 month from 10 raw rows); 1 month computed again after \
             inserts in 4.2 s"
        );
        let one = RebuildStep {
            raw_rows: 1,
            index: 26,
            ..dropped
        };
        assert_eq!(
            StepLine(&one).to_string(),
            "contact_daily 2025-07: 1 row from raw \
             (computed 2 times: rows arrived meanwhile) [26/26]"
        );
    }
}
