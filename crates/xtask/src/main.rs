//! `cargo xtask`: the project's own tooling. It installs what the local stack
//! needs, starts and stops it by PID, runs the test suite and the demo.

mod bench;
mod demo;
mod fuzz;
mod install;
mod probe;
mod process;
mod report;
mod stack;

use anyhow::{bail, Context, Result};
use stack::{Profile, Stack};
use std::env;
use std::process::{Command, ExitCode};
use std::time::Instant;

const USAGE: &str = "\
usage: cargo xtask <command>

  demo                       the main job: start the stack, ingest and the API, feed
                             synthetic council data through Kafka and print the KPIs
  test [-- <cargo test args>]
                             start the test stack, run the whole suite, stop what it started
  install                    install ClickHouse (apt) and build the Tansu broker (once)
  bench                      build for release, start the bench stack (broker in memory) and
                             run every benchmark; prints a table (see BENCHMARKS.md)
  stack up|down|status|env [--profile demo|test|bench]
                             manage a stack by hand (default profile: demo)

environment:
  CHANNELSHIFT_PORT_BASE       first port of the stack (demo 18120, test 28120, bench 38120)
  CHANNELSHIFT_BROKER_STORAGE  sqlite (default, durable) or memory
  CHANNELSHIFT_STACK_DIR       where stacks keep data (default .stack/ in the checkout)
  CHANNELSHIFT_TOOLS           where the broker build is cached (default ~/.cache/channelshift)
  CHANNELSHIFT_FUZZ_SECONDS    how long `test` fuzzes the contract parser (default 60; 0 skips)";

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
    let args: Vec<String> = env::args().skip(1).collect();
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["install"] => install::ensure_all().map(|()| ExitCode::SUCCESS),
        ["demo"] => demo::run().map(|()| ExitCode::SUCCESS),
        ["test", rest @ ..] => test(rest),
        ["bench", rest @ ..] => bench::run(rest).map(|()| ExitCode::SUCCESS),
        ["stack", action, rest @ ..] => stack_command(action, rest).map(|()| ExitCode::SUCCESS),
        ["help" | "--help" | "-h"] | [] => {
            println!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        _ => bail!("unknown command {:?}\n\n{USAGE}", args.join(" ")),
    }
}

fn stack_command(action: &str, rest: &[&str]) -> Result<()> {
    let profile = match rest {
        [] => Profile::Demo,
        ["--profile", name] => Profile::parse(name)?,
        _ => bail!("usage: cargo xtask stack {action} [--profile demo|test]"),
    };
    let mut stack = Stack::open(profile)?;
    match action {
        "up" => {
            stack.up()?;
            println!("{}", stack.status());
        }
        "down" => stack.down(None)?,
        "status" => println!("{}", stack.status()),
        "env" => {
            for (key, value) in stack.env_vars() {
                println!("export {key}='{value}'");
            }
        }
        other => bail!("unknown stack action {other:?}: use up, down, status or env"),
    }
    Ok(())
}

/// Starts the test stack (reusing one already running), runs every test in
/// the workspace against it, and stops only what this run started.
fn test(rest: &[&str]) -> Result<ExitCode> {
    let clock = Instant::now();
    let extra: &[&str] = match rest {
        ["--", extra @ ..] => extra,
        [] => &[],
        _ => bail!("usage: cargo xtask test [-- <cargo test args>]"),
    };
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
    let status = Command::new(&cargo)
        .args(["test", "--workspace", "--all-targets"])
        .args(extra)
        .envs(stack.env_vars())
        .status()
        .context("running cargo test")?;
    if let Err(error) = stack.down(Some(&started)) {
        eprintln!("xtask: stopping the test stack: {error:#}");
    }
    // A filtered run (extra arguments) is someone's quick check: no fuzzing.
    let fuzzed = match fuzz::seconds()? {
        seconds if seconds > 0 && extra.is_empty() => fuzz::run(&cargo, seconds)?,
        _ => true,
    };
    let passed = status.success() && fuzzed;
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
