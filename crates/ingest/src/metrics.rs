//! Ingest's Prometheus metrics, named once here next to their meaning.

use channelshift_runtime::health::Health;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    exponential_buckets, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry,
};

pub const CONSUMED: &str = "channelshift_ingest_messages_consumed_total";
pub const INSERTED: &str = "channelshift_ingest_rows_inserted_total";
pub const REJECTED: &str = "channelshift_ingest_messages_rejected_total";
pub const DUPLICATES: &str = "channelshift_ingest_duplicates_skipped_total";
pub const HALF_WRITTEN: &str = "channelshift_ingest_half_written_total";
pub const INSERTS: &str = "channelshift_ingest_inserts_total";
pub const WRITE_ERRORS: &str = "channelshift_ingest_write_errors_total";
pub const BATCH_ROWS: &str = "channelshift_ingest_batch_rows";
pub const INSERT_SECONDS: &str = "channelshift_ingest_insert_duration_seconds";
pub const STEP_SECONDS: &str = "channelshift_ingest_step_duration_seconds";
pub const LAST_INSERT: &str = "channelshift_ingest_last_insert_timestamp_seconds";
pub const EVENT_AGE: &str = "channelshift_ingest_event_age_seconds";
pub const CONSUMER_LAG: &str = "channelshift_ingest_consumer_lag_messages";
pub const REBALANCES: &str = "channelshift_ingest_rebalances_total";
pub const RELEASED: &str = "channelshift_ingest_messages_released_total";
pub const BUFFERED: &str = "channelshift_ingest_buffered_messages";
pub const STALLED: &str = "channelshift_ingest_stalled_partitions";
pub const ASSIGNED: &str = "channelshift_ingest_assigned_partition";
pub const FENCED: &str = "channelshift_ingest_fenced_batches_total";
pub const LOOKED_AHEAD: &str = "channelshift_ingest_looked_ahead_batches_total";
pub const READY: &str = "channelshift_ingest_ready";
pub const HEALTH_CHECK: &str = "channelshift_ingest_health_check";

#[derive(Clone)]
pub struct IngestMetrics {
    pub consumed: IntCounterVec,
    pub inserted: IntCounterVec,
    pub rejected: IntCounterVec,
    pub duplicates: IntCounterVec,
    pub half_written: IntCounterVec,
    pub inserts: IntCounterVec,
    pub write_errors: IntCounterVec,
    pub batch_rows: Histogram,
    pub insert_seconds: Histogram,
    /// Time per step of a batch: `receive` (reading and decoding its
    /// messages, from the first), `lookup` (its ids in the index), `insert`
    /// (staged while the lookup runs, so including it unless the batch was
    /// looked up ahead; moved, indexed),
    /// `claim`, `fence_check`, `dead_letters`, `checkpoint`, `commit`.
    pub step_seconds: HistogramVec,
    pub last_insert: Gauge,
    pub event_age: HistogramVec,
    pub consumer_lag: IntGaugeVec,
    pub rebalances: IntCounterVec,
    pub released: IntCounterVec,
    pub buffered: IntGauge,
    pub stalled: IntGauge,
    pub assigned: IntGaugeVec,
    pub fenced: IntCounter,
    /// Batches looked up and staged while the one before is written, by
    /// outcome: `used` by their write, `discarded` (it no longer holds: the
    /// write looks up afresh), or `failed` (an error or no answer in time).
    pub looked_ahead: IntCounterVec,
}

impl IngestMetrics {
    /// Records the time since `started` for `step` (see `step_seconds`).
    pub fn step(&self, step: &str, started: std::time::Instant) {
        self.step_seconds
            .with_label_values(&[step])
            .observe(started.elapsed().as_secs_f64());
    }

    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let counter =
            |name: &str, help: &str, labels: &[&str]| -> prometheus::Result<IntCounterVec> {
                let counter = IntCounterVec::new(Opts::new(name, help), labels)?;
                registry.register(Box::new(counter.clone()))?;
                Ok(counter)
            };
        let histogram =
            |name: &str, help: &str, buckets: Vec<f64>| -> prometheus::Result<Histogram> {
                let histogram =
                    Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))?;
                registry.register(Box::new(histogram.clone()))?;
                Ok(histogram)
            };
        let last_insert = Gauge::new(LAST_INSERT, "Unix time of the last successful insert")?;
        registry.register(Box::new(last_insert.clone()))?;
        let event_age = HistogramVec::new(
            HistogramOpts::new(
                EVENT_AGE,
                "Age of an event (now minus occurred_at / responded_at) when its row was inserted",
            )
            // 1 s to about two years: live feeds and back-loads alike.
            .buckets(exponential_buckets(1.0, 4.0, 14)?),
            &["table"],
        )?;
        registry.register(Box::new(event_age.clone()))?;
        let consumer_lag = IntGaugeVec::new(
            Opts::new(
                CONSUMER_LAG,
                "Messages on the partition not yet committed by this replica (librdkafka statistics)",
            ),
            &["topic", "partition"],
        )?;
        registry.register(Box::new(consumer_lag.clone()))?;
        let buffered = IntGauge::new(
            BUFFERED,
            "Messages read but not yet written and committed (the open batch)",
        )?;
        registry.register(Box::new(buffered.clone()))?;
        let stalled = IntGauge::new(
            STALLED,
            "Partitions this replica holds that have messages waiting and have not advanced \
             for `stall_after_seconds`",
        )?;
        registry.register(Box::new(stalled.clone()))?;
        let assigned = IntGaugeVec::new(
            Opts::new(
                ASSIGNED,
                "1 for each partition the group has assigned to this replica; absent otherwise",
            ),
            &["topic", "partition"],
        )?;
        registry.register(Box::new(assigned.clone()))?;
        let fenced = IntCounter::new(
            FENCED,
            "Batches in which a partition was claimed by another replica while this one was \
             writing it: the server refused its rows there, left to the new owner",
        )?;
        registry.register(Box::new(fenced.clone()))?;
        let step_seconds = HistogramVec::new(
            HistogramOpts::new(
                STEP_SECONDS,
                "Time per step of a batch (receive, lookup, insert, claim, fence_check, \
                 dead_letters, checkpoint, commit): where ingest spends its time",
            )
            .buckets(exponential_buckets(0.001, 2.0, 16)?),
            &["step"],
        )?;
        registry.register(Box::new(step_seconds.clone()))?;
        Ok(Self {
            consumed: counter(CONSUMED, "Messages read from Kafka", &["topic"])?,
            inserted: counter(INSERTED, "Rows written to ClickHouse", &["table"])?,
            rejected: counter(
                REJECTED,
                "Messages sent to the dead-letter topic, by reason",
                &["topic", "reason"],
            )?,
            duplicates: counter(
                DUPLICATES,
                "Messages whose id was already stored (redelivery or producer retry)",
                &["topic"],
            )?,
            half_written: counter(
                HALF_WRITTEN,
                "Ids found in the raw table without their id index rows: an insert that failed \
                 or was cut short, or a replica stopped before writing the index. Not written \
                 again, re-indexed; the rollups may miss them until `rebuild-rollups`",
                &["topic"],
            )?,
            inserts: counter(
                INSERTS,
                "INSERT statements of raw rows that succeeded; more than one per batch when the \
                 batch spans more months than one INSERT may touch",
                &["table"],
            )?,
            write_errors: counter(
                WRITE_ERRORS,
                "Failed attempts to write a batch, by step (stop_abandoned, claim, fence_check, rows, \
                 dead_letters, checkpoint, or timeout: no answer within attempt_timeout_seconds); \
                 each is retried",
                &["step"],
            )?,
            batch_rows: histogram(
                BATCH_ROWS,
                "Messages per closed batch",
                exponential_buckets(1.0, 4.0, 10)?,
            )?,
            insert_seconds: histogram(
                INSERT_SECONDS,
                "Time to write one batch to ClickHouse",
                exponential_buckets(0.001, 2.0, 16)?,
            )?,
            looked_ahead: counter(
                LOOKED_AHEAD,
                "Batches whose ids are looked up and rows staged while the batch before is \
                 written, by outcome: used by their write; discarded (the batch before failed \
                 an attempt or asked the raw table, or a claim or rebalance came meanwhile: the \
                 write looks up afresh); or failed (an error, or no answer in time)",
                &["outcome"],
            )?,
            step_seconds,
            last_insert,
            event_age,
            consumer_lag,
            rebalances: counter(
                REBALANCES,
                "Partition assignments and revocations seen by this replica",
                &["kind"],
            )?,
            released: counter(
                RELEASED,
                "Buffered messages dropped unwritten because their partition moved to another \
                 replica, which re-reads them from the checkpoint",
                &["topic"],
            )?,
            buffered,
            stalled,
            assigned,
            fenced,
        })
    }
}

/// `/readyz` as metrics, read from the health registry at each scrape, so an
/// alert can tell "up but not ready" (ClickHouse or Kafka unreachable, the
/// consumer loop stalled) from "down" without a probe of its own.
struct Readiness {
    health: Health,
    ready: IntGauge,
    checks: IntGaugeVec,
}

impl Collector for Readiness {
    fn desc(&self) -> Vec<&Desc> {
        self.ready
            .desc()
            .into_iter()
            .chain(self.checks.desc())
            .collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.ready.set(i64::from(self.health.is_ready()));
        self.checks.reset();
        for (check, ok) in self.health.report() {
            self.checks.with_label_values(&[&check]).set(i64::from(ok));
        }
        self.ready
            .collect()
            .into_iter()
            .chain(self.checks.collect())
            .collect()
    }
}

/// Registers `channelshift_ingest_ready` (1 when `/readyz` would answer 200)
/// and `channelshift_ingest_health_check{check}` (1 per passing check).
pub fn register_readiness(registry: &Registry, health: &Health) -> prometheus::Result<()> {
    let readiness = Readiness {
        health: health.clone(),
        ready: IntGauge::new(
            READY,
            "1 when the service is ready (as /readyz answers 200)",
        )?,
        checks: IntGaugeVec::new(
            Opts::new(
                HEALTH_CHECK,
                "1 when the readiness check passes (clickhouse, kafka, consumer), else 0",
            ),
            &["check"],
        )?,
    };
    registry.register(Box::new(readiness))
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::{Encoder, TextEncoder};

    fn scrape(registry: &Registry) -> String {
        let mut text = Vec::new();
        TextEncoder::new()
            .encode(&registry.gather(), &mut text)
            .expect("the text encoder writes to a Vec");
        String::from_utf8(text).expect("Prometheus text is UTF-8")
    }

    #[test]
    fn readiness_follows_the_health_registry_at_each_scrape() {
        let registry = Registry::new();
        let health = Health::new();
        register_readiness(&registry, &health).expect("registers once");
        assert!(scrape(&registry).contains("channelshift_ingest_ready 0"));

        health.set("clickhouse", true);
        health.set("kafka", true);
        let text = scrape(&registry);
        assert!(text.contains("channelshift_ingest_ready 1"), "{text}");
        assert!(text.contains("channelshift_ingest_health_check{check=\"kafka\"} 1"));

        health.set("kafka", false);
        let text = scrape(&registry);
        assert!(text.contains("channelshift_ingest_ready 0"), "{text}");
        assert!(text.contains("channelshift_ingest_health_check{check=\"kafka\"} 0"));
        assert!(text.contains("channelshift_ingest_health_check{check=\"clickhouse\"} 1"));
    }
}
