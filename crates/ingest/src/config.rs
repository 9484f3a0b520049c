//! Ingest configuration. Defaults suit the local stack; every field can be set
//! in a TOML file (`--config`) or by `CHANNELSHIFT_*` variables.

use channelshift_kafka::KafkaSecurity;
use channelshift_store::ClickHouseConfig;
use rdkafka::ClientConfig;
use secrecy::SecretString;
use serde::Deserialize;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Clone, Debug, Deserialize)]
pub struct IngestConfig {
    pub kafka: KafkaConfig,
    pub clickhouse: ClickHouseConfig,
    #[serde(default)]
    pub batch: BatchConfig,
    #[serde(default)]
    pub privacy: PrivacyConfig,
    /// How long raw rows are kept (`channelshift-ingest purge-raw`).
    #[serde(default)]
    pub retention: crate::retention::RetentionConfig,
    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Messages larger than this go to the dead-letter topic as `too_large`.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// Events (`occurred_at`) and responses (`responded_at`) older than this
    /// many days go to the dead-letter topic as `too_old`. Unset (the
    /// default), any age is accepted: back-loading years of history is a
    /// real use.
    #[serde(default)]
    pub max_event_age_days: Option<u32>,
    /// A partition this replica holds with messages waiting and no progress
    /// for this long turns readiness red (`stalled_partitions`).
    #[serde(default = "default_stall_after_seconds")]
    pub stall_after_seconds: u64,
    /// The longest one write attempt may take before it is abandoned (its
    /// queries stopped on the server) and retried. At most 240: the consumer
    /// must poll within `max.poll.interval.ms` (300 s).
    #[serde(default = "default_attempt_timeout_seconds")]
    pub attempt_timeout_seconds: u64,
    /// Fencing (see `pipeline.rs`): a replica's rows are stored only while it
    /// holds their partition. Leave on; off only to measure what it prevents.
    #[serde(default = "yes")]
    pub fencing: bool,
    /// How long SIGTERM waits for the open batch to be written and committed.
    #[serde(default = "default_shutdown_timeout_ms")]
    pub shutdown_timeout_ms: u64,
}

#[derive(Clone, Debug, Deserialize)]
pub struct KafkaConfig {
    /// `host:port[,host:port…]`
    pub brokers: String,
    #[serde(default = "default_group")]
    pub group_id: String,
    #[serde(default = "default_contact_topic")]
    pub contact_topic: String,
    #[serde(default = "default_satisfaction_topic")]
    pub satisfaction_topic: String,
    /// Create the topics (and their dead-letter topics) if missing.
    #[serde(default = "yes")]
    pub create_topics: bool,
    #[serde(default = "default_partitions")]
    pub partitions: i32,
    #[serde(default = "default_session_timeout_ms")]
    pub session_timeout_ms: u32,
    /// Upper bound of messages fetched ahead of the batch (librdkafka's
    /// `queued.max.messages.kbytes`); part of ingest's memory bound.
    #[serde(default = "default_prefetch_kbytes")]
    pub prefetch_kbytes: u32,
    /// The least data the broker returns for a fetch before
    /// `fetch_wait_max_ms` runs out (librdkafka `fetch.min.bytes`): fewer,
    /// larger fetches under load.
    #[serde(default = "default_fetch_min_bytes")]
    pub fetch_min_bytes: u32,
    /// How long the broker may hold a fetch to gather `fetch_min_bytes`
    /// (`fetch.wait.max.ms`): the most it adds to a message's latency.
    #[serde(default = "default_fetch_wait_max_ms")]
    pub fetch_wait_max_ms: u32,
    /// `cooperative-sticky` moves only the partitions that must move when a
    /// replica joins or leaves; `range` or `roundrobin` revoke everything.
    /// Each is safe on every broker: fencing, not the assignor, keeps one
    /// writer per partition (a broker that hands a partition to a new member
    /// before its owner revokes it, as Tansu 0.6 does under
    /// `cooperative-sticky`, costs fenced batches, not double counts). Changing
    /// it needs the whole group stopped first: a broker refuses a member
    /// whose protocol differs from the running group's.
    #[serde(default = "default_assignment_strategy")]
    pub assignment_strategy: String,
    /// How long the dead-letter topics keep a letter (`retention.ms`, set
    /// when ingest creates them): a letter holds the refused message as
    /// sent, personal data included. 1 to 3,650 days; default 30.
    #[serde(default = "default_dead_letter_retention_days")]
    pub dead_letter_retention_days: u32,
    /// TLS, SASL and further librdkafka properties, for every client ingest
    /// and reconcile create (see `channelshift_kafka::KafkaSecurity`).
    #[serde(default)]
    pub security: KafkaSecurity,
}

impl KafkaConfig {
    pub fn dead_letter_topic(topic: &str) -> String {
        format!("{topic}.dlq")
    }

    /// A librdkafka configuration for these brokers with the security
    /// settings applied.
    pub fn client(&self) -> anyhow::Result<ClientConfig> {
        Ok(self.security.client_config(&self.brokers)?)
    }

    /// `retention.ms` of the dead-letter topics.
    pub fn dead_letter_retention_ms(&self) -> u64 {
        u64::from(self.dead_letter_retention_days) * 24 * 60 * 60 * 1000
    }
}

fn default_dead_letter_retention_days() -> u32 {
    30
}

/// A batch closes at whichever limit it reaches first.
#[derive(Clone, Debug, Deserialize)]
pub struct BatchConfig {
    #[serde(default = "default_max_rows")]
    pub max_rows: usize,
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
    #[serde(default = "default_max_wait_ms")]
    pub max_wait_ms: u64,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_rows: default_max_rows(),
            max_bytes: default_max_bytes(),
            max_wait_ms: default_max_wait_ms(),
        }
    }
}

impl BatchConfig {
    pub fn max_wait(&self) -> Duration {
        Duration::from_millis(self.max_wait_ms)
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct PrivacyConfig {
    /// The key customer references are hashed with. Required unless `dev_mode`.
    pub pseudonym_key: Option<SecretString>,
    /// Allows a built-in key, for local demos only; never in production.
    #[serde(default)]
    pub dev_mode: bool,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9464))
}
fn default_stall_after_seconds() -> u64 {
    60
}
fn default_attempt_timeout_seconds() -> u64 {
    60
}

pub(crate) fn default_max_message_bytes() -> usize {
    64 * 1024
}
fn default_shutdown_timeout_ms() -> u64 {
    20_000
}
fn default_group() -> String {
    "channelshift-ingest".into()
}
fn default_contact_topic() -> String {
    "contact-events".into()
}
fn default_satisfaction_topic() -> String {
    "satisfaction-responses".into()
}
fn yes() -> bool {
    true
}
fn default_partitions() -> i32 {
    3
}
fn default_session_timeout_ms() -> u32 {
    10_000
}
fn default_prefetch_kbytes() -> u32 {
    16 * 1024
}
fn default_fetch_min_bytes() -> u32 {
    1_000_000
}
fn default_fetch_wait_max_ms() -> u32 {
    100
}
fn default_assignment_strategy() -> String {
    "cooperative-sticky".into()
}
fn default_max_rows() -> usize {
    50_000
}
fn default_max_bytes() -> usize {
    16 * 1024 * 1024
}
fn default_max_wait_ms() -> u64 {
    500
}
