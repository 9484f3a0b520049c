//! The reporting calendar: which committee meets when, for which council,
//! and the data cut-off its pack is "as of" (`[[packs.calendar]]`), with the
//! rest of `[packs]`: how PDF packs are printed and by which binary.

use crate::scorecard::{report_period, REPORT_PERIODS};
use anyhow::{Context, Result};
use channelshift_contract::CouncilCode;
use channelshift_kpi::period::{local_date, Period, PeriodKind};
use channelshift_store::CutOff;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use std::path::PathBuf;

/// `[packs]`: which binary renders packs, how PDFs are printed, and the
/// reporting calendar.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PacksConfig {
    /// The `channelshift-packs` binary the API runs to render a pack it is
    /// asked for; by default the one beside the API's own binary.
    #[serde(default)]
    pub binary: Option<PathBuf>,
    /// The Chromium binary that prints PDFs (Debian: `/usr/bin/chromium`).
    #[serde(default = "default_chromium")]
    pub chromium: PathBuf,
    #[serde(default = "default_pdf_timeout_seconds")]
    pub pdf_timeout_seconds: u64,
    /// PDF packs rendering at once, per API process.
    #[serde(default = "default_pdf_concurrency")]
    pub pdf_concurrency: usize,
    /// Packs of any format rendering at once, per API process (each in a
    /// `channelshift-packs` process of its own); further requests wait.
    #[serde(default = "default_max_processes")]
    pub max_processes: usize,
    /// The committees' meetings, each with the data cut-off of its pack.
    #[serde(default)]
    pub calendar: Vec<Meeting>,
}

impl Default for PacksConfig {
    fn default() -> Self {
        Self {
            binary: None,
            chromium: default_chromium(),
            pdf_timeout_seconds: default_pdf_timeout_seconds(),
            pdf_concurrency: default_pdf_concurrency(),
            max_processes: default_max_processes(),
            calendar: Vec::new(),
        }
    }
}

/// A committee meeting of the reporting calendar.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meeting {
    /// GSS code of the council.
    pub council: String,
    pub committee: String,
    /// The meeting's date.
    pub meets: NaiveDate,
    /// The data cut-off (RFC 3339): the pack is "as of" this instant.
    pub data_as_of: String,
    /// `month`, `quarter` (default) or `financial_year`.
    #[serde(default = "default_meeting_period")]
    pub period: String,
    /// A day in the period to report; by default the latest period that
    /// ended before the data cut-off.
    #[serde(default)]
    pub reports: Option<NaiveDate>,
}

/// A meeting of the calendar, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub council: CouncilCode,
    pub committee: String,
    pub meets: NaiveDate,
    /// The data cut-off: the pack is as of it.
    pub as_of: CutOff,
    /// The period the pack reports.
    pub period: Period,
}

impl Entry {
    /// The folder the meeting's pack goes in, e.g. `2026-09-10-overview-and-scrutiny`.
    pub fn folder(&self) -> String {
        let slug: String = self
            .committee
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        let slug = slug
            .split('-')
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join("-");
        format!("{}-{}-{slug}", self.meets, self.council)
    }
}

#[derive(Clone, Debug, Default)]
pub struct Calendar {
    pub entries: Vec<Entry>,
}

fn kind(name: &str) -> Result<PeriodKind> {
    report_period(name).with_context(|| format!("period {name:?}: {REPORT_PERIODS}"))
}

impl Calendar {
    /// Checks the configured meetings: valid council, period, cut-off before the meeting.
    pub fn new(meetings: &[Meeting]) -> Result<Self> {
        let mut entries = Vec::new();
        for (index, meeting) in meetings.iter().enumerate() {
            let at = || {
                format!(
                    "packs.calendar[{index}] ({} on {})",
                    meeting.committee, meeting.meets
                )
            };
            let council = CouncilCode::parse(&meeting.council)
                .with_context(|| format!("{}: council: {}", at(), CouncilCode::RULE))?;
            let as_of = DateTime::parse_from_rfc3339(&meeting.data_as_of)
                .with_context(|| format!("{}: data_as_of must be an RFC 3339 instant", at()))?
                .timestamp();
            let cut_off_day = DateTime::<Utc>::from_timestamp(as_of, 0)
                .map(local_date)
                .context("data_as_of out of range")?;
            anyhow::ensure!(
                cut_off_day <= meeting.meets,
                "{}: the data cut-off {} is after the meeting",
                at(),
                meeting.data_as_of
            );
            let kind = kind(&meeting.period).with_context(at)?;
            // By default, the latest period that ended before the cut-off.
            let period = match meeting.reports {
                Some(day) => Period::containing(kind, day),
                None => Period::containing(kind, cut_off_day).and_then(|period| period.previous()),
            }
            .map_err(|error| anyhow::anyhow!("{}: {error}", at()))?;
            entries.push(Entry {
                council,
                committee: meeting.committee.clone(),
                meets: meeting.meets,
                as_of: CutOff(as_of),
                period,
            });
        }
        entries.sort_by_key(|entry| (entry.meets, entry.council.clone()));
        Ok(Self { entries })
    }

    /// The cut-off of the council's latest pack before `as_of`: what a pack
    /// as of `as_of` flags restatements against.
    pub fn previous_as_of(&self, council: &str, as_of: CutOff) -> Option<CutOff> {
        self.entries
            .iter()
            .filter(|entry| entry.council.as_str() == council && entry.as_of < as_of)
            .map(|entry| entry.as_of)
            .max()
    }

    /// Meetings whose cut-off has passed and settled by `now`.
    pub fn due(&self, now: i64, settle: i64) -> Vec<&Entry> {
        self.entries
            .iter()
            .filter(|entry| entry.as_of.0 <= now - settle)
            .collect()
    }
}

fn default_chromium() -> PathBuf {
    PathBuf::from("/usr/bin/chromium")
}
fn default_pdf_timeout_seconds() -> u64 {
    60
}
fn default_pdf_concurrency() -> usize {
    1
}
fn default_max_processes() -> usize {
    4
}
fn default_meeting_period() -> String {
    "quarter".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meeting(meets: &str, data_as_of: &str) -> Meeting {
        Meeting {
            council: "E07000041".into(),
            committee: "Overview & Scrutiny".into(),
            meets: meets.parse().expect("a date"),
            data_as_of: data_as_of.into(),
            period: "quarter".into(),
            reports: None,
        }
    }

    #[test]
    fn a_meeting_reports_the_latest_period_ended_before_its_cut_off() {
        let calendar = Calendar::new(&[
            meeting("2026-12-03", "2026-11-12T17:00:00Z"),
            meeting("2026-09-10", "2026-08-20T17:00:00Z"),
        ])
        .expect("valid");
        let labels: Vec<String> = calendar.entries.iter().map(|e| e.period.label()).collect();
        assert_eq!(labels, ["2026-27 Q1", "2026-27 Q2"], "sorted by meeting");
        assert_eq!(
            calendar.entries[0].folder(),
            "2026-09-10-E07000041-overview-scrutiny"
        );
        let second = calendar.entries[1].as_of;
        assert_eq!(
            calendar.previous_as_of("E07000041", second),
            Some(calendar.entries[0].as_of)
        );
        assert_eq!(
            calendar.previous_as_of("E07000041", calendar.entries[0].as_of),
            None
        );
        assert_eq!(
            calendar.previous_as_of("E06000001", second),
            None,
            "per council"
        );
        // Due once the cut-off has settled.
        assert_eq!(calendar.due(second.0 + 119, 120).len(), 1);
        assert_eq!(calendar.due(second.0 + 120, 120).len(), 2);
    }

    #[test]
    fn bad_meetings_are_refused_with_where_they_are() {
        let late = Calendar::new(&[meeting("2026-08-01", "2026-08-20T17:00:00Z")]);
        assert!(late.is_err_and(|e| e.to_string().contains("after the meeting")));
        let bad_instant = Calendar::new(&[meeting("2026-09-10", "20 August")]);
        assert!(bad_instant.is_err_and(|e| e.to_string().contains("packs.calendar[0]")));
        let mut weekly = meeting("2026-09-10", "2026-08-20T17:00:00Z");
        weekly.period = "week".into();
        assert!(Calendar::new(&[weekly]).is_err());
        let mut council = meeting("2026-09-10", "2026-08-20T17:00:00Z");
        council.council = "X1".into();
        assert!(Calendar::new(&[council]).is_err());
    }
}
