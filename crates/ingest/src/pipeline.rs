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
//!    lookup is retried with the insert, never cached; the one exception is
//!    a batch looked up while the batch before it is written (see "Reading
//!    ahead"), whose result is used only by its first attempt, and only if
//!    nothing but that batch can have stored its ids since. Rows can be stored
//!    without their index: an INSERT that failed part-way (a view refused, the
//!    server killed) or succeeded unseen, or a replica stopped between an
//!    INSERT and its index. So after a failed attempt, and for the messages of
//!    a newly assigned partition below its end at assignment (its previous
//!    owner cannot have read further) and, once it is claimed, below the
//!    offset after the last message stored from it (no write from before
//!    the claim runs any more), ids missing from the index are also
//!    looked up in the raw table; rows found there are not written again but
//!    re-indexed (while the partition's fence is still this replica's), and
//!    logged (`half_written_total`) for `rebuild-rollups`, as the rollups
//!    may have missed them.
//! 2. **One writer per partition, enforced by the server (fencing).** When a
//!    partition is assigned, the replica claims it before writing anything:
//!    it stores a fence above every earlier one in `ingest_fences`. Rows go
//!    to a staging table, each with its partition's fence, and reach the raw
//!    table and the id index by `INSERT … SELECT … WHERE` the fence is still
//!    the partition's highest, evaluated by the server as it runs the INSERT.
//!    So a replica that lost a partition (its session expired while it was
//!    frozen, or the broker assigned the partition elsewhere before revoking
//!    it here) has its later writes dropped by the server, however late
//!    they arrive. A write that passed the check before the claim can still
//!    be running: after claiming, the new owner waits until every query the
//!    other replicas had running has ended (stopping those that outlast half
//!    an attempt), and only then looks ids up; the raw-table lookup of step 1
//!    then sees what they stored. The stale replica learns of the claim at
//!    its next fence check (after its rows), drops the partition's
//!    messages, and counts `fenced_batches_total`; it writes no dead letter,
//!    checkpoint or commit for it. Each write attempt tags its queries
//!    (`channelshift-ingest:<replica>:<attempt>:<n>`); before a retry, those
//!    of the abandoned attempt still running are stopped and awaited, so a
//!    retry never races the attempt it replaces. During a ClickHouse outage
//!    the pipeline pauses its partitions and keeps polling, to stay in the
//!    group; each attempt is bounded by `attempt_timeout_seconds`.
//!
//!    *Assumes*: fences only grow (nobody deletes `ingest_fences` rows); every
//!    writer is a fencing ingest (an older binary writing the raw tables
//!    directly is not fenced); one server answers ingest's claims, inserts and
//!    `system.processes` (with replicated ClickHouse: see deploy/SCALING.md);
//!    of Kafka only that a partition is eventually assigned to one member.
//!    *Does not cover*: a dead letter sent between a fence check and a
//!    claim (sent twice, once by each owner; its headers name the source
//!    offset).
//! 3. **The position lives with the data.** After a batch's rows and dead
//!    letters are written, the next offset of each partition is stored in
//!    `ingest_checkpoints` in the same database, and only then committed to
//!    Kafka. On assignment the consumer starts at the stored checkpoint (see
//!    [`crate::consumer`]), so an offset reset or a new consumer group does not
//!    re-read, re-count or re-dead-letter what the database already holds.
//!    If ClickHouse cannot answer within 5 s at assignment, the group's
//!    committed offset is used instead: step 1 still prevents double counts,
//!    but dead letters from the re-read span are sent again. A checkpoint
//!    written late by a replica that lost the partition is still true: it
//!    names only what that replica stored, and readers take the highest.
//!
//! A crash anywhere in the sequence re-delivers from the last checkpoint (or
//! commit) and step 1 absorbs the repeats; a message is never committed before
//! it is stored or dead-lettered. What remains unprotected: two copies of one
//! id produced to *different* partitions and processed by two replicas in the
//! same instant (producers should key by id, as the simulator does); a crash
//! between a dead letter's send and the checkpoint re-sends that dead letter;
//! and a topic recreated under the same name (checkpoints only move forward:
//! clear its `ingest_checkpoints` rows).
//!
//! # Reading ahead
//!
//! While a batch is written, the next one is read and decoded, so decoding
//! overlaps the server's work. Every message received during a write goes to
//! the next batch, never the one being written: a batch's checkpoint never
//! passes a message it does not hold. The consumer is polled during writes,
//! so rebalances happen during them: a partition revoked meanwhile leaves
//! both batches (the fence check also drops a partition no longer claimed),
//! and is neither checkpointed (unless already stored) nor committed here.
//!
//! Once the next batch is full, while the batch before it is still written,
//! its ids are looked up in the id index and its rows staged (each row
//! stamped again when moved), so that its own attempt only moves them. This
//! is done only when no claim is pending or unsettled and no row of it can
//! be stored without its index (every partition assigned and settled). Its
//! first attempt uses the result only if the batch and the fences are
//! unchanged, and the batch before neither failed an attempt nor asked the
//! raw table (which may re-index rows); the ids that batch stored are added
//! to those found. Otherwise the stage is dropped and the attempt looks up
//! afresh. The lookup is earlier than it would otherwise be by about one
//! write, which widens by as much the window, named above, in which two
//! replicas can store one id produced to two partitions.
//!
//! # Memory bound
//!
//! At most two batches are open, the one being written and the next
//! (`batch.max_rows` / `batch.max_bytes` of payload each, each message held
//! once as bytes or a row), plus librdkafka's prefetch
//! (`kafka.prefetch_kbytes`). While ClickHouse is down nothing more is read:
//! the partitions are paused and the open batches wait.

use crate::batch::{Batch, DeadLetter, Received, TakenAhead};
use crate::config::{IngestConfig, KafkaConfig};
use crate::consumer::{Claim, IngestContext, TopicPartition};
use crate::decode::{decode, Decoded, Limits};
use crate::metrics::IngestMetrics;
use crate::privacy::Pseudonymiser;
use crate::refetch;
use crate::sinks::{DeadLetterSink, Fences, LookedAhead, Refused, RowSink};
use anyhow::{Context, Result};
use channelshift_contract::{Rejection, RejectionReason};
use channelshift_runtime::health::Health;
use channelshift_runtime::shutdown::Shutdown;
use channelshift_store::{Fencing, KafkaPosition, Record, Store, WRITE_QUERY_PREFIX};
use chrono::Utc;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::BorrowedMessage;
use rdkafka::producer::FutureProducer;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, Offset, TopicPartitionList};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a loop may go without a heartbeat before readiness turns red.
const STALL_AFTER: Duration = Duration::from_secs(60);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// librdkafka leaves the group if `recv` is not called for this long; the
/// pipeline never goes longer than one write attempt
/// (`attempt_timeout_seconds`, at most [`MAX_ATTEMPT_TIMEOUT`]) without polling.
const MAX_POLL_INTERVAL: Duration = Duration::from_secs(300);
pub const MAX_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(240);
/// Staged INSERTs older than this were abandoned (an attempt, and a
/// look-ahead used by one, lasts at most [`MAX_ATTEMPT_TIMEOUT`]) and are
/// dropped: at start, and every [`STAGE_SWEEP_INTERVAL`] while running.
const STALE_STAGE_SECONDS: u32 = 3600;
const STAGE_SWEEP_INTERVAL: Duration = Duration::from_secs(900);

type IngestConsumer = StreamConsumer<IngestContext>;

pub struct Pipeline {
    config: IngestConfig,
    store: Store,
    consumer: IngestConsumer,
    dead_letters: DeadLetterSink,
    pseudonymiser: Pseudonymiser,
    metrics: IngestMetrics,
    health: Health,
    /// This process among the group's replicas, in its fences and query ids.
    replica: String,
    attempt_timeout: Duration,
    fencing: Fencing,
    /// Write attempts so far: each tags its queries `<replica>:<attempt>:<n>`.
    attempts: AtomicU64,
    /// Query id prefixes of attempts given up while their queries may still
    /// run on the server: stopped before the next attempt writes.
    abandoned: Mutex<Vec<String>>,
    /// Partitions were claimed and the writes other replicas had running at
    /// the time are not yet known to have ended.
    claimed_unsettled: AtomicBool,
    /// When abandoned stages were last looked for.
    stages_swept: Mutex<Instant>,
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
        // Checked before anything connects: a wrong setting is named, not
        // retried as if the broker were down.
        config.kafka.security.check()?;
        if !(1..=3_650).contains(&config.kafka.dead_letter_retention_days) {
            anyhow::bail!(
                "kafka.dead_letter_retention_days is {}; it must be 1 to 3650",
                config.kafka.dead_letter_retention_days
            );
        }
        let attempt_timeout = Duration::from_secs(config.attempt_timeout_seconds);
        if attempt_timeout.is_zero() || attempt_timeout > MAX_ATTEMPT_TIMEOUT {
            anyhow::bail!(
                "attempt_timeout_seconds is {}; it must be 1 to {}",
                config.attempt_timeout_seconds,
                MAX_ATTEMPT_TIMEOUT.as_secs()
            );
        }
        let fencing = if config.fencing {
            Fencing::On
        } else {
            tracing::warn!("fencing is off: a replica that lost a partition can still write it");
            Fencing::Off
        };
        drop_stale_stages(&store).await;

        let kafka = &config.kafka;
        // Not ready until the brokers have answered.
        health.set("kafka", false);
        if kafka.create_topics {
            retry("creating Kafka topics", shutdown, || create_topics(kafka)).await?;
        }
        // librdkafka wants a fetch to hold at least one maximal message (1 MB).
        let prefetch_bytes = (u64::from(kafka.prefetch_kbytes) * 1024).max(1_000_000);
        let consumer: IngestConsumer = kafka
            .client()?
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
            // Large fetches under load, each partition's up to 10 MB within
            // the prefetch bound; the local queue refills before it runs dry.
            .set("fetch.min.bytes", kafka.fetch_min_bytes.to_string())
            .set("fetch.wait.max.ms", kafka.fetch_wait_max_ms.to_string())
            .set(
                "max.partition.fetch.bytes",
                prefetch_bytes.min(10 * 1024 * 1024).to_string(),
            )
            .set("queued.min.messages", "200000")
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
        let producer: FutureProducer = kafka
            .client()?
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
        let replica = replica_name();
        tracing::info!(replica, "ingest replica started");
        Ok(Self {
            config,
            store,
            consumer,
            dead_letters: DeadLetterSink { producer },
            pseudonymiser,
            metrics,
            health,
            replica,
            attempt_timeout,
            fencing,
            attempts: AtomicU64::new(0),
            abandoned: Mutex::new(Vec::new()),
            claimed_unsettled: AtomicBool::new(false),
            stages_swept: Mutex::new(Instant::now()),
        })
    }

    /// Runs until shutdown: the open batch is then written and committed
    /// before returning, within the configured timeout.
    pub async fn run(self, shutdown: Shutdown) -> Result<()> {
        // What was read while the previous batch was written.
        let mut next = Batch::default();
        loop {
            let mut batch = std::mem::take(&mut next);
            if !shutdown.is_requested() {
                batch = self.fill(batch, &shutdown).await;
            }
            if !batch.is_empty() {
                let flush = self.flush(&mut batch, &mut next, &shutdown);
                if shutdown.is_requested() {
                    let timeout = Duration::from_millis(self.config.shutdown_timeout_ms);
                    tokio::time::timeout(timeout, flush)
                        .await
                        .context("the open batch was not written within the shutdown timeout; it will be re-read on restart")??;
                } else {
                    flush.await?;
                }
            }
            // At shutdown, what was read ahead is written too; nothing more
            // is read meanwhile.
            if shutdown.is_requested() && next.is_empty() {
                tracing::info!("ingest stopped");
                return Ok(());
            }
        }
    }

    /// Reads messages into `batch` (which may hold what was read ahead) until
    /// it is full, its time is up, or shutdown. The `receive` step measures
    /// only the time spent here, not reading ahead beside a write.
    async fn fill(&self, mut batch: Batch, shutdown: &Shutdown) -> Batch {
        let max_wait = self.config.batch.max_wait();
        let started = Instant::now();
        let (max_rows, max_bytes) = (self.config.batch.max_rows, self.config.batch.max_bytes);
        loop {
            self.health.beat("consumer", STALL_AFTER);
            let deadline = batch.opened.map(|opened| opened + max_wait);
            let wait = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                // Nothing pending: wake up now and then to report liveness.
                None => Duration::from_secs(1),
            };
            if batch.is_full(max_rows, max_bytes) || (deadline.is_some() && wait.is_zero()) {
                let opened = batch.opened.map_or(started, |opened| opened.max(started));
                self.metrics.step("receive", opened);
                return batch;
            }
            self.reclaim_lost().await;
            tokio::select! {
                received = tokio::time::timeout(wait, self.consumer.recv()) => {
                    if let Ok(received) = received {
                        self.receive(&mut batch, received);
                    }
                    self.release_revoked(&mut [&mut batch]);
                }
                () = shutdown.clone().requested() => return batch,
            }
        }
    }

    /// Takes one result of `recv` into the batch; true if it was a message.
    /// Returns the partitions revoked since the last receive, already
    /// released from `batch`.
    fn receive(
        &self,
        batch: &mut Batch,
        received: Result<BorrowedMessage<'_>, rdkafka::error::KafkaError>,
    ) -> Vec<TopicPartition> {
        match received {
            Err(error) => {
                tracing::warn!(%error, "Kafka consumer error");
                self.health.set("kafka", false);
                self.release_revoked(&mut [batch])
            }
            Ok(message) => {
                self.health.set("kafka", true);
                // A partition revoked and assigned again inside this `recv`
                // (one rebalance, or a lost session rejoined) must shed what
                // it buffered before the revoke, not this message: it comes
                // from the new assignment, which starts at the checkpoint.
                let revoked = self.release_revoked(&mut [&mut *batch]);
                self.add(batch, &message);
                self.metrics.buffered.set(batch.messages as i64);
                revoked
            }
        }
    }

    /// Reads again, from its checkpoint, each partition lost to another
    /// replica's claim more than two session timeouts ago that the group
    /// has not revoked here (see [`IngestContext::lost_before`]); the next
    /// write claims it anew. A partition whose checkpoint cannot be read
    /// now is left for the next turn.
    async fn reclaim_lost(&self) {
        let context = self.consumer.context();
        let after = Duration::from_millis(2 * u64::from(self.config.kafka.session_timeout_ms));
        let Some(before) = Instant::now().checked_sub(after) else {
            return;
        };
        for (topic, partition) in context.lost_before(before) {
            let next = match self.store.checkpoints(&topic).await {
                Ok(checkpoints) => checkpoints
                    .get(&partition)
                    .map_or(Offset::Beginning, |next| Offset::Offset(*next)),
                Err(error) => {
                    tracing::warn!(%error, topic, partition, "could not read the checkpoint of a lost partition");
                    continue;
                }
            };
            if let Err(error) = self
                .consumer
                .seek(&topic, partition, next, Duration::from_secs(10))
            {
                tracing::warn!(%error, topic, partition, "could not rewind a lost partition");
                continue;
            }
            let mut resume = TopicPartitionList::new();
            resume.add_partition(&topic, partition);
            if let Err(error) = self.consumer.resume(&resume) {
                tracing::warn!(%error, topic, partition, "could not resume a lost partition");
                continue;
            }
            context.unlose(&(topic.clone(), partition));
            tracing::warn!(
                topic,
                partition,
                offset = ?next,
                "a partition lost to another replica's claim is still assigned here: \
                 claiming it again and reading from its checkpoint"
            );
        }
    }

    /// Drops from each batch the buffered messages of partitions this replica
    /// no longer owns: their new owner reads them again from the checkpoint.
    /// Returns the partitions revoked since the last call.
    fn release_revoked(&self, batches: &mut [&mut Batch]) -> Vec<TopicPartition> {
        let revoked = self.consumer.context().take_revoked();
        for batch in batches {
            self.release(batch, &revoked);
        }
        revoked
    }

    /// Drops from `batch` the buffered messages of `partitions`.
    fn release(&self, batch: &mut Batch, partitions: &[TopicPartition]) {
        let kafka = &self.config.kafka;
        for (topic, partition) in partitions {
            let Some(released) = batch.release(
                topic,
                *partition,
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
        let key = (topic.to_string(), position.partition);
        if matches!(context.claim(&key), Some(Claim::Lost(_))) {
            // Another replica claimed it; this one has not been told yet.
            self.metrics.released.with_label_values(&[topic]).inc();
            return;
        }
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
    /// commits. Meanwhile the consumer keeps polling: every message it
    /// receives goes to `next` (never to `batch`, whose checkpoint must not
    /// pass a message it does not hold), up to `next` being full while an
    /// attempt runs; while a step fails, the partitions are paused, so the
    /// group keeps this replica and rebalances are seen.
    async fn flush(&self, batch: &mut Batch, next: &mut Batch, shutdown: &Shutdown) -> Result<()> {
        // A revoke seen by the last receive (e.g. just before shutdown) must
        // not be written behind the new owner's back.
        self.release_revoked(&mut [&mut *batch, &mut *next]);
        if batch.is_empty() {
            self.discard_ahead(batch).await;
            return Ok(());
        }
        self.metrics.batch_rows.observe(batch.messages as f64);
        self.bound_unsettled();
        let mut backoff = Backoff::new();
        let mut paused = false;
        // Partitions revoked while the last attempt ran.
        let mut revoked;
        // A retry does not look the next batch up ahead: what it would
        // stage could not be used (see `Batch::spoil_ahead`).
        let mut retrying = false;
        loop {
            let attempt = self.attempts.fetch_add(1, Ordering::Relaxed);
            let queries = format!("{WRITE_QUERY_PREFIX}{}:{attempt}:", self.replica);
            let store = self.store.tagged(queries.clone());
            let outcome;
            (outcome, revoked) = self.attempt(batch, next, &store, shutdown, !retrying).await;
            retrying = true;
            revoked.extend(self.release_revoked(&mut [&mut *next]));
            let error = match outcome {
                // A partition revoked meanwhile keeps its checkpoint if the
                // write stored it (see `drop_lost`), but is not committed.
                Ok(Ok(())) => break,
                Ok(Err(error)) => error,
                Err(_elapsed) => {
                    self.metrics
                        .write_errors
                        .with_label_values(&["timeout"])
                        .inc();
                    self.health.set("clickhouse", false);
                    anyhow::anyhow!("no answer within {:?}", self.attempt_timeout)
                }
            };
            // Revoked meanwhile: not retried here.
            self.release(batch, &revoked);
            // Its queries may still be running on the server, and could
            // store rows after the next attempt's lookup: stopped first.
            self.abandoned
                .lock()
                .expect("abandoned list lock is never poisoned")
                .push(queries);
            // The server may have stored the rows and stopped before their
            // views: the next attempt asks the raw table too.
            batch.attempt_failed();
            // Its rows may be stored and indexed by a later attempt, after
            // being found in the raw table: the next batch looks up afresh.
            next.spoil_ahead();
            if !paused {
                self.pause_assignment();
                paused = true;
            }
            backoff.log("writing the batch", &error);
            self.idle(batch, next, backoff.next_delay(), shutdown)
                .await
                .map_err(|stopped| error.context(stopped))?;
            if batch.is_empty() {
                tracing::info!("every partition of the open batch was revoked; nothing to write");
                self.discard_ahead(batch).await;
                break;
            }
        }
        if paused {
            self.resume_assignment();
        }
        next.written_before(batch);
        self.consumer.context().settle(&batch.offsets);
        self.consumer.context().progressed(batch.offsets.keys());
        let started = Instant::now();
        let mut offsets = batch.offsets.clone();
        offsets.retain(|partition, _| !revoked.contains(partition));
        self.commit(&offsets);
        self.metrics.step("commit", started);
        self.metrics.buffered.set(next.messages as i64);
        let sweep = {
            let mut swept = self
                .stages_swept
                .lock()
                .expect("sweep time lock is never poisoned");
            let due = swept.elapsed() >= STAGE_SWEEP_INTERVAL;
            if due {
                *swept = Instant::now();
            }
            due
        };
        if sweep {
            drop_stale_stages(&self.store).await;
        }
        Ok(())
    }

    /// One write attempt of `batch`, bounded by `attempt_timeout`, with the
    /// next batch read meanwhile (until it is full or shutdown is asked):
    /// decoding overlaps the server's insert. Rebalances can therefore
    /// happen during a write; the partitions revoked meanwhile are released
    /// from `next` and returned, for the caller to release from `batch`.
    /// Once `next` is full it may be looked up ahead (see
    /// [`Self::look_ahead`]), within the same bound, unless
    /// `may_look_ahead` is false (a retry); a write that fails stops the
    /// look-ahead.
    async fn attempt(
        &self,
        batch: &mut Batch,
        next: &mut Batch,
        store: &Store,
        shutdown: &Shutdown,
        may_look_ahead: bool,
    ) -> (
        Result<Result<()>, tokio::time::error::Elapsed>,
        Vec<TopicPartition>,
    ) {
        let (max_rows, max_bytes) = (self.config.batch.max_rows, self.config.batch.max_bytes);
        let mut revoked = Vec::new();
        let deadline = tokio::time::Instant::now() + self.attempt_timeout;
        let write = tokio::time::timeout_at(deadline, self.write(batch, store));
        tokio::pin!(write);
        let outcome = loop {
            if shutdown.is_requested() || next.is_full(max_rows, max_bytes) {
                if may_look_ahead && !shutdown.is_requested() && self.may_look_ahead(next) {
                    let look_ahead = self.look_ahead(next, deadline);
                    tokio::pin!(look_ahead);
                    let mut looked = false;
                    let outcome = tokio::select! {
                        biased;
                        outcome = &mut write => outcome,
                        () = &mut look_ahead => {
                            looked = true;
                            write.as_mut().await
                        }
                    };
                    if !looked && matches!(outcome, Ok(Ok(()))) {
                        look_ahead.await;
                    }
                    break outcome;
                }
                break write.await;
            }
            tokio::select! {
                biased;
                outcome = &mut write => break outcome,
                received = self.consumer.recv() => {
                    self.health.beat("consumer", STALL_AFTER);
                    revoked.extend(self.receive(next, received));
                }
            }
        };
        (outcome, revoked)
    }

    /// Asks the broker where each newly assigned partition ends now (at or
    /// after its assignment): its previous owner cannot have stored more, so
    /// the messages after it are looked up in the id index alone (a claim
    /// may lower the bound further: see [`Self::claim_assigned`]). A partition the broker does
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
    /// progress in `batch`, so a retry resumes where the failure was. `store`
    /// tags the attempt's queries.
    async fn write(&self, batch: &mut Batch, store: &Store) -> Result<()> {
        let failed = |step: &str, dependency: &str| {
            self.metrics.write_errors.with_label_values(&[step]).inc();
            self.health.set(dependency, false);
        };
        self.stop_abandoned(store)
            .await
            .inspect_err(|_| failed("stop_abandoned", "clickhouse"))?;
        if self.fencing == Fencing::On {
            let started = Instant::now();
            self.claim_assigned(store)
                .await
                .inspect_err(|_| failed("claim", "clickhouse"))?;
            self.metrics.step("claim", started);
        }
        if !batch.rows_written {
            batch.judge_suspect(self.unsettled());
            let started = Instant::now();
            let sink = self.row_sink(store);
            let fences = self.held_fences();
            let written_under = fences.by_partition(
                &self.config.kafka.contact_topic,
                &self.config.kafka.satisfaction_topic,
            );
            // Every held fence is compared, not only those of the batch's
            // partitions: a claim anywhere discards the look-ahead.
            let ahead = match batch.take_ahead(&written_under, self.attempt_timeout) {
                TakenAhead::None => None,
                TakenAhead::Holds(ahead) => {
                    self.metrics.looked_ahead.with_label_values(&["used"]).inc();
                    Some(ahead)
                }
                TakenAhead::Stale(stale) => {
                    self.discard(stale).await;
                    None
                }
            };
            batch.written_under = written_under;
            let written = sink
                .write(
                    &mut batch.contacts,
                    &mut batch.satisfaction,
                    batch.suspect,
                    &fences,
                    ahead,
                )
                .await;
            batch.asked_raw |= sink.asked_raw.load(Ordering::Relaxed);
            let refused = written.inspect_err(|_| failed("rows", "clickhouse"))?;
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
        if self.fencing == Fencing::On {
            // One check, after the rows: the server has refused them already
            // if the partition was claimed before. Rows of a partition claimed
            // meanwhile may or may not be stored: neither their dead letters
            // nor their checkpoint are this replica's to write.
            let started = Instant::now();
            self.drop_lost(batch, store)
                .await
                .inspect_err(|_| failed("fence_check", "clickhouse"))?;
            self.metrics.step("fence_check", started);
        }
        let started = Instant::now();
        self.dead_letters
            .send_all(&mut batch.dead_letters)
            .await
            .inspect_err(|_| failed("dead_letters", "kafka"))?;
        self.metrics.step("dead_letters", started);
        let started = Instant::now();
        store
            .save_checkpoints(&batch.checkpoints())
            .await
            .context("saving checkpoints")
            .inspect_err(|_| failed("checkpoint", "clickhouse"))?;
        self.metrics.step("checkpoint", started);
        self.health.set("clickhouse", true);
        Ok(())
    }

    /// Whether a message at an offset of a partition may be stored without
    /// its index (see [`Batch::judge_suspect`]). A partition no longer
    /// assigned has no bound: its rows, if still written (fencing off, or
    /// kept after a revoke), are looked for in the raw table too.
    fn unsettled(&self) -> impl Fn(&TopicPartition, i64) -> bool + '_ {
        let context = self.consumer.context();
        move |partition, offset| {
            !context.is_assigned(partition) || context.is_unsettled(partition, offset)
        }
    }

    /// The row sink writing through `store`.
    fn row_sink(&self, store: &Store) -> RowSink {
        RowSink {
            store: store.clone(),
            metrics: self.metrics.clone(),
            contact_topic: self.config.kafka.contact_topic.clone(),
            satisfaction_topic: self.config.kafka.satisfaction_topic.clone(),
            fencing: self.fencing,
            asked_raw: AtomicBool::new(false),
        }
    }

    /// Whether `next` may be looked up and staged while the batch before it
    /// is written (see [`Self::look_ahead`]): not already, no claim pending
    /// or unsettled (a claim waits for other replicas' writes before any
    /// lookup), and no row of it possibly stored without its index (every
    /// partition assigned here and settled), so the id index alone answers.
    fn may_look_ahead(&self, next: &Batch) -> bool {
        next.ahead.is_none()
            && !next.is_empty()
            && !self.claimed_unsettled.load(Ordering::SeqCst)
            && self.consumer.context().unclaimed().is_empty()
            && !next.suspect_under(self.unsettled())
    }

    /// Looks up and stages `next`'s rows while the batch before it is
    /// written (until `deadline`, the write attempt's), so that its own
    /// attempt only moves them. Its attempt uses them only if they still
    /// hold (see [`Batch::take_ahead`] and [`Batch::written_before`]): after
    /// a failed attempt, a claim, a rebalance, a batch that asked the raw
    /// table, or once older than `attempt_timeout`, it looks up afresh. The
    /// lookup is earlier than its attempt's would be, so the window in which
    /// another replica can store the same id from another partition unseen
    /// (see the module's comment) grows by about one write. A look-ahead cut
    /// short leaves its stage to be dropped as stale.
    async fn look_ahead(&self, next: &mut Batch, deadline: tokio::time::Instant) {
        let fences = self.held_fences();
        let sink = self.row_sink(&self.store);
        let looked = tokio::time::timeout_at(
            deadline,
            sink.look_ahead(&mut next.contacts, &mut next.satisfaction, &fences),
        )
        .await;
        let error = match looked {
            Ok(Ok(looked)) => {
                let fences = fences.by_partition(
                    &self.config.kafka.contact_topic,
                    &self.config.kafka.satisfaction_topic,
                );
                return next.looked_ahead(looked, fences);
            }
            Ok(Err(error)) => error.to_string(),
            Err(_) => "no answer in time".to_string(),
        };
        self.metrics
            .looked_ahead
            .with_label_values(&["failed"])
            .inc();
        tracing::info!(%error, "the next batch could not be looked up ahead; its write looks it up");
    }

    /// Discards `batch`'s look-ahead, if any (see [`Self::discard`]).
    async fn discard_ahead(&self, batch: &mut Batch) {
        if let Some(stale) = batch.drop_ahead() {
            self.discard(stale).await;
        }
    }

    /// Discards a look-ahead that no longer holds: its stages are dropped.
    async fn discard(&self, stale: LookedAhead) {
        self.metrics
            .looked_ahead
            .with_label_values(&["discarded"])
            .inc();
        self.row_sink(&self.store).discard(stale).await;
    }

    /// Stops the queries of abandoned attempts still running on the server
    /// and waits until they have ended.
    async fn stop_abandoned(&self, store: &Store) -> Result<()> {
        let prefixes = self
            .abandoned
            .lock()
            .expect("abandoned list lock is never poisoned")
            .clone();
        if prefixes.is_empty() {
            return Ok(());
        }
        let mut running = Vec::new();
        for prefix in &prefixes {
            running.extend(store.running_queries(prefix).await?);
        }
        if !running.is_empty() {
            tracing::warn!(
                queries = ?running,
                "an abandoned attempt's queries are still running: stopping them before retrying"
            );
            self.await_queries(store, &running, Duration::ZERO).await?;
        }
        self.abandoned
            .lock()
            .expect("abandoned list lock is never poisoned")
            .retain(|prefix| !prefixes.contains(prefix));
        Ok(())
    }

    /// Claims every assigned partition not yet claimed, then waits for the
    /// writes other replicas had running: one that began before the claim
    /// may have passed its fence check, and must end before this replica's
    /// id lookup (see the module's comment).
    async fn claim_assigned(&self, store: &Store) -> Result<()> {
        let context = self.consumer.context();
        let unclaimed = context.unclaimed();
        // Taken before the claim: the bound read after it applies to these
        // assignments only.
        let assignments: HashMap<TopicPartition, u64> = unclaimed
            .iter()
            .filter_map(|partition| Some((partition.clone(), context.assignment(partition)?)))
            .collect();
        let mut claimed_now = Vec::new();
        for (topic, record) in self.topics() {
            let partitions: Vec<i32> = unclaimed
                .iter()
                .filter(|(of, _)| of == topic)
                .map(|(_, partition)| *partition)
                .collect();
            if partitions.is_empty() {
                continue;
            }
            let claimed = store
                .claim(record, &partitions, &self.replica, rand::random())
                .await
                .context("claiming partitions")?;
            // Set as soon as a claim is stored: an attempt cut short from
            // here on leaves the wait to the next one.
            self.claimed_unsettled.store(true, Ordering::SeqCst);
            for (partition, fence) in claimed {
                context.set_claim(&(topic.to_string(), partition), Claim::Held(fence));
            }
            tracing::info!(topic, ?partitions, "claimed partitions");
            claimed_now.push((topic, record, partitions));
        }
        if self.claimed_unsettled.load(Ordering::SeqCst) {
            let own = format!("{WRITE_QUERY_PREFIX}{}:", self.replica);
            let others: Vec<String> = store
                .running_queries(WRITE_QUERY_PREFIX)
                .await?
                .into_iter()
                .filter(|id| !id.starts_with(&own))
                .collect();
            if !others.is_empty() {
                tracing::info!(
                    queries = others.len(),
                    "waiting for other replicas' writes that began before the claim"
                );
                self.await_queries(store, &others, self.attempt_timeout / 2)
                    .await?;
            }
            self.claimed_unsettled.store(false, Ordering::SeqCst);
            // No write that began before the claim runs any more, and later
            // ones are refused: a message past the last one stored of its
            // partition cannot be stored without its index, so it needs the
            // id index alone. (Partitions claimed by an attempt cut short
            // before here keep their end at assignment as their bound.)
            for (topic, record, partitions) in claimed_now {
                let ends = store
                    .stored_offsets_end(record, &partitions)
                    .await
                    .context("reading the offsets stored of claimed partitions")?;
                for partition in partitions {
                    let end = ends.get(&partition).copied().unwrap_or(0);
                    let key = (topic.to_string(), partition);
                    if let Some(&assignment) = assignments.get(&key) {
                        context.bound_by_stored(&key, end, assignment);
                    }
                }
            }
        }
        Ok(())
    }

    /// Waits until none of `query_ids` runs, asking the server to stop them
    /// once `kill_after` has passed. Bounded by the attempt's timeout.
    async fn await_queries(
        &self,
        store: &Store,
        query_ids: &[String],
        kill_after: Duration,
    ) -> Result<()> {
        let started = Instant::now();
        let mut killed = false;
        while store.still_running(query_ids).await? > 0 {
            if !killed && started.elapsed() >= kill_after {
                tracing::warn!(queries = ?query_ids, "stopping queries on the server");
                store.kill_queries(query_ids).await?;
                killed = true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    /// Drops from the batch the partitions whose fence is no longer this
    /// replica's: another replica claimed them (this one's session expired,
    /// or the broker assigned them elsewhere before revoking them here).
    /// Their messages are left to the new owner, read again from its start.
    /// A partition revoked while the batch was written (no claim now, or
    /// assigned here again and not yet claimed) is judged by the fence its
    /// rows carried: still the highest, they are stored and its checkpoint
    /// is true, so it stays (it is not committed: see [`Self::flush`]);
    /// claimed since by another replica, it is dropped and counted as
    /// fenced, but not paused, as it is no longer this assignment's.
    async fn drop_lost(&self, batch: &mut Batch, store: &Store) -> Result<()> {
        let context = self.consumer.context();
        let mut lost = Vec::new();
        let mut fenced = Vec::new();
        for (topic, record) in self.topics() {
            let partitions: Vec<i32> = batch
                .offsets
                .keys()
                .filter(|(of, _)| of == topic)
                .map(|(_, partition)| *partition)
                .collect();
            if partitions.is_empty() {
                continue;
            }
            let current = store
                .fences(record, &partitions)
                .await
                .context("reading fences")?;
            for partition in partitions {
                let key = (topic.to_string(), partition);
                let current = current.get(&partition);
                let claimed_since = batch
                    .written_under
                    .get(&key)
                    .is_none_or(|fence| current != Some(fence));
                match context.claim(&key) {
                    Some(Claim::Held(fence)) if current == Some(&fence) => {}
                    Some(Claim::Held(_) | Claim::Lost(_)) => lost.push(key),
                    None | Some(Claim::Unclaimed) if claimed_since => fenced.push(key),
                    None | Some(Claim::Unclaimed) => {}
                }
            }
        }
        let held = batch.messages;
        self.release(batch, &fenced);
        if lost.is_empty() && fenced.is_empty() {
            return Ok(());
        }
        let kafka = &self.config.kafka;
        let mut pause = TopicPartitionList::new();
        let mut released = held - batch.messages;
        for (topic, partition) in &lost {
            context.set_claim(&(topic.clone(), *partition), Claim::Lost(Instant::now()));
            released += batch
                .release(
                    topic,
                    *partition,
                    &kafka.contact_topic,
                    &kafka.satisfaction_topic,
                )
                .unwrap_or(0);
            pause.add_partition(topic, *partition);
        }
        // Until the broker revokes them here, nothing more is fetched.
        if let Err(error) = self.consumer.pause(&pause) {
            tracing::warn!(%error, "pausing lost partitions failed");
        }
        self.metrics.fenced.inc();
        self.metrics.buffered.set(batch.messages as i64);
        lost.extend(fenced);
        tracing::error!(
            partitions = ?lost,
            released,
            "another replica claimed partitions while this one was writing them: the server \
             stores none of this replica's rows there after the claim; their messages are left \
             to the new owner"
        );
        Ok(())
    }

    /// The fence held on each claimed partition, per topic.
    fn held_fences(&self) -> Fences {
        let context = self.consumer.context();
        let mut fences = Fences::default();
        for (topic, record) in self.topics() {
            let held = match record {
                Record::Contact => &mut fences.contacts,
                Record::Satisfaction => &mut fences.satisfaction,
            };
            for partition in context.partitions_of(topic) {
                if let Some(Claim::Held(fence)) = context.claim(&(topic.to_string(), partition)) {
                    held.insert(partition, fence);
                }
            }
        }
        fences
    }

    /// Each topic with the record it carries.
    fn topics(&self) -> [(&str, Record); 2] {
        let kafka = &self.config.kafka;
        [
            (kafka.contact_topic.as_str(), Record::Contact),
            (kafka.satisfaction_topic.as_str(), Record::Satisfaction),
        ]
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
            let (client, source) = (kafka.client()?, topic.clone());
            let fetched =
                tokio::task::spawn_blocking(move || refetch::messages(client, &source, &positions))
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

    /// Waits `delay` while still serving the group: rebalances are handled
    /// (revoked partitions leave both batches), newly assigned partitions are
    /// paused too, and a message already on its way joins `next`. Returns an
    /// error if shutdown comes first.
    async fn idle(
        &self,
        batch: &mut Batch,
        next: &mut Batch,
        delay: Duration,
        shutdown: &Shutdown,
    ) -> Result<()> {
        self.note_ends();
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
                        let revoked = self.receive(next, received);
                        self.release(batch, &revoked);
                    }
                }
                () = shutdown.clone().requested() => anyhow::bail!("gave up at shutdown"),
            }
            self.pause_assignment();
            self.release_revoked(&mut [&mut *batch, &mut *next]);
        }
    }

    /// Asks the broker where each assigned partition ends: while paused,
    /// librdkafka's statistics no longer follow it, and the stall check
    /// must still see messages waiting.
    fn note_ends(&self) {
        let Ok(assignment) = self.consumer.assignment() else {
            return;
        };
        let context = self.consumer.context();
        for element in assignment.elements() {
            let (topic, partition) = (element.topic(), element.partition());
            if let Ok((_, end)) =
                self.consumer
                    .fetch_watermarks(topic, partition, Duration::from_millis(500))
            {
                context.ended_at((topic.to_string(), partition), end);
            }
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
        if offsets.is_empty() {
            // Every partition of the batch was revoked or fenced meanwhile.
            return;
        }
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

/// `p<pid>.<random>@<host>`: unique among the replicas of a group, and
/// telling an operator which process a query id or a fence belongs to.
fn replica_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'))
        .take(64)
        .collect();
    format!(
        "p{}.{:08x}@{}",
        std::process::id(),
        rand::random::<u32>(),
        if host.is_empty() { "host" } else { &host }
    )
}

/// Drops staged INSERTs abandoned long ago (by stopped replicas, or by an
/// attempt or look-ahead cut short); best effort.
async fn drop_stale_stages(store: &Store) {
    match store.drop_stale_stages(STALE_STAGE_SECONDS).await {
        Ok(0) => {}
        Ok(dropped) => tracing::info!(dropped, "dropped abandoned staged inserts"),
        Err(error) => tracing::warn!(%error, "could not look for stale staged inserts"),
    }
}

/// Creates the topics and their dead-letter topics; existing ones are left as they are.
pub async fn create_topics(kafka: &KafkaConfig) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = kafka
        .client()?
        .create()
        .context("creating the Kafka admin client")?;
    let names = [
        kafka.contact_topic.clone(),
        kafka.satisfaction_topic.clone(),
        KafkaConfig::dead_letter_topic(&kafka.contact_topic),
        KafkaConfig::dead_letter_topic(&kafka.satisfaction_topic),
    ];
    let retention = kafka.dead_letter_retention_ms().to_string();
    let topics: Vec<NewTopic<'_>> = names
        .iter()
        .map(|name| {
            let topic = NewTopic::new(name, kafka.partitions, TopicReplication::Fixed(1));
            if name.ends_with(".dlq") {
                topic.set("retention.ms", &retention)
            } else {
                topic
            }
        })
        .collect();
    // A broker that answers nothing (a refused login looks so) is reported
    // after 15 s rather than librdkafka's minute.
    let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(15)));
    let results = match admin.create_topics(&topics, &options).await {
        Ok(results) => results,
        Err(error) => {
            // librdkafka's timeout says nothing of a refused login or a
            // failed handshake: ask the connection why.
            let (security, brokers) = (kafka.security.clone(), kafka.brokers.clone());
            let why = tokio::task::spawn_blocking(move || security.diagnose(&brokers))
                .await
                .ok()
                .flatten();
            return Err(match why {
                Some(why) => anyhow::anyhow!("creating topics: {error}; the brokers report: {why}"),
                None => anyhow::anyhow!("creating topics: {error}"),
            });
        }
    };
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
