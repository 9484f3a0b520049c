//! The simulator's own truth against the whole pipeline: a seeded scenario,
//! with bad messages and duplicates injected, goes through Kafka, ingest and
//! ClickHouse, and the KPI API's counts equal what the simulator says it
//! produced: exactly, per channel, service, month, ward and instrument.

use anyhow::{Context, Result};
use channelshift_simulator::{Faults, Generator, Scenario};
use channelshift_tests::checks::{contact_totals, load_and_wait, Stored};
use channelshift_tests::kafka::{await_consumed, read_topic};
use channelshift_tests::{create_topics, simulated, start_api, start_ingest, Scope, API_TOKEN};
use chrono::NaiveDate;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

const COUNCIL: &str = "E07000041";

async fn kpi(client: &reqwest::Client, api: &str, query: &str) -> Result<Value> {
    let url = format!("{api}/api/v1/kpi/{query}");
    let response = client.get(&url).bearer_auth(API_TOKEN).send().await?;
    anyhow::ensure!(
        response.status().is_success(),
        "{url}: {}",
        response.status()
    );
    Ok(response.json().await?)
}

fn rows(body: &Value) -> &[Value] {
    body["rows"].as_array().map_or(&[], Vec::as_slice)
}

/// (numerator, denominator) of each row, keyed by the row's `key` field.
fn by_key(body: &Value, key: &str) -> BTreeMap<String, (u64, u64)> {
    rows(body)
        .iter()
        .map(|row| {
            (
                row[key].as_str().unwrap_or_default().to_string(),
                (
                    row["numerator"].as_u64().unwrap_or(0),
                    row["denominator"].as_u64().unwrap_or(0),
                ),
            )
        })
        .collect()
}

/// (digital completed, completed) transactions of each slice of the truth.
fn take_up_by<T>(
    slices: &BTreeMap<String, T>,
    counts: impl Fn(&T) -> (u64, u64),
) -> BTreeMap<String, (u64, u64)> {
    slices
        .iter()
        .map(|(key, slice)| (key.clone(), counts(slice)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kpi_api_reports_exactly_what_the_simulator_produced() -> Result<()> {
    let scope = Scope::new("simtruth");
    create_topics(&scope).await?;
    let ingest = start_ingest(scope.ingest_config());

    let mut scenario = Scenario::district();
    scenario.seed = 2026;
    scenario.contacts = Some(6_000);
    scenario.months = 13;
    scenario.end = NaiveDate::from_ymd_opt(2026, 10, 31).context("valid date")?;
    scenario.faults = Faults {
        bad_rate: 0.02,
        duplicate_rate: 0.03,
    };
    let (from, to) = (scenario.start(), scenario.end);
    let mut generator = Generator::new(scenario);
    let (contacts, responses) = simulated(&mut generator, None);
    let truth = generator.truth.councils[COUNCIL].clone();
    let injected = generator.truth.injected.clone();
    assert!(injected.bad_messages > 0, "the run injects bad messages");

    let stored = Stored::from(&truth);
    let store = load_and_wait(
        &scope,
        &contacts,
        &responses,
        stored,
        Duration::from_secs(120),
    )
    .await?;
    await_consumed(
        &scope.stack.kafka_brokers,
        &scope.group_id,
        &[&scope.contact_topic, &scope.satisfaction_topic],
        Duration::from_secs(120),
    )
    .await?;

    // Threshold 0: nothing suppressed, so every count can be compared.
    let (api, server) = start_api(&scope, 0).await?;
    let client = reqwest::Client::new();
    let range = format!("council={COUNCIL}&from={from}&to={to}");

    let take_up = kpi(&client, &api, &format!("digital-take-up?{range}")).await?;
    let row = &rows(&take_up)[0];
    assert_eq!(
        row["numerator"].as_u64(),
        Some(truth.digital_completed_transactions)
    );
    assert_eq!(
        row["denominator"].as_u64(),
        Some(truth.completed_transactions)
    );

    let mix = kpi(&client, &api, &format!("channel-mix?{range}")).await?;
    let by_channel: BTreeMap<String, u64> = by_key(&mix, "channel")
        .into_iter()
        .map(|(channel, (count, total))| {
            assert_eq!(total, truth.contact_events, "mix denominator");
            (channel, count)
        })
        .collect();
    let expected: BTreeMap<String, u64> = truth
        .contacts_by_channel
        .iter()
        .filter(|(_, count)| **count > 0)
        .map(|(channel, count)| (channel.clone(), *count))
        .collect();
    assert_eq!(by_channel, expected, "contacts per channel");

    let services = kpi(
        &client,
        &api,
        &format!("digital-take-up?{range}&group_by=service"),
    )
    .await?;
    let expected = take_up_by(&truth.services, |slice| {
        (
            slice.digital_completed_transactions,
            slice.completed_transactions,
        )
    });
    assert_eq!(
        by_key(&services, "service"),
        expected,
        "take-up per service"
    );

    let months = kpi(
        &client,
        &api,
        &format!("digital-take-up?{range}&period=month"),
    )
    .await?;
    let got: BTreeMap<String, (u64, u64)> = rows(&months)
        .iter()
        .map(|row| {
            (
                row["period_start"].as_str().unwrap_or_default()[..7].to_string(),
                (
                    row["numerator"].as_u64().unwrap_or(0),
                    row["denominator"].as_u64().unwrap_or(0),
                ),
            )
        })
        .collect();
    let expected = take_up_by(&truth.months, |slice| {
        (
            slice.digital_completed_transactions,
            slice.completed_transactions,
        )
    });
    assert_eq!(got, expected, "take-up per local month");

    let wards = kpi(&client, &api, &format!("hotspots?{range}&group_by=ward")).await?;
    let expected = take_up_by(&truth.wards, |slice| {
        (
            slice.digital_completed_transactions,
            slice.completed_transactions,
        )
    });
    assert_eq!(by_key(&wards, "ward"), expected, "take-up per ward");
    for row in rows(&wards) {
        let ward = row["ward"].as_str().unwrap_or_default();
        assert_eq!(
            row["contacts"].as_u64(),
            Some(truth.wards[ward].contact_events),
            "{ward}"
        );
    }

    let satisfaction = kpi(&client, &api, &format!("satisfaction?{range}")).await?;
    for (instrument, expected) in &truth.satisfaction {
        let n = rows(&satisfaction)
            .iter()
            .find(|row| row["instrument"] == instrument.as_str())
            .and_then(|row| row["n"].as_u64());
        assert_eq!(n, Some(expected.responses), "{instrument} responses");
    }

    let avoidable = kpi(&client, &api, &format!("avoidable-contact?{range}")).await?;
    let row = &rows(&avoidable)[0];
    assert_eq!(row["numerator"].as_u64(), Some(truth.avoidable_contacts));
    assert_eq!(row["denominator"].as_u64(), Some(truth.avoidable_flagged));

    // The bad messages were dead-lettered, one each; the duplicates vanished.
    let brokers = &scope.stack.kafka_brokers;
    let dead = read_topic(
        brokers,
        &format!("{}.dlq", scope.contact_topic),
        usize::MAX,
        Duration::from_secs(5),
    )?
    .len()
        + read_topic(
            brokers,
            &format!("{}.dlq", scope.satisfaction_topic),
            usize::MAX,
            Duration::from_secs(5),
        )?
        .len();
    assert_eq!(dead as u64, injected.bad_messages, "dead letters");
    assert_eq!(
        contact_totals(&store).await?,
        channelshift_tests::checks::ContactTotals::exactly(truth.contact_events)
    );

    server.stop().await?;
    ingest.stop().await?;
    scope.drop_database().await
}

/// (resolved, journeys) of the journeys starting from `from` to `to` (local
/// days), a week's window, from the contacts as produced: the definition
/// worked here without ClickHouse. Also the contacts in the range without
/// a journey id.
fn journeys_of(
    contacts: &[(String, Vec<u8>)],
    from: NaiveDate,
    to: NaiveDate,
) -> ((u64, u64), u64) {
    const WEEK: i64 = 7 * 86_400;
    let mut by_journey: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut unlinked = 0;
    let local = |at: i64| {
        chrono::DateTime::from_timestamp(at, 0)
            .map(|at| at.with_timezone(&chrono_tz::Europe::London).date_naive())
    };
    for (_, payload) in contacts {
        let Ok(event) = serde_json::from_slice::<Value>(payload) else {
            continue;
        };
        let Some(at) = event["occurred_at"]
            .as_str()
            .and_then(|text| chrono::DateTime::parse_from_rfc3339(text).ok())
        else {
            continue;
        };
        let at = at.timestamp();
        match event["journey_id"].as_str() {
            Some(journey) => by_journey.entry(journey.to_string()).or_default().push(at),
            None => {
                if local(at).is_some_and(|day| from <= day && day <= to) {
                    unlinked += 1;
                }
            }
        }
    }
    let (mut resolved, mut journeys) = (0, 0);
    for instants in by_journey.values_mut() {
        instants.sort_unstable();
        for (i, &at) in instants.iter().enumerate() {
            let starts = i == 0 || at - instants[i - 1] > WEEK;
            if !starts || !local(at).is_some_and(|day| from <= day && day <= to) {
                continue;
            }
            journeys += 1;
            if instants.get(i + 1).is_none_or(|&next| next - at > WEEK) {
                resolved += 1;
            }
        }
    }
    ((resolved, journeys), unlinked)
}

/// The simulator's options for testing definitions, through the whole
/// pipeline: a quiet month says "no data", a capped service is a small cell
/// the API withholds, and first-contact resolution counts the journeys the
/// messages hold, repeats inside and outside the window and unlinked
/// contacts alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shaped_data_gives_no_data_small_cells_and_journeys_through_the_pipeline() -> Result<()> {
    let scope = Scope::new("simshaped");
    create_topics(&scope).await?;
    let ingest = start_ingest(scope.ingest_config());

    let mut scenario = Scenario::district();
    scenario.seed = 7;
    scenario.contacts = Some(5_000);
    scenario.months = 6;
    scenario.end = NaiveDate::from_ymd_opt(2026, 9, 30).context("valid date")?;
    let june = (
        NaiveDate::from_ymd_opt(2026, 6, 1).context("valid date")?,
        NaiveDate::from_ymd_opt(2026, 6, 30).context("valid date")?,
    );
    scenario.shaping.quiet = Some(june);
    scenario
        .shaping
        .service_caps
        .insert("council_tax".into(), 3);
    scenario.shaping.unlinked_share = 0.2;
    for council in &mut scenario.councils {
        council.journeys.repeat_delay_hours = 24.0 * 10.0;
    }
    let (from, to) = (scenario.start(), scenario.end);
    let mut generator = Generator::new(scenario);
    let (contacts, responses) = simulated(&mut generator, None);
    let truth = generator.truth.councils[COUNCIL].clone();
    load_and_wait(
        &scope,
        &contacts,
        &responses,
        Stored::from(&truth),
        Duration::from_secs(120),
    )
    .await?;
    let (api, server) = start_api(&scope, 10).await?;
    let client = reqwest::Client::new();

    // June: no contacts, so no data (not withheld).
    let body = kpi(
        &client,
        &api,
        &format!(
            "digital-take-up?council={COUNCIL}&from={}&to={}",
            june.0, june.1
        ),
    )
    .await?;
    let row = &rows(&body)[0];
    assert_eq!(row["n"], 0, "{row}");
    assert_eq!(row["value"], Value::Null, "{row}");
    assert_eq!(row["suppressed"], false, "no data is not withheld: {row}");

    // July by service: council tax's 3 contacts at most are withheld.
    let body = kpi(
        &client,
        &api,
        &format!("channel-mix?council={COUNCIL}&from=2026-07-01&to=2026-07-31&group_by=channel_class,service"),
    )
    .await?;
    let council_tax: Vec<&Value> = rows(&body)
        .iter()
        .filter(|row| row["service"] == "council_tax")
        .collect();
    assert!(!council_tax.is_empty(), "council tax has July contacts");
    assert!(
        council_tax.iter().all(|row| row["suppressed"] == true),
        "{council_tax:?}"
    );
    assert!(rows(&body)
        .iter()
        .any(|row| row["service"] != "council_tax" && row["suppressed"] == false));

    // First-contact resolution: the journeys the messages hold.
    let ((resolved, journeys), unlinked) = journeys_of(&contacts, from, to);
    let body = kpi(
        &client,
        &api,
        &format!("first-contact-resolution?council={COUNCIL}&from={from}&to={to}"),
    )
    .await?;
    let row = &rows(&body)[0];
    assert_eq!(row["numerator"].as_u64(), Some(resolved), "{row}");
    assert_eq!(row["denominator"].as_u64(), Some(journeys), "{row}");
    assert_eq!(row["not_measurable"].as_u64(), Some(unlinked), "{row}");
    assert!(
        unlinked > 100 && journeys > 1_000 && resolved < journeys,
        "{row}"
    );
    eprintln!("shaped: {resolved} of {journeys} journeys resolved, {unlinked} contacts unlinked");

    server.stop().await?;
    ingest.stop().await?;
    scope.drop_database().await
}
