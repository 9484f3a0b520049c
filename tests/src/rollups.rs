//! Raw rows written straight to the store and what their rollups should then
//! hold: the data the rollup tests share (`rebuild.rs`, `current_engine.rs`),
//! built field by field (this crate does not depend on the contract crate).

use anyhow::{Context, Result};
use channelshift_store::{ContactRow, SatisfactionRow, Store, ROLLUPS};
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use std::collections::{BTreeMap, BTreeSet};

pub const COUNCIL: &str = "E07000041";
const CHANNELS: [&str; 5] = ["web", "phone", "app", "face_to_face", "email"];
const OUTCOMES: [&str; 4] = ["completed", "completed", "abandoned", "ineligible"];
const INTERACTIONS: [&str; 3] = ["transaction", "transaction", "information"];
const WARDS: [&str; 3] = ["E05004321", "E05004322", "E05004323"];

/// A contact at 23:30 UTC on the last day of a summer month: 1 August in London.
pub const LATE_IN_JULY: &str = "2025-07-31T23:30:00Z";
/// The same hour in winter (GMT): still 31 October in London.
pub const LATE_IN_OCTOBER: &str = "2025-10-31T23:30:00Z";
/// A response at 23:30 UTC on 30 June: 1 July in London.
pub const LATE_IN_JUNE: &str = "2025-06-30T23:30:00Z";

pub fn at(text: &str) -> DateTime<Utc> {
    text.parse().expect("the test's timestamps are RFC 3339")
}

pub fn seconds(at: DateTime<Utc>) -> u32 {
    u32::try_from(at.timestamp()).expect("the test's timestamps are after 1970")
}

pub fn contact(i: usize, occurred_at: DateTime<Utc>) -> ContactRow {
    ContactRow {
        council: COUNCIL.into(),
        event_id: format!("ev-{i}"),
        occurred_at: seconds(occurred_at),
        channel: CHANNELS[i % CHANNELS.len()],
        assisted: u8::from(i.is_multiple_of(7)),
        service: if i.is_multiple_of(3) {
            "waste"
        } else {
            "council_tax"
        }
        .into(),
        interaction: INTERACTIONS[i % INTERACTIONS.len()],
        outcome: OUTCOMES[i % OUTCOMES.len()],
        customer_type: if i.is_multiple_of(5) {
            "business"
        } else {
            "resident"
        },
        customer_hash: format!("hash-{}", i % 97),
        journey_id: if i.is_multiple_of(4) {
            String::new()
        } else {
            format!("j-{}", i % 50)
        },
        avoidable: (!i.is_multiple_of(4)).then_some(u8::from(i % 8 == 1)),
        first_contact_resolved: (!i.is_multiple_of(3)).then_some(u8::from(i.is_multiple_of(2))),
        ward: WARDS[i % WARDS.len()].into(),
        lsoa: format!("E0100{}", 1000 + i % 11),
        wait_seconds: i
            .is_multiple_of(2)
            .then_some(u32::try_from(i % 300).unwrap_or(0)),
        handling_seconds: i
            .is_multiple_of(3)
            .then_some(u32::try_from(i % 900).unwrap_or(0)),
        source: "test".into(),
        kafka_partition: 0,
        kafka_offset: i64::try_from(i).unwrap_or(0),
        ingested_at: seconds(Utc::now()),
        fence: 0,
        stage: 0,
    }
}

pub fn response(i: usize, responded_at: DateTime<Utc>) -> SatisfactionRow {
    SatisfactionRow {
        council: COUNCIL.into(),
        response_id: format!("r-{i}"),
        responded_at: seconds(responded_at),
        contact_event_id: String::new(),
        channel: CHANNELS[i % CHANNELS.len()],
        service: "waste".into(),
        customer_type: "resident",
        instrument: "csat5",
        score: u8::try_from(1 + i % 5).unwrap_or(1),
        survey_mode: "",
        comment: String::new(),
        ward: String::new(),
        lsoa: String::new(),
        kafka_partition: 0,
        kafka_offset: i64::try_from(i).unwrap_or(0),
        ingested_at: seconds(Utc::now()),
        fence: 0,
        stage: 0,
    }
}

/// Raw rows for March to October 2025 and, worked out here without
/// ClickHouse, how many fall on each local day.
pub struct RawData {
    pub contacts: Vec<ContactRow>,
    pub responses: Vec<SatisfactionRow>,
    pub contacts_per_day: BTreeMap<NaiveDate, u64>,
    pub responses_per_day: BTreeMap<NaiveDate, u64>,
}

pub fn raw_data(contacts: usize, responses: usize) -> RawData {
    let first = NaiveDate::from_ymd_opt(2025, 3, 1).expect("a date");
    // Between 08:00 and 19:59 UTC the London date is the UTC date, in
    // summer (UTC+1) and winter alike.
    let on_day = |i: usize| {
        let day = first + TimeDelta::days(i64::try_from((i * 37) % 245).unwrap_or(0));
        let time = day
            .and_hms_opt(8 + u32::try_from(i % 12).unwrap_or(0), 17, 0)
            .expect("a time of day")
            .and_utc();
        (day, time)
    };
    let mut data = RawData {
        contacts: Vec::new(),
        responses: Vec::new(),
        contacts_per_day: BTreeMap::new(),
        responses_per_day: BTreeMap::new(),
    };
    for i in 0..contacts {
        let (day, time) = on_day(i);
        data.contacts.push(contact(i, time));
        *data.contacts_per_day.entry(day).or_default() += 1;
    }
    for (offset, (when, local_day)) in [
        (LATE_IN_JULY, (2025, 8, 1)),
        (LATE_IN_OCTOBER, (2025, 10, 31)),
    ]
    .into_iter()
    .enumerate()
    {
        data.contacts.push(contact(contacts + offset, at(when)));
        let (y, m, d) = local_day;
        *data
            .contacts_per_day
            .entry(NaiveDate::from_ymd_opt(y, m, d).expect("a date"))
            .or_default() += 1;
    }
    for i in 0..responses {
        let (day, time) = on_day(i * 3 + 1);
        data.responses.push(response(i, time));
        *data.responses_per_day.entry(day).or_default() += 1;
    }
    data.responses.push(response(responses, at(LATE_IN_JUNE)));
    *data
        .responses_per_day
        .entry(NaiveDate::from_ymd_opt(2025, 7, 1).expect("a date"))
        .or_default() += 1;
    data
}

/// Each rollup's key columns and the columns it sums.
pub struct Layout {
    pub table: &'static str,
    pub keys: &'static str,
    pub sums: &'static str,
    pub rows_column: &'static str,
}

pub const LAYOUTS: [Layout; 8] = [
    Layout {
        table: "contact_daily",
        keys: "council, day, service, channel, customer_type, interaction, outcome, assisted",
        sums: "sum(contacts), sum(avoidable_contacts), sum(avoidable_flagged), \
               sum(resolved_first), sum(resolution_flagged), sum(wait_seconds_total), \
               sum(handling_seconds_total), sum(timed)",
        rows_column: "contacts",
    },
    Layout {
        table: "contact_area_daily",
        keys: "council, day, ward, lsoa, channel, assisted, interaction, outcome",
        sums: "sum(contacts)",
        rows_column: "contacts",
    },
    Layout {
        table: "satisfaction_daily",
        keys: "council, day, service, channel, customer_type, instrument, score",
        sums: "sum(responses)",
        rows_column: "responses",
    },
    Layout {
        table: "journey_contacts",
        keys: "council, day, journey, contacted_at, service, channel, customer_type",
        sums: "sum(contacts)",
        rows_column: "contacts",
    },
    Layout {
        table: "journey_days",
        keys: "council, day",
        sums: "sum(contacts)",
        rows_column: "contacts",
    },
    Layout {
        table: "contact_wait_daily",
        keys: "council, day, service, channel, customer_type, outcome, waited, wait",
        sums: "sum(contacts)",
        rows_column: "contacts",
    },
    Layout {
        table: "contact_monthly",
        keys: "council, day, service, channel, customer_type, interaction, outcome, assisted",
        sums: "sum(contacts), sum(avoidable_contacts), sum(avoidable_flagged), \
               sum(resolved_first), sum(resolution_flagged), sum(wait_seconds_total), \
               sum(handling_seconds_total), sum(timed)",
        rows_column: "contacts",
    },
    Layout {
        table: "satisfaction_monthly",
        keys: "council, day, service, channel, customer_type, instrument, score",
        sums: "sum(responses)",
        rows_column: "responses",
    },
];

pub async fn tsv(store: &Store, sql: &str) -> Result<String> {
    let bytes = store
        .client()
        .query(sql)
        .fetch_bytes("TSV")?
        .collect()
        .await
        .with_context(|| sql.to_string())?;
    Ok(String::from_utf8(bytes.to_vec())?)
}

/// The rollup's content, whatever its parts, as sorted TSV.
pub async fn rollup_content(store: &Store, layout: &Layout) -> Result<String> {
    tsv(
        store,
        &format!(
            "SELECT {keys}, {sums} FROM {table} GROUP BY {keys} ORDER BY {keys}",
            keys = layout.keys,
            sums = layout.sums,
            table = store.rollup(layout.table),
        ),
    )
    .await
}

/// What the rollup's view gives when it aggregates every raw row at once.
pub async fn direct_aggregation(store: &Store, layout: &Layout) -> Result<String> {
    let rollup = ROLLUPS
        .iter()
        .find(|rollup| rollup.table == layout.table)
        .context("the rollup is in ROLLUPS")?;
    tsv(
        store,
        &format!(
            "SELECT * FROM ({}{}) ORDER BY {}",
            rollup.select, rollup.group_by, layout.keys
        ),
    )
    .await
}

/// Panics naming a few of the rows that differ.
pub fn assert_same_rows(what: &str, actual: &str, expected: &str) {
    if actual == expected {
        return;
    }
    let actual: BTreeSet<&str> = actual.lines().collect();
    let expected: BTreeSet<&str> = expected.lines().collect();
    let missing: Vec<_> = expected.difference(&actual).take(5).collect();
    let unexpected: Vec<_> = actual.difference(&expected).take(5).collect();
    panic!(
        "{what}: {} rows where {} were expected; missing (first 5): {missing:#?}; \
         unexpected (first 5): {unexpected:#?}",
        actual.len(),
        expected.len()
    );
}

/// Each rollup equals the aggregation of its raw rows by its view's SELECT.
pub async fn assert_rollups_equal_their_view_over_raw(
    store: &Store,
    layouts: &[Layout],
) -> Result<()> {
    for layout in layouts {
        let direct = direct_aggregation(store, layout).await?;
        // A monthly rollup folds a month's days into one row per key.
        let least = if layout.table.ends_with("_monthly") {
            30
        } else {
            100
        };
        assert!(
            direct.lines().count() > least,
            "{}: the data has variety ({} rows)",
            layout.table,
            direct.lines().count()
        );
        assert_same_rows(
            &format!("{} against the aggregation of its raw rows", layout.table),
            &rollup_content(store, layout).await?,
            &direct,
        );
    }
    Ok(())
}

/// A stored forecast's record, as `channelshift-api forecast` writes one:
/// `value` with 80% and 95% ranges of ±1 and ±2, a backtest error of 0.5
/// over 4 months of 25 months' history; without a value, the note why.
pub fn forecast_record(
    kpi: &str,
    month: NaiveDate,
    value: Option<f64>,
) -> channelshift_store::ForecastRecord {
    channelshift_store::ForecastRecord {
        kpi: kpi.into(),
        month,
        value,
        low80: value.map(|v| v - 1.0),
        high80: value.map(|v| v + 1.0),
        low95: value.map(|v| v - 2.0),
        high95: value.map(|v| v + 2.0),
        method: "MSTL".into(),
        backtest_mae: value.map(|_| 0.5),
        backtests: 4,
        history_months: 25,
        note: if value.is_none() {
            "too little history".into()
        } else {
            String::new()
        },
    }
}
