-- Channelshift on a ClickHouse cluster: one shard, N replicas.
-- Generated from the store's migrations by tests/tests/cluster_ddl.rs; do not
-- edit by hand. Needs ClickHouse 22.x or later with Keeper/ZooKeeper, an
-- Atomic database, and the macros {cluster}, {shard} and {replica} in
-- each server's config. Run once, on any server, before ingest first starts:
--   clickhouse-client --multiquery --database channelshift < this-file.sql
-- (after CREATE DATABASE channelshift ON CLUSTER '{cluster}'). Ingest then finds every
-- migration recorded and every table present. The rollups live in
-- channelshift_rollups (migration 8), the database the dashboards' user
-- may read; a store database of another name has `<name>_rollups`.
-- Same table names as a single server, Replicated engines: ingest, the API
-- and Grafana work unchanged against any replica. Every ingest replica
-- writes through one server, and the writer's profile sets
-- insert_quorum and select_sequential_consistency (deploy/SCALING.md).
-- The *_staging tables stay local to each server. rebuild-rollups' staging
-- table (CREATE TABLE ... AS the rollup) gets its own {uuid} replication
-- path, so it should too; not yet tried on a cluster (deploy/SCALING.md).

-- Applied migrations, one replication group for the whole cluster.
CREATE TABLE IF NOT EXISTS schema_migrations ON CLUSTER '{cluster}' (
    version UInt32,
    name String,
    applied_at DateTime DEFAULT now()
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{uuid}/all', '{replica}')
ORDER BY version;

-- Migration 1: contact events, their id index and daily rollup
CREATE TABLE IF NOT EXISTS contact_events ON CLUSTER '{cluster}' (
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
) ENGINE = ReplicatedMergeTree
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (council, occurred_at, event_id);

CREATE TABLE IF NOT EXISTS contact_event_ids ON CLUSTER '{cluster}' (
    council String,
    event_id String
) ENGINE = ReplicatedMergeTree
ORDER BY (council, event_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS contact_event_ids_mv ON CLUSTER '{cluster}' TO contact_event_ids
AS SELECT council, event_id FROM contact_events;

CREATE TABLE IF NOT EXISTS contact_daily ON CLUSTER '{cluster}' (
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
) ENGINE = ReplicatedSummingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (council, day, service, channel, customer_type, interaction, outcome, assisted)
SETTINGS replicated_deduplication_window = 0;

CREATE MATERIALIZED VIEW IF NOT EXISTS contact_daily_mv ON CLUSTER '{cluster}' TO contact_daily AS
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
GROUP BY council, day, service, channel, customer_type, interaction, outcome, assisted;

INSERT INTO schema_migrations (version, name) VALUES (1, 'contact events, their id index and daily rollup');

-- Migration 2: satisfaction responses, their id index and daily rollup
CREATE TABLE IF NOT EXISTS satisfaction_responses ON CLUSTER '{cluster}' (
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
) ENGINE = ReplicatedMergeTree
PARTITION BY toYYYYMM(responded_at)
ORDER BY (council, responded_at, response_id);

CREATE TABLE IF NOT EXISTS satisfaction_response_ids ON CLUSTER '{cluster}' (
    council String,
    response_id String
) ENGINE = ReplicatedMergeTree
ORDER BY (council, response_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS satisfaction_response_ids_mv ON CLUSTER '{cluster}'
TO satisfaction_response_ids
AS SELECT council, response_id FROM satisfaction_responses;

CREATE TABLE IF NOT EXISTS satisfaction_daily ON CLUSTER '{cluster}' (
    council String,
    day Date,
    service String,
    channel String,
    customer_type String,
    instrument String,
    score UInt8,
    responses UInt64
) ENGINE = ReplicatedSummingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (council, day, service, channel, customer_type, instrument, score)
SETTINGS replicated_deduplication_window = 0;

CREATE MATERIALIZED VIEW IF NOT EXISTS satisfaction_daily_mv ON CLUSTER '{cluster}' TO satisfaction_daily AS
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
GROUP BY council, day, service, channel, customer_type, instrument, score;

INSERT INTO schema_migrations (version, name) VALUES (2, 'satisfaction responses, their id index and daily rollup');

-- Migration 3: ingest checkpoints: the next Kafka offset per partition, kept with the rows
CREATE TABLE IF NOT EXISTS ingest_checkpoints ON CLUSTER '{cluster}' (
    topic String,
    partition Int32,
    next_offset Int64,
    written_at DateTime
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}', next_offset)
ORDER BY (topic, partition);

INSERT INTO schema_migrations (version, name) VALUES (3, 'ingest checkpoints: the next Kafka offset per partition, kept with the rows');

-- Migration 4: contacts by local day and area (ward, LSOA), for digital-exclusion hot spots
CREATE TABLE IF NOT EXISTS contact_area_daily ON CLUSTER '{cluster}' (
    council String,
    day Date,
    ward String,
    lsoa String,
    channel String,
    assisted UInt8,
    interaction String,
    outcome String,
    contacts UInt64
) ENGINE = ReplicatedSummingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (council, day, ward, lsoa, channel, assisted, interaction, outcome)
SETTINGS replicated_deduplication_window = 0;

CREATE MATERIALIZED VIEW IF NOT EXISTS contact_area_daily_mv ON CLUSTER '{cluster}' TO contact_area_daily AS
SELECT
    council,
    toDate(occurred_at, 'Europe/London') AS day,
    ward,
    lsoa,
    channel,
    assisted,
    interaction,
    outcome,
    count() AS contacts
FROM contact_events
GROUP BY council, day, ward, lsoa, channel, assisted, interaction, outcome;

INSERT INTO schema_migrations (version, name) VALUES (4, 'contacts by local day and area (ward, LSOA), for digital-exclusion hot spots');

-- Migration 5: id indexes written by ingest after each insert, not by views
DROP TABLE IF EXISTS contact_event_ids_mv ON CLUSTER '{cluster}';

DROP TABLE IF EXISTS satisfaction_response_ids_mv ON CLUSTER '{cluster}';

INSERT INTO schema_migrations (version, name) VALUES (5, 'id indexes written by ingest after each insert, not by views');

-- Migration 6: fences: one writer per Kafka partition, checked by the server in the INSERT
CREATE TABLE IF NOT EXISTS ingest_fences ON CLUSTER '{cluster}' (
    stream String,
    partition Int32,
    fence UInt64,
    owner String,
    claimed_at DateTime
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}', fence)
ORDER BY (stream, partition);

CREATE TABLE IF NOT EXISTS contact_events_staging ON CLUSTER '{cluster}' (
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
ORDER BY tuple();

CREATE TABLE IF NOT EXISTS satisfaction_responses_staging ON CLUSTER '{cluster}' (
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
ORDER BY tuple();

INSERT INTO schema_migrations (version, name) VALUES (6, 'fences: one writer per Kafka partition, checked by the server in the INSERT');

-- Migration 7: raw retention: the UTC months of raw rows dropped, per raw table
CREATE TABLE IF NOT EXISTS raw_retention ON CLUSTER '{cluster}' (
    raw_table String,
    through UInt32,
    purged_at DateTime
) ENGINE = ReplicatedMergeTree
ORDER BY raw_table;

INSERT INTO schema_migrations (version, name) VALUES (7, 'raw retention: the UTC months of raw rows dropped, per raw table');

-- Migration 8: rollups in a database of their own, the only one the dashboards' user may read
CREATE DATABASE IF NOT EXISTS channelshift_rollups ON CLUSTER '{cluster}';

RENAME TABLE contact_daily TO channelshift_rollups.contact_daily ON CLUSTER '{cluster}';

CREATE MATERIALIZED VIEW IF NOT EXISTS contact_daily_rollup_mv ON CLUSTER '{cluster}' TO channelshift_rollups.contact_daily AS
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
GROUP BY council, day, service, channel, customer_type, interaction, outcome, assisted;

DROP TABLE IF EXISTS contact_daily_mv ON CLUSTER '{cluster}';

RENAME TABLE satisfaction_daily TO channelshift_rollups.satisfaction_daily ON CLUSTER '{cluster}';

CREATE MATERIALIZED VIEW IF NOT EXISTS satisfaction_daily_rollup_mv ON CLUSTER '{cluster}' TO channelshift_rollups.satisfaction_daily AS
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
GROUP BY council, day, service, channel, customer_type, instrument, score;

DROP TABLE IF EXISTS satisfaction_daily_mv ON CLUSTER '{cluster}';

RENAME TABLE contact_area_daily TO channelshift_rollups.contact_area_daily ON CLUSTER '{cluster}';

CREATE MATERIALIZED VIEW IF NOT EXISTS contact_area_daily_rollup_mv ON CLUSTER '{cluster}' TO channelshift_rollups.contact_area_daily AS
SELECT
    council,
    toDate(occurred_at, 'Europe/London') AS day,
    ward,
    lsoa,
    channel,
    assisted,
    interaction,
    outcome,
    count() AS contacts
FROM contact_events
GROUP BY council, day, ward, lsoa, channel, assisted, interaction, outcome;

DROP TABLE IF EXISTS contact_area_daily_mv ON CLUSTER '{cluster}';

CREATE TABLE IF NOT EXISTS channelshift_rollups.ingest_freshness ON CLUSTER '{cluster}' (
    raw_table String,
    council String,
    newest_ingested_at DateTime
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}', newest_ingested_at)
ORDER BY (raw_table, council);

CREATE MATERIALIZED VIEW IF NOT EXISTS contact_events_freshness_mv ON CLUSTER '{cluster}' TO channelshift_rollups.ingest_freshness AS
SELECT 'contact_events' AS raw_table, council, max(ingested_at) AS newest_ingested_at
FROM contact_events GROUP BY council;

CREATE MATERIALIZED VIEW IF NOT EXISTS satisfaction_responses_freshness_mv ON CLUSTER '{cluster}' TO channelshift_rollups.ingest_freshness AS
SELECT 'satisfaction_responses' AS raw_table, council, max(ingested_at) AS newest_ingested_at
FROM satisfaction_responses GROUP BY council;

INSERT INTO channelshift_rollups.ingest_freshness
SELECT 'contact_events' AS raw_table, council, max(ingested_at) AS newest_ingested_at
FROM contact_events GROUP BY council;

INSERT INTO channelshift_rollups.ingest_freshness
SELECT 'satisfaction_responses' AS raw_table, council, max(ingested_at) AS newest_ingested_at
FROM satisfaction_responses GROUP BY council;

INSERT INTO schema_migrations (version, name) VALUES (8, 'rollups in a database of their own, the only one the dashboards\' user may read');

-- Migration 9: each council's KPI definitions, for the dashboards to compute with
CREATE TABLE IF NOT EXISTS channelshift_rollups.definitions_generations ON CLUSTER '{cluster}' (
    generation UInt64,
    published_at DateTime,
    fingerprint String
) ENGINE = ReplicatedMergeTree
ORDER BY generation;

CREATE TABLE IF NOT EXISTS channelshift_rollups.definitions_councils ON CLUSTER '{cluster}' (
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
) ENGINE = ReplicatedMergeTree
ORDER BY (generation, council);

CREATE TABLE IF NOT EXISTS channelshift_rollups.definitions_channel_classes ON CLUSTER '{cluster}' (
    generation UInt64,
    council String,
    channel String,
    channel_class String
) ENGINE = ReplicatedMergeTree
ORDER BY (generation, council, channel);

CREATE TABLE IF NOT EXISTS channelshift_rollups.definitions_unit_costs ON CLUSTER '{cluster}' (
    generation UInt64,
    council String,
    channel String,
    effective_from Date,
    effective_to Date,
    pence Int64
) ENGINE = ReplicatedMergeTree
ORDER BY (generation, council, channel, effective_from);

CREATE TABLE IF NOT EXISTS channelshift_rollups.definitions_targets ON CLUSTER '{cluster}' (
    generation UInt64,
    council String,
    kpi String,
    target Float64,
    tolerance Float64,
    polarity String
) ENGINE = ReplicatedMergeTree
ORDER BY (generation, council, kpi);

CREATE VIEW IF NOT EXISTS channelshift_rollups.council_settings ON CLUSTER '{cluster}' AS
SELECT council, name, take_up_definition, suppression_threshold,
    satisfaction_instrument, satisfaction_measure, has_baseline, baseline_from, baseline_to
FROM channelshift_rollups.definitions_councils
WHERE generation = (SELECT max(generation) FROM channelshift_rollups.definitions_generations);

CREATE VIEW IF NOT EXISTS channelshift_rollups.council_channel_classes ON CLUSTER '{cluster}' AS
SELECT council, channel, channel_class
FROM channelshift_rollups.definitions_channel_classes
WHERE generation = (SELECT max(generation) FROM channelshift_rollups.definitions_generations);

CREATE VIEW IF NOT EXISTS channelshift_rollups.council_unit_costs ON CLUSTER '{cluster}' AS
SELECT council, channel, effective_from, effective_to, pence
FROM channelshift_rollups.definitions_unit_costs
WHERE generation = (SELECT max(generation) FROM channelshift_rollups.definitions_generations);

CREATE VIEW IF NOT EXISTS channelshift_rollups.council_targets ON CLUSTER '{cluster}' AS
SELECT council, kpi, target, tolerance, polarity
FROM channelshift_rollups.definitions_targets
WHERE generation = (SELECT max(generation) FROM channelshift_rollups.definitions_generations);

INSERT INTO schema_migrations (version, name) VALUES (9, 'each council\'s KPI definitions, for the dashboards to compute with');

-- Migration 10: the Index of Multiple Deprivation decile of each LSOA, from a council's lookup file
CREATE TABLE IF NOT EXISTS channelshift_rollups.lsoa_imd ON CLUSTER '{cluster}' (
    lsoa String,
    imd_decile UInt8,
    load UInt64
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}', load)
ORDER BY lsoa;

INSERT INTO schema_migrations (version, name) VALUES (10, 'the Index of Multiple Deprivation decile of each LSOA, from a council\'s lookup file');

-- Migration 11: contacts by journey and instant (first-contact resolution), contacts by wait (telephone), numeric settings
CREATE TABLE IF NOT EXISTS channelshift_rollups.journey_contacts ON CLUSTER '{cluster}' (
    council String,
    day Date,
    journey UInt64,
    contacted_at DateTime,
    service String,
    channel String,
    customer_type String,
    contacts UInt64
) ENGINE = ReplicatedSummingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (council, day, journey, contacted_at, service, channel, customer_type);

CREATE MATERIALIZED VIEW IF NOT EXISTS journey_contacts_rollup_mv ON CLUSTER '{cluster}' TO channelshift_rollups.journey_contacts AS
SELECT
    council,
    toDate(occurred_at, 'Europe/London') AS day,
    if(journey_id = '', toUInt64(0), sipHash64(journey_id)) AS journey,
    if(journey_id = '', toDateTime(86400), occurred_at) AS contacted_at,
    service,
    channel,
    customer_type,
    count() AS contacts
FROM contact_events
GROUP BY council, day, journey, contacted_at, service, channel, customer_type;

CREATE TABLE IF NOT EXISTS channelshift_rollups.contact_wait_daily ON CLUSTER '{cluster}' (
    council String,
    day Date,
    service String,
    channel String,
    customer_type String,
    outcome String,
    waited UInt8,
    wait UInt32,
    contacts UInt64
) ENGINE = ReplicatedSummingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (council, day, service, channel, customer_type, outcome, waited, wait);

CREATE MATERIALIZED VIEW IF NOT EXISTS contact_wait_daily_rollup_mv ON CLUSTER '{cluster}' TO channelshift_rollups.contact_wait_daily AS
SELECT
    council,
    toDate(occurred_at, 'Europe/London') AS day,
    service,
    channel,
    customer_type,
    outcome,
    toUInt8(isNotNull(wait_seconds)) AS waited,
    toUInt32(ifNull(wait_seconds, 0)) AS wait,
    count() AS contacts
FROM contact_events
GROUP BY council, day, service, channel, customer_type, outcome, waited, wait;

CREATE TABLE IF NOT EXISTS channelshift_rollups.definitions_numbers ON CLUSTER '{cluster}' (
    generation UInt64,
    council String,
    setting String,
    value Float64
) ENGINE = ReplicatedMergeTree
ORDER BY (generation, council, setting);

CREATE VIEW IF NOT EXISTS channelshift_rollups.council_numbers ON CLUSTER '{cluster}' AS
SELECT council, setting, value
FROM channelshift_rollups.definitions_numbers
WHERE generation = (SELECT max(generation) FROM channelshift_rollups.definitions_generations);

INSERT INTO schema_migrations (version, name) VALUES (11, 'contacts by journey and instant (first-contact resolution), contacts by wait (telephone), numeric settings');

-- Migration 12: contacts by local day, for first-contact resolution's kept days
CREATE TABLE IF NOT EXISTS channelshift_rollups.journey_days ON CLUSTER '{cluster}' (
    council String,
    day Date,
    contacts UInt64
) ENGINE = ReplicatedSummingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (council, day);

CREATE MATERIALIZED VIEW IF NOT EXISTS journey_days_rollup_mv ON CLUSTER '{cluster}' TO channelshift_rollups.journey_days AS
SELECT
    council,
    toDate(occurred_at, 'Europe/London') AS day,
    count() AS contacts
FROM contact_events
GROUP BY council, day;

INSERT INTO schema_migrations (version, name) VALUES (12, 'contacts by local day, for first-contact resolution\'s kept days');

-- Migration 13: contacts by local month, for month, quarter and year figures
CREATE TABLE IF NOT EXISTS channelshift_rollups.contact_monthly ON CLUSTER '{cluster}' (
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
) ENGINE = ReplicatedSummingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (council, day, service, channel, customer_type, interaction, outcome, assisted);

CREATE MATERIALIZED VIEW IF NOT EXISTS contact_monthly_rollup_mv ON CLUSTER '{cluster}' TO channelshift_rollups.contact_monthly AS
SELECT
    council,
    toStartOfMonth(toDate(occurred_at, 'Europe/London')) AS day,
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
GROUP BY council, day, service, channel, customer_type, interaction, outcome, assisted;

CREATE TABLE IF NOT EXISTS channelshift_rollups.rollup_coverage ON CLUSTER '{cluster}' (
    rollup String,
    from_day Date,
    recorded_at DateTime DEFAULT now()
) ENGINE = ReplicatedMergeTree
ORDER BY (rollup, from_day);

INSERT INTO channelshift_rollups.rollup_coverage (rollup, from_day)
SELECT 'contact_monthly',
    if((SELECT count() FROM contact_events) = 0
            AND (SELECT count() FROM channelshift_rollups.contact_daily) = 0,
        toDate('1970-01-02'),
        addMonths(toStartOfMonth(toDate(now() + 600, 'Europe/London')), 1));

INSERT INTO schema_migrations (version, name) VALUES (13, 'contacts by local month, for month, quarter and year figures');

-- Migration 14: settled days' first-contact resolution, judged once and stored
CREATE TABLE IF NOT EXISTS channelshift_rollups.journey_settled ON CLUSTER '{cluster}' (
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
) ENGINE = ReplicatedMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (council, window_days, definition, day, judging);

INSERT INTO schema_migrations (version, name) VALUES (14, 'settled days\' first-contact resolution, judged once and stored');

-- Migration 15: year-end forecasts of the headline KPIs
CREATE TABLE IF NOT EXISTS channelshift_rollups.forecast ON CLUSTER '{cluster}' (
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
) ENGINE = ReplicatedMergeTree
PARTITION BY toYear(year_end)
ORDER BY (council, year_end, history_to, run, kpi, month);

INSERT INTO schema_migrations (version, name) VALUES (15, 'year-end forecasts of the headline KPIs');

-- Migration 16: survey responses by local month, for month, quarter and year figures
CREATE TABLE IF NOT EXISTS channelshift_rollups.satisfaction_monthly ON CLUSTER '{cluster}' (
    council String,
    day Date,
    service String,
    channel String,
    customer_type String,
    instrument String,
    score UInt8,
    responses UInt64
) ENGINE = ReplicatedSummingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (council, day, service, channel, customer_type, instrument, score);

CREATE MATERIALIZED VIEW IF NOT EXISTS satisfaction_monthly_rollup_mv ON CLUSTER '{cluster}' TO channelshift_rollups.satisfaction_monthly AS
SELECT
    council,
    toStartOfMonth(toDate(responded_at, 'Europe/London')) AS day,
    service,
    channel,
    customer_type,
    instrument,
    score,
    count() AS responses
FROM satisfaction_responses
GROUP BY council, day, service, channel, customer_type, instrument, score;

INSERT INTO channelshift_rollups.rollup_coverage (rollup, from_day)
SELECT 'satisfaction_monthly',
    if((SELECT count() FROM satisfaction_responses) = 0
            AND (SELECT count() FROM channelshift_rollups.satisfaction_daily) = 0,
        toDate('1970-01-02'),
        addMonths(toStartOfMonth(toDate(now() + 600, 'Europe/London')), 1));

INSERT INTO schema_migrations (version, name) VALUES (16, 'survey responses by local month, for month, quarter and year figures');
