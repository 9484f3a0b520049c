//! Issue 9's faults, each against the real stack and each ending in an exact
//! reconciliation (`channelshift-ingest reconcile`'s library function: every
//! message on the topics stored or dead-lettered once, no id stored twice, raw
//! rows = id index = rollup) and `contact_totals == ContactTotals::exactly(n)`.
//!
//! CI runs them scaled down; `CHANNELSHIFT_FULL=1` runs the sizes of the
//! issue (a million events, ClickHouse away for two minutes). Random moments
//! come from a seed printed by each test (`CHANNELSHIFT_FAULT_SEED` replays one).

use anyhow::Result;
use channelshift_ingest::config::IngestConfig;
use channelshift_ingest::reconcile::{reconcile, ReconcileConfig, Report, Span};
use channelshift_store::{Checkpoint, ClickHouseConfig, Store};
use channelshift_tests::broker::PrivateBroker;
use channelshift_tests::checks::{
    await_stored, contact_totals, satisfaction_totals, ContactTotals,
};
use channelshift_tests::clickhouse::{current_engine, migrated_store, PrivateClickHouse};
use channelshift_tests::config_file::{toml_text, ReconcileFile};
use channelshift_tests::kafka::{
    await_committed, committed_offsets, header, produce_all, read_topic,
};
use channelshift_tests::process::{metric_sum, reconcile_command, IngestProcess};
use channelshift_tests::{
    contact_event, contact_events, create_topics, eventually, producer, satisfaction_responses,
    Scope,
};
use rdkafka::producer::FutureProducer;
use std::time::{Duration, Instant};

const INSERTED: &str = "channelshift_ingest_rows_inserted_total";

fn full_size() -> bool {
    std::env::var_os("CHANNELSHIFT_FULL").is_some()
}

/// The group session for a test's replicas: `ci` at CI size, 30 s at full
/// size. Tansu 0.6 has a coordinator bug that a loaded broker triggers: when
/// the group leader's heartbeat arrives after its session has expired, the
/// broker drops the member but keeps it as the leader, and from then on every
/// replica that joins is a follower of that ghost, so nothing is ever
/// assigned (seen at a million events with 3 s sessions: an OffsetFetch held
/// the heartbeat back 3.5 s). Apache Kafka has no such state; with Tansu the
/// session must outlast the broker's slowest answer.
fn broker_session_timeout_ms(ci: u32) -> u32 {
    scaled(ci, 30_000)
}

/// A small deterministic generator for the random moments (xorshift64*).
struct Moments(u64);

impl Moments {
    fn new(test: &str) -> Self {
        let seed = std::env::var("CHANNELSHIFT_FAULT_SEED")
            .ok()
            .and_then(|seed| seed.parse().ok())
            .unwrap_or_else(|| uuid::Uuid::new_v4().as_u64_pair().0 | 1);
        eprintln!("{test}: CHANNELSHIFT_FAULT_SEED={seed}");
        Self(seed)
    }

    /// A duration uniformly between `low` and `high`.
    fn between(&mut self, low: Duration, high: Duration) -> Duration {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let unit = (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64;
        low + (high - low).mul_f64(unit)
    }
}

/// One message in `every` is invalid (a channel the contract does not know),
/// with an id and council like any other, so that only the dead-letter topic
/// tells it apart; ids are `{prefix}-{i}`.
fn contacts_with_bad(
    prefix: &str,
    range: std::ops::Range<usize>,
    every: usize,
) -> Vec<(String, Vec<u8>)> {
    range
        .map(|i| {
            let id = format!("{prefix}-{i}");
            let mut payload = contact_event(&id, i);
            if i % every == every - 1 {
                let mut value: serde_json::Value =
                    serde_json::from_slice(&payload).expect("test event is JSON");
                value["channel"] = serde_json::json!("fax");
                payload = value.to_string().into_bytes();
            }
            (id, payload)
        })
        .collect()
}

/// How many of `range` [`contacts_with_bad`] makes valid.
fn valid_in(range: std::ops::Range<usize>, every: usize) -> u64 {
    range.filter(|i| i % every != every - 1).count() as u64
}

/// A producer task (`steady_flow`) that keeps its last chunk until
/// [`Flow::finish`], so every fault a test makes before that happens while
/// events are still being produced.
struct Flow {
    task: tokio::task::JoinHandle<Result<()>>,
    last_chunk: std::sync::Arc<tokio::sync::Notify>,
    /// Messages in the last chunk, held back until `finish`.
    held: std::ops::Range<usize>,
}

impl Flow {
    fn is_running(&self) -> bool {
        !self.task.is_finished()
    }

    /// Lets the last chunk go and waits until it is produced.
    async fn finish(self) -> Result<()> {
        self.last_chunk.notify_one();
        self.task.await?
    }
}

/// Produces `messages` in chunks spread over about `over`, re-sending the
/// first 200 ids of every fifth chunk (a producer's retries), from a task;
/// the last chunk waits for [`Flow::finish`].
fn steady_flow(
    producer: FutureProducer,
    topic: String,
    messages: Vec<(String, Vec<u8>)>,
    chunk: usize,
    over: Duration,
) -> Flow {
    let last_chunk = std::sync::Arc::new(tokio::sync::Notify::new());
    let chunks = messages.len().div_ceil(chunk).max(1);
    let held = (chunks - 1) * chunk..messages.len();
    let release = last_chunk.clone();
    let task = tokio::spawn(async move {
        let pause = over / chunks as u32;
        let started = Instant::now();
        for (n, part) in messages.chunks(chunk).enumerate() {
            if n + 1 == chunks {
                release.notified().await;
            }
            produce_all(&producer, &topic, part).await?;
            if n % 5 == 4 {
                produce_all(&producer, &topic, &part[..part.len().min(200)]).await?;
            }
            let due = pause * (n as u32 + 1);
            tokio::time::sleep(due.saturating_sub(started.elapsed())).await;
        }
        Ok(())
    });
    Flow {
        task,
        last_chunk,
        held,
    }
}

/// Waits until ClickHouse has at least `expected` contacts, then until the
/// reconciliation is exact (nothing pending, nothing lost or doubled), and
/// checks the totals: fails with the report and the replicas' logs otherwise.
async fn reconciled_exactly(
    config: &IngestConfig,
    expected: u64,
    expected_dead: u64,
    timeout: Duration,
    logs: &[&IngestProcess],
) -> Result<Report> {
    let with_logs = |error: anyhow::Error| {
        let logs: Vec<String> = logs.iter().map(|p| p.log_tail()).collect();
        error.context(logs.join("\n"))
    };
    let started = Instant::now();
    let store = Store::connect(&config.clickhouse).await?;
    let waited = eventually(
        &format!("{expected} contact events stored"),
        timeout,
        || async { Ok((contact_totals(&store).await?.settled() >= expected).then_some(())) },
    )
    .await;
    let settings = ReconcileConfig::from(config);
    if let Err(error) = waited {
        // What the reconciliation says is the diagnosis.
        let report = reconcile(&settings, Span::FromBeginning).await?;
        return Err(with_logs(error.context(format!("{report}"))));
    }
    let mut report = reconcile(&settings, Span::FromBeginning).await?;
    // Pending only while the last checkpoints are written; a discrepancy stays.
    while report.pending() > 0 && report.discrepancies() == 0 && started.elapsed() < timeout {
        tokio::time::sleep(Duration::from_secs(1)).await;
        report = reconcile(&settings, Span::FromBeginning).await?;
    }
    eprintln!("{report}");
    if !report.is_exact() {
        return Err(with_logs(anyhow::anyhow!("not exact:\n{report}")));
    }
    assert_eq!(
        contact_totals(&store).await?,
        ContactTotals::exactly(expected)
    );
    // Nothing valid went to the dead-letter topic instead of the table.
    let dead: u64 = report.topics.iter().map(|t| t.total().dead_lettered).sum();
    assert_eq!(dead, expected_dead, "{report}");
    Ok(report)
}

/// After ClickHouse was killed: waits until every id is in the raw table and,
/// if ingest met rows an INSERT had stored without their views (the
/// replicas' `half_written` metric and error log), rebuilds the rollups as
/// that log tells an operator to. Returns how many ids were half written.
async fn rebuild_if_half_written(
    replicas: &[&IngestProcess],
    config: &IngestConfig,
    expected: u64,
    timeout: Duration,
) -> Result<f64> {
    let store = Store::connect(&config.clickhouse).await?;
    eventually(
        &format!("{expected} ids in the raw table"),
        timeout,
        || async { Ok((contact_totals(&store).await?.distinct_ids >= expected).then_some(())) },
    )
    .await
    .map_err(|error| {
        let logs: Vec<String> = replicas.iter().map(|replica| replica.log_tail()).collect();
        error.context(logs.join("\n"))
    })?;
    let mut half_written = 0.0;
    for replica in replicas {
        half_written += replica
            .metric(channelshift_ingest::metrics::HALF_WRITTEN, &[])
            .await?;
    }
    if half_written > 0.0 {
        // Ingest is idle by now: nothing races the rebuild.
        store.rebuild_rollups(|_| ()).await?;
    }
    Ok(half_written)
}

/// Rows in `contact_events`: a cheap progress reading.
async fn raw_rows(store: &Store) -> Result<u64> {
    #[derive(clickhouse::Row, serde::Deserialize)]
    struct Count {
        n: u64,
    }
    Ok(store
        .client()
        .query("SELECT count() AS n FROM contact_events")
        .fetch_one::<Count>()
        .await?
        .n)
}

/// A test's own broker (SQLite storage) and names on it. The shared test
/// broker serves every other test at once; a heartbeat it answers late
/// costs a rejoin, which would be timed here as if it were the fault.
async fn private_stack(test: &str) -> Result<(PrivateBroker, Scope)> {
    let broker = PrivateBroker::start().await?;
    let mut scope = Scope::new(test);
    scope.stack.kafka_brokers = broker.address();
    create_topics(&scope).await?;
    Ok((broker, scope))
}

/// Ingest settings for the steady-flow fault tests: batches of up to 5,000
/// rows or 300 ms, so that a fault lands among many batches.
fn flow_config(scope: &Scope) -> IngestConfig {
    let mut config = scope.ingest_config();
    config.batch.max_rows = 5_000;
    config.batch.max_wait_ms = 300;
    config
}

/// Starts a replica and waits until it has written rows, so that a fault that
/// follows lands while it is working.
async fn start_working(
    name: &str,
    config: IngestConfig,
    timeout: Duration,
) -> Result<IngestProcess> {
    let ingest = IngestProcess::ingest(name, config).await?;
    let before = Instant::now();
    loop {
        if ingest.metric(INSERTED, &[]).await.unwrap_or(0.0) > 0.0 {
            return Ok(ingest);
        }
        if before.elapsed() > timeout {
            anyhow::bail!(
                "{name} wrote nothing within {timeout:?}\n{}",
                ingest.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A steady-flow fault test: its own broker, names on it, ingest settings
/// for many small batches, the test's random moments, and the contacts
/// `ev-0..events` with one in `every` invalid.
struct FaultRun {
    broker: PrivateBroker,
    scope: Scope,
    config: IngestConfig,
    moments: Moments,
    events: usize,
    every: usize,
}

impl FaultRun {
    async fn new(test: &str, events: usize, every: usize) -> Result<Self> {
        let moments = Moments::new(test);
        let (broker, scope) = private_stack(test).await?;
        let config = flow_config(&scope);
        Ok(Self {
            broker,
            scope,
            config,
            moments,
            events,
            every,
        })
    }

    /// Ingest stores on `clickhouse` instead of the shared server.
    fn store_on(&mut self, clickhouse: &PrivateClickHouse) {
        self.config.clickhouse = clickhouse.config(&self.scope.database);
    }

    /// Starts producing the contacts, `chunk` at a time over about `over`.
    fn flow(&self, chunk: usize, over: Duration) -> Result<Flow> {
        Ok(steady_flow(
            producer(&self.scope)?,
            self.scope.contact_topic.clone(),
            contacts_with_bad("ev", 0..self.events, self.every),
            chunk,
            over,
        ))
    }

    /// Valid contacts among `range` of the flow's.
    fn valid_in(&self, range: std::ops::Range<usize>) -> u64 {
        valid_in(range, self.every)
    }

    /// Starts a replica and waits until it has written rows.
    async fn start_working(&self, name: &str) -> Result<IngestProcess> {
        start_working(name, self.config.clone(), Duration::from_secs(90)).await
    }

    /// Lets the flow's last chunk go, rebuilds the rollups when `rebuild` and
    /// any of `replicas` met half-written rows, and waits until the
    /// reconciliation is exact: every valid contact stored once, every bad one
    /// dead-lettered. Returns the report and how many ids were half written.
    async fn settle(
        &self,
        flow: Flow,
        replicas: &[&IngestProcess],
        rebuild: Rebuild,
        timeout: Duration,
    ) -> Result<(Report, f64)> {
        flow.finish().await?;
        let valid = self.valid_in(0..self.events);
        let half_written = match rebuild {
            Rebuild::IfHalfWritten => {
                rebuild_if_half_written(replicas, &self.config, valid, timeout).await?
            }
            Rebuild::Never => 0.0,
        };
        let dead = self.events as u64 - valid;
        let report = reconciled_exactly(&self.config, valid, dead, timeout, replicas).await?;
        Ok((report, half_written))
    }
}

/// A test's own broker with one replica running and a first load stored:
/// the contacts `ev-0..events`, one in `every` invalid, reconciled exactly.
struct Loaded {
    /// Bound by name where a test takes the fields apart: the broker stops
    /// when this is dropped.
    _broker: PrivateBroker,
    scope: Scope,
    config: IngestConfig,
    producer: FutureProducer,
    ingest: IngestProcess,
}

/// Where a test's ingest stores.
enum On<'a> {
    /// The test stack's ClickHouse 18.16.
    TestStack,
    /// A test's own ClickHouse 18.16, to kill or make read-only.
    Private(&'a PrivateClickHouse),
    /// Current ClickHouse (chdb, at `CHANNELSHIFT_CURRENT_CLICKHOUSE_URL`).
    Current,
}

impl On<'_> {
    fn clickhouse(&self, scope: &Scope) -> Result<ClickHouseConfig> {
        Ok(match self {
            On::TestStack => scope.writer(),
            On::Private(clickhouse) => clickhouse.config(&scope.database),
            On::Current => current_engine(&scope.database)?,
        })
    }
}

impl Loaded {
    async fn start(test: &str, on: On<'_>, events: usize, every: usize) -> Result<Self> {
        let (broker, scope) = private_stack(test).await?;
        let mut config = scope.ingest_config();
        config.clickhouse = on.clickhouse(&scope)?;
        let producer = producer(&scope)?;
        let ingest = IngestProcess::ingest(test, config.clone()).await?;
        produce_all(
            &producer,
            &scope.contact_topic,
            &contacts_with_bad("ev", 0..events, every),
        )
        .await?;
        let valid = valid_in(0..events, every);
        let dead = events as u64 - valid;
        reconciled_exactly(&config, valid, dead, Duration::from_secs(60), &[&ingest]).await?;
        Ok(Self {
            _broker: broker,
            scope,
            config,
            producer,
            ingest,
        })
    }
}

/// Whether a fault test rebuilds the rollups after ClickHouse lost an
/// INSERT's views, as ingest's log tells an operator to.
#[derive(Clone, Copy)]
enum Rebuild {
    Never,
    IfHalfWritten,
}

/// CI's `ci` or the issue's `full` size, by `CHANNELSHIFT_FULL`.
fn scaled<T>(ci: T, full: T) -> T {
    if full_size() {
        full
    } else {
        ci
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_finds_missing_and_duplicated_events_and_exits_non_zero() -> Result<()> {
    let Loaded {
        scope,
        config,
        producer,
        ingest,
        _broker,
    } = Loaded::start("reconcile", On::TestStack, 1_000, 100).await?;
    let clean = reconcile(&ReconcileConfig::from(&config), Span::FromBeginning).await?;
    let total = clean.topics[0].total();
    assert_eq!(
        (total.messages, total.stored, total.dead_lettered),
        (1_000, 990, 10)
    );
    drop(ingest);

    // Ingest stopped; an event is stored twice, and a checkpoint claims three
    // messages produced afterwards were done: three lost events.
    let store = scope.store().await?;
    store
        .client()
        .query("INSERT INTO contact_events SELECT * FROM contact_events WHERE event_id = 'ev-7'")
        .execute()
        .await?;
    let mut late = contact_events("late", 0..3);
    for (key, _) in &mut late {
        *key = "one-partition".into();
    }
    produce_all(&producer, &scope.contact_topic, &late).await?;
    let ends =
        channelshift_tests::kafka::end_offsets(&scope.stack.kafka_brokers, &scope.contact_topic)?;
    let checkpoints: Vec<Checkpoint> = ends
        .iter()
        .map(|(partition, end)| Checkpoint {
            topic: scope.contact_topic.clone(),
            partition: *partition,
            next_offset: *end,
        })
        .collect();
    store.save_checkpoints(&checkpoints).await?;

    let report = reconcile(&ReconcileConfig::from(&config), Span::FromBeginning).await?;
    let contacts = &report.topics[0];
    assert_eq!(contacts.total().missing, 3, "{report}");
    assert_eq!((contacts.duplicated_ids, contacts.duplicate_rows), (1, 1));
    assert_eq!(report.exit_code(), 2);

    // The command says the same, in a table, with exit code 2.
    let file = std::env::temp_dir().join(format!("reconcile-{}.toml", scope.database));
    let metrics = std::env::temp_dir().join(format!("reconcile-{}.prom", scope.database));
    std::fs::write(&file, toml_text(&ReconcileFile::from(&config)))?;
    let mut command = reconcile_command(
        &file,
        &[
            "--from-beginning".as_ref(),
            "--metrics-file".as_ref(),
            metrics.as_os_str(),
        ],
    )?;
    let output = tokio::task::spawn_blocking(move || command.output()).await??;
    let _ = std::fs::remove_file(&file);
    let text = String::from_utf8_lossy(&output.stdout);
    println!("{text}");
    assert_eq!(
        output.status.code(),
        Some(2),
        "{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(text.contains("late-0") || text.contains("late-1"), "{text}");
    assert!(text.contains("ev-7 × 2"), "{text}");
    // A scheduled run leaves the same findings for Prometheus.
    let exported = std::fs::read_to_string(&metrics)?;
    let _ = std::fs::remove_file(&metrics);
    let duplicates = format!(
        "channelshift_reconcile_duplicate_rows{{topic=\"{}\",table=\"contact_events\"}} 1\n",
        scope.contact_topic
    );
    assert!(exported.contains(&duplicates), "{exported}");
    assert!(exported.contains("channelshift_reconcile_last_run_timestamp_seconds "));
    scope.drop_database().await
}

/// The runbook's way out of a consumer group the broker will not form again
/// (Tansu 0.6's ghost leader): the replicas restart under a new
/// `kafka.group_id`. Each partition resumes from its ClickHouse checkpoint,
/// not from the topic's start: the new group reads only what came after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_consumer_group_resumes_from_the_clickhouse_checkpoints() -> Result<()> {
    let Loaded {
        scope,
        config,
        producer,
        ingest: mut old,
        _broker,
    } = Loaded::start("new-group", On::TestStack, 3_000, 100).await?;
    old.signal("TERM")?;
    anyhow::ensure!(
        old.wait(Duration::from_secs(30)).await?.is_some(),
        "the old group's replica did not stop\n{}",
        old.log_tail()
    );

    let later = contacts_with_bad("ev", 3_000..6_000, 100);
    produce_all(&producer, &scope.contact_topic, &later).await?;
    let mut renamed = config.clone();
    renamed.kafka.group_id = format!("{}-renamed", config.kafka.group_id);
    let new = IngestProcess::ingest("new-group-new", renamed.clone()).await?;
    reconciled_exactly(&renamed, 5_940, 60, Duration::from_secs(60), &[&new]).await?;
    // Started at the checkpoints: the 3,000 messages already done were not
    // read again (a start from the beginning would read 6,000 and skip 2,970
    // stored ids as repeats).
    let consumed = new
        .metric(channelshift_ingest::metrics::CONSUMED, &[])
        .await?;
    let repeats = new
        .metric(channelshift_ingest::metrics::DUPLICATES, &[])
        .await?;
    assert_eq!((consumed, repeats), (3_000.0, 0.0), "{}", new.log_tail());
    drop(new);
    scope.drop_database().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_sigkilled_ten_times_at_random_moments_loses_and_doubles_nothing() -> Result<()> {
    // Spread so that all ten kills, with the restart waits between them
    // (4 s each, 31 s at full size), fall while events are still produced.
    let (events, over) = scaled(
        (60_000, Duration::from_secs(100)),
        (1_000_000, Duration::from_secs(720)),
    );
    let mut run = FaultRun::new("sigkill-ten", events, 1_000).await?;
    // A killed replica holds its partitions until the broker gives up on it,
    // so a short session keeps the CI run short. At full size the broker
    // (SQLite, hundreds of MB) answers a heartbeat seconds late now and then,
    // and Tansu 0.6 never forms the group again after the leader's late
    // heartbeat (see `broker_session_timeout_ms`): the session must outlast
    // the broker's worst delay there.
    run.config.kafka.session_timeout_ms = broker_session_timeout_ms(3_000);
    let flow = run.flow(5_000, over)?;
    let started = Instant::now();
    // What can be stored before the flow's last chunk is let go.
    let reachable = run.valid_in(0..events) - run.valid_in(flow.held.clone());
    let store = Store::connect(&run.config.clickhouse).await?;
    let mut kills = Vec::new();
    for kill in 1..=10u64 {
        // Kill k comes once k/11 of the events are stored and the replica is
        // writing, so all ten fall within the run, each at a random moment
        // after that point.
        let name = format!("sigkill-ten-{kill}");
        let ingest = IngestProcess::ingest(&name, run.config.clone()).await?;
        let progress = reachable * kill / 11;
        eventually(
            &format!("{name} writes, and the rows pass {progress}"),
            Duration::from_secs(scaled(120, 600)),
            || async {
                let writing = ingest.metric(INSERTED, &[]).await? > 0.0;
                let rows = raw_rows(&store).await?;
                // When the replica before wrote all there is so far, this one
                // has nothing to write: it is killed idle.
                Ok(((writing && rows >= progress) || rows >= reachable).then_some(()))
            },
        )
        .await
        .map_err(|error| error.context(ingest.log_tail()))?;
        tokio::time::sleep(
            run.moments
                .between(Duration::ZERO, Duration::from_millis(1_500)),
        )
        .await;
        let inserted = ingest.metric(INSERTED, &[]).await?;
        ingest.kill()?;
        kills.push((started.elapsed().as_secs_f64(), inserted));
        // The next replica starts once the broker has given up on this one,
        // as a supervisor's restart back-off would have it. Tansu 0.6 stalled
        // for good at full size when a replica joined while the killed
        // leader's session still ran (it is told to follow the dead leader
        // until that expires, and then was never assigned anything); Apache
        // Kafka handles both orders.
        tokio::time::sleep(Duration::from_millis(
            u64::from(run.config.kafka.session_timeout_ms) + 1_000,
        ))
        .await;
    }
    let flowing_at_last_kill = flow.is_running();
    assert!(
        flowing_at_last_kill,
        "the flow ended before the last kill: {kills:.1?}"
    );
    let last = IngestProcess::ingest("sigkill-ten-last", run.config.clone()).await?;
    let timeout = Duration::from_secs(scaled(180, 1_200));
    run.settle(flow, &[&last], Rebuild::Never, timeout).await?;
    eprintln!(
        "sigkill-ten: {events} events, killed at (s, rows the replica had inserted): {kills:.1?}; \
         still producing at the last kill: {flowing_at_last_kill}; exact after {:.0} s",
        started.elapsed().as_secs_f64()
    );
    drop(last);
    run.scope.drop_database().await
}

/// True while ClickHouse is running an INSERT into a raw table.
async fn insert_in_flight(client: &reqwest::Client, url: &str) -> bool {
    let request = client.post(url).body(
        "SELECT count() FROM system.processes WHERE query LIKE 'INSERT INTO%contact_events%'",
    );
    match request.send().await {
        Ok(response) => response
            .text()
            .await
            .is_ok_and(|text| text.trim().parse::<u64>().unwrap_or(0) > 0),
        Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_killed_mid_insert_and_restarted_loses_and_doubles_nothing() -> Result<()> {
    let (events, kills) = scaled((30_000, 3), (200_000, 10));
    let mut clickhouse = PrivateClickHouse::start().await?;
    let mut run = FaultRun::new("clickhouse-kill", events, 500).await?;
    run.store_on(&clickhouse);
    let flow = run.flow(2_500, Duration::from_secs(kills * 8))?;
    let ingest = run.start_working("clickhouse-kill").await?;
    let client = reqwest::Client::new();
    let mut caught = Vec::new();
    for _ in 0..kills {
        // Kill the server while it is running one of ingest's INSERTs.
        let watching = Instant::now();
        while !insert_in_flight(&client, &clickhouse.url()).await {
            anyhow::ensure!(
                watching.elapsed() < Duration::from_secs(60),
                "no INSERT seen within 60 s\n{}",
                ingest.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        clickhouse.kill()?;
        caught.push(ingest.metric(INSERTED, &[]).await?);
        tokio::time::sleep(
            run.moments
                .between(Duration::from_secs(1), Duration::from_secs(5)),
        )
        .await;
        clickhouse.restart().await?;
        // The next kill interrupts a later batch, not a retry of this one.
        let stalled_at = *caught.last().expect("a kill was recorded");
        eventually("ingest writes again", Duration::from_secs(60), || async {
            Ok((ingest.metric(INSERTED, &[]).await? > stalled_at).then_some(()))
        })
        .await
        .map_err(|error| error.context(ingest.log_tail()))?;
    }
    anyhow::ensure!(flow.is_running(), "the flow ended before the last kill");
    let timeout = Duration::from_secs(scaled(120, 600));
    let (_, half_written) = run
        .settle(flow, &[&ingest], Rebuild::IfHalfWritten, timeout)
        .await?;
    let errors = ingest
        .metric("channelshift_ingest_write_errors_total", &[])
        .await?;
    eprintln!(
        "clickhouse-kill: {events} events; killed during an INSERT {kills} times (rows ingest had \
         inserted then: {caught:?}); {errors} write errors retried; {half_written} ids found \
         half written (rollups rebuilt when > 0)"
    );
    assert!(errors >= kills as f64);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_away_under_load_pauses_ingest_and_loses_nothing() -> Result<()> {
    let away = Duration::from_secs(scaled(20, 120));
    let rate = 1_000; // events a second, before, during and after the outage
    let events = rate * (away.as_secs() as usize + 20);
    let mut clickhouse = PrivateClickHouse::start().await?;
    let mut run = FaultRun::new("clickhouse-away", events, 500).await?;
    run.store_on(&clickhouse);
    let flow = run.flow(1_000, Duration::from_secs(events as u64 / rate as u64))?;
    let ingest = run.start_working("clickhouse-away").await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    clickhouse.kill()?;
    let down = Instant::now();
    let inserted_before = ingest.metric(INSERTED, &[]).await?;
    eventually("readiness turns red", Duration::from_secs(30), || async {
        Ok((ingest.readiness().await? == 503).then_some(()))
    })
    .await?;
    tokio::time::sleep(away.saturating_sub(down.elapsed())).await;
    let produced_while_down = flow.is_running();
    clickhouse.restart().await?;
    let back = Instant::now();
    assert!(
        produced_while_down,
        "the flow ended while ClickHouse was away"
    );
    assert!(back - down >= away, "ClickHouse was away {:?}", back - down);
    let timeout = Duration::from_secs(scaled(180, 600));
    let (_, half_written) = run
        .settle(flow, &[&ingest], Rebuild::IfHalfWritten, timeout)
        .await?;
    eprintln!(
        "clickhouse-away: {events} events at {rate}/s; ClickHouse away {:.0} s after {inserted_before} \
         rows (still producing: {produced_while_down}); exact {:.0} s after it came back; \
         {half_written} ids found half written (rollups rebuilt when > 0)",
        (back - down).as_secs_f64(),
        back.elapsed().as_secs_f64()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restarted_mid_run_loses_and_doubles_nothing() -> Result<()> {
    let events = scaled(30_000, 200_000);
    let mut run = FaultRun::new("broker-restart", events, 500).await?;
    let flow = run.flow(2_000, Duration::from_secs(30))?;
    let ingest = run.start_working("broker-restart").await?;
    tokio::time::sleep(
        run.moments
            .between(Duration::from_secs(1), Duration::from_secs(6)),
    )
    .await;
    let inserted_before = ingest.metric(INSERTED, &[]).await?;
    let flowing_at_kill = flow.is_running();
    run.broker.kill()?;
    let away = run
        .moments
        .between(Duration::from_secs(3), Duration::from_secs(10));
    tokio::time::sleep(away).await;
    run.broker.restart().await?;
    assert!(
        flowing_at_kill,
        "the flow ended before the broker was killed"
    );
    let timeout = Duration::from_secs(scaled(120, 600));
    let settled = run.settle(flow, &[&ingest], Rebuild::Never, timeout).await;
    if let Err(error) = settled {
        // Tell a message the broker lost from one ingest lost.
        let on_topic: std::collections::HashSet<String> = read_topic(
            &run.scope.stack.kafka_brokers,
            &run.scope.contact_topic,
            events,
            Duration::from_secs(60),
        )?
        .iter()
        .filter_map(|message| {
            let key = rdkafka::Message::key(message)?;
            Some(String::from_utf8_lossy(key).into_owned())
        })
        .collect();
        let lost: Vec<String> = (0..events)
            .map(|i| format!("ev-{i}"))
            .filter(|id| !on_topic.contains(id))
            .take(20)
            .collect();
        anyhow::bail!("{error:#}\nacknowledged by the broker but not on the topic: {lost:?}");
    }
    eprintln!(
        "broker-restart: {events} events; broker killed after {inserted_before} rows, back after {:.1} s",
        away.as_secs_f64()
    );
    drop(ingest);
    run.scope.drop_database().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insert_errors_are_retried_not_dead_lettered_and_hold_the_offsets() -> Result<()> {
    let clickhouse = PrivateClickHouse::start().await?;
    let every = 100;
    let Loaded {
        scope,
        config,
        producer,
        ingest,
        _broker,
    } = Loaded::start("read-only", On::Private(&clickhouse), 2_000, every).await?;
    let brokers = scope.stack.kafka_brokers.clone();
    let store = migrated_store(&config.clickhouse).await?;
    let ends = await_committed(
        &brokers,
        &scope.group_id,
        &scope.contact_topic,
        Duration::from_secs(30),
    )
    .await?;
    let checkpoints = store.checkpoints(&scope.contact_topic).await?;

    // Every write now fails on the server (not a refused connection, not bad data).
    clickhouse.set_read_only(true).await?;
    produce_all(
        &producer,
        &scope.contact_topic,
        &contacts_with_bad("ev", 2_000..4_000, every),
    )
    .await?;
    eventually(
        "several attempts refused",
        Duration::from_secs(60),
        || async {
            let errors = ingest
                .metric(
                    "channelshift_ingest_write_errors_total",
                    &[("step", "rows")],
                )
                .await?;
            Ok((errors >= 3.0).then_some(()))
        },
    )
    .await
    .map_err(|error| error.context(ingest.log_tail()))?;
    let log = ingest.log_tail();
    assert!(log.contains("readonly mode"), "{log}");
    // Held: no rows, no dead letters for the new messages, offsets and checkpoints where they were.
    assert_eq!(contact_totals(&store).await?, ContactTotals::exactly(1_980));
    assert_eq!(store.checkpoints(&scope.contact_topic).await?, checkpoints);
    assert_eq!(
        committed_offsets(&brokers, &scope.group_id, &scope.contact_topic)?,
        ends
    );
    let dead = read_topic(
        &brokers,
        &format!("{}.dlq", scope.contact_topic),
        20,
        Duration::from_secs(10),
    )?;
    assert_eq!(
        dead.len(),
        20,
        "only the first batch's bad messages are dead-lettered"
    );
    assert_eq!(ingest.readiness().await?, 503);
    clickhouse.set_read_only(false).await?;
    reconciled_exactly(&config, 3_960, 40, Duration::from_secs(90), &[&ingest]).await?;
    // Each bad message rejected once, when read: retries do not re-judge them.
    assert_eq!(
        ingest
            .metric("channelshift_ingest_messages_rejected_total", &[])
            .await?,
        40.0
    );
    eventually("readiness green again", Duration::from_secs(30), || async {
        Ok((ingest.readiness().await? == 200).then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_scaled_one_three_one_while_events_flow_count_each_event_once() -> Result<()> {
    let (contacts, responses) = scaled((30_000, 10_000), (100_000, 30_000));
    let mut run = FaultRun::new("scale", contacts, 1_000).await?;
    let config = &mut run.config;
    // The default `cooperative-sticky`: Tansu 0.6 assigns a partition moving
    // to a new replica before its owner has revoked it, so for a few seconds
    // two replicas hold it; fencing lets only the later claim write (without
    // fencing, 485 ids were stored twice in each of two runs).
    // CHANNELSHIFT_FAULT_ASSIGNMENT=range runs the eager assignor instead.
    config.kafka.assignment_strategy = std::env::var("CHANNELSHIFT_FAULT_ASSIGNMENT")
        .unwrap_or_else(|_| "cooperative-sticky".into());
    config.batch.max_rows = 2_000;
    config.kafka.session_timeout_ms = broker_session_timeout_ms(config.kafka.session_timeout_ms);
    let over = Duration::from_secs(scaled(30, 120));
    let contact_flow = run.flow(1_500, over)?;
    let response_flow = steady_flow(
        producer(&run.scope)?,
        run.scope.satisfaction_topic.clone(),
        satisfaction_responses("r", 0..responses),
        500,
        over,
    );
    let first = run.start_working("scale-a").await?;
    let mut second = run.start_working("scale-b").await?;
    let mut third = run.start_working("scale-c").await?;
    // Each of the three holds partitions and has written rows of them.
    let scaled_up_flowing = contact_flow.is_running();
    let mut fenced_batches = 0.0;
    // Each replica stops once the group has settled: Tansu 0.6 keeps a
    // member that leaves in the middle of a rebalance as the group's leader,
    // after which no member is ever assigned anything again (seen: the
    // remaining replica rejoined for minutes, each SyncGroup answered
    // "rebalance in progress" for a leader that had left). Kafka removes a
    // leaving member at once.
    settled(&[&first, &second, &third], 6).await?;
    fenced_batches += stop_cleanly(&mut second).await?;
    settled(&[&first, &third], 6).await?;
    fenced_batches += stop_cleanly(&mut third).await?;
    let scaled_down_flowing = contact_flow.is_running();
    assert!(
        scaled_up_flowing && scaled_down_flowing,
        "events flowed while scaling up ({scaled_up_flowing}) and down ({scaled_down_flowing})"
    );
    response_flow.finish().await?;
    let timeout = Duration::from_secs(scaled(120, 600));
    let (report, _) = run
        .settle(contact_flow, &[&first], Rebuild::Never, timeout)
        .await?;
    let stored_responses = report.topics[1].total().stored;
    assert_eq!(stored_responses, responses as u64);
    assert_eq!(
        satisfaction_totals(&run.scope.store().await?).await?,
        (responses as u64, responses as u64)
    );
    fenced_batches += fenced(&first).await?;
    eprintln!(
        "scale: {contacts} contacts and {responses} responses; still flowing when scaled to 3: \
         {scaled_up_flowing}, back to 1: {scaled_down_flowing}; fenced batches: {fenced_batches}"
    );
    drop(first);
    run.scope.drop_database().await
}

/// Ten years and ten months of history for a council new to the store (130
/// months, 20 contacts each, the months shuffled), produced in one go before
/// ingest starts, so each batch spans far more months than one INSERT may
/// touch on current servers: stored exactly once, each batch in several
/// INSERTs, every month in the rollup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_back_load_of_130_months_for_a_new_council_is_stored_once() -> Result<()> {
    let (_broker, scope) = private_stack("back-load").await?;
    let mut config = scope.ingest_config();
    config.batch.max_rows = 10_000;
    config.batch.max_wait_ms = 2_000;
    let months = 130;
    let history: Vec<(String, Vec<u8>)> = (0..months * 20)
        .map(|i| {
            let id = format!("history-{i}");
            let mut event: serde_json::Value =
                serde_json::from_slice(&contact_event(&id, i)).expect("test event is JSON");
            let month = (i * 7) % months;
            event["council"] = "E06000001".into();
            event["occurred_at"] = format!(
                "{}-{:02}-{:02}T10:00:00Z",
                2015 + month / 12,
                1 + month % 12,
                1 + i % 28
            )
            .into();
            (id, event.to_string().into_bytes())
        })
        .collect();
    produce_all(&producer(&scope)?, &scope.contact_topic, &history).await?;
    let ingest = IngestProcess::ingest("back-load", config.clone()).await?;
    let expected = history.len() as u64;
    reconciled_exactly(&config, expected, 0, Duration::from_secs(120), &[&ingest]).await?;
    let inserts = ingest
        .metric(
            channelshift_ingest::metrics::INSERTS,
            &[("table", "contact_events")],
        )
        .await?;
    let batches = ingest
        .metric(
            &format!("{}_count", channelshift_ingest::metrics::BATCH_ROWS),
            &[],
        )
        .await?;
    assert!(
        inserts > batches,
        "{batches} batches in {inserts} INSERTs: none was split\n{}",
        ingest.log_tail()
    );
    let store = scope.store().await?;
    #[derive(clickhouse::Row, serde::Deserialize)]
    struct Months {
        n: u64,
    }
    let in_rollup = store
        .client()
        .query(&format!(
            "SELECT uniqExact(toYYYYMM(day)) AS n FROM {} WHERE council = 'E06000001'",
            store.rollup("contact_daily")
        ))
        .fetch_one::<Months>()
        .await?
        .n;
    assert_eq!(in_rollup, months as u64);
    eprintln!("back-load: {expected} contacts over {months} months, {batches} batches in {inserts} INSERTs, exact");
    drop(ingest);
    scope.drop_database().await
}

/// Partitions paused while a write failed, then moved to another replica and
/// given back, are read again: the stall seen on the demo stack (a replica
/// holding a partition and reading nothing from it for minutes, until it was
/// restarted), reproduced without freezes. librdkafka keeps a partition's
/// pause through a revoke and a new assignment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_paused_during_a_failed_write_and_given_back_are_read_again() -> Result<()> {
    let clickhouse = PrivateClickHouse::start().await?;
    let (_broker, scope) = private_stack("paused-moved").await?;
    let mut config = scope.ingest_config();
    config.clickhouse = clickhouse.config(&scope.database);
    // Eager: a replica joining or leaving revokes and reassigns everything.
    config.kafka.assignment_strategy = "range".into();
    config.stall_after_seconds = 15;
    let producer = producer(&scope)?;
    let first = IngestProcess::ingest("paused-a", config.clone()).await?;
    produce_all(
        &producer,
        &scope.contact_topic,
        &contact_events("ev", 0..300),
    )
    .await?;
    let store = migrated_store(&config.clickhouse).await?;
    await_stored(&store, 300, Duration::from_secs(60), &[&first]).await?;

    // Every write refused (a read-only server; a replica still starts, as
    // the tables exist): the first replica pauses every partition it holds.
    clickhouse.set_read_only(true).await?;
    produce_all(
        &producer,
        &scope.contact_topic,
        &contact_events("ev", 300..600),
    )
    .await?;
    let write_errors = "channelshift_ingest_write_errors_total";
    eventually(
        "the first replica's writes fail",
        Duration::from_secs(30),
        || async { Ok((first.metric(write_errors, &[]).await? >= 1.0).then_some(())) },
    )
    .await?;
    // Messages produced now wait on the broker (the partitions are paused):
    // partitions with messages waiting and no progress are reported.
    produce_all(
        &producer,
        &scope.contact_topic,
        &contact_events("ev", 600..700),
    )
    .await?;
    eventually(
        "stalled partitions reported, readiness red",
        Duration::from_secs(45),
        || async {
            let stalled = first
                .metric(channelshift_ingest::metrics::STALLED, &[])
                .await?;
            Ok((stalled >= 1.0 && first.readiness().await? == 503).then_some(()))
        },
    )
    .await
    .map_err(|error| error.context(first.log_tail()))?;
    // A second replica takes some partitions, and fails too.
    let mut second = IngestProcess::ingest("paused-b", config.clone()).await?;
    eventually(
        "the second replica's writes fail",
        Duration::from_secs(60),
        || async { Ok((second.metric(write_errors, &[]).await? >= 1.0).then_some(())) },
    )
    .await
    .map_err(|error| error.context(second.log_tail()))?;
    clickhouse.set_read_only(false).await?;
    eventually("the 700 indexed", Duration::from_secs(60), || async {
        Ok((contact_totals(&store).await?.id_index_rows >= 700).then_some(()))
    })
    .await
    .map_err(|error| error.context(first.log_tail()))?;
    // The second leaves: its partitions go back to the first.
    second.signal("TERM")?;
    anyhow::ensure!(
        second.wait(Duration::from_secs(30)).await?.is_some(),
        "the second replica did not stop\n{}",
        second.log_tail()
    );
    produce_all(
        &producer,
        &scope.contact_topic,
        &contact_events("ev", 700..1_000),
    )
    .await?;
    eventually("all 1,000 indexed", Duration::from_secs(60), || async {
        Ok((contact_totals(&store).await?.id_index_rows >= 1_000).then_some(()))
    })
    .await
    .map_err(|error| error.context(first.log_tail()))?;
    reconciled_exactly(&config, 1_000, 0, Duration::from_secs(60), &[&first]).await?;
    eventually("readiness green again", Duration::from_secs(30), || async {
        Ok((first.readiness().await? == 200).then_some(()))
    })
    .await?;
    // Idle past the stall time with everything read: nothing is stalled.
    tokio::time::sleep(Duration::from_secs(config.stall_after_seconds + 10)).await;
    assert_eq!(
        first
            .metric(channelshift_ingest::metrics::STALLED, &[])
            .await?,
        0.0,
        "{}",
        first.log_tail()
    );
    assert_eq!(first.readiness().await?, 200);
    Ok(())
}

/// Rows ClickHouse refuses for good (a CHECK constraint, which current
/// servers have and 18.16 has not) among rows it takes: each refused row goes
/// to the dead-letter topic as `store_refused`, byte for byte, the rest of
/// its batch is stored, and ingest goes on with what follows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs ClickHouse 26 (chdb): cargo xtask test runs it"]
async fn rows_clickhouse_refuses_for_good_are_dead_lettered_and_the_rest_stored() -> Result<()> {
    let Loaded {
        scope,
        config,
        producer,
        ingest,
        _broker,
    } = Loaded::start("refused", On::Current, 100, 1_000).await?;
    let store = Store::connect(&config.clickhouse).await?;
    store
        .client()
        .query("ALTER TABLE contact_events ADD CONSTRAINT no_poison CHECK event_id NOT LIKE 'poison-%'")
        .execute()
        .await?;
    // 300 more on one partition, one in 50 refused by the constraint.
    let mixed: Vec<(String, Vec<u8>)> = (100..400)
        .map(|i| {
            let id = if i % 50 == 0 {
                format!("poison-{i}")
            } else {
                format!("ev-{i}")
            };
            ("one-partition".to_string(), contact_event(&id, i))
        })
        .collect();
    produce_all(&producer, &scope.contact_topic, &mixed).await?;
    let dead = read_topic(
        &scope.stack.kafka_brokers,
        &format!("{}.dlq", scope.contact_topic),
        6,
        Duration::from_secs(60),
    )
    .map_err(|error| error.context(ingest.log_tail()))?;
    let refused: Vec<&Vec<u8>> = mixed
        .iter()
        .filter(|(_, payload)| String::from_utf8_lossy(payload).contains("poison-"))
        .map(|(_, payload)| payload)
        .collect();
    assert_eq!(dead.len(), refused.len());
    for letter in &dead {
        assert_eq!(
            header(letter, "channelshift-reason").as_deref(),
            Some("store_refused")
        );
        let detail = header(letter, "channelshift-detail").unwrap_or_default();
        assert!(detail.contains("no_poison"), "{detail}");
        let payload = rdkafka::Message::payload(letter)
            .unwrap_or_default()
            .to_vec();
        assert!(refused.contains(&&payload), "byte for byte");
    }
    // Ingest goes on.
    produce_all(
        &producer,
        &scope.contact_topic,
        &contact_events("ev", 400..500),
    )
    .await?;
    reconciled_exactly(&config, 494, 6, Duration::from_secs(60), &[&ingest]).await?;
    let rejected = ingest
        .metric(
            "channelshift_ingest_messages_rejected_total",
            &[("reason", "store_refused")],
        )
        .await?;
    assert_eq!(rejected, 6.0);
    drop(ingest);
    for drop in scope.drop_statements() {
        store.client().query(&drop).execute().await?;
    }
    Ok(())
}

/// An INSERT whose views fail, `runs` times in a row against one replica
/// storing `on` a ClickHouse: each time a view
/// made to fail with `throwIf` refuses the INSERT after the raw rows are
/// stored (as a server killed at that instant would leave them, on current
/// servers with any of the other views' rows written or not), the retry finds
/// the raw rows without their id index and stores nothing twice; then the
/// view is dropped. At the end the rebuild the log asks for makes the whole
/// exact. Returns the ids found half written in each run.
async fn views_failing_runs(test: &str, on: On<'_>, runs: usize) -> Result<Vec<f64>> {
    let per_run = 200;
    // Every one valid (one in 1,000 would not be).
    let Loaded {
        scope,
        config,
        producer,
        ingest,
        _broker,
    } = Loaded::start(test, on, per_run, 1_000).await?;
    let store = Store::connect(&config.clickhouse).await?;

    store
        .client()
        .query("CREATE TABLE a_failing (x UInt8) ENGINE = Null")
        .execute()
        .await?;
    let mut found = Vec::new();
    for run in 1..=runs {
        store
            .client()
            .query(
                "CREATE MATERIALIZED VIEW a_failing_mv TO a_failing \
                 AS SELECT throwIf(length(event_id) > 0) AS x FROM contact_events",
            )
            .execute()
            .await?;
        let before = ingest
            .metric(channelshift_ingest::metrics::HALF_WRITTEN, &[])
            .await?;
        let ids = run * per_run..(run + 1) * per_run;
        produce_all(&producer, &scope.contact_topic, &contact_events("ev", ids)).await?;
        // The attempt fails; the next finds the raw rows, stored once.
        let half_written = eventually(
            &format!("run {run}: the raw rows found without their index"),
            Duration::from_secs(60),
            || async {
                let now = ingest
                    .metric(channelshift_ingest::metrics::HALF_WRITTEN, &[])
                    .await?;
                Ok((now > before).then_some(now - before))
            },
        )
        .await
        .map_err(|error| error.context(ingest.log_tail()))?;
        store
            .client()
            .query("DROP TABLE a_failing_mv")
            .execute()
            .await?;
        let stored = ((run + 1) * per_run) as u64;
        eventually(
            &format!("run {run}: the index complete"),
            Duration::from_secs(30),
            || async { Ok((contact_totals(&store).await?.id_index_rows >= stored).then_some(())) },
        )
        .await?;
        let totals = contact_totals(&store).await?;
        assert_eq!(
            (totals.rows, totals.distinct_ids, totals.id_index_rows),
            (stored, stored, stored),
            "run {run}: no raw row twice\n{}",
            ingest.log_tail()
        );
        found.push(half_written);
    }
    let errors = ingest
        .metric(
            "channelshift_ingest_write_errors_total",
            &[("step", "rows")],
        )
        .await?;
    assert!(errors >= runs as f64);
    assert!(ingest.log_tail().contains("rebuild-rollups"));
    // The rollups may have missed those rows; the rebuild counts them.
    store.rebuild_rollups(|_| ()).await?;
    let total = ((runs + 1) * per_run) as u64;
    reconciled_exactly(&config, total, 0, Duration::from_secs(60), &[&ingest]).await?;
    drop(ingest);
    for drop in scope.drop_statements() {
        store.client().query(&drop).execute().await?;
    }
    Ok(found)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_an_insert_stored_before_its_views_failed_are_not_stored_twice() -> Result<()> {
    let found = views_failing_runs("half-written", On::TestStack, 3).await?;
    eprintln!("half-written (18.16): ids found stored without their index in each run: {found:?}");
    Ok(())
}

/// The same on current ClickHouse (chdb, see `current_engine.rs`), where a
/// table's views run in no fixed order: ten runs in a row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs ClickHouse 26 (chdb): cargo xtask test runs it"]
async fn rows_an_insert_stored_before_its_views_failed_are_not_stored_twice_on_current_clickhouse(
) -> Result<()> {
    let found = views_failing_runs("half-written-current", On::Current, 10).await?;
    eprintln!("half-written (current ClickHouse): ids found stored without their index in each run: {found:?}");
    Ok(())
}

/// Produces valid contacts `{prefix}-0, 1, …` in chunks of `chunk` every
/// `every` until `stop` is set; returns how many it produced.
fn endless_flow(
    producer: FutureProducer,
    topic: String,
    prefix: &'static str,
    chunk: usize,
    every: Duration,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<Result<usize>> {
    tokio::spawn(async move {
        let mut produced = 0;
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            produce_all(
                &producer,
                &topic,
                &contact_events(prefix, produced..produced + chunk),
            )
            .await?;
            produced += chunk;
            tokio::time::sleep(every).await;
        }
        Ok(produced)
    })
}

/// The process id in an ingest write's query id
/// (`channelshift-ingest:p<pid>.<random>@<host>:…`).
fn pid_of_query(query_id: &str) -> Option<u32> {
    query_id
        .strip_prefix(channelshift_store::WRITE_QUERY_PREFIX)?
        .strip_prefix('p')?
        .split('.')
        .next()?
        .parse()
        .ok()
}

/// The contact partitions whose current fence belongs to process `pid`.
async fn partitions_owned_by(store: &Store, pid: u32) -> Result<Vec<i32>> {
    #[derive(clickhouse::Row, serde::Deserialize)]
    struct Owner {
        partition: i32,
        owner: String,
    }
    let owners = store
        .client()
        .query(
            "SELECT partition, argMax(owner, fence) AS owner FROM ingest_fences \
             WHERE stream = 'contact_events' GROUP BY partition",
        )
        .fetch_all::<Owner>()
        .await?;
    let prefix = format!("p{pid}.");
    Ok(owners
        .into_iter()
        .filter(|owner| owner.owner.starts_with(&prefix))
        .map(|owner| owner.partition)
        .collect())
}

/// Batches `replica` found fenced.
/// Stops `replica` with SIGTERM, requires a clean exit, and returns its
/// fenced batches.
async fn stop_cleanly(replica: &mut IngestProcess) -> Result<f64> {
    let fenced_batches = fenced(replica).await?;
    replica.signal("TERM")?;
    let status = replica.wait(Duration::from_secs(30)).await?;
    anyhow::ensure!(
        status.is_some_and(|status| status.success()),
        "a replica did not stop cleanly: {status:?}\n{}",
        replica.log_tail()
    );
    Ok(fenced_batches)
}

/// Waits until `replicas` together hold each of `partitions` partitions
/// exactly once (by their assigned-partition series) and no rebalance has
/// started or ended for 3 s (a cooperative rebalance takes two rounds).
async fn settled(replicas: &[&IngestProcess], partitions: usize) -> Result<()> {
    let prefix = format!("{}{{", channelshift_ingest::metrics::ASSIGNED);
    let before = Instant::now();
    let mut quiet_since: Option<(f64, Instant)> = None;
    loop {
        let mut held = Vec::new();
        let mut rebalances = 0.0;
        for replica in replicas {
            let text = replica.metrics().await?;
            held.extend(
                text.lines()
                    .filter_map(|line| line.strip_prefix(&prefix))
                    .filter_map(|line| line.split('}').next())
                    .map(str::to_string),
            );
            rebalances += metric_sum(&text, channelshift_ingest::metrics::REBALANCES, &[]);
        }
        let distinct: std::collections::BTreeSet<&String> = held.iter().collect();
        if held.len() == partitions && distinct.len() == partitions {
            match quiet_since {
                Some((seen, since)) if seen == rebalances => {
                    if since.elapsed() >= Duration::from_secs(3) {
                        return Ok(());
                    }
                }
                _ => quiet_since = Some((rebalances, Instant::now())),
            }
        } else {
            quiet_since = None;
        }
        if before.elapsed() > Duration::from_secs(90) {
            anyhow::bail!("the group did not settle within 90 s: held {held:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn fenced(replica: &IngestProcess) -> Result<f64> {
    replica
        .metric(channelshift_ingest::metrics::FENCED, &[])
        .await
}

/// Which of `replicas` (process ids) has a staging INSERT that has been
/// running for over `elapsed`, if any. Other tests' replicas may write to
/// the same server.
async fn staging_in_flight(
    store: &Store,
    replicas: &[u32],
    elapsed: Duration,
) -> Result<Option<u32>> {
    #[derive(clickhouse::Row, serde::Deserialize)]
    struct Running {
        query_id: String,
    }
    let running = store
        .client()
        .query(
            "SELECT query_id FROM system.processes WHERE startsWith(query_id, ?) \
             AND query LIKE 'INSERT INTO%contact_events_staging%' AND elapsed > ?",
        )
        .bind(channelshift_store::WRITE_QUERY_PREFIX)
        .bind(elapsed.as_secs_f64())
        .fetch_all::<Running>()
        .await?;
    Ok(running
        .iter()
        .filter_map(|query| pid_of_query(&query.query_id))
        .find(|pid| replicas.contains(pid)))
}

/// Issue 16's zombie replica: two replicas in one group; every staging INSERT
/// takes 3 s (a view that sleeps), and ten times, at a random moment within
/// one of its INSERTs, the replica that joined second is frozen (SIGSTOP)
/// until the other has claimed its partitions and writes them, then resumed
/// (SIGCONT) to finish its INSERT. The server refuses the stale replica's rows, which
/// counts a fenced batch; the reconciliation is exact. With
/// `CHANNELSHIFT_TEST_FENCING=off` the replicas run without fencing, to show
/// what it prevents: the same run then stores rows twice, and fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_frozen_mid_insert_past_its_session_is_fenced_and_nothing_is_stored_twice(
) -> Result<()> {
    let cycles = scaled(10, 30);
    let mut run = FaultRun::new("zombie", 0, 1_000).await?;
    run.config.fencing = std::env::var("CHANNELSHIFT_TEST_FENCING").as_deref() != Ok("off");
    let session = Duration::from_millis(u64::from(run.config.kafka.session_timeout_ms));
    let store = Store::connect(&run.config.clickhouse).await?;
    store.migrate().await?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flow = endless_flow(
        producer(&run.scope)?,
        run.scope.contact_topic.clone(),
        "ev",
        40,
        Duration::from_millis(200),
        stop.clone(),
    );
    let a = run.start_working("zombie-a").await?;
    let b = run.start_working("zombie-b").await?;
    // Staging INSERTs slowed only once both have joined: Tansu 0.6 kept
    // excluding a joining replica while the only member was slow to rejoin
    // (seen under CI load: zombie-a revoked and was given back every
    // partition every 10 s for 90 s, zombie-b was never assigned one).
    const SLOW_VIEW: &str = "CREATE MATERIALIZED VIEW slow_staging_mv TO slow_staging \
         AS SELECT toUInt8(sleep(3)) AS x FROM contact_events_staging";
    for statement in [
        "CREATE TABLE slow_staging (x UInt8) ENGINE = Null",
        SLOW_VIEW,
    ] {
        store.client().query(statement).execute().await?;
    }

    let mut fenced_per_cycle = Vec::new();
    for cycle in 1..=cycles {
        // The replica that joined second: Tansu 0.6 does not hand a frozen
        // group leader's partitions to the others until it is back (seen:
        // the other replica waited over 60 s), where Apache Kafka would.
        let (zombie, other) = (&b, &a);
        // For the same reason Tansu 0.6 can keep the resumed replica out of
        // the group while the other, slowed, is its only member (seen in CI:
        // zombie-b unassigned for over 60 s after its seventh freeze).
        // Holding nothing, it cannot be caught mid-INSERT: lift the slowdown
        // until it holds partitions again.
        let holds = || async {
            Ok((!partitions_owned_by(&store, zombie.pid()).await?.is_empty()).then_some(()))
        };
        if eventually(
            &format!("cycle {cycle}: the replica to freeze holds partitions"),
            Duration::from_secs(20),
            holds,
        )
        .await
        .is_err()
        {
            store
                .client()
                .query("DROP TABLE slow_staging_mv")
                .execute()
                .await?;
            eventually(
                &format!("cycle {cycle}: the replica to freeze rejoined, inserts not slowed"),
                Duration::from_secs(90),
                holds,
            )
            .await
            .map_err(|error| error.context(format!("{}\n{}", a.log_tail(), b.log_tail())))?;
            store.client().query(SLOW_VIEW).execute().await?;
            eprintln!(
                "zombie cycle {cycle}: pid {} held no partition for 20 s; inserts were unslowed until it did",
                zombie.pid()
            );
        }
        let before = fenced(zombie).await?;
        // A random moment within a 3 s staging INSERT: once one has run this
        // long, the replica is frozen at once, while it still runs.
        let into_insert = run
            .moments
            .between(Duration::from_millis(200), Duration::from_millis(2_500));
        eventually(
            &format!("cycle {cycle}: a staging INSERT {into_insert:?} in"),
            Duration::from_secs(60),
            || async {
                Ok(staging_in_flight(&store, &[zombie.pid()], into_insert)
                    .await?
                    .map(|_| ()))
            },
        )
        .await
        .map_err(|error| error.context(format!("{}\n{}", a.log_tail(), b.log_tail())))?;
        let frozen_at = Instant::now();
        zombie.signal("STOP")?;
        let held_by_zombie = partitions_owned_by(&store, zombie.pid()).await?;
        if run.config.fencing {
            // Until the other replica has claimed every partition the
            // frozen one held, and a moment more.
            eventually(
                &format!("cycle {cycle}: the frozen replica's partitions claimed"),
                Duration::from_secs(60),
                || async {
                    let now = partitions_owned_by(&store, zombie.pid()).await?;
                    Ok(held_by_zombie
                        .iter()
                        .all(|p| !now.contains(p))
                        .then_some(()))
                },
            )
            .await
            .map_err(|error| error.context(format!("{}\n{}", a.log_tail(), b.log_tail())))?;
            tokio::time::sleep(run.moments.between(Duration::ZERO, Duration::from_secs(2))).await;
        } else {
            // No claims to watch: long enough for the other replica to
            // take the partitions and look their ids up.
            tokio::time::sleep(run.moments.between(
                session + Duration::from_secs(8),
                session + Duration::from_secs(12),
            ))
            .await;
        }
        let held = frozen_at.elapsed();
        zombie.signal("CONT")?;
        // The stale replica finds out at its next fence check.
        eventually(
            &format!("cycle {cycle}: the resumed replica is fenced"),
            Duration::from_secs(30),
            || async { Ok((fenced(zombie).await? > before).then_some(())) },
        )
        .await
        .ok();
        let counted = fenced(zombie).await? - before;
        eprintln!(
            "zombie cycle {cycle}: froze pid {} for {held:?}; fenced batches counted: {counted}; \
             other replica {} fenced so far: {}",
            zombie.pid(),
            other.pid(),
            fenced(other).await?
        );
        fenced_per_cycle.push(counted);
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let produced = flow.await??;
    store
        .client()
        .query("DROP TABLE slow_staging_mv")
        .execute()
        .await?;
    let report = reconciled_exactly(
        &run.config,
        produced as u64,
        0,
        Duration::from_secs(180),
        &[&a, &b],
    )
    .await?;
    let total: f64 = fenced_per_cycle.iter().sum();
    eprintln!(
        "zombie: {cycles} freezes, {produced} events, fenced batches per freeze {fenced_per_cycle:?}; \
         reconciled exactly:\n{report}"
    );
    if run.config.fencing {
        assert!(
            fenced_per_cycle.iter().all(|counted| *counted >= 1.0),
            "a resumed replica was not fenced: {fenced_per_cycle:?} (total {total})"
        );
    }
    Ok(())
}

/// Issue 16's stall, as a test: two replicas (range assignor), each frozen in
/// turn past its session and resumed, while a view makes ClickHouse refuse
/// every insert for a while. Readiness goes red while partitions are stuck;
/// afterwards every partition drains with no replica restarted, readiness
/// is green, and the reconciliation is exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_frozen_in_turn_while_inserts_fail_drain_every_partition_without_a_restart(
) -> Result<()> {
    let freezes = scaled(4, 14);
    let events = scaled(12_000, 400_000);
    let mut run = FaultRun::new("freeze-fail", events, 1_000).await?;
    run.config.kafka.assignment_strategy = "range".into();
    run.config.stall_after_seconds = 5;
    let session = Duration::from_millis(u64::from(run.config.kafka.session_timeout_ms));
    // Chunks of 250: a producer's re-sends (the first 200 of every fifth
    // chunk) then never include an invalid message (offset 249 of its chunk).
    let flow = run.flow(250, Duration::from_secs(scaled(70, 200)))?;
    let a = run.start_working("freeze-fail-a").await?;
    let b = run.start_working("freeze-fail-b").await?;
    let store = Store::connect(&run.config.clickhouse).await?;
    store
        .client()
        .query("CREATE TABLE refusing (x UInt8) ENGINE = Null")
        .execute()
        .await?;
    let mut red_seen = false;
    for freeze in 0..freezes {
        let (frozen, other) = if freeze % 2 == 0 { (&a, &b) } else { (&b, &a) };
        // Every insert fails while the view exists (a temporary error:
        // retried, not dead-lettered).
        store
            .client()
            .query(
                "CREATE MATERIALIZED VIEW refusing_mv TO refusing \
                 AS SELECT throwIf(length(event_id) > 0) AS x FROM contact_events",
            )
            .execute()
            .await?;
        frozen.signal("STOP")?;
        let held = run.moments.between(
            session + Duration::from_secs(2),
            session + Duration::from_secs(6),
        );
        let until = Instant::now() + held;
        while Instant::now() < until {
            red_seen |= other.readiness().await? == 503;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        frozen.signal("CONT")?;
        let failing = run
            .moments
            .between(Duration::from_secs(2), Duration::from_secs(8));
        let until = Instant::now() + failing;
        while Instant::now() < until {
            for replica in [&a, &b] {
                red_seen |= replica.readiness().await? == 503;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        store
            .client()
            .query("DROP TABLE refusing_mv")
            .execute()
            .await?;
        eprintln!(
            "freeze-fail: froze pid {} for {held:?}, inserts refused for a further {failing:?}",
            frozen.pid()
        );
        tokio::time::sleep(
            run.moments
                .between(Duration::from_secs(1), Duration::from_secs(4)),
        )
        .await;
    }
    // Rows an insert stored before the view refused them are found by the
    // next attempt and re-indexed; the rollups then need the rebuild.
    let (report, half_written) = run
        .settle(
            flow,
            &[&a, &b],
            Rebuild::IfHalfWritten,
            Duration::from_secs(180),
        )
        .await?;
    eprintln!("freeze-fail: half written {half_written}\n{report}");
    assert!(
        red_seen,
        "readiness never went red while partitions were stuck"
    );
    for replica in [&a, &b] {
        eventually("readiness green again", Duration::from_secs(30), || async {
            Ok((replica.readiness().await? == 200).then_some(()))
        })
        .await
        .map_err(|error| error.context(replica.log_tail()))?;
        assert_eq!(
            replica
                .metric(channelshift_ingest::metrics::STALLED, &[])
                .await?,
            0.0
        );
    }
    Ok(())
}

/// Issue 16's slow insert: ClickHouse takes 3 s over one INSERT (a view that
/// sleeps), past ingest's 2 s attempt timeout. The abandoned attempt's query
/// is still running when the retry begins: the retry stops it and waits for
/// it to end before looking ids up, and each row is stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insert_slower_than_the_attempt_timeout_is_stopped_before_the_retry_and_stored_once(
) -> Result<()> {
    let (_broker, scope) = private_stack("slow-insert").await?;
    let mut config = scope.ingest_config();
    config.attempt_timeout_seconds = 2;
    let producer = producer(&scope)?;
    let ingest = IngestProcess::ingest("slow-insert", config.clone()).await?;
    produce_all(
        &producer,
        &scope.contact_topic,
        &contact_events("ev", 0..100),
    )
    .await?;
    let store = migrated_store(&config.clickhouse).await?;
    await_stored(&store, 100, Duration::from_secs(60), &[&ingest]).await?;
    for statement in [
        "CREATE TABLE slow_raw (x UInt8) ENGINE = Null",
        "CREATE MATERIALIZED VIEW slow_raw_mv TO slow_raw \
         AS SELECT toUInt8(sleep(3)) AS x FROM contact_events",
    ] {
        store.client().query(statement).execute().await?;
    }
    produce_all(
        &producer,
        &scope.contact_topic,
        &contact_events("ev", 100..150),
    )
    .await?;
    eventually(
        "an attempt abandoned at its timeout",
        Duration::from_secs(60),
        || async {
            let errors = ingest
                .metric(
                    "channelshift_ingest_write_errors_total",
                    &[("step", "timeout")],
                )
                .await?;
            Ok((errors >= 1.0).then_some(()))
        },
    )
    .await
    .map_err(|error| error.context(ingest.log_tail()))?;
    eventually(
        "the abandoned attempt's query stopped before the retry",
        Duration::from_secs(30),
        || async {
            Ok(ingest
                .log_contains("an abandoned attempt's queries are still running")
                .then_some(()))
        },
    )
    .await
    .map_err(|error| error.context(ingest.log_tail()))?;
    store
        .client()
        .query("DROP TABLE slow_raw_mv")
        .execute()
        .await?;
    await_stored(&store, 150, Duration::from_secs(60), &[&ingest]).await?;
    if ingest
        .metric(channelshift_ingest::metrics::HALF_WRITTEN, &[])
        .await?
        > 0.0
    {
        store.rebuild_rollups(|_| ()).await?;
    }
    reconciled_exactly(&config, 150, 0, Duration::from_secs(60), &[&ingest]).await?;
    Ok(())
}
