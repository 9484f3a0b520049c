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
//! It reads the API's configuration file: `[clickhouse]`, `[kpi]` and `[packs]`.

use anyhow::{bail, Context, Result};
use channelshift_contract::CouncilCode;
use channelshift_kpi::period::{local_date, Period};
use channelshift_packs::{job, pdf, produce, settled_as_of, Format, Packs};
use channelshift_reports::calendar::{Calendar, PacksConfig};
use channelshift_reports::policy::KpiSettings;
use channelshift_reports::scorecard::{report_period, REPORT_PERIODS};
use channelshift_reports::Policy;
use channelshift_runtime::{config, telemetry};
use channelshift_store::{ClickHouseConfig, CutOff, Store};
use chrono::{NaiveDate, Utc};
use serde::Deserialize;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Instant;

const USAGE: &str = "usage:
  channelshift-packs pack --council <GSS code> [--period month|quarter|financial_year] [--date YYYY-MM-DD]
                          [--as-of <RFC 3339>] [--previous-as-of <RFC 3339>] [--format csv,csvw,xlsx,ods,html,pdf|all]
                          [--out <folder>] [--config <file.toml>]
  channelshift-packs packs-due [--out <folder>] [--force] [--format …|all] [--config <file.toml>]
  channelshift-packs render   (one JSON job on standard input, the file on standard output)
settings may also come from CHANNELSHIFT_* variables";

/// The parts of the API's configuration file packs are made from.
#[derive(Clone, Debug, Deserialize)]
struct PacksFileConfig {
    clickhouse: ClickHouseConfig,
    #[serde(default)]
    kpi: KpiSettings,
    #[serde(default)]
    packs: PacksConfig,
}

/// `--name value` options and `--flag` switches after the subcommand.
fn options(args: &[String], flags: &[&str]) -> Result<HashMap<String, String>> {
    let mut options = HashMap::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let Some(name) = arg.strip_prefix("--") else {
            bail!("unexpected argument {arg:?}\n{USAGE}");
        };
        let value = if flags.contains(&name) {
            String::new()
        } else {
            args.next()
                .with_context(|| format!("--{name} needs a value\n{USAGE}"))?
                .clone()
        };
        if options.insert(name.to_string(), value).is_some() {
            bail!("--{name} is given twice");
        }
    }
    Ok(options)
}

fn formats(value: Option<&String>) -> Result<Vec<Format>> {
    match value.map(String::as_str) {
        None | Some("all") => Ok(Format::ALL.to_vec()),
        Some(list) => list
            .split(',')
            .map(|name| {
                Format::parse(name.trim()).with_context(|| {
                    format!("--format {name:?}: one of csv, csvw, xlsx, ods, html, pdf, all")
                })
            })
            .collect(),
    }
}

async fn packs(config: &PacksFileConfig) -> Result<Packs> {
    Ok(Packs {
        store: Store::connect(&config.clickhouse).await?,
        policy: Policy::new(&config.kpi)?,
        calendar: Calendar::new(&config.packs.calendar)?,
        pdf: pdf::PdfSettings::new(&config.packs),
    })
}

fn instant(options: &HashMap<String, String>, name: &str) -> Result<Option<i64>> {
    options
        .get(name)
        .map(|text| {
            chrono::DateTime::parse_from_rfc3339(text)
                .map(|at| at.timestamp())
                .with_context(|| {
                    format!("--{name} {text:?}: an RFC 3339 instant, e.g. 2026-10-05T09:00:00Z")
                })
        })
        .transpose()
}

async fn one_pack(config: &PacksFileConfig, options: &HashMap<String, String>) -> Result<()> {
    let packs = packs(config).await?;
    let council = options.get("council").context("--council is required")?;
    let council = CouncilCode::parse(council)
        .with_context(|| format!("--council {council:?}: {}", CouncilCode::RULE))?;
    let period_name = options.get("period").map_or("quarter", String::as_str);
    let kind = report_period(period_name)
        .with_context(|| format!("--period {period_name:?}: {REPORT_PERIODS}"))?;
    let date = match options.get("date") {
        Some(text) => NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .with_context(|| format!("--date {text:?}: YYYY-MM-DD"))?,
        None => local_date(Utc::now()),
    };
    let period = Period::containing(kind, date)?;
    let as_of = settled_as_of(instant(options, "as-of")?, packs.policy.pack_settle_seconds)
        .map_err(|error| anyhow::anyhow!("--as-of: {error:?}"))?;
    let previous_as_of = match instant(options, "previous-as-of")? {
        Some(at) => Some(CutOff(at)),
        None => packs.calendar.previous_as_of(council.as_str(), as_of),
    };
    let formats = formats(options.get("format"))?;
    let folder = PathBuf::from(options.get("out").map_or(".", String::as_str));
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

async fn packs_due(config: &PacksFileConfig, options: &HashMap<String, String>) -> Result<()> {
    let packs = packs(config).await?;
    if packs.calendar.entries.is_empty() {
        bail!("no reporting calendar: add [[packs.calendar]] meetings to the configuration");
    }
    let out = PathBuf::from(options.get("out").map_or("packs", String::as_str));
    let formats = formats(options.get("format"))?;
    let files = produce::produce_due(&packs, &out, options.contains_key("force"), &formats).await?;
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
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        bail!("{USAGE}");
    };
    // Standard output is the list of files written (or the rendered file).
    telemetry::init_to_stderr();
    if command == "render" {
        if !rest.is_empty() {
            bail!("render takes no arguments\n{USAGE}");
        }
        return render().await;
    }
    let options = options(rest, &["force"])?;
    let allowed: &[&str] = match command.as_str() {
        "pack" => &[
            "council",
            "period",
            "date",
            "as-of",
            "previous-as-of",
            "format",
            "out",
            "config",
        ],
        "packs-due" => &["out", "force", "format", "config"],
        other => bail!("unknown command {other:?}\n{USAGE}"),
    };
    if let Some(unknown) = options
        .keys()
        .find(|name| !allowed.contains(&name.as_str()))
    {
        bail!("--{unknown} is not an option of {command}\n{USAGE}");
    }
    let config: PacksFileConfig =
        config::load(options.get("config").map(PathBuf::from).as_deref())?;
    match command.as_str() {
        "pack" => one_pack(&config, &options).await,
        _ => packs_due(&config, &options).await,
    }
}
