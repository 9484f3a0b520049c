//! `rebuild-rollups`: after the rollups are corrupted (bogus rows, a month
//! missing), a rebuild makes each equal to its raw rows, counting every row on
//! its Europe/London day; a reader polling during the rebuild sees each month
//! either as it was or as it ends up, never half-way; rebuilding again changes
//! nothing; and rows inserted while their month is rebuilt count once.
//!
//! Raw rows are written straight to the store (this crate does not depend on
//! the contract crate, so they are built field by field).

use anyhow::{Context, Result};
use channelshift_ingest::rebuild::ReportLine;
use channelshift_store::{Fencing, RebuildReport, RebuildStep, Store};
use channelshift_tests::rollups::{
    assert_rollups_equal_their_view_over_raw, contact, direct_aggregation, raw_data,
    rollup_content, tsv, Layout, RawData, COUNCIL, LAYOUTS,
};
use channelshift_tests::Scope;
use chrono::{Datelike, NaiveDate, TimeDelta};
use clickhouse::Row;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

fn yyyymm(day: NaiveDate) -> u32 {
    u32::try_from(day.year()).unwrap_or(0) * 100 + day.month()
}

fn per_month(per_day: &BTreeMap<NaiveDate, u64>) -> BTreeMap<u32, u64> {
    let mut months = BTreeMap::new();
    for (day, n) in per_day {
        *months.entry(yyyymm(*day)).or_default() += n;
    }
    months
}

/// A new database, migrated, holding `data` (the views fill the rollups).
async fn store_with(scope: &Scope, data: &RawData) -> Result<Store> {
    let store = scope.store().await?;
    store.migrate().await?;
    store
        .insert_contacts(&mut data.contacts.clone(), Fencing::Off)
        .await?;
    store
        .insert_satisfaction(&mut data.responses.clone(), Fencing::Off)
        .await?;
    Ok(store)
}

#[derive(Row, Deserialize)]
struct DayTotal {
    local_day: String,
    n: u64,
}

async fn per_day(store: &Store, layout: &Layout) -> Result<BTreeMap<NaiveDate, u64>> {
    let rows = store
        .client()
        .query(&format!(
            "SELECT toString(day) AS local_day, toUInt64(sum({})) AS n FROM {} GROUP BY day",
            layout.rows_column,
            store.rollup(layout.table)
        ))
        .fetch_all::<DayTotal>()
        .await?;
    rows.into_iter()
        .map(|row| Ok((row.local_day.parse()?, row.n)))
        .collect()
}

#[derive(Row, Deserialize)]
struct MonthTotal {
    month: u32,
    n: u64,
}

async fn per_month_in(store: &Store, layout: &Layout) -> Result<BTreeMap<u32, u64>> {
    let rows = store
        .client()
        .query(&format!(
            "SELECT toYYYYMM(day) AS month, toUInt64(sum({})) AS n FROM {} GROUP BY month",
            layout.rows_column,
            store.rollup(layout.table)
        ))
        .fetch_all::<MonthTotal>()
        .await?;
    Ok(rows
        .into_iter()
        .filter(|row| row.n > 0)
        .map(|row| (row.month, row.n))
        .collect())
}

async fn execute(store: &Store, sql: &str) -> Result<()> {
    store
        .client()
        .query(sql)
        .execute()
        .await
        .with_context(|| sql.to_string())
}

/// Bogus rows in `contact_daily`, `contact_monthly`, `satisfaction_daily`, `satisfaction_monthly`,
/// `journey_contacts`, `journey_days` and `contact_wait_daily`, on a day of every
/// month with data and in a month without any (which the rebuild must drop),
/// and a month deleted from `contact_area_daily`, as if its view had missed it.
async fn corrupt_rollups(store: &Store) -> Result<()> {
    let r = store.rollups_database();
    for month in 3..=10 {
        let day = format!("2025-{month:02}-12");
        execute(
            store,
            &format!(
                "INSERT INTO {r}.contact_daily (council, day, service, channel, customer_type, \
                 interaction, outcome, assisted, contacts, timed) \
                 VALUES ('{COUNCIL}', '{day}', 'council_tax', 'web', 'resident', 'transaction', \
                 'completed', 0, {n}, 1)",
                n = 1_000 + month
            ),
        )
        .await?;
        execute(
            store,
            &format!(
                "INSERT INTO {r}.satisfaction_daily (council, day, service, channel, customer_type, \
                 instrument, score, responses) \
                 VALUES ('{COUNCIL}', '{day}', 'waste', 'web', 'resident', 'csat5', 5, {n})",
                n = 500 + month
            ),
        )
        .await?;
        execute(
            store,
            &format!(
                "INSERT INTO {r}.journey_contacts (council, day, journey, contacted_at, service, \
                 channel, customer_type, contacts) \
                 VALUES ('{COUNCIL}', '{day}', 42, '{day} 10:00:00', 'waste', 'phone', 'resident', {n})",
                n = 1_000 + month
            ),
        )
        .await?;
        execute(
            store,
            &format!(
                "INSERT INTO {r}.journey_days (council, day, contacts) \
                 VALUES ('{COUNCIL}', '{day}', {n})",
                n = 2_000 + month
            ),
        )
        .await?;
        execute(
            store,
            &format!(
                "INSERT INTO {r}.contact_monthly (council, day, service, channel, customer_type, \
                 interaction, outcome, assisted, contacts, timed) \
                 VALUES ('{COUNCIL}', '2025-{month:02}-01', 'council_tax', 'web', 'resident', \
                 'transaction', 'completed', 0, {n}, 1)",
                n = 3_000 + month
            ),
        )
        .await?;
        execute(
            store,
            &format!(
                "INSERT INTO {r}.satisfaction_monthly (council, day, service, channel, \
                 customer_type, instrument, score, responses) \
                 VALUES ('{COUNCIL}', '2025-{month:02}-01', 'waste', 'web', 'resident', 'csat5', 4, {n})",
                n = 600 + month
            ),
        )
        .await?;
        execute(
            store,
            &format!(
                "INSERT INTO {r}.contact_wait_daily (council, day, service, channel, customer_type, \
                 outcome, waited, wait, contacts) \
                 VALUES ('{COUNCIL}', '{day}', 'waste', 'phone', 'resident', 'abandoned', 1, 99, {n})",
                n = 1_000 + month
            ),
        )
        .await?;
        if month != 7 {
            execute(
                store,
                &format!(
                    "INSERT INTO {r}.contact_area_daily (council, day, ward, lsoa, channel, assisted, \
                     interaction, outcome, contacts) \
                     VALUES ('{COUNCIL}', '{day}', 'E05009999', '', 'web', 0, 'transaction', \
                     'completed', {month})"
                ),
            )
            .await?;
        }
    }
    execute(
        store,
        &format!(
            "INSERT INTO {r}.contact_daily (council, day, service, channel, customer_type, \
             interaction, outcome, assisted, contacts) \
             VALUES ('{COUNCIL}', '2024-11-03', 'waste', 'phone', 'resident', 'transaction', \
             'completed', 0, 77)"
        ),
    )
    .await?;
    execute(
        store,
        &format!(
            "INSERT INTO {r}.satisfaction_daily (council, day, service, channel, customer_type, \
             instrument, score, responses) \
             VALUES ('{COUNCIL}', '2024-11-03', 'waste', 'web', 'resident', 'csat5', 1, 3)"
        ),
    )
    .await?;
    execute(
        store,
        &format!("ALTER TABLE {r}.contact_area_daily DROP PARTITION 202507"),
    )
    .await
}

/// Every rollup as a whole, for comparing one state with another.
async fn all_rollups(store: &Store) -> Result<Vec<String>> {
    let mut contents = Vec::new();
    for layout in &LAYOUTS {
        contents.push(rollup_content(store, layout).await?);
    }
    Ok(contents)
}

async fn assert_rollups_equal_raw(store: &Store, data: &RawData) -> Result<()> {
    assert_rollups_equal_their_view_over_raw(store, &LAYOUTS).await?;
    for layout in &LAYOUTS {
        // Worked out without ClickHouse's help: each row on its London day
        // (in the monthly rollups, on the first of its London month).
        let mut expected = if layout.table.starts_with("satisfaction") {
            data.responses_per_day.clone()
        } else {
            data.contacts_per_day.clone()
        };
        if layout.table.ends_with("_monthly") {
            let mut months = BTreeMap::new();
            for (day, n) in expected {
                *months
                    .entry(day.with_day(1).context("a date")?)
                    .or_default() += n;
            }
            expected = months;
        }
        assert_eq!(
            per_day(store, layout).await?,
            expected,
            "{}: rows per local day",
            layout.table
        );
    }
    Ok(())
}

async fn staging_tables(store: &Store) -> Result<String> {
    tsv(
        store,
        "SELECT name FROM system.tables WHERE database = currentDatabase() AND name LIKE '%_rebuild'",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_makes_every_rollup_equal_its_raw_rows_on_local_days() -> Result<()> {
    let scope = Scope::new("rebuild");
    let data = raw_data(3_000, 1_000);
    let store = store_with(&scope, &data).await?;
    corrupt_rollups(&store).await?;
    // The corruption shows, or this test would prove nothing.
    for layout in &LAYOUTS {
        assert!(
            rollup_content(&store, layout).await? != direct_aggregation(&store, layout).await?,
            "{} is corrupted before the rebuild",
            layout.table
        );
    }

    let mut steps = Vec::new();
    let started = Instant::now();
    let report = store
        .rebuild_rollups(|step: &RebuildStep| steps.push(step.clone()))
        .await?;
    eprintln!(
        "rebuild: {} (measured {:?})",
        ReportLine(&report),
        started.elapsed()
    );

    assert_rollups_equal_raw(&store, &data).await?;
    // 23:30 UTC on 31 July is counted on 1 August; the same hour on 31 October (GMT) is not moved.
    let contact_days = per_day(&store, &LAYOUTS[0]).await?;
    let first_of_august = NaiveDate::from_ymd_opt(2025, 8, 1).context("a date")?;
    assert_eq!(
        contact_days.get(&first_of_august),
        data.contacts_per_day.get(&first_of_august)
    );
    assert!(data.contacts_per_day.contains_key(&first_of_august));

    // Every month with raw rows, once, in order; the bogus month was dropped.
    let contact_months: Vec<u32> = per_month(&data.contacts_per_day).into_keys().collect();
    let rebuilt = |rollup: &str| -> Vec<(u32, u64)> {
        steps
            .iter()
            .filter(|step| step.rollup == rollup)
            .map(|step| (step.month.yyyymm(), step.raw_rows))
            .collect()
    };
    let mut expected: Vec<(u32, u64)> = vec![(202411, 0)];
    expected.extend(per_month(&data.contacts_per_day));
    assert_eq!(rebuilt("contact_daily"), expected);
    assert_eq!(
        rebuilt("contact_area_daily")
            .iter()
            .map(|(m, _)| *m)
            .collect::<Vec<_>>(),
        contact_months
    );
    assert_eq!(steps.len(), steps.last().map_or(0, |step| step.total));
    assert!(steps
        .iter()
        .enumerate()
        .all(|(i, step)| step.index == i + 1));
    assert_eq!(
        staging_tables(&store).await?,
        "",
        "staging tables are dropped"
    );
    scope.drop_database().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_sees_each_month_as_it_was_or_as_rebuilt_never_in_between() -> Result<()> {
    let scope = Scope::new("rebuild-reader");
    let data = raw_data(3_000, 1_000);
    let store = store_with(&scope, &data).await?;
    corrupt_rollups(&store).await?;

    // Each month's total before the rebuild and after it; they differ for
    // every month, so a month emptied or half-filled on the way shows.
    let mut before = Vec::new();
    let mut after = Vec::new();
    for layout in &LAYOUTS {
        before.push(per_month_in(&store, layout).await?);
        after.push(per_month(if layout.table.starts_with("satisfaction") {
            &data.responses_per_day
        } else {
            &data.contacts_per_day
        }));
    }
    for (i, layout) in LAYOUTS.iter().enumerate() {
        let months = before[i].keys().chain(after[i].keys());
        for month in months {
            assert_ne!(
                before[i].get(month),
                after[i].get(month),
                "{} {month} changes in the rebuild",
                layout.table
            );
        }
    }

    let rebuilding = Arc::new(AtomicBool::new(true));
    let reader = {
        let store = store.clone();
        let rebuilding = rebuilding.clone();
        let (before, after) = (before.clone(), after.clone());
        tokio::spawn(async move {
            let mut polls = 0_u64;
            let mut mixed = 0_u64;
            let mut seen_wrong = Vec::new();
            while rebuilding.load(Ordering::Relaxed) {
                for (i, layout) in LAYOUTS.iter().enumerate() {
                    let now = per_month_in(&store, layout).await?;
                    let (mut old, mut new) = (false, false);
                    for month in now.keys().chain(before[i].keys()).chain(after[i].keys()) {
                        let seen = now.get(month);
                        if seen == before[i].get(month) {
                            old = true;
                        } else if seen == after[i].get(month) {
                            new = true;
                        } else {
                            seen_wrong.push(format!("{} {month}: {seen:?}", layout.table));
                        }
                    }
                    polls += 1;
                    mixed += u64::from(old && new);
                }
            }
            anyhow::Ok((polls, mixed, seen_wrong))
        })
    };
    let started = Instant::now();
    let report = store.rebuild_rollups(|_| {}).await;
    rebuilding.store(false, Ordering::Relaxed);
    let (polls, mixed, seen_wrong) = reader.await??;
    let report = report?;
    eprintln!(
        "rebuild with a reader: {}; {polls} polls in {:?}, {mixed} saw some months rebuilt \
         and others not yet",
        ReportLine(&report),
        started.elapsed()
    );
    assert!(
        seen_wrong.is_empty(),
        "a reader saw months neither as they were nor as rebuilt: {seen_wrong:?}"
    );
    // The reader really read while months were being swapped.
    assert!(
        mixed >= 3,
        "only {mixed} of {polls} polls fell within the rebuild"
    );
    for (i, layout) in LAYOUTS.iter().enumerate() {
        assert_eq!(per_month_in(&store, layout).await?, after[i]);
    }
    scope.drop_database().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuilding_again_changes_nothing() -> Result<()> {
    let scope = Scope::new("rebuild-twice");
    let data = raw_data(2_000, 600);
    let store = store_with(&scope, &data).await?;
    corrupt_rollups(&store).await?;

    let first = store.rebuild_rollups(|_| {}).await?;
    let once = all_rollups(&store).await?;
    let second = store.rebuild_rollups(|_| {}).await?;
    let twice = all_rollups(&store).await?;

    assert_eq!(
        once, twice,
        "a second rebuild leaves every rollup as the first did"
    );
    assert_rollups_equal_raw(&store, &data).await?;
    // The second found exactly the months with raw rows: nothing left to drop.
    assert_eq!(second.rollups.len(), first.rollups.len());
    for (first, second) in first.rollups.iter().zip(&second.rollups) {
        assert_eq!(second.raw_rows, first.raw_rows);
        assert_eq!(second.months_dropped, 0);
        assert_eq!(second.months, first.months - first.months_dropped);
    }
    scope.drop_database().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_inserted_while_their_month_is_rebuilt_are_counted_once() -> Result<()> {
    let scope = Scope::new("rebuild-live");
    let data = raw_data(2_000, 0);
    let store = store_with(&scope, &data).await?;
    // Whether a writer's contacts land in a month while it is rebuilt is a
    // matter of timing: each round checks the rollups, and the rounds go on
    // until one had to compute a month again (at most five).
    let mut recomputed = Vec::new();
    for round in 0..5_usize {
        let (written, report) = rebuild_while_writing(&store, round).await?;
        eprintln!(
            "rebuild while writing, round {round}: {}; {written} contacts written during it",
            ReportLine(&report)
        );
        assert!(written > 0, "nothing was written during the rebuild");
        assert_rollups_equal_their_view_over_raw(&store, &LAYOUTS[..2]).await?;
        recomputed.push(report.months_recomputed);
        if report.months_recomputed > 0 {
            break;
        }
    }
    // The writer did write into months being rebuilt, or the checks above
    // proved little.
    assert!(
        recomputed.iter().any(|months| *months > 0),
        "no month computed again in {} rounds",
        recomputed.len()
    );
    scope.drop_database().await
}

/// One round of `contacts_inserted_while_their_month_is_rebuilt_are_counted_once`:
/// corrupts the rollups, then rebuilds them while a writer inserts contacts
/// into the month being rebuilt. Returns how many it wrote, and the report.
async fn rebuild_while_writing(store: &Store, round: usize) -> Result<(usize, RebuildReport)> {
    corrupt_rollups(store).await?;
    // A writer (ingest, say) inserts contacts into the month the rebuild has
    // just started on: a burst of six, 8 ms apart, the first 0-20 ms after
    // the month started (a month takes 10-100 ms here). Some are mid-month,
    // some at 23:30 UTC on the last day of the month before, which are in the
    // month locally but in the previous UTC partition.
    let (done, mut month_done) = tokio::sync::watch::channel(None::<(&'static str, u32)>);
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut written = 0_usize;
            let mut bursts = 0_u64;
            while month_done.changed().await.is_ok() {
                let Some((rollup, yyyymm)) = *month_done.borrow_and_update() else {
                    continue;
                };
                let done_month =
                    NaiveDate::from_ymd_opt(i32::try_from(yyyymm / 100)?, yyyymm % 100, 1)
                        .context("a month")?;
                let month = done_month + chrono::Months::new(1);
                if rollup == "satisfaction_daily" || yyyymm < 202503 || month.month() > 10 {
                    continue;
                }
                let mut pause = bursts % 5 * 5;
                bursts += 1;
                for i in 0..6 {
                    tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                    pause = 8;
                    let when = if i % 2 == 0 {
                        (month + TimeDelta::days(i)).and_hms_opt(10, 0, 0)
                    } else {
                        (month - TimeDelta::days(1)).and_hms_opt(23, 30, 0)
                    }
                    .context("a time")?
                    .and_utc();
                    store
                        .insert_contacts(
                            &mut [contact(100_000 + round * 1_000 + written, when)],
                            Fencing::Off,
                        )
                        .await?;
                    written += 1;
                }
            }
            anyhow::Ok(written)
        })
    };
    let report = store
        .rebuild_rollups(|step| {
            let _ = done.send(Some((step.rollup, step.month.yyyymm())));
        })
        .await;
    drop(done);
    let written = writer.await??;
    let report = report?;
    Ok((written, report))
}
