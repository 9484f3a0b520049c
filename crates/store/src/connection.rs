//! Connecting to ClickHouse and deciding, from `SELECT version()`, whether the
//! client may validate rows (the 18.16 server refuses the settings validation needs).

use crate::partitions::DEFAULT_PARTITION_LIMIT;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

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
        let base = clickhouse::Client::default()
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
        })
    }

    pub fn database(&self) -> &str {
        &self.database
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

fn parse_version(version: &str) -> Result<(u32, u32), StoreError> {
    let mut parts = version.split('.').map(str::parse::<u32>);
    match (parts.next(), parts.next()) {
        (Some(Ok(major)), Some(Ok(minor))) => Ok((major, minor)),
        _ => Err(StoreError::Version(version.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_of_old_and_new_servers_parse() {
        assert_eq!(parse_version("18.16.1").ok(), Some((18, 16)));
        assert_eq!(parse_version("25.3.2.39").ok(), Some((25, 3)));
        assert!(parse_version("unknown").is_err());
    }
}
