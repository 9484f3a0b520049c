//! One council's contact events travel the whole way: produced to Kafka,
//! consumed and validated by ingest, stored in ClickHouse, rolled up, and
//! read back through the authenticated KPI API as digital take-up.

use anyhow::Result;
use channelshift_tests::{
    create_topics, eventually, produce, producer, start_api, start_ingest, Scope, API_TOKEN,
};
use serde_json::{json, Value};
use std::time::Duration;

fn contact(id: &str, channel: &str, outcome: &str, occurred_at: &str) -> Vec<u8> {
    json!({
        "schema_version": 1,
        "event_id": id,
        "council": "E07000041",
        "occurred_at": occurred_at,
        "channel": channel,
        "service": "council_tax",
        "interaction": "transaction",
        "outcome": outcome,
        "customer_type": "resident",
        "customer_ref": format!("CRM-{id}"),
    })
    .to_string()
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contact_events_reach_the_take_up_endpoint() -> Result<()> {
    let scope = Scope::new("e2e");
    create_topics(&scope).await?;
    let ingest = start_ingest(scope.ingest_config());
    let producer = producer(&scope)?;

    // 12 completed web transactions and 4 by phone on one local day, plus two
    // that must not count: an abandoned web form and a contact on another day
    // (23:30 UTC on 1 July is 2 July in London).
    let mut sent = 0;
    for i in 0..12 {
        let id = format!("web-{i}");
        produce(
            &producer,
            &scope.contact_topic,
            &id,
            &contact(&id, "web", "completed", "2025-07-01T09:00:00+01:00"),
        )
        .await?;
        sent += 1;
    }
    for i in 0..4 {
        let id = format!("phone-{i}");
        produce(
            &producer,
            &scope.contact_topic,
            &id,
            &contact(&id, "phone", "completed", "2025-07-01T14:30:00Z"),
        )
        .await?;
        sent += 1;
    }
    produce(
        &producer,
        &scope.contact_topic,
        "abandoned",
        &contact("abandoned", "web", "abandoned", "2025-07-01T10:00:00Z"),
    )
    .await?;
    produce(
        &producer,
        &scope.contact_topic,
        "late",
        &contact("late", "web", "completed", "2025-07-01T23:30:00Z"),
    )
    .await?;
    sent += 2;

    // Wait for ingest to write every event, checked in ClickHouse itself.
    let store = eventually(
        "ingest connects and migrates",
        Duration::from_secs(60),
        || async { Ok(scope.store().await.ok()) },
    )
    .await?;
    // Raw rows show before the rollups written by the same INSERT: wait for both.
    eventually("all events stored", Duration::from_secs(60), || async {
        let totals = channelshift_tests::checks::contact_totals(&store).await?;
        Ok((totals.settled() == sent).then_some(()))
    })
    .await?;
    // The raw customer reference never reaches the store.
    let raw_refs: u64 = store
        .client()
        .query("SELECT count() FROM contact_events WHERE customer_hash LIKE 'CRM-%' OR length(customer_hash) != 32")
        .fetch_one()
        .await?;
    assert_eq!(raw_refs, 0);

    let (api, api_server) = start_api(&scope, 10).await?;
    let client = reqwest::Client::new();
    let url =
        format!("{api}/api/v1/kpi/digital-take-up?council=E07000041&from=2025-07-01&to=2025-07-01");
    let response = client.get(&url).bearer_auth(API_TOKEN).send().await?;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await?;
    let row = &body["rows"][0];
    // 12 web of 16 completed transactions on 1 July: 75%.
    assert_eq!(body["kpi"], "digital-take-up");
    assert_eq!(row["period_start"], "2025-07-01");
    assert_eq!(row["numerator"], 12);
    assert_eq!(row["denominator"], 16);
    assert_eq!(row["value"], 75.0);
    assert_eq!(row["suppressed"], false);
    // Wilson 95% interval for 12/16, in percent: 50.50 to 89.82.
    let low = row["ci95_low"].as_f64().unwrap_or(f64::NAN);
    let high = row["ci95_high"].as_f64().unwrap_or(f64::NAN);
    assert!((low - 50.50).abs() < 0.01, "ci95_low {low}");
    assert!((high - 89.82).abs() < 0.01, "ci95_high {high}");

    // The late-evening contact is counted on 2 July, alone: suppressed (1 < 10).
    let next_day: Value = client
        .get(format!(
            "{api}/api/v1/kpi/digital-take-up?council=E07000041&from=2025-07-02&to=2025-07-02"
        ))
        .bearer_auth(API_TOKEN)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(next_day["rows"][0]["suppressed"], true);
    assert_eq!(next_day["rows"][0]["value"], Value::Null);

    // No token, no figures.
    let anonymous = client.get(&url).send().await?;
    assert_eq!(anonymous.status(), 401);

    api_server.stop().await?;
    ingest.stop().await?;
    scope.drop_database().await?;
    Ok(())
}
