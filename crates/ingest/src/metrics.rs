//! Ingest's Prometheus metrics, named once here next to their meaning.

use prometheus::{
    exponential_buckets, Gauge, Histogram, HistogramOpts, IntCounterVec, Opts, Registry,
};

pub const CONSUMED: &str = "channelshift_ingest_messages_consumed_total";
pub const INSERTED: &str = "channelshift_ingest_rows_inserted_total";
pub const REJECTED: &str = "channelshift_ingest_messages_rejected_total";
pub const DUPLICATES: &str = "channelshift_ingest_duplicates_skipped_total";
pub const INSERT_ERRORS: &str = "channelshift_ingest_insert_errors_total";
pub const BATCH_ROWS: &str = "channelshift_ingest_batch_rows";
pub const INSERT_SECONDS: &str = "channelshift_ingest_insert_duration_seconds";
pub const LAST_INSERT: &str = "channelshift_ingest_last_insert_timestamp_seconds";

#[derive(Clone)]
pub struct IngestMetrics {
    pub consumed: IntCounterVec,
    pub inserted: IntCounterVec,
    pub rejected: IntCounterVec,
    pub duplicates: IntCounterVec,
    pub insert_errors: IntCounterVec,
    pub batch_rows: Histogram,
    pub insert_seconds: Histogram,
    pub last_insert: Gauge,
}

impl IngestMetrics {
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
            insert_errors: counter(
                INSERT_ERRORS,
                "Failed ClickHouse inserts (retried)",
                &["table"],
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
            last_insert,
        })
    }
}
