//! `--api`: waits until the KPI API's digital take-up for one council equals
//! the truth, then prints take-up by financial quarter.

use anyhow::{bail, Result};
use channelshift_simulator::CouncilTruth;
use chrono::NaiveDate;
use serde_json::Value;
use std::time::{Duration, Instant};

async fn get_json(client: &reqwest::Client, url: &str, token: &str) -> Result<Value> {
    let response = client.get(url).bearer_auth(token).send().await?;
    let status = response.status();
    let body: Value = response.json().await?;
    if !status.is_success() {
        bail!("{url}: {status} {body}");
    }
    Ok(body)
}

pub struct Period<'a> {
    pub council: &'a str,
    pub from: NaiveDate,
    pub to: NaiveDate,
}

pub async fn await_and_report(
    period: &Period<'_>,
    truth: &CouncilTruth,
    api: &str,
    token: &str,
    quiet: bool,
) -> Result<()> {
    let client = reqwest::Client::new();
    let range = format!(
        "council={}&from={}&to={}",
        period.council, period.from, period.to
    );
    let total_url = format!("{api}/api/v1/kpi/digital-take-up?{range}");
    let started = Instant::now();
    if !quiet {
        println!("waiting for the pipeline to ingest everything…");
    }
    loop {
        let body = get_json(&client, &total_url, token).await;
        if let Ok(body) = &body {
            let row = &body["rows"][0];
            let numerator = row["numerator"].as_u64();
            let denominator = row["denominator"].as_u64();
            if numerator == Some(truth.digital_completed_transactions)
                && denominator == Some(truth.completed_transactions)
            {
                break;
            }
            // The store already holds more of this council's period than this
            // run produced (an earlier load with another seed or size): the
            // exact comparison cannot succeed, so say so instead of waiting.
            if denominator.is_some_and(|stored| stored > truth.completed_transactions) {
                println!(
                    "the store holds {} completed transactions for this period, more than the {} this run produced \
                     (data from an earlier load with another seed or size): not comparing exactly",
                    denominator.unwrap_or(0),
                    truth.completed_transactions
                );
                return Ok(());
            }
            if !quiet {
                println!(
                    "  API has {}/{} completed transactions so far",
                    denominator.unwrap_or(0),
                    truth.completed_transactions
                );
            }
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("the API did not reach the simulator's totals within 10 minutes: {body:?}");
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    println!(
        "the KPI API matches the simulator exactly ({} completed transactions) after {:.1}s",
        truth.completed_transactions,
        started.elapsed().as_secs_f64()
    );
    let by_quarter = get_json(
        &client,
        &format!("{api}/api/v1/kpi/digital-take-up?{range}&period=quarter"),
        token,
    )
    .await?;
    println!(
        "\nDigital take-up by financial quarter ({}):",
        period.council
    );
    println!(
        "  {:<24} {:>8} {:>9} {:>17}",
        "period", "take-up", "n", "95% interval"
    );
    for row in by_quarter["rows"].as_array().into_iter().flatten() {
        let label = format!(
            "{} – {}",
            row["period_start"].as_str().unwrap_or("?"),
            row["period_end"].as_str().unwrap_or("?")
        );
        match row["value"].as_f64() {
            Some(value) => println!(
                "  {label:<24} {value:>7.1}% {:>9} {:>7.1}% – {:.1}%",
                row["n"].as_u64().unwrap_or(0),
                row["ci95_low"].as_f64().unwrap_or(f64::NAN),
                row["ci95_high"].as_f64().unwrap_or(f64::NAN)
            ),
            None => println!("  {label:<24} {:>8}", "suppressed"),
        }
    }
    Ok(())
}
