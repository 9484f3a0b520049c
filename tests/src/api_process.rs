//! The KPI API as a child process, the real binary reading a real config
//! file, for tests that look at it from outside: its memory, its limits on
//! slow and oversized clients, its handling of revoked tokens.

use crate::config_file::{toml_text, ApiFile, AuthSection, KpiSection, PacksSection};
use crate::process::{free_port, service_binary, ServiceProcess};
use crate::Scope;
use anyhow::Result;
use channelshift_api::config::ServerLimits;
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
    /// `[query]` limits, when not the API's defaults.
    pub query: Option<channelshift_store::QueryLimits>,
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
            query: None,
            suppression_threshold: 0,
            chromium: None,
        }
    }
}

fn config_file(scope: &Scope, port: u16, options: &ApiOptions) -> String {
    toml_text(&ApiFile {
        listen: Some(format!("127.0.0.1:{port}")),
        clickhouse: (&scope.reader()).into(),
        auth: AuthSection::new(&options.tokens, &options.revoked),
        kpi: KpiSection {
            suppression_threshold: Some(options.suppression_threshold),
            ..KpiSection::default()
        },
        server: Some((&options.limits).into()),
        query: options.query.clone(),
        packs: options.chromium.as_ref().map(|path| PacksSection {
            chromium: Some(path.display().to_string()),
            ..PacksSection::default()
        }),
    })
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
