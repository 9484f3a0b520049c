//! Reporting periods in Europe/London: the local day an instant belongs to, the day, ISO week,
//! month, financial quarter and financial year containing a local date, and their UTC spans.

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, NaiveTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Europe::London;
use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

/// The first calendar year a period may be asked about. Bounding the years keeps every
/// neighbouring period inside chrono's date range, so period arithmetic cannot overflow.
pub const MIN_YEAR: i32 = 1;
/// The last calendar year a period may be asked about (RFC 3339 years have four digits).
pub const MAX_YEAR: i32 = 9999;

channelshift_contract::vocabulary! {
    /// The length of a reporting period.
    PeriodKind, "period kind" {
        Day = "day",
        /// ISO 8601 week, Monday to Sunday, numbered within its ISO year.
        IsoWeek = "iso_week",
        Month = "month",
        /// April–June is Q1, …, January–March is Q4.
        FinancialQuarter = "financial_quarter",
        /// April to March.
        FinancialYear = "financial_year",
    }
}

/// Why a period could not be formed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    /// The date, or a period next to it, lies outside [`MIN_YEAR`]–[`MAX_YEAR`].
    #[error("{0} is outside the supported years {MIN_YEAR}–{MAX_YEAR}")]
    OutOfRange(NaiveDate),
    /// The label is not the canonical label of a period of that kind.
    #[error("`{label}` is not a {kind} label")]
    BadLabel { kind: PeriodKind, label: String },
    /// A `from`/`to` range whose start is after its end.
    #[error("the range starts on {from}, after it ends on {to}")]
    ReversedRange { from: NaiveDate, to: NaiveDate },
}

/// The Europe/London calendar date of a UTC instant: the day a contact or response counts in.
pub fn local_date(instant: DateTime<Utc>) -> NaiveDate {
    instant.with_timezone(&London).date_naive()
}

/// A span of UTC instants, `start` included and `end` excluded: what a store is queried with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct UtcRange {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl UtcRange {
    /// Whether `instant` falls inside `[start, end)`.
    pub fn contains(&self, instant: DateTime<Utc>) -> bool {
        self.start <= instant && instant < self.end
    }

    /// The elapsed time the range covers; a local day is 23, 24 or 25 hours.
    pub fn duration(&self) -> TimeDelta {
        self.end - self.start
    }
}

/// The UTC instants of the local days `first_day` to `last_day`, both included: from local
/// midnight starting `first_day` to local midnight ending `last_day`. Use it for a `from`/`to`
/// range that is not a whole period.
pub fn utc_range_of_days(
    first_day: NaiveDate,
    last_day: NaiveDate,
) -> Result<UtcRange, PeriodError> {
    check_supported(first_day)?;
    check_supported(last_day)?;
    if first_day > last_day {
        return Err(PeriodError::ReversedRange {
            from: first_day,
            to: last_day,
        });
    }
    Ok(UtcRange {
        start: local_midnight(first_day),
        end: local_midnight(day_after(last_day)),
    })
}

/// One reporting period: a kind and the local day it starts on. Built only through
/// [`Period::containing`] or [`Period::from_label`], so the first day is always aligned to the
/// kind (a month starts on the 1st, a week on a Monday, a financial year on 1 April).
///
/// Ordered by kind, then by start. Serialised as `{kind, label, first_day, last_day}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period {
    kind: PeriodKind,
    first_day: NaiveDate,
}

impl Period {
    /// The period of `kind` that contains the local date `date`.
    pub fn containing(kind: PeriodKind, date: NaiveDate) -> Result<Period, PeriodError> {
        check_supported(date)?;
        let first_day = match kind {
            PeriodKind::Day => date,
            PeriodKind::IsoWeek => date
                .checked_sub_days(Days::new(u64::from(date.weekday().num_days_from_monday())))
                .expect("a supported date's Monday is inside chrono's range"),
            PeriodKind::Month => first_of_month(date.year(), date.month()),
            PeriodKind::FinancialQuarter => {
                let (start_year, quarter) = financial_quarter_of(date);
                // Q1 starts in April; Q4's "month 13" is January of the following year.
                let month = 4 + 3 * (quarter - 1);
                if month > 12 {
                    first_of_month(start_year + 1, month - 12)
                } else {
                    first_of_month(start_year, month)
                }
            }
            PeriodKind::FinancialYear => first_of_month(financial_year_of(date), 4),
        };
        Ok(Period { kind, first_day })
    }

    /// The period of `kind` containing the local date of a UTC instant.
    pub fn containing_instant(
        kind: PeriodKind,
        instant: DateTime<Utc>,
    ) -> Result<Period, PeriodError> {
        Period::containing(kind, local_date(instant))
    }

    /// Reads a label as [`Period::label`] writes it, e.g. `"2025-26 Q3"` for a financial
    /// quarter. The kind is needed because labels are only unique within a kind: `"2010-11"`
    /// is both November 2010 and financial year 2010-11.
    pub fn from_label(kind: PeriodKind, label: &str) -> Result<Period, PeriodError> {
        let bad_label = || PeriodError::BadLabel {
            kind,
            label: label.to_owned(),
        };
        let parse_year = |text: &str| text.parse::<i32>().ok();
        let financial_year_start = |text: &str| {
            let (start, _) = text.split_once('-')?;
            parse_year(start)
        };
        let date = match kind {
            PeriodKind::Day => NaiveDate::parse_from_str(label, "%Y-%m-%d").ok(),
            PeriodKind::IsoWeek => label.split_once("-W").and_then(|(year, week)| {
                NaiveDate::from_isoywd_opt(
                    parse_year(year)?,
                    week.parse().ok()?,
                    chrono::Weekday::Mon,
                )
            }),
            PeriodKind::Month => label.split_once('-').and_then(|(year, month)| {
                NaiveDate::from_ymd_opt(parse_year(year)?, month.parse().ok()?, 1)
            }),
            PeriodKind::FinancialQuarter => label.split_once(" Q").and_then(|(year, quarter)| {
                let quarter: u32 = quarter.parse().ok()?;
                if !(1..=4).contains(&quarter) {
                    return None;
                }
                let month = 4 + 3 * (quarter - 1);
                let start_year = financial_year_start(year)?;
                if month > 12 {
                    NaiveDate::from_ymd_opt(start_year.checked_add(1)?, month - 12, 1)
                } else {
                    NaiveDate::from_ymd_opt(start_year, month, 1)
                }
            }),
            PeriodKind::FinancialYear => {
                financial_year_start(label).and_then(|year| NaiveDate::from_ymd_opt(year, 4, 1))
            }
        }
        .ok_or_else(bad_label)?;
        let period = Period::containing(kind, date)?;
        // Parsing is lenient about padding and signs; insisting on the canonical spelling
        // rejects "2025-27", "2025-3" and the like.
        if period.label() == label {
            Ok(period)
        } else {
            Err(bad_label())
        }
    }

    /// Every period of `kind` that overlaps the local dates `from` to `to`, both included, in
    /// order. The first and last may extend beyond the range.
    pub fn covering(
        kind: PeriodKind,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<Period>, PeriodError> {
        if from > to {
            return Err(PeriodError::ReversedRange { from, to });
        }
        let last = Period::containing(kind, to)?;
        let mut period = Period::containing(kind, from)?;
        let mut periods = vec![period];
        while period != last {
            period = period.next()?;
            periods.push(period);
        }
        Ok(periods)
    }

    /// The period's kind.
    pub fn kind(&self) -> PeriodKind {
        self.kind
    }

    /// The first local day of the period.
    pub fn first_day(&self) -> NaiveDate {
        self.first_day
    }

    /// The last local day of the period (included).
    pub fn last_day(&self) -> NaiveDate {
        self.day_after_end()
            .pred_opt()
            .expect("a period's last day is inside chrono's range")
    }

    /// Whether the local date `date` lies in the period.
    pub fn contains(&self, date: NaiveDate) -> bool {
        self.first_day <= date && date < self.day_after_end()
    }

    /// The UTC instants of the period, `[start, end)`; across a clock change a day is 23 or 25
    /// hours long and the week, month, quarter or year containing it one hour shorter or longer.
    pub fn utc_range(&self) -> UtcRange {
        UtcRange {
            start: local_midnight(self.first_day),
            end: local_midnight(self.day_after_end()),
        }
    }

    /// The period of the same kind that follows this one.
    pub fn next(&self) -> Result<Period, PeriodError> {
        Period::containing(self.kind, self.day_after_end())
    }

    /// The period of the same kind that precedes this one.
    pub fn previous(&self) -> Result<Period, PeriodError> {
        let day_before = self
            .first_day
            .pred_opt()
            .expect("a supported period's previous day is inside chrono's range");
        Period::containing(self.kind, day_before)
    }

    /// The same period a year earlier, for direction of travel against last year.
    ///
    /// A day maps to the same date, 29 February to 28 February. An ISO week maps to the same
    /// week number of the previous ISO year, week 53 to week 52 when that year has no week 53.
    pub fn same_period_last_year(&self) -> Result<Period, PeriodError> {
        let date = match self.kind {
            PeriodKind::IsoWeek => {
                let week = self.first_day.iso_week();
                let year = week.year() - 1;
                NaiveDate::from_isoywd_opt(year, week.week(), chrono::Weekday::Mon)
                    .or_else(|| NaiveDate::from_isoywd_opt(year, 52, chrono::Weekday::Mon))
            }
            // Month arithmetic clamps 29 February to 28 February.
            _ => self.first_day.checked_sub_months(Months::new(12)),
        }
        .ok_or(PeriodError::OutOfRange(self.first_day))?;
        Period::containing(self.kind, date)
    }

    /// The period's label: `"2025-11-03"`, `"2025-W07"` (ISO year and week), `"2025-11"`,
    /// `"2025-26 Q3"`, `"2025-26"`.
    pub fn label(&self) -> String {
        let day = self.first_day;
        match self.kind {
            PeriodKind::Day => day.format("%Y-%m-%d").to_string(),
            PeriodKind::IsoWeek => {
                let week = day.iso_week();
                format!("{:04}-W{:02}", week.year(), week.week())
            }
            PeriodKind::Month => day.format("%Y-%m").to_string(),
            PeriodKind::FinancialQuarter => {
                let (start_year, quarter) = financial_quarter_of(day);
                format!("{} Q{quarter}", financial_year_label(start_year))
            }
            PeriodKind::FinancialYear => financial_year_label(financial_year_of(day)),
        }
    }

    fn day_after_end(&self) -> NaiveDate {
        let months = |n| {
            self.first_day
                .checked_add_months(Months::new(n))
                .expect("a supported period's end is inside chrono's range")
        };
        match self.kind {
            PeriodKind::Day => day_after(self.first_day),
            PeriodKind::IsoWeek => self
                .first_day
                .checked_add_days(Days::new(7))
                .expect("a supported week's end is inside chrono's range"),
            PeriodKind::Month => months(1),
            PeriodKind::FinancialQuarter => months(3),
            PeriodKind::FinancialYear => months(12),
        }
    }
}

impl std::fmt::Display for Period {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label())
    }
}

impl Serialize for Period {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut period = serializer.serialize_struct("Period", 4)?;
        period.serialize_field("kind", &self.kind)?;
        period.serialize_field("label", &self.label())?;
        period.serialize_field("first_day", &self.first_day)?;
        period.serialize_field("last_day", &self.last_day())?;
        period.end()
    }
}

fn check_supported(date: NaiveDate) -> Result<(), PeriodError> {
    if (MIN_YEAR..=MAX_YEAR).contains(&date.year()) {
        Ok(())
    } else {
        Err(PeriodError::OutOfRange(date))
    }
}

/// The calendar year in which the financial year containing `date` starts (1 April).
fn financial_year_of(date: NaiveDate) -> i32 {
    if date.month() >= 4 {
        date.year()
    } else {
        date.year() - 1
    }
}

/// The financial year's start year and the quarter (1–4) containing `date`.
fn financial_quarter_of(date: NaiveDate) -> (i32, u32) {
    // Shift so April is month 0 of the financial year: April–June → 0..3 → Q1, January → 9 → Q4.
    let month_of_financial_year = (date.month() + 8) % 12;
    (financial_year_of(date), month_of_financial_year / 3 + 1)
}

/// "2025-26"; the second year is written with two digits, so 1999-00 follows 1998-99.
fn financial_year_label(start_year: i32) -> String {
    format!("{start_year:04}-{:02}", (start_year + 1).rem_euclid(100))
}

fn first_of_month(year: i32, month: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, 1)
        .expect("the 1st of a month in a supported year is a valid date")
}

fn day_after(date: NaiveDate) -> NaiveDate {
    date.succ_opt()
        .expect("the day after a supported date is inside chrono's range")
}

/// The UTC instant at which the local day `date` begins in London.
fn local_midnight(date: NaiveDate) -> DateTime<Utc> {
    // Ambiguous midnight (clocks going back at midnight) would begin the day at its earlier
    // occurrence; London has only ever changed clocks in the small hours, so midnight exists.
    London
        .from_local_datetime(&date.and_time(NaiveTime::MIN))
        .earliest()
        .expect("Europe/London never changes its clocks across local midnight")
        .with_timezone(&Utc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        text.parse().expect("test dates are valid")
    }

    fn instant(text: &str) -> DateTime<Utc> {
        text.parse().expect("test instants are valid RFC 3339")
    }

    fn period(kind: PeriodKind, day: &str) -> Period {
        Period::containing(kind, date(day)).expect("test dates are supported")
    }

    #[test]
    fn summer_evening_at_2330_utc_belongs_to_the_next_local_day() {
        // BST is UTC+1: 2025-07-01T23:30Z is 00:30 on 2 July in London.
        assert_eq!(
            local_date(instant("2025-07-01T23:30:00Z")),
            date("2025-07-02")
        );
        // In winter London is on UTC, so the same clock time stays on the same day.
        assert_eq!(
            local_date(instant("2025-01-15T23:30:00Z")),
            date("2025-01-15")
        );
    }

    #[test]
    fn spring_forward_day_is_23_hours_long() {
        // 2025-03-30: clocks go from 01:00 GMT to 02:00 BST. The day runs 00:00Z to 23:00Z.
        let range = period(PeriodKind::Day, "2025-03-30").utc_range();
        assert_eq!(range.start, instant("2025-03-30T00:00:00Z"));
        assert_eq!(range.end, instant("2025-03-30T23:00:00Z"));
        assert_eq!(range.duration(), TimeDelta::hours(23));
    }

    #[test]
    fn fall_back_day_is_25_hours_long() {
        // 2025-10-26: clocks go from 02:00 BST back to 01:00 GMT. Local midnight is 23:00Z the
        // evening before; the next local midnight is 00:00Z on the 27th.
        let range = period(PeriodKind::Day, "2025-10-26").utc_range();
        assert_eq!(range.start, instant("2025-10-25T23:00:00Z"));
        assert_eq!(range.end, instant("2025-10-27T00:00:00Z"));
        assert_eq!(range.duration(), TimeDelta::hours(25));
    }

    #[test]
    fn utc_range_excludes_its_end_instant() {
        let range = period(PeriodKind::Day, "2025-07-02").utc_range();
        assert!(range.contains(instant("2025-07-01T23:00:00Z")));
        assert!(range.contains(instant("2025-07-02T22:59:59Z")));
        assert!(!range.contains(instant("2025-07-02T23:00:00Z")));
    }

    #[test]
    fn financial_quarter_changes_between_31_march_and_1_april() {
        let end_of_year = period(PeriodKind::FinancialQuarter, "2025-03-31");
        assert_eq!(end_of_year.label(), "2024-25 Q4");
        assert_eq!(end_of_year.first_day(), date("2025-01-01"));
        assert_eq!(end_of_year.last_day(), date("2025-03-31"));
        let start_of_year = period(PeriodKind::FinancialQuarter, "2025-04-01");
        assert_eq!(start_of_year.label(), "2025-26 Q1");
        assert_eq!(start_of_year.last_day(), date("2025-06-30"));
        assert_eq!(
            period(PeriodKind::FinancialQuarter, "2025-12-31").label(),
            "2025-26 Q3"
        );
        assert_eq!(
            period(PeriodKind::FinancialQuarter, "2025-07-01").label(),
            "2025-26 Q2"
        );
    }

    #[test]
    fn financial_year_runs_april_to_march() {
        let year = period(PeriodKind::FinancialYear, "2026-02-14");
        assert_eq!(year.label(), "2025-26");
        assert_eq!(year.first_day(), date("2025-04-01"));
        assert_eq!(year.last_day(), date("2026-03-31"));
        assert_eq!(
            period(PeriodKind::FinancialYear, "1999-06-01").label(),
            "1999-00"
        );
    }

    #[test]
    fn iso_week_across_a_year_end_belongs_to_its_iso_year() {
        // 2024-12-30 is a Monday; its Thursday, 2025-01-02, puts the week in ISO 2025 as W01.
        let week = period(PeriodKind::IsoWeek, "2024-12-31");
        assert_eq!(week.label(), "2025-W01");
        assert_eq!(week.first_day(), date("2024-12-30"));
        assert_eq!(week.last_day(), date("2025-01-05"));
        // 2021-01-03 is a Sunday in the week of Monday 2020-12-28, ISO 2020-W53.
        assert_eq!(
            period(PeriodKind::IsoWeek, "2021-01-03").label(),
            "2020-W53"
        );
        assert_eq!(
            period(PeriodKind::IsoWeek, "2025-02-12").label(),
            "2025-W07"
        );
    }

    #[test]
    fn month_and_day_labels() {
        assert_eq!(period(PeriodKind::Month, "2025-11-19").label(), "2025-11");
        assert_eq!(
            period(PeriodKind::Month, "2024-02-10").last_day(),
            date("2024-02-29")
        );
        assert_eq!(period(PeriodKind::Day, "2025-11-03").label(), "2025-11-03");
    }

    #[test]
    fn previous_period_steps_back_one_of_its_kind() {
        let q1 = period(PeriodKind::FinancialQuarter, "2025-05-01");
        assert_eq!(
            q1.previous().map(|p| p.label()),
            Ok("2024-25 Q4".to_owned())
        );
        let week = period(PeriodKind::IsoWeek, "2025-01-01");
        assert_eq!(
            week.previous().map(|p| p.label()),
            Ok("2024-W52".to_owned())
        );
        let day = period(PeriodKind::Day, "2025-03-01");
        assert_eq!(
            day.previous().map(|p| p.label()),
            Ok("2025-02-28".to_owned())
        );
    }

    #[test]
    fn same_period_last_year_keeps_the_position_in_the_year() {
        let label = |kind, day| {
            period(kind, day)
                .same_period_last_year()
                .map(|p| p.label())
                .expect("supported")
        };
        assert_eq!(
            label(PeriodKind::FinancialQuarter, "2025-11-01"),
            "2024-25 Q3"
        );
        assert_eq!(label(PeriodKind::FinancialYear, "2025-11-01"), "2024-25");
        assert_eq!(label(PeriodKind::Month, "2025-11-01"), "2024-11");
        assert_eq!(label(PeriodKind::IsoWeek, "2025-02-12"), "2024-W07");
        // 2021 has no week 53 … 2020-W53 maps to 2019-W52.
        assert_eq!(label(PeriodKind::IsoWeek, "2020-12-31"), "2019-W52");
        assert_eq!(label(PeriodKind::Day, "2024-02-29"), "2023-02-28");
    }

    #[test]
    fn covering_lists_every_period_touching_an_inclusive_range() {
        let months = Period::covering(PeriodKind::Month, date("2025-01-31"), date("2025-04-01"))
            .expect("supported");
        let labels: Vec<String> = months.iter().map(Period::label).collect();
        assert_eq!(labels, ["2025-01", "2025-02", "2025-03", "2025-04"]);
        let one_day = Period::covering(PeriodKind::Day, date("2025-04-01"), date("2025-04-01"))
            .expect("supported");
        assert_eq!(one_day.len(), 1);
        assert!(matches!(
            Period::covering(PeriodKind::Day, date("2025-04-02"), date("2025-04-01")),
            Err(PeriodError::ReversedRange { .. })
        ));
    }

    #[test]
    fn labels_read_back_to_the_same_period() {
        for (kind, day) in [
            (PeriodKind::Day, "2025-11-03"),
            (PeriodKind::IsoWeek, "2024-12-31"),
            (PeriodKind::Month, "2025-11-19"),
            (PeriodKind::FinancialQuarter, "2026-01-15"),
            (PeriodKind::FinancialYear, "2025-04-01"),
        ] {
            let original = period(kind, day);
            assert_eq!(Period::from_label(kind, &original.label()), Ok(original));
        }
        assert_eq!(
            Period::from_label(PeriodKind::FinancialQuarter, "2025-26 Q3").map(|p| p.first_day()),
            Ok(date("2025-10-01"))
        );
    }

    #[test]
    fn malformed_labels_are_rejected() {
        for (kind, label) in [
            (PeriodKind::FinancialYear, "2025-27"),
            (PeriodKind::FinancialQuarter, "2025-26 Q5"),
            (PeriodKind::Month, "2025-13"),
            (PeriodKind::Month, "2025-3"),
            (PeriodKind::IsoWeek, "2025-W54"),
            (PeriodKind::Day, "2025-02-30"),
        ] {
            assert!(
                matches!(
                    Period::from_label(kind, label),
                    Err(PeriodError::BadLabel { .. })
                ),
                "{label} should be rejected as a {kind}"
            );
        }
    }

    #[test]
    fn quarter_utc_range_spans_the_clock_change_inside_it() {
        // 2025-26 Q3 (Oct–Dec) starts at BST midnight and ends at GMT midnight.
        let range = period(PeriodKind::FinancialQuarter, "2025-10-01").utc_range();
        assert_eq!(range.start, instant("2025-09-30T23:00:00Z"));
        assert_eq!(range.end, instant("2026-01-01T00:00:00Z"));
    }

    #[test]
    fn custom_range_of_days_covers_whole_local_days() {
        let range = utc_range_of_days(date("2025-03-29"), date("2025-03-30")).expect("supported");
        assert_eq!(range.duration(), TimeDelta::hours(47));
        assert!(utc_range_of_days(date("2025-03-30"), date("2025-03-29")).is_err());
    }

    #[test]
    fn dates_outside_supported_years_are_refused_not_panicked_on() {
        assert_eq!(
            Period::containing(PeriodKind::Month, NaiveDate::MAX),
            Err(PeriodError::OutOfRange(NaiveDate::MAX))
        );
        let first_supported = period(PeriodKind::FinancialYear, "0001-01-01");
        assert!(first_supported.previous().is_err());
    }

    #[test]
    fn every_london_midnight_exists_from_1900_to_2100() {
        // The invariant `local_midnight` relies on, checked over the years reports cover.
        let mut day = date("1900-01-01");
        while day < date("2101-01-01") {
            assert!(
                London
                    .from_local_datetime(&day.and_time(NaiveTime::MIN))
                    .earliest()
                    .is_some(),
                "{day} has no local midnight"
            );
            day = day_after(day);
        }
    }
}
