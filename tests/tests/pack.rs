//! Committee packs as CSV: the figures equal the KPI API's for the same
//! period, small numerators are withheld, and a pack regenerated with the
//! same as-of is byte for byte the same after later data arrives.

use anyhow::{Context, Result};
use channelshift_api::config::KpiSettings;
use channelshift_tests::checks::{await_settled, last_ingested, load_and_wait, Stored};
use channelshift_tests::{
    contact_events, create_topics, start_api_with, start_ingest, Scope, API_TOKEN,
};
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;

const COUNCIL: &str = "E07000041";

async fn get(client: &reqwest::Client, url: &str) -> Result<String> {
    let response = client.get(url).bearer_auth(API_TOKEN).send().await?;
    anyhow::ensure!(
        response.status().is_success(),
        "{url}: {}",
        response.status()
    );
    Ok(response.text().await?)
}

/// The pack's rows as maps from column name to text (the test data has no
/// field that needs quoting, which the first assertion checks).
fn rows(csv: &str) -> Result<Vec<HashMap<String, String>>> {
    anyhow::ensure!(!csv.contains('"'), "no quoted fields expected in this data");
    anyhow::ensure!(csv.ends_with("\r\n"), "RFC 4180 lines end with CRLF");
    let mut lines = csv.split("\r\n").filter(|line| !line.is_empty());
    let header: Vec<&str> = lines.next().context("a header row")?.split(',').collect();
    lines
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            anyhow::ensure!(
                fields.len() == header.len(),
                "row {line:?} has {} fields",
                fields.len()
            );
            Ok(header
                .iter()
                .zip(fields)
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect())
        })
        .collect()
}

fn find<'a>(
    rows: &'a [HashMap<String, String>],
    kpi: &str,
    breakdown: &str,
    value: &str,
) -> Option<&'a HashMap<String, String>> {
    rows.iter().find(|row| {
        row["kpi"] == kpi && row["breakdown"] == breakdown && row["breakdown_value"] == value
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pack_matches_the_api_withholds_small_counts_and_regenerates_identically() -> Result<()> {
    let scope = Scope::new("pack");
    create_topics(&scope).await?;
    let ingest = start_ingest(scope.ingest_config());
    // 1,200 events over 2025; April to June (financial Q1) gets 300.
    let mut first_load = contact_events("ev", 0..1_200);
    // And 4 kiosk contacts in May: too few to publish.
    for i in 0..4 {
        let id = format!("kiosk-{i}");
        let mut event: Value = serde_json::from_slice(&channelshift_tests::contact_event(&id, i))?;
        event["channel"] = "kiosk".into();
        event["occurred_at"] = "2025-05-10T10:00:00Z".into();
        first_load.push((id, event.to_string().into_bytes()));
    }
    let stored = Stored {
        contacts: 1_204,
        responses: 0,
    };
    let store = load_and_wait(&scope, &first_load, &[], stored, Duration::from_secs(60)).await?;
    // A pack is as of an instant at least `pack_settle_seconds` ago: 3 s here
    // (ingest's attempts take well under that in this test; 120 s by default).
    let (api, server) = start_api_with(
        &scope,
        KpiSettings {
            pack_settle_seconds: 3,
            ..KpiSettings::default()
        },
    )
    .await?;
    // The default as-of (3 s ago) then covers every row stored so far.
    await_settled(last_ingested(&store).await?, 3).await;
    let client = reqwest::Client::new();
    let pack_url =
        format!("{api}/api/v1/exports/pack?council={COUNCIL}&period=quarter&date=2025-05-15");
    let first = get(&client, &pack_url).await?;
    let pack = rows(&first)?;
    let as_of = pack.first().context("the pack has rows")?["as_of"].clone();

    // The pack's figures are the API's for the same period.
    let range = format!("council={COUNCIL}&from=2025-04-01&to=2025-06-30");
    let take_up: Value = serde_json::from_str(
        &get(
            &client,
            &format!("{api}/api/v1/kpi/digital-take-up?{range}"),
        )
        .await?,
    )?;
    let api_row = &take_up["rows"][0];
    let pack_row = find(&pack, "digital-take-up", "total", "").context("take-up total row")?;
    assert_eq!(pack_row["numerator"], api_row["numerator"].to_string());
    assert_eq!(pack_row["denominator"], api_row["denominator"].to_string());
    let value: f64 = pack_row["value"].parse()?;
    assert!((value - api_row["value"].as_f64().unwrap_or(f64::NAN)).abs() < 1e-9);
    assert_eq!(pack_row["period_start"], "2025-04-01");
    assert_eq!(pack_row["period_end"], "2025-06-30");

    // Per channel: the same where shown; a numerator under 10 is withheld in
    // the pack (published), though the officers' API shows it, and so is at
    // least one more (secondary suppression): never a lone withheld row,
    // which the total minus the others would give away.
    let mix: Value = serde_json::from_str(
        &get(
            &client,
            &format!("{api}/api/v1/kpi/channel-mix?{range}&group_by=channel"),
        )
        .await?,
    )?;
    let mut withheld = 0;
    for api_row in mix["rows"].as_array().context("mix rows")? {
        let channel = api_row["channel"].as_str().context("channel")?;
        let pack_row =
            find(&pack, "channel-mix", "channel", channel).context("a pack row per channel")?;
        let numerator = api_row["numerator"].as_u64().context("numerator")?;
        if numerator < 10 {
            assert_eq!(pack_row["suppressed"], "true", "{channel}");
        }
        if pack_row["suppressed"] == "true" {
            assert_eq!(pack_row["value"], "", "{channel}");
            withheld += 1;
        } else {
            assert_eq!(pack_row["numerator"], numerator.to_string(), "{channel}");
        }
    }
    assert!(withheld >= 2, "the kiosk row and one more are withheld");
    let service = find(&pack, "digital-take-up", "service", "council_tax").context("by service")?;
    assert_eq!(
        service["denominator"],
        api_row["denominator"].to_string(),
        "one service in the data"
    );

    // Later data in the same quarter: the pack at the same as-of is unchanged,
    // byte for byte; a pack as of now counts the new events.
    let stored = Stored {
        contacts: stored.contacts + 240,
        ..stored
    };
    let late = contact_events("late", 0..240);
    load_and_wait(&scope, &late, &[], stored, Duration::from_secs(60)).await?;
    await_settled(last_ingested(&store).await?, 3).await;
    let again = get(&client, &format!("{pack_url}&as_of={as_of}")).await?;
    assert_eq!(again, first, "same as-of, same bytes");
    let now = get(&client, &pack_url).await?;
    let now_rows = rows(&now)?;
    let later = find(&now_rows, "digital-take-up", "total", "").context("take-up total row")?;
    assert!(
        later["denominator"].parse::<u64>()? > pack_row["denominator"].parse::<u64>()?,
        "a pack as of now includes the late events"
    );

    // The CSVW metadata names every column of the CSV, in order.
    let metadata: Value =
        serde_json::from_str(&get(&client, &format!("{pack_url}&format=csvw")).await?)?;
    let names: Vec<&str> = metadata["tableSchema"]["columns"]
        .as_array()
        .context("columns")?
        .iter()
        .filter_map(|column| column["name"].as_str())
        .collect();
    let header: Vec<&str> = first
        .split("\r\n")
        .next()
        .unwrap_or_default()
        .split(',')
        .collect();
    assert_eq!(names, header);
    eprintln!(
        "pack: {} rows, {withheld} channel rows withheld, as of {as_of}",
        pack.len()
    );

    server.stop().await?;
    ingest.stop().await?;
    scope.drop_database().await
}
