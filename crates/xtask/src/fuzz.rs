//! The bounded fuzzing step of `cargo xtask test`: the contract's parser
//! under `cargo fuzz` for a fixed time, new inputs kept in a temporary
//! folder so the committed seeds (`crates/contract/fuzz/seeds/`) stay small.

use anyhow::{Context, Result};
use std::env;
use std::fs::File;
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
    // libFuzzer writes thousands of progress lines and a dictionary; they go
    // to a log so the end of the suite's output stays the summary.
    let log_path = target.join("last-run.log");
    std::fs::create_dir_all(&target)?;
    let log =
        File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
    println!(
        "fuzzing the contract parser for {seconds}s (cargo fuzz, target dir {}, log {})",
        target.display(),
        log_path.display()
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
        .stdout(log.try_clone()?)
        .stderr(log)
        .status()
        .context("running cargo fuzz (cargo xtask install installs it)");
    let _ = std::fs::remove_dir_all(&corpus);
    let passed = status?.success();
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    // The whole story of a crash; one line of a clean run.
    let shown = if passed { 1 } else { CRASH_LINES };
    for line in last_lines(&text, shown, |line| passed && !line.starts_with("Done ")) {
        println!("{line}");
    }
    Ok(passed)
}

/// Lines of the log printed when fuzzing finds a crash.
const CRASH_LINES: usize = 60;

/// The last `count` lines of `text`, leaving out lines `skip` rejects.
fn last_lines(text: &str, count: usize, skip: impl Fn(&str) -> bool) -> Vec<&str> {
    let mut kept: Vec<&str> = text
        .lines()
        .rev()
        .filter(|line| !skip(line))
        .take(count)
        .collect();
    kept.reverse();
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clean_run_shows_its_run_count_and_a_crash_its_tail() {
        let log = "#1 INITED\n#2 NEW\nDone 1031899 runs in 61 second(s)\n\"dict\" # Uses: 3\n";
        assert_eq!(
            last_lines(log, 1, |line| !line.starts_with("Done ")),
            ["Done 1031899 runs in 61 second(s)"]
        );
        assert_eq!(
            last_lines(log, 2, |_| false),
            ["Done 1031899 runs in 61 second(s)", "\"dict\" # Uses: 3"]
        );
    }
}
