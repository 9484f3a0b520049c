//! `cargo xtask bench`: the benchmark harness's one command. It builds the
//! services and the harness for release, prepares the Python reference
//! consumer's virtual environment, starts the bench stack (ClickHouse, and
//! Tansu with memory storage) on its own ports, runs
//! `tests/benches/pipeline.rs`, and stops only what it started.

use crate::stack::{workspace_root, Profile, Stack};
use anyhow::{bail, Context, Result};
use std::env;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

/// The reference consumer's interpreter, with confluent-kafka installed.
fn python_venv() -> Result<PathBuf> {
    crate::install::python_venv("bench-venv", &["confluent-kafka==2.*"])
}

fn target_dir() -> PathBuf {
    env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Runs every benchmark; `extra` goes to the harness.
pub fn run(extra: &[String]) -> Result<()> {
    let clock = Instant::now();
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let built = Command::new(&cargo)
        .args([
            "build",
            "--release",
            "-p",
            "channelshift-ingest",
            "--bin",
            "channelshift-ingest",
        ])
        .args(["-p", "channelshift-api", "--bin", "channelshift-api"])
        .args(["-p", "channelshift-packs", "--bin", "channelshift-packs"])
        .status()
        .context("building the services for release")?;
    if !built.success() {
        bail!("building the services for release failed");
    }
    let python = python_venv()?;
    // The broker keeps the benchmark's topics in memory: the harness
    // measures ingest, not the broker's disk.
    env::set_var("CHANNELSHIFT_BROKER_STORAGE", "memory");
    let mut stack = Stack::open(Profile::Bench)?;
    let started = stack.up()?;
    let release = target_dir().join("release");
    let report = workspace_root().join("target").join("bench-report.md");
    let status = Command::new(&cargo)
        .args([
            "bench",
            "-p",
            "channelshift-tests",
            "--bench",
            "pipeline",
            "--",
        ])
        .args(extra)
        .envs(stack.env_vars())
        .env(
            "CHANNELSHIFT_INGEST_BIN",
            release.join("channelshift-ingest"),
        )
        .env("CHANNELSHIFT_API_BIN", release.join("channelshift-api"))
        .env("CHANNELSHIFT_BENCH_PYTHON", &python)
        .env("CHANNELSHIFT_BENCH_REPORT", &report)
        .env(
            "CHANNELSHIFT_BENCH_CLICKHOUSE_PID",
            stack
                .pid_of("clickhouse")
                .map(|pid| pid.to_string())
                .unwrap_or_default(),
        )
        .status()
        .context("running the benchmark harness")?;
    if let Err(error) = stack.down(Some(&started)) {
        eprintln!("xtask: stopping the bench stack: {error:#}");
    }
    println!(
        "cargo xtask bench finished in {:.1} min: {}",
        clock.elapsed().as_secs_f64() / 60.0,
        if status.success() { "done" } else { "FAILED" }
    );
    if !status.success() {
        bail!("the benchmark harness failed ({status})");
    }
    println!("report: {}", report.display());
    Ok(())
}
