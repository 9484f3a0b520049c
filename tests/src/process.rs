//! The ingest service as a child process, for tests that kill it, signal it or
//! run several replicas, and read it only through its operator endpoints.

use crate::config_file::{toml_text, IngestFile};
use anyhow::{Context, Result};
use channelshift_ingest::config::IngestConfig;
use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

/// A service's binary next to this test's executable (built by `cargo
/// xtask test` before the suite runs), or the path in `$env_var`.
pub fn service_binary(name: &str, env_var: &str) -> Result<PathBuf> {
    if let Ok(path) = std::env::var(env_var) {
        return Ok(path.into());
    }
    let exe = std::env::current_exe()?;
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let path = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join(name))
        .context("locating the target directory")?;
    anyhow::ensure!(
        path.exists(),
        "{} is missing: run `cargo build -p {name}` (cargo xtask test does)",
        path.display()
    );
    Ok(path)
}

/// The `channelshift-ingest` binary, or `CHANNELSHIFT_INGEST_BIN`.
pub fn ingest_binary() -> Result<PathBuf> {
    service_binary("channelshift-ingest", "CHANNELSHIFT_INGEST_BIN")
}

/// The `channelshift-packs` binary, or `CHANNELSHIFT_PACKS_BIN`: the API
/// runs it to render packs, `pack` and `packs-due` are its commands.
pub fn packs_binary() -> Result<PathBuf> {
    service_binary("channelshift-packs", "CHANNELSHIFT_PACKS_BIN")
}

/// A fresh folder for one child process's configuration and log.
pub fn process_dir(name: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "channelshift-test-{name}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// A service started with `--config <config>`, its output to `log`, and
/// without the test runner's own CHANNELSHIFT_* variables (they would
/// override the file).
pub fn service_command(
    binary: &Path,
    config: &Path,
    log: &Path,
    rust_log: &str,
) -> Result<Command> {
    let output = fs::File::create(log)?;
    let mut command = Command::new(binary);
    command
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", rust_log)
        .stdin(Stdio::null())
        .stdout(output.try_clone()?)
        .stderr(output);
    without_test_settings(&mut command);
    Ok(command)
}

/// `channelshift-ingest reconcile --config <config> [args…]`, without the
/// test runner's CHANNELSHIFT_* variables; its output is captured.
pub fn reconcile_command(config: &Path, args: &[&std::ffi::OsStr]) -> Result<Command> {
    let mut command = Command::new(ingest_binary()?);
    command
        .arg("reconcile")
        .arg("--config")
        .arg(config)
        .args(args);
    without_test_settings(&mut command);
    Ok(command)
}

/// Removes the test runner's own CHANNELSHIFT_* variables, which would
/// override a child's configuration file.
fn without_test_settings(command: &mut Command) {
    for (key, _) in std::env::vars() {
        if key.starts_with("CHANNELSHIFT_") {
            command.env_remove(key);
        }
    }
}

/// A free loopback port (free when asked; tests bind it straight away).
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// One service (`channelshift-ingest`, `channelshift-api`, …) running as a
/// child process with a config file and a log of its own; killed (by PID)
/// and its folder removed when dropped (`CHANNELSHIFT_TEST_KEEP_LOGS` keeps
/// the folder).
pub struct ServiceProcess {
    child: Child,
    name: String,
    log: PathBuf,
    dir: PathBuf,
    /// Where its HTTP endpoints listen.
    pub address: SocketAddr,
    /// `http://` + `address`.
    pub base_url: String,
}

/// An ingest replica as a child process.
pub type IngestProcess = ServiceProcess;

impl ServiceProcess {
    /// Writes `config` as `config_name` in a fresh folder, starts `binary`
    /// with it (logging at `log_filter`) and waits until `/healthz` answers
    /// on `port`.
    pub async fn start(
        name: &str,
        binary: &Path,
        config_name: &str,
        config: &str,
        port: u16,
        log_filter: &str,
    ) -> Result<Self> {
        let dir = process_dir(name)?;
        let config_path = dir.join(config_name);
        fs::write(&config_path, config)?;
        let log = dir.join(format!("{name}.log"));
        let mut command = service_command(binary, &config_path, &log, log_filter)?;
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let process = Self {
            child,
            name: name.to_string(),
            log,
            dir,
            address,
            base_url: format!("http://{address}"),
        };
        crate::server::await_http_ok(
            &format!("{name} answers /healthz"),
            &format!("{}/healthz", process.base_url),
            Duration::from_secs(30),
        )
        .await
        .with_context(|| process.log_tail())?;
        Ok(process)
    }

    /// Starts an ingest replica with `config` (its `listen` is replaced by a
    /// free port).
    pub async fn ingest(name: &str, mut config: IngestConfig) -> Result<Self> {
        let port = free_port()?;
        config.listen = SocketAddr::from(([127, 0, 0, 1], port));
        Self::start(
            name,
            &ingest_binary()?,
            "ingest.toml",
            &toml_text(&IngestFile::from(&config)),
            port,
            &std::env::var("CHANNELSHIFT_TEST_INGEST_LOG")
                .unwrap_or_else(|_| "info,rdkafka=warn".into()),
        )
        .await
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Resident set size in KiB, from `/proc/<pid>/status`.
    pub fn rss_kib(&self) -> Result<u64> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .context("VmRSS missing from /proc/<pid>/status")
    }

    /// True when the process's log so far contains `text`.
    pub fn log_contains(&self, text: &str) -> bool {
        fs::read_to_string(&self.log).is_ok_and(|log| log.contains(text))
    }

    /// The last lines of the process's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        format!(
            "last lines of {}'s log ({}):\n{tail}",
            self.name,
            self.log.display()
        )
    }

    /// Sends `signal` (e.g. `KILL`, `TERM`) to this child only, by PID.
    pub fn signal(&self, signal: &str) -> Result<()> {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()?;
        anyhow::ensure!(
            status.success(),
            "kill -{signal} {} failed",
            self.child.id()
        );
        Ok(())
    }

    /// SIGKILL, then reap.
    pub fn kill(mut self) -> Result<()> {
        self.signal("KILL")?;
        self.child.wait()?;
        Ok(())
    }

    /// Waits up to `timeout` for the process to exit.
    pub async fn wait(&mut self, timeout: Duration) -> Result<Option<ExitStatus>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(Some(status));
            }
            if tokio::time::Instant::now() > deadline {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> Result<String> {
        Ok(reqwest::get(format!("{}/metrics", self.base_url))
            .await?
            .error_for_status()?
            .text()
            .await?)
    }

    /// The sum of every series of `name` whose labels include all of `labels`.
    pub async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> Result<f64> {
        Ok(metric_sum(&self.metrics().await?, name, labels))
    }

    /// `/readyz`'s status code.
    pub async fn readiness(&self) -> Result<u16> {
        Ok(reqwest::get(format!("{}/readyz", self.base_url))
            .await?
            .status()
            .as_u16())
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if !std::thread::panicking() && std::env::var_os("CHANNELSHIFT_TEST_KEEP_LOGS").is_none() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Sums the samples of `name` in Prometheus text whose labels include `labels`.
pub fn metric_sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, label_text) = match series.split_once('{') {
                Some((metric, rest)) => (metric, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if metric != name {
                return None;
            }
            let matches = labels
                .iter()
                .all(|(key, wanted)| label_text.contains(&format!("{key}=\"{wanted}\"")));
            matches.then(|| value.parse::<f64>().ok()).flatten()
        })
        .fold(0.0, |total, value| total + value)
}

#[cfg(test)]
mod tests {
    use super::metric_sum;

    #[test]
    fn metric_sum_adds_matching_series_only() {
        let text = "# HELP x y\nrejected_total{reason=\"a\",topic=\"t\"} 2\n\
                    rejected_total{reason=\"b\",topic=\"t\"} 3\nother 9\nrejected_total_x 1\n";
        assert_eq!(metric_sum(text, "rejected_total", &[]), 5.0);
        assert_eq!(metric_sum(text, "rejected_total", &[("reason", "b")]), 3.0);
        assert_eq!(metric_sum(text, "other", &[]), 9.0);
        assert_eq!(metric_sum(text, "missing", &[]), 0.0);
    }
}
