//! The command line: which mode, which scenario with which overrides, where to send.

use anyhow::{bail, Context, Result};
use channelshift_simulator::Scenario;
use chrono::NaiveDate;
use std::path::PathBuf;
use std::time::Duration;

pub const USAGE: &str = "\
usage: channelshift-sim backfill [options] [--api URL --token TOKEN] [--dry-run]
       channelshift-sim live [options] [--rate N] [--duration SECONDS]

backfill  produces the scenario's whole period as fast as the broker takes it,
          then prints the truth; with --api, waits until the KPI API agrees
          (digital take-up of the first council) and prints it by quarter.
live      produces N contact events a second, stamped with the current time,
          until SIGINT/SIGTERM or --duration; the sequence follows the seed.

scenario (default: the built-in district council, scenarios/district.toml):
  --scenario FILE          a scenario TOML file (one or more councils)
  --council GSS            only this council of the scenario, or its first
                           council under this code
  --seed N                 random seed (default: the scenario's)
  --contacts N             contacts over the whole period, all councils
                           (default: contacts_per_year, pro rata)
  --months N               months simulated (default: the scenario's)
  --end YYYY-MM-DD         last local day simulated (default: the
                           scenario's, else yesterday)
faults (counted apart in the truth; valid messages are unchanged):
  --bad-rate R             extra bad messages, as a fraction 0-1 of the valid
                           ones (malformed JSON, unknown channel, missing
                           field, future timestamp, wrong type, ... in turn)
  --duplicate-rate R       fraction 0-1 of valid messages sent again with the
                           same id a little later
kafka:
  --brokers HOST:PORT      default 127.0.0.1:9092
  --contact-topic T        default contact-events
  --satisfaction-topic T   default satisfaction-responses
live:
  --rate N                 contact events per second (default 10)
  --duration SECONDS       stop after this long (default: until a signal)
output:
  --truth FILE             write the whole truth (per council, service,
                           channel, month, ward, instrument) as JSON
  --quiet                  print only errors (for running in the background)
  --dry-run                (backfill) generate and count, send nothing
  --help                   this text";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Backfill,
    Live,
}

pub struct Options {
    pub mode: Mode,
    pub scenario: Scenario,
    pub brokers: String,
    pub contact_topic: String,
    pub satisfaction_topic: String,
    pub api: Option<(String, String)>,
    pub truth_file: Option<PathBuf>,
    pub quiet: bool,
    pub dry_run: bool,
    /// Live: contact events per second.
    pub rate: f64,
    /// Live: stop after this long.
    pub duration: Option<Duration>,
}

pub enum Command {
    Help,
    Run(Box<Options>),
}

const SWITCHES: &[&str] = &["--quiet", "--dry-run"];
const VALUED: &[&str] = &[
    "--scenario",
    "--council",
    "--seed",
    "--contacts",
    "--months",
    "--end",
    "--bad-rate",
    "--duplicate-rate",
    "--brokers",
    "--contact-topic",
    "--satisfaction-topic",
    "--rate",
    "--duration",
    "--truth",
    "--api",
    "--token",
];

pub fn parse(args: &[String]) -> Result<Command> {
    let mut rest = args.iter().map(String::as_str);
    let mode = match rest.next() {
        Some("backfill") => Mode::Backfill,
        Some("live") => Mode::Live,
        Some("help" | "--help" | "-h") => return Ok(Command::Help),
        Some(other) => bail!("unknown command {other:?}\n\n{USAGE}"),
        None => bail!("{USAGE}"),
    };
    let mut values: Vec<(&str, &str)> = Vec::new();
    let mut switches: Vec<&str> = Vec::new();
    while let Some(flag) = rest.next() {
        if matches!(flag, "--help" | "-h") {
            return Ok(Command::Help);
        } else if SWITCHES.contains(&flag) {
            switches.push(flag);
        } else if VALUED.contains(&flag) {
            let value = rest
                .next()
                .with_context(|| format!("{flag} needs a value\n\n{USAGE}"))?;
            values.push((flag, value));
        } else {
            bail!("unknown option {flag:?}\n\n{USAGE}");
        }
    }
    let get = |name: &str| {
        values
            .iter()
            .rev()
            .find(|(flag, _)| *flag == name)
            .map(|(_, value)| *value)
    };
    let only_in = |names: &[&str], wanted: Mode| -> Result<()> {
        for name in names {
            if mode != wanted && (get(name).is_some() || switches.contains(name)) {
                bail!("{name} is for `{}` only", mode_name(wanted));
            }
        }
        Ok(())
    };
    only_in(&["--api", "--token", "--dry-run"], Mode::Backfill)?;
    only_in(&["--rate", "--duration"], Mode::Live)?;

    let mut scenario = match get("--scenario") {
        Some(path) => Scenario::from_file(path)?,
        None => Scenario::district(),
    };
    if let Some(code) = get("--council") {
        scenario.select_council(code)?;
    }
    if let Some(seed) = get("--seed") {
        scenario.seed = whole("--seed", seed)?;
    }
    if let Some(contacts) = get("--contacts") {
        scenario.contacts = Some(whole("--contacts", contacts)?);
    }
    if let Some(months) = get("--months") {
        scenario.months =
            u32::try_from(whole("--months", months)?).context("--months is too large")?;
    }
    if let Some(end) = get("--end") {
        scenario.end =
            NaiveDate::parse_from_str(end, "%Y-%m-%d").context("--end must be YYYY-MM-DD")?;
    }
    if let Some(rate) = get("--bad-rate") {
        scenario.faults.bad_rate = fraction("--bad-rate", rate)?;
    }
    if let Some(rate) = get("--duplicate-rate") {
        scenario.faults.duplicate_rate = fraction("--duplicate-rate", rate)?;
    }
    scenario.validate()?;

    let api = match (get("--api"), get("--token")) {
        (Some(api), Some(token)) => {
            Some((api.trim_end_matches('/').to_string(), token.to_string()))
        }
        (None, None) => None,
        _ => bail!("--api and --token go together"),
    };
    let rate = match get("--rate") {
        Some(rate) => rate
            .parse::<f64>()
            .ok()
            .filter(|r| r.is_finite() && *r > 0.0)
            .context("--rate must be a positive number of events per second")?,
        None => 10.0,
    };
    let duration = get("--duration")
        .map(|seconds| {
            seconds
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(Duration::from_secs_f64)
                .context("--duration must be a number of seconds")
        })
        .transpose()?;
    Ok(Command::Run(Box::new(Options {
        mode,
        scenario,
        brokers: get("--brokers").unwrap_or("127.0.0.1:9092").to_string(),
        contact_topic: get("--contact-topic")
            .unwrap_or("contact-events")
            .to_string(),
        satisfaction_topic: get("--satisfaction-topic")
            .unwrap_or("satisfaction-responses")
            .to_string(),
        api,
        truth_file: get("--truth").map(PathBuf::from),
        quiet: switches.contains(&"--quiet"),
        dry_run: switches.contains(&"--dry-run"),
        rate,
        duration,
    })))
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Backfill => "backfill",
        Mode::Live => "live",
    }
}

fn whole(name: &str, value: &str) -> Result<u64> {
    value
        .parse()
        .with_context(|| format!("{name} must be a whole number"))
}

fn fraction(name: &str, value: &str) -> Result<f64> {
    value
        .parse::<f64>()
        .ok()
        .filter(|r| (0.0..=1.0).contains(r))
        .with_context(|| format!("{name} must be a fraction between 0 and 1"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Options> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        match parse(&args)? {
            Command::Run(options) => Ok(*options),
            Command::Help => bail!("help"),
        }
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
