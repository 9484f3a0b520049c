//! Packs into a folder: `packs-due` produces every pack of the reporting
//! calendar whose cut-off has passed and settled; `pack` produces one.
//! Files are written under a temporary name and renamed, so a file that
//! exists is complete.

use crate::{build, render, Format, Packs, Scope};
use anyhow::{Context, Result};
use channelshift_contract::CouncilCode;
use channelshift_kpi::period::Period;
use channelshift_reports::calendar::Entry;
use channelshift_store::CutOff;
use chrono::Utc;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What to produce: one pack, in some formats, into a folder.
pub struct Order<'a> {
    pub council: &'a CouncilCode,
    pub period: Period,
    pub as_of: CutOff,
    pub previous_as_of: Option<CutOff>,
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
    packs: &Packs,
    order: Order<'_>,
    progress: &ProgressBar,
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(order.folder)
        .with_context(|| format!("creating {}", order.folder.display()))?;
    let policy = packs
        .councils
        .policy(order.council)
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    let pack = build(
        &packs.store,
        &policy,
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
        progress.set_message(format!("{} {}", pack.file_stem(), format.as_str()));
        let bytes = render(&pack, format, &packs.pdf)
            .await
            .map_err(|error| anyhow::anyhow!("rendering {}: {error:?}", format.as_str()))?;
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
    packs: &Packs,
    out: &Path,
    force: bool,
    formats: &[Format],
) -> Result<Vec<PathBuf>> {
    let due = packs.calendar.due(
        Utc::now().timestamp(),
        packs.councils.default_policy().pack_settle_seconds,
    );
    let todo: Vec<&Entry> = due
        .into_iter()
        .filter(|entry| {
            force
                || !formats.iter().all(|format| {
                    out.join(entry.folder())
                        .join(format!(
                            "{}{}",
                            crate::file_stem(entry.council.as_str(), &entry.period),
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
            packs,
            Order {
                council: &entry.council,
                period: entry.period,
                as_of: entry.as_of,
                previous_as_of: packs
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
