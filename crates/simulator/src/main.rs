//! `channelshift-sim backfill [options]`: produces a council's history to
//! Kafka, prints what it produced and, given `--api`, waits until the KPI API
//! agrees with it and prints the figures.

use anyhow::{bail, Context, Result};
use channelshift_simulator::{Generator, Scenario, Truth};
use chrono::NaiveDate;
use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::Timeout;
use rdkafka::ClientConfig;
use serde_json::Value;
use std::collections::HashMap;
use std::time::{Duration, Instant};

const USAGE: &str = "\
usage: channelshift-sim backfill [--brokers HOST:PORT] [--council GSS] [--seed N]
                                 [--contacts N] [--months N] [--end YYYY-MM-DD]
                                 [--contact-topic T] [--satisfaction-topic T]
                                 [--api URL --token TOKEN]";

struct Options {
    brokers: String,
    scenario: Scenario,
    contact_topic: String,
    satisfaction_topic: String,
    api: Option<(String, String)>,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut flags: HashMap<&str, &str> = HashMap::new();
    let mut rest = args.iter();
    match rest.next().map(String::as_str) {
        Some("backfill") => {}
        _ => bail!("{USAGE}"),
    }
    while let Some(flag) = rest.next() {
        let value = rest
            .next()
            .with_context(|| format!("{flag} needs a value\n{USAGE}"))?;
        flags.insert(flag.as_str(), value.as_str());
    }
    let get = |name: &str, default: &str| flags.get(name).copied().unwrap_or(default).to_string();
    let number = |name: &str, default: u64| -> Result<u64> {
        get(name, &default.to_string())
            .parse()
            .with_context(|| format!("{name} must be a whole number"))
    };
    let end = match flags.get("--end") {
        Some(end) => {
            NaiveDate::parse_from_str(end, "%Y-%m-%d").context("--end must be YYYY-MM-DD")?
        }
        // Yesterday: the demo's history runs up to the last complete day.
        None => chrono::Utc::now().date_naive() - chrono::Duration::days(1),
    };
    let api = match (flags.get("--api"), flags.get("--token")) {
        (Some(api), Some(token)) => Some((api.to_string(), token.to_string())),
        (None, None) => None,
        _ => bail!("--api and --token go together"),
    };
    Ok(Options {
        brokers: get("--brokers", "127.0.0.1:9092"),
        scenario: Scenario {
            council: get("--council", "E07000041"),
            seed: number("--seed", 42)?,
            contacts: number("--contacts", 100_000)?,
            end,
            months: u32::try_from(number("--months", 13)?).context("--months is too large")?,
            digital_share_start: 0.40,
            digital_share_end: 0.55,
            response_rate: 0.12,
        },
        contact_topic: get("--contact-topic", "contact-events"),
        satisfaction_topic: get("--satisfaction-topic", "satisfaction-responses"),
        api,
    })
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = parse(&args)?;
    let truth = produce(&options).await?;
    println!("{}", serde_json::to_string_pretty(&truth)?);
    if let Some((api, token)) = &options.api {
        await_and_report(&options.scenario, &truth, api, token).await?;
    }
    Ok(())
}

async fn produce(options: &Options) -> Result<Truth> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &options.brokers)
        .set("enable.idempotence", "true")
        .set("linger.ms", "20")
        .set("message.timeout.ms", "120000")
        .create()
        .context("creating the Kafka producer")?;
    let scenario = &options.scenario;
    println!(
        "producing {} contacts for {} from {} to {} (seed {}) to {}",
        scenario.contacts,
        scenario.council,
        scenario.start(),
        scenario.end,
        scenario.seed,
        options.brokers
    );
    let mut generator = Generator::new(scenario.clone());
    let started = Instant::now();
    let mut last_report = Instant::now();
    let mut pending = Vec::new();
    let mut sent: u64 = 0;
    while let Some(messages) = generator.next_batch() {
        for message in messages {
            let topic = if message.satisfaction {
                &options.satisfaction_topic
            } else {
                &options.contact_topic
            };
            let mut record = FutureRecord::to(topic)
                .key(&message.key)
                .payload(&message.payload);
            // Enqueue now, await delivery later; a full queue waits for room.
            let delivery = loop {
                match producer.send_result(record) {
                    Ok(delivery) => break delivery,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        record = back;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err((error, _)) => bail!("producing to {topic}: {error}"),
                }
            };
            pending.push(delivery);
            sent += 1;
        }
        // Await deliveries in slices: bounded memory, and errors surface early.
        if pending.len() >= 10_000 {
            for delivery in pending.drain(..) {
                confirm(delivery).await?;
            }
        }
        if last_report.elapsed() >= Duration::from_secs(2) {
            let done = generator.truth.contact_events;
            let rate = sent as f64 / started.elapsed().as_secs_f64();
            let eta =
                (scenario.contacts - done) as f64 / (done as f64 / started.elapsed().as_secs_f64());
            println!(
                "  {done}/{} contacts ({:.0}%), {rate:.0} messages/s, ETA {eta:.0}s",
                scenario.contacts,
                100.0 * done as f64 / scenario.contacts as f64
            );
            last_report = Instant::now();
        }
    }
    for delivery in pending {
        confirm(delivery).await?;
    }
    producer.flush(Timeout::After(Duration::from_secs(60)))?;
    println!(
        "produced {sent} messages in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(generator.truth)
}

async fn confirm(delivery: DeliveryFuture) -> Result<()> {
    match delivery.await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((error, _))) => bail!("delivery failed: {error}"),
        Err(_canceled) => bail!("the producer was dropped before delivery"),
    }
}

async fn get_json(client: &reqwest::Client, url: &str, token: &str) -> Result<Value> {
    let response = client.get(url).bearer_auth(token).send().await?;
    let status = response.status();
    let body: Value = response.json().await?;
    if !status.is_success() {
        bail!("{url}: {status} {body}");
    }
    Ok(body)
}

/// Waits until the API's take-up counts equal the truth, then prints them by quarter.
async fn await_and_report(
    scenario: &Scenario,
    truth: &Truth,
    api: &str,
    token: &str,
) -> Result<()> {
    let client = reqwest::Client::new();
    let range = format!(
        "council={}&from={}&to={}",
        scenario.council,
        scenario.start(),
        scenario.end
    );
    let total_url = format!("{api}/api/v1/kpi/digital-take-up?{range}");
    let started = Instant::now();
    println!("waiting for the pipeline to ingest everything…");
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
            println!(
                "  API has {}/{} completed transactions so far",
                denominator.unwrap_or(0),
                truth.completed_transactions
            );
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
        scenario.council
    );
    println!(
        "  {:<24} {:>8} {:>9} {:>17}",
        "period", "take-up", "n", "95% interval"
    );
    for row in by_quarter["rows"].as_array().into_iter().flatten() {
        let period = format!(
            "{} – {}",
            row["period_start"].as_str().unwrap_or("?"),
            row["period_end"].as_str().unwrap_or("?")
        );
        match row["value"].as_f64() {
            Some(value) => println!(
                "  {period:<24} {value:>7.1}% {:>9} {:>7.1}% – {:.1}%",
                row["n"].as_u64().unwrap_or(0),
                row["ci95_low"].as_f64().unwrap_or(f64::NAN),
                row["ci95_high"].as_f64().unwrap_or(f64::NAN)
            ),
            None => println!("  {period:<24} {:>8}", "suppressed"),
        }
    }
    Ok(())
}
