//! Versioned DDL, applied in order at start-up and recorded in
//! `schema_migrations`. Every statement is idempotent (`IF NOT EXISTS`), so
//! replicas starting together, or a crash half-way, do no harm.
//!
//! Rollups are `SummingMergeTree` tables fed by materialized views; queries
//! always `sum()` with `GROUP BY`, never trusting that background merges ran.
//! [`ROLLUPS`] names each rollup with its view's SELECT, which the rebuild
//! (`rebuild-rollups`) runs too.

use crate::connection::{Store, StoreError};
use clickhouse::Row;
use serde::Deserialize;

// Each rollup's SELECT is written once, below, as a macro so that `concat!`
// can place it in its view's DDL at compile time; `rebuild-rollups` runs the
// same text through [`ROLLUPS`]. The DDL these produce is byte for byte the
// text the views were first created with.
// Aliases are global in ClickHouse: none may reuse a source column's name.

/// A contact's local day is Europe/London's: a contact at 23:30 UTC in summer is tomorrow's.
macro_rules! contact_local_day {
    () => {
        "toDate(occurred_at, 'Europe/London')"
    };
}

macro_rules! satisfaction_local_day {
    () => {
        "toDate(responded_at, 'Europe/London')"
    };
}

/// Contacts by `$day` (a local day, or the first of its month) and every
/// key the KPIs filter or group on.
macro_rules! contact_rollup_select {
    ($day:expr) => {
        concat!(
            "
            SELECT
                council,
                ",
            $day,
            " AS day,
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
            FROM contact_events"
        )
    };
}

macro_rules! contact_daily_select {
    () => {
        contact_rollup_select!(contact_local_day!())
    };
}

/// As `contact_daily`, by local month: `day` is the first of the month.
/// Month, quarter, year and whole-range figures read it for the whole
/// months of their range, about a thirtieth of the rows (cells.rs).
macro_rules! contact_monthly_select {
    () => {
        contact_rollup_select!(concat!("toStartOfMonth(", contact_local_day!(), ")"))
    };
}

macro_rules! contact_daily_group_by {
    () => {
        "
            GROUP BY council, day, service, channel, customer_type, interaction, outcome, assisted"
    };
}

/// Responses by `$day` (a local day, or the first of its month) and every
/// key the KPIs filter or group on.
macro_rules! satisfaction_rollup_select {
    ($day:expr) => {
        concat!(
            "
            SELECT
                council,
                ",
            $day,
            " AS day,
                service,
                channel,
                customer_type,
                instrument,
                score,
                count() AS responses
            FROM satisfaction_responses"
        )
    };
}

macro_rules! satisfaction_daily_select {
    () => {
        satisfaction_rollup_select!(satisfaction_local_day!())
    };
}

/// As `satisfaction_daily`, by local month: `day` is the first of the month
/// (read as `contact_monthly` is, cells.rs).
macro_rules! satisfaction_monthly_select {
    () => {
        satisfaction_rollup_select!(concat!("toStartOfMonth(", satisfaction_local_day!(), ")"))
    };
}

macro_rules! satisfaction_daily_group_by {
    () => {
        "
            GROUP BY council, day, service, channel, customer_type, instrument, score"
    };
}

macro_rules! contact_area_daily_select {
    () => {
        concat!(
            "
            SELECT
                council,
                ",
            contact_local_day!(),
            " AS day,
                ward,
                lsoa,
                channel,
                assisted,
                interaction,
                outcome,
                count() AS contacts
            FROM contact_events"
        )
    };
}

macro_rules! contact_area_daily_group_by {
    () => {
        "
            GROUP BY council, day, ward, lsoa, channel, assisted, interaction, outcome"
    };
}

/// A contact's journey (0 without a `journey_id`) and its instant (without
/// one, a fixed instant, 1970-01-02, so contacts without a journey fold into
/// a row a day; not the epoch itself, which 18.16 prints as 0000-00-00).
macro_rules! journey_contacts_select {
    () => {
        concat!(
            "
            SELECT
                council,
                ",
            contact_local_day!(),
            " AS day,
                if(journey_id = '', toUInt64(0), sipHash64(journey_id)) AS journey,
                if(journey_id = '', toDateTime(86400), occurred_at) AS contacted_at,
                service,
                channel,
                customer_type,
                count() AS contacts
            FROM contact_events"
        )
    };
}

macro_rules! journey_contacts_group_by {
    () => {
        "
            GROUP BY council, day, journey, contacted_at, service, channel, customer_type"
    };
}

/// Contacts by local day alone: the number of contacts `journey_contacts`
/// holds for each day, read in milliseconds where counting the journey rows
/// themselves takes tens (journeys.rs compares it with a kept day's basis).
macro_rules! journey_days_select {
    () => {
        concat!(
            "
            SELECT
                council,
                ",
            contact_local_day!(),
            " AS day,
                count() AS contacts
            FROM contact_events"
        )
    };
}

macro_rules! journey_days_group_by {
    () => {
        "
            GROUP BY council, day"
    };
}

/// Contacts by their wait in seconds (`waited` 0 and `wait` 0 without one).
macro_rules! contact_wait_daily_select {
    () => {
        concat!(
            "
            SELECT
                council,
                ",
            contact_local_day!(),
            " AS day,
                service,
                channel,
                customer_type,
                outcome,
                toUInt8(isNotNull(wait_seconds)) AS waited,
                toUInt32(ifNull(wait_seconds, 0)) AS wait,
                count() AS contacts
            FROM contact_events"
        )
    };
}

macro_rules! contact_wait_daily_group_by {
    () => {
        "
            GROUP BY council, day, service, channel, customer_type, outcome, waited, wait"
    };
}

/// A rollup table, the raw table its materialized view reads, and the SELECT
/// that view runs, which `rebuild-rollups` runs too, one local month at a time.
#[derive(Debug)]
pub struct Rollup {
    pub table: &'static str,
    /// The raw table, partitioned by `toYYYYMM(<source_time>)` in UTC.
    pub source: &'static str,
    /// The raw row's UTC timestamp.
    pub source_time: &'static str,
    /// The raw row's local day, as `select` computes `day` or (by month)
    /// the first day of its month (the rollup's partition key is
    /// `toYYYYMM(day)`, the local day's month either way).
    pub local_day: &'static str,
    /// `SELECT … FROM <source>`, to be followed by an optional `WHERE` and `group_by`.
    pub select: &'static str,
    pub group_by: &'static str,
    /// The column that counts raw rows: its sum over a month is the number of
    /// raw rows the month was computed from.
    pub rows_column: &'static str,
}

/// Every rollup, in the order `rebuild-rollups` rebuilds them.
pub const ROLLUPS: &[Rollup] = &[
    Rollup {
        table: "contact_daily",
        source: "contact_events",
        source_time: "occurred_at",
        local_day: contact_local_day!(),
        select: contact_daily_select!(),
        group_by: contact_daily_group_by!(),
        rows_column: "contacts",
    },
    Rollup {
        table: "contact_area_daily",
        source: "contact_events",
        source_time: "occurred_at",
        local_day: contact_local_day!(),
        select: contact_area_daily_select!(),
        group_by: contact_area_daily_group_by!(),
        rows_column: "contacts",
    },
    Rollup {
        table: "satisfaction_daily",
        source: "satisfaction_responses",
        source_time: "responded_at",
        local_day: satisfaction_local_day!(),
        select: satisfaction_daily_select!(),
        group_by: satisfaction_daily_group_by!(),
        rows_column: "responses",
    },
    Rollup {
        table: "journey_contacts",
        source: "contact_events",
        source_time: "occurred_at",
        local_day: contact_local_day!(),
        select: journey_contacts_select!(),
        group_by: journey_contacts_group_by!(),
        rows_column: "contacts",
    },
    Rollup {
        table: "contact_monthly",
        source: "contact_events",
        source_time: "occurred_at",
        local_day: contact_local_day!(),
        select: contact_monthly_select!(),
        group_by: contact_daily_group_by!(),
        rows_column: "contacts",
    },
    Rollup {
        table: "satisfaction_monthly",
        source: "satisfaction_responses",
        source_time: "responded_at",
        local_day: satisfaction_local_day!(),
        select: satisfaction_monthly_select!(),
        group_by: satisfaction_daily_group_by!(),
        rows_column: "responses",
    },
    // After journey_contacts: a reader that sees this rollup's month rebuilt
    // sees journey_contacts' month rebuilt too (journeys.rs).
    Rollup {
        table: "journey_days",
        source: "contact_events",
        source_time: "occurred_at",
        local_day: contact_local_day!(),
        select: journey_days_select!(),
        group_by: journey_days_group_by!(),
        rows_column: "contacts",
    },
    Rollup {
        table: "contact_wait_daily",
        source: "contact_events",
        source_time: "occurred_at",
        local_day: contact_local_day!(),
        select: contact_wait_daily_select!(),
        group_by: contact_wait_daily_group_by!(),
        rows_column: "contacts",
    },
];

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
            concat!(
                "CREATE MATERIALIZED VIEW IF NOT EXISTS contact_daily_mv TO contact_daily AS",
                contact_daily_select!(),
                contact_daily_group_by!()
            ),
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
            concat!(
                "CREATE MATERIALIZED VIEW IF NOT EXISTS satisfaction_daily_mv TO satisfaction_daily AS",
                satisfaction_daily_select!(),
                satisfaction_daily_group_by!()
            ),
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
    Migration {
        version: 4,
        // The view sees only rows inserted after it exists; contacts stored
        // before this migration reach the table through `rebuild-rollups`.
        name: "contacts by local day and area (ward, LSOA), for digital-exclusion hot spots",
        statements: &[
            "CREATE TABLE IF NOT EXISTS contact_area_daily (
                council String,
                day Date,
                ward String,
                lsoa String,
                channel String,
                assisted UInt8,
                interaction String,
                outcome String,
                contacts UInt64
            ) ENGINE = SummingMergeTree
            PARTITION BY toYYYYMM(day)
            ORDER BY (council, day, ward, lsoa, channel, assisted, interaction, outcome)",
            concat!(
                "CREATE MATERIALIZED VIEW IF NOT EXISTS contact_area_daily_mv TO contact_area_daily AS",
                contact_area_daily_select!(),
                contact_area_daily_group_by!()
            ),
        ],
    },
    Migration {
        version: 5,
        // Current servers run a table's views in no fixed order, so an INSERT
        // cut short could leave an id indexed while a rollup missed its row,
        // and the retry would skip the id as stored. Ingest now writes the id
        // index itself, after the INSERT (rows and every view) has succeeded:
        // an indexed id is one whose INSERT completed, on any server.
        name: "id indexes written by ingest after each insert, not by views",
        statements: &[
            "DROP TABLE IF EXISTS contact_event_ids_mv",
            "DROP TABLE IF EXISTS satisfaction_response_ids_mv",
        ],
    },
    Migration {
        version: 6,
        // See `fences.rs`. A fence is `epoch << 32 | random`: the highest is
        // the partition's current owner; ReplacingMergeTree keeps only it
        // after merges, and readers take max(fence) meanwhile.
        name: "fences: one writer per Kafka partition, checked by the server in the INSERT",
        statements: &[
            "CREATE TABLE IF NOT EXISTS ingest_fences (
                stream String,
                partition Int32,
                fence UInt64,
                owner String,
                claimed_at DateTime
            ) ENGINE = ReplacingMergeTree(fence)
            ORDER BY (stream, partition)",
            // A batch's rows wait here, one partition per staged INSERT,
            // until `INSERT … SELECT` moves those whose fence is current.
            "CREATE TABLE IF NOT EXISTS contact_events_staging (
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
                ingested_at DateTime,
                fence UInt64,
                stage UInt64
            ) ENGINE = MergeTree
            PARTITION BY stage
            ORDER BY tuple()",
            "CREATE TABLE IF NOT EXISTS satisfaction_responses_staging (
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
                ingested_at DateTime,
                fence UInt64,
                stage UInt64
            ) ENGINE = MergeTree
            PARTITION BY stage
            ORDER BY tuple()",
        ],
    },
    Migration {
        version: 7,
        // See `retention.rs`: written before a raw month is dropped, so that
        // the rollup rebuild and the reconciliation know what is gone.
        name: "raw retention: the UTC months of raw rows dropped, per raw table",
        statements: &["CREATE TABLE IF NOT EXISTS raw_retention (
                raw_table String,
                through UInt32,
                purged_at DateTime
            ) ENGINE = MergeTree
            ORDER BY raw_table"],
    },
    Migration {
        version: 8,
        // A database of its own so that a ClickHouse user can be allowed the
        // rollups and nothing else: 18.16 restricts users by database only
        // (`allow_databases`), and checks it through views. `{rollups}` is
        // `<database>_rollups`. A RENAME of a table already moved is skipped,
        // so the migration can run again after a crash half-way. Between a
        // RENAME and its old view's DROP, INSERTs into the raw table fail
        // (the old view's target is gone) and ingest retries them; stop
        // replicas of the previous version before upgrading.
        name: "rollups in a database of their own, the only one the dashboards' user may read",
        statements: &[
            "CREATE DATABASE IF NOT EXISTS {rollups}",
            "RENAME TABLE contact_daily TO {rollups}.contact_daily",
            concat!(
                "CREATE MATERIALIZED VIEW IF NOT EXISTS contact_daily_rollup_mv TO {rollups}.contact_daily AS",
                contact_daily_select!(),
                contact_daily_group_by!()
            ),
            "DROP TABLE IF EXISTS contact_daily_mv",
            "RENAME TABLE satisfaction_daily TO {rollups}.satisfaction_daily",
            concat!(
                "CREATE MATERIALIZED VIEW IF NOT EXISTS satisfaction_daily_rollup_mv TO {rollups}.satisfaction_daily AS",
                satisfaction_daily_select!(),
                satisfaction_daily_group_by!()
            ),
            "DROP TABLE IF EXISTS satisfaction_daily_mv",
            "RENAME TABLE contact_area_daily TO {rollups}.contact_area_daily",
            concat!(
                "CREATE MATERIALIZED VIEW IF NOT EXISTS contact_area_daily_rollup_mv TO {rollups}.contact_area_daily AS",
                contact_area_daily_select!(),
                contact_area_daily_group_by!()
            ),
            "DROP TABLE IF EXISTS contact_area_daily_mv",
            // When each council's newest raw row was stored, for the
            // dashboards' "data as of" without reading the raw tables.
            // Readers take max(): merges keep the newest row per key.
            "CREATE TABLE IF NOT EXISTS {rollups}.ingest_freshness (
                raw_table String,
                council String,
                newest_ingested_at DateTime
            ) ENGINE = ReplacingMergeTree(newest_ingested_at)
            ORDER BY (raw_table, council)",
            "CREATE MATERIALIZED VIEW IF NOT EXISTS contact_events_freshness_mv TO {rollups}.ingest_freshness AS
            SELECT 'contact_events' AS raw_table, council, max(ingested_at) AS newest_ingested_at
            FROM contact_events GROUP BY council",
            "CREATE MATERIALIZED VIEW IF NOT EXISTS satisfaction_responses_freshness_mv TO {rollups}.ingest_freshness AS
            SELECT 'satisfaction_responses' AS raw_table, council, max(ingested_at) AS newest_ingested_at
            FROM satisfaction_responses GROUP BY council",
            // Rows stored before the views: run again, it changes nothing.
            "INSERT INTO {rollups}.ingest_freshness
            SELECT 'contact_events' AS raw_table, council, max(ingested_at) AS newest_ingested_at
            FROM contact_events GROUP BY council",
            "INSERT INTO {rollups}.ingest_freshness
            SELECT 'satisfaction_responses' AS raw_table, council, max(ingested_at) AS newest_ingested_at
            FROM satisfaction_responses GROUP BY council",
        ],
    },
    Migration {
        version: 9,
        // The definitions every figure is computed under, per council,
        // written by `channelshift-api publish-definitions` (see
        // definitions.rs): each publication a generation, recorded last in
        // `definitions_generations`; the views show the newest recorded one.
        name: "each council's KPI definitions, for the dashboards to compute with",
        statements: &[
            "CREATE TABLE IF NOT EXISTS {rollups}.definitions_generations (
                generation UInt64,
                published_at DateTime,
                fingerprint String
            ) ENGINE = MergeTree
            ORDER BY generation",
            "CREATE TABLE IF NOT EXISTS {rollups}.definitions_councils (
                generation UInt64,
                council String,
                name String,
                take_up_definition String,
                suppression_threshold UInt64,
                satisfaction_instrument String,
                satisfaction_measure String,
                has_baseline UInt8,
                baseline_from Date,
                baseline_to Date
            ) ENGINE = MergeTree
            ORDER BY (generation, council)",
            "CREATE TABLE IF NOT EXISTS {rollups}.definitions_channel_classes (
                generation UInt64,
                council String,
                channel String,
                channel_class String
            ) ENGINE = MergeTree
            ORDER BY (generation, council, channel)",
            "CREATE TABLE IF NOT EXISTS {rollups}.definitions_unit_costs (
                generation UInt64,
                council String,
                channel String,
                effective_from Date,
                effective_to Date,
                pence Int64
            ) ENGINE = MergeTree
            ORDER BY (generation, council, channel, effective_from)",
            "CREATE TABLE IF NOT EXISTS {rollups}.definitions_targets (
                generation UInt64,
                council String,
                kpi String,
                target Float64,
                tolerance Float64,
                polarity String
            ) ENGINE = MergeTree
            ORDER BY (generation, council, kpi)",
            "CREATE VIEW IF NOT EXISTS {rollups}.council_settings AS
            SELECT council, name, take_up_definition, suppression_threshold,
                satisfaction_instrument, satisfaction_measure, has_baseline, baseline_from, baseline_to
            FROM {rollups}.definitions_councils
            WHERE generation = (SELECT max(generation) FROM {rollups}.definitions_generations)",
            "CREATE VIEW IF NOT EXISTS {rollups}.council_channel_classes AS
            SELECT council, channel, channel_class
            FROM {rollups}.definitions_channel_classes
            WHERE generation = (SELECT max(generation) FROM {rollups}.definitions_generations)",
            "CREATE VIEW IF NOT EXISTS {rollups}.council_unit_costs AS
            SELECT council, channel, effective_from, effective_to, pence
            FROM {rollups}.definitions_unit_costs
            WHERE generation = (SELECT max(generation) FROM {rollups}.definitions_generations)",
            "CREATE VIEW IF NOT EXISTS {rollups}.council_targets AS
            SELECT council, kpi, target, tolerance, polarity
            FROM {rollups}.definitions_targets
            WHERE generation = (SELECT max(generation) FROM {rollups}.definitions_generations)",
        ],
    },
    Migration {
        version: 10,
        // Loaded by `channelshift-api load-imd` (imd.rs); each load numbered
        // above the last, and readers take each LSOA's latest (argMax).
        name: "the Index of Multiple Deprivation decile of each LSOA, from a council's lookup file",
        statements: &["CREATE TABLE IF NOT EXISTS {rollups}.lsoa_imd (
                lsoa String,
                imd_decile UInt8,
                load UInt64
            ) ENGINE = ReplacingMergeTree(load)
            ORDER BY lsoa"],
    },
    Migration {
        version: 11,
        // The views see only rows inserted after they exist; contacts stored
        // before this migration reach the tables through `rebuild-rollups`.
        name: "contacts by journey and instant (first-contact resolution), contacts by wait (telephone), numeric settings",
        statements: &[
            "CREATE TABLE IF NOT EXISTS {rollups}.journey_contacts (
                council String,
                day Date,
                journey UInt64,
                contacted_at DateTime,
                service String,
                channel String,
                customer_type String,
                contacts UInt64
            ) ENGINE = SummingMergeTree
            PARTITION BY toYYYYMM(day)
            ORDER BY (council, day, journey, contacted_at, service, channel, customer_type)",
            concat!(
                "CREATE MATERIALIZED VIEW IF NOT EXISTS journey_contacts_rollup_mv TO {rollups}.journey_contacts AS",
                journey_contacts_select!(),
                journey_contacts_group_by!()
            ),
            "CREATE TABLE IF NOT EXISTS {rollups}.contact_wait_daily (
                council String,
                day Date,
                service String,
                channel String,
                customer_type String,
                outcome String,
                waited UInt8,
                wait UInt32,
                contacts UInt64
            ) ENGINE = SummingMergeTree
            PARTITION BY toYYYYMM(day)
            ORDER BY (council, day, service, channel, customer_type, outcome, waited, wait)",
            concat!(
                "CREATE MATERIALIZED VIEW IF NOT EXISTS contact_wait_daily_rollup_mv TO {rollups}.contact_wait_daily AS",
                contact_wait_daily_select!(),
                contact_wait_daily_group_by!()
            ),
            // Each council's numeric settings by name (`repeat_window_days`, …),
            // published with the rest of its definitions.
            "CREATE TABLE IF NOT EXISTS {rollups}.definitions_numbers (
                generation UInt64,
                council String,
                setting String,
                value Float64
            ) ENGINE = MergeTree
            ORDER BY (generation, council, setting)",
            "CREATE VIEW IF NOT EXISTS {rollups}.council_numbers AS
            SELECT council, setting, value
            FROM {rollups}.definitions_numbers
            WHERE generation = (SELECT max(generation) FROM {rollups}.definitions_generations)",
        ],
    },
    Migration {
        version: 12,
        // Like migration 11's views, this one sees only rows inserted after
        // it exists; `rebuild-rollups` fills it for contacts stored before.
        name: "contacts by local day, for first-contact resolution's kept days",
        statements: &[
            "CREATE TABLE IF NOT EXISTS {rollups}.journey_days (
                council String,
                day Date,
                contacts UInt64
            ) ENGINE = SummingMergeTree
            PARTITION BY toYYYYMM(day)
            ORDER BY (council, day)",
            concat!(
                "CREATE MATERIALIZED VIEW IF NOT EXISTS journey_days_rollup_mv TO {rollups}.journey_days AS",
                journey_days_select!(),
                journey_days_group_by!()
            ),
        ],
    },
    Migration {
        version: 13,
        // Its view sees only rows inserted after it exists, so it is read
        // only for the months `rollup_coverage` says it holds whole: all of
        // them if no contact was stored before the view (neither raw rows
        // nor, after retention dropped them, their daily rollup), else those from
        // the month after the one ten minutes from now (a contact may be
        // dated up to five minutes ahead of the clock that accepted it),
        // until `rebuild-rollups` fills the earlier months and says so.
        name: "contacts by local month, for month, quarter and year figures",
        statements: &[
            "CREATE TABLE IF NOT EXISTS {rollups}.contact_monthly (
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
            concat!(
                "CREATE MATERIALIZED VIEW IF NOT EXISTS contact_monthly_rollup_mv TO {rollups}.contact_monthly AS",
                contact_monthly_select!(),
                contact_daily_group_by!()
            ),
            // The first local day from which a rollup holds every contact;
            // readers take the earliest recorded. Run again (a crash half-way),
            // the insert records a later day, which changes nothing.
            "CREATE TABLE IF NOT EXISTS {rollups}.rollup_coverage (
                rollup String,
                from_day Date,
                recorded_at DateTime DEFAULT now()
            ) ENGINE = MergeTree
            ORDER BY (rollup, from_day)",
            "INSERT INTO {rollups}.rollup_coverage (rollup, from_day)
            SELECT 'contact_monthly',
                if((SELECT count() FROM contact_events) = 0
                        AND (SELECT count() FROM {rollups}.contact_daily) = 0,
                    toDate('1970-01-02'),
                    addMonths(toStartOfMonth(toDate(now() + 600, 'Europe/London')), 1))",
        ],
    },    Migration {
        version: 14,
        // Written by `channelshift-api settle-journeys` (journeys.rs), read
        // by the API and packs in place of judging a settled day again. A day
        // judged again adds rows under a higher `judging`; readers take each
        // day's highest. A header row (channel ''), written after the day's
        // cells, marks every judged day, so a day without journeys is known
        // to be judged. `definition` numbers the way journeys are judged:
        // readers take only the current one's rows.
        name: "settled days' first-contact resolution, judged once and stored",
        statements: &["CREATE TABLE IF NOT EXISTS {rollups}.journey_settled (
                council String,
                window_days UInt16,
                definition UInt16,
                day Date,
                judging UInt64,
                basis UInt64,
                channel String,
                service String,
                customer_type String,
                journeys UInt64,
                resolved UInt64,
                open UInt64,
                unlinked UInt64
            ) ENGINE = MergeTree
            PARTITION BY toYYYYMM(day)
            ORDER BY (council, window_days, definition, day, judging)"],
    },
    Migration {
        version: 15,
        // Written by `channelshift-api forecast` (forecasts.rs), read by the
        // scorecard, packs and the managers' dashboard: each run's rows are
        // the months projected to the year's end for each headline KPI (or
        // one row saying why a KPI has none). Readers take the newest run
        // of the latest history they may use.
        name: "year-end forecasts of the headline KPIs",
        statements: &["CREATE TABLE IF NOT EXISTS {rollups}.forecast (
                council String,
                year_end Date,
                history_to Date,
                run UInt64,
                made_at DateTime,
                kpi String,
                month Date,
                value Nullable(Float64),
                low80 Nullable(Float64),
                high80 Nullable(Float64),
                low95 Nullable(Float64),
                high95 Nullable(Float64),
                method String,
                backtest_mae Nullable(Float64),
                backtests UInt16,
                history_months UInt16,
                note String
            ) ENGINE = MergeTree
            PARTITION BY toYear(year_end)
            ORDER BY (council, year_end, history_to, run, kpi, month)"],
    },
    Migration {
        version: 16,
        // As contact_monthly (migration 13): its view sees only rows
        // inserted after it exists, so `rollup_coverage` says from which
        // month it holds every response (all of them if none was stored
        // before), until `rebuild-rollups` fills the earlier months.
        name: "survey responses by local month, for month, quarter and year figures",
        statements: &[
            "CREATE TABLE IF NOT EXISTS {rollups}.satisfaction_monthly (
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
            concat!(
                "CREATE MATERIALIZED VIEW IF NOT EXISTS satisfaction_monthly_rollup_mv TO {rollups}.satisfaction_monthly AS",
                satisfaction_monthly_select!(),
                satisfaction_daily_group_by!()
            ),
            "INSERT INTO {rollups}.rollup_coverage (rollup, from_day)
            SELECT 'satisfaction_monthly',
                if((SELECT count() FROM satisfaction_responses) = 0
                        AND (SELECT count() FROM {rollups}.satisfaction_daily) = 0,
                    toDate('1970-01-02'),
                    addMonths(toStartOfMonth(toDate(now() + 600, 'Europe/London')), 1))",
        ],
    },
];

/// Where a migration's statements name the rollups' database.
pub const ROLLUPS_PLACEHOLDER: &str = "{rollups}";

#[derive(Row, Deserialize)]
struct Applied {
    version: u32,
}

impl Store {
    /// Creates the database if needed and applies the migrations not yet
    /// recorded. Returns the versions this call applied. A database with
    /// every migration applied is only read, so a replica can start while
    /// the server refuses writes (read-only for maintenance, say).
    pub async fn migrate(&self) -> Result<Vec<u32>, StoreError> {
        self.migrate_through(u32::MAX).await
    }

    /// [`Store::migrate`], stopping after migration `last`.
    pub async fn migrate_through(&self, last: u32) -> Result<Vec<u32>, StoreError> {
        let wanted = MIGRATIONS
            .iter()
            .filter(|migration| migration.version <= last)
            .count();
        if self.applied_migrations().await?.len() >= wanted {
            return Ok(Vec::new());
        }
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
        let applied = self.applied_migrations().await?;
        let mut now_applied = Vec::new();
        for migration in MIGRATIONS {
            if applied.contains(&migration.version) || migration.version > last {
                continue;
            }
            self.run_statements(migration).await?;
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

/// The table a `RENAME TABLE <table> TO …` statement moves.
fn renamed_table(statement: &str) -> Option<&str> {
    statement
        .strip_prefix("RENAME TABLE ")?
        .split_whitespace()
        .next()
}

impl Store {
    /// Runs `migration`'s statements, without recording it: what `migrate`
    /// does for each migration, and what it does again after a crash half-way.
    pub async fn run_statements(&self, migration: &Migration) -> Result<(), StoreError> {
        for statement in migration.statements {
            let statement = statement.replace(ROLLUPS_PLACEHOLDER, &self.rollups_database());
            if let Some(table) = renamed_table(&statement) {
                if !self.has_table(table).await? {
                    continue;
                }
            }
            self.client.query(&statement).execute().await?;
        }
        Ok(())
    }

    /// Whether the store's database has a table (or view) called `name`.
    async fn has_table(&self, name: &str) -> Result<bool, StoreError> {
        #[derive(Row, Deserialize)]
        struct Exists {
            n: u64,
        }
        Ok(self
            .client
            .clone()
            .with_database("system")
            .query("SELECT count() AS n FROM system.tables WHERE database = ? AND name = ?")
            .bind(self.database())
            .bind(name)
            .fetch_one::<Exists>()
            .await?
            .n
            > 0)
    }

    /// The versions recorded in `schema_migrations`; none when the database or
    /// the table does not exist yet.
    async fn applied_migrations(&self) -> Result<Vec<u32>, StoreError> {
        if !self.has_table("schema_migrations").await? {
            return Ok(Vec::new());
        }
        let mut applied: Vec<u32> = self
            .client
            .query("SELECT DISTINCT version FROM schema_migrations")
            .fetch_all::<Applied>()
            .await?
            .into_iter()
            .map(|row| row.version)
            .collect();
        applied.retain(|version| {
            MIGRATIONS
                .iter()
                .any(|migration| migration.version == *version)
        });
        Ok(applied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The views that feed rollups (not the id indexes), as (target, DDL).
    fn rollup_views() -> Vec<(&'static str, &'static str)> {
        MIGRATIONS
            .iter()
            .flat_map(|migration| migration.statements.iter().copied())
            .filter_map(|statement| {
                let rest = statement.strip_prefix("CREATE MATERIALIZED VIEW IF NOT EXISTS ")?;
                let target = rest.split_whitespace().nth(2)?;
                (!target.ends_with("_ids") && !target.ends_with(".ingest_freshness"))
                    .then_some((target, statement))
            })
            .collect()
    }

    #[test]
    fn every_rollup_is_fed_by_one_view_into_the_rollups_database() {
        let into_rollups: Vec<&str> = rollup_views()
            .into_iter()
            .filter_map(|(target, _)| target.strip_prefix("{rollups}."))
            .collect();
        let mut tables: Vec<&str> = ROLLUPS.iter().map(|rollup| rollup.table).collect();
        let mut fed = into_rollups.clone();
        tables.sort_unstable();
        fed.sort_unstable();
        assert_eq!(fed, tables);
    }

    #[test]
    fn a_rename_names_the_table_it_moves() {
        assert_eq!(
            renamed_table("RENAME TABLE contact_daily TO x_rollups.contact_daily"),
            Some("contact_daily")
        );
        assert_eq!(renamed_table("DROP TABLE IF EXISTS contact_daily_mv"), None);
    }

    /// Rollup views' targets without the rollups' database.
    fn rollup_view_tables() -> Vec<(&'static str, &'static str)> {
        rollup_views()
            .into_iter()
            .map(|(target, statement)| {
                (
                    target.strip_prefix("{rollups}.").unwrap_or(target),
                    statement,
                )
            })
            .collect()
    }

    #[test]
    fn every_rollup_view_is_rebuilt_with_its_own_select() {
        let views = rollup_view_tables();
        for rollup in ROLLUPS {
            assert!(
                views.iter().any(|(target, _)| *target == rollup.table),
                "{} is in ROLLUPS but no view feeds it",
                rollup.table
            );
        }
        for (target, statement) in views {
            let rollup = ROLLUPS
                .iter()
                .find(|rollup| rollup.table == target)
                .unwrap_or_else(|| panic!("{target} is fed by a view but is not in ROLLUPS"));
            assert!(
                statement.ends_with(&format!("AS{}{}", rollup.select, rollup.group_by)),
                "{target}'s view does not run ROLLUPS' select"
            );
            assert!(rollup.select.ends_with(&format!("FROM {}", rollup.source)));
            // The local day, or its month's first day (same partition).
            assert!(
                rollup
                    .select
                    .contains(&format!("{} AS day", rollup.local_day))
                    || rollup
                        .select
                        .contains(&format!("toStartOfMonth({}) AS day", rollup.local_day)),
                "{target}'s day is not its local_day"
            );
            assert!(rollup.local_day.contains(rollup.source_time));
        }
    }
}
