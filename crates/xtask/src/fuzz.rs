//! The bounded fuzzing step of `cargo xtask test`: the contract's parser
//! under `cargo fuzz` for a fixed time, new inputs kept in a temporary
//! folder so the committed seeds (`crates/contract/fuzz/seeds/`) stay small.

use anyhow::{Context, Result};
use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Seconds per run by default; `CHANNELSHIFT_FUZZ_SECONDS` changes it (0 skips).
const DEFAULT_SECONDS: u64 = 60;

pub fn seconds() -> Result<u64> {
    match env::var("CHANNELSHIFT_FUZZ_SECONDS") {
        Ok(value) => value
            .parse()
            .with_context(|| format!("CHANNELSHIFT_FUZZ_SECONDS={value:?} is not a number")),
        Err(_) => Ok(DEFAULT_SECONDS),
    }
}

/// Runs the `parse` target for `seconds`; true when libFuzzer found nothing.
/// A crash leaves its input in `crates/contract/fuzz/artifacts/parse/`.
pub fn run(cargo: &str, seconds: u64) -> Result<bool> {
    let contract = Path::new(env!("CARGO_MANIFEST_DIR")).join("../contract");
    // Its own target dir: nightly flags would invalidate the project's build.
    let target = env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| contract.join("../../target"), PathBuf::from)
        .join("fuzz");
    let corpus = env::temp_dir().join(format!("channelshift-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&corpus)?;
    println!(
        "fuzzing the contract parser for {seconds}s (cargo fuzz, target dir {})",
        target.display()
    );
    let status = Command::new(cargo)
        .args(["fuzz", "run", "parse"])
        // New inputs go to the first folder; the committed seeds are only read.
        .arg(&corpus)
        .arg("fuzz/seeds/parse")
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .current_dir(&contract)
        // cargo fuzz needs nightly features; only the stable toolchain is installed.
        .env("RUSTC_BOOTSTRAP", "1")
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .context("running cargo fuzz (cargo xtask install installs it)");
    let _ = std::fs::remove_dir_all(&corpus);
    Ok(status?.success())
}
