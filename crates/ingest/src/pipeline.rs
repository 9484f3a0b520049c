//! The consume → validate → de-duplicate → insert → commit loop.
//!
//! Exactly-once effect, as built so far: offsets are committed to Kafka only
//! after the batch's rows are in ClickHouse, so a crash re-delivers rather than
//! loses; and before every insert the batch's ids are looked up in the id
//! index tables (fed by materialized views in the same INSERT as the rows), so
//! a re-delivered or re-sent event is skipped rather than counted twice.

use crate::config::{IngestConfig, KafkaConfig};
use crate::metrics::IngestMetrics;
use crate::privacy::{scrub_comment, Pseudonymiser};
use anyhow::{Context, Result};
use channelshift_contract::{ContactEvent, Rejection, RejectionReason, SatisfactionResponse};
use channelshift_runtime::health::Health;
use channelshift_runtime::shutdown::Shutdown;
use channelshift_store::{ContactRow, KafkaPosition, SatisfactionRow, Store};
use chrono::Utc;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::Timeout;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

/// How long a loop may go without a heartbeat before readiness turns red.
const STALL_AFTER: Duration = Duration::from_secs(60);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// A message that failed validation, kept with its original bytes.
struct DeadLetter {
    source_topic: String,
    position: KafkaPosition,
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
    rejection: Rejection,
}

/// What one batch will write and commit.
#[derive(Default)]
struct Batch {
    contacts: Vec<ContactRow>,
    satisfaction: Vec<SatisfactionRow>,
    dead_letters: Vec<DeadLetter>,
    /// Highest offset seen per (topic, partition).
    offsets: BTreeMap<(String, i32), i64>,
    messages: usize,
    bytes: usize,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.messages == 0
    }
}

pub struct Pipeline {
    config: IngestConfig,
    store: Store,
    consumer: StreamConsumer,
    producer: FutureProducer,
    pseudonymiser: Pseudonymiser,
    metrics: IngestMetrics,
    health: Health,
}

impl Pipeline {
    /// Connects to ClickHouse (applying migrations) and Kafka (creating topics
    /// if configured), retrying until both answer or shutdown is requested.
    pub async fn connect(
        config: IngestConfig,
        pseudonymiser: Pseudonymiser,
        metrics: IngestMetrics,
        health: Health,
        shutdown: &Shutdown,
    ) -> Result<Self> {
        let store = retry("connecting to ClickHouse", shutdown, || async {
            let store = Store::connect(&config.clickhouse).await?;
            store.migrate().await?;
            Ok::<_, anyhow::Error>(store)
        })
        .await?;
        health.set("clickhouse", true);

        let kafka = &config.kafka;
        if kafka.create_topics {
            retry("creating Kafka topics", shutdown, || create_topics(kafka)).await?;
        }
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", &kafka.brokers)
            .set("group.id", &kafka.group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", kafka.session_timeout_ms.to_string())
            .set(
                "heartbeat.interval.ms",
                (kafka.session_timeout_ms / 10).max(250).to_string(),
            )
            .create()
            .context("creating the Kafka consumer")?;
        consumer
            .subscribe(&[&kafka.contact_topic, &kafka.satisfaction_topic])
            .context("subscribing to the topics")?;
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &kafka.brokers)
            .set("enable.idempotence", "true")
            .set("message.timeout.ms", "30000")
            .create()
            .context("creating the dead-letter producer")?;
        health.set("kafka", true);
        Ok(Self {
            config,
            store,
            consumer,
            producer,
            pseudonymiser,
            metrics,
            health,
        })
    }

    /// Runs until shutdown: the open batch is then written and committed
    /// before returning, within the configured timeout.
    pub async fn run(self, shutdown: Shutdown) -> Result<()> {
        let max_wait = self.config.batch.max_wait();
        loop {
            self.health.beat("consumer", STALL_AFTER);
            let mut batch = Batch::default();
            let mut deadline: Option<Instant> = None;
            loop {
                let wait = match deadline {
                    Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                    // Nothing pending: wake up now and then to report liveness.
                    None => Duration::from_secs(1),
                };
                if deadline.is_some() && wait.is_zero() {
                    break;
                }
                tokio::select! {
                    received = tokio::time::timeout(wait, self.consumer.recv()) => match received {
                        Err(_elapsed) if batch.is_empty() => {
                            self.health.beat("consumer", STALL_AFTER);
                        }
                        Err(_elapsed) => break,
                        Ok(Err(error)) => {
                            tracing::warn!(%error, "Kafka consumer error");
                            self.health.set("kafka", false);
                        }
                        Ok(Ok(message)) => {
                            self.health.set("kafka", true);
                            deadline.get_or_insert_with(|| Instant::now() + max_wait);
                            self.add(&mut batch, &message);
                            if batch.messages >= self.config.batch.max_rows
                                || batch.bytes >= self.config.batch.max_bytes
                            {
                                break;
                            }
                        }
                    },
                    () = shutdown.clone().requested() => break,
                }
            }
            if !batch.is_empty() {
                let flush = self.flush(batch, &shutdown);
                if shutdown.is_requested() {
                    let timeout = Duration::from_millis(self.config.shutdown_timeout_ms);
                    tokio::time::timeout(timeout, flush)
                        .await
                        .context("the open batch was not written within the shutdown timeout; it will be re-read on restart")??;
                } else {
                    flush.await?;
                }
            }
            if shutdown.is_requested() {
                tracing::info!("ingest stopped");
                return Ok(());
            }
        }
    }

    fn add(&self, batch: &mut Batch, message: &rdkafka::message::BorrowedMessage<'_>) {
        let topic = message.topic();
        let position = KafkaPosition {
            partition: message.partition(),
            offset: message.offset(),
        };
        let payload = message.payload().unwrap_or_default();
        batch.messages += 1;
        batch.bytes += payload.len();
        let highest = batch
            .offsets
            .entry((topic.to_string(), position.partition))
            .or_insert(position.offset);
        *highest = (*highest).max(position.offset);
        self.metrics.consumed.with_label_values(&[topic]).inc();

        let now = Utc::now();
        let result = if payload.len() > self.config.max_message_bytes {
            Err(Rejection::new(
                RejectionReason::TooLarge,
                None,
                format!(
                    "{} bytes is over the {}-byte limit",
                    payload.len(),
                    self.config.max_message_bytes
                ),
            ))
        } else if topic == self.config.kafka.contact_topic {
            ContactEvent::from_json(payload, now).map(|event| {
                let customer_hash = event
                    .customer_ref
                    .as_deref()
                    .map(|reference| self.pseudonymiser.pseudonym(reference))
                    .unwrap_or_default();
                batch
                    .contacts
                    .push(ContactRow::new(&event, customer_hash, position, now));
            })
        } else {
            SatisfactionResponse::from_json(payload, now).map(|response| {
                let comment = response
                    .comment
                    .as_deref()
                    .map(scrub_comment)
                    .unwrap_or_default();
                batch
                    .satisfaction
                    .push(SatisfactionRow::new(&response, comment, position, now));
            })
        };
        if let Err(rejection) = result {
            self.metrics
                .rejected
                .with_label_values(&[topic, rejection.reason.as_str()])
                .inc();
            tracing::debug!(topic, partition = position.partition, offset = position.offset, %rejection, "rejected");
            batch.dead_letters.push(DeadLetter {
                source_topic: topic.to_string(),
                position,
                key: message.key().map(<[u8]>::to_vec),
                payload: payload.to_vec(),
                rejection,
            });
        }
    }

    /// Writes the batch (rows, then dead letters) and only then commits.
    async fn flush(&self, batch: Batch, shutdown: &Shutdown) -> Result<()> {
        self.metrics.batch_rows.observe(batch.messages as f64);
        let started = Instant::now();
        let mut contacts = batch.contacts;
        let mut satisfaction = batch.satisfaction;
        let mut backoff = Backoff::new();
        while let Err(error) = self.write_rows(&mut contacts, &mut satisfaction).await {
            self.health.set("clickhouse", false);
            backoff
                .wait("inserting into ClickHouse", error, shutdown)
                .await?;
        }
        self.health.set("clickhouse", true);
        self.metrics
            .inserted
            .with_label_values(&["contact_events"])
            .inc_by(contacts.len() as u64);
        self.metrics
            .inserted
            .with_label_values(&["satisfaction_responses"])
            .inc_by(satisfaction.len() as u64);
        self.metrics
            .insert_seconds
            .observe(started.elapsed().as_secs_f64());
        self.metrics.last_insert.set(Utc::now().timestamp() as f64);

        for letter in &batch.dead_letters {
            retry("writing to the dead-letter topic", shutdown, || {
                self.send_dead_letter(letter)
            })
            .await?;
        }
        self.commit(&batch.offsets)
    }

    /// One attempt at writing the batch's rows. The stored ids are looked up on
    /// every attempt: an attempt that failed on our side may still have been
    /// written on the server's.
    async fn write_rows(
        &self,
        contacts: &mut Vec<ContactRow>,
        satisfaction: &mut Vec<SatisfactionRow>,
    ) -> Result<()> {
        self.drop_stored(contacts, false).await?;
        self.drop_stored(satisfaction, true).await?;
        if !contacts.is_empty() {
            self.store
                .insert_contacts(contacts)
                .await
                .inspect_err(|_| {
                    self.metrics
                        .insert_errors
                        .with_label_values(&["contact_events"])
                        .inc();
                })?;
        }
        if !satisfaction.is_empty() {
            self.store
                .insert_satisfaction(satisfaction)
                .await
                .inspect_err(|_| {
                    self.metrics
                        .insert_errors
                        .with_label_values(&["satisfaction_responses"])
                        .inc();
                })?;
        }
        Ok(())
    }

    /// Removes rows whose id is already stored or repeated within the batch.
    async fn drop_stored<R: Identified>(
        &self,
        rows: &mut Vec<R>,
        satisfaction: bool,
    ) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let topic = if satisfaction {
            &self.config.kafka.satisfaction_topic
        } else {
            &self.config.kafka.contact_topic
        };
        let mut by_council: HashMap<&str, Vec<&str>> = HashMap::new();
        for row in rows.iter() {
            by_council.entry(row.council()).or_default().push(row.id());
        }
        let mut stored: HashSet<(String, String)> = HashSet::new();
        for (council, ids) in by_council {
            for id in self.store.existing_ids(council, &ids, satisfaction).await? {
                stored.insert((council.to_string(), id));
            }
        }
        let mut seen: HashSet<(String, String)> = HashSet::new();
        let before = rows.len();
        rows.retain(|row| {
            let key = (row.council().to_string(), row.id().to_string());
            !stored.contains(&key) && seen.insert(key)
        });
        let skipped = before - rows.len();
        if skipped > 0 {
            self.metrics
                .duplicates
                .with_label_values(&[topic])
                .inc_by(skipped as u64);
            tracing::info!(skipped, topic, "skipped events already stored");
        }
        Ok(())
    }

    async fn send_dead_letter(&self, letter: &DeadLetter) -> Result<()> {
        let topic = KafkaConfig::dead_letter_topic(&letter.source_topic);
        let partition = letter.position.partition.to_string();
        let offset = letter.position.offset.to_string();
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "channelshift-reason",
                value: Some(letter.rejection.reason.as_str()),
            })
            .insert(Header {
                key: "channelshift-field",
                value: Some(letter.rejection.field.as_deref().unwrap_or("")),
            })
            .insert(Header {
                key: "channelshift-detail",
                value: Some(letter.rejection.detail.as_str()),
            })
            .insert(Header {
                key: "channelshift-source-topic",
                value: Some(letter.source_topic.as_str()),
            })
            .insert(Header {
                key: "channelshift-source-partition",
                value: Some(partition.as_str()),
            })
            .insert(Header {
                key: "channelshift-source-offset",
                value: Some(offset.as_str()),
            });
        let mut record = FutureRecord::to(&topic)
            .payload(&letter.payload)
            .headers(headers);
        if let Some(key) = &letter.key {
            record = record.key(key);
        }
        self.producer
            .send(record, Timeout::After(Duration::from_secs(30)))
            .await
            .map_err(|(error, _)| anyhow::anyhow!("dead-letter write to {topic}: {error}"))?;
        Ok(())
    }

    fn commit(&self, offsets: &BTreeMap<(String, i32), i64>) -> Result<()> {
        let mut list = TopicPartitionList::new();
        for ((topic, partition), offset) in offsets {
            list.add_partition_offset(topic, *partition, Offset::Offset(offset + 1))?;
        }
        // A failed commit (e.g. the partition moved in a rebalance) only means
        // re-delivery, which the id lookup makes harmless.
        if let Err(error) = self.consumer.commit(&list, CommitMode::Sync) {
            tracing::warn!(%error, "offset commit failed; the batch may be re-delivered and de-duplicated");
        }
        Ok(())
    }
}

/// A row that carries its council and idempotency key.
trait Identified {
    fn council(&self) -> &str;
    fn id(&self) -> &str;
}

impl Identified for ContactRow {
    fn council(&self) -> &str {
        &self.council
    }
    fn id(&self) -> &str {
        &self.event_id
    }
}

impl Identified for SatisfactionRow {
    fn council(&self) -> &str {
        &self.council
    }
    fn id(&self) -> &str {
        &self.response_id
    }
}

/// Creates the topics and their dead-letter topics; existing ones are left as they are.
pub async fn create_topics(kafka: &KafkaConfig) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &kafka.brokers)
        .create()
        .context("creating the Kafka admin client")?;
    let names = [
        kafka.contact_topic.clone(),
        kafka.satisfaction_topic.clone(),
        KafkaConfig::dead_letter_topic(&kafka.contact_topic),
        KafkaConfig::dead_letter_topic(&kafka.satisfaction_topic),
    ];
    let topics: Vec<NewTopic<'_>> = names
        .iter()
        .map(|name| NewTopic::new(name, kafka.partitions, TopicReplication::Fixed(1)))
        .collect();
    let results = admin
        .create_topics(&topics, &AdminOptions::new())
        .await
        .context("creating topics")?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => anyhow::bail!("creating topic {topic}: {code}"),
        }
    }
    Ok(())
}

/// Exponential backoff from 100 ms to 10 s that gives up when shutdown is requested.
struct Backoff {
    delay: Duration,
}

impl Backoff {
    fn new() -> Self {
        Self {
            delay: Duration::from_millis(100),
        }
    }

    /// Logs `error`, then sleeps; returns the error instead if shutdown comes first.
    async fn wait(&mut self, what: &str, error: anyhow::Error, shutdown: &Shutdown) -> Result<()> {
        tracing::warn!(
            error = format!("{error:#}"),
            "{what} failed; retrying in {:?}",
            self.delay
        );
        tokio::select! {
            () = tokio::time::sleep(self.delay) => {}
            () = shutdown.clone().requested() => {
                return Err(error.context(format!("{what}: gave up at shutdown")));
            }
        }
        self.delay = (self.delay * 2).min(MAX_BACKOFF);
        Ok(())
    }
}

/// Retries `attempt` with [`Backoff`] until it succeeds or shutdown is requested.
async fn retry<T, F, Fut>(what: &str, shutdown: &Shutdown, mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut backoff = Backoff::new();
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(error) => backoff.wait(what, error, shutdown).await?,
        }
    }
}
