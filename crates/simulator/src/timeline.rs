//! When a council's contacts happen: the period cut into hours, each weighted
//! by the month's volume (seasons), the weekday and the hour (local time),
//! and the share of staffed and self-service contacts at that point of the
//! channel shift. Contact `i` of `n` lands at the `(i + u) / n` quantile of
//! that weight, so contacts come out in time order, exactly `n` of them.

use crate::scenario::{Council, Shift};
use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc};
use chrono_tz::Europe::London;
use std::collections::BTreeSet;

/// One hour of the period.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hour {
    pub start: DateTime<Utc>,
    /// Local month, 0 = January, and local year.
    pub month0: usize,
    pub year: i32,
    /// The self-service and staffed patterns at this hour, each normalised
    /// to a mean of 1 over a week.
    pub digital_pattern: f64,
    pub mediated_pattern: f64,
}

/// A point in the period: where a contact happens.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Moment {
    pub at: DateTime<Utc>,
    /// 0 at the start of the period, 1 at its end.
    pub progress: f64,
    pub hour: Hour,
}

pub(crate) struct Timeline {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    hours: Vec<Hour>,
    /// Running total of the hours' weights.
    cumulative: Vec<f64>,
}

/// Local midnight at the start of `date`, in UTC.
pub(crate) fn local_midnight(date: NaiveDate) -> DateTime<Utc> {
    let midnight = date.and_hms_opt(0, 0, 0).expect("midnight exists");
    London
        .from_local_datetime(&midnight)
        .earliest()
        .map_or_else(|| Utc.from_utc_datetime(&midnight), |at| at.to_utc())
}

/// `YYYY-MM` of an instant, local.
pub(crate) fn local_month(at: DateTime<Utc>) -> String {
    let local = at.with_timezone(&London);
    format!("{:04}-{:02}", local.year(), local.month())
}

/// A weekday × hour pattern with a mean of 1 over the week.
fn pattern(weekdays: &[f64; 7], hours: &[f64; 24]) -> [[f64; 24]; 7] {
    let mean = weekdays.iter().sum::<f64>() * hours.iter().sum::<f64>() / 168.0;
    let mut table = [[0.0; 24]; 7];
    for (day, row) in table.iter_mut().enumerate() {
        for (hour, cell) in row.iter_mut().enumerate() {
            *cell = weekdays[day] * hours[hour] / mean;
        }
    }
    table
}

impl Timeline {
    /// The hours from local midnight on `first_day` to local midnight after `last_day`.
    pub fn new(council: &Council, first_day: NaiveDate, last_day: NaiveDate) -> Self {
        let start = local_midnight(first_day);
        let end = local_midnight(last_day + Duration::days(1)).max(start + Duration::hours(1));
        let calendar = &council.calendar;
        let digital = pattern(&calendar.digital_weekdays, &calendar.digital_hours);
        let mediated = pattern(&calendar.mediated_weekdays, &calendar.mediated_hours);
        let closed: BTreeSet<NaiveDate> = calendar.closed_dates.iter().map(|d| d.0).collect();
        // Relative volume by month: the service mix's seasonal factors.
        let total_weight: f64 = council.services.values().map(|s| s.weight).sum();
        let season: Vec<f64> = (0..12)
            .map(|month0| {
                council
                    .services
                    .values()
                    .map(|s| s.weight * s.seasonal_factor(month0))
                    .sum::<f64>()
                    / total_weight
            })
            .collect();
        let span = (end - start).num_seconds() as f64;
        let share = council.channels.digital_share;

        let count = (end - start).num_hours().max(1) as usize;
        let mut hours = Vec::with_capacity(count);
        let mut cumulative = Vec::with_capacity(count);
        let mut total = 0.0;
        for index in 0..count {
            let at = start + Duration::hours(index as i64);
            let local = at.with_timezone(&London);
            let day = local.weekday().num_days_from_monday() as usize;
            let hour_of_day = local.hour() as usize;
            let open = !closed.contains(&local.date_naive());
            let hour = Hour {
                start: at,
                month0: local.month0() as usize,
                year: local.year(),
                digital_pattern: digital[day][hour_of_day],
                mediated_pattern: if open {
                    mediated[day][hour_of_day]
                } else {
                    0.0
                },
            };
            let progress = (at - start).num_seconds() as f64 / span;
            total += season[hour.month0] * mix(share, progress, &hour);
            hours.push(hour);
            cumulative.push(total);
        }
        Self {
            start,
            end,
            hours,
            cumulative,
        }
    }

    pub fn end(&self) -> DateTime<Utc> {
        self.end
    }

    /// Where contact `index` of `count` happens; `jitter` in [0, 1) places it
    /// inside its share of the period.
    pub fn moment(&self, index: u64, count: u64, jitter: f64) -> Moment {
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        let target = (index as f64 + jitter) / count.max(1) as f64 * total;
        let slot = self
            .cumulative
            .partition_point(|&sum| sum <= target)
            .min(self.hours.len() - 1);
        let before = if slot == 0 {
            0.0
        } else {
            self.cumulative[slot - 1]
        };
        let weight = self.cumulative[slot] - before;
        let fraction = if weight > 0.0 {
            ((target - before) / weight).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let hour = self.hours[slot];
        let at = hour.start + Duration::seconds(((fraction * 3600.0) as i64).min(3599));
        Moment {
            at,
            progress: self.progress(at),
            hour,
        }
    }

    pub fn progress(&self, at: DateTime<Utc>) -> f64 {
        let span = (self.end - self.start).num_seconds().max(1) as f64;
        ((at - self.start).num_seconds() as f64 / span).clamp(0.0, 1.0)
    }
}

/// The volume of an hour: staffed and self-service patterns mixed in the
/// proportion of the channel shift at `progress`.
fn mix(share: Shift, progress: f64, hour: &Hour) -> f64 {
    let digital = share.at(progress);
    digital * hour.digital_pattern + (1.0 - digital) * hour.mediated_pattern
}

/// The chance that a contact at `hour` is self-service, given the digital
/// share `digital` it would have over a whole week.
pub(crate) fn digital_at(digital: f64, hour: Option<&Hour>) -> f64 {
    let Some(hour) = hour else {
        return digital;
    };
    let self_service = digital * hour.digital_pattern;
    let staffed = (1.0 - digital) * hour.mediated_pattern;
    if self_service + staffed > 0.0 {
        self_service / (self_service + staffed)
    } else {
        digital
    }
}
