//! A KPI request as the reports take it: the council, days and filters of
//! the cells, how the rows are grouped in time and by key, and the periods
//! the rows cover.

use channelshift_kpi::catalogue::GroupKey;
use channelshift_kpi::period::{Period, PeriodKind};
use channelshift_store::{Bucket, CellFilter};
use chrono::NaiveDate;

/// How rows are grouped in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grouping {
    Total,
    By(PeriodKind),
}

impl Grouping {
    pub fn bucket(self) -> Bucket {
        match self {
            Grouping::Total => Bucket::Total,
            Grouping::By(PeriodKind::Day) => Bucket::Day,
            Grouping::By(PeriodKind::IsoWeek) => Bucket::IsoWeek,
            Grouping::By(PeriodKind::Month) => Bucket::Month,
            Grouping::By(PeriodKind::FinancialQuarter) => Bucket::FinancialQuarter,
            Grouping::By(PeriodKind::FinancialYear) => Bucket::FinancialYear,
        }
    }
}

/// A checked KPI request.
#[derive(Clone, Debug)]
pub struct KpiRequest {
    pub filter: CellFilter,
    pub grouping: Grouping,
    pub group_by: Vec<GroupKey>,
    /// The report's periods, each clamped to `from`/`to`.
    pub periods: Vec<(NaiveDate, NaiveDate)>,
}

impl KpiRequest {
    pub fn groups(&self, key: GroupKey) -> bool {
        self.group_by.contains(&key)
    }

    /// The (clamped) bounds of the period a store cell's `period` starts.
    pub fn period_of(&self, period: Option<NaiveDate>) -> Option<(NaiveDate, NaiveDate)> {
        match self.grouping {
            Grouping::Total => self.periods.first().copied(),
            Grouping::By(kind) => {
                let bounds = Period::containing(kind, period?).ok()?;
                Some((
                    bounds.first_day().max(self.filter.from),
                    bounds.last_day().min(self.filter.to),
                ))
            }
        }
    }
}
