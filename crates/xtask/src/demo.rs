//! The README's main job: the demo stack, ingest and the API running as
//! processes on loopback, a council's history fed through Kafka by the
//! simulator, and the KPIs read back from the API once they match.

use crate::probe;
use crate::process;
use crate::stack::{self, Profile, Stack, READER_USER, WRITER_USER};
use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The councils the demo simulates, both configured in deploy/api.example.toml.
const DISTRICT: &str = "E07000041";
const NEIGHBOUR: &str = "E07000040";

const SERVICES: &[&str] = &[
    "channelshift-ingest",
    "channelshift-api",
    // The API runs it to render the packs it is asked for.
    "channelshift-packs",
    "channelshift-simulator",
];

pub fn run() -> Result<()> {
    let clock = Instant::now();
    let mut stack = Stack::open(Profile::Demo)?;
    stack.up()?;
    build_services()?;
    let bin = target_dir().join("debug");
    let token = secret(&stack.dir, "api-token")?;
    let pseudonym_key = secret(&stack.dir, "pseudonym-key")?;
    let ports = stack.state.ports.clone();
    let brokers = format!("127.0.0.1:{}", ports.kafka);

    let ingest_config = write_config(
        &stack,
        "ingest.toml",
        &format!(
            "listen = \"127.0.0.1:{ingest}\"\n\n[kafka]\nbrokers = \"{brokers}\"\n\n[clickhouse]\nurl = \"http://127.0.0.1:{ch}\"\nuser = \"{WRITER_USER}\"\npassword = \"{writer}\"\ndatabase = \"channelshift\"\n\n[privacy]\npseudonym_key = \"{pseudonym_key}\"\n",
            ingest = ports.ingest,
            ch = ports.clickhouse_http,
            writer = stack.state.writer_password,
        ),
    )?;
    start_service(
        &mut stack,
        "ingest",
        &bin.join("channelshift-ingest"),
        &ingest_config,
        ports.ingest,
    )?;

    let api_config = write_config(
        &stack,
        "api.toml",
        &format!(
            "listen = \"127.0.0.1:{api}\"\n\n[clickhouse]\nurl = \"http://127.0.0.1:{ch}\"\nuser = \"{READER_USER}\"\npassword = \"{reader}\"\ndatabase = \"channelshift\"\n\n[auth]\ntoken_sha256 = [\"{hash}\"]\n\n{kpi}",
            api = ports.api,
            ch = ports.clickhouse_http,
            reader = stack.state.reader_password,
            hash = hex::encode(Sha256::digest(token.as_bytes())),
            kpi = demo_kpi_settings(),
        ),
    )?;
    start_service(
        &mut stack,
        "api",
        &bin.join("channelshift-api"),
        &api_config,
        ports.api,
    )?;

    publish_definitions(&stack, &bin.join("channelshift-api"), &api_config)?;

    let contacts: u64 = env::var("CHANNELSHIFT_DEMO_CONTACTS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(100_000);
    let api_url = format!("http://127.0.0.1:{}", ports.api);
    let region = stack::workspace_root().join("crates/simulator/scenarios/region.toml");
    // Two councils with their own targets and unit costs (deploy/api.example.toml):
    // the district of the seed minutes, and a neighbour from the region scenario.
    for (council, scenario, contacts) in [
        (DISTRICT, None, contacts),
        (NEIGHBOUR, Some(region.as_path()), contacts / 2),
    ] {
        println!("\nsimulating {council}: {contacts} contacts through Kafka");
        let truth = stack.dir.join(format!("backfill-truth-{council}.json"));
        let mut command = Command::new(bin.join("channelshift-sim"));
        command
            .args(["backfill", "--brokers", &brokers])
            .args(["--contacts", &contacts.to_string()])
            .args(["--months", &DEMO_MONTHS.to_string()])
            .args(["--api", &api_url, "--token", &token])
            .arg("--truth")
            .arg(&truth);
        if let Some(scenario) = scenario {
            command
                .arg("--scenario")
                .arg(scenario)
                .args(["--council", council]);
        }
        let status = command.status().context("running the simulator")?;
        if !status.success() {
            bail!(
                "the simulator failed ({status}); service logs are in {}",
                stack.dir.display()
            );
        }
    }
    println!("\nstoring the settled days' first-contact resolution (the nightly settle-journeys)");
    settle_journeys(&stack, &bin.join("channelshift-api"), &api_config)?;
    println!("\nforecasting each headline to the year's end (the nightly forecast)");
    forecast(&stack, &bin.join("channelshift-api"), &api_config)?;
    for council in [DISTRICT, NEIGHBOUR] {
        crate::report::print(&api_url, &token, council, chrono::Utc::now().date_naive())?;
    }
    start_live_feed(&mut stack, &bin.join("channelshift-sim"), &brokers)?;
    println!(
        "\nThe demo is running ({:.0}s to here):\n  KPI API       {api_url}/api/v1/scorecard?council=E07000041&period=quarter (or council=E07000040)\n  OpenAPI       {api_url}/api/v1/openapi.json (no token needed)\n  API token     in {} (send as: Authorization: Bearer <token>)\n  metrics       {api_url}/metrics (API) and http://127.0.0.1:{}/metrics (ingest)\n  ClickHouse    http://127.0.0.1:{} (users in {})\n  logs          {}\n  stop it with  cargo xtask stack down",
        clock.elapsed().as_secs_f64(),
        stack.dir.join("api-token").display(),
        ports.ingest,
        ports.clickhouse_http,
        stack.dir.join("state.json").display(),
        stack.dir.display(),
    );
    Ok(())
}

/// Writes the councils' definitions to ClickHouse for the dashboards, as
/// the writer (the API's own user may only read).
fn publish_definitions(stack: &Stack, api: &Path, config: &Path) -> Result<()> {
    let output = as_writer(stack, api, config, "publish-definitions")?;
    print!("{output}");
    Ok(())
}

/// Judges and stores the settled days' first-contact resolution, as a
/// council's nightly job does, so packs read them; prints its summary.
fn settle_journeys(stack: &Stack, api: &Path, config: &Path) -> Result<()> {
    let output = as_writer(stack, api, config, "settle-journeys")?;
    for line in output.lines() {
        if line.contains("settled days with contacts") || line.starts_with("settled the journeys") {
            println!("{line}");
        }
    }
    Ok(())
}

/// Makes and stores the year-end forecasts, as a council's nightly job
/// does; prints each one (or why there is none).
fn forecast(stack: &Stack, api: &Path, config: &Path) -> Result<()> {
    print!("{}", as_writer(stack, api, config, "forecast")?);
    Ok(())
}

/// `channelshift-api <command>` as the writer; its standard output.
fn as_writer(stack: &Stack, api: &Path, config: &Path, command: &str) -> Result<String> {
    let output = Command::new(api)
        .arg("--config")
        .arg(config)
        .arg(command)
        .env("CHANNELSHIFT_CLICKHOUSE__USER", WRITER_USER)
        .env(
            "CHANNELSHIFT_CLICKHOUSE__PASSWORD",
            &stack.state.writer_password,
        )
        .output()
        .with_context(|| format!("running channelshift-api {command}"))?;
    if !output.status.success() {
        bail!(
            "channelshift-api {command} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn build_services() -> Result<()> {
    println!("building the services…");
    let mut command = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.args(["build", "--quiet", "--bins"]);
    for package in SERVICES {
        command.args(["--package", package]);
    }
    let status = command.status().context("running cargo build")?;
    if !status.success() {
        bail!("building the services failed");
    }
    Ok(())
}

fn target_dir() -> PathBuf {
    env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| stack::workspace_root().join("target"))
}

/// Writes a service's config into the stack folder, readable only by its
/// owner (it holds passwords); returns its path.
fn write_config(stack: &Stack, name: &str, body: &str) -> Result<PathBuf> {
    let path = stack.dir.join(name);
    stack::write_private(&path, &format!("# Written by `cargo xtask demo`.\n{body}"))?;
    Ok(path)
}

/// A secret kept in the stack folder, made on first use.
fn secret(dir: &Path, name: &str) -> Result<String> {
    let path = dir.join(name);
    if let Ok(existing) = fs::read_to_string(&path) {
        return Ok(existing.trim().to_string());
    }
    let value = stack::random_secret()?;
    stack::write_private(&path, &value)?;
    Ok(value)
}

/// Starts a service unless it already runs; waits until `/readyz` answers.
fn start_service(
    stack: &mut Stack,
    name: &str,
    binary: &Path,
    config: &Path,
    port: u16,
) -> Result<()> {
    // The config path is in the command line, so it marks the process as ours.
    let marker = config.display().to_string();
    let rebuilt = stack
        .state
        .processes
        .get(name)
        .is_some_and(|running| binary_replaced(running.pid));
    if stack.is_running(name) && probe::http_ok(port, "/readyz") && !rebuilt {
        println!("{name} already running");
        return Ok(());
    }
    if rebuilt {
        println!("{name} was rebuilt since it started: restarting it");
    }
    if stack.is_running(name) {
        // Running but not ready: restart it with the current build and config.
        stack.down(Some(&[name.to_string()]))?;
    }
    let log = stack.dir.join(format!("{name}.log"));
    let mut command = Command::new(binary);
    command.arg("--config").arg(config).env("RUST_LOG", "info");
    let pid = process::spawn_detached(command, &log)?;
    stack.record(name, pid, marker.clone())?;
    println!(
        "started {name} (pid {pid}) on 127.0.0.1:{port}, log {}",
        log.display()
    );
    process::await_ready(name, pid, &log, Duration::from_secs(90), || {
        probe::http_ok(port, "/readyz")
    })
}

/// Keeps a trickle of current events flowing (2 per second) after the
/// backfill, as a process of the stack that `stack down` stops.
fn start_live_feed(stack: &mut Stack, simulator: &Path, brokers: &str) -> Result<()> {
    const NAME: &str = "live-feed";
    let truth = stack.dir.join("live-feed-truth.json");
    let running = stack.state.processes.get(NAME);
    if stack.is_running(NAME) && !running.is_some_and(|running| binary_replaced(running.pid)) {
        println!("\nthe live feed is already running");
        return Ok(());
    }
    if stack.is_running(NAME) {
        stack.down(Some(&[NAME.to_string()]))?;
    }
    // A new seed each start, so a restarted feed sends new ids, not duplicates.
    let seed = chrono::Utc::now().timestamp().to_string();
    let log = stack.dir.join("live-feed.log");
    let mut command = Command::new(simulator);
    command
        .args(["live", "--brokers", brokers, "--rate", "2", "--quiet"])
        .args(["--seed", &seed])
        .arg("--truth")
        .arg(&truth);
    let pid = process::spawn_detached(command, &log)?;
    // The truth file's path is in the command line: it marks the process as ours.
    stack.record(NAME, pid, truth.display().to_string())?;
    println!("\nstarted the live feed (pid {pid}): 2 events a second with current timestamps");
    Ok(())
}

/// Whether the executable a process runs was replaced on disk since it
/// started (cargo writes a new file, so the old one shows as deleted).
fn binary_replaced(pid: u32) -> bool {
    fs::read_link(format!("/proc/{pid}/exe"))
        .map(|exe| exe.to_string_lossy().ends_with(" (deleted)"))
        .unwrap_or(false)
}

/// Months of contacts the demo simulates, ending yesterday: two years and
/// the current month, so the year-end forecasts have a season to learn from.
const DEMO_MONTHS: u32 = 25;

/// The example's KPI settings (targets, unit costs), with the savings
/// baseline moved to the first three months of the simulated data.
fn demo_kpi_settings() -> String {
    use chrono::Datelike;
    let example = include_str!("../../../deploy/api.example.toml");
    let kpi = example.find("[kpi]").map_or("", |start| &example[start..]);
    // The simulator's months end yesterday: its first full three months
    // start DEMO_MONTHS − 1 months before the current month.
    let today = chrono::Utc::now().date_naive();
    let this_month = today.with_day(1).unwrap_or(today);
    let start = this_month - chrono::Months::new(DEMO_MONTHS - 1);
    let end = (start + chrono::Months::new(3)).pred_opt().unwrap_or(start);
    kpi.replace(
        "baseline = { from = \"2024-04-01\", to = \"2025-03-31\" }",
        &format!("baseline = {{ from = \"{start}\", to = \"{end}\" }}"),
    )
}
