//! A steady load on the real API binary with `wrk`: every answer is a 2xx,
//! no socket errors or timeouts, and the process's resident memory does not
//! grow once warmed up. CI runs 10 s; `CHANNELSHIFT_FULL=1` runs 60 s.

use anyhow::{Context, Result};
use channelshift_tests::api_process::{ApiOptions, ApiProcess};
use channelshift_tests::kafka::produce_all;
use channelshift_tests::{
    contact_events, create_topics, eventually, producer, start_ingest, Scope, API_TOKEN,
};
use std::process::Command;
use std::time::Duration;

const WRK: &str = "/usr/bin/wrk";
/// Resident memory may move this much after warm-up (allocator pools,
/// caches), plus a quarter of the warm size.
const RSS_MARGIN_KIB: u64 = 8 * 1024;

/// What one `wrk` run reports.
#[derive(Debug)]
struct WrkReport {
    requests: u64,
    requests_per_second: f64,
    non_2xx: u64,
    socket_errors: u64,
}

fn parse_wrk(output: &str) -> Result<WrkReport> {
    let requests = output
        .lines()
        .find_map(|line| line.trim().split_once(" requests in "))
        .and_then(|(count, _)| count.trim().parse().ok())
        .context("no request count in wrk's output")?;
    let requests_per_second = output
        .lines()
        .find_map(|line| line.trim().strip_prefix("Requests/sec:"))
        .and_then(|rate| rate.trim().parse().ok())
        .context("no Requests/sec in wrk's output")?;
    let non_2xx = output
        .lines()
        .find_map(|line| line.trim().strip_prefix("Non-2xx or 3xx responses:"))
        .map_or(Ok(0), |count| count.trim().parse())?;
    // "Socket errors: connect 0, read 0, write 0, timeout 0"
    let socket_errors = output
        .lines()
        .find_map(|line| line.trim().strip_prefix("Socket errors:"))
        .map(|counts| {
            counts
                .split(',')
                .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    Ok(WrkReport {
        requests,
        requests_per_second,
        non_2xx,
        socket_errors,
    })
}

/// Runs `wrk` for `seconds` with `connections` against `url`, with the token.
async fn wrk(url: &str, seconds: u64, connections: u32) -> Result<WrkReport> {
    let mut command = Command::new(WRK);
    command
        .args(["-t", "2", "-c", &connections.to_string()])
        .args(["-d", &format!("{seconds}s"), "--timeout", "5s"])
        .args(["-H", &format!("Authorization: Bearer {API_TOKEN}")])
        .arg(url);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await?
        .with_context(|| format!("running {WRK} (cargo xtask install installs it)"))?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    anyhow::ensure!(output.status.success(), "wrk failed: {text}");
    parse_wrk(&text).with_context(|| text.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_steady_load_gets_only_2xx_and_memory_does_not_grow() -> Result<()> {
    let seconds: u64 = if std::env::var_os("CHANNELSHIFT_FULL").is_some() {
        60
    } else {
        10
    };
    let scope = Scope::new("load");
    create_topics(&scope).await?;
    let ingest = start_ingest(scope.ingest_config());
    let producer = producer(&scope)?;
    produce_all(
        &producer,
        &scope.contact_topic,
        &contact_events("load", 0..2_000),
    )
    .await?;
    let store = scope.store().await?;
    eventually("the contacts stored", Duration::from_secs(90), || {
        let store = store.clone();
        async move {
            #[derive(clickhouse::Row, serde::Deserialize)]
            struct Count {
                n: u64,
            }
            let count = store
                .client()
                .query(&format!(
                    "SELECT toUInt64(sum(contacts)) AS n FROM {}",
                    store.rollup("contact_daily")
                ))
                .fetch_one::<Count>()
                .await?;
            Ok((count.n == 2_000).then_some(()))
        }
    })
    .await?;
    ingest.stop().await?;

    let mut api = ApiProcess::api("api-load", &scope, &ApiOptions::default()).await?;
    // A KPI by month: a ClickHouse query and the arithmetic on every request.
    let url = format!(
        "{}/api/v1/kpi/digital-take-up?council=E07000041&from=2025-01-01&to=2025-12-31&period=month",
        api.base_url
    );
    let warm_up = wrk(&url, 3, 8).await?;
    let rss_warm = api.rss_kib()?;
    let report = wrk(&url, seconds, 8).await?;
    let rss_after = api.rss_kib()?;
    println!(
        "{seconds}s at 8 connections: {} requests, {:.0}/s, non-2xx {}, socket errors {}; \
         RSS {rss_warm} KiB after warm-up ({} requests), {rss_after} KiB after",
        report.requests,
        report.requests_per_second,
        report.non_2xx,
        report.socket_errors,
        warm_up.requests
    );
    assert!(api.is_running(), "the API died: {}", api.log_tail());
    assert_eq!(warm_up.non_2xx + report.non_2xx, 0, "{}", api.log_tail());
    assert_eq!(report.socket_errors, 0, "{report:?}");
    assert!(
        report.requests >= seconds * 10,
        "too few requests to mean anything: {report:?}"
    );
    assert!(
        rss_after <= rss_warm + rss_warm / 4 + RSS_MARGIN_KIB,
        "resident memory grew from {rss_warm} KiB to {rss_after} KiB under load"
    );
    drop(api);
    scope.drop_database().await
}

#[test]
fn wrk_output_is_read_with_and_without_errors() -> Result<()> {
    let clean = "Running 10s test @ http://127.0.0.1:1/x\n  2 threads and 8 connections\n\
                 \x20 1234 requests in 10.00s, 1.00MB read\nRequests/sec:    123.40\n\
                 Transfer/sec:    100.00KB\n";
    let report = parse_wrk(clean)?;
    assert_eq!(
        (report.requests, report.non_2xx, report.socket_errors),
        (1234, 0, 0)
    );
    assert!((report.requests_per_second - 123.4).abs() < 1e-9);
    let failing = format!(
        "{clean}  Socket errors: connect 0, read 2, write 0, timeout 3\n  Non-2xx or 3xx responses: 7\n"
    );
    let report = parse_wrk(&failing)?;
    assert_eq!((report.non_2xx, report.socket_errors), (7, 5));
    Ok(())
}
