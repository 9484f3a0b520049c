//! The current-ClickHouse step of `cargo xtask test`: the chdb engine
//! (ClickHouse 26.x as a library, pinned in `tests/chdb/requirements.txt`) in a
//! Python environment cached per machine, served over ClickHouse's HTTP
//! interface by `tests/chdb/server.py`; `tests/tests/current_engine.rs` runs
//! against it and the test stack's 18.16 side by side, and the ignored test
//! of `faults.rs` runs ingest itself against it.

use crate::install::python_venv;
use crate::stack::workspace_root;
use crate::suite::{self, Failures};
use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};

/// The interpreter with chdb installed.
pub fn python() -> Result<PathBuf> {
    let file = workspace_root().join("tests/chdb/requirements.txt");
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let requirements: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect();
    python_venv("chdb-venv", &requirements)
}

/// The server this step started; stopped by its PID when dropped.
struct Server {
    child: Child,
    data: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

/// Starts the server on a free loopback port; returns it with its URL.
fn start() -> Result<(Server, String)> {
    let python = python()?;
    let data = std::env::temp_dir().join(format!("channelshift-chdb-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let mut child = Command::new(python)
        .arg(workspace_root().join("tests/chdb/server.py"))
        .args(["--port", "0", "--data"])
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting tests/chdb/server.py")?;
    let stdout = child.stdout.take().context("the server's stdout")?;
    let server = Server { child, data };
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .context("reading the server's first line")?;
    let Some(port) = line.trim().strip_prefix("ready ") else {
        bail!("tests/chdb/server.py did not start: {line:?}");
    };
    Ok((server, format!("http://127.0.0.1:{port}")))
}

/// Runs `tests/tests/current_engine.rs` against the current engine and the
/// test stack (whose variables are `stack_env`).
pub fn run(cargo: &str, stack_env: Vec<(String, String)>) -> Result<(ExitStatus, Failures)> {
    let (server, url) = start()?;
    println!("current ClickHouse (chdb) at {url}: running tests/tests/current_engine.rs");
    let mut command = Command::new(cargo);
    command
        // `--workspace`, as the main run: the same features, so nothing is
        // built again.
        .args([
            "test",
            "--workspace",
            "--test",
            "current_engine",
            // Its test of views failing mid-INSERT, against the current engine.
            "--test",
            "faults",
            "--",
            "--ignored",
        ])
        .envs(stack_env)
        .env("CHANNELSHIFT_CURRENT_CLICKHOUSE_URL", url);
    let result = suite::run(command);
    drop(server);
    result
}
