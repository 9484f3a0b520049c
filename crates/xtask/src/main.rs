//! `cargo xtask`: the project's own tooling. It installs what the local stack
//! needs, starts and stops it by PID, runs the test suite and the demo.

mod bench;
mod current_engine;
mod demo;
mod fuzz;
mod install;
mod probe;
mod process;
mod report;
mod stack;
mod suite;

use anyhow::{bail, Context, Result};
use clap::Parser;
use stack::{Profile, Stack};
use std::env;
use std::process::{Command, ExitCode};
use std::time::Instant;

/// The project's own tooling: installs what the local stack needs, starts
/// and stops it by PID, runs the test suite, the demo and the benchmarks.
#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    after_help = "environment:
  CHANNELSHIFT_PORT_BASE       first port of the stack (demo 18120, test 28120, bench 38120)
  CHANNELSHIFT_BROKER_STORAGE  sqlite (default, durable) or memory
  CHANNELSHIFT_STACK_DIR       where stacks keep data (default .stack/ in the checkout)
  CHANNELSHIFT_TOOLS           where the broker build is cached (default ~/.cache/channelshift)
  CHANNELSHIFT_FUZZ_SECONDS    how long `test` fuzzes the contract parser (default 60; 0 skips)"
)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, clap::Subcommand)]
enum Task {
    /// The main job: start the stack, ingest and the API, feed synthetic
    /// council data through Kafka and print the KPIs.
    Demo,
    /// Start the test stack, run the whole suite (and the store's statements
    /// on current ClickHouse through chdb), stop what it started.
    Test {
        /// Passed to `cargo test` (after `--`); a filtered run does not fuzz.
        #[arg(last = true)]
        cargo_args: Vec<String>,
    },
    /// Install ClickHouse (apt) and build the Tansu broker (once per machine).
    Install,
    /// Build for release, start the bench stack (broker in memory) and run
    /// every benchmark; prints a table (see BENCHMARKS.md).
    Bench {
        /// Passed to the harness (after `--`).
        #[arg(last = true)]
        harness_args: Vec<String>,
    },
    /// Manage a stack by hand.
    Stack {
        #[arg(value_enum)]
        action: StackAction,
        /// demo, test or bench.
        #[arg(long, default_value = "demo")]
        profile: String,
    },
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum StackAction {
    Up,
    Down,
    Status,
    Env,
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(error) => {
            eprintln!("xtask: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<ExitCode> {
    let cli = Cli::parse();
    match cli.task {
        Task::Install => install::ensure_all().map(|()| ExitCode::SUCCESS),
        Task::Demo => demo::run().map(|()| ExitCode::SUCCESS),
        Task::Test { cargo_args } => test(&cargo_args),
        Task::Bench { harness_args } => bench::run(&harness_args).map(|()| ExitCode::SUCCESS),
        Task::Stack { action, profile } => {
            stack_command(action, Profile::parse(&profile)?).map(|()| ExitCode::SUCCESS)
        }
    }
}

fn stack_command(action: StackAction, profile: Profile) -> Result<()> {
    let mut stack = Stack::open(profile)?;
    match action {
        StackAction::Up => {
            stack.up()?;
            println!("{}", stack.status());
        }
        StackAction::Down => stack.down(None)?,
        StackAction::Status => println!("{}", stack.status()),
        StackAction::Env => {
            for (key, value) in stack.env_vars() {
                println!("export {key}='{value}'");
            }
        }
    }
    Ok(())
}

/// Starts the test stack (reusing one already running), runs every test in
/// the workspace against it, and stops only what this run started.
fn test(extra: &[String]) -> Result<ExitCode> {
    let clock = Instant::now();
    let mut stack = Stack::open(Profile::Test)?;
    let started = stack.up()?;
    println!(
        "test stack ready in {:.1}s; running the suite",
        clock.elapsed().as_secs_f64()
    );
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // Fault tests run ingest as a child process (to SIGKILL and SIGTERM it),
    // pack and limit tests the API's binary: `cargo test` does not build a
    // binary for another package's tests.
    let built = Command::new(&cargo)
        .args([
            "build",
            "-p",
            "channelshift-ingest",
            "--bin",
            "channelshift-ingest",
            "-p",
            "channelshift-api",
            "--bin",
            "channelshift-api",
            "-p",
            "channelshift-packs",
            "--bin",
            "channelshift-packs",
        ])
        .status()
        .context("building the service binaries")?;
    if !built.success() {
        stack.down(Some(&started))?;
        bail!("building the service binaries failed");
    }
    let mut cargo_test = Command::new(&cargo);
    cargo_test
        .args(["test", "--workspace", "--all-targets"])
        .envs(stack.env_vars());
    // Every test binary runs, so one failure does not hide the next.
    if !extra.iter().any(|arg| arg == "--no-fail-fast") {
        cargo_test.arg("--no-fail-fast");
    }
    cargo_test.args(extra);
    let (status, mut failures) = suite::run(cargo_test)?;
    // A filtered run (extra arguments) is someone's quick check: it runs
    // neither the current-engine step nor the fuzzing.
    let current = if extra.is_empty() {
        let (current, found) = current_engine::run(&cargo, stack.env_vars())?;
        failures.extend(found);
        current.success()
    } else {
        true
    };
    if let Err(error) = stack.down(Some(&started)) {
        eprintln!("xtask: stopping the test stack: {error:#}");
    }
    let fuzzed = match fuzz::seconds()? {
        seconds if seconds > 0 && extra.is_empty() => fuzz::run(&cargo, seconds)?,
        _ => true,
    };
    let passed = status.success() && current && fuzzed;
    if !failures.is_empty() {
        print!("{}", failures.summary());
    }
    println!(
        "cargo xtask test finished in {:.1}s: {}",
        clock.elapsed().as_secs_f64(),
        if passed { "passed" } else { "FAILED" }
    );
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
