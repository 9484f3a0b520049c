//! The consume → validate → de-duplicate → insert → checkpoint → commit loop.
//!
//! # Exactly-once effect on ClickHouse
//!
//! ClickHouse has no transactions and 18.16 no insert-deduplication token, so
//! "each unique event counted once" rests on three things, in this order:
//!
//! 1. **Ids are the truth.** Before every insert attempt the batch's
//!    `event_id`s / `response_id`s are looked up in the id index tables and
//!    repeats within the batch are dropped. Ingest writes the index itself,
//!    after the INSERT of the rows (and so every view) has succeeded: an
//!    indexed id is a completely stored one, whatever order the server runs
//!    its views in (current servers run them in no fixed order). A
//!    redelivered message, a producer retry minutes later, or an attempt that
//!    failed on our side but succeeded on the server's all become no-ops. The
//!    lookup is retried with the insert, never cached. Rows can be stored
//!    without their index: an INSERT that failed part-way (a view refused, the
//!    server killed) or succeeded unseen, or a replica stopped between an
//!    INSERT and its index. So after a failed attempt, and for the messages of
//!    a newly assigned partition below its end at assignment (its previous
//!    owner cannot have read further), ids missing from the index are also
//!    looked up in the raw table; rows found there are not written again but
//!    re-indexed, and logged (`half_written_total`) for `rebuild-rollups`, as
//!    the rollups may have missed them.
//! 2. **One writer per partition at a time.** The pipeline writes only between
//!    calls to `recv`, and librdkafka runs rebalance callbacks only inside
//!    `recv`. When a partition is revoked, its buffered rows are dropped
//!    unwritten (the new owner re-reads them); so a replica never writes a
//!    partition's rows after giving it up. During a ClickHouse outage the
//!    pipeline pauses its partitions and keeps polling, so it stays in the group
//!    instead of being thrown out mid-write; each write attempt is bounded by
//!    [`ATTEMPT_TIMEOUT`], well inside `max.poll.interval.ms`.
//! 3. **The position lives with the data.** After a batch's rows and dead
//!    letters are written, the next offset of each partition is stored in
//!    `ingest_checkpoints` in the same database, and only then committed to
//!    Kafka. On assignment the consumer starts at the stored checkpoint (see
//!    [`crate::consumer`]), so an offset reset or a new consumer group does not
//!    re-read, re-count or re-dead-letter what the database already holds.
//!    If ClickHouse cannot answer within 5 s at assignment, the group's
//!    committed offset is used instead: step 1 still prevents double counts,
//!    but dead letters from the re-read span are sent again.
//!
//! A crash anywhere in the sequence re-delivers from the last checkpoint (or
//! commit) and step 1 absorbs the repeats; a message is never committed before
//! it is stored or dead-lettered. What remains unprotected: two copies of one
//! id produced to *different* partitions and processed by two replicas in the
//! same instant (producers should key by id, as the simulator does); a
//! broker whose group coordinator assigns a partition to a new member before
//! its owner has revoked it (Tansu 0.6 does under `cooperative-sticky`: two
//! replicas then write the partition for a while, and ids whose lookups race
//! are stored twice; `range` avoids it there); and a
//! crash between a dead letter's send and the checkpoint re-sends that dead
//! letter (its headers carry the source partition and offset to recognise it);
//! an insert abandoned at [`ATTEMPT_TIMEOUT`] that the server still completes
//! after the retry's id lookup; and a topic recreated under the same name
//! (checkpoints only move forward: clear its `ingest_checkpoints` rows).
//!
//! # Memory bound
//!
//! At most one batch is open (`batch.max_rows` / `batch.max_bytes` of
//! payload, each held once as bytes or a row), plus librdkafka's prefetch
//! (`kafka.prefetch_kbytes`). While ClickHouse is down nothing more is read:
//! the partitions are paused and the open batch waits.

use crate::batch::{Batch, DeadLetter, Received};
use crate::config::{IngestConfig, KafkaConfig};
use crate::consumer::{IngestContext, TopicPartition};
use crate::decode::{decode, Decoded, Limits};
use crate::metrics::IngestMetrics;
use crate::privacy::Pseudonymiser;
use crate::refetch;
use crate::sinks::{DeadLetterSink, Refused, RowSink};
use anyhow::{Context, Result};
use channelshift_contract::{Rejection, RejectionReason};
use channelshift_runtime::health::Health;
use channelshift_runtime::shutdown::Shutdown;
use channelshift_store::{KafkaPosition, Record, Store};
use chrono::Utc;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::BorrowedMessage;
use rdkafka::producer::FutureProducer;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long a loop may go without a heartbeat before readiness turns red.
const STALL_AFTER: Duration = Duration::from_secs(60);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// The longest one write attempt may take before it is abandoned and retried.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);
/// librdkafka leaves the group if `recv` is not called for this long; the
/// pipeline never goes longer than one [`ATTEMPT_TIMEOUT`] without polling.
const MAX_POLL_INTERVAL: Duration = Duration::from_secs(300);

type IngestConsumer = StreamConsumer<IngestContext>;

pub struct Pipeline {
    config: IngestConfig,
    store: Store,
    consumer: IngestConsumer,
    rows: RowSink,
    dead_letters: DeadLetterSink,
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
        // librdkafka wants a fetch to hold at least one maximal message (1 MB).
        let prefetch_bytes = (u64::from(kafka.prefetch_kbytes) * 1024).max(1_000_000);
        let consumer: IngestConsumer = ClientConfig::new()
            .set("bootstrap.servers", &kafka.brokers)
            .set("group.id", &kafka.group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("partition.assignment.strategy", &kafka.assignment_strategy)
            .set("session.timeout.ms", kafka.session_timeout_ms.to_string())
            .set(
                "heartbeat.interval.ms",
                (kafka.session_timeout_ms / 10).max(250).to_string(),
            )
            .set(
                "max.poll.interval.ms",
                MAX_POLL_INTERVAL.as_millis().to_string(),
            )
            .set(
                "queued.max.messages.kbytes",
                kafka.prefetch_kbytes.to_string(),
            )
            .set("fetch.max.bytes", prefetch_bytes.to_string())
            .set("statistics.interval.ms", "5000")
            .create_with_context(IngestContext::new(
                config.clickhouse.clone(),
                metrics.clone(),
                health.clone(),
                Duration::from_secs(config.stall_after_seconds),
            ))
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
        // Exposed at 0 from the start, so that an alert on its increase sees
        // the first one.
        for topic in [&kafka.contact_topic, &kafka.satisfaction_topic] {
            metrics.half_written.with_label_values(&[topic.as_str()]);
        }
        let rows = RowSink {
            store: store.clone(),
            metrics: metrics.clone(),
            contact_topic: kafka.contact_topic.clone(),
            satisfaction_topic: kafka.satisfaction_topic.clone(),
        };
        Ok(Self {
            config,
            store,
            consumer,
            rows,
            dead_letters: DeadLetterSink { producer },
            pseudonymiser,
            metrics,
            health,
        })
    }

    /// Runs until shutdown: the open batch is then written and committed
    /// before returning, within the configured timeout.
    pub async fn run(self, shutdown: Shutdown) -> Result<()> {
        loop {
            let mut batch = self.fill(&shutdown).await;
            if !batch.is_empty() {
                let flush = self.flush(&mut batch, &shutdown);
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

    /// Reads messages until the batch is full, its time is up, or shutdown.
    async fn fill(&self, shutdown: &Shutdown) -> Batch {
        let max_wait = self.config.batch.max_wait();
        let mut batch = Batch::default();
        let mut deadline: Option<Instant> = None;
        loop {
            self.health.beat("consumer", STALL_AFTER);
            let wait = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                // Nothing pending: wake up now and then to report liveness.
                None => Duration::from_secs(1),
            };
            if deadline.is_some() && wait.is_zero() {
                return batch;
            }
            tokio::select! {
                received = tokio::time::timeout(wait, self.consumer.recv()) => {
                    if let Ok(received) = received {
                        if self.receive(&mut batch, received) {
                            deadline.get_or_insert_with(|| Instant::now() + max_wait);
                        }
                    }
                    self.release_revoked(&mut batch);
                    if batch.is_empty() {
                        deadline = None;
                    }
                    if batch.is_full(self.config.batch.max_rows, self.config.batch.max_bytes) {
                        return batch;
                    }
                }
                () = shutdown.clone().requested() => return batch,
            }
        }
    }

    /// Takes one result of `recv` into the batch; true if it was a message.
    fn receive(
        &self,
        batch: &mut Batch,
        received: Result<BorrowedMessage<'_>, rdkafka::error::KafkaError>,
    ) -> bool {
        match received {
            Err(error) => {
                tracing::warn!(%error, "Kafka consumer error");
                self.health.set("kafka", false);
                false
            }
            Ok(message) => {
                self.health.set("kafka", true);
                // A partition revoked and assigned again inside this `recv`
                // (one rebalance, or a lost session rejoined) must shed what
                // it buffered before the revoke, not this message: it comes
                // from the new assignment, which starts at the checkpoint.
                self.release_revoked(batch);
                self.add(batch, &message);
                self.metrics.buffered.set(batch.messages as i64);
                true
            }
        }
    }

    /// Drops the buffered messages of partitions this replica no longer owns:
    /// their new owner reads them again from the checkpoint.
    fn release_revoked(&self, batch: &mut Batch) {
        let kafka = &self.config.kafka;
        for (topic, partition) in self.consumer.context().take_revoked() {
            let Some(released) = batch.release(
                &topic,
                partition,
                &kafka.contact_topic,
                &kafka.satisfaction_topic,
            ) else {
                continue;
            };
            self.metrics
                .released
                .with_label_values(&[topic.as_str()])
                .inc_by(released as u64);
            tracing::info!(
                topic,
                partition,
                released,
                "partition revoked; its buffered messages are left to the new owner"
            );
        }
        self.metrics.buffered.set(batch.messages as i64);
    }

    /// Decodes a message into the batch, counting it and any rejection.
    fn add(&self, batch: &mut Batch, message: &BorrowedMessage<'_>) {
        let topic = message.topic();
        let position = KafkaPosition {
            partition: message.partition(),
            offset: message.offset(),
        };
        let payload = message.payload().unwrap_or_default();
        self.metrics.consumed.with_label_values(&[topic]).inc();
        let record = if topic == self.config.kafka.contact_topic {
            Record::Contact
        } else {
            Record::Satisfaction
        };
        let decoded = decode(
            record,
            payload,
            position,
            Utc::now(),
            Limits {
                max_message_bytes: self.config.max_message_bytes,
                max_age_days: self.config.max_event_age_days,
            },
            &self.pseudonymiser,
        );
        if let Decoded::Rejected(rejection) = &decoded {
            self.metrics
                .rejected
                .with_label_values(&[topic, rejection.reason.as_str()])
                .inc();
            tracing::debug!(topic, partition = position.partition, offset = position.offset, %rejection, "rejected");
        }
        let context = self.consumer.context();
        batch.add(
            Received {
                topic,
                position,
                key: message.key(),
                payload,
                decoded,
            },
            |partition, offset| context.is_unsettled(partition, offset),
        );
    }

    /// Writes the batch (rows, dead letters, checkpoints) and only then
    /// commits. While a step fails, the partitions are paused and the consumer
    /// keeps polling, so the group keeps this replica and rebalances are seen.
    async fn flush(&self, batch: &mut Batch, shutdown: &Shutdown) -> Result<()> {
        // A revoke seen by the last receive (e.g. just before shutdown) must
        // not be written behind the new owner's back.
        self.release_revoked(batch);
        if batch.is_empty() {
            return Ok(());
        }
        self.metrics.batch_rows.observe(batch.messages as f64);
        self.bound_unsettled();
        let mut backoff = Backoff::new();
        let mut paused = false;
        loop {
            let attempt = tokio::time::timeout(ATTEMPT_TIMEOUT, self.write(batch)).await;
            let error = match attempt {
                Ok(Ok(())) => break,
                Ok(Err(error)) => error,
                Err(_elapsed) => anyhow::anyhow!("no answer within {ATTEMPT_TIMEOUT:?}"),
            };
            // The server may have stored the rows and stopped before their
            // views: the next attempt asks the raw table too.
            batch.attempt_failed();
            if !paused {
                self.pause_assignment();
                paused = true;
            }
            backoff.log("writing the batch", &error);
            self.idle(batch, backoff.next_delay(), shutdown)
                .await
                .map_err(|stopped| error.context(stopped))?;
            if batch.is_empty() {
                tracing::info!("every partition of the open batch was revoked; nothing to write");
                break;
            }
        }
        if paused {
            self.resume_assignment();
        }
        self.consumer.context().settle(&batch.offsets);
        self.consumer.context().progressed(batch.offsets.keys());
        self.commit(&batch.offsets);
        self.metrics.buffered.set(0);
        Ok(())
    }

    /// Asks the broker where each newly assigned partition ends now (at or
    /// after its assignment): its previous owner cannot have stored more, so
    /// the messages after it are looked up in the id index alone. A partition the broker does
    /// not answer for stays suspect (the raw table is asked too) until it does.
    fn bound_unsettled(&self) {
        let context = self.consumer.context();
        for (topic, partition) in context.unbounded() {
            match self
                .consumer
                .fetch_watermarks(&topic, partition, Duration::from_secs(5))
            {
                Ok((_, end)) => context.bound(&(topic, partition), end),
                Err(error) => {
                    tracing::warn!(topic, partition, %error, "could not read the partition's end")
                }
            }
        }
    }

    /// One attempt at every remaining step of the batch; each step records its
    /// progress in `batch`, so a retry resumes where the failure was.
    async fn write(&self, batch: &mut Batch) -> Result<()> {
        let failed = |step: &str, dependency: &str| {
            self.metrics.write_errors.with_label_values(&[step]).inc();
            self.health.set(dependency, false);
        };
        if !batch.rows_written {
            let started = Instant::now();
            let refused = self
                .rows
                .write(&mut batch.contacts, &mut batch.satisfaction, batch.suspect)
                .await
                .inspect_err(|_| failed("rows", "clickhouse"))?;
            self.health.set("clickhouse", true);
            if !refused.is_empty() {
                let letters = self
                    .refused_letters(refused)
                    .await
                    .inspect_err(|_| failed("rows", "kafka"))?;
                batch.dead_letters.extend(letters);
            }
            batch.rows_written = true;
            self.record_insert(batch, started);
        }
        self.dead_letters
            .send_all(&mut batch.dead_letters)
            .await
            .inspect_err(|_| failed("dead_letters", "kafka"))?;
        self.store
            .save_checkpoints(&batch.checkpoints())
            .await
            .context("saving checkpoints")
            .inspect_err(|_| failed("checkpoint", "clickhouse"))?;
        self.health.set("clickhouse", true);
        Ok(())
    }

    /// Dead letters for rows ClickHouse refuses for good: their messages read
    /// back from Kafka, byte for byte, with the server's error as the detail.
    async fn refused_letters(&self, refused: Vec<Refused>) -> Result<Vec<DeadLetter>> {
        let kafka = &self.config.kafka;
        let mut letters = Vec::with_capacity(refused.len());
        for record in [Record::Contact, Record::Satisfaction] {
            let rows: Vec<&Refused> = refused.iter().filter(|row| row.record == record).collect();
            if rows.is_empty() {
                continue;
            }
            let topic = match record {
                Record::Contact => kafka.contact_topic.clone(),
                Record::Satisfaction => kafka.satisfaction_topic.clone(),
            };
            let positions: Vec<KafkaPosition> = rows.iter().map(|row| row.position).collect();
            let (brokers, source) = (kafka.brokers.clone(), topic.clone());
            let fetched = tokio::task::spawn_blocking(move || {
                refetch::messages(&brokers, &source, &positions)
            })
            .await??;
            for (row, message) in rows.into_iter().zip(fetched) {
                self.metrics
                    .rejected
                    .with_label_values(&[topic.as_str(), RejectionReason::StoreRefused.as_str()])
                    .inc();
                letters.push(DeadLetter {
                    source_topic: topic.clone(),
                    position: row.position,
                    key: message.key,
                    payload: message.payload,
                    rejection: Rejection::new(
                        RejectionReason::StoreRefused,
                        None,
                        row.error.clone(),
                    ),
                });
            }
        }
        Ok(letters)
    }

    fn record_insert(&self, batch: &Batch, started: Instant) {
        let now = Utc::now().timestamp();
        let age = |at: u32| (now - i64::from(at)).max(0) as f64;
        let contact_age = self
            .metrics
            .event_age
            .with_label_values(&["contact_events"]);
        for row in &batch.contacts {
            contact_age.observe(age(row.occurred_at));
        }
        let response_age = self
            .metrics
            .event_age
            .with_label_values(&["satisfaction_responses"]);
        for row in &batch.satisfaction {
            response_age.observe(age(row.responded_at));
        }
        self.metrics
            .inserted
            .with_label_values(&["contact_events"])
            .inc_by(batch.contacts.len() as u64);
        self.metrics
            .inserted
            .with_label_values(&["satisfaction_responses"])
            .inc_by(batch.satisfaction.len() as u64);
        self.metrics
            .insert_seconds
            .observe(started.elapsed().as_secs_f64());
        self.metrics.last_insert.set(now as f64);
    }

    /// Waits `delay` while still serving the group: rebalances are handled,
    /// newly assigned partitions are paused too, and a message already on its
    /// way joins the batch. Returns an error if shutdown comes first.
    async fn idle(&self, batch: &mut Batch, delay: Duration, shutdown: &Shutdown) -> Result<()> {
        let until = Instant::now() + delay;
        loop {
            self.health.beat("consumer", STALL_AFTER);
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            tokio::select! {
                received = tokio::time::timeout(left, self.consumer.recv()) => {
                    if let Ok(received) = received {
                        self.receive(batch, received);
                    }
                }
                () = shutdown.clone().requested() => anyhow::bail!("gave up at shutdown"),
            }
            self.pause_assignment();
            self.release_revoked(batch);
        }
    }

    fn pause_assignment(&self) {
        match self.consumer.assignment() {
            Ok(assignment) => {
                if let Err(error) = self.consumer.pause(&assignment) {
                    tracing::warn!(%error, "pausing consumption failed");
                }
            }
            Err(error) => tracing::warn!(%error, "reading the assignment failed"),
        }
    }

    fn resume_assignment(&self) {
        match self.consumer.assignment() {
            Ok(assignment) => {
                if let Err(error) = self.consumer.resume(&assignment) {
                    tracing::warn!(%error, "resuming consumption failed");
                }
            }
            Err(error) => tracing::warn!(%error, "reading the assignment failed"),
        }
    }

    fn commit(&self, offsets: &BTreeMap<TopicPartition, i64>) {
        let mut list = TopicPartitionList::new();
        for ((topic, partition), offset) in offsets {
            if let Err(error) =
                list.add_partition_offset(topic, *partition, Offset::Offset(offset + 1))
            {
                tracing::warn!(topic, partition, %error, "cannot commit this offset");
            }
        }
        // A failed commit (e.g. the partition moved in a rebalance) costs only
        // a re-read: the checkpoint is already stored.
        if let Err(error) = self.consumer.commit(&list, CommitMode::Sync) {
            tracing::warn!(%error, "offset commit failed; the checkpoint in ClickHouse still holds the position");
        }
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

/// Exponential backoff from 100 ms to 10 s.
struct Backoff {
    delay: Duration,
}

impl Backoff {
    fn new() -> Self {
        Self {
            delay: Duration::from_millis(100),
        }
    }

    fn log(&self, what: &str, error: &anyhow::Error) {
        tracing::warn!(
            error = format!("{error:#}"),
            "{what} failed; retrying in {:?}",
            self.delay
        );
    }

    /// The delay to wait now; the next one doubles, up to [`MAX_BACKOFF`].
    fn next_delay(&mut self) -> Duration {
        let delay = self.delay;
        self.delay = (self.delay * 2).min(MAX_BACKOFF);
        delay
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
            Err(error) => {
                backoff.log(what, &error);
                tokio::select! {
                    () = tokio::time::sleep(backoff.next_delay()) => {}
                    () = shutdown.clone().requested() => {
                        return Err(error.context(format!("{what}: gave up at shutdown")));
                    }
                }
            }
        }
    }
}
