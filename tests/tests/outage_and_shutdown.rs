//! ClickHouse stopped for a minute: ingest pauses, keeps its memory bounded,
//! resumes by itself and loses nothing. SIGTERM: the open batch is written and
//! committed before the process exits.

use anyhow::Result;
use channelshift_tests::broker::PrivateBroker;
use channelshift_tests::checks::{contact_totals, ContactTotals};
use channelshift_tests::clickhouse::{migrated_store, PrivateClickHouse};
use channelshift_tests::kafka::{
    await_consumed, committed_offsets, end_offsets, produce_all, read_topic,
};
use channelshift_tests::process::IngestProcess;
use channelshift_tests::{contact_events, create_topics, eventually, producer, Scope};
use std::time::{Duration, Instant};

const CONSUMED: &str = "channelshift_ingest_messages_consumed_total";

/// Resident memory of a process, from /proc.
fn rss_bytes(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmRSS for {pid}"))?;
    Ok(kib * 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minute_without_clickhouse_pauses_ingest_and_loses_nothing() -> Result<()> {
    let scope = Scope::new("outage");
    create_topics(&scope).await?;
    let mut clickhouse = PrivateClickHouse::start().await?;
    let mut config = scope.ingest_config();
    config.clickhouse = clickhouse.config(&scope.database);
    config.batch.max_rows = 2_000;
    config.batch.max_wait_ms = 200;
    // A small prefetch, so that "consumption paused" is visible in the counts.
    config.kafka.prefetch_kbytes = 256;
    let ingest = IngestProcess::ingest("outage", config.clone()).await?;
    let producer = producer(&scope)?;
    produce_all(
        &producer,
        &scope.contact_topic,
        &contact_events("ev", 0..2_000),
    )
    .await?;
    let store = migrated_store(&config.clickhouse).await?;
    // Stored, and their batch done: its rows are visible before its
    // checkpoints and commit are written, and a batch the outage catches
    // there stays buffered, read before the outage.
    eventually(
        "first 2,000 stored and their batch done",
        Duration::from_secs(60),
        || async {
            let stored = contact_totals(&store).await?.settled() == 2_000;
            let buffered = ingest
                .metric("channelshift_ingest_buffered_messages", &[])
                .await?;
            Ok((stored && buffered == 0.0).then_some(()))
        },
    )
    .await
    .map_err(|error| error.context(ingest.log_tail()))?;

    let rss_before = rss_bytes(ingest.pid())?;
    clickhouse.kill()?;
    let outage = Instant::now();
    let consumed_before = ingest.metric(CONSUMED, &[]).await?;
    produce_all(
        &producer,
        &scope.contact_topic,
        &contact_events("ev", 2_000..22_000),
    )
    .await?;
    eventually("readiness turns red", Duration::from_secs(30), || async {
        Ok((ingest.readiness().await? == 503).then_some(()))
    })
    .await?;
    let mut rss_peak = rss_before;
    while outage.elapsed() < Duration::from_secs(60) {
        rss_peak = rss_peak.max(rss_bytes(ingest.pid())?);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The gauge first: a message read between the two scrapes then counts
    // in the total, never only in the gauge.
    let buffered = ingest
        .metric("channelshift_ingest_buffered_messages", &[])
        .await?;
    let read_during_outage = ingest.metric(CONSUMED, &[]).await? - consumed_before;
    // Paused: one batch and about one prefetch were read, not the 20,000 waiting.
    assert!(
        read_during_outage <= 6_000.0,
        "read {read_during_outage} messages while ClickHouse was down"
    );
    assert!(
        buffered <= read_during_outage,
        "{buffered} buffered, but {read_during_outage} read during the outage"
    );
    assert!(
        ingest
            // Whichever step met the outage first (the fence check, the rows).
            .metric("channelshift_ingest_write_errors_total", &[])
            .await?
            >= 1.0
    );

    let down_for = outage.elapsed();
    clickhouse.restart().await?;
    eventually(
        "all 22,000 stored after the outage",
        Duration::from_secs(90),
        || async { Ok((contact_totals(&store).await?.settled() >= 22_000).then_some(())) },
    )
    .await
    .map_err(|error| error.context(ingest.log_tail()))?;
    assert_eq!(
        contact_totals(&store).await?,
        ContactTotals::exactly(22_000)
    );
    eventually(
        "readiness back to green",
        Duration::from_secs(30),
        || async { Ok((ingest.readiness().await? == 200).then_some(())) },
    )
    .await?;
    eprintln!(
        "outage: {:.0} s down, all stored {:.1} s after the restart began; read {read_during_outage} \
         while down, {buffered} buffered; RSS {:.1} MiB before, peak {:.1} MiB",
        down_for.as_secs_f64(),
        (outage.elapsed() - down_for).as_secs_f64(),
        rss_before as f64 / 1_048_576.0,
        rss_peak as f64 / 1_048_576.0
    );
    assert!(
        rss_peak < rss_before + 64 * 1_048_576,
        "memory grew by {} bytes during the outage",
        rss_peak - rss_before
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_writes_and_commits_the_open_batch_before_exit() -> Result<()> {
    let scope = Scope::new("sigterm");
    create_topics(&scope).await?;
    let brokers = scope.stack.kafka_brokers.clone();
    let mut config = scope.ingest_config();
    config.batch.max_wait_ms = 120_000;
    config.batch.max_rows = 1_000_000;
    config.shutdown_timeout_ms = 10_000;
    let mut ingest = IngestProcess::ingest("sigterm", config).await?;
    let producer = producer(&scope)?;
    let mut messages = contact_events("ev", 0..1_500);
    for i in 0..3 {
        messages.push((format!("bad-{i}"), b"not json".to_vec()));
    }
    produce_all(&producer, &scope.contact_topic, &messages).await?;
    eventually(
        "the open batch holds everything",
        Duration::from_secs(60),
        || async { Ok((ingest.metric(CONSUMED, &[]).await? >= 1_503.0).then_some(())) },
    )
    .await?;
    let store = scope.store().await?;
    assert_eq!(
        contact_totals(&store).await?.rows,
        0,
        "the batch is still open"
    );

    let signalled = Instant::now();
    ingest.signal("TERM")?;
    let status = ingest.wait(Duration::from_secs(15)).await?.ok_or_else(|| {
        anyhow::anyhow!("did not exit within 15 s of SIGTERM\n{}", ingest.log_tail())
    })?;
    assert!(
        status.success(),
        "exit status {status}\n{}",
        ingest.log_tail()
    );
    eprintln!(
        "sigterm: exited {:.2} s after the signal",
        signalled.elapsed().as_secs_f64()
    );

    // No waiting from here on: it was all done before the process exited.
    assert_eq!(contact_totals(&store).await?, ContactTotals::exactly(1_500));
    assert_eq!(
        committed_offsets(&brokers, &scope.group_id, &scope.contact_topic)?,
        end_offsets(&brokers, &scope.contact_topic)?
    );
    let dead = read_topic(
        &brokers,
        &format!("{}.dlq", scope.contact_topic),
        3,
        Duration::from_secs(20),
    )?;
    assert_eq!(dead.len(), 3);
    scope.drop_database().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_reconnects_when_the_broker_comes_back() -> Result<()> {
    let mut broker = PrivateBroker::start().await?;
    let mut scope = Scope::new("broker");
    scope.stack.kafka_brokers = broker.address();
    create_topics(&scope).await?;
    let ingest = IngestProcess::ingest("broker", scope.ingest_config()).await?;
    let producer = producer(&scope)?;
    produce_all(
        &producer,
        &scope.contact_topic,
        &contact_events("ev", 0..1_000),
    )
    .await?;
    let store = scope.store().await?;
    eventually("first 1,000 stored", Duration::from_secs(60), || async {
        Ok((contact_totals(&store).await?.settled() >= 1_000).then_some(()))
    })
    .await
    .map_err(|error| error.context(ingest.log_tail()))?;

    broker.kill()?;
    tokio::time::sleep(Duration::from_secs(10)).await;
    broker.restart().await?;
    produce_all(
        &producer,
        &scope.contact_topic,
        &contact_events("ev", 1_000..2_000),
    )
    .await?;
    eventually(
        "the next 1,000 stored after the broker restart",
        Duration::from_secs(90),
        || async { Ok((contact_totals(&store).await?.settled() >= 2_000).then_some(())) },
    )
    .await
    .map_err(|error| error.context(ingest.log_tail()))?;
    await_consumed(
        &scope.stack.kafka_brokers,
        &scope.group_id,
        &[&scope.contact_topic],
        Duration::from_secs(30),
    )
    .await?;
    assert_eq!(contact_totals(&store).await?, ContactTotals::exactly(2_000));
    eventually("readiness green", Duration::from_secs(30), || async {
        Ok((ingest.readiness().await? == 200).then_some(()))
    })
    .await?;
    drop(ingest);
    scope.drop_database().await
}
