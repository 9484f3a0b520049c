//! `channelshift-ingest [--config ingest.toml]` runs the service;
//! `channelshift-ingest rebuild-rollups [--config ingest.toml]` recomputes the
//! rollups from the raw tables and exits (see `channelshift_store`'s `rebuild`);
//! `channelshift-ingest reconcile [--config ingest.toml] [--from-beginning]
//! [--metrics-file FILE]` compares the topics with ClickHouse and exits 0 when
//! they agree exactly (see `channelshift_ingest::reconcile`); run on a
//! schedule, it leaves its findings in FILE for Prometheus (node exporter's
//! textfile collector), which alerts on duplicates;
//! `channelshift-ingest purge-raw [--config ingest.toml]` drops raw months
//! older than `retention.raw_months` (see `channelshift_ingest::retention`).

use anyhow::{Context, Result};
use channelshift_ingest::config::IngestConfig;
use channelshift_ingest::rebuild::{ReportLine, StepLine};
use channelshift_ingest::reconcile::{self, ReconcileConfig, Span};
use channelshift_runtime::{config, shutdown, telemetry};
use channelshift_store::{ClickHouseConfig, Store};
use clap::Parser;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
enum Command {
    /// Run the service (no subcommand).
    Serve,
    RebuildRollups,
    Reconcile(Span, Option<PathBuf>),
    PurgeRaw,
}

/// The ingest service: Kafka → validation → ClickHouse, with dead letters.
/// Settings come from the file given with --config, then CHANNELSHIFT_*
/// variables.
#[derive(Debug, Parser)]
#[command(
    name = "channelshift-ingest",
    version,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Subcommand>,
    #[command(flatten)]
    config: ConfigFile,
}

#[derive(Debug, clap::Args)]
struct ConfigFile {
    /// The configuration file (TOML).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
enum Subcommand {
    /// Recompute every rollup from the raw tables, one month at a time, and exit.
    RebuildRollups(ConfigFile),
    /// Drop the raw rows older than `retention.raw_months` whole months, and exit.
    PurgeRaw(ConfigFile),
    /// Check that every message on the topics is stored or dead-lettered
    /// exactly once; exit 0 when exact, 2 on a discrepancy, 3 when only
    /// messages are pending.
    Reconcile {
        #[command(flatten)]
        config: ConfigFile,
        /// Cover everything the broker still holds, not only the latest
        /// messages of each partition.
        #[arg(long)]
        from_beginning: bool,
        /// Also write the findings as Prometheus metrics to this file
        /// (replaced whole, so a collector never reads half of it).
        #[arg(long, value_name = "FILE")]
        metrics_file: Option<PathBuf>,
    },
}

fn parse_args(args: &[String]) -> Result<(Command, Option<PathBuf>), clap::Error> {
    let cli = Cli::try_parse_from(
        std::iter::once("channelshift-ingest").chain(args.iter().map(String::as_str)),
    )?;
    Ok(match cli.command {
        None => (Command::Serve, cli.config.config),
        Some(Subcommand::RebuildRollups(file)) => (Command::RebuildRollups, file.config),
        Some(Subcommand::PurgeRaw(file)) => (Command::PurgeRaw, file.config),
        Some(Subcommand::Reconcile {
            config,
            from_beginning,
            metrics_file,
        }) => {
            let span = if from_beginning {
                Span::FromBeginning
            } else {
                Span::Recent
            };
            (Command::Reconcile(span, metrics_file), config.config)
        }
    })
}

#[tokio::main]
async fn main() -> Result<()> {
    telemetry::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, config_file) = parse_args(&args).unwrap_or_else(|error| error.exit());
    match command {
        Command::Serve => {
            let config: IngestConfig = config::load(config_file.as_deref())?;
            let (trigger, stop) = shutdown::channel();
            shutdown::on_signals(trigger);
            channelshift_ingest::run(config, stop).await
        }
        Command::RebuildRollups => rebuild_rollups(config_file.as_deref()).await,
        Command::PurgeRaw => purge_raw(config_file.as_deref()).await,
        Command::Reconcile(span, metrics_file) => {
            let config: ReconcileConfig = config::load(config_file.as_deref())?;
            let report = reconcile::reconcile(&config, span).await?;
            println!("{report}");
            if let Some(path) = metrics_file {
                let text = report.prometheus_text(chrono::Utc::now().timestamp());
                write_whole(&path, &text)
                    .with_context(|| format!("writing the metrics to {}", path.display()))?;
            }
            std::process::exit(report.exit_code());
        }
    }
}

/// Writes `text` beside `path`, then renames it over `path`.
fn write_whole(path: &Path, text: &str) -> std::io::Result<()> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    std::fs::write(&partial, text)?;
    std::fs::rename(&partial, path)
}

/// The part of ingest's configuration the rebuild needs: the same file and
/// variables serve, and the Kafka and privacy settings need not be set.
#[derive(Deserialize)]
struct RebuildConfig {
    clickhouse: ClickHouseConfig,
}

async fn rebuild_rollups(config_file: Option<&Path>) -> Result<()> {
    let config: RebuildConfig = config::load(config_file)?;
    let store = Store::connect(&config.clickhouse)
        .await
        .context("connecting to ClickHouse")?;
    // A rollup added by a migration this database has not had yet is created
    // first, so that the rebuild fills it.
    store.migrate().await.context("applying migrations")?;
    let report = store
        .rebuild_rollups(|step| println!("{}", StepLine(step)))
        .await
        .context("rebuilding the rollups")?;
    println!("{}", ReportLine(&report));
    println!(
        "ClickHouse deletes the replaced months within old_parts_lifetime (8 minutes by \
         default); if the server restarts before then, run rebuild-rollups again"
    );
    Ok(())
}

/// The part of ingest's configuration the purge needs.
#[derive(Deserialize)]
struct PurgeConfig {
    clickhouse: ClickHouseConfig,
    #[serde(default)]
    retention: channelshift_ingest::retention::RetentionConfig,
}

async fn purge_raw(config_file: Option<&Path>) -> Result<()> {
    let config: PurgeConfig = config::load(config_file)?;
    let raw_months = config.retention.raw_months.context(
        "retention.raw_months is not set: raw rows are kept for good, and there is nothing to purge",
    )?;
    let store = Store::connect(&config.clickhouse)
        .await
        .context("connecting to ClickHouse")?;
    store.migrate().await.context("applying migrations")?;
    let today = chrono::Utc::now().date_naive();
    let dropped = channelshift_ingest::retention::purge_raw(&store, raw_months, today).await?;
    for (record, month) in &dropped {
        println!("dropped {month} from {}", record.table());
    }
    println!(
        "raw rows kept from {} ({raw_months} whole months before this one); {} months dropped",
        channelshift_ingest::retention::first_kept(today, raw_months),
        dropped.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Option<(Command, Option<PathBuf>)> {
        let args: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
        parse_args(&args).ok()
    }

    #[test]
    fn without_a_subcommand_the_service_runs_as_before() {
        assert_eq!(parse(&[]), Some((Command::Serve, None)));
        assert_eq!(
            parse(&["--config", "ingest.toml"]),
            Some((Command::Serve, Some("ingest.toml".into())))
        );
    }

    #[test]
    fn rebuild_rollups_takes_the_same_config_flag() {
        assert_eq!(
            parse(&["rebuild-rollups"]),
            Some((Command::RebuildRollups, None))
        );
        assert_eq!(
            parse(&["rebuild-rollups", "--config", "ingest.toml"]),
            Some((Command::RebuildRollups, Some("ingest.toml".into())))
        );
    }

    #[test]
    fn purge_raw_takes_the_same_config_flag() {
        assert_eq!(
            parse(&["purge-raw", "--config", "i.toml"]),
            Some((Command::PurgeRaw, Some("i.toml".into())))
        );
    }

    #[test]
    fn reconcile_takes_the_config_and_from_beginning_in_either_order() {
        assert_eq!(
            parse(&["reconcile"]),
            Some((Command::Reconcile(Span::Recent, None), None))
        );
        assert_eq!(
            parse(&["reconcile", "--from-beginning", "--config", "i.toml"]),
            Some((
                Command::Reconcile(Span::FromBeginning, None),
                Some("i.toml".into())
            ))
        );
        assert_eq!(
            parse(&["reconcile", "--config", "i.toml", "--from-beginning"]),
            Some((
                Command::Reconcile(Span::FromBeginning, None),
                Some("i.toml".into())
            ))
        );
        assert_eq!(
            parse(&["reconcile", "--metrics-file", "r.prom"]),
            Some((
                Command::Reconcile(Span::Recent, Some("r.prom".into())),
                None
            ))
        );
        assert_eq!(
            parse(&["reconcile", "--from-beginning", "--from-beginning"]),
            None
        );
        assert_eq!(parse(&["--from-beginning"]), None);
        assert_eq!(parse(&["rebuild-rollups", "--from-beginning"]), None);
    }

    #[test]
    fn anything_else_is_refused() {
        assert_eq!(parse(&["rebuild"]), None);
        assert_eq!(parse(&["--config"]), None);
        assert_eq!(parse(&["--config", "a.toml", "rebuild-rollups"]), None);
        assert_eq!(parse(&["rebuild-rollups", "--config"]), None);
        assert_eq!(parse(&["--config", "a.toml", "--config", "b.toml"]), None);
    }
}
