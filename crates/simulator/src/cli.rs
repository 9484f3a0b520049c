//! The command line: which mode, which scenario with which overrides, where to send.

use anyhow::{bail, Context, Result};
use channelshift_kafka::KafkaSecurity;
use channelshift_simulator::Scenario;
use chrono::NaiveDate;
use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;

/// Synthetic council contacts and satisfaction responses, produced to
/// Kafka, deterministic per seed.
#[derive(Debug, Parser)]
#[command(name = "channelshift-sim", version)]
pub struct Cli {
    #[command(subcommand)]
    mode: ModeArgs,
}

#[derive(Debug, clap::Subcommand)]
enum ModeArgs {
    /// Produce the scenario's whole period as fast as the broker takes it,
    /// then print the truth; with --api, wait until the KPI API agrees
    /// (digital take-up of the first council) and print it by quarter.
    Backfill {
        #[command(flatten)]
        common: Common,
        /// The KPI API to check against (with --token).
        #[arg(long, value_name = "URL", requires = "token")]
        api: Option<String>,
        /// The API's bearer token (with --api).
        #[arg(long, requires = "api")]
        token: Option<String>,
        /// Generate and count, send nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Produce N contact events a second, stamped with the current time,
    /// until SIGINT/SIGTERM or --duration; the sequence follows the seed.
    Live {
        #[command(flatten)]
        common: Common,
        /// Contact events per second.
        #[arg(long, default_value_t = 10.0)]
        rate: f64,
        /// Stop after this many seconds (default: until a signal).
        #[arg(long, value_name = "SECONDS")]
        duration: Option<f64>,
    },
}

/// The scenario (default: the built-in district council,
/// scenarios/district.toml), its faults, Kafka and output.
#[derive(Debug, clap::Args)]
struct Common {
    /// A scenario TOML file (one or more councils).
    #[arg(long, value_name = "FILE")]
    scenario: Option<PathBuf>,
    /// Only this council of the scenario, or its first council under this code.
    #[arg(long, value_name = "GSS")]
    council: Option<String>,
    /// Random seed (default: the scenario's).
    #[arg(long)]
    seed: Option<u64>,
    /// Contacts over the whole period, all councils (default:
    /// contacts_per_year, pro rata).
    #[arg(long)]
    contacts: Option<u64>,
    /// Months simulated (default: the scenario's).
    #[arg(long)]
    months: Option<u32>,
    /// Last local day simulated (default: the scenario's, else yesterday).
    #[arg(long, value_name = "YYYY-MM-DD")]
    end: Option<String>,
    /// Extra bad messages, as a fraction 0-1 of the valid ones (malformed
    /// JSON, unknown channel, missing field, future timestamp, wrong type,
    /// ... in turn), counted apart in the truth.
    #[arg(long, value_name = "R")]
    bad_rate: Option<f64>,
    /// The mean hours before a repeat contact of a journey (default: the
    /// scenario's, 30 for the district): above a week, many repeats fall
    /// outside first-contact resolution's 7-day window.
    #[arg(long, value_name = "HOURS")]
    pub repeat_delay_hours: Option<f64>,
    /// No contacts on these local days, both inclusive: a period with no data.
    #[arg(long, value_name = "YYYY-MM-DD:YYYY-MM-DD")]
    pub quiet_days: Option<String>,
    /// The share 0-1 of journeys sent without a journey_id (first-contact
    /// resolution cannot measure them).
    #[arg(long, value_name = "R")]
    pub unlinked_share: Option<f64>,
    /// At most N contacts of service SLUG in each local month, so a
    /// breakdown by service has one small cell; repeatable.
    #[arg(long, value_name = "SLUG=N")]
    pub cap_service: Vec<String>,
    /// Fraction 0-1 of valid messages sent again with the same id a little later.
    #[arg(long, value_name = "R")]
    duplicate_rate: Option<f64>,
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:9092")]
    brokers: String,
    /// A TOML file whose `[kafka.security]` section (TLS, SASL) is used as
    /// ingest uses its own; `CHANNELSHIFT_KAFKA__SECURITY__*` variables
    /// override it (give the password that way). Plaintext without either.
    #[arg(long, value_name = "FILE")]
    kafka_config: Option<PathBuf>,
    #[arg(long, default_value = "contact-events")]
    contact_topic: String,
    #[arg(long, default_value = "satisfaction-responses")]
    satisfaction_topic: String,
    /// Write the whole truth (per council, service, channel, month, ward,
    /// instrument) as JSON.
    #[arg(long, value_name = "FILE")]
    truth: Option<PathBuf>,
    /// Print only errors (for running in the background).
    #[arg(long)]
    quiet: bool,
    /// Print the truth's summary (per council: channels, services, totals)
    /// as JSON at the end; by default one line of totals (the whole truth
    /// goes to a file with --truth).
    #[arg(long)]
    print_truth: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Backfill,
    Live,
}

pub struct Options {
    pub mode: Mode,
    pub scenario: Scenario,
    pub brokers: String,
    pub kafka_security: KafkaSecurity,
    pub contact_topic: String,
    pub satisfaction_topic: String,
    pub api: Option<(String, String)>,
    pub truth_file: Option<PathBuf>,
    pub quiet: bool,
    /// Print the truth's JSON summary at the end.
    pub print_truth: bool,
    pub dry_run: bool,
    /// Live: contact events per second.
    pub rate: f64,
    /// Live: stop after this long.
    pub duration: Option<Duration>,
}

/// The options of a parsed command line, checked.
pub fn options(cli: Cli) -> Result<Options> {
    let (mode, common, api, dry_run, rate, duration) = match cli.mode {
        ModeArgs::Backfill {
            common,
            api,
            token,
            dry_run,
        } => (Mode::Backfill, common, api.zip(token), dry_run, 10.0, None),
        ModeArgs::Live {
            common,
            rate,
            duration,
        } => (Mode::Live, common, None, false, rate, duration),
    };
    let mut scenario = match &common.scenario {
        Some(path) => Scenario::from_file(path)?,
        None => Scenario::district(),
    };
    if let Some(code) = &common.council {
        scenario.select_council(code)?;
    }
    if let Some(seed) = common.seed {
        scenario.seed = seed;
    }
    if let Some(contacts) = common.contacts {
        scenario.contacts = Some(contacts);
    }
    if let Some(months) = common.months {
        scenario.months = months;
    }
    if let Some(end) = &common.end {
        scenario.end =
            NaiveDate::parse_from_str(end, "%Y-%m-%d").context("--end must be YYYY-MM-DD")?;
    }
    if let Some(rate) = common.bad_rate {
        scenario.faults.bad_rate = fraction("--bad-rate", rate)?;
    }
    if let Some(rate) = common.duplicate_rate {
        scenario.faults.duplicate_rate = fraction("--duplicate-rate", rate)?;
    }
    if let Some(hours) = common.repeat_delay_hours {
        for council in &mut scenario.councils {
            council.journeys.repeat_delay_hours = hours;
        }
    }
    if let Some(days) = &common.quiet_days {
        let (from, to) = days
            .split_once(':')
            .context("--quiet-days must be YYYY-MM-DD:YYYY-MM-DD")?;
        let day = |text: &str| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .context("--quiet-days must be YYYY-MM-DD:YYYY-MM-DD")
        };
        let (from, to) = (day(from)?, day(to)?);
        if from > to {
            bail!("--quiet-days: {from} is after {to}");
        }
        scenario.shaping.quiet = Some((from, to));
    }
    if let Some(share) = common.unlinked_share {
        scenario.shaping.unlinked_share = fraction("--unlinked-share", share)?;
    }
    for cap in &common.cap_service {
        let (slug, count) = cap
            .split_once('=')
            .context("--cap-service must be SLUG=N")?;
        let count: u64 = count
            .parse()
            .with_context(|| format!("--cap-service {cap}: N must be a whole number"))?;
        if !scenario
            .councils
            .iter()
            .any(|council| council.services.contains_key(slug))
        {
            bail!("--cap-service {cap}: no council of the scenario has service {slug:?}");
        }
        scenario
            .shaping
            .service_caps
            .insert(slug.to_string(), count);
    }
    scenario.validate()?;
    let kafka_security =
        channelshift_runtime::config::load::<KafkaFile>(common.kafka_config.as_deref())?
            .kafka
            .security;
    kafka_security.check()?;
    if !(rate.is_finite() && rate > 0.0) {
        bail!("--rate must be a positive number of events per second");
    }
    let duration = duration
        .map(|seconds| {
            Some(seconds)
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(Duration::from_secs_f64)
                .context("--duration must be a number of seconds")
        })
        .transpose()?;
    Ok(Options {
        mode,
        scenario,
        brokers: common.brokers,
        kafka_security,
        contact_topic: common.contact_topic,
        satisfaction_topic: common.satisfaction_topic,
        api: api.map(|(api, token)| (api.trim_end_matches('/').to_string(), token)),
        truth_file: common.truth,
        quiet: common.quiet,
        print_truth: common.print_truth,
        dry_run,
        rate,
        duration,
    })
}

/// What the simulator reads of a service's configuration: how to reach Kafka.
#[derive(Default, serde::Deserialize)]
struct KafkaFile {
    #[serde(default)]
    kafka: KafkaSection,
}

#[derive(Default, serde::Deserialize)]
struct KafkaSection {
    #[serde(default)]
    security: KafkaSecurity,
}

fn fraction(name: &str, value: f64) -> Result<f64> {
    Some(value)
        .filter(|r| (0.0..=1.0).contains(r))
        .with_context(|| format!("{name} must be a fraction between 0 and 1"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Options> {
        let cli =
            Cli::try_parse_from(std::iter::once("channelshift-sim").chain(args.iter().copied()))?;
        options(cli)
    }

    #[test]
    fn the_demo_command_line_still_works() {
        let options = run(&[
            "backfill",
            "--brokers",
            "127.0.0.1:18122",
            "--contacts",
            "1000",
            "--api",
            "http://127.0.0.1:1",
            "--token",
            "t",
        ])
        .expect("valid");
        assert_eq!(options.mode, Mode::Backfill);
        assert_eq!(options.scenario.councils[0].code, "E07000041");
        assert_eq!(options.scenario.contacts, Some(1000));
        assert_eq!(options.scenario.seed, 42);
        assert!(options.api.is_some());
    }

    #[test]
    fn overrides_apply_to_a_scenario_file() {
        let options = run(&[
            "live",
            "--scenario",
            concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/region.toml"),
            "--council",
            "E07000042",
            "--seed",
            "9",
            "--months",
            "3",
            "--end",
            "2025-06-30",
            "--bad-rate",
            "0.1",
            "--duplicate-rate",
            "0.05",
            "--rate",
            "250",
            "--duration",
            "1.5",
            "--quiet",
        ])
        .expect("valid");
        let scenario = &options.scenario;
        assert_eq!(scenario.councils.len(), 1);
        assert_eq!(scenario.councils[0].code, "E07000042");
        assert_eq!((scenario.seed, scenario.months), (9, 3));
        assert_eq!(scenario.start().to_string(), "2025-04-01");
        assert_eq!(scenario.faults.bad_rate, 0.1);
        assert_eq!(options.rate, 250.0);
        assert_eq!(options.duration, Some(Duration::from_millis(1500)));
        assert!(options.quiet);
    }

    #[test]
    fn mistakes_are_refused() {
        assert!(run(&["backfill", "--bad-rate", "1.5"]).is_err());
        assert!(run(&["backfill", "--rate", "10"]).is_err());
        assert!(run(&["live", "--api", "x", "--token", "y"]).is_err());
        assert!(run(&["backfill", "--council", "X123"]).is_err());
        assert!(run(&["backfill", "--frobnicate", "1"]).is_err());
        assert!(run(&["backfill", "--api", "x"]).is_err());
        assert!(run(&["sideways"]).is_err());
    }
}
