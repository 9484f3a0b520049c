//! KPI latency, rollups against raw tables, measured side by side in one run.
//!
//! `cargo bench -p channelshift-api --bench kpi_latency` against a running
//! demo stack (`cargo xtask demo`; load more with `channelshift-sim backfill`).
//! `CHANNELSHIFT_BENCH_API_CONFIG` names another API config file;
//! `CHANNELSHIFT_BENCH_ROUNDS` sets the rounds (default 30).
//!
//! Each round runs every query once per source, alternating which goes first,
//! so both see the same cache and machine load; p50 and p95 are per query and
//! source, in milliseconds, with the raw ÷ rollup ratio.

use anyhow::{Context, Result};
use channelshift_api::config::ApiConfig;
use channelshift_api::query::KpiQuery;
use channelshift_api::request::kpi_request;
use channelshift_api::AppState;
use channelshift_contract::CouncilCode;
use channelshift_kpi::catalogue::Kpi;
use channelshift_kpi::period::PeriodKind;
use channelshift_reports::compute::compute;
use channelshift_reports::scorecard;
use channelshift_store::{Source, Store};
use chrono::NaiveDate;
use clickhouse::Row;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Row, Deserialize)]
struct Count {
    n: u64,
}

#[derive(Row, Deserialize)]
struct Span {
    first: String,
    last: String,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

async fn count(store: &Store, sql: &str) -> Result<u64> {
    Ok(store.client().query(sql).fetch_one::<Count>().await?.n)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    // `cargo test --all-targets` runs bench targets without `--bench`; this
    // harness needs a loaded demo stack, so it only measures under `cargo bench`.
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("kpi_latency: measured only by `cargo bench`; nothing to do under `cargo test`");
        return Ok(());
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let path = std::env::var("CHANNELSHIFT_BENCH_API_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join(".stack/demo/api.toml"));
    let config: ApiConfig = channelshift_runtime::config::load(Some(&path))
        .with_context(|| format!("reading {} (run `cargo xtask demo` first)", path.display()))?;
    let rounds: usize = std::env::var("CHANNELSHIFT_BENCH_ROUNDS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(30);
    let store = Store::connect(&config.clickhouse).await?;
    let state = AppState::new(&config, store.clone())?;
    let council = "E07000041";
    let council_code = CouncilCode::parse(council).context("a GSS code")?;

    let contacts = count(&store, "SELECT count() AS n FROM contact_events").await?;
    let responses = count(&store, "SELECT count() AS n FROM satisfaction_responses").await?;
    let rollup_rows = count(
        &store,
        &format!("SELECT count() AS n FROM {}", store.rollup("contact_daily")),
    )
    .await?;
    let span = store
        .client()
        .query(&format!(
            "SELECT toString(min(day)) AS first, toString(max(day)) AS last FROM {}",
            store.rollup("contact_daily")
        ))
        .fetch_one::<Span>()
        .await?;
    let first = NaiveDate::parse_from_str(&span.first, "%Y-%m-%d")?;
    let last = NaiveDate::parse_from_str(&span.last, "%Y-%m-%d")?;
    println!(
        "data: {contacts} contact events, {responses} survey responses, {rollup_rows} contact_daily rows, local days {first} to {last} ({} days)",
        (last - first).num_days() + 1
    );
    // The scorecard of the quarter three months before the data ends (a full one).
    let scorecard_date = last - chrono::Months::new(3);

    let grouped = KpiQuery {
        council: Some(council.to_string()),
        from: Some(first.to_string()),
        to: Some(last.to_string()),
        period: Some("month".into()),
        group_by: Some("service,customer_type".into()),
        ..KpiQuery::default()
    };
    let request =
        kpi_request(&grouped, Kpi::DigitalTakeUp).map_err(|error| anyhow::anyhow!("{error:?}"))?;

    let names = [
        "scorecard (quarter, 3 periods, 7 KPIs)",
        "digital-take-up by month x service x customer type, whole range",
    ];
    let mut timings: HashMap<(usize, bool), Vec<f64>> = HashMap::new();
    let mut rows_seen = [0usize; 2];
    for round in 0..rounds + 3 {
        for (query, _) in names.iter().enumerate() {
            let order = if round % 2 == 0 {
                [Source::Rollup, Source::Raw]
            } else {
                [Source::Raw, Source::Rollup]
            };
            for source in order {
                let started = Instant::now();
                let rows = if query == 0 {
                    let card = scorecard::scorecard(
                        &state.store,
                        state.councils.default_policy(),
                        &council_code,
                        PeriodKind::FinancialQuarter,
                        scorecard_date,
                        source,
                    )
                    .await
                    .map_err(|error| anyhow::anyhow!("{error:?}"))?;
                    serde_json::to_value(&card)?["kpis"]
                        .as_array()
                        .map_or(0, Vec::len)
                } else {
                    compute(
                        &state.store,
                        state.councils.default_policy(),
                        Kpi::DigitalTakeUp,
                        &request,
                        source,
                    )
                    .await
                    .map_err(|error| anyhow::anyhow!("{error:?}"))?
                    .rows
                    .len()
                };
                let elapsed = started.elapsed().as_secs_f64() * 1000.0;
                rows_seen[query] = rows;
                // The first three rounds warm caches and are not counted.
                if round >= 3 {
                    timings
                        .entry((query, source == Source::Raw))
                        .or_default()
                        .push(elapsed);
                }
            }
        }
    }
    println!("{rounds} rounds; milliseconds (p50 / p95); ratio = raw ÷ rollup at p50");
    println!(
        "{:<68} {:>18} {:>18} {:>7}",
        "query", "rollups", "raw tables", "ratio"
    );
    for (query, name) in names.iter().enumerate() {
        let mut stats = Vec::new();
        for raw in [false, true] {
            let mut values = timings.remove(&(query, raw)).unwrap_or_default();
            values.sort_by(f64::total_cmp);
            stats.push((percentile(&values, 0.5), percentile(&values, 0.95)));
        }
        println!(
            "{:<68} {:>8.1} / {:>7.1} {:>8.1} / {:>7.1} {:>6.1}x",
            format!("{name} ({} rows)", rows_seen[query]),
            stats[0].0,
            stats[0].1,
            stats[1].0,
            stats[1].1,
            stats[1].0 / stats[0].0
        );
    }
    Ok(())
}
