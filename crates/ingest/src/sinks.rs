//! Where a batch goes: its rows to ClickHouse, after the duplicate lookup
//! (`RowSink`), and its rejected messages to the dead-letter topics, byte for
//! byte with the reason in headers (`DeadLetterSink`). The checkpoint is the
//! store's (`Store::save_checkpoints`). Each sink only moves data; the order
//! of the steps and their retries are the pipeline's.

use crate::batch::DeadLetter;
use crate::config::KafkaConfig;
use crate::consumer::TopicPartition;
use crate::metrics::IngestMetrics;
use anyhow::Result;
use channelshift_store::{
    ContactRow, Fencing, KafkaPosition, RawRow, Record, SatisfactionRow, Staged, Store, StoreError,
};
use chrono::Utc;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Rows into the raw tables, each unique id once, each only while this
/// replica holds its partition.
pub struct RowSink {
    /// Tagged for the attempt (see `Store::tagged`); untagged for a
    /// look-ahead, which stores nothing visible.
    pub store: Store,
    pub metrics: IngestMetrics,
    pub contact_topic: String,
    pub satisfaction_topic: String,
    pub fencing: Fencing,
    /// Set once a lookup has asked the raw table (a suspect batch, or rows
    /// the server refused): rows may have been found there and re-indexed.
    pub asked_raw: AtomicBool,
}

/// The fence this replica holds on each partition, per topic.
#[derive(Debug, Default)]
pub struct Fences {
    pub contacts: HashMap<i32, u64>,
    pub satisfaction: HashMap<i32, u64>,
}

impl Fences {
    /// The fences by (topic, partition), the contacts' under `contact_topic`.
    pub fn by_partition(
        &self,
        contact_topic: &str,
        satisfaction_topic: &str,
    ) -> BTreeMap<TopicPartition, u64> {
        let of = |topic: &str, fences: &HashMap<i32, u64>| {
            fences
                .iter()
                .map(|(partition, fence)| ((topic.to_string(), *partition), *fence))
                .collect::<Vec<_>>()
        };
        of(contact_topic, &self.contacts)
            .into_iter()
            .chain(of(satisfaction_topic, &self.satisfaction))
            .collect()
    }
}

/// A row ClickHouse refuses for good: dead-lettered instead of stored.
#[derive(Debug)]
pub struct Refused {
    pub record: Record,
    pub position: KafkaPosition,
    /// The server's error, for the dead letter's detail header.
    pub error: String,
}

impl RowSink {
    /// One attempt at writing the batch's rows, then their ids to the id
    /// index. The stored ids are looked up on every attempt: an attempt that
    /// failed on our side may still have been written on the server's. The
    /// index is written only once the INSERTs (rows and every view) have
    /// succeeded, so an indexed id is a completely stored one, whatever order
    /// the server runs its views in.
    ///
    /// A permanent error (see `StoreError::is_permanent`) does not hold the
    /// batch: the rows are written in halves, and halves of those, until the
    /// rows at fault stand alone; they are left out of `contacts` and
    /// `satisfaction` and returned, for the dead-letter topic. A temporary
    /// error fails the attempt, to be retried.
    ///
    /// `ahead` is the batch's lookup and stage, made while the batch before
    /// it is written (see [`Self::look_ahead`]), when it still holds: the
    /// caller checks that the batch, its fences and the ids stored since are
    /// as the look-ahead assumes.
    pub async fn write(
        &self,
        contacts: &mut Vec<ContactRow>,
        satisfaction: &mut Vec<SatisfactionRow>,
        suspect: bool,
        fences: &Fences,
        ahead: Option<LookedAhead>,
    ) -> Result<Vec<Refused>> {
        // Stamped at each attempt, not at receipt: a row stamped at t is
        // stored by t + the attempt timeout or restamped later, which is what lets
        // a report "as of" an instant settled that long ago be reproduced.
        // (A stage written ahead is stamped again by its move.)
        let now = now();
        let (contacts_ahead, satisfaction_ahead) = match ahead {
            Some(ahead) => (ahead.contacts, ahead.satisfaction),
            None => (None, None),
        };
        let mut refused = match self
            .store_rows(contacts, suspect, now, &fences.contacts, contacts_ahead)
            .await
        {
            Ok(refused) => refused,
            Err(error) => {
                let unused = LookedAhead {
                    contacts: None,
                    satisfaction: satisfaction_ahead,
                };
                self.discard(unused).await;
                return Err(error);
            }
        };
        refused.extend(
            self.store_rows(
                satisfaction,
                suspect,
                now,
                &fences.satisfaction,
                satisfaction_ahead,
            )
            .await?,
        );
        Ok(refused)
    }

    /// Looks up and stages a batch's rows while the batch before it is
    /// written, so that its own write attempt only moves them. Repeats
    /// within the batch are dropped first. The lookup is the id index's
    /// alone: the caller asks only for a batch no row of which can be stored
    /// without its index, and uses the result only if nothing that could
    /// have stored one of its ids since, other than the batch written
    /// meanwhile (whose stored ids [`LookedAhead::stored_meanwhile`] adds),
    /// has happened. On an error nothing is kept: the write looks up again.
    pub async fn look_ahead(
        &self,
        contacts: &mut Vec<ContactRow>,
        satisfaction: &mut Vec<SatisfactionRow>,
        fences: &Fences,
    ) -> Result<LookedAhead> {
        let now = now();
        let mut looked = LookedAhead {
            contacts: self.stage_ahead(contacts, now, &fences.contacts).await?,
            satisfaction: None,
        };
        match self
            .stage_ahead(satisfaction, now, &fences.satisfaction)
            .await
        {
            Ok(satisfaction) => {
                looked.satisfaction = satisfaction;
                Ok(looked)
            }
            Err(error) => {
                self.discard(looked).await;
                Err(error)
            }
        }
    }

    /// Drops a look-ahead that no longer holds: its stages are discarded.
    pub async fn discard(&self, ahead: LookedAhead) {
        for rows in [ahead.contacts, ahead.satisfaction].into_iter().flatten() {
            self.store.unstage(rows.staged).await;
        }
    }

    /// One kind of rows of [`Self::look_ahead`]: `None` when there are none.
    async fn stage_ahead<R: Identified>(
        &self,
        rows: &mut Vec<R>,
        now: u32,
        fences: &HashMap<i32, u64>,
    ) -> Result<Option<StagedAhead>> {
        self.drop_repeats(rows);
        if rows.is_empty() {
            return Ok(None);
        }
        stamp(rows, now, fences);
        let (stored, staged) = self.look_up_and_stage(rows, false, fences).await?;
        Ok(Some(StagedAhead {
            stored,
            staged: staged?,
        }))
    }

    /// Looks `rows`' ids up (see [`Self::stored`], recording the lookup's
    /// time) while staging them under a new stage. A failed lookup fails
    /// the whole (its stage is dropped); otherwise returns the ids found and
    /// the staging's outcome. A failed staging leaves what part of the stage
    /// was written to be dropped as stale (nothing reads it).
    async fn look_up_and_stage<R: Identified>(
        &self,
        rows: &mut [R],
        suspect: bool,
        fences: &HashMap<i32, u64>,
    ) -> Result<(HashSet<(String, String)>, Result<Staged, StoreError>)> {
        let staged = Staged::assign(rows);
        let rows = &*rows;
        let lookup = async {
            let started = Instant::now();
            let stored = self.stored(rows, suspect, fences).await;
            self.metrics.step("lookup", started);
            stored
        };
        let (stored, staging) = tokio::join!(lookup, self.store.stage(&staged, rows));
        match (stored, staging) {
            (Ok(stored), staging) => Ok((stored, staging.map(|()| staged))),
            (Err(error), staging) => {
                if staging.is_ok() {
                    self.store.unstage(staged).await;
                }
                Err(error)
            }
        }
    }

    /// Stores `rows` not yet stored; leaves in `rows` those it stored.
    ///
    /// The rows are staged while their ids are looked up: nothing reads the
    /// staging table, so the lookup still comes before the rows can reach the
    /// raw table (the move), and the server's staging work overlaps it. When
    /// the lookup finds ids already stored (a redelivery), that stage is
    /// dropped and the rows left are staged again. With `ahead`, both were
    /// done before this attempt (see [`Self::look_ahead`]).
    async fn store_rows<R: Identified>(
        &self,
        rows: &mut Vec<R>,
        suspect: bool,
        now: u32,
        fences: &HashMap<i32, u64>,
        ahead: Option<StagedAhead>,
    ) -> Result<Vec<Refused>> {
        if ahead.is_none() {
            self.drop_repeats(rows);
        }
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        stamp(rows, now, fences);
        let started = Instant::now();
        let inserted = match ahead {
            Some(ahead) => {
                self.move_unless_found(rows, ahead.stored, ahead.staged)
                    .await
            }
            None => match self.look_up_and_stage(rows, suspect, fences).await? {
                (stored, Ok(staged)) => self.move_unless_found(rows, stored, staged).await,
                (stored, Err(error)) => {
                    self.drop_found(rows, &stored);
                    Err(error)
                }
            },
        };
        self.metrics.step("insert", started);
        match inserted {
            Ok(()) => Ok(Vec::new()),
            Err(error) if error.is_permanent() => {
                tracing::warn!(
                    error = %error,
                    rows = rows.len(),
                    "ClickHouse refuses rows of the batch for good: finding which"
                );
                self.store_around_refused(rows, fences).await
            }
            Err(error) => Err(error.into()),
        }
    }

    /// After a permanent error: the rows in halves, each half stored or halved
    /// again, until the refused rows stand alone. Before each try the stored
    /// ids are looked up in the raw table too, as a refused INSERT may have
    /// stored rows before a view refused them.
    async fn store_around_refused<R: Identified>(
        &self,
        rows: &mut Vec<R>,
        fences: &HashMap<i32, u64>,
    ) -> Result<Vec<Refused>> {
        let mut pending = vec![std::mem::take(rows)];
        let mut refused: Vec<(R, String)> = Vec::new();
        while let Some(mut part) = pending.pop() {
            self.drop_stored(&mut part, true, fences).await?;
            if part.is_empty() {
                continue;
            }
            match self.insert_and_index(&mut part).await {
                Ok(()) => rows.append(&mut part),
                Err(error) if error.is_permanent() && part.len() == 1 => {
                    refused.extend(part.into_iter().map(|row| (row, error.to_string())));
                }
                Err(error) if error.is_permanent() => {
                    let half = part.split_off(part.len() / 2);
                    pending.push(half);
                    pending.push(part);
                }
                Err(error) => return Err(error.into()),
            }
        }
        // A view may have refused a row the table had taken: it is stored
        // (and re-indexed here), not dead-lettered.
        let mut at_fault: Vec<R> = refused.iter().map(|(row, _)| row.clone()).collect();
        self.drop_stored(&mut at_fault, true, fences).await?;
        let at_fault: HashSet<(String, String)> = at_fault
            .iter()
            .map(|row| (row.council().to_string(), row.id().to_string()))
            .collect();
        let refused: Vec<Refused> = refused
            .into_iter()
            .filter(|(row, _)| {
                at_fault.contains(&(row.council().to_string(), row.id().to_string()))
            })
            .map(|(row, error)| Refused {
                record: R::RECORD,
                position: row.position(),
                error,
            })
            .collect();
        tracing::warn!(
            refused = refused.len(),
            stored = rows.len(),
            "rows ClickHouse refuses for good go to the dead-letter topic as store_refused"
        );
        Ok(refused)
    }

    /// Moves the staged rows, or, when some of their ids are `stored`
    /// already, drops that stage and stores the others afresh.
    async fn move_unless_found<R: Identified>(
        &self,
        rows: &mut Vec<R>,
        stored: HashSet<(String, String)>,
        staged: Staged,
    ) -> Result<(), StoreError> {
        if stored.is_empty() {
            return self.move_and_count(staged, rows).await;
        }
        self.store.unstage(staged).await;
        self.drop_found(rows, &stored);
        self.insert_and_index(rows).await
    }

    /// One staged INSERT of the rows, then the ids (see `Store::insert_rows`).
    async fn insert_and_index<R: Identified>(&self, rows: &mut [R]) -> Result<(), StoreError> {
        let inserts = self.store.insert_rows(rows, self.fencing).await?;
        self.count_inserts::<R>(inserts);
        Ok(())
    }

    /// Moves staged rows to the raw table and their ids to the index (see
    /// `Store::move_staged`).
    async fn move_and_count<R: Identified>(
        &self,
        staged: Staged,
        rows: &[R],
    ) -> Result<(), StoreError> {
        let inserts = self.store.move_staged(staged, rows, self.fencing).await?;
        self.count_inserts::<R>(inserts);
        Ok(())
    }

    /// Counts the INSERTs into `R`'s raw table that one write took.
    fn count_inserts<R: Identified>(&self, inserts: usize) {
        self.metrics
            .inserts
            .with_label_values(&[R::RECORD.table()])
            .inc_by(inserts as u64);
        if inserts > 1 {
            tracing::info!(
                inserts,
                table = R::RECORD.table(),
                partition_limit = self.store.partition_limit(),
                "the rows span more months than one INSERT may touch: written in parts"
            );
        }
    }

    /// Removes rows whose id is repeated within the batch (the first stays),
    /// counting them as duplicates.
    fn drop_repeats<R: Identified>(&self, rows: &mut Vec<R>) {
        let before = rows.len();
        let mut seen: HashSet<(&str, &str)> = HashSet::with_capacity(rows.len());
        let keep: Vec<bool> = rows
            .iter()
            .map(|row| seen.insert((row.council(), row.id())))
            .collect();
        let mut keep = keep.into_iter();
        rows.retain(|_| keep.next().unwrap_or(true));
        self.count_skipped::<R>(before - rows.len());
    }

    /// Removes rows whose (council, id) is in `found`, counting them.
    fn drop_found<R: Identified>(&self, rows: &mut Vec<R>, found: &HashSet<(String, String)>) {
        let before = rows.len();
        rows.retain(|row| !found.contains(&(row.council().to_string(), row.id().to_string())));
        self.count_skipped::<R>(before - rows.len());
    }

    fn count_skipped<R: Identified>(&self, skipped: usize) {
        if skipped == 0 {
            return;
        }
        let topic = self.topic::<R>();
        self.metrics
            .duplicates
            .with_label_values(&[topic])
            .inc_by(skipped as u64);
        tracing::info!(skipped, topic, "skipped events already stored");
    }

    fn topic<R: Identified>(&self) -> &str {
        match R::RECORD {
            Record::Satisfaction => &self.satisfaction_topic,
            Record::Contact => &self.contact_topic,
        }
    }

    /// Removes rows whose id is already stored or repeated within the batch
    /// (see [`Self::stored`]).
    async fn drop_stored<R: Identified>(
        &self,
        rows: &mut Vec<R>,
        suspect: bool,
        fences: &HashMap<i32, u64>,
    ) -> Result<()> {
        self.drop_repeats(rows);
        let stored = self.stored(rows, suspect, fences).await?;
        self.drop_found(rows, &stored);
        Ok(())
    }

    /// The (council, id) of `rows` already stored, by the id index.
    /// When `suspect`, ids missing from the id index are looked for in the raw
    /// table as well: rows found there were stored by an INSERT that failed
    /// or was cut short (some of its views may not have run), or by a replica
    /// that stopped before writing their index. They are not written again;
    /// their index rows are added, and the rollups may miss them until
    /// `rebuild-rollups` (`reconcile` shows raw rows ≠ rollup if they do).
    /// The index rows are added only while this replica holds the fence of
    /// their messages' partition (`fences`): otherwise the rows may be the new
    /// owner's, stored a moment ago, whose index it is about to write itself.
    async fn stored<R: Identified>(
        &self,
        rows: &[R],
        suspect: bool,
        fences: &HashMap<i32, u64>,
    ) -> Result<HashSet<(String, String)>> {
        if rows.is_empty() {
            return Ok(HashSet::new());
        }
        let topic = self.topic::<R>();
        let mut by_council: HashMap<&str, Vec<&str>> = HashMap::new();
        for row in rows.iter() {
            by_council.entry(row.council()).or_default().push(row.id());
        }
        if suspect {
            self.asked_raw.store(true, Ordering::Relaxed);
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
                    let mut by_partition: HashMap<i32, Vec<&str>> = HashMap::new();
                    for row in rows.iter() {
                        if row.council() == council && raw.contains(row.id()) {
                            let ids = by_partition.entry(row.position().partition).or_default();
                            if !ids.contains(&row.id()) {
                                ids.push(row.id());
                            }
                        }
                    }
                    for (partition, ids) in by_partition {
                        let fence = match self.fencing {
                            // 0 when not claimed: never the current fence.
                            Fencing::On => {
                                Some((partition, fences.get(&partition).copied().unwrap_or(0)))
                            }
                            Fencing::Off => None,
                        };
                        self.store
                            .reindex_raw_ids(R::RECORD, council, &ids, (from, to), fence)
                            .await?;
                    }
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
                "rows stored without their id index (an insert that failed or was cut short, \
                 whose views may not all have run, or a replica stopped before the index): \
                 not written again, re-indexed; run `channelshift-ingest rebuild-rollups` so \
                 that the rollups are sure to count them"
            );
        }
        Ok(stored)
    }
}

/// A batch's rows looked up and staged while the batch before it is
/// written (see [`RowSink::look_ahead`]).
#[derive(Debug, Default)]
pub struct LookedAhead {
    contacts: Option<StagedAhead>,
    satisfaction: Option<StagedAhead>,
}

/// One kind of rows of a [`LookedAhead`]: their stage, and which of their
/// ids the lookup found stored.
#[derive(Debug)]
struct StagedAhead {
    stored: HashSet<(String, String)>,
    staged: Staged,
}

impl LookedAhead {
    /// Adds to what the lookup found the ids of `pending` (the rows looked
    /// up) that the batch written meanwhile has stored (`written`: the rows
    /// it left after its write), so they are not stored twice.
    pub fn stored_meanwhile(
        &mut self,
        (written_contacts, written_satisfaction): (&[ContactRow], &[SatisfactionRow]),
        (pending_contacts, pending_satisfaction): (&[ContactRow], &[SatisfactionRow]),
    ) {
        if let Some(ahead) = &mut self.contacts {
            ahead.add_stored(written_contacts, pending_contacts);
        }
        if let Some(ahead) = &mut self.satisfaction {
            ahead.add_stored(written_satisfaction, pending_satisfaction);
        }
    }
}

impl StagedAhead {
    fn add_stored<R: Identified>(&mut self, written: &[R], pending: &[R]) {
        let pending: HashSet<(&str, &str)> = pending
            .iter()
            .map(|row| (row.council(), row.id()))
            .collect();
        self.stored.extend(
            written
                .iter()
                .filter(|row| pending.contains(&(row.council(), row.id())))
                .map(|row| (row.council().to_string(), row.id().to_string())),
        );
    }
}

/// Now, in Unix seconds: a write attempt's stamp.
fn now() -> u32 {
    u32::try_from(Utc::now().timestamp()).unwrap_or(u32::MAX)
}

/// Stamps each row with `now` and the fence held on its partition.
fn stamp<R: Identified>(rows: &mut [R], now: u32, fences: &HashMap<i32, u64>) {
    for row in rows.iter_mut() {
        // No fence (fencing off, or a partition not claimed): 0, which the
        // server's check never takes as current.
        let fence = fences.get(&row.position().partition).copied().unwrap_or(0);
        row.stamp(now, fence);
    }
}

/// Rejected messages onto `<topic>.dlq`.
pub struct DeadLetterSink {
    pub producer: FutureProducer,
}

impl DeadLetterSink {
    /// Sends the dead letters concurrently; the ones acknowledged are removed,
    /// so a retry sends only what is left.
    pub async fn send_all(&self, letters: &mut Vec<DeadLetter>) -> Result<()> {
        if letters.is_empty() {
            return Ok(());
        }
        let results =
            futures::future::join_all(letters.iter().map(|letter| self.send(letter))).await;
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

    async fn send(&self, letter: &DeadLetter) -> Result<()> {
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
}

/// A raw row that carries its council, idempotency key and Kafka position.
trait Identified: RawRow + Clone {
    fn council(&self) -> &str;
    fn id(&self) -> &str;
    fn position(&self) -> KafkaPosition;
    /// Sets when the row is stored, and the fence it is stored under.
    fn stamp(&mut self, now: u32, fence: u64);
}

/// `Identified` for a raw row type, by its id field.
macro_rules! identified {
    ($row:ty, $id:ident) => {
        impl Identified for $row {
            fn council(&self) -> &str {
                &self.council
            }
            fn id(&self) -> &str {
                &self.$id
            }
            fn position(&self) -> KafkaPosition {
                KafkaPosition {
                    partition: self.kafka_partition,
                    offset: self.kafka_offset,
                }
            }
            fn stamp(&mut self, now: u32, fence: u64) {
                self.ingested_at = now;
                self.fence = fence;
            }
        }
    };
}

identified!(ContactRow, event_id);
identified!(SatisfactionRow, response_id);

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(council: &str, id: &str) -> ContactRow {
        ContactRow {
            council: council.to_string(),
            event_id: id.to_string(),
            occurred_at: 0,
            channel: "web_form",
            assisted: 0,
            service: String::new(),
            interaction: "",
            outcome: "",
            customer_type: "",
            customer_hash: String::new(),
            journey_id: String::new(),
            avoidable: None,
            first_contact_resolved: None,
            ward: String::new(),
            lsoa: String::new(),
            wait_seconds: None,
            handling_seconds: None,
            source: String::new(),
            kafka_partition: 0,
            kafka_offset: 0,
            ingested_at: 0,
            fence: 0,
            stage: 0,
        }
    }

    #[test]
    fn ids_the_batch_before_stored_count_as_found_by_the_look_ahead() {
        let mut pending = vec![
            contact("E07000041", "a"),
            contact("E07000041", "b"),
            contact("E07000042", "c"),
        ];
        let staged = Staged::assign(&mut pending);
        let mut looked = LookedAhead {
            contacts: Some(StagedAhead {
                stored: [("E07000041".to_string(), "a".to_string())].into(),
                staged,
            }),
            satisfaction: None,
        };
        // "b" stored meanwhile; "c" of another council; "z" not pending.
        let written = vec![
            contact("E07000041", "b"),
            contact("E07000041", "c"),
            contact("E07000041", "z"),
        ];
        looked.stored_meanwhile((&written, &[]), (&pending, &[]));
        let stored = looked.contacts.expect("contacts looked up").stored;
        let expected: HashSet<(String, String)> = [("E07000041", "a"), ("E07000041", "b")]
            .into_iter()
            .map(|(council, id)| (council.to_string(), id.to_string()))
            .collect();
        assert_eq!(stored, expected);
    }
}
