//! Configuration files for the services a test starts, written by `toml`
//! from typed sections (no hand-made quoting). Each section has the names
//! and shape the service's own configuration reads, which refuses unknown
//! names, so a section that drifts from it fails the service's start.

use channelshift_api::config::ServerLimits;
use channelshift_ingest::config::{IngestConfig, KafkaConfig};
use channelshift_kafka::KafkaSecurity;
use channelshift_store::ClickHouseConfig;
use secrecy::ExposeSecret;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Writes `file` as TOML.
pub fn toml_text(file: &impl Serialize) -> String {
    toml::to_string(file).expect("a configuration serialises as TOML")
}

/// `[clickhouse]`: where and as whom a service connects.
#[derive(Serialize)]
pub struct ClickHouseSection {
    pub url: String,
    pub user: String,
    pub password: String,
    pub database: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
}

impl From<&ClickHouseConfig> for ClickHouseSection {
    fn from(config: &ClickHouseConfig) -> Self {
        Self {
            url: config.url.clone(),
            user: config.user.clone(),
            password: config.password.expose_secret().to_string(),
            database: config.database.clone(),
            ca_file: config
                .ca_file
                .as_ref()
                .map(|file| file.display().to_string()),
        }
    }
}

/// `channelshift-ingest`'s file, from the configuration a test built.
#[derive(Serialize)]
pub struct IngestFile {
    pub listen: String,
    pub max_message_bytes: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_event_age_days: Option<u32>,
    pub stall_after_seconds: u64,
    pub attempt_timeout_seconds: u64,
    pub fencing: bool,
    pub shutdown_timeout_ms: u64,
    pub kafka: KafkaSection,
    pub clickhouse: ClickHouseSection,
    pub batch: BatchSection,
    pub privacy: PrivacySection,
}

#[derive(Serialize)]
pub struct KafkaSection {
    pub brokers: String,
    pub group_id: String,
    pub contact_topic: String,
    pub satisfaction_topic: String,
    pub create_topics: bool,
    pub partitions: i32,
    pub session_timeout_ms: u32,
    pub prefetch_kbytes: u32,
    pub assignment_strategy: String,
    pub dead_letter_retention_days: u32,
    pub security: SecuritySection,
}

/// `[kafka.security]`.
#[derive(Serialize)]
pub struct SecuritySection {
    pub protocol: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sasl_mechanism: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify_hostname: Option<bool>,
    pub properties: std::collections::BTreeMap<String, String>,
}

impl From<&KafkaSecurity> for SecuritySection {
    fn from(security: &KafkaSecurity) -> Self {
        let path = |file: &Option<std::path::PathBuf>| {
            file.as_ref().map(|file| file.display().to_string())
        };
        Self {
            protocol: security.protocol.as_str(),
            sasl_mechanism: security.sasl_mechanism.map(|mechanism| mechanism.as_str()),
            username: security.username.clone(),
            password: security
                .password
                .as_ref()
                .map(|password| password.expose_secret().to_string()),
            ca_file: path(&security.ca_file),
            certificate_file: path(&security.certificate_file),
            key_file: path(&security.key_file),
            verify_hostname: security.verify_hostname,
            properties: security.properties.clone(),
        }
    }
}

impl From<&KafkaConfig> for KafkaSection {
    fn from(kafka: &KafkaConfig) -> Self {
        Self {
            brokers: kafka.brokers.clone(),
            group_id: kafka.group_id.clone(),
            contact_topic: kafka.contact_topic.clone(),
            satisfaction_topic: kafka.satisfaction_topic.clone(),
            create_topics: kafka.create_topics,
            partitions: kafka.partitions,
            session_timeout_ms: kafka.session_timeout_ms,
            prefetch_kbytes: kafka.prefetch_kbytes,
            assignment_strategy: kafka.assignment_strategy.clone(),
            dead_letter_retention_days: kafka.dead_letter_retention_days,
            security: (&kafka.security).into(),
        }
    }
}

/// `channelshift-ingest reconcile`'s file: the topics and the store to compare.
#[derive(Serialize)]
pub struct ReconcileFile {
    pub kafka: KafkaSection,
    pub clickhouse: ClickHouseSection,
}

impl From<&IngestConfig> for ReconcileFile {
    fn from(config: &IngestConfig) -> Self {
        Self {
            kafka: (&config.kafka).into(),
            clickhouse: (&config.clickhouse).into(),
        }
    }
}

#[derive(Serialize)]
pub struct BatchSection {
    pub max_rows: usize,
    pub max_bytes: usize,
    pub max_wait_ms: u64,
}

#[derive(Serialize)]
pub struct PrivacySection {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pseudonym_key: Option<String>,
    pub dev_mode: bool,
}

impl From<&IngestConfig> for IngestFile {
    fn from(config: &IngestConfig) -> Self {
        let batch = &config.batch;
        Self {
            listen: config.listen.to_string(),
            max_message_bytes: config.max_message_bytes,
            max_event_age_days: config.max_event_age_days,
            stall_after_seconds: config.stall_after_seconds,
            attempt_timeout_seconds: config.attempt_timeout_seconds,
            fencing: config.fencing,
            shutdown_timeout_ms: config.shutdown_timeout_ms,
            kafka: (&config.kafka).into(),
            clickhouse: (&config.clickhouse).into(),
            batch: BatchSection {
                max_rows: batch.max_rows,
                max_bytes: batch.max_bytes,
                max_wait_ms: batch.max_wait_ms,
            },
            privacy: PrivacySection {
                pseudonym_key: config
                    .privacy
                    .pseudonym_key
                    .as_ref()
                    .map(|key| key.expose_secret().to_string()),
                dev_mode: config.privacy.dev_mode,
            },
        }
    }
}

/// `channelshift-api`'s file (also read by `channelshift-packs`).
#[derive(Serialize)]
pub struct ApiFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    pub clickhouse: ClickHouseSection,
    pub auth: AuthSection,
    pub kpi: KpiSection,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerSection>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<channelshift_store::QueryLimits>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packs: Option<PacksSection>,
}

#[derive(Serialize)]
pub struct AuthSection {
    pub token_sha256: Vec<String>,
    pub revoked_sha256: Vec<String>,
}

impl AuthSection {
    /// Accepts `tokens` (stored hashed), refuses `revoked`.
    pub fn new(tokens: &[String], revoked: &[String]) -> Self {
        let hashes = |tokens: &[String]| {
            tokens
                .iter()
                .map(|token| hex::encode(Sha256::digest(token.as_bytes())))
                .collect()
        };
        Self {
            token_sha256: hashes(tokens),
            revoked_sha256: hashes(revoked),
        }
    }
}

#[derive(Default, Serialize)]
pub struct KpiSection {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppression_threshold: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pack_settle_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Span>,
}

/// A range of local dates, `YYYY-MM-DD`.
#[derive(Serialize)]
pub struct Span {
    pub from: String,
    pub to: String,
}

#[derive(Serialize)]
pub struct ServerSection {
    pub header_read_timeout_ms: u64,
    pub request_timeout_ms: u64,
    pub max_header_bytes: usize,
    pub max_body_bytes: usize,
}

impl From<&ServerLimits> for ServerSection {
    fn from(limits: &ServerLimits) -> Self {
        Self {
            header_read_timeout_ms: limits.header_read_timeout_ms,
            request_timeout_ms: limits.request_timeout_ms,
            max_header_bytes: limits.max_header_bytes,
            max_body_bytes: limits.max_body_bytes,
        }
    }
}

#[derive(Default, Serialize)]
pub struct PacksSection {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chromium: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub calendar: Vec<Meeting>,
}

/// One `[[packs.calendar]]` entry.
#[derive(Serialize)]
pub struct Meeting {
    pub council: String,
    pub committee: String,
    pub meets: String,
    pub data_as_of: String,
    pub reports: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_by_toml_and_empty_sections_left_out() {
        let file = ApiFile {
            listen: Some("127.0.0.1:1".into()),
            clickhouse: ClickHouseSection {
                url: "http://127.0.0.1:8123".into(),
                user: "reader".into(),
                password: "a \"quoted\" \\ secret".into(),
                database: "db".into(),
                ca_file: None,
            },
            auth: AuthSection::new(&["t".into()], &[]),
            kpi: KpiSection::default(),
            server: None,
            query: None,
            packs: None,
        };
        let text = toml_text(&file);
        let back: toml::Table = text.parse().expect("reads back");
        assert_eq!(
            back["clickhouse"]["password"].as_str(),
            Some("a \"quoted\" \\ secret")
        );
        assert!(
            !text.contains("[server]") && !text.contains("[packs]"),
            "{text}"
        );
    }
}
