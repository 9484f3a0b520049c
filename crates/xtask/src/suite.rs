//! Runs `cargo test` with its output passed through unchanged, and keeps
//! what a reader of a long log needs at its end: which tests failed, where
//! they panicked and how to re-run them. CI shows the tail of the output, so
//! `cargo xtask test` prints this summary last, after fuzzing.

use anyhow::{Context, Result};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;

/// Lines of a panic's message kept after the `panicked at` line.
const PANIC_LINES: usize = 4;
/// Longest line kept in the summary; a long assertion diff is cut here.
const LINE_CHARS: usize = 400;

/// What a failed run leaves for its summary.
#[derive(Debug, Default)]
pub struct Failures {
    /// `test name ... FAILED` lines, by test name.
    tests: Vec<String>,
    /// Each panic: its location line and the first lines of its message.
    panics: Vec<Vec<String>>,
    /// cargo's `to rerun pass ...` hints, one per failed test binary.
    reruns: Vec<String>,
}

impl Failures {
    pub fn is_empty(&self) -> bool {
        self.tests.is_empty() && self.panics.is_empty() && self.reruns.is_empty()
    }

    /// Adds what another run failed on.
    pub fn extend(&mut self, other: Failures) {
        self.tests.extend(other.tests);
        self.panics.extend(other.panics);
        self.reruns.extend(other.reruns);
    }

    /// The summary printed at the end of a failed run.
    pub fn summary(&self) -> String {
        let mut text = String::from("== failures\n");
        for test in &self.tests {
            text.push_str(&format!("failed: {test}\n"));
        }
        for panic in &self.panics {
            for (index, line) in panic.iter().enumerate() {
                let indent = if index == 0 { "" } else { "    " };
                text.push_str(&format!("{indent}{line}\n"));
            }
        }
        for rerun in &self.reruns {
            text.push_str(&format!("{rerun}\n"));
        }
        text
    }
}

/// Reads one stream's lines and records what belongs in the summary.
#[derive(Debug, Default)]
struct Reader {
    /// Lines still to keep of the panic being read.
    panic_lines_left: usize,
}

impl Reader {
    fn read(&mut self, line: &str, failures: &mut Failures) {
        let kept: String = line.chars().take(LINE_CHARS).collect();
        if self.panic_lines_left > 0 {
            // A blank line or the next test's block ends the message.
            if line.trim().is_empty() || line.starts_with("---- ") || line.starts_with("note: ") {
                self.panic_lines_left = 0;
            } else if let Some(panic) = failures.panics.last_mut() {
                panic.push(kept.clone());
                self.panic_lines_left -= 1;
            }
        }
        if let Some(test) = line
            .strip_prefix("test ")
            .and_then(|rest| rest.strip_suffix(" ... FAILED"))
        {
            failures.tests.push(test.to_owned());
        } else if line.starts_with("thread '") && line.contains("' panicked at ") {
            failures.panics.push(vec![kept]);
            self.panic_lines_left = PANIC_LINES;
        } else if line.contains("to rerun pass") {
            failures.reruns.push(kept);
        }
    }
}

/// Runs `command`, passing its stdout and stderr through line by line, and
/// returns its status with what failed.
pub fn run(mut command: Command) -> Result<(ExitStatus, Failures)> {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running cargo test")?;
    let failures = Arc::new(Mutex::new(Failures::default()));
    let stdout = child.stdout.take().context("cargo test's stdout")?;
    let stderr = child.stderr.take().context("cargo test's stderr")?;
    let out = forward(stdout, io::stdout, Arc::clone(&failures));
    let err = forward(stderr, io::stderr, Arc::clone(&failures));
    let status = child.wait().context("waiting for cargo test")?;
    for reader in [out, err] {
        reader
            .join()
            .map_err(|_| anyhow::anyhow!("reading cargo test's output"))??;
    }
    let failures = Arc::try_unwrap(failures)
        .map_err(|_| anyhow::anyhow!("output readers still running"))?
        .into_inner()
        .map_err(|_| anyhow::anyhow!("output reader panicked"))?;
    Ok((status, failures))
}

/// Copies `source` to `sink` a line at a time, recording failures.
fn forward<R, W>(
    source: R,
    sink: fn() -> W,
    failures: Arc<Mutex<Failures>>,
) -> thread::JoinHandle<io::Result<()>>
where
    R: Read + Send + 'static,
    W: Write + 'static,
{
    thread::spawn(move || {
        let mut reader = Reader::default();
        let mut lines = BufReader::new(source);
        let mut buffer = Vec::new();
        loop {
            buffer.clear();
            if lines.read_until(b'\n', &mut buffer)? == 0 {
                return Ok(());
            }
            sink().write_all(&buffer)?;
            let line = String::from_utf8_lossy(&buffer);
            let line = line.trim_end_matches(['\n', '\r']);
            if let Ok(mut failures) = failures.lock() {
                reader.read(line, &mut failures);
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(lines: &[&str]) -> Failures {
        let mut failures = Failures::default();
        let mut reader = Reader::default();
        for line in lines {
            reader.read(line, &mut failures);
        }
        failures
    }

    #[test]
    fn keeps_failed_tests_their_panics_and_rerun_hints() {
        let failures = read_all(&[
            "running 3 tests",
            "test ok_one ... ok",
            "test kill_mid_batch ... FAILED",
            "",
            "failures:",
            "",
            "---- kill_mid_batch stdout ----",
            "",
            "thread 'kill_mid_batch' panicked at tests/tests/faults.rs:120:5:",
            "assertion `left == right` failed: stored twice",
            "  left: 2",
            " right: 1",
            "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace",
            "error: test failed, to rerun pass `-p channelshift-tests --test faults`",
        ]);
        assert_eq!(failures.tests, ["kill_mid_batch"]);
        assert_eq!(
            failures.panics,
            [[
                "thread 'kill_mid_batch' panicked at tests/tests/faults.rs:120:5:",
                "assertion `left == right` failed: stored twice",
                "  left: 2",
                " right: 1",
            ]]
        );
        assert_eq!(failures.reruns.len(), 1);
        let summary = failures.summary();
        assert!(summary.contains("failed: kill_mid_batch\n"), "{summary}");
        assert!(summary.contains("--test faults"), "{summary}");
    }

    #[test]
    fn a_passing_run_leaves_nothing() {
        let failures = read_all(&["running 1 test", "test fine ... ok", "test result: ok."]);
        assert!(failures.is_empty());
    }

    #[test]
    fn a_long_panic_message_is_cut() {
        let long = "x".repeat(2 * LINE_CHARS);
        let mut lines = vec!["thread 'a' panicked at src/lib.rs:1:1:"];
        lines.extend(std::iter::repeat_n(long.as_str(), PANIC_LINES + 3));
        let failures = read_all(&lines);
        assert_eq!(failures.panics[0].len(), 1 + PANIC_LINES);
        assert!(failures.panics[0][1].chars().count() == LINE_CHARS);
    }
}
