//! `channelshift-api [--config api.toml]` serves the API. Committee packs are
//! written by `channelshift-packs` (which the API also runs to render a pack
//! it is asked for).

use anyhow::Result;
use channelshift_api::config::ApiConfig;
use channelshift_runtime::{config, shutdown, telemetry};
use clap::Parser;
use std::path::PathBuf;

/// The KPI API. Settings come from the file given with --config, then
/// CHANNELSHIFT_* variables. Committee packs from the command line:
/// channelshift-packs.
#[derive(Debug, Parser)]
#[command(name = "channelshift-api", version)]
struct Cli {
    /// The configuration file (TOML).
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Writes each configured council's KPI definitions (channel classes,
    /// unit costs, targets, thresholds, names) to ClickHouse, where the
    /// dashboards read them; run after changing them, as a ClickHouse user
    /// that may write (e.g. CHANNELSHIFT_CLICKHOUSE__USER and __PASSWORD).
    PublishDefinitions,
    /// Judges each council's settled days of first-contact resolution not
    /// yet stored (or whose contacts have changed since) and stores them in
    /// ClickHouse, so that packs and a restarted API read them instead of
    /// judging every journey again. Run it nightly, as a ClickHouse user
    /// that may write, as publish-definitions does.
    SettleJourneys,
    /// Forecasts each council's headline KPIs to the financial year's end
    /// from its monthly history (with 80% and 95% intervals and a
    /// backtest) and stores them in ClickHouse, where the scorecard, packs
    /// and dashboards read them. Run it nightly, as a ClickHouse user that
    /// may write, as publish-definitions does.
    Forecast {
        /// The history's last month, YYYY-MM; by default the last whole
        /// month before today (Europe/London).
        #[arg(long, value_name = "YYYY-MM")]
        month: Option<String>,
    },
    /// Loads the council's Index of Multiple Deprivation lookup, a CSV of
    /// LSOA code and decile (1 most deprived to 10; a header row is
    /// allowed), so hot spots by LSOA carry each area's decile. A file with
    /// a bad row loads nothing; a later load replaces an LSOA's decile.
    /// Needs a ClickHouse user that may write, as publish-definitions does.
    LoadImd {
        /// The CSV file.
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    telemetry::init();
    let config: ApiConfig = config::load(cli.config.as_deref())?;
    match cli.command {
        Some(Command::PublishDefinitions) => {
            let generation = channelshift_api::publish_definitions(&config).await?;
            println!("published the KPI definitions as generation {generation}");
            return Ok(());
        }
        Some(Command::SettleJourneys) => {
            let started = std::time::Instant::now();
            let judged_at = chrono::Utc::now().timestamp();
            let reports =
                channelshift_api::settle_journeys(&config, judged_at, |council, month, days| {
                    println!(
                        "{council} {}: judged {days} settled days",
                        month.format("%Y-%m")
                    );
                })
                .await?;
            for (council, report) in reports {
                println!(
                    "{council}: {} settled days with contacts, {} judged and stored now ({} journeys), the rest already stored",
                    report.days, report.judged, report.journeys
                );
            }
            println!(
                "settled the journeys in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        Some(Command::Forecast { month }) => {
            let started = std::time::Instant::now();
            let history_to = match month {
                Some(text) => chrono::NaiveDate::parse_from_str(&format!("{text}-01"), "%Y-%m-%d")
                    .map_err(|_| anyhow::anyhow!("--month: expected YYYY-MM, got {text:?}"))?,
                None => channelshift_reports::forecast::last_whole_month(
                    channelshift_kpi::period::local_date(chrono::Utc::now())
                        .pred_opt()
                        .unwrap_or_default(),
                ),
            };
            let made =
                channelshift_api::forecast(&config, history_to, chrono::Utc::now().timestamp())
                    .await?;
            for (council, forecasts) in made {
                for kpi in channelshift_reports::forecast::FORECAST_KPIS {
                    let line = match channelshift_reports::forecast::of_kpi(&forecasts, kpi) {
                        Ok(f) => {
                            let shown = |value: f64| match kpi.spec().unit {
                                channelshift_kpi::catalogue::Unit::Gbp if value.abs() >= 100.0 => {
                                    format!("£{value:.0}")
                                }
                                channelshift_kpi::catalogue::Unit::Gbp => format!("£{value:.2}"),
                                _ => format!("{value:.1}"),
                            };
                            format!(
                                "{} (95% range {} to {}; backtest error {} over {} months)",
                                shown(f.value),
                                shown(f.low95),
                                shown(f.high95),
                                shown(f.backtest_mae),
                                f.backtests
                            )
                        }
                        Err(why) => why,
                    };
                    println!(
                        "{council} {kpi} at {} from history to {}: {line}",
                        forecasts.year_end,
                        forecasts.history_to.format("%Y-%m")
                    );
                }
            }
            println!(
                "forecast the year end in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        Some(Command::LoadImd { file }) => {
            let loaded = channelshift_api::load_imd(&config, &file).await?;
            println!(
                "loaded the IMD decile of {loaded} LSOAs from {}",
                file.display()
            );
            return Ok(());
        }
        None => {}
    }
    let (trigger, stop) = shutdown::channel();
    shutdown::on_signals(trigger);
    channelshift_api::run(config, stop).await
}
