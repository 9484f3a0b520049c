//! `channelshift-packs pack --council <GSS> [--period quarter] [--date YYYY-MM-DD]
//! [--as-of <RFC 3339>] [--previous-as-of <RFC 3339>] [--format csv,xlsx,…|all]
//! [--out <folder>] [--config api.toml]` writes one committee pack.
//!
//! `channelshift-packs packs-due [--out <folder>] [--force] [--format …]
//! [--config api.toml]` writes every pack of the reporting calendar
//! (`packs.calendar`) whose data cut-off has passed, skipping those already
//! in the folder unless `--force`.
//!
//! `channelshift-packs render` reads one [`job::Job`] (JSON) on standard
//! input and writes the pack's file to standard output: the API runs it for
//! each pack it is asked for.
//!
//! It reads the API's configuration file: `[clickhouse]`, `[query]`, `[kpi]`
//! and `[packs]`.

use anyhow::{bail, Context, Result};
use channelshift_contract::CouncilCode;
use channelshift_kpi::period::{local_date, Period};
use channelshift_packs::{job, pdf, produce, settled_as_of, Format, Packs};
use channelshift_reports::calendar::{Calendar, PacksConfig};
use channelshift_reports::councils::CouncilBlocks;
use channelshift_reports::policy::KpiSettings;
use channelshift_reports::scorecard::{report_period, REPORT_PERIODS};
use channelshift_reports::Councils;
use channelshift_runtime::{config, telemetry};
use channelshift_store::{ClickHouseConfig, CutOff, QueryLimits, Store};
use chrono::{NaiveDate, Utc};
use clap::Parser;
use serde::Deserialize;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Committee packs: the reports' figures as CSV (with CSVW metadata), XLSX,
/// ODS, accessible HTML and PDF. Reads the API's configuration file
/// (`[clickhouse]`, `[kpi]`, `[packs]`), then CHANNELSHIFT_* variables.
#[derive(Debug, Parser)]
#[command(name = "channelshift-packs", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Write one pack and print the files written.
    Pack {
        /// GSS code of the council.
        #[arg(long, value_name = "GSS")]
        council: String,
        /// month, quarter or financial_year.
        #[arg(long, default_value = "quarter")]
        period: String,
        /// A day in the period (YYYY-MM-DD); today by default.
        #[arg(long, value_name = "YYYY-MM-DD")]
        date: Option<String>,
        /// The data cut-off (RFC 3339); the latest settled instant by default.
        #[arg(long, value_name = "RFC 3339")]
        as_of: Option<String>,
        /// The previous pack's cut-off, for restatements; the calendar's by default.
        #[arg(long, value_name = "RFC 3339")]
        previous_as_of: Option<String>,
        /// Comma list of csv, csvw, xlsx, ods, html, pdf, or all.
        #[arg(long, default_value = "all")]
        format: String,
        /// The folder the files go in.
        #[arg(long, default_value = ".")]
        out: PathBuf,
        #[command(flatten)]
        config: ConfigFile,
    },
    /// Write the pack of every meeting of the reporting calendar whose data
    /// cut-off has passed, skipping those already in the folder.
    PacksDue {
        #[arg(long, default_value = "packs")]
        out: PathBuf,
        /// Write them again even if they are there.
        #[arg(long)]
        force: bool,
        /// Comma list of csv, csvw, xlsx, ods, html, pdf, or all.
        #[arg(long, default_value = "all")]
        format: String,
        #[command(flatten)]
        config: ConfigFile,
    },
    /// Read one job (JSON) on standard input and write the pack's file to
    /// standard output: what the API runs for each pack it is asked for.
    Render,
}

#[derive(Debug, clap::Args)]
struct ConfigFile {
    /// The API's configuration file (TOML).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// The parts of the API's configuration file packs are made from.
#[derive(Clone, Debug, Deserialize)]
struct PacksFileConfig {
    clickhouse: ClickHouseConfig,
    #[serde(default)]
    query: QueryLimits,
    #[serde(default)]
    kpi: KpiSettings,
    #[serde(default)]
    councils: CouncilBlocks,
    #[serde(default)]
    packs: PacksConfig,
}

fn formats(value: &str) -> Result<Vec<Format>> {
    match value {
        "all" => Ok(Format::ALL.to_vec()),
        list => list
            .split(',')
            .map(|name| {
                name.trim().parse::<Format>().ok().with_context(|| {
                    format!("--format {name:?}: one of csv, csvw, xlsx, ods, html, pdf, all")
                })
            })
            .collect(),
    }
}

async fn packs(config: &PacksFileConfig) -> Result<Packs> {
    let councils = Councils::new(&config.kpi, &config.councils)?;
    let calendar = Calendar::new(&config.packs.calendar)?;
    councils.check_calendar(&calendar)?;
    Ok(Packs {
        store: Store::connect(&config.clickhouse)
            .await?
            .limited(&config.query),
        councils,
        calendar,
        pdf: pdf::PdfSettings::new(&config.packs),
    })
}

fn instant(value: Option<&String>, name: &str) -> Result<Option<i64>> {
    value
        .map(|text| {
            chrono::DateTime::parse_from_rfc3339(text)
                .map(|at| at.timestamp())
                .with_context(|| {
                    format!("--{name} {text:?}: an RFC 3339 instant, e.g. 2026-10-05T09:00:00Z")
                })
        })
        .transpose()
}

/// One pack, as `pack` asks for it.
struct PackOrder {
    council: String,
    period: String,
    date: Option<String>,
    as_of: Option<String>,
    previous_as_of: Option<String>,
    format: String,
    out: PathBuf,
}

async fn one_pack(config: &PacksFileConfig, order: PackOrder) -> Result<()> {
    let packs = packs(config).await?;
    let council = CouncilCode::parse(&order.council)
        .with_context(|| format!("--council {:?}: {}", order.council, CouncilCode::RULE))?;
    let period_name = order.period.as_str();
    let kind = report_period(period_name)
        .with_context(|| format!("--period {period_name:?}: {REPORT_PERIODS}"))?;
    let date = match &order.date {
        Some(text) => NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .with_context(|| format!("--date {text:?}: YYYY-MM-DD"))?,
        None => local_date(Utc::now()),
    };
    let period = Period::containing(kind, date)?;
    let as_of = settled_as_of(
        instant(order.as_of.as_ref(), "as-of")?,
        packs.councils.default_policy().pack_settle_seconds,
    )
    .map_err(|error| anyhow::anyhow!("--as-of: {error:?}"))?;
    let previous_as_of = match instant(order.previous_as_of.as_ref(), "previous-as-of")? {
        Some(at) => Some(CutOff(at)),
        None => packs.calendar.previous_as_of(council.as_str(), as_of),
    };
    let formats = formats(&order.format)?;
    let folder = order.out;
    let started = Instant::now();
    let progress = produce::progress_bar(formats.len() as u64);
    let files = produce::produce(
        &packs,
        produce::Order {
            council: &council,
            period,
            as_of,
            previous_as_of,
            formats: &formats,
            folder: &folder,
        },
        &progress,
    )
    .await?;
    progress.finish_and_clear();
    for file in &files {
        println!("{}", file.display());
    }
    eprintln!(
        "{} file(s) for {council} {} as of {} in {:.1} s",
        files.len(),
        period.label(),
        as_of,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn packs_due(config: &PacksFileConfig, out: &Path, force: bool, format: &str) -> Result<()> {
    let packs = packs(config).await?;
    if packs.calendar.entries.is_empty() {
        bail!("no reporting calendar: add [[packs.calendar]] meetings to the configuration");
    }
    let formats = formats(format)?;
    let files = produce::produce_due(&packs, out, force, &formats).await?;
    for file in &files {
        println!("{}", file.display());
    }
    Ok(())
}

/// The API's child: one job in, one file out, or a [`job::Failure`] on the
/// last line of standard error and exit status 2.
async fn render() -> Result<()> {
    let mut input = Vec::new();
    std::io::stdin()
        .read_to_end(&mut input)
        .context("reading the job")?;
    let outcome = match serde_json::from_slice::<job::Job>(&input) {
        Ok(job) => job::run(job).await,
        Err(error) => Err(job::Failure::Internal {
            message: format!("the job is not valid JSON: {error}"),
        }),
    };
    match outcome {
        Ok(bytes) => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(&bytes)?;
            stdout.flush()?;
            Ok(())
        }
        Err(failure) => {
            eprintln!("{}", serde_json::to_string(&failure)?);
            std::process::exit(2);
        }
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    // Standard output is the list of files written (or the rendered file).
    telemetry::init_to_stderr();
    let load =
        |file: &ConfigFile| -> Result<PacksFileConfig> { config::load(file.config.as_deref()) };
    match cli.command {
        Command::Render => render().await,
        Command::Pack {
            council,
            period,
            date,
            as_of,
            previous_as_of,
            format,
            out,
            config,
        } => {
            let order = PackOrder {
                council,
                period,
                date,
                as_of,
                previous_as_of,
                format,
                out,
            };
            one_pack(&load(&config)?, order).await
        }
        Command::PacksDue {
            out,
            force,
            format,
            config,
        } => packs_due(&load(&config)?, &out, force, &format).await,
    }
}
