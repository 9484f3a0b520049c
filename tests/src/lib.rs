//! Test harness for black-box tests against the real local stack (started by
//! `cargo xtask test`): each test gets its own database, topics and consumer
//! group, and talks to the services the way a client would.

pub mod api_process;
pub mod broker;
pub mod checks;
pub mod clickhouse;
pub mod config_file;
pub mod grafana;
pub mod kafka;
pub mod monitored;
pub mod process;
pub mod rollups;
pub mod server;
pub mod tls;

use anyhow::{Context, Result};
use channelshift_api::config::{ApiConfig, AuthConfig, KpiSettings, PacksConfig, ServerLimits};
use channelshift_ingest::config::{BatchConfig, IngestConfig, KafkaConfig, PrivacyConfig};
use channelshift_runtime::health::Health;
use channelshift_runtime::shutdown::{self, Trigger};
use channelshift_store::{ClickHouseConfig, Store};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::task::JoinHandle;

/// Where the local stack is, from the variables `cargo xtask test` sets.
#[derive(Clone, Debug)]
pub struct StackEnv {
    pub kafka_brokers: String,
    /// How clients reach `kafka_brokers`: plaintext for the local stack;
    /// TLS and SASL for a test's [`broker::SecuredBroker`].
    pub kafka_security: channelshift_kafka::KafkaSecurity,
    pub clickhouse_url: String,
    pub writer_user: String,
    pub writer_password: String,
    pub reader_user: String,
    pub reader_password: String,
    /// Where the stack's ClickHouse reads more users from while it runs.
    pub clickhouse_users_d: String,
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: these tests need the real local stack. Run them with \
             `cargo xtask test`, or `eval \"$(cargo xtask stack env --profile test)\"` first."
        )
    })
}

impl StackEnv {
    pub fn from_env() -> Self {
        Self {
            kafka_brokers: var("CHANNELSHIFT_STACK_KAFKA_BROKERS"),
            kafka_security: Default::default(),
            clickhouse_url: var("CHANNELSHIFT_STACK_CLICKHOUSE_URL"),
            writer_user: var("CHANNELSHIFT_STACK_WRITER_USER"),
            writer_password: var("CHANNELSHIFT_STACK_WRITER_PASSWORD"),
            reader_user: var("CHANNELSHIFT_STACK_READER_USER"),
            reader_password: var("CHANNELSHIFT_STACK_READER_PASSWORD"),
            clickhouse_users_d: var("CHANNELSHIFT_STACK_CLICKHOUSE_USERS_D"),
        }
    }
}

/// Names private to one test: database, topics, consumer group.
#[derive(Clone, Debug)]
pub struct Scope {
    pub stack: StackEnv,
    pub database: String,
    pub contact_topic: String,
    pub satisfaction_topic: String,
    pub group_id: String,
}

impl Scope {
    pub fn new(test: &str) -> Self {
        let suffix = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        Self {
            stack: StackEnv::from_env(),
            database: format!("cs_test_{suffix}"),
            contact_topic: format!("contact-events-{test}-{suffix}"),
            satisfaction_topic: format!("satisfaction-responses-{test}-{suffix}"),
            group_id: format!("ingest-{test}-{suffix}"),
        }
    }

    pub fn writer(&self) -> ClickHouseConfig {
        ClickHouseConfig {
            url: self.stack.clickhouse_url.clone(),
            user: self.stack.writer_user.clone(),
            password: SecretString::from(self.stack.writer_password.clone()),
            database: self.database.clone(),
            ca_file: None,
        }
    }

    pub fn reader(&self) -> ClickHouseConfig {
        ClickHouseConfig {
            url: self.stack.clickhouse_url.clone(),
            user: self.stack.reader_user.clone(),
            password: SecretString::from(self.stack.reader_password.clone()),
            database: self.database.clone(),
            ca_file: None,
        }
    }

    fn dashboards_user_name(&self) -> String {
        format!(
            "dashboards_{}",
            self.database.trim_start_matches("cs_test_")
        )
    }

    /// A user like the dashboards' (Grafana's): one that may read this
    /// test's rollups' database and no other, added to the running server
    /// through its `users.d` and ready when this returns. Its default
    /// database is the rollups'.
    pub async fn dashboards_user(&self) -> Result<ClickHouseConfig> {
        let rollups = channelshift_store::rollups_database(&self.database);
        let user = self.dashboards_user_name();
        let password = uuid::Uuid::new_v4().simple().to_string();
        let hash = hex::encode(Sha256::digest(password.as_bytes()));
        let dir = std::path::Path::new(&self.stack.clickhouse_users_d);
        std::fs::create_dir_all(dir)?;
        std::fs::write(
            dir.join(format!("{user}.xml")),
            format!(
                "<?xml version=\"1.0\"?>\n<yandex><users><{user}>\
                 <password_sha256_hex>{hash}</password_sha256_hex>\
                 <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>\
                 <profile>dashboards</profile><quota>default</quota>\
                 <allow_databases><database>{rollups}</database></allow_databases>\
                 </{user}></users></yandex>\n"
            ),
        )?;
        let config = ClickHouseConfig {
            url: self.stack.clickhouse_url.clone(),
            user,
            password: SecretString::from(password),
            database: rollups,
            ca_file: None,
        };
        // The server reads users.d every few seconds.
        let client = ::clickhouse::Client::default()
            .with_url(&config.url)
            .with_user(&config.user)
            .with_password(secrecy::ExposeSecret::expose_secret(&config.password));
        eventually(
            "the server takes the dashboards' user from users.d",
            Duration::from_secs(30),
            || {
                let client = client.clone();
                async move { Ok(client.query("SELECT 1").execute().await.ok()) }
            },
        )
        .await?;
        Ok(config)
    }

    /// Ingest settings for tests: short batches and a short group session.
    pub fn ingest_config(&self) -> IngestConfig {
        IngestConfig {
            kafka: KafkaConfig {
                brokers: self.stack.kafka_brokers.clone(),
                group_id: self.group_id.clone(),
                contact_topic: self.contact_topic.clone(),
                satisfaction_topic: self.satisfaction_topic.clone(),
                create_topics: true,
                partitions: 3,
                session_timeout_ms: 6_000,
                prefetch_kbytes: 16 * 1024,
                fetch_min_bytes: 1_000_000,
                fetch_wait_max_ms: 100,
                assignment_strategy: "cooperative-sticky".into(),
                dead_letter_retention_days: 30,
                security: self.stack.kafka_security.clone(),
            },
            clickhouse: self.writer(),
            batch: BatchConfig {
                max_rows: 10_000,
                max_bytes: 8 * 1024 * 1024,
                max_wait_ms: 200,
            },
            retention: Default::default(),
            privacy: PrivacyConfig {
                pseudonym_key: Some(SecretString::from(
                    "test-pseudonym-key-of-thirty-two-bytes-or-more",
                )),
                dev_mode: false,
            },
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            max_message_bytes: 64 * 1024,
            max_event_age_days: None,
            stall_after_seconds: 60,
            attempt_timeout_seconds: 60,
            fencing: true,
            shutdown_timeout_ms: 20_000,
        }
    }

    /// A store handle as the writer, for checks the API does not expose.
    pub async fn store(&self) -> Result<Store> {
        Ok(Store::connect(&self.writer()).await?)
    }

    /// What drops the test's databases: its rollups', then its own (a client
    /// that names the test's database can send both).
    pub fn drop_statements(&self) -> [String; 2] {
        [
            channelshift_store::rollups_database(&self.database),
            self.database.clone(),
        ]
        .map(|database| format!("DROP DATABASE IF EXISTS `{database}`"))
    }

    /// Drops the test's databases, and its dashboards' user if it has one.
    pub async fn drop_database(&self) -> Result<()> {
        let users_file = std::path::Path::new(&self.stack.clickhouse_users_d)
            .join(format!("{}.xml", self.dashboards_user_name()));
        if users_file.exists() {
            std::fs::remove_file(users_file)?;
        }
        let store = self.store().await?;
        for drop in self.drop_statements() {
            store
                .client()
                .clone()
                .with_database("system")
                .query(&drop)
                .execute()
                .await?;
        }
        Ok(())
    }
}

/// A service running inside the test process.
pub struct Running {
    trigger: Trigger,
    task: JoinHandle<Result<()>>,
}

impl Running {
    /// Asks the service to stop and waits for it (it flushes and commits first).
    pub async fn stop(self) -> Result<()> {
        self.trigger.fire();
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .context("service did not stop within 30 s")??
    }

    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

pub fn start_ingest(config: IngestConfig) -> Running {
    channelshift_runtime::telemetry::init();
    let (trigger, stop) = shutdown::channel();
    let task = tokio::spawn(channelshift_ingest::run(config, stop));
    Running { trigger, task }
}

pub const API_TOKEN: &str = "test-token-for-the-kpi-api";

/// Starts the API on a free loopback port as the read-only user; returns its base URL.
pub async fn start_api(scope: &Scope, suppression_threshold: u64) -> Result<(String, Running)> {
    start_api_with(
        scope,
        KpiSettings {
            suppression_threshold,
            ..KpiSettings::default()
        },
    )
    .await
}

/// Creates the scope's topics (as a council's producers would find them).
pub async fn create_topics(scope: &Scope) -> Result<()> {
    channelshift_ingest::pipeline::create_topics(&scope.ingest_config().kafka).await
}

pub fn producer(scope: &Scope) -> Result<FutureProducer> {
    Ok(scope
        .stack
        .kafka_security
        .client_config(&scope.stack.kafka_brokers)?
        .set("enable.idempotence", "true")
        .create()?)
}

/// Produces `payload` to `topic` keyed by `key`, waiting for the broker's ack.
pub async fn produce(
    producer: &FutureProducer,
    topic: &str,
    key: &str,
    payload: &[u8],
) -> Result<()> {
    producer
        .send(
            FutureRecord::to(topic).key(key).payload(payload),
            Timeout::After(Duration::from_secs(30)),
        )
        .await
        .map_err(|(error, _)| anyhow::anyhow!("producing to {topic}: {error}"))?;
    Ok(())
}

/// Polls `check` every 250 ms until it returns `Some`, or fails after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last_error = None;
    loop {
        match check().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(error) => last_error = Some(error),
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!(
                "{what}: not reached within {timeout:?}{}",
                last_error
                    .map(|error| format!(" (last error: {error:#})"))
                    .unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

const CHANNELS: [&str; 6] = ["web", "phone", "app", "face_to_face", "email", "web"];
const OUTCOMES: [&str; 4] = ["completed", "completed", "abandoned", "ineligible"];

/// A valid contact event numbered `i`; channel, outcome and day vary with it.
pub fn contact_event(id: &str, i: usize) -> Vec<u8> {
    serde_json::json!({
        "schema_version": 1,
        "event_id": id,
        "council": "E07000041",
        "occurred_at": format!("2025-{:02}-{:02}T10:{:02}:00Z", 1 + i % 12, 1 + i % 28, i % 60),
        "channel": CHANNELS[i % CHANNELS.len()],
        "service": "council_tax",
        "outcome": OUTCOMES[i % OUTCOMES.len()],
        "customer_type": if i.is_multiple_of(5) { "business" } else { "resident" },
        "customer_ref": format!("CRM-{i}"),
        "ward": "E05004321",
    })
    .to_string()
    .into_bytes()
}

/// `count` valid contact events with ids `{prefix}-{n}`, keyed by id.
pub fn contact_events(prefix: &str, range: std::ops::Range<usize>) -> Vec<(String, Vec<u8>)> {
    range
        .map(|i| {
            let id = format!("{prefix}-{i}");
            let payload = contact_event(&id, i);
            (id, payload)
        })
        .collect()
}

/// A valid satisfaction response numbered `i`.
pub fn satisfaction_response(id: &str, i: usize) -> Vec<u8> {
    serde_json::json!({
        "schema_version": 1,
        "response_id": id,
        "council": "E07000041",
        "responded_at": format!("2025-{:02}-{:02}T12:00:00Z", 1 + i % 12, 1 + i % 28),
        "channel": CHANNELS[i % CHANNELS.len()],
        "service": "waste",
        "instrument": "csat5",
        "score": 1 + i % 5,
        "customer_type": "resident",
    })
    .to_string()
    .into_bytes()
}

/// Valid satisfaction responses with ids `{prefix}-{n}`, keyed by id.
pub fn satisfaction_responses(
    prefix: &str,
    range: std::ops::Range<usize>,
) -> Vec<(String, Vec<u8>)> {
    range
        .map(|i| {
            let id = format!("{prefix}-{i}");
            let payload = satisfaction_response(&id, i);
            (id, payload)
        })
        .collect()
}

/// Starts the API like [`start_api`], with the given KPI settings (take-up
/// definition, targets, unit costs, baseline, channel classes).
pub async fn start_api_with(scope: &Scope, kpi: KpiSettings) -> Result<(String, Running)> {
    start_api_for_councils(scope, kpi, Default::default()).await
}

/// The API in-process under `kpi` as the default block and `councils`'
/// blocks (`[councils.<GSS>]`) over it.
pub async fn start_api_for_councils(
    scope: &Scope,
    kpi: KpiSettings,
    councils: channelshift_api::config::CouncilBlocks,
) -> Result<(String, Running)> {
    start_api_configured(scope, kpi, councils, ServerLimits::default()).await
}

/// The API in-process as [`start_api_for_councils`] starts it, with
/// `server` as its `[server]` section.
pub async fn start_api_configured(
    scope: &Scope,
    kpi: KpiSettings,
    councils: channelshift_api::config::CouncilBlocks,
    server: ServerLimits,
) -> Result<(String, Running)> {
    let config = ApiConfig {
        councils,
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        clickhouse: scope.reader(),
        auth: AuthConfig {
            token_sha256: vec![hex::encode(Sha256::digest(API_TOKEN.as_bytes()))],
            revoked_sha256: Vec::new(),
        },
        kpi,
        server,
        query: channelshift_store::QueryLimits::default(),
        packs: PacksConfig {
            binary: Some(process::packs_binary()?),
            ..PacksConfig::default()
        },
        tls: None,
    };
    let store = Store::connect(&config.clickhouse).await?;
    let state = channelshift_api::AppState::new(&config, store)?;
    let health = Health::new();
    health.set("clickhouse", true);
    let registry = prometheus::Registry::new();
    let (trigger, stop) = shutdown::channel();
    channelshift_api::watch_definitions(&state, &registry, stop.clone())?;
    let app = channelshift_api::router(state, &registry, health, &config.server)?;
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let address = listener.local_addr()?;
    let task = tokio::spawn(async move {
        channelshift_api::serve(listener, app, &config.server, None, stop.requested()).await;
        Ok(())
    });
    Ok((format!("http://{address}"), Running { trigger, task }))
}

/// Publishes the definitions of `councils` (blocks over `kpi`) as
/// `channelshift-api publish-definitions` does, as the scope's writer.
pub async fn publish_definitions(
    scope: &Scope,
    kpi: &KpiSettings,
    councils: &channelshift_api::config::CouncilBlocks,
) -> Result<()> {
    let councils = channelshift_reports::Councils::new(kpi, councils)?;
    let store = Store::connect(&scope.writer()).await?;
    store
        .publish_definitions(
            &councils.definitions(),
            &channelshift_api::definitions_fingerprint(&councils),
        )
        .await?;
    Ok(())
}

/// Messages as (key, payload), ready to produce.
pub type Messages = Vec<(String, Vec<u8>)>;

/// The generator's messages split by topic, (contacts, responses), until it
/// ends or `limit` messages have come.
pub fn simulated(
    generator: &mut channelshift_simulator::Generator,
    limit: Option<u64>,
) -> (Messages, Messages) {
    let (mut contacts, mut responses) = (Vec::new(), Vec::new());
    while let Some(batch) = generator.next_batch() {
        for message in batch {
            let entry = (message.key, message.payload);
            if message.satisfaction {
                responses.push(entry);
            } else {
                contacts.push(entry);
            }
        }
        if limit.is_some_and(|limit| (contacts.len() + responses.len()) as u64 >= limit) {
            break;
        }
    }
    (contacts, responses)
}
