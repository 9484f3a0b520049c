//! The KPI API as a child process, the real binary reading a real config
//! file, for tests that look at it from outside: its memory, its limits on
//! slow and oversized clients, its handling of revoked tokens.

use crate::process::{free_port, process_dir, service_binary, service_command};
use crate::Scope;
use anyhow::{Context, Result};
use channelshift_api::config::ServerLimits;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use std::fs;
use std::path::PathBuf;
use std::process::Child;
use std::time::Duration;

/// The `channelshift-api` binary (built by `cargo xtask test`), or `CHANNELSHIFT_API_BIN`.
pub fn api_binary() -> Result<PathBuf> {
    service_binary("channelshift-api", "CHANNELSHIFT_API_BIN")
}

/// What a test chooses about the API it starts.
#[derive(Clone, Debug)]
pub struct ApiOptions {
    /// Tokens to accept (hashed into the config file).
    pub tokens: Vec<String>,
    /// Tokens listed as revoked.
    pub revoked: Vec<String>,
    pub limits: ServerLimits,
    pub suppression_threshold: u64,
    /// `packs.chromium`, when not Debian's.
    pub chromium: Option<PathBuf>,
}

impl Default for ApiOptions {
    fn default() -> Self {
        Self {
            tokens: vec![crate::API_TOKEN.to_string()],
            revoked: Vec::new(),
            limits: ServerLimits::default(),
            suppression_threshold: 0,
            chromium: None,
        }
    }
}

fn sha256_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A TOML string literal (JSON's escaping is a subset TOML reads the same way).
fn quoted(value: &str) -> String {
    serde_json::Value::String(value.to_string()).to_string()
}

fn hashes(tokens: &[String]) -> String {
    let quoted: Vec<String> = tokens.iter().map(|t| quoted(&sha256_hex(t))).collect();
    format!("[{}]", quoted.join(", "))
}

fn config_file(scope: &Scope, port: u16, options: &ApiOptions) -> String {
    let reader = scope.reader();
    let limits = &options.limits;
    let packs = options
        .chromium
        .as_ref()
        .map(|path| {
            format!(
                "\n[packs]\nchromium = {}\n",
                quoted(&path.display().to_string())
            )
        })
        .unwrap_or_default();
    let config = format!(
        "listen = {listen}\n\n\
         [clickhouse]\nurl = {url}\nuser = {user}\npassword = {password}\ndatabase = {database}\n\n\
         [auth]\ntoken_sha256 = {tokens}\nrevoked_sha256 = {revoked}\n\n\
         [kpi]\nsuppression_threshold = {threshold}\n\n\
         [server]\nheader_read_timeout_ms = {header}\nrequest_timeout_ms = {request}\n\
         max_header_bytes = {max_header}\nmax_body_bytes = {max_body}\n",
        listen = quoted(&format!("127.0.0.1:{port}")),
        url = quoted(&reader.url),
        user = quoted(&reader.user),
        password = quoted(reader.password.expose_secret()),
        database = quoted(&reader.database),
        tokens = hashes(&options.tokens),
        revoked = hashes(&options.revoked),
        threshold = options.suppression_threshold,
        header = limits.header_read_timeout_ms,
        request = limits.request_timeout_ms,
        max_header = limits.max_header_bytes,
        max_body = limits.max_body_bytes,
    );
    config + &packs
}

/// One `channelshift-api` child process, killed (by PID) when dropped.
pub struct ApiProcess {
    child: Child,
    name: String,
    log: PathBuf,
    dir: PathBuf,
    pub base_url: String,
    pub address: std::net::SocketAddr,
}

impl ApiProcess {
    /// Starts the API over `scope`'s database as the read-only user and waits
    /// until `/healthz` answers.
    pub async fn start(name: &str, scope: &Scope, options: &ApiOptions) -> Result<Self> {
        let port = free_port()?;
        let dir = process_dir(name)?;
        let config_path = dir.join("api.toml");
        fs::write(&config_path, config_file(scope, port, options))?;
        let log = dir.join("api.log");
        let mut command = service_command(&api_binary()?, &config_path, &log, "info")?;
        let child = command.spawn().context("starting channelshift-api")?;
        let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let process = Self {
            child,
            name: name.to_string(),
            log,
            dir,
            base_url: format!("http://{address}"),
            address,
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

    /// The last lines of the API's log, for failure messages.
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
}

impl Drop for ApiProcess {
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
