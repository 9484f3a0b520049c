//! API configuration: where to listen, the read-only ClickHouse user, the
//! accepted bearer tokens (as SHA-256 hashes, never the tokens) and the KPI
//! settings a council chooses: targets, unit costs, the savings baseline and
//! channel classes, and the server's request limits. `deploy/api.example.toml`
//! is a documented example.

pub use channelshift_reports::calendar::{Meeting, PacksConfig};
pub use channelshift_reports::councils::CouncilBlocks;
pub use channelshift_reports::policy::{Baseline, KpiSettings, UnitCostEntry};
use channelshift_store::{ClickHouseConfig, QueryLimits};
use serde::Deserialize;
use std::net::SocketAddr;

#[derive(Clone, Debug, Deserialize)]
pub struct ApiConfig {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Must be a read-only user (ClickHouse profile `readonly = 2`).
    pub clickhouse: ClickHouseConfig,
    pub auth: AuthConfig,
    /// The default block of every council's settings.
    #[serde(default)]
    pub kpi: KpiSettings,
    /// `[councils.<GSS>]`: the councils on the platform, each with its
    /// display name and the `[kpi]` settings it overrides. Without any, the
    /// API answers for every council under `[kpi]`.
    #[serde(default)]
    pub councils: CouncilBlocks,
    #[serde(default)]
    pub server: ServerLimits,
    /// Limits on each ClickHouse query a request makes (time, result rows,
    /// memory); a request that meets one gets a 400 saying to narrow it.
    #[serde(default)]
    pub query: QueryLimits,
    #[serde(default)]
    pub packs: PacksConfig,
    /// Serve HTTPS on `listen` with this certificate and key. Without it the
    /// API speaks plain HTTP, for a TLS-terminating reverse proxy in front
    /// (deploy/README.md) or loopback.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}

/// `[tls]`: the API's certificate (with its chain) and private key, PEM.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub certificate_file: std::path::PathBuf,
    pub key_file: std::path::PathBuf,
}

impl TlsConfig {
    /// The acceptor for these files; an error names the file at fault.
    pub fn acceptor(&self) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
        use anyhow::Context;
        use rustls_pki_types::pem::PemObject;
        let certificates = rustls_pki_types::CertificateDer::pem_file_iter(&self.certificate_file)
            .and_then(|certificates| certificates.collect::<Result<Vec<_>, _>>())
            .with_context(|| format!("tls.certificate_file {}", self.certificate_file.display()))?;
        anyhow::ensure!(
            !certificates.is_empty(),
            "tls.certificate_file {} holds no PEM certificate",
            self.certificate_file.display()
        );
        let key = rustls_pki_types::PrivateKeyDer::from_pem_file(&self.key_file)
            .with_context(|| format!("tls.key_file {}", self.key_file.display()))?;
        // ring, as the ClickHouse client's own TLS uses (aws-lc needs cmake);
        // rustls 0.23.48 deprecates it for lacking post-quantum key exchange.
        #[allow(deprecated)]
        let mut server = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certificates, key)
        .context("tls.certificate_file and tls.key_file do not make a certificate")?;
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(server)))
    }
}

/// Limits that keep one slow, idle or oversized client from holding the server.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerLimits {
    /// A request's line and headers must arrive within this; an idle
    /// keep-alive connection is closed after it too.
    pub header_read_timeout_ms: u64,
    /// The longest a request may take from its headers to its response; a
    /// request cut off gets 503. Leave room for a PDF pack to print.
    pub request_timeout_ms: u64,
    /// The largest request line plus headers, in bytes (at least 8192; 431 beyond).
    pub max_header_bytes: usize,
    /// The largest request body (413 beyond); no route takes one.
    pub max_body_bytes: usize,
    /// How long a KPI or scorecard answer is given again to the same
    /// question while ingest stores nothing new (0: never; see answers.rs).
    pub answer_cache_seconds: u64,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_read_timeout_ms: 10_000,
            request_timeout_ms: 120_000,
            max_header_bytes: 64 * 1024,
            max_body_bytes: 16 * 1024,
            answer_cache_seconds: 60,
        }
    }
}

impl ServerLimits {
    pub fn header_read_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.header_read_timeout_ms)
    }

    pub fn request_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.request_timeout_ms)
    }

    /// Refuses limits that would disable the protection or that hyper rejects.
    pub fn checked(&self) -> anyhow::Result<&Self> {
        anyhow::ensure!(
            self.header_read_timeout_ms > 0 && self.request_timeout_ms > 0,
            "server: timeouts must be above 0 ms"
        );
        anyhow::ensure!(
            self.max_header_bytes >= 8192,
            "server.max_header_bytes: at least 8192 (HTTP/1's minimum buffer)"
        );
        Ok(self)
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct AuthConfig {
    /// Lower-case hex SHA-256 of each accepted token: `printf %s "$TOKEN" | sha256sum`.
    pub token_sha256: Vec<String>,
    /// Hashes of revoked tokens, refused even if still listed above, so a
    /// leaked token stays refused when an old list is restored. Read at start.
    #[serde(default)]
    pub revoked_sha256: Vec<String>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
