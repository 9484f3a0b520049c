//! The consume → validate → de-duplicate → insert → checkpoint → commit loop.
//!
//! # Exactly-once effect on ClickHouse 18.16
//!
//! ClickHouse has no transactions and 18.16 no insert-deduplication token, so
//! "each unique event counted once" rests on three things, in this order:
//!
//! 1. **Ids are the truth.** Before every insert attempt the batch's
//!    `event_id`s / `response_id`s are looked up in the id index tables (fed by
//!    materialized views in the same INSERT as the rows) and repeats within the
//!    batch are dropped. A redelivered message, a producer retry minutes later,
//!    or an attempt that failed on our side but succeeded on the server's all
//!    become no-ops. The lookup is retried with the insert, never cached.
//!    The views are written after the raw table, so a server killed (or a
//!    view failing) in between leaves raw rows without their index rows:
//!    after a failed attempt, and for the first batch of a newly assigned
//!    partition, ids missing from the index are also looked up in the raw
//!    table; rows found there are not written again but re-indexed, and
//!    logged (`half_written_total`) for `rebuild-rollups`, as the rollups may
//!    have missed them.
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

use crate::config::{IngestConfig, KafkaConfig};
use crate::consumer::{IngestContext, TopicPartition};
use crate::metrics::IngestMetrics;
use crate::privacy::{scrub_comment, Pseudonymiser};
use anyhow::{Context, Result};
use channelshift_contract::{ContactEvent, Rejection, RejectionReason, SatisfactionResponse};
use channelshift_runtime::health::Health;
use channelshift_runtime::shutdown::Shutdown;
use channelshift_store::{Checkpoint, ContactRow, KafkaPosition, Record, SatisfactionRow, Store};
use chrono::Utc;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::Timeout;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

/// How long a loop may go without a heartbeat before readiness turns red.
const STALL_AFTER: Duration = Duration::from_secs(60);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// The longest one write attempt may take before it is abandoned and retried.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);
/// librdkafka leaves the group if `recv` is not called for this long; the
/// pipeline never goes longer than one [`ATTEMPT_TIMEOUT`] without polling.
const MAX_POLL_INTERVAL: Duration = Duration::from_secs(300);

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
    /// Highest offset read per (topic, partition): what the batch will commit.
    offsets: BTreeMap<TopicPartition, i64>,
    messages: usize,
    bytes: usize,
    /// Set once the rows are in ClickHouse, so a retry of a later step does not
    /// look them up again.
    rows_written: bool,
    /// An earlier INSERT of these rows may have been cut short on the server
    /// (an attempt failed, or the partition's previous owner stopped past its
    /// checkpoint): the raw table is asked too, not only the id index.
    suspect: bool,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }
}

type IngestConsumer = StreamConsumer<IngestContext>;

pub struct Pipeline {
    config: IngestConfig,
    store: Store,
    consumer: IngestConsumer,
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
                    if batch.messages >= self.config.batch.max_rows
                        || batch.bytes >= self.config.batch.max_bytes
                    {
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
        for (topic, partition) in self.consumer.context().take_revoked() {
            let Some(_) = batch.offsets.remove(&(topic.clone(), partition)) else {
                continue;
            };
            let before = batch.contacts.len() + batch.satisfaction.len() + batch.dead_letters.len();
            if topic == self.config.kafka.contact_topic {
                batch
                    .contacts
                    .retain(|row| row.kafka_partition != partition);
            }
            if topic == self.config.kafka.satisfaction_topic {
                batch
                    .satisfaction
                    .retain(|row| row.kafka_partition != partition);
            }
            batch.dead_letters.retain(|letter| {
                !(letter.source_topic == topic && letter.position.partition == partition)
            });
            let after = batch.contacts.len() + batch.satisfaction.len() + batch.dead_letters.len();
            let released = before - after;
            batch.messages = batch.messages.saturating_sub(released);
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

    fn add(&self, batch: &mut Batch, message: &BorrowedMessage<'_>) {
        let topic = message.topic();
        let position = KafkaPosition {
            partition: message.partition(),
            offset: message.offset(),
        };
        let payload = message.payload().unwrap_or_default();
        // A message that arrives while a failed write is retried (a partition
        // assigned meanwhile) must be written too: the next attempt writes the
        // rows again, and the id lookup skips those already stored.
        batch.rows_written = false;
        batch.messages += 1;
        batch.bytes += payload.len();
        match batch.offsets.entry((topic.to_string(), position.partition)) {
            std::collections::btree_map::Entry::Occupied(mut highest) => {
                let highest = highest.get_mut();
                *highest = (*highest).max(position.offset);
            }
            std::collections::btree_map::Entry::Vacant(entry) => {
                if self.consumer.context().is_unsettled(entry.key()) {
                    batch.suspect = true;
                }
                entry.insert(position.offset);
            }
        }
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
            batch.suspect |= !batch.rows_written;
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
        self.consumer.context().settle(batch.offsets.keys());
        self.commit(&batch.offsets);
        self.metrics.buffered.set(0);
        Ok(())
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
            self.write_rows(&mut batch.contacts, &mut batch.satisfaction, batch.suspect)
                .await
                .inspect_err(|_| failed("rows", "clickhouse"))?;
            self.health.set("clickhouse", true);
            batch.rows_written = true;
            self.record_insert(batch, started);
        }
        self.send_dead_letters(&mut batch.dead_letters)
            .await
            .inspect_err(|_| failed("dead_letters", "kafka"))?;
        let checkpoints: Vec<Checkpoint> = batch
            .offsets
            .iter()
            .map(|((topic, partition), offset)| Checkpoint {
                topic: topic.clone(),
                partition: *partition,
                next_offset: offset + 1,
            })
            .collect();
        self.store
            .save_checkpoints(&checkpoints)
            .await
            .context("saving checkpoints")
            .inspect_err(|_| failed("checkpoint", "clickhouse"))?;
        self.health.set("clickhouse", true);
        Ok(())
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

    /// One attempt at writing the batch's rows. The stored ids are looked up on
    /// every attempt: an attempt that failed on our side may still have been
    /// written on the server's.
    async fn write_rows(
        &self,
        contacts: &mut Vec<ContactRow>,
        satisfaction: &mut Vec<SatisfactionRow>,
        suspect: bool,
    ) -> Result<()> {
        self.drop_stored(contacts, suspect).await?;
        self.drop_stored(satisfaction, suspect).await?;
        // Stamped at each attempt, not at receipt: a row stamped at t is
        // stored by t + ATTEMPT_TIMEOUT or restamped later, which is what lets
        // a report "as of" an instant settled that long ago be reproduced.
        let now = u32::try_from(Utc::now().timestamp()).unwrap_or(u32::MAX);
        for row in contacts.iter_mut() {
            row.ingested_at = now;
        }
        for row in satisfaction.iter_mut() {
            row.ingested_at = now;
        }
        if !contacts.is_empty() {
            self.store.insert_contacts(contacts).await?;
        }
        if !satisfaction.is_empty() {
            self.store.insert_satisfaction(satisfaction).await?;
        }
        Ok(())
    }

    /// Removes rows whose id is already stored or repeated within the batch.
    /// When `suspect`, ids missing from the id index are looked for in the raw
    /// table as well: rows found there were stored by an INSERT the server cut
    /// short before its views (id index, rollups) were written. They are not
    /// written again; their index rows are added, and the rollups may miss
    /// them until `rebuild-rollups` (`reconcile` shows raw rows ≠ rollup).
    async fn drop_stored<R: Identified>(&self, rows: &mut Vec<R>, suspect: bool) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let topic = match R::RECORD {
            Record::Satisfaction => &self.config.kafka.satisfaction_topic,
            Record::Contact => &self.config.kafka.contact_topic,
        };
        let mut by_council: HashMap<&str, Vec<&str>> = HashMap::new();
        for row in rows.iter() {
            by_council.entry(row.council()).or_default().push(row.id());
        }
        let mut stored: HashSet<(String, String)> = HashSet::new();
        let mut half_written = 0;
        for (council, ids) in by_council {
            let indexed = self.store.existing_ids(R::RECORD, council, &ids).await?;
            if suspect {
                let unindexed: Vec<&str> = ids
                    .iter()
                    .copied()
                    .filter(|id| !indexed.contains(*id))
                    .collect();
                let (from, to) = rows
                    .iter()
                    .filter(|row| row.council() == council)
                    .fold((u32::MAX, 0), |(from, to), row| {
                        (from.min(row.at()), to.max(row.at()))
                    });
                let raw = self
                    .store
                    .existing_raw_ids(R::RECORD, council, &unindexed, from, to)
                    .await?;
                if !raw.is_empty() {
                    let raw: Vec<&str> = raw.iter().map(String::as_str).collect();
                    self.store.index_ids(R::RECORD, council, &raw).await?;
                    half_written += raw.len();
                    stored.extend(raw.iter().map(|id| (council.to_string(), id.to_string())));
                }
            }
            stored.extend(indexed.into_iter().map(|id| (council.to_string(), id)));
        }
        if half_written > 0 {
            self.metrics
                .half_written
                .with_label_values(&[topic])
                .inc_by(half_written as u64);
            tracing::error!(
                half_written,
                topic,
                "rows stored without their id index and rollup rows (an insert ClickHouse \
                 stopped part-way): not written again, re-indexed; run `channelshift-ingest \
                 rebuild-rollups` so that the rollups count them"
            );
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

    /// Sends the dead letters concurrently; the ones acknowledged are removed,
    /// so a retry sends only what is left.
    async fn send_dead_letters(&self, letters: &mut Vec<DeadLetter>) -> Result<()> {
        if letters.is_empty() {
            return Ok(());
        }
        let results =
            futures::future::join_all(letters.iter().map(|letter| self.send_dead_letter(letter)))
                .await;
        let mut first_error = None;
        let mut outcome = results.into_iter();
        letters.retain(|_| match outcome.next() {
            Some(Ok(())) => false,
            Some(Err(error)) => {
                first_error.get_or_insert(error);
                true
            }
            None => true,
        });
        match first_error {
            Some(error) => {
                Err(error.context(format!("{} dead letters not yet written", letters.len())))
            }
            None => Ok(()),
        }
    }

    async fn send_dead_letter(&self, letter: &DeadLetter) -> Result<()> {
        let topic = KafkaConfig::dead_letter_topic(&letter.source_topic);
        let partition = letter.position.partition.to_string();
        let offset = letter.position.offset.to_string();
        let mut headers = OwnedHeaders::new().insert(Header {
            key: "channelshift-reason",
            value: Some(letter.rejection.reason.as_str()),
        });
        // Absent when the rejection is about the message as a whole.
        if let Some(field) = &letter.rejection.field {
            headers = headers.insert(Header {
                key: "channelshift-field",
                value: Some(field.as_str()),
            });
        }
        let headers = headers
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

/// A row that carries its council, idempotency key and timestamp.
trait Identified {
    /// Which kind of record the row is.
    const RECORD: Record;
    fn council(&self) -> &str;
    fn id(&self) -> &str;
    /// The instant the raw table is partitioned and sorted by (Unix seconds).
    fn at(&self) -> u32;
}

impl Identified for ContactRow {
    const RECORD: Record = Record::Contact;
    fn council(&self) -> &str {
        &self.council
    }
    fn id(&self) -> &str {
        &self.event_id
    }
    fn at(&self) -> u32 {
        self.occurred_at
    }
}

impl Identified for SatisfactionRow {
    const RECORD: Record = Record::Satisfaction;
    fn council(&self) -> &str {
        &self.council
    }
    fn id(&self) -> &str {
        &self.response_id
    }
    fn at(&self) -> u32 {
        self.responded_at
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
