//! Current ClickHouse (26.x) against the test stack's 18.16, statement by
//! statement, through the store's own code: the same raw rows go into both,
//! and every query the store can build must run on both and answer the same.
//!
//! The current engine is chdb (ClickHouse as a library, from PyPI) behind
//! `tests/chdb/server.py`, which speaks ClickHouse's HTTP interface, so the
//! store's client talks to it as to a server, with row validation on: a
//! result column whose name or type differs from the Rust row struct that
//! reads it fails the fetch. `cargo xtask test` starts it and runs these
//! tests (they are ignored in the plain suite, which has no such server):
//!
//! ```sh
//! CHANNELSHIFT_CURRENT_CLICKHOUSE_URL=http://127.0.0.1:PORT \
//!   cargo test -p channelshift-tests --test current_engine -- --ignored
//! ```

use anyhow::{bail, Context, Result};
use channelshift_contract::{Channel, CouncilCode, CustomerType, Instrument, ServiceSlug};
use channelshift_store::StoredForecasts;
use channelshift_store::{
    months_per_insert, Area, Bucket, CellFilter, Checkpoint, ContactRow, CutOff, Fencing, Keys,
    Record, SettledMonths, Source, Staged, Store, JOURNEY_DEFINITION, MIGRATIONS,
};
use channelshift_tests::clickhouse::current_engine;
use channelshift_tests::grafana::{expand_sql, load_dashboards, TimeRange, CLICKHOUSE};
use channelshift_tests::rollups::{
    assert_rollups_equal_their_view_over_raw, assert_same_rows, at, contact, direct_aggregation,
    forecast_record as record, raw_data, response, rollup_content, tsv, COUNCIL, LAYOUTS,
};
use channelshift_tests::Scope;
use chrono::{NaiveDate, TimeDelta};
use std::collections::BTreeMap;

/// The current engine's store for `scope`'s database name.
async fn current_store(scope: &Scope) -> Result<Store> {
    let store = Store::connect(&current_engine(&scope.database)?).await?;
    let (major, _) = store.server_version();
    anyhow::ensure!(major >= 24, "{major}.x is not a current ClickHouse");
    Ok(store)
}

/// Both engines, migrated, each holding the same rows: 2,000 contacts and
/// 600 responses over 2025 (the rollup tests' data) and, with `history`, a
/// back-load of two contacts a month from January 2015 to October 2025
/// (130 months).
struct Engines {
    scope: Scope,
    old: Store,
    current: Store,
}

impl Engines {
    async fn loaded(test: &str, history: bool) -> Result<Self> {
        let scope = Scope::new(test);
        let old = scope.store().await?;
        let current = current_store(&scope).await?;
        let data = raw_data(2_000, 600);
        let history = if history { back_load(130) } else { Vec::new() };
        for store in [&old, &current] {
            store.migrate().await?;
            store
                .insert_contacts(&mut data.contacts.clone(), Fencing::Off)
                .await?;
            store
                .insert_contacts(&mut history.clone(), Fencing::Off)
                .await?;
            store
                .insert_satisfaction(&mut data.responses.clone(), Fencing::Off)
                .await?;
            // What ingest does once an INSERT has succeeded.
            let ids: Vec<&str> = data
                .contacts
                .iter()
                .chain(&history)
                .map(|row| row.event_id.as_str())
                .collect();
            store
                .reindex_raw_ids(Record::Contact, COUNCIL, &ids, (0, u32::MAX), None)
                .await?;
            let ids: Vec<&str> = data
                .responses
                .iter()
                .map(|row| row.response_id.as_str())
                .collect();
            store
                .reindex_raw_ids(Record::Satisfaction, COUNCIL, &ids, (0, u32::MAX), None)
                .await?;
            // The definitions the dashboards compute with, not the defaults.
            let definitions = definitions()?;
            store
                .publish_definitions(&definitions, "a-fingerprint")
                .await?;
            assert_eq!(
                store.published_definitions().await?.as_deref(),
                Some("a-fingerprint")
            );
            // An IMD lookup, loaded twice: the later load wins.
            store.load_imd_deciles(&[("E01000001".into(), 3)]).await?;
            store
                .load_imd_deciles(&[("E01000001".into(), 4), ("E01000002".into(), 9)])
                .await?;
            let lsoas = ["E01000001".to_string(), "E01000003".to_string()];
            assert_eq!(
                store.imd_deciles(&lsoas).await?,
                BTreeMap::from([("E01000001".to_string(), 4)])
            );
        }
        Ok(Self {
            scope,
            old,
            current,
        })
    }

    async fn drop_databases(self) -> Result<()> {
        for drop in self.scope.drop_statements() {
            self.current.client().query(&drop).execute().await?;
        }
        self.scope.drop_database().await
    }
}

/// [`COUNCIL`]'s definitions: kiosk assisted, the 2014 take-up definition,
/// a cost for every channel (one changing mid-year) and targets.
/// 2025-08-01T00:00:00Z.
const JUDGED_AT: i64 = 1_754_006_400;

fn definitions() -> Result<channelshift_store::Definitions> {
    let mut unit_costs: Vec<serde_json::Value> = Channel::ALL
        .iter()
        .enumerate()
        .map(|(i, channel)| {
            serde_json::json!({"channel": channel.as_str(), "from": "2012-04-01",
                               "pounds": format!("{}.{:02}", i + 1, i * 7 % 100)})
        })
        .collect();
    unit_costs
        .push(serde_json::json!({"channel": "phone", "from": "2025-05-01", "pounds": "3.10"}));
    let kpi: channelshift_api::config::KpiSettings = serde_json::from_value(serde_json::json!({
        "take_up_definition": "gds_2014",
        "suppression_threshold": 3,
        "baseline": {"from": "2025-01-01", "to": "2025-03-31"},
        "channel_classes": {"kiosk": "digital_assisted"},
        "unit_costs": unit_costs,
        "repeat_window_days": 10,
        "savings_profile": [5, 5, 5, 10, 10, 10, 10, 10, 10, 10, 10, 5],
        "targets": {
            "efficiency-savings": {"target": 400.0, "tolerance": 50.0, "polarity": "higher_is_better"},
            "digital-take-up": {"target": 45.0, "tolerance": 5.0, "polarity": "higher_is_better"},
            "cost-per-transaction": {"target": 2.5, "tolerance": 0.5, "polarity": "lower_is_better"}
        }
    }))?;
    let blocks = serde_json::from_value(serde_json::json!({COUNCIL: {"name": "A council"}}))?;
    Ok(channelshift_reports::Councils::new(&kpi, &blocks)?.definitions())
}

/// Two contacts a month, at noon on the 3rd and 23:30 UTC on the last day
/// (the next day in London in summer), for `months` months from January 2015.
fn back_load(months: u32) -> Vec<ContactRow> {
    let first = NaiveDate::from_ymd_opt(2015, 1, 1).expect("a date");
    let mut rows = Vec::new();
    for month in 0..months {
        let start = first + chrono::Months::new(month);
        let end = start + chrono::Months::new(1) - TimeDelta::days(1);
        for (n, when) in [start.and_hms_opt(12, 0, 0), end.and_hms_opt(23, 30, 0)]
            .into_iter()
            .enumerate()
        {
            let i = 500_000 + 2 * month as usize + n;
            rows.push(contact(i, when.expect("a time").and_utc()));
        }
    }
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs ClickHouse 26 (chdb): cargo xtask test runs it"]
async fn every_migration_runs_and_runs_again_on_the_current_engine() -> Result<()> {
    let scope = Scope::new("current-migrations");
    let store = current_store(&scope).await?;
    // Each migration, then its statements again, as a migration cut short
    // half-way is run again when the next replica starts.
    let mut applied = Vec::new();
    for migration in MIGRATIONS {
        applied.extend(store.migrate_through(migration.version).await?);
        store
            .run_statements(migration)
            .await
            .with_context(|| format!("migration {} again", migration.version))?;
    }
    let versions: Vec<u32> = MIGRATIONS.iter().map(|m| m.version).collect();
    assert_eq!(applied, versions);
    assert!(store.migrate().await?.is_empty(), "nothing left to apply");
    for drop in scope.drop_statements() {
        store.client().query(&drop).execute().await?;
    }
    Ok(())
}

/// A database with rows from before migration 8 keeps them when its
/// rollups move to their own database, and later rows reach them there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs ClickHouse 26 (chdb): cargo xtask test runs it"]
async fn moving_the_rollups_keeps_their_rows_and_their_feed_on_both_engines() -> Result<()> {
    let scope = Scope::new("current-move-rollups");
    let old = scope.store().await?;
    let current = current_store(&scope).await?;
    let data = raw_data(300, 60);
    let (before, after) = data.contacts.split_at(200);
    for store in [&old, &current] {
        store.migrate_through(7).await?;
        store
            .insert_contacts(&mut before.to_vec(), Fencing::Off)
            .await?;
        store
            .insert_satisfaction(&mut data.responses.clone(), Fencing::Off)
            .await?;
        assert_eq!(store.migrate_through(8).await?, [8]);
        assert_eq!(store.rollup_total(Record::Contact).await?, 200);
        assert_eq!(
            store.rollup_total(Record::Satisfaction).await?,
            data.responses.len() as u64
        );
        store
            .insert_contacts(&mut after.to_vec(), Fencing::Off)
            .await?;
        assert_eq!(
            store.rollup_total(Record::Contact).await?,
            data.contacts.len() as u64
        );
        // The rollups of migrations up to 8.
        for layout in &LAYOUTS[..3] {
            assert_eq!(
                rollup_content(store, layout).await?,
                direct_aggregation(store, layout).await?,
                "{} after the move",
                layout.table
            );
        }
    }
    for drop in scope.drop_statements() {
        current.client().query(&drop).execute().await?;
    }
    scope.drop_database().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs ClickHouse 26 (chdb): cargo xtask test runs it"]
async fn a_back_load_of_130_months_is_split_and_stored_once_on_both_engines() -> Result<()> {
    let scope = Scope::new("current-backload");
    let old = scope.store().await?;
    let current = current_store(&scope).await?;
    let history = back_load(130);
    // The limit is real on the current engine: one INSERT of it all is refused.
    current.migrate().await?;
    // One INSERT of all 130 months into the raw table, from one stage.
    let mut staged = current
        .client()
        .insert::<ContactRow>("contact_events_staging")
        .await?;
    for row in &history {
        staged
            .write(&ContactRow {
                stage: 1,
                ..row.clone()
            })
            .await?;
    }
    staged.end().await?;
    let refused = current
        .client()
        .query(
            "INSERT INTO contact_events \
             SELECT * EXCEPT (fence, stage) FROM contact_events_staging WHERE stage = 1",
        )
        .execute()
        .await;
    let message = format!("{:?}", refused.err().context("one INSERT of 130 months")?);
    assert!(
        message.contains("Too many partitions"),
        "refused for another reason: {message}"
    );
    assert_eq!(current.raw_rows(Record::Contact).await?, 0);
    assert_eq!(current.partition_limit(), 100);
    assert_eq!(months_per_insert(current.partition_limit()), 50);

    old.migrate().await?;
    for store in [&old, &current] {
        let inserts = store
            .insert_contacts(&mut history.clone(), Fencing::Off)
            .await?;
        assert_eq!(inserts, 3, "130 months in INSERTs of at most 50");
        let mut settled: Vec<(i32, i64)> = Vec::new();
        for row in &history {
            match settled.iter_mut().find(|(p, _)| *p == row.kafka_partition) {
                Some((_, next)) => *next = (*next).max(row.kafka_offset + 1),
                None => settled.push((row.kafka_partition, row.kafka_offset + 1)),
            }
        }
        assert_eq!(store.unindexed_rows(Record::Contact, &settled).await?, 0);
        store
            .client()
            .query("TRUNCATE TABLE contact_event_ids")
            .execute()
            .await?;
        assert_eq!(store.unindexed_rows(Record::Contact, &settled).await?, 260);
        let nothing_settled: Vec<(i32, i64)> = settled.iter().map(|(p, _)| (*p, 0)).collect();
        assert_eq!(
            store
                .unindexed_rows(Record::Contact, &nothing_settled)
                .await?,
            0
        );
        let ids: Vec<&str> = history.iter().map(|row| row.event_id.as_str()).collect();
        store
            .reindex_raw_ids(Record::Contact, COUNCIL, &ids, (0, u32::MAX), None)
            .await?;
        assert_eq!(store.unindexed_rows(Record::Contact, &settled).await?, 0);
        assert_eq!(store.raw_rows(Record::Contact).await?, 260);
        assert_eq!(store.id_index_rows(Record::Contact).await?, 260);
        assert_eq!(store.rollup_total(Record::Contact).await?, 260);
        assert_eq!(store.duplicate_totals(Record::Contact).await?.ids, 0);
    }
    for layout in &LAYOUTS[..2] {
        assert_eq!(
            rollup_content(&old, layout).await?,
            rollup_content(&current, layout).await?,
            "{} differs between the engines",
            layout.table
        );
    }
    for drop in scope.drop_statements() {
        current.client().query(&drop).execute().await?;
    }
    scope.drop_database().await
}

/// No filter, each filter alone, and all four at once.
fn filters() -> Result<Vec<CellFilter>> {
    let council = CouncilCode::parse(COUNCIL).context("council")?;
    let from = NaiveDate::from_ymd_opt(2015, 1, 1).context("date")?;
    let to = NaiveDate::from_ymd_opt(2025, 12, 31).context("date")?;
    let all = CellFilter::new(council, from, to);
    let service = CellFilter {
        service: ServiceSlug::parse("waste"),
        ..all.clone()
    };
    let channel = CellFilter {
        channel: Some(Channel::ALL[0]),
        ..all.clone()
    };
    let customer_type = CellFilter {
        customer_type: Some(CustomerType::ALL[0]),
        ..all.clone()
    };
    let instrument = CellFilter {
        instrument: Some(Instrument::ALL[0]),
        ..all.clone()
    };
    let every = CellFilter {
        service: ServiceSlug::parse("council_tax"),
        channel: Some(Channel::ALL[1]),
        customer_type: Some(CustomerType::ALL[0]),
        instrument: Some(Instrument::ALL[0]),
        ..all.clone()
    };
    Ok(vec![
        all,
        service,
        channel,
        customer_type,
        instrument,
        every,
    ])
}

fn every_keys() -> Vec<Keys> {
    (0..8)
        .map(|bits| Keys {
            service: bits & 1 != 0,
            customer_type: bits & 2 != 0,
            channel: bits & 4 != 0,
        })
        .collect()
}

fn sources() -> [Source; 3] {
    [
        Source::Rollup,
        Source::Raw,
        Source::RawAsOf(CutOff(chrono::Utc::now().timestamp() + 60)),
    ]
}

/// Every cell query over 2025 with each filter, by month and in total, by
/// no key and by every key, as of `cut_off`: read from wherever `settled` allows, and from the raw tables
/// alone. Fails unless both give the same cells; returns how many queries
/// were compared.
async fn assert_as_of_reads_the_raw_tables(
    store: &Store,
    cut_off: CutOff,
    settled: SettledMonths,
) -> Result<usize> {
    let (either, raw) = (Source::AsOf(cut_off, settled), Source::RawAsOf(cut_off));
    let from = NaiveDate::from_ymd_opt(2025, 1, 1).context("date")?;
    let to = NaiveDate::from_ymd_opt(2025, 12, 31).context("date")?;
    let mut queries = 0;
    for filter in filters()? {
        let filter = CellFilter { from, to, ..filter };
        for bucket in [Bucket::Month, Bucket::Total] {
            let keys = every_keys();
            for keys in [keys[0], keys[keys.len() - 1]] {
                let what = format!("{bucket:?} {keys:?} {filter:?} {settled:?}");
                assert_eq!(
                    store.contact_cells(&filter, bucket, keys, either).await?,
                    store.contact_cells(&filter, bucket, keys, raw).await?,
                    "contact cells {what}"
                );
                assert_eq!(
                    store
                        .satisfaction_cells(&filter, bucket, keys, either)
                        .await?,
                    store.satisfaction_cells(&filter, bucket, keys, raw).await?,
                    "satisfaction cells {what}"
                );
                assert_eq!(
                    store.wait_cells(&filter, bucket, keys, either).await?,
                    store.wait_cells(&filter, bucket, keys, raw).await?,
                    "wait cells {what}"
                );
                assert_eq!(
                    store
                        .journey_cells(&filter, bucket, keys, either, 7, JUDGED_AT)
                        .await?,
                    store
                        .journey_cells(&filter, bucket, keys, raw, 7, JUDGED_AT)
                        .await?,
                    "journey cells {what}"
                );
                queries += 4;
            }
            for area in Area::ALL {
                assert_eq!(
                    store.area_cells(&filter, bucket, area, either).await?,
                    store.area_cells(&filter, bucket, area, raw).await?,
                    "area cells {bucket:?} {area:?} {filter:?} {settled:?}"
                );
                queries += 1;
            }
        }
    }
    Ok(queries)
}

/// A report as of a cut-off reads the rollups for the months nothing was
/// ingested into after it, and the raw tables for the rest, and gives the
/// raw tables' figures as they stood at the cut-off either way: with every
/// month settled, and with a contact stored after the cut-off in June 2025
/// (June is read raw, without it; the rollup has it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs ClickHouse 26 (chdb): cargo xtask test runs it"]
async fn reports_as_of_a_cut_off_read_settled_months_from_the_rollups_on_both_engines() -> Result<()>
{
    let engines = Engines::loaded("current-as-of", false).await?;
    let cut_off = CutOff(chrono::Utc::now().timestamp() + 60);
    let last = NaiveDate::from_ymd_opt(2026, 6, 30).context("date")?;
    let mut queries = 0;
    for store in [&engines.old, &engines.current] {
        let settled = store.settled_months(COUNCIL, cut_off, last).await?;
        assert!(settled.cover(201511, 202606), "{settled:?}");
        queries += assert_as_of_reads_the_raw_tables(store, cut_off, settled).await?;

        let mut late = raw_data(1, 0).contacts;
        late.truncate(1);
        late[0].event_id = "stored-after-the-cut-off".into();
        late[0].occurred_at = u32::try_from(at("2025-06-15T12:00:00Z").timestamp())?;
        late[0].ingested_at = u32::try_from(cut_off.0 + 3_600)?;
        let version = store.data_version().await?;
        assert_eq!(store.data_version().await?, version);
        store.insert_contacts(&mut late, Fencing::Off).await?;
        assert_ne!(store.data_version().await?, version, "a write changes it");
        let now = store.settled_months(COUNCIL, cut_off, last).await?;
        assert_ne!(now, settled);
        assert!(!now.cover(202506, 202506), "{now:?}");
        assert!(
            now.cover(201511, 202505) && now.cover(202507, 202606),
            "{now:?}"
        );
        queries += assert_as_of_reads_the_raw_tables(store, cut_off, now).await?;
        let june = CellFilter::new(
            CouncilCode::parse(COUNCIL).context("council")?,
            NaiveDate::from_ymd_opt(2025, 6, 1).context("date")?,
            NaiveDate::from_ymd_opt(2025, 6, 30).context("date")?,
        );
        let total = |cells: Vec<channelshift_store::ContactCell>| -> u64 {
            cells.iter().map(|cell| cell.all_contacts).sum()
        };
        let keys = Keys::default();
        let rollup = store
            .contact_cells(&june, Bucket::Total, keys, Source::Rollup)
            .await?;
        let as_of = store
            .contact_cells(&june, Bucket::Total, keys, Source::AsOf(cut_off, now))
            .await?;
        assert_eq!(
            total(rollup),
            total(as_of) + 1,
            "the late contact is left out"
        );
    }
    eprintln!(
        "as of a cut-off: {queries} queries, the same cells as the raw tables on both engines"
    );
    engines.drop_databases().await
}

/// Contact cells read from `contact_monthly` for the whole months of a
/// range and `contact_daily` for the days either side (and satisfaction
/// cells from `satisfaction_monthly` and `satisfaction_daily`) equal the raw tables
/// aggregated, on both engines: ranges of whole months, ranges cut inside
/// months at either end, one month, no whole month, every period and key,
/// with and without filters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs ClickHouse 26 (chdb): cargo xtask test runs it"]
async fn contact_cells_of_whole_months_equal_the_raw_tables_on_both_engines() -> Result<()> {
    let engines = Engines::loaded("current-months", true).await?;
    let council = CouncilCode::parse(COUNCIL).context("council")?;
    let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).context("date");
    let ranges = [
        (day(2015, 1, 1)?, day(2025, 12, 31)?),
        (day(2025, 2, 14)?, day(2025, 9, 3)?),
        (day(2024, 12, 31)?, day(2025, 7, 1)?),
        (day(2025, 6, 1)?, day(2025, 6, 30)?),
        (day(2025, 5, 2)?, day(2025, 6, 29)?),
        (day(2025, 4, 1)?, day(2025, 6, 30)?),
    ];
    let mut compared = 0;
    let mut contacts = 0;
    let mut responses = 0;
    for store in [&engines.old, &engines.current] {
        // Loaded after migrating an empty store: the monthly rollups hold
        // every month and are read for all of them.
        let coverage = format!(
            "SELECT toString(min(from_day)), count() FROM {} WHERE rollup = 'satisfaction_monthly'",
            store.rollup("rollup_coverage")
        );
        assert_eq!(tsv(store, &coverage).await?.trim(), "1970-01-02\t1");
        let (major, _) = store.server_version();
        let coverage = format!(
            "SELECT toString(min(from_day)), count() FROM {} WHERE rollup = 'contact_monthly'",
            store.rollup("rollup_coverage")
        );
        assert_eq!(
            tsv(store, &coverage).await?.trim(),
            "1970-01-02\t1",
            "{major}.x"
        );
        let monthly = format!(
            "SELECT count() > 100 FROM {}",
            store.rollup("contact_monthly")
        );
        assert_eq!(tsv(store, &monthly).await?.trim(), "1", "{major}.x");
        for (from, to) in ranges {
            let all = CellFilter::new(council.clone(), from, to);
            let narrowed = CellFilter {
                service: ServiceSlug::parse("waste"),
                channel: Some(Channel::ALL[0]),
                ..all.clone()
            };
            for (filter, keys_asked) in [(all, every_keys()), (narrowed, vec![Keys::default()])] {
                for bucket in Bucket::ALL {
                    for &keys in &keys_asked {
                        let rollup = store
                            .contact_cells(&filter, bucket, keys, Source::Rollup)
                            .await?;
                        let raw = store
                            .contact_cells(&filter, bucket, keys, Source::Raw)
                            .await?;
                        assert_eq!(rollup, raw, "{bucket:?} {keys:?} {filter:?}");
                        compared += 1;
                        contacts += rollup.iter().map(|cell| cell.all_contacts).sum::<u64>();
                        let rollup = store
                            .satisfaction_cells(&filter, bucket, keys, Source::Rollup)
                            .await?;
                        let raw = store
                            .satisfaction_cells(&filter, bucket, keys, Source::Raw)
                            .await?;
                        assert_eq!(rollup, raw, "responses {bucket:?} {keys:?} {filter:?}");
                        compared += 1;
                        responses += rollup.iter().map(|cell| cell.responses).sum::<u64>();
                    }
                }
            }
        }
    }
    assert!(contacts > 10_000, "the ranges held contacts: {contacts}");
    assert!(responses > 1_000, "the ranges held responses: {responses}");
    eprintln!(
        "whole months: {compared} queries, the same cells from the rollups and the raw tables"
    );
    engines.drop_databases().await
}

/// A store upgraded to migration 13 with contacts already stored reads
/// `contact_monthly` (empty of them: its view came after) for no month
/// until `rebuild-rollups` has filled it, on both engines: figures still
/// equal the raw tables before the rebuild; after it, a store reads the
/// monthly rollup (a row added to it alone shows), and from raw they agree.
/// Upgraded after retention dropped every raw month, it reads them by day.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs ClickHouse 26 (chdb): cargo xtask test runs it"]
async fn an_upgraded_store_reads_contact_monthly_once_rebuilt_on_both_engines() -> Result<()> {
    let scope = Scope::new("current-monthly-upgrade");
    let council = CouncilCode::parse(COUNCIL).context("council")?;
    let year = CellFilter::new(
        council,
        NaiveDate::from_ymd_opt(2025, 1, 1).context("date")?,
        NaiveDate::from_ymd_opt(2025, 12, 31).context("date")?,
    );
    let data = raw_data(2_000, 0);
    let total = |cells: Vec<channelshift_store::ContactCell>| -> u64 {
        cells.iter().map(|cell| cell.all_contacts).sum()
    };
    for current in [false, true] {
        let connect = || async {
            if current {
                current_store(&scope).await
            } else {
                scope.store().await
            }
        };
        let store = connect().await?;
        let (major, _) = store.server_version();
        store.migrate_through(12).await?;
        store
            .insert_contacts(&mut data.contacts.clone(), Fencing::Off)
            .await?;
        store.migrate().await?;
        let monthly = format!("SELECT count() FROM {}", store.rollup("contact_monthly"));
        assert_eq!(tsv(&store, &monthly).await?.trim(), "0", "{major}.x");
        let raw = store
            .contact_cells(&year, Bucket::Month, Keys::default(), Source::Raw)
            .await?;
        assert!(
            total(raw.clone()) > 1_000,
            "{major}.x: the year has contacts"
        );
        assert_eq!(
            store
                .contact_cells(&year, Bucket::Month, Keys::default(), Source::Rollup)
                .await?,
            raw,
            "{major}.x: before the rebuild, whole months are read by day"
        );
        store.rebuild_rollups(|_| ()).await?;
        let rebuilt = connect().await?;
        assert_eq!(
            rebuilt
                .contact_cells(&year, Bucket::Month, Keys::default(), Source::Rollup)
                .await?,
            raw,
            "{major}.x: after the rebuild"
        );
        rebuilt
            .client()
            .query(&format!(
                "INSERT INTO {} (council, day, service, channel, customer_type, interaction, \
                 outcome, assisted, contacts) \
                 VALUES ('{COUNCIL}', '2025-06-01', 'waste', 'web', 'resident', 'transaction', \
                 'completed', 0, 5)",
                store.rollup("contact_monthly")
            ))
            .execute()
            .await?;
        let fresh = connect().await?;
        assert_eq!(
            total(
                fresh
                    .contact_cells(&year, Bucket::Month, Keys::default(), Source::Rollup)
                    .await?
            ),
            total(raw.clone()) + 5,
            "{major}.x: the rebuilt monthly rollup is read"
        );
        for drop in scope.drop_statements() {
            store.client().query(&drop).execute().await?;
        }
        // Upgraded after retention dropped every raw month: the daily
        // rollup still holds them, so the monthly one is not read for them.
        let store = connect().await?;
        store.migrate_through(12).await?;
        store
            .insert_contacts(&mut data.contacts.clone(), Fencing::Off)
            .await?;
        let months = tsv(
            &store,
            "SELECT DISTINCT partition FROM system.parts \
             WHERE database = currentDatabase() AND table = 'contact_events' AND active",
        )
        .await?;
        for month in months.lines() {
            store
                .client()
                .query("ALTER TABLE contact_events DROP PARTITION ?")
                .bind(month.parse::<u32>()?)
                .execute()
                .await?;
        }
        store.migrate().await?;
        let coverage = format!(
            "SELECT from_day > today() FROM {} WHERE rollup = 'contact_monthly'",
            store.rollup("rollup_coverage")
        );
        assert_eq!(tsv(&store, &coverage).await?.trim(), "1", "{major}.x");
        assert_eq!(
            store
                .contact_cells(&year, Bucket::Month, Keys::default(), Source::Rollup)
                .await?,
            raw,
            "{major}.x: raw months dropped before the upgrade are read by day"
        );
        for drop in scope.drop_statements() {
            store.client().query(&drop).execute().await?;
        }
    }
    scope.drop_database().await
}

/// A store upgraded to migration 16 with responses already stored reads
/// `satisfaction_monthly` (empty of them) for no month until
/// `rebuild-rollups` has filled it, on both engines; then it reads it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs ClickHouse 26 (chdb): cargo xtask test runs it"]
async fn an_upgraded_store_reads_satisfaction_monthly_once_rebuilt_on_both_engines() -> Result<()> {
    let scope = Scope::new("current-satisfaction-upgrade");
    let council = CouncilCode::parse(COUNCIL).context("council")?;
    let year = CellFilter::new(
        council,
        NaiveDate::from_ymd_opt(2025, 1, 1).context("date")?,
        NaiveDate::from_ymd_opt(2025, 12, 31).context("date")?,
    );
    let data = raw_data(0, 600);
    let total = |cells: &[channelshift_store::SatisfactionCell]| -> u64 {
        cells.iter().map(|cell| cell.responses).sum()
    };
    for current in [false, true] {
        let connect = || async {
            if current {
                current_store(&scope).await
            } else {
                scope.store().await
            }
        };
        let store = connect().await?;
        let (major, _) = store.server_version();
        store.migrate_through(15).await?;
        store
            .insert_satisfaction(&mut data.responses.clone(), Fencing::Off)
            .await?;
        store.migrate().await?;
        let coverage = format!(
            "SELECT from_day > today() FROM {} WHERE rollup = 'satisfaction_monthly'",
            store.rollup("rollup_coverage")
        );
        assert_eq!(tsv(&store, &coverage).await?.trim(), "1", "{major}.x");
        let raw = store
            .satisfaction_cells(&year, Bucket::Month, Keys::default(), Source::Raw)
            .await?;
        let responses = data.responses.len() as u64;
        assert_eq!(
            total(&raw),
            responses,
            "{major}.x: every response is in 2025"
        );
        assert_eq!(
            store
                .satisfaction_cells(&year, Bucket::Month, Keys::default(), Source::Rollup)
                .await?,
            raw,
            "{major}.x: before the rebuild, whole months are read by day"
        );
        store.rebuild_rollups(|_| ()).await?;
        let rebuilt = connect().await?;
        assert_eq!(
            rebuilt
                .satisfaction_cells(&year, Bucket::Month, Keys::default(), Source::Rollup)
                .await?,
            raw,
            "{major}.x: after the rebuild"
        );
        rebuilt
            .client()
            .query(&format!(
                "INSERT INTO {} (council, day, service, channel, customer_type, instrument, \
                 score, responses) \
                 VALUES ('{COUNCIL}', '2025-06-01', 'waste', 'web', 'resident', 'csat5', 5, 7)",
                store.rollup("satisfaction_monthly")
            ))
            .execute()
            .await?;
        let fresh = connect().await?;
        assert_eq!(
            total(
                &fresh
                    .satisfaction_cells(&year, Bucket::Month, Keys::default(), Source::Rollup)
                    .await?
            ),
            responses + 7,
            "{major}.x: the rebuilt monthly rollup is read"
        );
        for drop in scope.drop_statements() {
            store.client().query(&drop).execute().await?;
        }
    }
    scope.drop_database().await
}

/// A settled day's journeys are kept and reused while `journey_days`
/// agrees with the rows they were judged from, on both engines: its view
/// counts each contact on the local day `journey_contacts` puts it on, so
/// a row written to `journey_contacts` alone is not seen (the kept day is
/// reused), and once `journey_days` counts it too the day is judged again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs ClickHouse 26 (chdb): cargo xtask test runs it"]
async fn kept_journey_days_are_reused_while_journey_days_agrees_on_both_engines() -> Result<()> {
    let engines = Engines::loaded("current-kept-days", false).await?;
    let council = CouncilCode::parse(COUNCIL).context("council")?;
    let may = CellFilter::new(
        council,
        NaiveDate::from_ymd_opt(2025, 5, 1).context("date")?,
        NaiveDate::from_ymd_opt(2025, 5, 31).context("date")?,
    );
    let none = Keys {
        channel: false,
        service: false,
        customer_type: false,
    };
    let journeys = |cells: Vec<channelshift_store::JourneyCell>| -> u64 {
        cells.iter().map(|cell| cell.journeys).sum()
    };
    for store in [&engines.old, &engines.current] {
        let (major, _) = store.server_version();
        let judged =
            || store.journey_cells(&may, Bucket::Total, none, Source::Rollup, 7, JUDGED_AT);
        let before = journeys(judged().await?);
        assert!(before > 0, "{major}.x: May has journeys");
        let r = store.rollups_database();
        store
            .client()
            .query(&format!(
                "INSERT INTO {r}.journey_contacts (council, day, journey, contacted_at, service, \
                 channel, customer_type, contacts) \
                 VALUES ('{COUNCIL}', '2025-05-14', 424242, '2025-05-14 10:00:00', 'waste', \
                 'phone', 'resident', 1)"
            ))
            .execute()
            .await?;
        assert_eq!(
            journeys(judged().await?),
            before,
            "{major}.x: the kept days are reused while journey_days is unchanged"
        );
        // Contacts per day counted once over a span holding May and its
        // windows (as a scorecard counts its three periods), before the
        // count changes below.
        let day = |m, d| NaiveDate::from_ymd_opt(2025, m, d).context("date");
        let counted_before = store
            .journey_days(&may.council, (day(4, 1)?, day(6, 30)?), 7)
            .await?;
        store
            .client()
            .query(&format!(
                "INSERT INTO {r}.journey_days (council, day, contacts) \
                 VALUES ('{COUNCIL}', '2025-05-14', 1)"
            ))
            .execute()
            .await?;
        let counted = |days| {
            store.journey_cells_counted(&may, Bucket::Total, none, Source::Rollup, JUDGED_AT, days)
        };
        // The count taken before is what the kept days are checked
        // against, not a new count: they agree with it and are reused.
        assert_eq!(
            journeys(counted(&counted_before).await?),
            before,
            "{major}.x: the days counted once are used, not counted again"
        );
        assert_eq!(
            journeys(judged().await?),
            before + 1,
            "{major}.x: a day whose journey_days count changed is judged again"
        );
        let counted_now = store
            .journey_days(&may.council, (day(4, 1)?, day(6, 30)?), 7)
            .await?;
        assert_eq!(
            journeys(counted(&counted_now).await?),
            before + 1,
            "{major}.x: counted after the change, May 14 is judged with its new row"
        );
    }
    engines.drop_databases().await
}

/// Settled days judged and stored by `settle_journeys` are what a store
/// with nothing in memory (a pack's process, a restarted API) answers
/// with, on both engines: the same cells as the raw tables judged afresh,
/// and as many journeys stored as those raw tables hold; a second run
/// judges nothing; a stored day is read, not judged again (a later judging
/// written by hand is what a new store answers); a day whose
/// `journey_days` count changed is judged again; `rebuild-rollups` drops
/// the stored days of the months it rebuilds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs ClickHouse 26 (chdb): cargo xtask test runs it"]
async fn settled_journey_days_are_stored_and_read_by_a_new_store_on_both_engines() -> Result<()> {
    let engines = Engines::loaded("current-settled-days", false).await?;
    let council = CouncilCode::parse(COUNCIL).context("council")?;
    let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).context("date");
    let spring = CellFilter::new(council.clone(), date(2025, 1, 1)?, date(2025, 7, 20)?);
    // Judged at 1 August: 23 July is the last day whose windows have closed.
    let settled = CellFilter::new(council.clone(), date(2024, 12, 1)?, date(2025, 7, 23)?);
    let may_14 = CellFilter::new(council.clone(), date(2025, 5, 14)?, date(2025, 5, 14)?);
    let every = Keys {
        channel: true,
        service: true,
        customer_type: true,
    };
    let none = Keys {
        channel: false,
        service: false,
        customer_type: false,
    };
    let journeys = |cells: &[channelshift_store::JourneyCell]| -> u64 {
        cells.iter().map(|cell| cell.journeys).sum()
    };
    for old in [true, false] {
        let new_store = || async {
            if old {
                engines.scope.store().await
            } else {
                current_store(&engines.scope).await
            }
        };
        let store = new_store().await?;
        let (major, _) = store.server_version();
        let raw = store
            .journey_cells(&spring, Bucket::Month, every, Source::Raw, 7, JUDGED_AT)
            .await?;
        assert!(journeys(&raw) > 100, "{major}.x: the spring has journeys");
        assert_eq!(
            store.councils_with_journeys().await?,
            [COUNCIL.to_string()],
            "{major}.x: the councils settle-journeys settles without [councils]"
        );
        let report = store
            .settle_journeys(&council, 7, JUDGED_AT, |_, _| ())
            .await?;
        assert!(report.days > 150, "{major}.x: {report:?}");
        assert_eq!(
            report.judged, report.days,
            "{major}.x: every settled day judged"
        );
        let settled_raw = store
            .journey_cells(&settled, Bucket::Total, none, Source::Raw, 7, JUDGED_AT)
            .await?;
        assert_eq!(
            report.journeys,
            journeys(&settled_raw),
            "{major}.x: the stored days hold every journey of the settled days"
        );
        let again = store
            .settle_journeys(&council, 7, JUDGED_AT, |_, _| ())
            .await?;
        assert_eq!(again.judged, 0, "{major}.x: a second run judges nothing");
        assert_eq!(
            new_store()
                .await?
                .journey_cells(&spring, Bucket::Month, every, Source::Rollup, 7, JUDGED_AT)
                .await?,
            raw,
            "{major}.x: a new store answers from the stored days as the raw tables judged afresh"
        );
        // A later judging of 14 May, written by hand on the stored basis.
        let r = store.rollups_database();
        let basis: u64 = store
            .client()
            .query(&format!(
                "SELECT max(basis) FROM {r}.journey_settled WHERE day = '2025-05-14'"
            ))
            .fetch_one()
            .await?;
        store
            .client()
            .query(&format!(
                "INSERT INTO {r}.journey_settled (council, window_days, definition, day, judging, \
                 basis, channel, service, customer_type, journeys, resolved, open, unlinked) VALUES \
                 ('{COUNCIL}', 7, {JOURNEY_DEFINITION}, '2025-05-14', 18000000000000000000, {basis}, \
                 '', '', '', 0, 0, 0, 0), \
                 ('{COUNCIL}', 7, {JOURNEY_DEFINITION}, '2025-05-14', 18000000000000000000, {basis}, \
                 'phone', 'waste', 'resident', 1000, 1000, 0, 0)"
            ))
            .execute()
            .await?;
        let may_14 = &may_14;
        let read = |store: Store| async move {
            store
                .journey_cells(may_14, Bucket::Total, none, Source::Rollup, 7, JUDGED_AT)
                .await
        };
        assert_eq!(
            journeys(&read(new_store().await?).await?),
            1000,
            "{major}.x: a stored day is read, not judged again"
        );
        // A later judging still, stored under another definition.
        let other = JOURNEY_DEFINITION + 1;
        store
            .client()
            .query(&format!(
                "INSERT INTO {r}.journey_settled (council, window_days, definition, day, judging, \
                 basis, channel, service, customer_type, journeys, resolved, open, unlinked) VALUES \
                 ('{COUNCIL}', 7, {other}, '2025-05-14', 18100000000000000000, {basis}, \
                 '', '', '', 0, 0, 0, 0), \
                 ('{COUNCIL}', 7, {other}, '2025-05-14', 18100000000000000000, {basis}, \
                 'phone', 'waste', 'resident', 5000, 5000, 0, 0)"
            ))
            .execute()
            .await?;
        assert_eq!(
            journeys(&read(new_store().await?).await?),
            1000,
            "{major}.x: days judged under another definition are not read"
        );
        store
            .client()
            .query(&format!(
                "INSERT INTO {r}.journey_days (council, day, contacts) \
                 VALUES ('{COUNCIL}', '2025-05-14', 1)"
            ))
            .execute()
            .await?;
        assert_eq!(
            read(new_store().await?).await?,
            store
                .journey_cells(may_14, Bucket::Total, none, Source::Raw, 7, JUDGED_AT)
                .await?,
            "{major}.x: a day whose journey_days count changed is judged again"
        );
        store.rebuild_rollups(|_| ()).await?;
        let left: u64 = store
            .client()
            .query(&format!("SELECT count() FROM {r}.journey_settled"))
            .fetch_one()
            .await?;
        assert_eq!(
            left, 0,
            "{major}.x: a rebuild drops the stored days it rebuilt"
        );
    }
    engines.drop_databases().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs ClickHouse 26 (chdb): cargo xtask test runs it"]
async fn forecasts_are_stored_and_the_latest_history_read_on_both_engines() -> Result<()> {
    let engines = Engines::loaded("current-forecasts", false).await?;
    let council = CouncilCode::parse(COUNCIL).context("council")?;
    let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).context("date");
    let year_end = date(2026, 3, 31)?;
    let run = |history_to: NaiveDate, made_at: i64, take_up: f64| StoredForecasts {
        year_end,
        history_to,
        made_at,
        records: vec![
            record(
                "digital-take-up",
                date(2026, 2, 1).unwrap_or_default(),
                Some(take_up - 1.0),
            ),
            record(
                "digital-take-up",
                date(2026, 3, 1).unwrap_or_default(),
                Some(take_up),
            ),
            record(
                "efficiency-savings",
                date(2026, 3, 1).unwrap_or_default(),
                None,
            ),
        ],
    };
    for store in [&engines.old, &engines.current] {
        // January's history, run twice (the second is read), then December's.
        store
            .store_forecasts(&council, &run(date(2026, 1, 1)?, 1_700_000_000, 40.0))
            .await?;
        store
            .store_forecasts(&council, &run(date(2026, 1, 1)?, 1_700_000_100, 41.0))
            .await?;
        store
            .store_forecasts(&council, &run(date(2025, 12, 1)?, 1_700_000_200, 39.0))
            .await?;
        let latest = store
            .forecasts(&council, year_end, date(2026, 2, 1)?, i64::from(u32::MAX))
            .await?
            .context("stored")?;
        assert_eq!(latest.history_to, date(2026, 1, 1)?);
        assert_eq!(latest.made_at, 1_700_000_100);
        assert_eq!(latest.records, run(date(2026, 1, 1)?, 0, 41.0).records);
        // As made by an instant before the second run: the first.
        let earlier = store
            .forecasts(&council, year_end, date(2026, 1, 1)?, 1_700_000_050)
            .await?
            .context("stored")?;
        assert_eq!(earlier.records[1].value, Some(40.0));
        // History to December only: December's.
        let december = store
            .forecasts(&council, year_end, date(2025, 12, 31)?, i64::from(u32::MAX))
            .await?
            .context("stored")?;
        assert_eq!(december.records[1].value, Some(39.0));
        assert!(store
            .forecasts(&council, year_end, date(2025, 11, 1)?, i64::from(u32::MAX))
            .await?
            .is_none());
    }
    engines.drop_databases().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs ClickHouse 26 (chdb): cargo xtask test runs it"]
async fn every_kpi_query_answers_the_same_on_both_engines() -> Result<()> {
    let engines = Engines::loaded("current-kpi", true).await?;
    let (old, current) = (&engines.old, &engines.current);
    let mut queries = 0;
    let mut cells = 0;
    let mut journeys = 0;
    // Every period × grouping × source with no filter and with all four;
    // each filter alone over the whole range.
    for (n, filter) in filters()?.into_iter().enumerate() {
        let buckets: &[Bucket] = if n == 0 || n == 5 {
            &Bucket::ALL
        } else {
            &[Bucket::Total]
        };
        for &bucket in buckets {
            for source in sources() {
                for keys in every_keys() {
                    let a = old.contact_cells(&filter, bucket, keys, source).await?;
                    let b = current.contact_cells(&filter, bucket, keys, source).await?;
                    assert_eq!(
                        a, b,
                        "contact cells {bucket:?} {keys:?} {source:?} {filter:?}"
                    );
                    cells += a.len();
                    let a = old
                        .satisfaction_cells(&filter, bucket, keys, source)
                        .await?;
                    let b = current
                        .satisfaction_cells(&filter, bucket, keys, source)
                        .await?;
                    assert_eq!(
                        a, b,
                        "satisfaction cells {bucket:?} {keys:?} {source:?} {filter:?}"
                    );
                    queries += 2;
                    cells += a.len();
                    // Judged at 1 August 2025: the journeys of late July are open.
                    let a = old
                        .journey_cells(&filter, bucket, keys, source, 7, JUDGED_AT)
                        .await?;
                    let b = current
                        .journey_cells(&filter, bucket, keys, source, 7, JUDGED_AT)
                        .await?;
                    assert_eq!(
                        a, b,
                        "journey cells {bucket:?} {keys:?} {source:?} {filter:?}"
                    );
                    // The rollups keep settled days in memory: what they
                    // answer from it equals the raw tables judged afresh.
                    if source == Source::Raw {
                        let kept = old
                            .journey_cells(&filter, bucket, keys, Source::Rollup, 7, JUDGED_AT)
                            .await?;
                        assert_eq!(kept, a, "kept journey cells {bucket:?} {keys:?} {filter:?}");
                    }
                    journeys += a.iter().map(|cell| cell.journeys + cell.open).sum::<u64>();
                    let a = old.wait_cells(&filter, bucket, keys, source).await?;
                    let b = current.wait_cells(&filter, bucket, keys, source).await?;
                    assert_eq!(a, b, "wait cells {bucket:?} {keys:?} {source:?} {filter:?}");
                    queries += 2;
                    cells += a.len();
                }
                for area in Area::ALL {
                    let a = old.area_cells(&filter, bucket, area, source).await?;
                    let b = current.area_cells(&filter, bucket, area, source).await?;
                    assert_eq!(a, b, "area cells {bucket:?} {area:?} {source:?} {filter:?}");
                    queries += 1;
                    cells += a.len();
                }
            }
        }
        let (from, to) = (filter.from, filter.to);
        assert_eq!(
            old.days_with_contacts(&filter.council, from, to).await?,
            current
                .days_with_contacts(&filter.council, from, to)
                .await?
        );
    }
    assert!(cells > 10_000, "the queries found data: {cells} cells");
    assert!(journeys > 1_000, "the queries found journeys: {journeys}");
    eprintln!("current engine: {queries} KPI queries, the same {cells} cells on both engines");
    engines.drop_databases().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs ClickHouse 26 (chdb): cargo xtask test runs it"]
async fn ingest_and_reconcile_statements_answer_the_same_on_both_engines() -> Result<()> {
    let engines = Engines::loaded("current-ingest", true).await?;
    let (old, current) = (&engines.old, &engines.current);
    let ids: Vec<String> = (0..30).map(|i| format!("ev-{}", i * 97)).collect();
    let mut ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    ids.push("not-stored");
    let mut found = Vec::new();
    for store in [old, current] {
        let checkpoints = [
            Checkpoint {
                topic: "contacts".into(),
                partition: 0,
                next_offset: 41,
            },
            Checkpoint {
                topic: "contacts".into(),
                partition: 0,
                next_offset: 42,
            },
            Checkpoint {
                topic: "contacts".into(),
                partition: 2,
                next_offset: 7,
            },
        ];
        assert!(store.ping().await);
        // Partition 0 holds every row (the last, of the back-load, from
        // offset 500,259); partition 1 none.
        assert_eq!(
            store
                .stored_offsets_end(Record::Contact, &[0, 1])
                .await?
                .into_iter()
                .collect::<BTreeMap<_, _>>(),
            BTreeMap::from([(0, 500_260)])
        );
        store.save_checkpoints(&checkpoints).await?;
        let mut keys = Vec::new();
        store
            .stored_keys(Record::Contact, 0, 0, 3_000, |key| keys.push(key))
            .await?;
        keys.sort_by_key(|key| key.offset);
        found.push(format!(
            "{:?}\n{:?}\n{:?}\n{:?}\n{} keys, first {:?}, last {:?}\n{:?}\n{:?}\n{:?}\n{:?}",
            store
                .checkpoints("contacts")
                .await?
                .into_iter()
                .collect::<BTreeMap<_, _>>(),
            sorted(store.existing_ids(Record::Contact, COUNCIL, &ids).await?),
            sorted(
                store
                    .existing_raw_ids(Record::Contact, COUNCIL, &ids, 0, u32::MAX)
                    .await?
            ),
            sorted(store.raw_ids(Record::Contact, COUNCIL, &ids).await?),
            keys.len(),
            keys.first(),
            keys.last(),
            store.duplicate_totals(Record::Contact).await?,
            store.duplicate_examples(Record::Contact, 5).await?,
            store.latest_ingest().await?.is_some(),
            (
                store.raw_rows(Record::Satisfaction).await?,
                store.id_index_rows(Record::Satisfaction).await?,
                store.rollup_total(Record::Satisfaction).await?
            ),
        ));
        // A whole batch of ids in one lookup (its text past the server's
        // default 256 KiB limit on a query): the same ids found by each
        // lookup, on each engine (ev-0 to ev-1999 and history ids).
        let batch: Vec<String> = (0..50_000).map(|i| format!("ev-{i}")).collect();
        let batch: Vec<&str> = batch.iter().map(String::as_str).collect();
        let indexed = sorted(store.existing_ids(Record::Contact, COUNCIL, &batch).await?);
        assert!(indexed.len() >= 2_000, "{}", indexed.len());
        assert_eq!(
            sorted(
                store
                    .existing_raw_ids(Record::Contact, COUNCIL, &batch, 0, u32::MAX)
                    .await?
            ),
            indexed
        );
        assert_eq!(
            sorted(store.raw_ids(Record::Contact, COUNCIL, &batch).await?),
            indexed
        );
        // The index of ids found in raw rows only, and a duplicate to find.
        // Re-indexing under a fence the partition has since moved past
        // writes nothing; under the current one, or unfenced, it writes.
        let stale = store.claim(Record::Contact, &[0], "replica-a", 7).await?[&0];
        let current = store.claim(Record::Contact, &[0], "replica-b", 9).await?[&0];
        let whole = (0, u32::MAX);
        let index_rows = || async {
            #[derive(clickhouse::Row, serde::Deserialize)]
            struct N {
                n: u64,
            }
            let sql = "SELECT count() AS n FROM contact_event_ids WHERE event_id = 'ev-1'";
            anyhow::Ok(store.client().query(sql).fetch_one::<N>().await?.n)
        };
        let before = index_rows().await?;
        store
            .reindex_raw_ids(Record::Contact, COUNCIL, &["ev-1"], whole, Some((0, stale)))
            .await?;
        assert_eq!(
            index_rows().await?,
            before,
            "a stale fence re-indexes nothing"
        );
        store
            .reindex_raw_ids(
                Record::Contact,
                COUNCIL,
                &["ev-1"],
                whole,
                Some((0, current)),
            )
            .await?;
        assert_eq!(
            index_rows().await?,
            before + 1,
            "the current fence re-indexes"
        );
        store
            .reindex_raw_ids(
                Record::Contact,
                COUNCIL,
                &["ev-2", "no-such-id"],
                whole,
                None,
            )
            .await?;
        store
            .client()
            .query(
                "INSERT INTO contact_events SELECT * FROM contact_events WHERE event_id = 'ev-7'",
            )
            .execute()
            .await?;
        found.push(format!(
            "{} of a batch of 50,000 found; {:?} {:?} {:?}",
            indexed.len(),
            store.id_index_rows(Record::Contact).await?,
            store.duplicate_totals(Record::Contact).await?,
            store.duplicate_examples(Record::Contact, 5).await?
        ));
    }
    assert_eq!(found[0], found[2], "before: 18.16 then the current engine");
    assert_eq!(found[1], found[3], "after: 18.16 then the current engine");
    assert!(found[0].contains("{0: 42, 2: 7}"), "{}", found[0]);
    engines.drop_databases().await
}

fn sorted(set: std::collections::HashSet<String>) -> Vec<String> {
    let mut items: Vec<String> = set.into_iter().collect();
    items.sort();
    items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs ClickHouse 26 (chdb): cargo xtask test runs it"]
async fn rebuild_rollups_gives_the_same_rollups_on_both_engines() -> Result<()> {
    let engines = Engines::loaded("current-rebuild", false).await?;
    let mut contents = Vec::new();
    for store in [&engines.old, &engines.current] {
        // A rollup row of no raw row, and a month missing from another.
        store
            .client()
            .query(&format!(
                "INSERT INTO {} (council, day, service, channel, customer_type, \
                 interaction, outcome, assisted, contacts) VALUES ('{COUNCIL}', '2024-11-03', \
                 'waste', 'phone', 'resident', 'transaction', 'completed', 0, 77)",
                store.rollup("contact_daily")
            ))
            .execute()
            .await?;
        store
            .client()
            .query(&format!(
                "ALTER TABLE {} DROP PARTITION 202507",
                store.rollup("contact_area_daily")
            ))
            .execute()
            .await?;
        let report = store.rebuild_rollups(|_| ()).await?;
        assert_eq!(report.months_recomputed, 0);
        assert_rollups_equal_their_view_over_raw(store, &LAYOUTS).await?;
        let mut all = Vec::new();
        for layout in &LAYOUTS {
            all.push(rollup_content(store, layout).await?);
        }
        contents.push(all);
    }
    for (i, layout) in LAYOUTS.iter().enumerate() {
        assert_same_rows(
            &format!("{} rebuilt on the current engine", layout.table),
            &contents[1][i],
            &contents[0][i],
        );
    }
    engines.drop_databases().await
}

/// Raw retention on both engines: the oldest raw month dropped and recorded,
/// the rollups keep it, the totals compared from the first month left whole
/// agree, and the rebuild leaves the dropped months alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs ClickHouse 26 (chdb): cargo xtask test runs it"]
async fn raw_retention_drops_a_month_and_leaves_the_rollups_on_both_engines() -> Result<()> {
    let engines = Engines::loaded("current-retention", false).await?;
    let contact_daily = channelshift_store::ROLLUPS
        .iter()
        .find(|rollup| rollup.table == "contact_daily")
        .context("contact_daily is a rollup")?;
    let mut answers = Vec::new();
    for store in [&engines.old, &engines.current] {
        let months = store.raw_months(Record::Contact).await?;
        assert!(months.len() >= 3, "{months:?}");
        let (raw_before, rollup_before) = store.retained_totals(Record::Contact, None).await?;
        assert_eq!(raw_before, rollup_before);
        assert_eq!(store.purged_through("contact_events").await?, None);
        assert_eq!(store.first_whole_month(contact_daily).await?, None);
        let oldest = months[0];
        store.purge_raw_month(Record::Contact, oldest).await?;
        assert_eq!(store.purged_through("contact_events").await?, Some(oldest));
        assert_eq!(store.raw_months(Record::Contact).await?, months[1..]);
        let first = store.first_whole_month(contact_daily).await?;
        assert_eq!(
            first,
            Some(channelshift_store::next_month(
                channelshift_store::next_month(oldest)
            ))
        );
        let (raw, total) = store.retained_totals(Record::Contact, first).await?;
        assert_eq!(raw, total, "raw rows and rollup from the first whole month");
        assert!(raw < raw_before);
        let whole_rollup = store.retained_totals(Record::Contact, None).await?.1;
        assert_eq!(
            whole_rollup, rollup_before,
            "the rollup keeps the dropped month"
        );
        store.rebuild_rollups(|_| ()).await?;
        let rebuilt = store.retained_totals(Record::Contact, None).await?.1;
        assert_eq!(
            rebuilt, rollup_before,
            "the rebuild left the dropped month alone"
        );
        answers.push((months, first, raw, total));
    }
    assert_eq!(answers[0], answers[1], "the engines differ");
    engines.drop_databases().await
}

/// The dashboards' panel and variable SQL, run on both engines as Grafana's
/// data source sends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs ClickHouse 26 (chdb): cargo xtask test runs it"]
async fn every_dashboard_query_answers_the_same_on_both_engines() -> Result<()> {
    let engines = Engines::loaded("current-dashboards", true).await?;
    let range = TimeRange {
        from: "2025-03-31T23:00:00Z".parse()?,
        to: "2025-06-30T22:59:59Z".parse()?,
    };
    let mut ran = 0;
    for dashboard in load_dashboards()? {
        let mut chosen: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for variable in dashboard.variables() {
            let name = variable["name"].as_str().unwrap_or_default().to_string();
            let value = match (variable["type"].as_str(), name.as_str()) {
                (Some("query"), "council") => COUNCIL.to_string(),
                (Some("query"), "service") => "waste".into(),
                (Some("query"), "channel") => "web".into(),
                (Some("query"), "customer_type") => "resident".into(),
                (Some("query"), other) => bail!("no value for variable ${other}"),
                _ => variable["current"]["value"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            };
            if variable["type"] == "query" {
                let sql = expand_sql(
                    variable["query"].as_str().unwrap_or_default(),
                    range,
                    &chosen,
                )?;
                same_on_both(&engines, &sql).await.context(name.clone())?;
                ran += 1;
            }
            chosen.insert(name, vec![value]);
        }
        for (name, target) in dashboard.queries(CLICKHOUSE) {
            let sql = expand_sql(
                target["rawSql"].as_str().unwrap_or_default(),
                range,
                &chosen,
            )?;
            same_on_both(&engines, &sql).await.context(name)?;
            ran += 1;
        }
    }
    assert!(ran > 5, "only {ran} dashboard queries");
    eprintln!("current engine: {ran} dashboard queries, the same on both engines");
    engines.drop_databases().await
}

/// Runs `sql` on both engines; their TSV answers (with names and types, in
/// order) must be equal. `now()` is one fixed instant for both, so a panel of
/// ages answers the same.
async fn same_on_both(engines: &Engines, sql: &str) -> Result<()> {
    let now = format!("toDateTime({})", chrono::Utc::now().timestamp());
    let sql = &sql.replace("now()", &now);
    let mut answers = Vec::new();
    for store in [&engines.old, &engines.current] {
        // Grafana's data source opens the rollups' database.
        let bytes = store
            .client()
            .clone()
            .with_database(store.rollups_database())
            .query(sql)
            .fetch_bytes("TSVWithNamesAndTypes")?
            .collect()
            .await
            .with_context(|| sql.to_string())?;
        answers.push(String::from_utf8(bytes.to_vec())?);
    }
    if answers[0] != answers[1] {
        bail!(
            "the engines differ\n18.16:\n{}\ncurrent:\n{}\n{sql}",
            answers[0],
            answers[1]
        );
    }
    Ok(())
}

/// The cluster DDL in `deploy/clickhouse/` (generated from the migrations by
/// `cluster_ddl.rs`) parses on the current engine: `EXPLAIN AST` of each
/// statement. It cannot run here (no cluster, no Keeper).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs ClickHouse 26 (chdb): cargo xtask test runs it"]
async fn the_cluster_ddl_parses_on_the_current_engine() -> Result<()> {
    let scope = Scope::new("current-cluster-ddl");
    let store = current_store(&scope).await?;
    let mut parsed = 0;
    for file in ["cluster-replicated.sql", "cluster-sharded.sql"] {
        let path = channelshift_tests::grafana::repository_root()
            .join("deploy/clickhouse")
            .join(file);
        let text = std::fs::read_to_string(&path)?;
        let statements = text.split(";\n").map(|statement| {
            statement
                .lines()
                .filter(|line| !line.starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n")
        });
        for statement in statements.filter(|statement| !statement.trim().is_empty()) {
            store
                .client()
                .clone()
                .with_database("system")
                .query(&format!("EXPLAIN AST {statement}"))
                .fetch_bytes("TSV")?
                .collect()
                .await
                .with_context(|| format!("{file}: {statement}"))?;
            parsed += 1;
        }
    }
    assert!(parsed > 20, "only {parsed} statements");
    eprintln!("current engine: {parsed} cluster DDL statements parsed");
    Ok(())
}

/// Fencing's statements on both engines: claims, the fenced INSERT through
/// staging (only rows carrying their partition's current fence reach the raw
/// table, the id index and the rollups), and the process-list queries ingest
/// uses to stop or await writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs ClickHouse 26 (chdb): cargo xtask test runs it"]
async fn a_stale_writers_rows_are_refused_by_the_server_on_both_engines() -> Result<()> {
    let scope = Scope::new("current-fencing");
    let old = scope.store().await?;
    let current = current_store(&scope).await?;
    let when = at("2025-06-01T12:00:00Z");
    for store in [&old, &current] {
        store.migrate().await?;
        let stale = store
            .claim(Record::Contact, &[0, 1], "replica-a", 7)
            .await?;
        let fresh = store.claim(Record::Contact, &[0], "replica-b", 9).await?;
        assert!(fresh[&0] > stale[&0], "a later claim is higher");
        assert_eq!(
            store.fences(Record::Contact, &[0, 1]).await?,
            [(0, fresh[&0]), (1, stale[&1])].into()
        );
        // ev-0..4: partition 0 under the stale fence (refused); ev-4..8:
        // partition 0 under the fresh one; ev-8..12: partition 1, whose
        // only claim is still current.
        let mut rows: Vec<ContactRow> = (0..12)
            .map(|i| {
                let partition = if i < 8 { 0 } else { 1 };
                let fence = if (4..8).contains(&i) {
                    fresh[&0]
                } else {
                    stale[&partition]
                };
                ContactRow {
                    kafka_partition: partition,
                    fence,
                    ..contact(i, when)
                }
            })
            .collect();
        assert_eq!(store.insert_contacts(&mut rows, Fencing::On).await?, 1);
        let ids: Vec<String> = (0..12).map(|i| format!("ev-{i}")).collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let stored = store.raw_ids(Record::Contact, COUNCIL, &ids).await?;
        let expected: std::collections::HashSet<String> =
            (4..12).map(|i| format!("ev-{i}")).collect();
        assert_eq!(stored, expected);
        assert_eq!(store.id_index_rows(Record::Contact).await?, 8);
        assert_eq!(store.rollup_total(Record::Contact).await?, 8);
        // No claim at all on the satisfaction stream: nothing is stored.
        let mut unclaimed = vec![response(1, when)];
        store
            .insert_satisfaction(&mut unclaimed, Fencing::On)
            .await?;
        assert_eq!(store.raw_rows(Record::Satisfaction).await?, 0);
        assert_eq!(
            tsv(store, "SELECT count() FROM contact_events_staging").await?,
            "0\n",
            "the stage is dropped"
        );
        // Staged, then discarded: nothing reaches the raw table. Staged
        // again, then moved: stored and indexed once.
        let mut late = vec![ContactRow {
            kafka_partition: 1,
            fence: stale[&1],
            ..contact(20, when)
        }];
        let discarded = Staged::assign(&mut late);
        store.stage(&discarded, &late).await?;
        assert_eq!(
            tsv(store, "SELECT count() FROM contact_events_staging").await?,
            "1\n"
        );
        store.unstage(discarded).await;
        assert_eq!(
            tsv(store, "SELECT count() FROM contact_events_staging").await?,
            "0\n",
            "a discarded stage is dropped"
        );
        assert!(store
            .raw_ids(Record::Contact, COUNCIL, &["ev-20"])
            .await?
            .is_empty());
        // Staged under one stamp and moved under a later one (a stage
        // written ahead of its attempt): the raw row carries the move's.
        late[0].ingested_at = 1_700_000_000;
        let staged = Staged::assign(&mut late);
        store.stage(&staged, &late).await?;
        late[0].ingested_at = 1_700_000_060;
        assert_eq!(store.move_staged(staged, &late, Fencing::On).await?, 1);
        assert_eq!(
            tsv(
                store,
                "SELECT toUInt32(ingested_at) FROM contact_events WHERE event_id = 'ev-20'"
            )
            .await?,
            "1700000060\n",
            "the move stamps the rows"
        );
        let mut last = vec![ContactRow {
            kafka_partition: 1,
            fence: stale[&1],
            ..contact(21, when)
        }];
        assert_eq!(store.insert_rows(&mut last, Fencing::On).await?, 1);
        assert_eq!(
            store
                .raw_ids(Record::Contact, COUNCIL, &["ev-20", "ev-21"])
                .await?
                .len(),
            2
        );
        assert_eq!(store.id_index_rows(Record::Contact).await?, 10);
        assert_eq!(
            tsv(store, "SELECT count() FROM contact_events_staging").await?,
            "0\n",
            "a moved stage is dropped"
        );
        let tagged = store.tagged("channelshift-test:");
        assert!(tagged.running_queries("no-such-prefix:").await?.is_empty());
        let unknown = vec!["no-such-query".to_string()];
        assert_eq!(tagged.still_running(&unknown).await?, 0);
        tagged.kill_queries(&unknown).await?;
        store
            .kill_queries_starting("channelshift-api:none:")
            .await?;
        assert_eq!(tagged.drop_stale_stages(3_600).await?, 0);
    }
    for drop in scope.drop_statements() {
        current.client().query(&drop).execute().await?;
    }
    scope.drop_database().await
}

/// Every public async function of the store (each sends SQL) is called by a
/// test in this file, so a statement added to the store is run on the current
/// engine the day it is written.
#[test]
fn every_store_function_that_sends_sql_is_exercised_here() -> Result<()> {
    let root = channelshift_tests::grafana::repository_root();
    let this = std::fs::read_to_string(root.join("tests/tests/current_engine.rs"))?;
    let mut functions = Vec::new();
    for entry in std::fs::read_dir(root.join("crates/store/src"))? {
        let text = std::fs::read_to_string(entry?.path())?;
        for line in text.lines() {
            if let Some(rest) = line.trim_start().strip_prefix("pub async fn ") {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                functions.push(name);
            }
        }
    }
    assert!(functions.len() > 15, "found only {functions:?}");
    let missing: Vec<&String> = functions
        .iter()
        .filter(|name| !this.contains(&format!("{name}(")))
        .collect();
    assert!(
        missing.is_empty(),
        "store functions not run on the current engine: {missing:?}"
    );
    Ok(())
}
