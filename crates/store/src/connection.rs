//! Connecting to ClickHouse and deciding, from `SELECT version()`, whether the
//! client may validate rows (the 18.16 server refuses the settings validation needs).

use crate::partitions::DEFAULT_PARTITION_LIMIT;
use clickhouse::Row;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Where and as whom to connect. The password is a secret: it never reaches a log.
#[derive(Clone, Debug, Deserialize)]
pub struct ClickHouseConfig {
    /// HTTP endpoint, e.g. `http://127.0.0.1:8123`.
    pub url: String,
    pub user: String,
    #[serde(default = "empty_secret")]
    pub password: SecretString,
    /// The database holding Channelshift's tables.
    #[serde(default = "default_database")]
    pub database: String,
    /// PEM file of the CA(s) that signed the server's certificate, for an
    /// `https://` url on a council's own CA; without it the public CAs
    /// (webpki roots) are trusted, as ClickHouse Cloud needs.
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
}

/// Limits each query of a reader (the KPI API) carries, so that no request
/// can hold the server: ClickHouse stops the query and answers an error,
/// which [`StoreError::is_over_limit`] recognises.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct QueryLimits {
    /// `max_execution_time`: the query is stopped after this long.
    pub max_execution_seconds: u64,
    /// `max_result_rows` (with `result_overflow_mode = 'throw'`): a query
    /// whose answer would be longer fails instead of being cut short.
    pub max_result_rows: u64,
    /// `max_memory_usage` of one query, in bytes.
    pub max_memory_bytes: u64,
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self {
            max_execution_seconds: 30,
            max_result_rows: 1_000_000,
            max_memory_bytes: 4 * 1024 * 1024 * 1024,
        }
    }
}

impl QueryLimits {
    /// Refuses a limit of 0, which ClickHouse reads as "no limit".
    pub fn checked(&self) -> Result<&Self, String> {
        if self.max_execution_seconds == 0
            || self.max_result_rows == 0
            || self.max_memory_bytes == 0
        {
            return Err("query limits must be above 0 (0 would mean no limit)".into());
        }
        Ok(self)
    }
}

fn empty_secret() -> SecretString {
    SecretString::from(String::new())
}

fn default_database() -> String {
    "channelshift".into()
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("ClickHouse: {0}")]
    ClickHouse(#[from] clickhouse::error::Error),
    #[error("ClickHouse server version {0:?} could not be read")]
    Version(String),
    #[error("database name {0:?} must be 1-64 of a-z A-Z 0-9 _")]
    DatabaseName(String),
    #[error("ClickHouse setting {0} is {1:?}, not a number")]
    Setting(&'static str, String),
    /// A stored value outside the contract: the data or a query is wrong.
    #[error("ClickHouse returned {value:?} in {column}, which the contract does not allow")]
    Unexpected { column: String, value: String },
    #[error("clickhouse.ca_file {path}: {reason}")]
    Tls { path: String, reason: String },
}

/// ClickHouse error codes that the same rows would meet again on any retry:
/// the data, not the moment, is at fault. Everything else (a refused or lost
/// connection, a timeout, memory, too many parts, a read-only server, a view
/// failing for its own reasons) is taken as temporary and retried. So are an
/// unknown column or table and a type mismatch: the table does not match the
/// code (a migration missing, a hand edit), which every row would meet, and
/// dead-lettering the whole stream is not the remedy.
const PERMANENT_CODES: &[(u32, &str)] = &[
    (6, "CANNOT_PARSE_TEXT"),
    (27, "CANNOT_PARSE_INPUT_ASSERTION_FAILED"),
    (38, "CANNOT_PARSE_DATE"),
    (41, "CANNOT_PARSE_DATETIME"),
    (69, "ARGUMENT_OUT_OF_BOUND"),
    (70, "CANNOT_CONVERT_TYPE"),
    (117, "INCORRECT_DATA"),
    (469, "VIOLATED_CONSTRAINT"),
];

impl StoreError {
    /// The server's error code (`Code: N.`), when the server answered.
    pub fn code(&self) -> Option<u32> {
        let Self::ClickHouse(clickhouse::error::Error::BadResponse(text)) = self else {
            return None;
        };
        let rest = &text[text.find("Code: ")? + "Code: ".len()..];
        rest.split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    }

    /// True when the server stopped a query at one of its [`QueryLimits`]
    /// (time, result rows, memory): asking the same again fails the same way.
    pub fn is_over_limit(&self) -> bool {
        // TOO_MANY_ROWS, TIMEOUT_EXCEEDED, MEMORY_LIMIT_EXCEEDED,
        // TOO_MANY_ROWS_OR_BYTES.
        self.code()
            .is_some_and(|code| matches!(code, 158 | 159 | 241 | 396))
    }

    /// True when retrying the same rows cannot succeed: a value the server
    /// refuses, or more partitions than one INSERT may touch (code 252 is
    /// also "too many parts", which passes). See [`PERMANENT_CODES`].
    pub fn is_permanent(&self) -> bool {
        let too_many_partitions = matches!(
            self,
            Self::ClickHouse(clickhouse::error::Error::BadResponse(text))
                if text.contains("Too many partitions for single INSERT block")
        );
        too_many_partitions
            || self
                .code()
                .is_some_and(|code| PERMANENT_CODES.iter().any(|(known, _)| *known == code))
    }
}

/// A handle on the store; cheap to clone (it shares one connection pool).
#[derive(Clone)]
pub struct Store {
    pub(crate) client: clickhouse::Client,
    database: String,
    server_version: (u32, u32),
    /// The server's `max_partitions_per_insert_block` (0: no limit), or
    /// [`DEFAULT_PARTITION_LIMIT`] where it has no such setting.
    pub(crate) partition_limit: u64,
    /// Set by [`Store::tagged`]: the ids this handle gives its queries.
    query_ids: Option<Arc<QueryIds>>,
    /// Settled days' journeys, shared by every handle of this store.
    pub(crate) journeys: Arc<crate::journeys::SettledJourneys>,
    /// Since when each monthly rollup holds every row, as last read.
    pub(crate) monthly: Arc<crate::cells::MonthlyCoverage>,
}

/// `<prefix><n>`, n counting from 1: one id per query, so that the queries of
/// one write attempt can be found in `system.processes` and stopped.
struct QueryIds {
    prefix: String,
    next: AtomicU64,
}

/// The HTTP(S) client for `config`: plain HTTP, or HTTPS trusting the
/// public CAs (the webpki roots, as the crate's own client) or only
/// `ca_file`'s CAs. Every connection is made by [`tcp_connector`].
fn http_client(config: &ClickHouseConfig) -> Result<clickhouse::Client, StoreError> {
    let https = config.url.starts_with("https://");
    let source = config.ca_file.as_ref().map_or_else(
        || "(none: the public CAs)".to_string(),
        |path| path.display().to_string(),
    );
    let tls_error = |reason: String| StoreError::Tls {
        path: source.clone(),
        reason,
    };
    let roots = match &config.ca_file {
        None if !https => return Ok(pooled(tcp_connector())),
        None => rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        },
        Some(_) if !https => {
            return Err(tls_error(format!(
                "given, but the url {} is not https://",
                config.url
            )))
        }
        Some(path) => {
            use rustls_pki_types::pem::PemObject;
            let mut roots = rustls::RootCertStore::empty();
            for certificate in rustls_pki_types::CertificateDer::pem_file_iter(path)
                .map_err(|error| tls_error(error.to_string()))?
            {
                let certificate = certificate.map_err(|error| tls_error(error.to_string()))?;
                roots
                    .add(certificate)
                    .map_err(|error| tls_error(error.to_string()))?;
            }
            if roots.is_empty() {
                return Err(tls_error("holds no PEM certificate".into()));
            }
            roots
        }
    };
    // ring, as the ClickHouse client's own TLS uses (aws-lc needs cmake);
    // rustls 0.23.48 deprecates it for lacking post-quantum key exchange.
    #[allow(deprecated)]
    let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|error| tls_error(error.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .wrap_connector(tcp_connector());
    Ok(pooled(https))
}

/// TCP as the crate's own client connects (keep-alive probes every 60 s),
/// and with `TCP_NODELAY`: a request's last small write (a chunked body's
/// end, a short INSERT) is sent at once instead of waiting for the
/// server's delayed acknowledgement of the one before.
fn tcp_connector() -> hyper_util::client::legacy::connect::HttpConnector {
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.enforce_http(false);
    http.set_keepalive(Some(std::time::Duration::from_secs(60)));
    http.set_nodelay(true);
    http
}

/// A ClickHouse client pooling connections over `connector`. As the
/// crate's own: idle connections close before the server's keep-alive (3 s
/// on older servers) does.
fn pooled<C>(connector: C) -> clickhouse::Client
where
    C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
{
    clickhouse::Client::with_http_client(
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_idle_timeout(std::time::Duration::from_secs(2))
            .build(connector),
    )
}

impl Store {
    /// Connects and reads the server version. The database need not exist yet
    /// (see [`Store::migrate`]).
    pub async fn connect(config: &ClickHouseConfig) -> Result<Self, StoreError> {
        let database = config.database.clone();
        if database.is_empty()
            || database.len() > 64
            || !database
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(StoreError::DatabaseName(database));
        }
        let base = http_client(config)?
            .with_url(&config.url)
            .with_user(&config.user)
            .with_password(config.password.expose_secret())
            .with_validation(false);
        let version: String = base.query("SELECT version()").fetch_one().await?;
        let server_version = parse_version(&version)?;
        // Row validation needs settings that servers before 22 do not know.
        let validate = server_version.0 >= 22;
        let limit: Option<String> = base
            .query(
                "SELECT value FROM system.settings WHERE name = 'max_partitions_per_insert_block'",
            )
            .fetch_optional()
            .await?;
        let partition_limit = match limit {
            Some(value) => value
                .parse()
                .map_err(|_| StoreError::Setting("max_partitions_per_insert_block", value))?,
            None => DEFAULT_PARTITION_LIMIT,
        };
        let client = base.with_validation(validate).with_database(&database);
        Ok(Self {
            client,
            database,
            server_version,
            partition_limit,
            query_ids: None,
            journeys: Arc::default(),
            monthly: Arc::default(),
        })
    }

    /// This store, giving each query it runs the id `<prefix><n>`. Ingest
    /// tags each write attempt, so that an abandoned attempt can be stopped
    /// before the next begins, and another replica's writes can be awaited.
    pub fn tagged(&self, prefix: impl Into<String>) -> Store {
        Store {
            query_ids: Some(Arc::new(QueryIds {
                prefix: prefix.into(),
                next: AtomicU64::new(1),
            })),
            ..self.clone()
        }
    }

    /// This store, every query of which carries `limits`. On servers from
    /// 21.x a query is also cancelled when its client hangs up; the API also
    /// stops a dropped request's queries itself (its `cancel.rs`).
    pub fn limited(&self, limits: &QueryLimits) -> Store {
        let mut client = self
            .client
            .clone()
            .with_setting(
                "max_execution_time",
                limits.max_execution_seconds.to_string(),
            )
            .with_setting("max_result_rows", limits.max_result_rows.to_string())
            .with_setting("result_overflow_mode", "throw")
            .with_setting("max_memory_usage", limits.max_memory_bytes.to_string());
        if self.server_version >= (21, 1) {
            client = client.with_setting("cancel_http_readonly_queries_on_client_close", "1");
        }
        Store {
            client,
            ..self.clone()
        }
    }

    /// A query, with its id when this store is tagged.
    pub(crate) fn query(&self, sql: &str) -> clickhouse::query::Query {
        let query = self.client.query(sql);
        match &self.query_ids {
            Some(ids) => query.with_setting("query_id", ids.next()),
            None => query,
        }
    }

    /// An INSERT, with its id when this store is tagged.
    pub(crate) async fn insert<T: Row>(
        &self,
        table: &str,
    ) -> Result<clickhouse::insert::Insert<T>, StoreError> {
        let insert = self.client.insert::<T>(table).await?;
        Ok(match &self.query_ids {
            Some(ids) => insert.with_setting("query_id", ids.next()),
            None => insert,
        })
    }

    pub fn database(&self) -> &str {
        &self.database
    }

    /// The database the rollups live in, `<database>_rollups`: the only one
    /// the dashboards' ClickHouse user may read (see `deploy/README.md`).
    pub fn rollups_database(&self) -> String {
        rollups_database(&self.database)
    }

    /// A client on the rollups' database: the crate's insert quotes a
    /// qualified name as one identifier, so inserts there name tables bare.
    pub(crate) fn rollups_client(&self) -> clickhouse::Client {
        self.client.clone().with_database(self.rollups_database())
    }

    /// A number above every `column` of the rollups' `table` and at least
    /// the milliseconds since the epoch: loads numbered with it order,
    /// whatever this clock says and however close together they come.
    pub(crate) async fn next_number(&self, table: &str, column: &str) -> Result<u64, StoreError> {
        #[derive(clickhouse::Row, serde::Deserialize)]
        struct Newest {
            newest: u64,
        }
        let newest = self
            .query(&format!(
                "SELECT max({column}) AS newest FROM {}",
                self.rollup(table)
            ))
            .fetch_one::<Newest>()
            .await?
            .newest;
        let now = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or_default();
        Ok(now.max(newest + 1))
    }

    /// A rollup's name qualified with [`Store::rollups_database`], for SQL.
    pub fn rollup(&self, table: &str) -> String {
        format!("{}.{table}", self.rollups_database())
    }

    /// (major, minor) of the server, for gating newer features.
    pub fn server_version(&self) -> (u32, u32) {
        self.server_version
    }

    /// The most partitions one INSERT may touch (0: no limit); inserts of
    /// raw rows are split to stay within it.
    pub fn partition_limit(&self) -> u64 {
        self.partition_limit
    }

    /// The client, for queries this crate does not wrap (tests, tools).
    pub fn client(&self) -> &clickhouse::Client {
        &self.client
    }

    /// True when the server answers a trivial query.
    pub async fn ping(&self) -> bool {
        self.client
            .query("SELECT 1")
            .fetch_one::<u8>()
            .await
            .is_ok()
    }
}

impl QueryIds {
    fn next(&self) -> String {
        format!(
            "{}{}",
            self.prefix,
            self.next.fetch_add(1, Ordering::Relaxed)
        )
    }
}

fn parse_version(version: &str) -> Result<(u32, u32), StoreError> {
    let mut parts = version.split('.').map(str::parse::<u32>);
    match (parts.next(), parts.next()) {
        (Some(Ok(major)), Some(Ok(minor))) => Ok((major, minor)),
        _ => Err(StoreError::Version(version.to_string())),
    }
}

/// The rollups' database for a store database: `<database>_rollups`.
pub fn rollups_database(database: &str) -> String {
    format!("{database}_rollups")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_error(text: &str) -> StoreError {
        StoreError::ClickHouse(clickhouse::error::Error::BadResponse(text.into()))
    }

    #[test]
    fn errors_the_same_rows_would_meet_again_are_permanent() {
        let constraint = server_error(
            "Code: 469. DB::Exception: Constraint `no_poison` for table x is violated at row 1. \
             (VIOLATED_CONSTRAINT) (version 26.9.2.1)",
        );
        assert_eq!(constraint.code(), Some(469));
        assert!(constraint.is_permanent());
        let partitions = server_error(
            "Code: 252. DB::Exception: Too many partitions for single INSERT block (more than 100).",
        );
        assert!(partitions.is_permanent());
        let parts = server_error("Code: 252. DB::Exception: Too many parts (300). Merges are processing significantly slower than inserts.");
        assert!(!parts.is_permanent(), "too many parts passes with time");
        let read_only = server_error(
            "Code: 164, e.displayText() = DB::Exception: Cannot insert: readonly mode",
        );
        assert_eq!(read_only.code(), Some(164));
        assert!(!read_only.is_permanent());
        assert!(!server_error("no code at all").is_permanent());
        let timeout =
            server_error("Code: 159. DB::Exception: Timeout exceeded: elapsed 30.1 seconds");
        assert!(timeout.is_over_limit() && !timeout.is_permanent());
        assert!(
            server_error("Code: 396. DB::Exception: Limit for result exceeded").is_over_limit()
        );
        assert!(!read_only.is_over_limit());
        assert!(!StoreError::Version("x".into()).is_permanent());
    }

    #[test]
    fn versions_of_old_and_new_servers_parse() {
        assert_eq!(parse_version("18.16.1").ok(), Some((18, 16)));
        assert_eq!(parse_version("25.3.2.39").ok(), Some((25, 3)));
        assert!(parse_version("unknown").is_err());
    }
}
