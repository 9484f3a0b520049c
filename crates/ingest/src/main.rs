//! `channelshift-ingest [--config ingest.toml]` runs the service;
//! `channelshift-ingest rebuild-rollups [--config ingest.toml]` recomputes the
//! rollups from the raw tables and exits (see `channelshift_store`'s `rebuild`);
//! `channelshift-ingest reconcile [--config ingest.toml] [--from-beginning]`
//! compares the topics with ClickHouse and exits 0 when they agree exactly
//! (see `channelshift_ingest::reconcile`).

use anyhow::{Context, Result};
use channelshift_ingest::config::IngestConfig;
use channelshift_ingest::reconcile::{self, ReconcileConfig, Span};
use channelshift_runtime::{config, shutdown, telemetry};
use channelshift_store::{ClickHouseConfig, Store};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
enum Command {
    /// Run the service (no subcommand).
    Serve,
    RebuildRollups,
    Reconcile(Span),
}

const USAGE: &str = "usage: channelshift-ingest [rebuild-rollups | reconcile [--from-beginning]] \
                     [--config <file.toml>]; settings may also come from CHANNELSHIFT_* variables";

fn parse_args(args: &[String]) -> Result<(Command, Option<PathBuf>)> {
    let (mut command, rest) = match args.split_first() {
        Some((first, rest)) if first == "rebuild-rollups" => (Command::RebuildRollups, rest),
        Some((first, rest)) if first == "reconcile" => (Command::Reconcile(Span::Recent), rest),
        _ => (Command::Serve, args),
    };
    let mut config = None;
    let mut rest = rest.iter();
    while let Some(arg) = rest.next() {
        match (arg.as_str(), &command) {
            ("--config", _) if config.is_none() => match rest.next() {
                Some(path) => config = Some(PathBuf::from(path)),
                None => anyhow::bail!(USAGE),
            },
            ("--from-beginning", Command::Reconcile(Span::Recent)) => {
                command = Command::Reconcile(Span::FromBeginning);
            }
            _ => anyhow::bail!(USAGE),
        }
    }
    Ok((command, config))
}

#[tokio::main]
async fn main() -> Result<()> {
    telemetry::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, config_file) = parse_args(&args)?;
    match command {
        Command::Serve => {
            let config: IngestConfig = config::load(config_file.as_deref())?;
            let (trigger, stop) = shutdown::channel();
            shutdown::on_signals(trigger);
            channelshift_ingest::run(config, stop).await
        }
        Command::RebuildRollups => rebuild_rollups(config_file.as_deref()).await,
        Command::Reconcile(span) => {
            let config: ReconcileConfig = config::load(config_file.as_deref())?;
            let report = reconcile::reconcile(&config, span).await?;
            println!("{report}");
            std::process::exit(report.exit_code());
        }
    }
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
        .rebuild_rollups(|step| println!("{step}"))
        .await
        .context("rebuilding the rollups")?;
    println!("{report}");
    println!(
        "ClickHouse deletes the replaced months within old_parts_lifetime (8 minutes by \
         default); if the server restarts before then, run rebuild-rollups again"
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
    fn reconcile_takes_the_config_and_from_beginning_in_either_order() {
        assert_eq!(
            parse(&["reconcile"]),
            Some((Command::Reconcile(Span::Recent), None))
        );
        assert_eq!(
            parse(&["reconcile", "--from-beginning", "--config", "i.toml"]),
            Some((
                Command::Reconcile(Span::FromBeginning),
                Some("i.toml".into())
            ))
        );
        assert_eq!(
            parse(&["reconcile", "--config", "i.toml", "--from-beginning"]),
            Some((
                Command::Reconcile(Span::FromBeginning),
                Some("i.toml".into())
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
