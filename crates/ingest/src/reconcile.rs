//! Reconciliation: what the topics hold against what ClickHouse holds.
//!
//! Each partition of the contact and satisfaction topics is read with a
//! throwaway consumer (assigned, never joining or committing to a group), and
//! every message is accounted for exactly one way: stored (a raw row carries its
//! partition and offset), a repeat of an id stored from another message,
//! dead-lettered (its source offset is on `<topic>.dlq`), pending (at or after
//! ingest's checkpoint: not processed yet), or a discrepancy: missing (a valid
//! message behind the checkpoint with no row) or its dead letter missing.
//! Ids stored more than once, rows no message accounts for, and raw rows
//! against the id index and the daily rollup are checked across each table.
//!
//! Memory stays small at millions of events: one partition at a time, each id
//! kept as a 128-bit fingerprint with its offset, messages streamed. Only the
//! id and council are parsed from each message; the contract's full parser
//! runs only on the few messages that are neither stored nor dead-lettered.

use crate::config::{IngestConfig, KafkaConfig};
use anyhow::{Context, Result};
use channelshift_contract::{ContactEvent, SatisfactionResponse};
use channelshift_runtime::text::grouped;
use channelshift_store::{ClickHouseConfig, Duplicate, Record, Store};
use chrono::Utc;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::{Message, Offset, TopicPartitionList};
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::time::Duration;

/// Messages per partition a routine reconciliation covers (the latest ones);
/// `--from-beginning` covers everything the broker still holds.
pub const RECENT_PER_PARTITION: i64 = 100_000;
/// How long the broker may go without delivering the next message.
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);
/// Discrepancies listed by id per partition (all are counted).
const EXAMPLES: usize = 10;

/// What the command reads: ingest's own file and variables serve.
#[derive(Clone, Debug, Deserialize)]
pub struct ReconcileConfig {
    pub kafka: KafkaConfig,
    pub clickhouse: ClickHouseConfig,
    /// Ingest dead-letters larger messages as `too_large`.
    #[serde(default = "crate::config::default_max_message_bytes")]
    pub max_message_bytes: usize,
}

impl From<&IngestConfig> for ReconcileConfig {
    fn from(config: &IngestConfig) -> Self {
        Self {
            kafka: config.kafka.clone(),
            clickhouse: config.clickhouse.clone(),
            max_message_bytes: config.max_message_bytes,
        }
    }
}

/// Which messages of each partition are compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Span {
    /// The latest [`RECENT_PER_PARTITION`] messages of each partition.
    Recent,
    /// Every message the broker still holds.
    FromBeginning,
}

/// The (council, id) of a message, parsed cheaply; `None` when it has none.
fn key(record: Record, payload: &[u8]) -> Option<(String, String)> {
    #[derive(Deserialize)]
    struct ContactKey<'a> {
        #[serde(borrow)]
        council: Cow<'a, str>,
        #[serde(borrow)]
        event_id: Cow<'a, str>,
    }
    #[derive(Deserialize)]
    struct ResponseKey<'a> {
        #[serde(borrow)]
        council: Cow<'a, str>,
        #[serde(borrow)]
        response_id: Cow<'a, str>,
    }
    match record {
        Record::Contact => serde_json::from_slice::<ContactKey<'_>>(payload)
            .ok()
            .map(|key| (key.council.into_owned(), key.event_id.into_owned())),
        Record::Satisfaction => serde_json::from_slice::<ResponseKey<'_>>(payload)
            .ok()
            .map(|key| (key.council.into_owned(), key.response_id.into_owned())),
    }
}

/// The contract's verdict, for a message neither stored nor dead-lettered:
/// `Some(key)` if ingest would store it, `None` if it would dead-letter it.
fn validated_key(
    record: Record,
    payload: &[u8],
    max_message_bytes: usize,
) -> Option<(String, String)> {
    if payload.len() > max_message_bytes {
        return None;
    }
    let now = Utc::now();
    match record {
        Record::Contact => ContactEvent::from_json(payload, now)
            .ok()
            .map(|event| (event.council.to_string(), event.event_id.to_string())),
        Record::Satisfaction => {
            SatisfactionResponse::from_json(payload, now)
                .ok()
                .map(|response| {
                    (
                        response.council.to_string(),
                        response.response_id.to_string(),
                    )
                })
        }
    }
}

/// A 128-bit fingerprint of (council, id): collisions are out of reach at
/// billions of ids, and 16 bytes a row keeps a million ids in 24 MB.
fn fingerprint(council: &str, id: &str) -> u128 {
    let half = |salt: u8| {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        salt.hash(&mut hasher);
        council.hash(&mut hasher);
        id.hash(&mut hasher);
        hasher.finish()
    };
    (u128::from(half(0)) << 64) | u128::from(half(1))
}

/// How one partition's messages were accounted for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartitionReport {
    pub partition: i32,
    /// The offsets compared: `start..end` (end is the high watermark when the
    /// reconciliation began).
    pub start: i64,
    pub end: i64,
    /// Ingest's checkpoint: the next offset it will read.
    pub checkpoint: Option<i64>,
    pub messages: u64,
    /// Messages whose row is stored (the row names this offset).
    pub stored: u64,
    /// Messages whose id was stored from another message (re-sent copies).
    pub repeats: u64,
    /// Messages on the dead-letter topic (by source offset).
    pub dead_lettered: u64,
    /// Messages at or after the checkpoint with no row yet.
    pub pending: u64,
    /// Valid messages behind the checkpoint with no row: lost.
    pub missing: u64,
    /// Valid messages whose row retention has dropped (`purge-raw`): the id
    /// index still holds their id, the rollups their count.
    pub purged: u64,
    /// Invalid messages behind the checkpoint not on the dead-letter topic.
    pub dead_letters_missing: u64,
    /// Rows naming an offset in `start..end`.
    pub rows: u64,
    /// Rows naming an offset in `start..end` that no message there accounts
    /// for (its id differs from the message's).
    pub unexplained_rows: u64,
    /// Some discrepancies, as (offset, id or "-").
    pub examples: Vec<(i64, String)>,
}

impl PartitionReport {
    fn discrepancies(&self) -> u64 {
        self.missing + self.dead_letters_missing + self.unexplained_rows
    }
}

/// One topic against its table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicReport {
    pub topic: String,
    pub table: &'static str,
    pub partitions: Vec<PartitionReport>,
    /// Ids with more than one raw row, and the rows beyond the first.
    pub duplicated_ids: u64,
    pub duplicate_rows: u64,
    pub duplicate_examples: Vec<Duplicate>,
    /// Raw rows, id index rows, the rollup's total; the raw rows and the
    /// rollup only over the local months retention has not touched.
    pub raw_rows: u64,
    pub id_index_rows: u64,
    pub rollup_total: u64,
    /// Raw rows behind their partition's checkpoint whose id the index
    /// lacks: ingest would store such an id again. (Rows ahead of the
    /// checkpoint may still be being indexed, so whole-table counts of raw
    /// rows and index differ for a moment while ingest runs.)
    pub unindexed_rows: u64,
    /// Dead letters whose source offset appears more than once (a crash
    /// between sending and checkpointing re-sends them; counts are unaffected).
    pub dead_letters_resent: u64,
    /// False when `<topic>.dlq` does not exist.
    pub dead_letter_topic_found: bool,
}

impl TopicReport {
    pub fn total(&self) -> PartitionReport {
        let mut total = PartitionReport {
            partition: -1,
            ..PartitionReport::default()
        };
        for p in &self.partitions {
            total.messages += p.messages;
            total.stored += p.stored;
            total.repeats += p.repeats;
            total.dead_lettered += p.dead_lettered;
            total.pending += p.pending;
            total.missing += p.missing;
            total.purged += p.purged;
            total.dead_letters_missing += p.dead_letters_missing;
            total.rows += p.rows;
            total.unexplained_rows += p.unexplained_rows;
        }
        total
    }

    /// Lost, doubled or unexplained anything; pending messages are not a discrepancy.
    pub fn discrepancies(&self) -> u64 {
        self.total().discrepancies()
            + self.duplicate_rows
            + self.unindexed_rows
            + self.raw_rows.abs_diff(self.rollup_total)
    }
}

/// The whole reconciliation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub span: Span,
    pub topics: Vec<TopicReport>,
}

impl Report {
    pub fn discrepancies(&self) -> u64 {
        self.topics.iter().map(TopicReport::discrepancies).sum()
    }

    pub fn pending(&self) -> u64 {
        self.topics.iter().map(|topic| topic.total().pending).sum()
    }

    /// Everything compared is stored or dead-lettered exactly once.
    pub fn is_exact(&self) -> bool {
        self.discrepancies() == 0 && self.pending() == 0
    }

    /// The command's exit code: 0 exact, 2 discrepancies, 3 only pending messages.
    pub fn exit_code(&self) -> i32 {
        if self.discrepancies() > 0 {
            2
        } else if self.pending() > 0 {
            3
        } else {
            0
        }
    }
}

/// One figure of a topic's report.
type TopicFigure = fn(&TopicReport) -> u64;

/// Gauges a scheduled `reconcile --metrics-file` leaves for Prometheus.
pub const RECONCILE_DUPLICATE_ROWS: &str = "channelshift_reconcile_duplicate_rows";
pub const RECONCILE_DISCREPANCIES: &str = "channelshift_reconcile_discrepancies";
pub const RECONCILE_PENDING: &str = "channelshift_reconcile_pending_messages";
pub const RECONCILE_LAST_RUN: &str = "channelshift_reconcile_last_run_timestamp_seconds";

impl Report {
    /// The findings in Prometheus' text format, per topic, stamped `now`
    /// (Unix seconds).
    pub fn prometheus_text(&self, now: i64) -> String {
        let mut text = String::new();
        let gauges: [(&str, &str, TopicFigure); 3] = [
            (
                RECONCILE_DUPLICATE_ROWS,
                "Raw rows beyond the first of ids stored more than once",
                |topic| topic.duplicate_rows,
            ),
            (
                RECONCILE_DISCREPANCIES,
                "Messages lost, rows doubled or unexplained, and raw rows unlike the id index or the rollup",
                TopicReport::discrepancies,
            ),
            (
                RECONCILE_PENDING,
                "Messages not yet stored or dead-lettered (normal while ingest catches up)",
                |topic| topic.total().pending,
            ),
        ];
        for (name, help, value) in gauges {
            text.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
            for topic in &self.topics {
                text.push_str(&format!(
                    "{name}{{topic=\"{}\",table=\"{}\"}} {}\n",
                    topic.topic.replace(['\\', '"'], "_"),
                    topic.table,
                    value(topic)
                ));
            }
        }
        text.push_str(&format!(
            "# HELP {RECONCILE_LAST_RUN} When this reconciliation finished\n\
             # TYPE {RECONCILE_LAST_RUN} gauge\n{RECONCILE_LAST_RUN} {now}\n"
        ));
        text
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let span = match self.span {
            Span::Recent => format!(
                "the latest {} messages of each partition",
                grouped(RECENT_PER_PARTITION as u64)
            ),
            Span::FromBeginning => "every message the broker holds".to_string(),
        };
        writeln!(f, "Reconciliation of {span}")?;
        for topic in &self.topics {
            writeln!(f)?;
            writeln!(f, "{} → {}", topic.topic, topic.table)?;
            writeln!(
                f,
                "{:>9} {:>21} {:>11} {:>10} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10}",
                "partition",
                "offsets",
                "checkpoint",
                "messages",
                "stored",
                "repeats",
                "dead",
                "pending",
                "MISSING",
                "NO-DLQ",
                "UNMATCHED"
            )?;
            let total = topic.total();
            for p in topic.partitions.iter().chain(std::iter::once(&total)) {
                let (name, offsets, checkpoint) = if p.partition < 0 {
                    ("total".to_string(), String::new(), String::new())
                } else {
                    (
                        p.partition.to_string(),
                        format!("{}..{}", p.start, p.end),
                        p.checkpoint.map_or("none".into(), |c| c.to_string()),
                    )
                };
                writeln!(
                    f,
                    "{:>9} {:>21} {:>11} {:>10} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10}",
                    name,
                    offsets,
                    checkpoint,
                    grouped(p.messages),
                    grouped(p.stored),
                    grouped(p.repeats),
                    grouped(p.dead_lettered),
                    grouped(p.pending),
                    grouped(p.missing),
                    grouped(p.dead_letters_missing),
                    grouped(p.unexplained_rows),
                )?;
            }
            for p in &topic.partitions {
                for (offset, id) in &p.examples {
                    writeln!(f, "  partition {} offset {offset}: {id}", p.partition)?;
                }
            }
            writeln!(
                f,
                "  ids stored more than once: {} ({} extra rows); raw rows {}, id index {} \
                 ({} settled rows unindexed), rollup total {}",
                grouped(topic.duplicated_ids),
                grouped(topic.duplicate_rows),
                grouped(topic.raw_rows),
                grouped(topic.id_index_rows),
                grouped(topic.unindexed_rows),
                grouped(topic.rollup_total),
            )?;
            let purged = topic.total().purged;
            if purged > 0 {
                writeln!(
                    f,
                    "  {} messages whose raw rows retention dropped (ids indexed, counted in the \
                     rollups); raw rows and rollup compared from the first month it left whole",
                    grouped(purged)
                )?;
            }
            for duplicate in &topic.duplicate_examples {
                writeln!(
                    f,
                    "  {} {} × {} (partitions {:?}, offsets {:?})",
                    duplicate.council,
                    duplicate.id,
                    duplicate.copies,
                    duplicate.partitions,
                    duplicate.offsets
                )?;
            }
            if topic.dead_letter_topic_found {
                writeln!(
                    f,
                    "  {}.dlq: {} dead letters for these offsets, {} sent more than once",
                    topic.topic,
                    grouped(total.dead_lettered),
                    grouped(topic.dead_letters_resent)
                )?;
            } else {
                writeln!(f, "  {}.dlq does not exist", topic.topic)?;
            }
        }
        writeln!(f)?;
        match self.exit_code() {
            0 => write!(f, "exact: every message stored or dead-lettered once"),
            2 => write!(
                f,
                "DISCREPANCIES: {} (MISSING: valid, behind the checkpoint, no row; NO-DLQ: invalid, \
                 behind the checkpoint, not dead-lettered; UNMATCHED: rows naming an offset whose \
                 message has another id; duplicates; raw rows against id index and rollup)",
                grouped(self.discrepancies())
            ),
            _ => write!(
                f,
                "nothing lost or doubled so far; {} messages not yet ingested (pending)",
                grouped(self.pending())
            ),
        }
    }
}

/// Reconciles both topics with the database.
pub async fn reconcile(config: &ReconcileConfig, span: Span) -> Result<Report> {
    let kafka = &config.kafka;
    let store = Store::connect(&config.clickhouse)
        .await
        .context("connecting to ClickHouse")?;
    let mut topics = Vec::new();
    for (topic, kind) in [
        (&kafka.contact_topic, Record::Contact),
        (&kafka.satisfaction_topic, Record::Satisfaction),
    ] {
        topics.push(
            reconcile_topic(config, topic, kind, &store, span)
                .await
                .with_context(|| format!("reconciling {topic}"))?,
        );
    }
    Ok(Report { span, topics })
}

fn reader(kafka: &KafkaConfig) -> Result<StreamConsumer> {
    kafka
        .client()?
        // Never joins a group (partitions are assigned) and never commits.
        .set(
            "group.id",
            format!("channelshift-reconcile-{}", std::process::id()),
        )
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest")
        .set("fetch.max.bytes", "16777216")
        .create()
        .context("creating the Kafka reader")
}

/// The partitions of `topic`; `None` if the broker does not know it.
fn partitions(consumer: &StreamConsumer, topic: &str) -> Result<Option<Vec<i32>>> {
    let metadata = consumer
        .fetch_metadata(Some(topic), FETCH_TIMEOUT)
        .with_context(|| format!("reading the metadata of {topic}"))?;
    Ok(metadata.topics().first().and_then(|found| {
        (found.error().is_none() && !found.partitions().is_empty())
            .then(|| found.partitions().iter().map(|p| p.id()).collect())
    }))
}

/// Reads `partition` of `topic` from `start` to just before `end`, handing
/// each message to `visit`.
async fn read_partition(
    consumer: &StreamConsumer,
    topic: &str,
    partition: i32,
    start: i64,
    end: i64,
    mut visit: impl FnMut(&BorrowedMessage<'_>),
) -> Result<()> {
    if start >= end {
        return Ok(());
    }
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(topic, partition, Offset::Offset(start))?;
    consumer.assign(&list)?;
    loop {
        let received = tokio::time::timeout(FETCH_TIMEOUT, consumer.recv())
            .await
            .with_context(|| format!("{topic}/{partition}: no message within {FETCH_TIMEOUT:?}"))?;
        match received {
            Ok(message) => {
                let offset = message.offset();
                if offset < end {
                    visit(&message);
                }
                if offset >= end - 1 {
                    break;
                }
            }
            // The end of what the broker holds; `end` was read earlier, so
            // offsets missing below it are gaps (compaction, markers). The
            // reader is reused partition after partition: an end reported for
            // one read before is not this one's.
            Err(KafkaError::PartitionEOF(eof)) if eof == partition => break,
            Err(KafkaError::PartitionEOF(_)) => continue,
            Err(error) => {
                return Err(error).with_context(|| format!("reading {topic}/{partition}"))
            }
        }
    }
    consumer.unassign()?;
    Ok(())
}

/// (source partition, source offset) → how many dead letters name it.
async fn dead_letters(
    consumer: &StreamConsumer,
    topic: &str,
) -> Result<Option<HashMap<(i32, i64), u32>>> {
    let dlq = KafkaConfig::dead_letter_topic(topic);
    let Some(partitions) = partitions(consumer, &dlq)? else {
        return Ok(None);
    };
    let mut letters: HashMap<(i32, i64), u32> = HashMap::new();
    for partition in partitions {
        let (low, high) = consumer.fetch_watermarks(&dlq, partition, FETCH_TIMEOUT)?;
        read_partition(consumer, &dlq, partition, low, high, |message| {
            let header = |name: &str| -> Option<String> {
                let headers = message.headers()?;
                headers
                    .iter()
                    .find(|header| header.key == name)
                    .and_then(|header| header.value)
                    .map(|value| String::from_utf8_lossy(value).into_owned())
            };
            if header("channelshift-source-topic").as_deref() != Some(topic) {
                return;
            }
            let partition = header("channelshift-source-partition").and_then(|p| p.parse().ok());
            let offset = header("channelshift-source-offset").and_then(|o| o.parse().ok());
            if let (Some(partition), Some(offset)) = (partition, offset) {
                *letters.entry((partition, offset)).or_default() += 1;
            }
        })
        .await?;
    }
    Ok(Some(letters))
}

/// A message that is neither stored at its offset nor dead-lettered, kept
/// until the lookup of ids stored from other messages.
struct Unresolved {
    offset: i64,
    payload: Vec<u8>,
    key: Option<(String, String)>,
}

async fn reconcile_topic(
    config: &ReconcileConfig,
    topic: &str,
    kind: Record,
    store: &Store,
    span: Span,
) -> Result<TopicReport> {
    let consumer = reader(&config.kafka)?;
    let Some(partitions) = partitions(&consumer, topic)? else {
        anyhow::bail!("the broker does not know the topic {topic}");
    };
    // Read first: ingest stores a batch's rows, then sends its dead letters,
    // then saves its checkpoint, so everything behind a checkpoint read now
    // is in the rows and the dead-letter topic read after it. (Read the other
    // way round, a batch finishing in between showed its dead letters as
    // missing.)
    let checkpoints = store.checkpoints(topic).await?;
    // A reader of its own: an end-of-partition event names only the
    // partition, so one left over from the dead-letter topic's partition 0
    // could end the read of the topic's partition 0.
    let letters = dead_letters(&reader(&config.kafka)?, topic).await?;
    let dead_letters_resent = letters.as_ref().map_or(0, |letters| {
        letters.values().filter(|n| **n > 1).count() as u64
    });
    let letters = letters.as_ref();

    let mut reports = Vec::new();
    for partition in partitions {
        let (low, end) = consumer.fetch_watermarks(topic, partition, FETCH_TIMEOUT)?;
        let start = match span {
            Span::FromBeginning => low,
            Span::Recent => low.max(end - RECENT_PER_PARTITION),
        };
        let checkpoint = checkpoints.get(&partition).copied();
        let mut report = PartitionReport {
            partition,
            start,
            end,
            checkpoint,
            ..PartitionReport::default()
        };

        // The rows naming this span, sorted by (fingerprint, offset).
        let mut rows: Vec<(u128, i64)> = Vec::new();
        store
            .stored_keys(kind, partition, start, end, |row| {
                rows.push((fingerprint(&row.council, &row.id), row.offset));
            })
            .await?;
        rows.sort_unstable();
        report.rows = rows.len() as u64;
        // Copies of one row are counted with the duplicates, not here.
        rows.dedup();
        let distinct_rows = rows.len() as u64;
        let behind_checkpoint = |offset: i64| checkpoint.is_some_and(|c| offset < c);

        let mut unresolved: Vec<Unresolved> = Vec::new();
        read_partition(&consumer, topic, partition, start, end, |message| {
            report.messages += 1;
            let offset = message.offset();
            let payload = message.payload().unwrap_or_default();
            let key = key(kind, payload);
            let print = key.as_ref().map(|(council, id)| fingerprint(council, id));
            if let Some(print) = print {
                if rows.binary_search(&(print, offset)).is_ok() {
                    report.stored += 1;
                    return;
                }
            }
            if letters.is_some_and(|letters| letters.contains_key(&(partition, offset))) {
                report.dead_lettered += 1;
                return;
            }
            if let Some(print) = print {
                let first = rows.partition_point(|(p, _)| *p < print);
                if rows.get(first).is_some_and(|(p, _)| *p == print) {
                    report.repeats += 1;
                    return;
                }
            }
            if !behind_checkpoint(offset) {
                report.pending += 1;
                return;
            }
            unresolved.push(Unresolved {
                offset,
                payload: payload.to_vec(),
                key,
            });
        })
        .await?;
        report.unexplained_rows = distinct_rows.saturating_sub(report.stored);
        drop(rows);
        resolve(
            store,
            kind,
            config.max_message_bytes,
            unresolved,
            &mut report,
        )
        .await?;
        reports.push(report);
    }

    let duplicates = store.duplicate_totals(kind).await?;
    let first_whole_month = match channelshift_store::ROLLUPS
        .iter()
        .find(|rollup| rollup.source == kind.table())
    {
        Some(rollup) => store.first_whole_month(rollup).await?,
        None => None,
    };
    let (raw_rows, rollup_total) = store.retained_totals(kind, first_whole_month).await?;
    let settled: Vec<(i32, i64)> = checkpoints
        .iter()
        .map(|(partition, next)| (*partition, *next))
        .collect();
    Ok(TopicReport {
        topic: topic.to_string(),
        table: kind.table(),
        partitions: reports,
        duplicated_ids: duplicates.ids,
        duplicate_rows: duplicates.extra,
        duplicate_examples: store.duplicate_examples(kind, EXAMPLES).await?,
        raw_rows,
        id_index_rows: store.id_index_rows(kind).await?,
        unindexed_rows: store.unindexed_rows(kind, &settled).await?,
        rollup_total,
        dead_letters_resent,
        dead_letter_topic_found: letters.is_some(),
    })
}

/// Messages behind the checkpoint that are neither stored at their offset nor
/// dead-lettered: a repeat of an id stored from a message outside the span,
/// or a discrepancy, which the contract's parser tells apart.
async fn resolve(
    store: &Store,
    kind: Record,
    max_message_bytes: usize,
    unresolved: Vec<Unresolved>,
    report: &mut PartitionReport,
) -> Result<()> {
    let mut valid: Vec<(i64, (String, String))> = Vec::new();
    for message in unresolved {
        // The contract decides; the cheap key stands only if it agrees.
        match validated_key(kind, &message.payload, max_message_bytes) {
            Some(key) => valid.push((message.offset, key)),
            None => {
                report.dead_letters_missing += 1;
                if report.examples.len() < EXAMPLES {
                    let id = message.key.map_or("-".to_string(), |(_, id)| id);
                    report
                        .examples
                        .push((message.offset, format!("{id}: invalid, not dead-lettered")));
                }
            }
        }
    }
    // Looked up in the raw table, not the id index: the check must not
    // depend on the index being complete.
    let mut by_council: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (_, (council, id)) in &valid {
        by_council.entry(council).or_default().push(id);
    }
    let mut stored: std::collections::HashSet<(String, String)> = Default::default();
    for (council, ids) in by_council {
        let found = store.raw_ids(kind, council, &ids).await?;
        stored.extend(found.into_iter().map(|id| (council.to_string(), id)));
    }
    // Not in the raw table but in the id index, once retention has dropped
    // raw months: stored, then dropped with its month.
    let mut dropped: std::collections::HashSet<(String, String)> = Default::default();
    if store.purged_through(kind.table()).await?.is_some() {
        let mut by_council: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (_, (council, id)) in valid.iter().filter(|(_, key)| !stored.contains(key)) {
            by_council.entry(council).or_default().push(id);
        }
        for (council, ids) in by_council {
            let found = store.existing_ids(kind, council, &ids).await?;
            dropped.extend(found.into_iter().map(|id| (council.to_string(), id)));
        }
    }
    for (offset, key) in valid {
        if stored.contains(&key) {
            report.repeats += 1;
        } else if dropped.contains(&key) {
            report.purged += 1;
        } else {
            report.missing += 1;
            if report.examples.len() < EXAMPLES {
                report.examples.push((
                    offset,
                    format!("{} {}: missing from ClickHouse", key.0, key.1),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_id_and_council_are_needed_to_key_a_message() {
        let contact =
            br#"{"schema_version":1,"event_id":"ev-1","council":"E07000041","channel":"web"}"#;
        assert_eq!(
            key(Record::Contact, contact),
            Some(("E07000041".into(), "ev-1".into()))
        );
        let escaped = br#"{"council":"E0700004\u0031","event_id":"ev-\u0032"}"#;
        assert_eq!(
            key(Record::Contact, escaped),
            Some(("E07000041".into(), "ev-2".into()))
        );
        assert_eq!(key(Record::Contact, b"not json"), None);
        assert_eq!(key(Record::Satisfaction, contact), None);
        let response = br#"{"response_id":"r-1","council":"E07000041"}"#;
        assert_eq!(
            key(Record::Satisfaction, response),
            Some(("E07000041".into(), "r-1".into()))
        );
    }

    #[test]
    fn fingerprints_separate_council_from_id() {
        assert_ne!(fingerprint("E1", "23"), fingerprint("E12", "3"));
        assert_eq!(fingerprint("E1", "23"), fingerprint("E1", "23"));
    }

    #[test]
    fn pending_messages_are_not_a_discrepancy_but_lost_ones_are() {
        let partition = PartitionReport {
            partition: 0,
            end: 10,
            messages: 10,
            stored: 8,
            pending: 2,
            rows: 8,
            ..PartitionReport::default()
        };
        let topic = TopicReport {
            topic: "t".into(),
            table: "contact_events",
            partitions: vec![partition.clone()],
            duplicated_ids: 0,
            duplicate_rows: 0,
            duplicate_examples: Vec::new(),
            raw_rows: 8,
            id_index_rows: 8,
            rollup_total: 8,
            unindexed_rows: 0,
            dead_letters_resent: 0,
            dead_letter_topic_found: true,
        };
        let report = Report {
            span: Span::FromBeginning,
            topics: vec![topic.clone()],
        };
        assert_eq!((report.exit_code(), report.is_exact()), (3, false));

        let lost = Report {
            span: Span::FromBeginning,
            topics: vec![TopicReport {
                partitions: vec![PartitionReport {
                    pending: 0,
                    missing: 2,
                    ..partition
                }],
                ..topic.clone()
            }],
        };
        assert_eq!(lost.exit_code(), 2);
        let short_rollup = Report {
            span: Span::FromBeginning,
            topics: vec![TopicReport {
                rollup_total: 7,
                ..topic.clone()
            }],
        };
        assert_eq!(short_rollup.discrepancies(), 1);
        assert!(short_rollup.to_string().contains("DISCREPANCIES"));
        // An index behind the raw rows is in flight until a settled row lacks it.
        let indexing = Report {
            span: Span::FromBeginning,
            topics: vec![TopicReport {
                raw_rows: 9,
                ..topic.clone()
            }],
        };
        assert_eq!(
            indexing.discrepancies(),
            1,
            "the rollup's 8 against 9 raw rows"
        );
        let unindexed = Report {
            span: Span::FromBeginning,
            topics: vec![TopicReport {
                unindexed_rows: 2,
                ..topic
            }],
        };
        assert_eq!(unindexed.discrepancies(), 2);
    }

    #[test]
    fn a_scheduled_run_leaves_duplicates_and_discrepancies_for_prometheus() {
        let topic = TopicReport {
            topic: "contact-events".into(),
            table: "contact_events",
            partitions: Vec::new(),
            duplicated_ids: 3,
            duplicate_rows: 4,
            duplicate_examples: Vec::new(),
            raw_rows: 12,
            id_index_rows: 8,
            rollup_total: 12,
            unindexed_rows: 4,
            dead_letters_resent: 0,
            dead_letter_topic_found: true,
        };
        let report = Report {
            span: Span::Recent,
            topics: vec![topic],
        };
        let text = report.prometheus_text(1_800_000_000);
        let labels = r#"{topic="contact-events",table="contact_events"}"#;
        assert!(text.contains(&format!("{RECONCILE_DUPLICATE_ROWS}{labels} 4\n")));
        assert!(text.contains(&format!("{RECONCILE_DISCREPANCIES}{labels} 8\n")));
        assert!(text.contains(&format!("{RECONCILE_PENDING}{labels} 0\n")));
        assert!(text.ends_with(&format!("{RECONCILE_LAST_RUN} 1800000000\n")));
        assert_eq!(text.matches("# TYPE").count(), 4);
    }
}
