//! `channelshift-api [--config api.toml]` serves the API.
//!
//! `channelshift-api pack --council <GSS> [--period quarter] [--date YYYY-MM-DD]
//! [--as-of <RFC 3339>] [--previous-as-of <RFC 3339>] [--format csv,xlsx,…|all]
//! [--out <folder>] [--config api.toml]` writes one committee pack.
//!
//! `channelshift-api packs-due [--out <folder>] [--force] [--format …]
//! [--config api.toml]` writes every pack of the reporting calendar
//! (`packs.calendar`) whose data cut-off has passed, skipping those already
//! in the folder unless `--force`.

use anyhow::{bail, Context, Result};
use channelshift_api::config::ApiConfig;
use channelshift_api::pack::{self, calendar, Format};
use channelshift_api::AppState;
use channelshift_contract::CouncilCode;
use channelshift_kpi::period::{local_date, Period};
use channelshift_reports::scorecard;
use channelshift_runtime::{config, shutdown, telemetry};
use channelshift_store::Store;
use chrono::{NaiveDate, Utc};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

const USAGE: &str = "usage:
  channelshift-api [--config <file.toml>]
  channelshift-api pack --council <GSS code> [--period month|quarter|financial_year] [--date YYYY-MM-DD]
                        [--as-of <RFC 3339>] [--previous-as-of <RFC 3339>] [--format csv,csvw,xlsx,ods,html,pdf|all]
                        [--out <folder>] [--config <file.toml>]
  channelshift-api packs-due [--out <folder>] [--force] [--format …|all] [--config <file.toml>]
settings may also come from CHANNELSHIFT_* variables";

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

async fn state(config: &ApiConfig) -> Result<AppState> {
    let store = Store::connect(&config.clickhouse).await?;
    AppState::new(config, store)
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

async fn one_pack(config: &ApiConfig, options: &HashMap<String, String>) -> Result<()> {
    let state = state(config).await?;
    let council = options.get("council").context("--council is required")?;
    let council = CouncilCode::parse(council)
        .with_context(|| format!("--council {council:?}: {}", CouncilCode::RULE))?;
    let period_name = options.get("period").map_or("quarter", String::as_str);
    let kind = scorecard::report_period(period_name)
        .with_context(|| format!("--period {period_name:?}: {}", scorecard::REPORT_PERIODS))?;
    let date = match options.get("date") {
        Some(text) => NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .with_context(|| format!("--date {text:?}: YYYY-MM-DD"))?,
        None => local_date(Utc::now()),
    };
    let period = Period::containing(kind, date)?;
    let as_of = pack::settled_as_of(instant(options, "as-of")?, state.policy.pack_settle_seconds)
        .map_err(|error| anyhow::anyhow!("--as-of: {error:?}"))?;
    let previous_as_of = match instant(options, "previous-as-of")? {
        Some(at) => Some(at),
        None => state.calendar.previous_as_of(council.as_str(), as_of),
    };
    let formats = formats(options.get("format"))?;
    let folder = PathBuf::from(options.get("out").map_or(".", String::as_str));
    let started = Instant::now();
    let progress = calendar::progress_bar(formats.len() as u64);
    let files = calendar::produce(
        &state,
        calendar::Order {
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
        pack::instant_text(as_of),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn packs_due(config: &ApiConfig, options: &HashMap<String, String>) -> Result<()> {
    let state = state(config).await?;
    if state.calendar.entries.is_empty() {
        bail!("no reporting calendar: add [[packs.calendar]] meetings to the configuration");
    }
    let out = PathBuf::from(options.get("out").map_or("packs", String::as_str));
    let formats = formats(options.get("format"))?;
    let files =
        calendar::produce_due(&state, &out, options.contains_key("force"), &formats).await?;
    for file in &files {
        println!("{}", file.display());
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, rest) = match args.split_first() {
        Some((first, rest)) if first == "pack" || first == "packs-due" => (first.as_str(), rest),
        _ => ("serve", args.as_slice()),
    };
    // A command's standard output is the list of files it wrote.
    if command == "serve" {
        telemetry::init();
    } else {
        telemetry::init_to_stderr();
    }
    let options = options(rest, &["force"])?;
    let allowed: &[&str] = match command {
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
        _ => &["config"],
    };
    if let Some(unknown) = options
        .keys()
        .find(|name| !allowed.contains(&name.as_str()))
    {
        bail!("--{unknown} is not an option of {command}\n{USAGE}");
    }
    let config: ApiConfig = config::load(options.get("config").map(PathBuf::from).as_deref())?;
    match command {
        "pack" => one_pack(&config, &options).await,
        "packs-due" => packs_due(&config, &options).await,
        _ => {
            let (trigger, stop) = shutdown::channel();
            shutdown::on_signals(trigger);
            channelshift_api::run(config, stop).await
        }
    }
}
