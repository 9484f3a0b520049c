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
