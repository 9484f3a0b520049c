//! Versioned DDL, applied in order at start-up and recorded in
//! `schema_migrations`. Every statement is idempotent (`IF NOT EXISTS`), so
//! replicas starting together, or a crash half-way, do no harm.
//!
//! Rollups are `SummingMergeTree` tables fed by materialized views; queries
//! always `sum()` with `GROUP BY`, never trusting that background merges ran.

use crate::connection::{Store, StoreError};
use clickhouse::Row;
use serde::Deserialize;

/// One migration: a version, a name, and its statements in order.
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub statements: &'static [&'static str],
}

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "contact events, their id index and daily rollup",
        statements: &[
            "CREATE TABLE IF NOT EXISTS contact_events (
                council String,
                event_id String,
                occurred_at DateTime,
                channel String,
                assisted UInt8,
                service String,
                interaction String,
                outcome String,
                customer_type String,
                customer_hash String,
                journey_id String,
                avoidable Nullable(UInt8),
                first_contact_resolved Nullable(UInt8),
                ward String,
                lsoa String,
                wait_seconds Nullable(UInt32),
                handling_seconds Nullable(UInt32),
                source String,
                kafka_partition Int32,
                kafka_offset Int64,
                ingested_at DateTime
            ) ENGINE = MergeTree
            PARTITION BY toYYYYMM(occurred_at)
            ORDER BY (council, occurred_at, event_id)",
            // Sorted by id so ingest's duplicate lookup reads a few granules, not the table.
            "CREATE TABLE IF NOT EXISTS contact_event_ids (
                council String,
                event_id String
            ) ENGINE = MergeTree
            ORDER BY (council, event_id)",
            "CREATE MATERIALIZED VIEW IF NOT EXISTS contact_event_ids_mv TO contact_event_ids
            AS SELECT council, event_id FROM contact_events",
            "CREATE TABLE IF NOT EXISTS contact_daily (
                council String,
                day Date,
                service String,
                channel String,
                customer_type String,
                interaction String,
                outcome String,
                assisted UInt8,
                contacts UInt64,
                avoidable_contacts UInt64,
                avoidable_flagged UInt64,
                resolved_first UInt64,
                resolution_flagged UInt64,
                wait_seconds_total UInt64,
                handling_seconds_total UInt64,
                timed UInt64
            ) ENGINE = SummingMergeTree
            PARTITION BY toYYYYMM(day)
            ORDER BY (council, day, service, channel, customer_type, interaction, outcome, assisted)",
            // The local day is Europe/London's: a contact at 23:30 UTC in summer is tomorrow's.
            // Aliases are global in ClickHouse: none may reuse a source column's name.
            "CREATE MATERIALIZED VIEW IF NOT EXISTS contact_daily_mv TO contact_daily AS
            SELECT
                council,
                toDate(occurred_at, 'Europe/London') AS day,
                service,
                channel,
                customer_type,
                interaction,
                outcome,
                assisted,
                count() AS contacts,
                countIf(ifNull(avoidable, 0) = 1) AS avoidable_contacts,
                countIf(isNotNull(avoidable)) AS avoidable_flagged,
                countIf(ifNull(first_contact_resolved, 0) = 1) AS resolved_first,
                countIf(isNotNull(first_contact_resolved)) AS resolution_flagged,
                sum(toUInt64(ifNull(wait_seconds, 0))) AS wait_seconds_total,
                sum(toUInt64(ifNull(handling_seconds, 0))) AS handling_seconds_total,
                countIf(isNotNull(handling_seconds)) AS timed
            FROM contact_events
            GROUP BY council, day, service, channel, customer_type, interaction, outcome, assisted",
        ],
    },
    Migration {
        version: 2,
        name: "satisfaction responses, their id index and daily rollup",
        statements: &[
            "CREATE TABLE IF NOT EXISTS satisfaction_responses (
                council String,
                response_id String,
                responded_at DateTime,
                contact_event_id String,
                channel String,
                service String,
                customer_type String,
                instrument String,
                score UInt8,
                survey_mode String,
                comment String,
                ward String,
                lsoa String,
                kafka_partition Int32,
                kafka_offset Int64,
                ingested_at DateTime
            ) ENGINE = MergeTree
            PARTITION BY toYYYYMM(responded_at)
            ORDER BY (council, responded_at, response_id)",
            "CREATE TABLE IF NOT EXISTS satisfaction_response_ids (
                council String,
                response_id String
            ) ENGINE = MergeTree
            ORDER BY (council, response_id)",
            "CREATE MATERIALIZED VIEW IF NOT EXISTS satisfaction_response_ids_mv
            TO satisfaction_response_ids
            AS SELECT council, response_id FROM satisfaction_responses",
            "CREATE TABLE IF NOT EXISTS satisfaction_daily (
                council String,
                day Date,
                service String,
                channel String,
                customer_type String,
                instrument String,
                score UInt8,
                responses UInt64
            ) ENGINE = SummingMergeTree
            PARTITION BY toYYYYMM(day)
            ORDER BY (council, day, service, channel, customer_type, instrument, score)",
            "CREATE MATERIALIZED VIEW IF NOT EXISTS satisfaction_daily_mv TO satisfaction_daily AS
            SELECT
                council,
                toDate(responded_at, 'Europe/London') AS day,
                service,
                channel,
                customer_type,
                instrument,
                score,
                count() AS responses
            FROM satisfaction_responses
            GROUP BY council, day, service, channel, customer_type, instrument, score",
        ],
    },
    Migration {
        version: 3,
        name: "ingest checkpoints: the next Kafka offset per partition, kept with the rows",
        // One row per partition per batch; readers take max(next_offset), and
        // ReplacingMergeTree lets background merges keep the table small.
        statements: &["CREATE TABLE IF NOT EXISTS ingest_checkpoints (
                topic String,
                partition Int32,
                next_offset Int64,
                written_at DateTime
            ) ENGINE = ReplacingMergeTree(next_offset)
            ORDER BY (topic, partition)"],
    },
];

#[derive(Row, Deserialize)]
struct Applied {
    version: u32,
}

impl Store {
    /// Creates the database if needed and applies the migrations not yet
    /// recorded. Returns the versions this call applied.
    pub async fn migrate(&self) -> Result<Vec<u32>, StoreError> {
        let server = self.client.clone().with_database("system");
        // The name was checked to be [A-Za-z0-9_] when the store was opened.
        server
            .query(&format!(
                "CREATE DATABASE IF NOT EXISTS `{}`",
                self.database()
            ))
            .execute()
            .await?;
        self.client
            .query(
                "CREATE TABLE IF NOT EXISTS schema_migrations (
                    version UInt32,
                    name String,
                    applied_at DateTime DEFAULT now()
                ) ENGINE = MergeTree ORDER BY version",
            )
            .execute()
            .await?;
        let applied: Vec<u32> = self
            .client
            .query("SELECT DISTINCT version FROM schema_migrations")
            .fetch_all::<Applied>()
            .await?
            .into_iter()
            .map(|row| row.version)
            .collect();
        let mut now_applied = Vec::new();
        for migration in MIGRATIONS {
            if applied.contains(&migration.version) {
                continue;
            }
            for statement in migration.statements {
                self.client.query(statement).execute().await?;
            }
            self.client
                .query("INSERT INTO schema_migrations (version, name) VALUES (?, ?)")
                .bind(migration.version)
                .bind(migration.name)
                .execute()
                .await?;
            tracing::info!(
                version = migration.version,
                name = migration.name,
                "applied migration"
            );
            now_applied.push(migration.version);
        }
        Ok(now_applied)
    }
}
