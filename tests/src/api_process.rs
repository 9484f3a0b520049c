//! The KPI API as a child process, the real binary reading a real config
//! file, for tests that look at it from outside: its memory, its limits on
//! slow and oversized clients, its handling of revoked tokens.

use crate::process::{free_port, service_binary, ServiceProcess};
use crate::Scope;
use anyhow::Result;
use channelshift_api::config::ServerLimits;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use std::path::PathBuf;

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

/// The API as a child process.
pub type ApiProcess = ServiceProcess;

impl ServiceProcess {
    /// Starts the API over `scope`'s database as the read-only user and waits
    /// until `/healthz` answers.
    pub async fn api(name: &str, scope: &Scope, options: &ApiOptions) -> Result<Self> {
        let port = free_port()?;
        Self::start(
            name,
            &api_binary()?,
            "api.toml",
            &config_file(scope, port, options),
            port,
            "info",
        )
        .await
    }
}
