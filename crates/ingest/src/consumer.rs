//! The Kafka consumer's context. It decides where a newly assigned partition
//! starts (its checkpoint in ClickHouse), remembers which partitions were taken
//! away (so the batch drops their unwritten rows instead of writing behind the
//! new owner's back), and turns librdkafka's statistics into lag metrics.
//!
//! librdkafka calls these from inside `StreamConsumer::recv`, on the task that
//! runs the pipeline. The pipeline reads the next batch while it writes one,
//! so a rebalance can happen during a write: claims are only ever set on
//! partitions still assigned, and a write's fence check treats a partition
//! no longer claimed as revoked.

use crate::metrics::IngestMetrics;
use channelshift_runtime::health::Health;
use channelshift_store::{ClickHouseConfig, Store};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long an assignment may wait for its checkpoints before falling back to
/// the group's committed offsets (the id lookup still prevents double counting).
const CHECKPOINT_LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// A (topic, partition) pair.
pub type TopicPartition = (String, i32);

/// Where this replica stands on writing an assigned partition (see the
/// store's `fences.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// Assigned; no fence claimed yet, so nothing may be written.
    Unclaimed,
    /// Claimed with this fence: the server stores rows that carry it.
    Held(u64),
    /// Another replica claimed it (at this instant) since: its messages are
    /// dropped here until the partition is revoked, or claimed again when
    /// the group still leaves it here long after (see
    /// [`IngestContext::lost_before`]).
    Lost(Instant),
}

pub struct IngestContext {
    clickhouse: ClickHouseConfig,
    metrics: IngestMetrics,
    revoked: Mutex<Vec<TopicPartition>>,
    assigned: Mutex<BTreeSet<TopicPartition>>,
    /// Assigned partitions whose previous owner may have stored rows past its
    /// checkpoint without their id index (it stopped between an INSERT and
    /// the index, or mid-INSERT): offsets below the bound are suspect. The
    /// bound is the partition's end when it was assigned (the previous owner
    /// cannot have read further), lowered once claimed to the offset after
    /// the last message stored from it; `None` until the pipeline has asked.
    unsettled: Mutex<HashMap<TopicPartition, Option<i64>>>,
    /// Each assigned partition's assignment, numbered from
    /// `next_assignment` (a lost partition taken back counts as assigned
    /// again): a bound worked out for one assignment is never applied to a
    /// later one.
    assignments: Mutex<HashMap<TopicPartition, u64>>,
    next_assignment: std::sync::atomic::AtomicU64,
    /// When each assigned partition was assigned or last committed.
    progress: Mutex<HashMap<TopicPartition, Instant>>,
    /// The claim on each assigned partition.
    claims: Mutex<HashMap<TopicPartition, Claim>>,
    /// Each paused partition's end, as last asked of the broker.
    ends: Mutex<HashMap<TopicPartition, i64>>,
    /// Readiness: `partitions` is red while a partition is stalled.
    health: Health,
    stall_after: Duration,
}

impl IngestContext {
    pub fn new(
        clickhouse: ClickHouseConfig,
        metrics: IngestMetrics,
        health: Health,
        stall_after: Duration,
    ) -> Self {
        Self {
            clickhouse,
            metrics,
            revoked: Mutex::new(Vec::new()),
            assigned: Mutex::new(BTreeSet::new()),
            unsettled: Mutex::new(HashMap::new()),
            assignments: Mutex::new(HashMap::new()),
            next_assignment: std::sync::atomic::AtomicU64::new(1),
            progress: Mutex::new(HashMap::new()),
            claims: Mutex::new(HashMap::new()),
            ends: Mutex::new(HashMap::new()),
            health,
            stall_after,
        }
    }

    /// True when the previous owner of `partition` may have stored the
    /// message at `offset` without its id index: below the partition's end at
    /// assignment, or the end is not known yet.
    pub fn is_unsettled(&self, partition: &TopicPartition, offset: i64) -> bool {
        match self
            .unsettled
            .lock()
            .expect("unsettled set lock is never poisoned")
            .get(partition)
        {
            Some(Some(end)) => offset < *end,
            Some(None) => true,
            None => false,
        }
    }

    /// Assigned partitions whose end at assignment is not known yet.
    pub fn unbounded(&self) -> Vec<TopicPartition> {
        self.unsettled
            .lock()
            .expect("unsettled set lock is never poisoned")
            .iter()
            .filter(|(_, end)| end.is_none())
            .map(|(partition, _)| partition.clone())
            .collect()
    }

    /// Records a partition's end at assignment (see [`Self::is_unsettled`]).
    pub fn bound(&self, partition: &TopicPartition, end: i64) {
        if let Some(bound) = self
            .unsettled
            .lock()
            .expect("unsettled set lock is never poisoned")
            .get_mut(partition)
        {
            *bound = Some(end);
        }
    }

    /// The number of `partition`'s current assignment; `None` when it is
    /// not assigned.
    pub fn assignment(&self, partition: &TopicPartition) -> Option<u64> {
        self.assignments
            .lock()
            .expect("assignments lock is never poisoned")
            .get(partition)
            .copied()
    }

    /// Whether `partition` is assigned here now.
    pub fn is_assigned(&self, partition: &TopicPartition) -> bool {
        self.assignment(partition).is_some()
    }

    fn assign(&self, partitions: impl IntoIterator<Item = TopicPartition>) {
        let mut assignments = self
            .assignments
            .lock()
            .expect("assignments lock is never poisoned");
        for partition in partitions {
            let number = self
                .next_assignment
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            assignments.insert(partition, number);
        }
    }

    /// Bounds a claimed partition by what is stored of it: no row of a
    /// message at or after `stored_end` is stored (see the pipeline's
    /// `claim_assigned`), so no later message can be stored without its
    /// index. Only ever lowers a bound, and only of `assignment`, the one
    /// the claim was made for: after a revoke and a new assignment the
    /// partition may have had another owner since.
    pub fn bound_by_stored(&self, partition: &TopicPartition, stored_end: i64, assignment: u64) {
        let assignments = self
            .assignments
            .lock()
            .expect("assignments lock is never poisoned");
        if assignments.get(partition) != Some(&assignment) {
            return;
        }
        if let Some(bound) = self
            .unsettled
            .lock()
            .expect("unsettled set lock is never poisoned")
            .get_mut(partition)
        {
            *bound = Some(bound.map_or(stored_end, |end| end.min(stored_end)));
        }
    }

    /// A batch reaching `highest` (an offset) of each partition is checkpointed:
    /// a partition whose end at assignment it passed is settled.
    pub fn settle<'a>(&self, highest: impl IntoIterator<Item = (&'a TopicPartition, &'a i64)>) {
        let mut unsettled = self
            .unsettled
            .lock()
            .expect("unsettled set lock is never poisoned");
        for (partition, offset) in highest {
            if matches!(unsettled.get(partition), Some(Some(end)) if offset + 1 >= *end) {
                unsettled.remove(partition);
            }
        }
    }

    /// The batch committed these partitions: they advanced.
    pub fn progressed<'a>(&self, partitions: impl IntoIterator<Item = &'a TopicPartition>) {
        let now = Instant::now();
        let mut progress = self
            .progress
            .lock()
            .expect("progress lock is never poisoned");
        for partition in partitions {
            if let Some(at) = progress.get_mut(partition) {
                *at = now;
            }
        }
    }

    /// Records where a partition ends on the broker (asked while it is
    /// paused, when librdkafka's statistics stop following it).
    pub fn ended_at(&self, partition: TopicPartition, end: i64) {
        self.ends
            .lock()
            .expect("ends lock is never poisoned")
            .insert(partition, end);
    }

    /// Assigned partitions with no fence claimed yet.
    pub fn unclaimed(&self) -> Vec<TopicPartition> {
        self.claims
            .lock()
            .expect("claims lock is never poisoned")
            .iter()
            .filter(|(_, claim)| **claim == Claim::Unclaimed)
            .map(|(partition, _)| partition.clone())
            .collect()
    }

    /// Partitions lost to another replica's claim before `before` that the
    /// group still assigns here. Kafka revokes a replica's partitions once
    /// its session has expired, which is how another replica came to claim
    /// them; one still here long after was handed to two members at once
    /// (Tansu 0.6's coordinator does that during cooperative rebalances)
    /// and the other may have left since: left alone it would never be
    /// read again.
    pub fn lost_before(&self, before: Instant) -> Vec<TopicPartition> {
        self.claims
            .lock()
            .expect("claims lock is never poisoned")
            .iter()
            .filter(|(_, claim)| matches!(claim, Claim::Lost(at) if *at < before))
            .map(|(partition, _)| partition.clone())
            .collect()
    }

    /// Takes a lost partition back: unclaimed (the next write claims it),
    /// progressing from now, and unsettled as on assignment: the replica
    /// whose claim took it may have stored rows past the checkpoint without
    /// their id index (this replica's claim fences its index out), so they
    /// are looked up in the raw table up to the partition's end.
    pub fn unlose(&self, partition: &TopicPartition) {
        let mut claims = self.claims.lock().expect("claims lock is never poisoned");
        if let Some(claim @ Claim::Lost(_)) = claims.get_mut(partition) {
            *claim = Claim::Unclaimed;
            self.progress
                .lock()
                .expect("progress lock is never poisoned")
                .insert(partition.clone(), Instant::now());
            self.unsettled
                .lock()
                .expect("unsettled set lock is never poisoned")
                .insert(partition.clone(), None);
            self.assign([partition.clone()]);
        }
    }

    /// The claim on `partition`; `None` when it is not assigned.
    pub fn claim(&self, partition: &TopicPartition) -> Option<Claim> {
        self.claims
            .lock()
            .expect("claims lock is never poisoned")
            .get(partition)
            .copied()
    }

    /// The assigned partitions of `topic`.
    pub fn partitions_of(&self, topic: &str) -> Vec<i32> {
        self.claims
            .lock()
            .expect("claims lock is never poisoned")
            .keys()
            .filter(|(of, _)| of == topic)
            .map(|(_, partition)| *partition)
            .collect()
    }

    /// Records a claim made (`Held`) or lost (`Lost`), if the partition is
    /// still assigned; a lost one no longer counts towards stalls.
    pub fn set_claim(&self, partition: &TopicPartition, claim: Claim) {
        if let Some(held) = self
            .claims
            .lock()
            .expect("claims lock is never poisoned")
            .get_mut(partition)
        {
            *held = claim;
        }
        if matches!(claim, Claim::Lost(_)) {
            self.progress
                .lock()
                .expect("progress lock is never poisoned")
                .remove(partition);
        }
    }

    /// Partitions revoked since the last call.
    pub fn take_revoked(&self) -> Vec<TopicPartition> {
        std::mem::take(
            &mut *self
                .revoked
                .lock()
                .expect("revoked list lock is never poisoned"),
        )
    }

    /// Sets each partition's start to its stored checkpoint, where there is one.
    fn start_at_checkpoints(&self, partitions: &mut TopicPartitionList) {
        let topics: BTreeSet<String> = partitions
            .elements()
            .iter()
            .map(|element| element.topic().to_string())
            .collect();
        let stored = match self.load_checkpoints(&topics) {
            Ok(stored) => stored,
            Err(error) => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "could not read checkpoints; starting at the group's committed offsets"
                );
                return;
            }
        };
        let starts: Vec<(String, i32, Option<i64>)> = partitions
            .elements()
            .iter()
            .map(|element| {
                let topic = element.topic().to_string();
                let partition = element.partition();
                let start = stored.get(&(topic.clone(), partition)).copied();
                (topic, partition, start)
            })
            .collect();
        for (topic, partition, start) in starts {
            match start {
                Some(next_offset) => {
                    tracing::info!(
                        topic,
                        partition,
                        next_offset,
                        "assigned; starting at the checkpoint"
                    );
                    if let Err(error) = partitions.set_partition_offset(
                        &topic,
                        partition,
                        Offset::Offset(next_offset),
                    ) {
                        tracing::warn!(topic, partition, %error, "could not set the start offset");
                    }
                }
                None => tracing::info!(
                    topic,
                    partition,
                    "assigned; no checkpoint, starting at the group's committed offset"
                ),
            }
        }
    }

    /// Reads checkpoints on a thread of its own: this runs inside a librdkafka
    /// callback on an async task, where blocking on the task's runtime would deadlock.
    fn load_checkpoints(
        &self,
        topics: &BTreeSet<String>,
    ) -> anyhow::Result<HashMap<TopicPartition, i64>> {
        let clickhouse = self.clickhouse.clone();
        std::thread::scope(|scope| {
            scope
                .spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    runtime.block_on(async move {
                        tokio::time::timeout(CHECKPOINT_LOOKUP_TIMEOUT, async {
                            let store = Store::connect(&clickhouse).await?;
                            let mut stored = HashMap::new();
                            for topic in topics {
                                for (partition, next_offset) in store.checkpoints(topic).await? {
                                    stored.insert((topic.clone(), partition), next_offset);
                                }
                            }
                            Ok::<_, anyhow::Error>(stored)
                        })
                        .await
                        .map_err(|_| {
                            anyhow::anyhow!("no answer within {CHECKPOINT_LOOKUP_TIMEOUT:?}")
                        })?
                    })
                })
                .join()
                .map_err(|_| anyhow::anyhow!("the checkpoint lookup thread panicked"))?
        })
    }

    fn pairs(partitions: &TopicPartitionList) -> Vec<TopicPartition> {
        partitions
            .elements()
            .iter()
            .map(|element| (element.topic().to_string(), element.partition()))
            .collect()
    }
}

impl ClientContext for IngestContext {
    /// librdkafka's errors (a refused login, a failed TLS handshake, brokers
    /// down) in ingest's own log.
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        tracing::error!(%error, reason, "Kafka client error");
    }

    fn stats(&self, statistics: Statistics) {
        let assigned = self
            .assigned
            .lock()
            .expect("assignment lock is never poisoned")
            .clone();
        let mut lags = HashMap::new();
        for (topic, details) in &statistics.topics {
            for (partition, stats) in &details.partitions {
                let key = (topic.clone(), *partition);
                // librdkafka reports -1 until it knows both ends.
                if assigned.contains(&key) && stats.consumer_lag >= 0 {
                    self.metrics
                        .consumer_lag
                        .with_label_values(&[topic.as_str(), &partition.to_string()])
                        .set(stats.consumer_lag);
                    // Waiting = on the broker, not yet handed to ingest; a
                    // partition read since assignment counts from what was
                    // handed over, so a checkpoint ahead of the group's
                    // committed offset does not look like a backlog.
                    // A paused partition is not fetched, so librdkafka's
                    // high watermark goes stale: the end the pipeline last
                    // asked the broker for counts too.
                    let end = self
                        .ends
                        .lock()
                        .expect("ends lock is never poisoned")
                        .get(&key)
                        .copied()
                        .unwrap_or(-1)
                        .max(stats.hi_offset);
                    let waiting = if stats.app_offset >= 0 && end >= 0 {
                        end - stats.app_offset
                    } else {
                        stats.consumer_lag
                    };
                    lags.insert(key, waiting);
                }
            }
        }
        let progress = self
            .progress
            .lock()
            .expect("progress lock is never poisoned")
            .clone();
        let stalled = stalled(&progress, &lags, Instant::now(), self.stall_after);
        if !stalled.is_empty() && self.metrics.stalled.get() == 0 {
            tracing::error!(
                partitions = ?stalled,
                "assigned partitions with messages waiting have not advanced for {:?}",
                self.stall_after
            );
        }
        self.metrics.stalled.set(stalled.len() as i64);
        // Readiness turns red while a partition this replica holds is stalled.
        self.health.set("partitions", stalled.is_empty());
    }
}

impl ConsumerContext for IngestContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        partitions: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.metrics.rebalances.with_label_values(&["assign"]).inc();
                self.start_at_checkpoints(partitions);
                let result = if cooperative {
                    consumer.incremental_assign(partitions)
                } else {
                    consumer.assign(partitions)
                };
                if let Err(error) = result {
                    tracing::error!(%error, "assigning partitions failed");
                }
                let mut assigned = self
                    .assigned
                    .lock()
                    .expect("assignment lock is never poisoned");
                if !cooperative {
                    assigned.clear();
                }
                assigned.extend(Self::pairs(partitions));
                // A partition keeps librdkafka's pause flag through a revoke
                // and a new assignment: one paused during a failed write and
                // given back later would never be read again. Every assigned
                // partition starts consuming; a write failure in progress
                // pauses them again after this poll.
                if let Err(error) = consumer.resume(partitions) {
                    tracing::warn!(%error, "resuming assigned partitions failed");
                }
                for (topic, partition) in Self::pairs(partitions) {
                    self.metrics
                        .assigned
                        .with_label_values(&[topic.as_str(), &partition.to_string()])
                        .set(1);
                }
                let now = Instant::now();
                self.progress
                    .lock()
                    .expect("progress lock is never poisoned")
                    .extend(Self::pairs(partitions).into_iter().map(|pair| (pair, now)));
                self.unsettled
                    .lock()
                    .expect("unsettled set lock is never poisoned")
                    .extend(Self::pairs(partitions).into_iter().map(|pair| (pair, None)));
                self.assign(Self::pairs(partitions));
                self.claims
                    .lock()
                    .expect("claims lock is never poisoned")
                    .extend(
                        Self::pairs(partitions)
                            .into_iter()
                            .map(|pair| (pair, Claim::Unclaimed)),
                    );
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.metrics.rebalances.with_label_values(&["revoke"]).inc();
                let revoked = Self::pairs(partitions);
                tracing::info!(partitions = ?revoked, lost = consumer.assignment_lost(), "partitions revoked");
                {
                    let mut assigned = self
                        .assigned
                        .lock()
                        .expect("assignment lock is never poisoned");
                    let mut unsettled = self
                        .unsettled
                        .lock()
                        .expect("unsettled set lock is never poisoned");
                    let mut progress = self
                        .progress
                        .lock()
                        .expect("progress lock is never poisoned");
                    let mut claims = self.claims.lock().expect("claims lock is never poisoned");
                    let mut assignments = self
                        .assignments
                        .lock()
                        .expect("assignments lock is never poisoned");
                    for pair in &revoked {
                        assigned.remove(pair);
                        assignments.remove(pair);
                        unsettled.remove(pair);
                        progress.remove(pair);
                        claims.remove(pair);
                        let labels = [pair.0.as_str(), &pair.1.to_string()];
                        let _ = self.metrics.consumer_lag.remove_label_values(&labels);
                        let _ = self.metrics.assigned.remove_label_values(&labels);
                    }
                }
                self.revoked
                    .lock()
                    .expect("revoked list lock is never poisoned")
                    .extend(revoked);
                let result = if cooperative {
                    consumer.incremental_unassign(partitions)
                } else {
                    consumer.unassign()
                };
                if let Err(error) = result {
                    tracing::error!(%error, "unassigning partitions failed");
                }
            }
            other => {
                tracing::error!(error = ?other, "rebalance failed; dropping the assignment");
                let revoked = Self::pairs(partitions);
                let mut claims = self.claims.lock().expect("claims lock is never poisoned");
                let mut assignments = self
                    .assignments
                    .lock()
                    .expect("assignments lock is never poisoned");
                for pair in &revoked {
                    claims.remove(pair);
                    assignments.remove(pair);
                    let labels = [pair.0.as_str(), &pair.1.to_string()];
                    let _ = self.metrics.assigned.remove_label_values(&labels);
                }
                drop(claims);
                drop(assignments);
                self.revoked
                    .lock()
                    .expect("revoked list lock is never poisoned")
                    .extend(revoked);
                if let Err(error) = consumer.unassign() {
                    tracing::error!(%error, "unassigning partitions failed");
                }
            }
        }
    }
}

/// The partitions of `progress` (assigned, with when each last advanced) that
/// have messages waiting (`lags`) and have not advanced for `after`.
fn stalled(
    progress: &HashMap<TopicPartition, Instant>,
    lags: &HashMap<TopicPartition, i64>,
    now: Instant,
    after: Duration,
) -> Vec<TopicPartition> {
    let mut stalled: Vec<TopicPartition> = progress
        .iter()
        .filter(|(partition, since)| {
            lags.get(*partition).is_some_and(|lag| *lag > 0) && now.duration_since(**since) > after
        })
        .map(|(partition, _)| partition.clone())
        .collect();
    stalled.sort();
    stalled
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_taken_back_after_its_claim_was_lost_is_checked_in_the_raw_table_again() {
        let registry = prometheus::Registry::new();
        let context = IngestContext::new(
            ClickHouseConfig {
                url: "http://127.0.0.1:1".into(),
                user: "writer".into(),
                password: secrecy::SecretString::from("password"),
                database: "channelshift".into(),
                ca_file: None,
            },
            IngestMetrics::register(&registry).expect("metrics register"),
            Health::new(),
            Duration::from_secs(60),
        );
        let partition = ("contacts".to_string(), 2);
        context
            .claims
            .lock()
            .expect("claims lock")
            .insert(partition.clone(), Claim::Lost(Instant::now()));
        assert!(!context.is_unsettled(&partition, 4043));
        context.unlose(&partition);
        assert_eq!(context.claim(&partition), Some(Claim::Unclaimed));
        // Suspect until its end is known, then below it.
        assert!(context.is_unsettled(&partition, 4043));
        assert_eq!(context.unbounded(), std::slice::from_ref(&partition));
        context.bound(&partition, 5_000);
        assert!(context.is_unsettled(&partition, 4043));
        assert!(!context.is_unsettled(&partition, 5_000));
        // Claimed, and nothing stored of it from offset 4,000 on.
        let assignment = context.assignment(&partition).expect("assigned again");
        context.bound_by_stored(&partition, 4_000, assignment + 1);
        assert!(
            context.is_unsettled(&partition, 4043),
            "a bound read for another assignment is not applied"
        );
        context.bound_by_stored(&partition, 4_000, assignment);
        assert!(!context.is_unsettled(&partition, 4043));
        assert!(context.is_unsettled(&partition, 3_999));
        context.bound_by_stored(&partition, 4_500, assignment);
        assert!(
            !context.is_unsettled(&partition, 4043),
            "a bound is only lowered"
        );
    }

    #[test]
    fn a_partition_is_stalled_with_messages_waiting_and_no_progress_for_long() {
        let start = Instant::now();
        let after = Duration::from_secs(60);
        let key = |p: i32| ("contacts".to_string(), p);
        let progress: HashMap<TopicPartition, Instant> =
            [(key(0), start), (key(1), start), (key(2), start)].into();
        let lags: HashMap<TopicPartition, i64> = [(key(0), 500), (key(1), 0)].into();
        // Within the minute nothing is stalled.
        assert!(stalled(&progress, &lags, start + Duration::from_secs(30), after).is_empty());
        // After it: partition 0 waits with 500 messages; 1 has none; 2 has no
        // statistics yet.
        assert_eq!(
            stalled(&progress, &lags, start + Duration::from_secs(61), after),
            [key(0)]
        );
    }
}
