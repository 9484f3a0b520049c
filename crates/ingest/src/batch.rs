//! The open batch as a state machine over plain data: what it holds (rows,
//! dead letters, the highest offset read per partition), when it is full,
//! what a revoked partition takes out of it, how far its writing has got, and
//! the checkpoints it leaves. No Kafka or ClickHouse here: the pipeline moves
//! data in and out.

use crate::consumer::TopicPartition;
use crate::decode::Decoded;
use crate::sinks::LookedAhead;
use channelshift_contract::Rejection;
use channelshift_store::{Checkpoint, ContactRow, KafkaPosition, SatisfactionRow};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A message that failed validation, kept with its original bytes.
#[derive(Debug)]
pub struct DeadLetter {
    pub source_topic: String,
    pub position: KafkaPosition,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub rejection: Rejection,
}

/// What one batch will write and commit.
#[derive(Debug, Default)]
pub struct Batch {
    pub contacts: Vec<ContactRow>,
    pub satisfaction: Vec<SatisfactionRow>,
    pub dead_letters: Vec<DeadLetter>,
    /// Highest offset read per (topic, partition): what the batch will commit.
    pub offsets: BTreeMap<TopicPartition, i64>,
    pub messages: usize,
    pub bytes: usize,
    /// Set once the rows are in ClickHouse, so a retry of a later step does not
    /// look them up again.
    pub rows_written: bool,
    /// Rows of this batch may be stored without their id index (an attempt
    /// failed, or the partition's previous owner stopped past its
    /// checkpoint): the raw table is asked too, not only the id index.
    pub suspect: bool,
    /// An attempt failed before the rows were known stored.
    pub failed: bool,
    /// Lowest offset read per (topic, partition), to judge the batch
    /// suspect again when a partition's bound is known better
    /// ([`Batch::judge_suspect`]).
    pub lowest: BTreeMap<TopicPartition, i64>,
    /// When its first message was received: the batch closes
    /// `batch.max_wait_ms` after it.
    pub opened: Option<Instant>,
    /// The fence each partition's rows were last written under: the server
    /// stored them only while it was still the partition's highest.
    pub written_under: BTreeMap<TopicPartition, u64>,
    /// Its rows looked up and staged while the batch before it is written.
    pub ahead: Option<Ahead>,
    /// Its write asked the raw table for ids (and may have re-indexed rows
    /// found there): a look-ahead of the next batch may have missed them.
    pub asked_raw: bool,
}

/// What [`Batch::take_ahead`] found.
pub enum TakenAhead {
    None,
    /// To be used by the write.
    Holds(LookedAhead),
    /// To be discarded; the write looks up afresh.
    Stale(LookedAhead),
}

/// A [`LookedAhead`] with what it was done for: it holds only while the
/// batch and the fences are unchanged.
#[derive(Debug)]
pub struct Ahead {
    looked: LookedAhead,
    offsets: BTreeMap<TopicPartition, i64>,
    rows: (usize, usize),
    fences: BTreeMap<TopicPartition, u64>,
    /// When it was taken: a stage older than an attempt may be dropped as
    /// stale before it is moved, so an older look-ahead is not used.
    at: Instant,
    /// The batch written meanwhile gives a reason not to trust it.
    spoiled: bool,
}

/// Where a message came from and what it became.
pub struct Received<'a> {
    pub topic: &'a str,
    pub position: KafkaPosition,
    pub key: Option<&'a [u8]>,
    pub payload: &'a [u8],
    pub decoded: Decoded,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// At `max_rows` messages or `max_bytes` of payload, whichever comes first.
    pub fn is_full(&self, max_rows: usize, max_bytes: usize) -> bool {
        self.messages >= max_rows || self.bytes >= max_bytes
    }

    /// Takes a message in. `unsettled` says whether the previous owner of a
    /// partition may have stored the message at an offset past its checkpoint.
    pub fn add(
        &mut self,
        message: Received<'_>,
        unsettled: impl FnOnce(&TopicPartition, i64) -> bool,
    ) {
        // A message that arrives while a failed write is retried (a partition
        // assigned meanwhile) must be written too: the next attempt writes the
        // rows again, and the id lookup skips those already stored.
        self.rows_written = false;
        self.messages += 1;
        self.bytes += message.payload.len();
        self.opened.get_or_insert_with(Instant::now);
        let position = message.position;
        let key = (message.topic.to_string(), position.partition);
        if unsettled(&key, position.offset) {
            self.suspect = true;
        }
        let lowest = self.lowest.entry(key.clone()).or_insert(position.offset);
        *lowest = (*lowest).min(position.offset);
        let highest = self.offsets.entry(key).or_insert(position.offset);
        *highest = (*highest).max(position.offset);
        match message.decoded {
            Decoded::Contact(row) => self.contacts.push(row),
            Decoded::Satisfaction(row) => self.satisfaction.push(row),
            Decoded::Rejected(rejection) => self.dead_letters.push(DeadLetter {
                source_topic: message.topic.to_string(),
                position,
                key: message.key.map(<[u8]>::to_vec),
                payload: message.payload.to_vec(),
                rejection,
            }),
        }
    }

    /// Drops what the batch holds of a partition taken from this replica
    /// (its new owner reads it again from the checkpoint). `contact_topic`
    /// and `satisfaction_topic` say which rows come from `topic`. Returns the
    /// messages released, or `None` when the batch held nothing of it.
    pub fn release(
        &mut self,
        topic: &str,
        partition: i32,
        contact_topic: &str,
        satisfaction_topic: &str,
    ) -> Option<usize> {
        self.offsets.remove(&(topic.to_string(), partition))?;
        self.lowest.remove(&(topic.to_string(), partition));
        let held = |batch: &Batch| {
            batch.contacts.len() + batch.satisfaction.len() + batch.dead_letters.len()
        };
        let before = held(self);
        if topic == contact_topic {
            self.contacts.retain(|row| row.kafka_partition != partition);
        }
        if topic == satisfaction_topic {
            self.satisfaction
                .retain(|row| row.kafka_partition != partition);
        }
        self.dead_letters.retain(|letter| {
            !(letter.source_topic == topic && letter.position.partition == partition)
        });
        let released = before - held(self);
        self.messages = self.messages.saturating_sub(released);
        if self.is_empty() {
            self.opened = None;
        }
        Some(released)
    }

    /// An attempt failed: if the rows were not known to be stored, the
    /// server may have stored them and stopped before their views, so the
    /// next attempt asks the raw table too.
    pub fn attempt_failed(&mut self) {
        self.failed |= !self.rows_written;
        self.suspect |= self.failed;
    }

    /// Judges the batch suspect again under the bounds known now (after a
    /// claim has bounded a partition by what is stored of it): an attempt
    /// failed, or a partition's first message is below its bound.
    pub fn judge_suspect(&mut self, unsettled: impl Fn(&TopicPartition, i64) -> bool) {
        self.suspect = self.suspect_under(unsettled);
    }

    /// Whether [`Self::judge_suspect`] would judge the batch suspect.
    pub fn suspect_under(&self, unsettled: impl Fn(&TopicPartition, i64) -> bool) -> bool {
        self.failed
            || self
                .lowest
                .iter()
                .any(|(partition, offset)| unsettled(partition, *offset))
    }

    /// Keeps `looked`, the batch's rows looked up and staged ahead under
    /// `fences`, with what the batch holds now.
    pub fn looked_ahead(&mut self, looked: LookedAhead, fences: BTreeMap<TopicPartition, u64>) {
        self.ahead = Some(Ahead {
            looked,
            offsets: self.offsets.clone(),
            rows: (self.contacts.len(), self.satisfaction.len()),
            fences,
            at: Instant::now(),
            spoiled: false,
        });
    }

    /// The batch written before this one failed an attempt: the look-ahead
    /// no longer holds.
    pub fn spoil_ahead(&mut self) {
        if let Some(ahead) = &mut self.ahead {
            ahead.spoiled = true;
        }
    }

    /// The batch written before this one has been written; `written` holds
    /// the rows it stored. If it may have stored rows the look-ahead cannot
    /// know of (it asked the raw table, which may have re-indexed rows), the
    /// look-ahead no longer holds; otherwise the ids it stored are added to
    /// those the look-ahead found.
    pub fn written_before(&mut self, written: &Batch) {
        let Some(ahead) = &mut self.ahead else {
            return;
        };
        if written.asked_raw {
            ahead.spoiled = true;
            return;
        }
        ahead.looked.stored_meanwhile(
            (&written.contacts, &written.satisfaction),
            (&self.contacts, &self.satisfaction),
        );
    }

    /// Takes the look-ahead, judged against the batch as it is now, to be
    /// written under `fences`: it holds if it is younger than `max_age`, no
    /// attempt failed, nothing is suspect, no message was added or released,
    /// and the fences are the same.
    pub fn take_ahead(
        &mut self,
        fences: &BTreeMap<TopicPartition, u64>,
        max_age: Duration,
    ) -> TakenAhead {
        let Some(ahead) = self.ahead.take() else {
            return TakenAhead::None;
        };
        let holds = !ahead.spoiled
            && ahead.at.elapsed() < max_age
            && !self.failed
            && !self.suspect
            && !self.rows_written
            && ahead.offsets == self.offsets
            && ahead.rows == (self.contacts.len(), self.satisfaction.len())
            && &ahead.fences == fences;
        if holds {
            TakenAhead::Holds(ahead.looked)
        } else {
            TakenAhead::Stale(ahead.looked)
        }
    }

    /// Takes the look-ahead, to be discarded.
    pub fn drop_ahead(&mut self) -> Option<LookedAhead> {
        self.ahead.take().map(|ahead| ahead.looked)
    }

    /// The next offset of each partition read: where a restart resumes.
    pub fn checkpoints(&self) -> Vec<Checkpoint> {
        self.offsets
            .iter()
            .map(|((topic, partition), offset)| Checkpoint {
                topic: topic.clone(),
                partition: *partition,
                next_offset: offset + 1,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use channelshift_contract::RejectionReason;

    const CONTACTS: &str = "contact-events";
    const RESPONSES: &str = "satisfaction-responses";

    fn rejected(topic: &str, partition: i32, offset: i64) -> Received<'_> {
        Received {
            topic,
            position: KafkaPosition { partition, offset },
            key: Some(b"k"),
            payload: b"not json",
            decoded: Decoded::Rejected(Rejection::new(
                RejectionReason::InvalidJson,
                None,
                "not JSON",
            )),
        }
    }

    fn settled(_: &TopicPartition, _: i64) -> bool {
        false
    }

    #[test]
    fn the_batch_commits_the_highest_offset_read_per_partition() {
        let mut batch = Batch::default();
        for offset in [7, 5, 9] {
            batch.add(rejected(CONTACTS, 0, offset), settled);
        }
        batch.add(rejected(CONTACTS, 1, 3), settled);
        let next: Vec<(i32, i64)> = batch
            .checkpoints()
            .iter()
            .map(|checkpoint| (checkpoint.partition, checkpoint.next_offset))
            .collect();
        assert_eq!(next, [(0, 10), (1, 4)]);
        assert_eq!(batch.messages, 4);
        assert_eq!(batch.bytes, 4 * b"not json".len());
        assert!(batch.is_full(4, usize::MAX) && !batch.is_full(5, usize::MAX));
    }

    #[test]
    fn a_revoked_partition_leaves_the_batch_and_only_it() {
        let mut batch = Batch::default();
        batch.add(rejected(CONTACTS, 0, 1), settled);
        batch.add(rejected(CONTACTS, 1, 1), settled);
        batch.add(rejected(RESPONSES, 0, 1), settled);
        assert_eq!(batch.release(CONTACTS, 0, CONTACTS, RESPONSES), Some(1));
        assert_eq!(batch.release(CONTACTS, 0, CONTACTS, RESPONSES), None);
        assert_eq!(batch.messages, 2);
        let left: Vec<(&str, i32)> = batch
            .dead_letters
            .iter()
            .map(|letter| (letter.source_topic.as_str(), letter.position.partition))
            .collect();
        assert_eq!(left, [(CONTACTS, 1), (RESPONSES, 0)]);
        assert_eq!(batch.offsets.len(), 2);
    }

    #[test]
    fn the_batch_is_open_from_its_first_message_until_it_is_emptied() {
        let mut batch = Batch::default();
        assert_eq!(batch.opened, None);
        batch.add(rejected(CONTACTS, 0, 1), settled);
        let opened = batch.opened.expect("opened by its first message");
        batch.add(rejected(CONTACTS, 1, 1), settled);
        assert_eq!(batch.opened, Some(opened), "a later message keeps the time");
        batch.release(CONTACTS, 0, CONTACTS, RESPONSES);
        assert_eq!(batch.opened, Some(opened), "a message is still held");
        batch.release(CONTACTS, 1, CONTACTS, RESPONSES);
        assert_eq!(batch.opened, None, "empty: the next message opens it anew");
    }

    #[test]
    fn an_unsettled_partition_or_a_failed_attempt_makes_the_batch_suspect() {
        let mut batch = Batch::default();
        batch.add(rejected(CONTACTS, 0, 1), settled);
        assert!(!batch.suspect);
        batch.add(rejected(CONTACTS, 1, 1), |_, offset| offset < 5);
        assert!(
            batch.suspect,
            "below the partition's end at assignment: maybe stored without its index"
        );
        let mut later = Batch::default();
        later.add(rejected(CONTACTS, 1, 5), |_, offset| offset < 5);
        assert!(
            !later.suspect,
            "past the end at assignment: read here first"
        );

        let mut written = Batch::default();
        written.add(rejected(CONTACTS, 0, 1), settled);
        written.rows_written = true;
        written.attempt_failed();
        assert!(
            !written.suspect,
            "the rows were stored: a later step failed"
        );
        written.add(rejected(CONTACTS, 0, 2), settled);
        assert!(!written.rows_written, "a new message is written again");
        written.attempt_failed();
        assert!(written.suspect);
        written.judge_suspect(|_, _| false);
        assert!(written.suspect, "a failed attempt stays suspect");
    }

    #[test]
    fn a_batch_is_judged_again_by_its_lowest_offsets() {
        let mut batch = Batch::default();
        batch.add(rejected(CONTACTS, 1, 7), |_, offset| offset < 100);
        batch.add(rejected(CONTACTS, 1, 3), |_, offset| offset < 100);
        batch.add(rejected(CONTACTS, 2, 50), |_, offset| offset < 100);
        assert!(batch.suspect);
        batch.judge_suspect(|(_, partition), offset| *partition == 1 && offset < 4);
        assert!(batch.suspect, "partition 1 starts at 3, below its bound 4");
        batch.judge_suspect(|(_, partition), offset| *partition == 1 && offset < 3);
        assert!(
            !batch.suspect,
            "every partition starts at or past its bound"
        );
        batch.release(CONTACTS, 2, CONTACTS, RESPONSES);
        batch.judge_suspect(|(_, partition), offset| *partition == 2 && offset < 100);
        assert!(!batch.suspect, "a released partition is not judged");
    }

    fn holds(taken: TakenAhead) -> bool {
        matches!(taken, TakenAhead::Holds(_))
    }

    #[test]
    fn a_look_ahead_holds_only_for_the_batch_and_fences_it_was_taken_for() {
        let fences: BTreeMap<TopicPartition, u64> = [((CONTACTS.to_string(), 0), 7)].into();
        let taken = |change: &dyn Fn(&mut Batch), under: &BTreeMap<TopicPartition, u64>| {
            let mut batch = Batch::default();
            batch.add(rejected(CONTACTS, 0, 1), settled);
            batch.add(rejected(CONTACTS, 1, 1), settled);
            batch.looked_ahead(LookedAhead::default(), fences.clone());
            change(&mut batch);
            let taken = batch.take_ahead(under, Duration::from_secs(60));
            assert!(batch.ahead.is_none(), "taken either way");
            taken
        };
        assert!(holds(taken(&|_| {}, &fences)));
        assert!(matches!(
            Batch::default().take_ahead(&fences, Duration::from_secs(60)),
            TakenAhead::None
        ));
        let other: BTreeMap<TopicPartition, u64> = [((CONTACTS.to_string(), 0), 8)].into();
        assert!(!holds(taken(&|_| {}, &other)), "a fence changed: a claim");
        let added = |batch: &mut Batch| batch.add(rejected(CONTACTS, 0, 2), settled);
        assert!(!holds(taken(&added, &fences)), "a message added");
        let released = |batch: &mut Batch| {
            batch.release(CONTACTS, 1, CONTACTS, RESPONSES);
        };
        assert!(!holds(taken(&released, &fences)), "a partition released");
        let failed = |batch: &mut Batch| batch.attempt_failed();
        assert!(!holds(taken(&failed, &fences)), "an attempt failed");
        let suspect = |batch: &mut Batch| batch.judge_suspect(|_, _| true);
        assert!(!holds(taken(&suspect, &fences)), "judged suspect since");
        let asked_raw = |batch: &mut Batch| {
            let before = Batch {
                asked_raw: true,
                ..Batch::default()
            };
            batch.written_before(&before);
        };
        assert!(
            !holds(taken(&asked_raw, &fences)),
            "the batch before asked the raw table"
        );
        let spoiled = |batch: &mut Batch| batch.spoil_ahead();
        assert!(
            !holds(taken(&spoiled, &fences)),
            "the batch before failed an attempt"
        );
        let clean = |batch: &mut Batch| batch.written_before(&Batch::default());
        assert!(holds(taken(&clean, &fences)));
        let mut batch = Batch::default();
        batch.add(rejected(CONTACTS, 0, 1), settled);
        batch.looked_ahead(LookedAhead::default(), fences.clone());
        assert!(
            !holds(batch.take_ahead(&fences, Duration::ZERO)),
            "older than an attempt: its stage may be dropped as stale"
        );
    }
}
