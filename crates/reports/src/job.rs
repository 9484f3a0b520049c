//! One pack rendered for the API, in a process of its own: the API writes a
//! [`Job`] as one JSON object to `channelshift-packs render`'s standard
//! input and reads the file from its standard output. On failure the process
//! exits non-zero and the last line of its standard error is a [`Failure`]
//! as JSON, which the API turns into its answer.

use crate::policy::KpiSettings;
use crate::ReportError;
use channelshift_kpi::period::PeriodKind;
use channelshift_store::{ClickHouseConfig, QueryLimits};
use chrono::NaiveDate;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Where the pack's figures are read from. The password travels only through
/// the pipe between the two processes (no `Debug`, so it is never logged).
#[derive(Clone, Serialize, Deserialize)]
pub struct Connection {
    pub url: String,
    pub user: String,
    pub password: String,
    pub database: String,
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
}

impl From<&ClickHouseConfig> for Connection {
    fn from(config: &ClickHouseConfig) -> Self {
        Self {
            url: config.url.clone(),
            user: config.user.clone(),
            password: config.password.expose_secret().to_string(),
            database: config.database.clone(),
            ca_file: config.ca_file.clone(),
        }
    }
}

impl From<Connection> for ClickHouseConfig {
    fn from(connection: Connection) -> Self {
        Self {
            url: connection.url,
            user: connection.user,
            password: SecretString::from(connection.password),
            database: connection.database,
            ca_file: connection.ca_file,
        }
    }
}

/// One pack, in one format, and everything its figures are computed under.
#[derive(Clone, Serialize, Deserialize)]
pub struct Job {
    pub clickhouse: Connection,
    /// The API's limits on each query (`[query]`).
    #[serde(default)]
    pub query: QueryLimits,
    pub kpi: KpiSettings,
    pub chromium: PathBuf,
    pub pdf_timeout_seconds: u64,
    /// A folder the caller removes when the job ends, however it ends: the
    /// job's temporary files (Chromium's profile and pages) go there.
    pub work_dir: PathBuf,
    pub council: String,
    /// The kind of period, and a day in it.
    pub period: PeriodKind,
    pub date: NaiveDate,
    pub as_of: i64,
    pub previous_as_of: Option<i64>,
    /// A [`Format`] name.
    pub format: String,
    /// When given, every query's id starts with it: the API stops them
    /// (`KILL QUERY`) when it gives up on the request.
    #[serde(default)]
    pub query_id_prefix: Option<String>,
}

/// Why a job failed, as the API needs to tell its client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "failure", rename_all = "snake_case")]
pub enum Failure {
    /// The request cannot be answered as asked; names the parameter.
    BadRequest {
        parameter: String,
        message: String,
    },
    /// ClickHouse could not answer: try again shortly.
    StoreUnavailable {
        message: String,
    },
    /// A query met one of the API's limits (time, rows, memory).
    TooLarge {
        message: String,
    },
    /// The PDF printer is missing or busy.
    Unavailable {
        message: String,
    },
    Internal {
        message: String,
    },
}

impl From<ReportError> for Failure {
    fn from(error: ReportError) -> Self {
        match error {
            ReportError::BadRequest { parameter, message } => {
                Failure::BadRequest { parameter, message }
            }
            ReportError::Store(error) if error.is_over_limit() => Failure::TooLarge {
                message: error.to_string(),
            },
            ReportError::Store(error) => Failure::StoreUnavailable {
                message: error.to_string(),
            },
        }
    }
}
