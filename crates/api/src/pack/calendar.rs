//! The reporting calendar: which committee meets when, for which council,
//! and the data cut-off its pack is "as of". `packs-due` produces every pack
//! whose cut-off has passed and settled, into a folder; `pack` produces one.
//! Files are written under a temporary name and renamed, so a file that
//! exists is complete.

use super::{build, render, Format, Scope};
use crate::config::Meeting;
use crate::AppState;
use anyhow::{Context, Result};
use channelshift_contract::CouncilCode;
use channelshift_kpi::period::{local_date, Period, PeriodKind};
use channelshift_reports::scorecard::{report_period, REPORT_PERIODS};
use chrono::{DateTime, NaiveDate, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A meeting of the calendar, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub council: CouncilCode,
    pub committee: String,
    pub meets: NaiveDate,
    /// The data cut-off, as Unix seconds: the pack's as-of.
    pub as_of: i64,
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
                as_of,
                period,
            });
        }
        entries.sort_by_key(|entry| (entry.meets, entry.council.clone()));
        Ok(Self { entries })
    }

    /// The cut-off of the council's latest pack before `as_of`: what a pack
    /// as of `as_of` flags restatements against.
    pub fn previous_as_of(&self, council: &str, as_of: i64) -> Option<i64> {
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
            .filter(|entry| entry.as_of <= now - settle)
            .collect()
    }
}

/// What to produce: one pack, in some formats, into a folder.
pub struct Order<'a> {
    pub council: &'a CouncilCode,
    pub period: Period,
    pub as_of: i64,
    pub previous_as_of: Option<i64>,
    pub formats: &'a [Format],
    pub folder: &'a Path,
}

/// Writes `bytes` to `path` whole: under a temporary name, then renamed.
fn write_whole(path: &Path, bytes: &[u8]) -> Result<()> {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, bytes).with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, path).with_context(|| format!("renaming to {}", path.display()))
}

/// Produces one pack in each format; `progress` advances once per file.
pub async fn produce(
    state: &AppState,
    order: Order<'_>,
    progress: &ProgressBar,
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(order.folder)
        .with_context(|| format!("creating {}", order.folder.display()))?;
    let pack = build(
        &state.store,
        &state.policy,
        Scope {
            council: order.council,
            period: order.period,
            as_of: order.as_of,
            previous_as_of: order.previous_as_of,
        },
    )
    .await
    .map_err(|error| anyhow::anyhow!("computing the pack: {error:?}"))?;
    let mut written = Vec::new();
    for &format in order.formats {
        let path = order
            .folder
            .join(format!("{}{}", pack.file_stem(), format.suffix()));
        progress.set_message(format!("{} {}", pack.file_stem(), format.name()));
        let bytes = render(&pack, format, state)
            .await
            .map_err(|error| anyhow::anyhow!("rendering {}: {error:?}", format.name()))?;
        write_whole(&path, &bytes)?;
        written.push(path);
        progress.inc(1);
    }
    Ok(written)
}

/// A progress bar on a terminal; plain lines (one per pack) otherwise.
pub fn progress_bar(files: u64) -> ProgressBar {
    if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(files);
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:30} {pos}/{len} files, {elapsed} elapsed, ETA {eta}  {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    }
}

/// Every due pack not yet in `out` (all of them with `force`), in all formats.
pub async fn produce_due(
    state: &AppState,
    out: &Path,
    force: bool,
    formats: &[Format],
) -> Result<Vec<PathBuf>> {
    let due = state
        .calendar
        .due(Utc::now().timestamp(), state.policy.pack_settle_seconds);
    let todo: Vec<&Entry> = due
        .into_iter()
        .filter(|entry| {
            force
                || !formats.iter().all(|format| {
                    out.join(entry.folder())
                        .join(format!(
                            "{}{}",
                            super::file_stem(entry.council.as_str(), &entry.period),
                            format.suffix()
                        ))
                        .exists()
                })
        })
        .collect();
    let total = todo.len();
    eprintln!(
        "{total} pack(s) due and not yet produced in {} ({} format(s) each)",
        out.display(),
        formats.len()
    );
    let progress = progress_bar((total * formats.len()) as u64);
    let mut written = Vec::new();
    for (index, entry) in todo.into_iter().enumerate() {
        let started = Instant::now();
        let folder = out.join(entry.folder());
        let files = produce(
            state,
            Order {
                council: &entry.council,
                period: entry.period,
                as_of: entry.as_of,
                previous_as_of: state
                    .calendar
                    .previous_as_of(entry.council.as_str(), entry.as_of),
                formats,
                folder: &folder,
            },
            &progress,
        )
        .await
        .with_context(|| format!("the pack for {} on {}", entry.committee, entry.meets))?;
        let line = format!(
            "[{}/{total}] {} {} for {} on {}: {} file(s) in {:.1} s, {}",
            index + 1,
            entry.council,
            entry.period.label(),
            entry.committee,
            entry.meets,
            files.len(),
            started.elapsed().as_secs_f64(),
            folder.display()
        );
        if progress.is_hidden() {
            eprintln!("{line}");
        } else {
            progress.println(line);
        }
        written.extend(files);
    }
    progress.finish_and_clear();
    Ok(written)
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
        assert_eq!(calendar.due(second + 119, 120).len(), 1);
        assert_eq!(calendar.due(second + 120, 120).len(), 2);
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
