//! The benchmark harness (`cargo xtask bench`): every figure of BENCHMARKS.md,
//! measured side by side in one run on the bench stack (ClickHouse, Tansu
//! with memory storage), each printed with its target and whether it is met.
//!
//! 1. ingest throughput end to end, against the broker's consume-only and
//!    ClickHouse's insert-only ceilings and a Python reference consumer;
//! 2. the ingest process's peak memory, under load and through a 60 s
//!    ClickHouse outage;
//! 3. freshness at a steady 10,000 events/s, produce to queryable in the API;
//! 4. KPI API latency at 20 M contacts and 2 M responses, 1 and 8 clients,
//!    with the ratio against the same queries on the raw tables;
//! 5. one quarterly committee pack in all formats;
//! 6. throughput with 1, 2 and 3 ingest replicas on 3 partitions, and
//!    storage per million events.
//!
//! Sizes: `CHANNELSHIFT_BENCH_EVENTS` (2,000,000), `CHANNELSHIFT_BENCH_API_CONTACTS`
//! (20,000,000). `CHANNELSHIFT_BENCH_KEEP` keeps the end-to-end database
//! (benchmarks 4 and 5's) for profiling afterwards. Under `cargo test` it
//! does nothing: it needs the bench stack.

use anyhow::{Context, Result};
use channelshift_api::config::{ApiConfig, AuthConfig, Baseline, KpiSettings, ServerLimits};
use channelshift_api::request::{Grouping, KpiRequest};
use channelshift_api::AppState;
use channelshift_contract::CouncilCode;
use channelshift_contract::{ContactEvent, SatisfactionResponse};
use channelshift_ingest::config::BatchConfig;
use channelshift_kpi::catalogue::{GroupKey, Kpi};
use channelshift_kpi::period::{Period, PeriodKind};
use channelshift_packs::Format;
use channelshift_reports::compute::compute;
use channelshift_reports::scorecard;
use channelshift_simulator::{Generator, Scenario};
use channelshift_store::{
    CellFilter, ContactRow, Fencing, KafkaPosition, SatisfactionRow, Source, Store,
};
use channelshift_tests::api_process::api_binary;
use channelshift_tests::checks::{contact_progress, contact_totals, satisfaction_totals};
use channelshift_tests::config_file::{toml_text, AuthSection, ClickHouseSection};
use channelshift_tests::kafka::produce_all;
use channelshift_tests::process::{free_port, metric_sum, IngestProcess, ServiceProcess};
use channelshift_tests::{
    create_topics, producer, simulated, start_api, Messages, Scope, API_TOKEN,
};
use chrono::{NaiveDate, Utc};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::FutureRecord;
use rdkafka::util::Timeout;
use rdkafka::Message;
use sha2::Digest;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const COUNCIL: &str = "E07000041";

/// One line of the results table.
struct Figure {
    name: String,
    value: String,
    target: String,
    met: Option<bool>,
}

#[derive(Default)]
struct Report {
    figures: Vec<Figure>,
    notes: Vec<String>,
}

impl Report {
    fn add(&mut self, name: &str, value: String, target: &str, met: Option<bool>) {
        let mark = match met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "",
        };
        println!("  {name:<58} {value:>22}  {target:<24} {mark}");
        self.figures.push(Figure {
            name: name.into(),
            value,
            target: target.into(),
            met,
        });
    }

    /// Every figure with its target and whether it is met, for comparing
    /// one run with another by a command (`target/bench-report.json`).
    fn json(&self, header: &str) -> serde_json::Value {
        serde_json::json!({
            "run": header,
            "figures": self.figures.iter().map(|figure| serde_json::json!({
                "figure": figure.name.trim(),
                "measured": figure.value,
                "target": (!figure.target.is_empty()).then_some(&figure.target),
                "met": figure.met,
            })).collect::<Vec<_>>(),
            "notes": self.notes,
        })
    }

    fn note(&mut self, text: String) {
        println!("  note: {text}");
        self.notes.push(text);
    }

    fn markdown(&self, header: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{header}\n");
        let _ = writeln!(out, "| Figure | Measured | Target | Met |");
        let _ = writeln!(out, "|---|---:|---|---|");
        for figure in &self.figures {
            let met = match figure.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "",
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {met} |",
                figure.name, figure.value, figure.target
            );
        }
        if !self.notes.is_empty() {
            let _ = writeln!(out);
            for note in &self.notes {
                let _ = writeln!(out, "- {note}");
            }
        }
        out
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn per_second(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// The machine's busy CPU time since boot, in seconds over every core
/// (`/proc/stat`: user, nice, system, irq, softirq and steal), for what a
/// step cost the whole machine: broker, ClickHouse, services and harness.
fn busy_cpu_seconds() -> Result<f64> {
    let stat = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    let line = stat.lines().next().context("an empty /proc/stat")?;
    let ticks: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .map(|field| field.parse::<f64>().unwrap_or(0.0))
        .collect();
    // user nice system idle iowait irq softirq steal, in USER_HZ (100 a
    // second on Linux).
    let busy = [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&field| ticks.get(field))
        .sum::<f64>();
    Ok(busy / 100.0)
}

/// The ClickHouse server's CPU seconds since it started (`/proc/<pid>/stat`,
/// user and system), when `cargo xtask bench` gave its PID.
fn clickhouse_cpu_seconds() -> Option<f64> {
    let pid = std::env::var("CHANNELSHIFT_BENCH_CLICKHOUSE_PID").ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command's closing parenthesis: field 3 on, so utime and
    // stime (fields 14 and 15) are the 12th and 13th.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |index: usize| fields.get(index)?.parse::<f64>().ok();
    Some((ticks(11)? + ticks(12)?) / 100.0)
}

/// CPU seconds per million events of one step: the whole machine's, and
/// the ClickHouse server's part of it (NaN without its PID).
#[derive(Clone, Copy)]
struct StepCpu {
    machine: f64,
    clickhouse: f64,
}

impl StepCpu {
    const UNKNOWN: Self = Self {
        machine: f64::NAN,
        clickhouse: f64::NAN,
    };
}

/// `step`'s result, and the CPU seconds per million of `events` while it ran.
async fn cpu_per_million<T, F>(events: u64, step: F) -> Result<(T, StepCpu)>
where
    F: std::future::Future<Output = Result<T>>,
{
    let (machine, server) = (busy_cpu_seconds()?, clickhouse_cpu_seconds());
    let result = step.await?;
    let per_million = 1_000_000.0 / events.max(1) as f64;
    let cpu = StepCpu {
        machine: (busy_cpu_seconds()? - machine) * per_million,
        clickhouse: server
            .zip(clickhouse_cpu_seconds())
            .map_or(f64::NAN, |(before, after)| (after - before) * per_million),
    };
    Ok((result, cpu))
}

/// A rate or count, rounded, with thousands separators.
fn grouped(value: f64) -> String {
    channelshift_runtime::text::grouped(value.round() as u64)
}

fn percentile(samples: &mut [f64], p: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort_by(f64::total_cmp);
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index.min(samples.len() - 1)]
}

/// A field of `/proc/<pid>/status` in KiB (VmRSS, VmHWM).
fn proc_kib(pid: u32, field: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|line| line.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The simulator's district council, 13 months to October 2026, until
/// `events` messages (contacts and responses) have been generated.
fn generate(events: u64) -> Result<(Messages, Messages)> {
    let mut scenario = Scenario::district();
    scenario.seed = 20_261_122;
    scenario.months = 13;
    scenario.end = NaiveDate::from_ymd_opt(2026, 10, 31).context("date")?;
    // Responses are about a tenth of contacts in this scenario.
    scenario.contacts = Some(events);
    let mut generator = Generator::new(scenario);
    Ok(simulated(&mut generator, Some(events)))
}

/// Waits until the scope's store holds `contacts` and `responses`, settled;
/// returns when it did. Fails when nothing has moved for a minute.
/// How a run ended: when the last event was stored, how many were.
struct Stored {
    at: Instant,
    events: u64,
    complete: bool,
}

async fn wait_stored(
    store: &Store,
    contacts: u64,
    responses: u64,
    limit: Duration,
) -> Result<Stored> {
    let deadline = Instant::now() + limit;
    let mut last = (0, 0);
    let mut moved = Instant::now();
    loop {
        // Progress by counts cheap to read while ingest writes; the
        // distinct ids once those are all in, so that the harness does not
        // take ClickHouse's CPU from the ingest it measures.
        let stored = contact_progress(store).await?;
        let (rows, rolled) = satisfaction_totals(store).await?;
        let now = (stored, rows.min(rolled));
        if stored >= contacts && now.1 >= responses {
            let at = Instant::now();
            let distinct = contact_totals(store).await?.settled();
            if distinct >= contacts {
                return Ok(Stored {
                    at,
                    events: distinct + now.1,
                    complete: true,
                });
            }
        }
        if now != last {
            last = now;
            moved = Instant::now();
        }
        if Instant::now() >= deadline || moved.elapsed() >= Duration::from_secs(60) {
            let stored = contact_totals(store).await?.settled();
            println!(
                "  stalled: {stored} of {contacts} contacts and {} of {responses} responses stored",
                now.1
            );
            return Ok(Stored {
                at: moved,
                events: stored + now.1,
                complete: false,
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A scope of its own (topics, database, group) with every message produced
/// onto its topics beforehand. Each run reads topics of its own: Tansu's
/// memory storage was seen to lose a range of offsets of a topic read many
/// times (a reader assigned at the gap got the first offset after it).
async fn loaded(
    name: &str,
    contacts: &[(String, Vec<u8>)],
    responses: &[(String, Vec<u8>)],
) -> Result<Scope> {
    let scope = Scope::new(name);
    create_topics(&scope).await?;
    let producer = producer(&scope)?;
    let started = Instant::now();
    produce_all(&producer, &scope.contact_topic, contacts).await?;
    produce_all(&producer, &scope.satisfaction_topic, responses).await?;
    println!(
        "  {name}: produced {} messages onto 3-partition topics in {:.1} s",
        grouped((contacts.len() + responses.len()) as f64),
        started.elapsed().as_secs_f64()
    );
    Ok(scope)
}

/// Benchmark 1a: the broker's consume-only ceiling, by rdkafka with fetch
/// settings for throughput (large fetches, a deep local queue), reading and
/// discarding every message.
fn consume_only(scope: &Scope, expected: u64) -> Result<Duration> {
    let consumer: BaseConsumer = scope
        .stack
        .kafka_security
        .client_config(&scope.stack.kafka_brokers)?
        .set("group.id", format!("{}-consume-only", scope.group_id))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.min.bytes", "1000000")
        .set("fetch.wait.max.ms", "100")
        .set("queued.min.messages", "200000")
        .set("queued.max.messages.kbytes", "65536")
        .set("max.partition.fetch.bytes", "10485760")
        .create()?;
    consumer.subscribe(&[&scope.contact_topic, &scope.satisfaction_topic])?;
    let mut seen = 0u64;
    let mut bytes = 0usize;
    let mut started = None;
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut shown = Instant::now();
    while seen < expected && Instant::now() < deadline {
        if shown.elapsed() > Duration::from_secs(10) {
            println!("  consume-only: {seen} of {expected}");
            shown = Instant::now();
        }
        if let Some(message) = consumer.poll(Duration::from_millis(500)) {
            let message = message?;
            started.get_or_insert_with(Instant::now);
            bytes += message.payload().map_or(0, <[u8]>::len);
            seen += 1;
        }
    }
    anyhow::ensure!(seen >= expected, "consumed only {seen} of {expected}");
    std::hint::black_box(bytes);
    Ok(started.map_or(Duration::ZERO, |at| at.elapsed()))
}

/// Benchmark 1b: ClickHouse's insert-only ceiling: the same rows, parsed
/// beforehand, inserted from memory in batches of `batch` rows.
async fn insert_only(
    scope: &Scope,
    contacts: &[(String, Vec<u8>)],
    responses: &[(String, Vec<u8>)],
    batch: usize,
) -> Result<Duration> {
    let store = Store::connect(&scope.writer()).await?;
    store.migrate().await?;
    let now = Utc::now();
    let contact_rows: Vec<ContactRow> = contacts
        .iter()
        .enumerate()
        .filter_map(|(offset, (_, payload))| {
            let event = ContactEvent::from_json(payload, now).ok()?;
            let hash = event
                .customer_ref
                .as_ref()
                .map(|reference| hex::encode(sha2::Sha256::digest(reference.as_bytes())))
                .unwrap_or_default();
            Some(ContactRow::new(
                &event,
                hash,
                KafkaPosition {
                    partition: 0,
                    offset: offset as i64,
                },
                now,
            ))
        })
        .collect();
    let response_rows: Vec<SatisfactionRow> = responses
        .iter()
        .enumerate()
        .filter_map(|(offset, (_, payload))| {
            let response = SatisfactionResponse::from_json(payload, now).ok()?;
            Some(SatisfactionRow::new(
                &response,
                String::new(),
                KafkaPosition {
                    partition: 0,
                    offset: offset as i64,
                },
                now,
            ))
        })
        .collect();
    let started = Instant::now();
    for chunk in contact_rows.chunks(batch) {
        store
            .insert_contacts(&mut chunk.to_vec(), Fencing::Off)
            .await?;
    }
    for chunk in response_rows.chunks(batch) {
        store
            .insert_satisfaction(&mut chunk.to_vec(), Fencing::Off)
            .await?;
    }
    Ok(started.elapsed())
}

/// Runs `replicas` ingest processes on `scope` until everything is stored;
/// returns the time and the first replica's peak RSS (KiB).
async fn ingest_run(
    scope: &Scope,
    replicas: usize,
    contacts: u64,
    responses: u64,
) -> Result<(Duration, u64, Stored)> {
    let mut config = scope.ingest_config();
    // The product's own batch settings (the test harness's are smaller).
    config.batch = BatchConfig::default();
    let started = Instant::now();
    let mut processes = Vec::new();
    for index in 0..replicas {
        processes.push(IngestProcess::ingest(&format!("bench-{index}"), config.clone()).await?);
    }
    let store = Store::connect(&scope.writer()).await?;
    let done = wait_stored(&store, contacts, responses, Duration::from_secs(900)).await?;
    let elapsed = done.at - started;
    let peak = processes
        .first()
        .and_then(|process| proc_kib(process.pid(), "VmHWM:"))
        .unwrap_or(0);
    if let [process] = processes.as_slice() {
        // Where one replica's time went: seconds summed per step (receive
        // counts only the time spent waiting for messages, not reading
        // ahead beside a write).
        let metrics = process.metrics().await?;
        let steps: Vec<String> = [
            "receive",
            "lookup",
            "insert",
            "claim",
            "fence_check",
            "dead_letters",
            "checkpoint",
            "commit",
        ]
        .iter()
        .map(|step| {
            let seconds = metric_sum(
                &metrics,
                "channelshift_ingest_step_duration_seconds_sum",
                &[("step", step)],
            );
            format!("{step} {seconds:.1}")
        })
        .collect();
        let looked_ahead = |outcome| {
            metric_sum(
                &metrics,
                "channelshift_ingest_looked_ahead_batches_total",
                &[("outcome", outcome)],
            )
        };
        println!(
            "  ingest steps, seconds summed over {:.1} s: {}; batches looked up ahead: {} used, {} discarded",
            elapsed.as_secs_f64(),
            steps.join(", "),
            looked_ahead("used"),
            looked_ahead("discarded")
        );
    }
    for process in processes {
        process.kill()?;
    }
    Ok((elapsed, peak, done))
}

/// Benchmark 1d: the Python reference consumer.
/// The Python reference consumer; with `discard`, it only reads and
/// discards (a second, independent consume-only ceiling).
async fn python_reference(scope: &Scope, expected: u64, discard: bool) -> Result<Duration> {
    let store = Store::connect(&scope.writer()).await?;
    store.migrate().await?;
    let python = std::env::var("CHANNELSHIFT_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/reference_consumer.py");
    let writer = scope.writer();
    use secrecy::ExposeSecret;
    let started = Instant::now();
    let output = tokio::process::Command::new(python)
        .arg(script)
        .args(["--brokers", &scope.stack.kafka_brokers])
        .args(["--group", &format!("{}-python", scope.group_id)])
        .args(["--contact-topic", &scope.contact_topic])
        .args(["--satisfaction-topic", &scope.satisfaction_topic])
        .args(["--expected", &expected.to_string()])
        .args(["--clickhouse", &writer.url])
        .args(["--user", &writer.user])
        .args(["--password", writer.password.expose_secret()])
        .args(["--database", &writer.database])
        .args(discard.then_some("--consume-only"))
        .output()
        .await?;
    let elapsed = started.elapsed();
    anyhow::ensure!(
        output.status.success(),
        "the reference consumer failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    println!(
        "  python: {}",
        String::from_utf8_lossy(&output.stdout).trim()
    );
    Ok(elapsed)
}

/// Produces `messages` at `rate` per second until `stop` or the end.
async fn steady_producer(
    scope: Scope,
    messages: Arc<Vec<(String, Vec<u8>)>>,
    rate: u64,
    duration: Duration,
    sent: Arc<AtomicU64>,
) -> Result<()> {
    let producer = producer(&scope)?;
    let tick = Duration::from_millis(100);
    let per_tick = (rate / 10).max(1) as usize;
    let started = Instant::now();
    let mut next = 0usize;
    let mut interval = tokio::time::interval(tick);
    while started.elapsed() < duration && next < messages.len() {
        interval.tick().await;
        let end = (next + per_tick).min(messages.len());
        let sends = messages[next..end].iter().map(|(key, payload)| {
            producer.send(
                FutureRecord::to(&scope.contact_topic)
                    .key(key)
                    .payload(payload),
                Timeout::After(Duration::from_secs(60)),
            )
        });
        for result in futures::future::join_all(sends).await {
            result.map_err(|(error, _)| anyhow::anyhow!("producing: {error}"))?;
        }
        sent.fetch_add((end - next) as u64, Ordering::Relaxed);
        next = end;
    }
    Ok(())
}

/// Keeps ClickHouse stopped (SIGSTOP) until dropped, then lets it go on.
struct Paused(u32);

impl Paused {
    fn pause(pid: u32) -> Result<Self> {
        let status = std::process::Command::new("kill")
            .args(["-STOP", &pid.to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill -STOP {pid}");
        Ok(Self(pid))
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-CONT", &self.0.to_string()])
            .status();
    }
}

/// Benchmark 2b: ingest's peak RSS at 5,000 events/s through a 60 s
/// ClickHouse outage; returns (peak KiB, contacts produced, stored after).
async fn outage(contacts: &[(String, Vec<u8>)], report: &mut Report) -> Result<u64> {
    let pid: u32 = std::env::var("CHANNELSHIFT_BENCH_CLICKHOUSE_PID")
        .ok()
        .and_then(|pid| pid.parse().ok())
        .context("CHANNELSHIFT_BENCH_CLICKHOUSE_PID is not set (cargo xtask bench sets it)")?;
    let scope = Scope::new("benchout");
    create_topics(&scope).await?;
    let mut config = scope.ingest_config();
    config.batch = BatchConfig::default();
    let ingest = IngestProcess::ingest("bench-outage", config).await?;
    let store = Store::connect(&scope.writer()).await?;
    let messages: Arc<Vec<_>> = Arc::new(contacts.iter().take(500_000).cloned().collect());
    let sent = Arc::new(AtomicU64::new(0));
    let producing = tokio::spawn(steady_producer(
        scope.clone(),
        messages,
        5_000,
        Duration::from_secs(100),
        sent.clone(),
    ));
    let mut peak = 0u64;
    let sample = |peak: &mut u64| {
        if let Some(rss) = proc_kib(ingest.pid(), "VmRSS:") {
            *peak = (*peak).max(rss);
        }
    };
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        sample(&mut peak);
    }
    {
        let _paused = Paused::pause(pid)?;
        for _ in 0..120 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            sample(&mut peak);
        }
    }
    producing.await??;
    let produced = sent.load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(300);
    let totals = loop {
        sample(&mut peak);
        let totals = contact_totals(&store).await.ok();
        let stored = totals.map_or(0, |t| t.settled());
        if stored >= produced || Instant::now() > deadline {
            break totals;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let hwm = proc_kib(ingest.pid(), "VmHWM:").unwrap_or(peak);
    let half_written = ingest
        .metric("channelshift_ingest_half_written_total", &[])
        .await
        .unwrap_or(f64::NAN);
    ingest.kill()?;
    let stored = totals.map_or(0, |t| t.settled());
    report.note(format!(
        "outage run: {} contacts produced at 5,000/s over 100 s with ClickHouse stopped (SIGSTOP) from 20 s to 80 s; {} stored afterwards{}",
        grouped(produced as f64),
        grouped(stored as f64),
        match totals {
            Some(t) if stored < produced => format!(
                " (raw rows {}, distinct ids {}, id index {}, daily rollup {}; half-written rows re-indexed by ingest: {half_written})",
                t.rows, t.distinct_ids, t.id_index_rows, t.rollup_contacts
            ),
            _ => String::new(),
        }
    ));
    let _ = scope.drop_database().await;
    Ok(hwm.max(peak))
}

/// Benchmark 3: produce → queryable in the KPI API at a steady 10,000
/// events/s. A marker event for its own council is sent each second; the
/// API is asked for each until it counts it.
async fn freshness(contacts: &[(String, Vec<u8>)]) -> Result<Vec<f64>> {
    let scope = Scope::new("benchfresh");
    create_topics(&scope).await?;
    let mut config = scope.ingest_config();
    config.batch = BatchConfig::default();
    let ingest = IngestProcess::ingest("bench-fresh", config).await?;
    let (api, server) = start_api(&scope, 0).await?;
    let messages: Arc<Vec<_>> = Arc::new(contacts.iter().take(700_000).cloned().collect());
    let sent = Arc::new(AtomicU64::new(0));
    let run = Duration::from_secs(60);
    let producing = tokio::spawn(steady_producer(
        scope.clone(),
        messages,
        10_000,
        run,
        sent.clone(),
    ));
    let marker_producer = producer(&scope)?;
    let client = reqwest::Client::new();
    let today = Utc::now().date_naive();
    let mut pending: Vec<(String, Instant)> = Vec::new();
    let mut latencies = Vec::new();
    let started = Instant::now();
    let mut next_marker = Instant::now();
    let mut number = 0u32;
    while started.elapsed() < run + Duration::from_secs(30) {
        if started.elapsed() < run && Instant::now() >= next_marker {
            number += 1;
            let council = format!("W06{number:06}");
            let event = serde_json::json!({
                "schema_version": 1,
                "event_id": format!("marker-{number}"),
                "council": council,
                "occurred_at": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "channel": "web",
                "service": "council_tax",
                "outcome": "completed",
                "customer_type": "resident",
            })
            .to_string();
            let sent_at = Instant::now();
            marker_producer
                .send(
                    FutureRecord::to(&scope.contact_topic)
                        .key(&council)
                        .payload(&event),
                    Timeout::After(Duration::from_secs(30)),
                )
                .await
                .map_err(|(error, _)| anyhow::anyhow!("marker: {error}"))?;
            pending.push((council, sent_at));
            next_marker += Duration::from_secs(1);
        }
        let mut still = Vec::new();
        for (council, sent_at) in pending.drain(..) {
            let url =
                format!("{api}/api/v1/kpi/channel-mix?council={council}&from={today}&to={today}");
            let body: serde_json::Value = client
                .get(&url)
                .bearer_auth(API_TOKEN)
                .send()
                .await?
                .json()
                .await?;
            let counted = body["rows"].as_array().is_some_and(|rows| {
                rows.iter()
                    .any(|row| row["numerator"].as_u64().unwrap_or(0) > 0)
            });
            if counted {
                latencies.push(sent_at.elapsed().as_secs_f64());
            } else {
                still.push((council, sent_at));
            }
        }
        pending = still;
        if started.elapsed() >= run && pending.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    producing.await??;
    anyhow::ensure!(
        pending.is_empty(),
        "{} markers never became queryable",
        pending.len()
    );
    let produced = sent.load(Ordering::Relaxed);
    println!("  freshness: {produced} events produced in {run:?} alongside {number} markers");
    server.stop().await?;
    ingest.kill()?;
    let _ = scope.drop_database().await;
    Ok(latencies)
}

/// Replicates the scope's rows until it holds `contacts` contacts, with
/// `responses / stored responses` copies of the responses.
async fn replicate(store: &Store, contacts: u64, responses: u64) -> Result<(u64, u64)> {
    let totals = contact_totals(store).await?;
    let (stored_responses, _) = satisfaction_totals(store).await?;
    let base = totals.rows.max(1);
    let copies = contacts.div_ceil(base).saturating_sub(1);
    let client = store.client();
    for copy in 1..=copies {
        client
            .query(&format!(
                "INSERT INTO contact_events SELECT council, concat(event_id, '~{copy}'), occurred_at, channel,
                 assisted, service, interaction, outcome, customer_type, customer_hash,
                 if(journey_id = '', '', concat(journey_id, '~{copy}')), avoidable,
                 first_contact_resolved, ward, lsoa, wait_seconds, handling_seconds, source, kafka_partition,
                 kafka_offset, ingested_at FROM contact_events WHERE NOT like(event_id, '%~%')"
            ))
            .execute()
            .await?;
        println!("  replicated contacts: copy {copy} of {copies}");
    }
    let response_copies = responses
        .div_ceil(stored_responses.max(1))
        .saturating_sub(1);
    for copy in 1..=response_copies {
        client
            .query(&format!(
                "INSERT INTO satisfaction_responses SELECT council, concat(response_id, '~{copy}'), responded_at,
                 contact_event_id, channel, service, customer_type, instrument, score, survey_mode, comment, ward,
                 lsoa, kafka_partition, kafka_offset, ingested_at FROM satisfaction_responses
                 WHERE NOT like(response_id, '%~%')"
            ))
            .execute()
            .await?;
    }
    let totals = contact_totals(store).await?;
    let (responses, _) = satisfaction_totals(store).await?;
    Ok((totals.rows, responses))
}

fn kpi_settings() -> Result<KpiSettings> {
    Ok(KpiSettings {
        baseline: Some(Baseline {
            from: NaiveDate::from_ymd_opt(2025, 11, 1).context("date")?,
            to: NaiveDate::from_ymd_opt(2026, 1, 31).context("date")?,
        }),
        pack_settle_seconds: 0,
        ..KpiSettings::default()
    })
}

async fn app_state(scope: &Scope) -> Result<AppState> {
    let config = ApiConfig {
        councils: Default::default(),
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        clickhouse: scope.reader(),
        auth: AuthConfig {
            token_sha256: Vec::new(),
            revoked_sha256: Vec::new(),
        },
        kpi: kpi_settings()?,
        server: ServerLimits::default(),
        query: Default::default(),
        packs: Default::default(),
        tls: None,
    };
    let store = Store::connect(&config.clickhouse).await?;
    AppState::new(&config, store)
}

/// p50 and p95 (ms) of `total` requests to `url` from `clients` at once.
async fn http_latency(url: &str, clients: usize, total: usize) -> Result<(f64, f64)> {
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let client = client.clone();
        let url = url.to_string();
        let count = total / clients;
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            for _ in 0..count {
                let started = Instant::now();
                let response = client.get(&url).bearer_auth(API_TOKEN).send().await?;
                anyhow::ensure!(
                    response.status().is_success(),
                    "{url}: {}",
                    response.status()
                );
                response.bytes().await?;
                samples.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            Ok::<_, anyhow::Error>(samples)
        }));
    }
    let mut samples = Vec::new();
    for task in tasks {
        samples.extend(task.await??);
    }
    Ok((
        percentile(&mut samples, 0.5),
        percentile(&mut samples, 0.95),
    ))
}

/// p95 (ms) of `rounds` in-process runs of `query` on `source`, one at a time.
async fn in_process<F, Fut>(rounds: usize, mut query: F) -> Result<f64>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let mut samples = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        query().await?;
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(percentile(&mut samples, 0.95))
}

/// Compressed bytes per table of the scope's databases (raw and rollups).
/// Each table's compressed bytes and rows, the rollups' tables named
/// `rollups.<table>`.
async fn storage(store: &Store) -> Result<Vec<(String, u64, u64)>> {
    #[derive(clickhouse::Row, serde::Deserialize)]
    struct Part {
        table: String,
        bytes: u64,
        rows: u64,
    }
    let parts = store
        .client()
        .query(
            "SELECT if(database = ?, concat('rollups.', table), table) AS table,
                toUInt64(sum(data_compressed_bytes)) AS bytes, toUInt64(sum(rows)) AS rows
             FROM system.parts WHERE database IN (?, ?) AND active GROUP BY table ORDER BY table",
        )
        .bind(store.rollups_database())
        .bind(store.database())
        .bind(store.rollups_database())
        .fetch_all::<Part>()
        .await?;
    Ok(parts
        .into_iter()
        .map(|part| (part.table, part.bytes, part.rows))
        .collect())
}

/// Merges every rollup's parts, as the server does in the background once
/// the rows of a month stop arriving: the API is measured on merged months.
/// An `OPTIMIZE … FINAL` that finds a partition's parts already merging
/// does nothing to it and says nothing (18.16), so each rollup is merged
/// again until every partition is one part; returns how many rounds that took.
async fn optimise(store: &Store) -> Result<u32> {
    #[derive(clickhouse::Row, serde::Deserialize)]
    struct Unmerged {
        table: String,
    }
    let mut tables: Vec<&str> = channelshift_store::ROLLUPS
        .iter()
        .map(|rollup| rollup.table)
        .collect();
    for round in 1..=20 {
        for table in &tables {
            store
                .client()
                .query(&format!("OPTIMIZE TABLE {} FINAL", store.rollup(table)))
                .execute()
                .await?;
        }
        let unmerged = store
            .client()
            .query(
                "SELECT DISTINCT table FROM (
                    SELECT table, partition, count() AS parts FROM system.parts
                    WHERE active AND database = ? GROUP BY table, partition)
                WHERE parts > 1",
            )
            .bind(store.rollups_database())
            .fetch_all::<Unmerged>()
            .await?;
        tables.retain(|table| unmerged.iter().any(|u| u.table == *table));
        if tables.is_empty() {
            return Ok(round);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    anyhow::bail!("rollups still in several parts after 20 rounds of OPTIMIZE: {tables:?}")
}

/// The release `channelshift-api` (`CHANNELSHIFT_API_BIN`) over `scope`'s
/// database as its read-only user, with `kpi` as its `[kpi]` section and
/// answers kept for `answer_cache_seconds`.
async fn api_process(
    scope: &Scope,
    kpi: &KpiSettings,
    answer_cache_seconds: u64,
) -> Result<ServiceProcess> {
    #[derive(serde::Serialize)]
    struct Server {
        answer_cache_seconds: u64,
    }
    #[derive(serde::Serialize)]
    struct File<'a> {
        listen: String,
        clickhouse: ClickHouseSection,
        auth: AuthSection,
        server: Server,
        kpi: &'a KpiSettings,
    }
    let port = free_port()?;
    let text = toml_text(&File {
        listen: format!("127.0.0.1:{port}"),
        clickhouse: (&scope.reader()).into(),
        auth: AuthSection::new(&[API_TOKEN.to_string()], &[]),
        server: Server {
            answer_cache_seconds,
        },
        kpi,
    });
    ServiceProcess::start("bench-api", &api_binary()?, "api.toml", &text, port, "warn").await
}

/// Waits until the server runs no merge of `store`'s databases, at most
/// `limit`; returns how long it waited.
async fn merges_over(store: &Store, limit: Duration) -> Result<Duration> {
    let started = Instant::now();
    let rollups = store.rollups_database();
    loop {
        let running: u64 = store
            .client()
            .query("SELECT count() FROM system.merges WHERE database = currentDatabase() OR database = ?")
            .bind(&rollups)
            .fetch_one()
            .await?;
        if running == 0 || started.elapsed() >= limit {
            return Ok(started.elapsed());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn storage_line(parts: &[(String, u64, u64)], events: u64) -> (f64, f64) {
    let raw: u64 = parts
        .iter()
        .filter(|(table, _, _)| !table.starts_with("rollups.") && !table.starts_with(".inner"))
        .map(|(_, bytes, _)| *bytes)
        .sum();
    let rollups: u64 = parts
        .iter()
        .filter(|(table, _, _)| table.starts_with("rollups."))
        .map(|(_, bytes, _)| *bytes)
        .sum();
    let millions = events as f64 / 1e6;
    (
        raw as f64 / millions / 1_048_576.0,
        rollups as f64 / millions / 1_048_576.0,
    )
}

/// Whether benchmark `number` runs: all, or those in `CHANNELSHIFT_BENCH_ONLY`
/// (e.g. `3,4,5`), for trying the harness piecemeal.
fn wanted(number: u32) -> bool {
    std::env::var("CHANNELSHIFT_BENCH_ONLY").map_or(true, |only| {
        only.split(',')
            .any(|item| item.trim() == number.to_string())
    })
}

async fn run() -> Result<Report> {
    let mut report = Report::default();
    let events = env_number("CHANNELSHIFT_BENCH_EVENTS", 2_000_000);
    let api_contacts = env_number("CHANNELSHIFT_BENCH_API_CONTACTS", 20_000_000);
    let api_responses = api_contacts / 10;

    println!("generating {} simulator events…", grouped(events as f64));
    let (contacts, responses) = generate(events)?;
    let (n_contacts, n_responses) = (contacts.len() as u64, responses.len() as u64);
    let total = n_contacts + n_responses;
    println!("\n1. ingest throughput (events/s) and 2. memory");
    let mut scopes = Vec::new();
    let (mut consume, mut insert) = (f64::NAN, f64::NAN);
    // Busy CPU seconds per million events of each step, the whole machine.
    let (mut consume_cpu, mut insert_cpu) = (StepCpu::UNKNOWN, StepCpu::UNKNOWN);
    if wanted(1) {
        // Two independent clients; the ceiling is the higher, so that a
        // slow client does not pass for the broker's limit.
        let consume_scope = loaded("benchcons", &contacts, &responses).await?;
        let (elapsed, cpu) = cpu_per_million(total, async {
            tokio::task::block_in_place(|| consume_only(&consume_scope, total))
        })
        .await?;
        consume_cpu = cpu;
        let rdkafka = per_second(total, elapsed);
        report.add(
            "broker consume-only: rdkafka, tuned fetch, discard",
            format!("{} ev/s", grouped(rdkafka)),
            "",
            None,
        );
        scopes.push(consume_scope);
        let python_consume_scope = loaded("benchpycons", &contacts, &responses).await?;
        let python_consume = per_second(
            total,
            python_reference(&python_consume_scope, total, true).await?,
        );
        report.add(
            "broker consume-only: Python confluent-kafka, tuned fetch, discard",
            format!("{} ev/s", grouped(python_consume)),
            "",
            None,
        );
        scopes.push(python_consume_scope);
        consume = rdkafka.max(python_consume);
        report.add(
            "broker consume-only ceiling (the higher)",
            format!("{} ev/s", grouped(consume)),
            "",
            None,
        );
        // At ingest's own row limit, and at smaller and larger batches: the
        // ceiling is the best of them, each into a database of its own.
        let own = BatchConfig::default().max_rows;
        for batch in [own, 10_000, 200_000] {
            let insert_scope = Scope::new("benchins");
            let (elapsed, cpu) = cpu_per_million(
                total,
                insert_only(&insert_scope, &contacts, &responses, batch),
            )
            .await?;
            let rate = per_second(total, elapsed);
            let _ = insert_scope.drop_database().await;
            let whose = if batch == own {
                ", ingest's row limit"
            } else {
                ""
            };
            report.add(
                &format!(
                    "ClickHouse insert-only, rows from memory, batches of {}{whose}",
                    grouped(batch as f64)
                ),
                format!("{} ev/s", grouped(rate)),
                "",
                None,
            );
            if insert.is_nan() || rate > insert {
                (insert, insert_cpu) = (rate, cpu);
            }
        }
        report.add(
            "ClickHouse insert-only ceiling (the best batch)",
            format!("{} ev/s", grouped(insert)),
            "",
            None,
        );
    }
    // Ingest end to end: its data also serves benchmarks 4 and 5.
    let e2e_scope = loaded("benche2e", &contacts, &responses).await?;
    let ((elapsed, peak, done), ingest_cpu) =
        cpu_per_million(total, ingest_run(&e2e_scope, 1, n_contacts, n_responses)).await?;
    anyhow::ensure!(
        done.complete,
        "ingest stalled with {} of {total} events stored",
        done.events
    );
    let ingest = per_second(total, elapsed);
    report.add(
        "ingest end to end, 1 replica",
        format!("{} ev/s", grouped(ingest)),
        "",
        None,
    );
    if wanted(1) {
        let ceiling = consume.min(insert);
        report.add(
            "  ÷ the lower ceiling",
            format!("{:.2}×", ingest / ceiling),
            "≥ 0.7×",
            Some(ingest / ceiling >= 0.7),
        );
        let python_scope = loaded("benchpy", &contacts, &responses).await?;
        let (elapsed, python_cpu) =
            cpu_per_million(total, python_reference(&python_scope, total, false)).await?;
        let python = per_second(total, elapsed);
        report.add(
            "Python reference (confluent-kafka, JSONEachRow, 10k batches)",
            format!("{} ev/s", grouped(python)),
            "",
            None,
        );
        report.add(
            "  ingest ÷ Python reference",
            format!("{:.2}×", ingest / python),
            "≥ 2×",
            Some(ingest / python >= 2.0),
        );
        scopes.push(python_scope);
        // On cores shared by the broker, ClickHouse and the consumer, the
        // two ceilings are not independent: consuming and inserting every
        // event at once needs the CPU of both.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        for (name, cpu) in [
            ("consume-only (rdkafka)", consume_cpu),
            ("insert-only (the best batch)", insert_cpu),
            ("ingest end to end", ingest_cpu),
            ("Python reference", python_cpu),
        ] {
            report.add(
                &format!("CPU seconds per million events, {name}: machine / ClickHouse"),
                format!("{:.1} / {:.1}", cpu.machine, cpu.clickhouse),
                "",
                None,
            );
        }
        let bound = cores * 1_000_000.0 / (consume_cpu.machine + insert_cpu.machine);
        report.add(
            &format!("consume and insert together on {cores} cores, at those CPU costs"),
            format!("{} ev/s", grouped(bound)),
            "",
            None,
        );
        report.add(
            "  ingest ÷ that bound",
            format!("{:.2}×", ingest / bound),
            "",
            None,
        );
    }
    if wanted(2) {
        report.add(
            "peak RSS of ingest, benchmark 1",
            format!("{:.1} MiB", mib(peak)),
            "≤ 150 MiB",
            Some(mib(peak) <= 150.0),
        );
        let outage_peak = outage(&contacts, &mut report).await?;
        report.add(
            "peak RSS of ingest, 60 s ClickHouse outage under load",
            format!("{:.1} MiB", mib(outage_peak)),
            "≤ 150 MiB",
            Some(mib(outage_peak) <= 150.0),
        );
    }

    let e2e_store = Store::connect(&e2e_scope.writer()).await?;
    if wanted(6) {
        println!("\n6. scaling and storage");
        report.add(
            "replicas on 3 partitions: 1",
            format!("{} ev/s", grouped(ingest)),
            "",
            None,
        );
        for replicas in [2, 3] {
            let scope = loaded(&format!("benchr{replicas}"), &contacts, &responses).await?;
            let (elapsed, _, done) = ingest_run(&scope, replicas, n_contacts, n_responses).await?;
            let rate = per_second(done.events, elapsed);
            if done.complete {
                report.add(
                    &format!("replicas on 3 partitions: {replicas}"),
                    format!("{} ev/s ({:.2}×)", grouped(rate), rate / ingest),
                    "",
                    None,
                );
            } else {
                report.add(
                    &format!("replicas on 3 partitions: {replicas} (incomplete)"),
                    format!("{} ev/s ({:.2}×)", grouped(rate), rate / ingest),
                    "",
                    None,
                );
                report.note(format!(
                    "{replicas} replicas: {} of {total} events stored when progress stopped; the rate is over those. A partition that moves to a replica mid-stream is fetched from its checkpoint; on Tansu's memory storage such a fetch was seen to return records from a later offset (a plain confluent-kafka reader assigned inside the gap got the first record after it), so the range between is never delivered. Not seen with SQLite storage (the rebalance tests pass there)",
                    grouped(done.events as f64)
                ));
            }
            let _ = scope.drop_database().await;
        }
        optimise(&e2e_store).await?;
        let (raw, rollups) = storage_line(&storage(&e2e_store).await?, total);
        report.add(
            &format!(
                "storage per million events at {} events: raw / rollups",
                grouped(total as f64)
            ),
            format!("{raw:.1} / {rollups:.2} MiB"),
            "",
            None,
        );
    }

    if wanted(3) {
        println!("\n3. freshness at 10,000 events/s");
        let mut latencies = freshness(&contacts).await?;
        let p50 = percentile(&mut latencies, 0.5);
        let p95 = percentile(&mut latencies, 0.95);
        report.add(
            &format!(
                "produce → queryable in the API, p50 / p95 ({} markers)",
                latencies.len()
            ),
            format!("{p50:.2} / {p95:.2} s"),
            "p95 ≤ 2 s",
            Some(p95 <= 2.0),
        );
    }

    let quarter = Period::containing(
        PeriodKind::FinancialQuarter,
        NaiveDate::from_ymd_opt(2026, 8, 15).context("date")?,
    )?;
    let state = app_state(&e2e_scope).await?;
    if wanted(4) {
        println!(
            "\n4. KPI API latency at {} contacts",
            grouped(api_contacts as f64)
        );
        let (stored_contacts, stored_responses) =
            replicate(&e2e_store, api_contacts, api_responses).await?;
        // The copy leaves the raw tables' merges running for minutes, which
        // a server that took its rows over a year would not be doing.
        let waited = merges_over(&e2e_store, Duration::from_secs(600)).await?;
        let rounds = optimise(&e2e_store).await?;
        println!(
            "  waited {:.0} s for the copy's background merges to end; every rollup partition one part after {rounds} round(s) of OPTIMIZE",
            waited.as_secs_f64()
        );
        let (raw, rollups) = storage_line(
            &storage(&e2e_store).await?,
            stored_contacts + stored_responses,
        );
        report.add(
            &format!(
                "storage per million events at {} events: raw / rollups",
                grouped((stored_contacts + stored_responses) as f64)
            ),
            format!("{raw:.1} / {rollups:.2} MiB"),
            "",
            None,
        );
        report.note(format!(
            "API data: {} contacts and {} responses for one council over 13 months: the simulator's {} events, replicated with new ids inside ClickHouse",
            grouped(stored_contacts as f64),
            grouped(stored_responses as f64),
            grouped(total as f64)
        ));
        // The same settings as the in-process state, so both answer the same.
        // Twice: answers kept while nothing is written (the default), and
        // every answer computed (`answer_cache_seconds = 0`, which is what a
        // dashboard sees while ingest stores a batch every few seconds). The
        // API is the release binary in its own process, as a council runs it,
        // not a router inside the harness sharing its runtime with the clients.
        for (keep_seconds, how) in [(60, "answers kept"), (0, "every answer computed")] {
            let server = api_process(&e2e_scope, &kpi_settings()?, keep_seconds).await?;
            let api = server.base_url.clone();
            let scorecard_url =
                format!("{api}/api/v1/scorecard?council={COUNCIL}&period=quarter&date=2026-08-15");
            let grouped_url = format!(
                "{api}/api/v1/kpi/channel-mix?council={COUNCIL}&from=2025-10-01&to=2026-10-31&period=month&group_by=channel,customer_type"
            );
            // Warm the caches once, as a dashboard would have.
            http_latency(&scorecard_url, 1, 2).await?;
            http_latency(&grouped_url, 1, 2).await?;
            // Issue 20's targets: the scorecard within 100 ms for one client and
            // 300 ms for eight; the grouped query within 50 ms for one.
            for (clients, scorecard_target, grouped_target) in
                [(1, 100.0, Some(50.0)), (8, 300.0, None)]
            {
                let (p50, p95) = http_latency(&scorecard_url, clients, 40).await?;
                report.add(
                    &format!("scorecard over HTTP, {clients} client(s), {how}, p50 / p95"),
                    format!("{p50:.0} / {p95:.0} ms"),
                    &format!("p95 ≤ {scorecard_target} ms"),
                    Some(p95 <= scorecard_target),
                );
                let (p50, p95) = http_latency(&grouped_url, clients, 40).await?;
                report.add(
                    &format!(
                        "channel-mix by channel × customer type × month, {clients} client(s), {how}"
                    ),
                    format!("{p50:.0} / {p95:.0} ms"),
                    &grouped_target.map_or_else(String::new, |target| format!("p95 ≤ {target} ms")),
                    grouped_target.map(|target| p95 <= target),
                );
            }
            server.kill()?;
        }
        let grouped_request = KpiRequest {
            filter: CellFilter::new(
                CouncilCode::parse(COUNCIL).context("a GSS code")?,
                NaiveDate::from_ymd_opt(2025, 10, 1).context("date")?,
                NaiveDate::from_ymd_opt(2026, 10, 31).context("date")?,
            ),
            grouping: Grouping::By(PeriodKind::Month),
            group_by: vec![GroupKey::Channel, GroupKey::CustomerType],
            periods: Period::covering(
                PeriodKind::Month,
                NaiveDate::from_ymd_opt(2025, 10, 1).context("date")?,
                NaiveDate::from_ymd_opt(2026, 10, 31).context("date")?,
            )?
            .iter()
            .map(|period| (period.first_day(), period.last_day()))
            .collect(),
        };
        for (name, source) in [("rollups", Source::Rollup), ("raw tables", Source::Raw)] {
            let state = &state;
            let request = &grouped_request;
            let council = &grouped_request.filter.council;
            let card = in_process(10, || async move {
                scorecard::scorecard(
                    &state.store,
                    state.councils.default_policy(),
                    council,
                    PeriodKind::FinancialQuarter,
                    quarter.first_day(),
                    source,
                )
                .await
                .map(|_| ())
                .map_err(|error| anyhow::anyhow!("{error:?}"))
            })
            .await?;
            let mix = in_process(10, || async move {
                compute(
                    &state.store,
                    state.councils.default_policy(),
                    Kpi::ChannelMix,
                    request,
                    source,
                )
                .await
                .map(|_| ())
                .map_err(|error| anyhow::anyhow!("{error:?}"))
            })
            .await?;
            report.add(
                &format!("in-process p95 on the {name}: scorecard / grouped"),
                format!("{card:.0} / {mix:.0} ms"),
                "",
                None,
            );
            if source == Source::Raw {
                report.note("raw ÷ rollup ratios are in the two in-process lines above (same queries, same process, one after the other)".to_string());
            }
        }
    }
    if wanted(5) {
        println!("\n5. one quarterly committee pack in all formats");
        let council = CouncilCode::parse(COUNCIL).context("a GSS code")?;
        // What a council's nightly job (channelshift-api settle-journeys)
        // has done before any pack: every settled day judged and stored.
        let writer = e2e_scope.store().await?;
        let started = Instant::now();
        let settled = writer
            .settle_journeys(
                &council,
                state.councils.default_policy().repeat_window_days,
                Utc::now().timestamp(),
                |_, _| (),
            )
            .await?;
        report.add(
            "settle-journeys, the nightly job, every settled day",
            format!(
                "{:.1} s, {} days",
                started.elapsed().as_secs_f64(),
                settled.judged
            ),
            "",
            None,
        );
        // A pack runs in a process of its own: nothing is kept in memory
        // from the benchmarks before.
        let store = Store::connect(&e2e_scope.reader()).await?;
        let started = Instant::now();
        let as_of = channelshift_store::CutOff(Utc::now().timestamp() - 1);
        let pack = channelshift_packs::build(
            &store,
            state.councils.default_policy(),
            channelshift_packs::Scope {
                council: &council,
                period: quarter,
                as_of,
                previous_as_of: None,
            },
        )
        .await
        .map_err(|error| anyhow::anyhow!("{error:?}"))?;
        let computed = started.elapsed();
        let pdf = channelshift_packs::pdf::PdfSettings::new(&Default::default());
        let mut pages_bytes = 0;
        for &format in Format::ALL {
            let bytes = channelshift_packs::render(&pack, format, &pdf)
                .await
                .map_err(|error| anyhow::anyhow!("{} {error:?}", format.as_str()))?;
            pages_bytes += bytes.len();
        }
        let elapsed = started.elapsed();
        report.add(
            "committee pack, one quarter, all six formats (incl. PDF)",
            format!(
                "{:.1} s ({:.1} s computing)",
                elapsed.as_secs_f64(),
                computed.as_secs_f64()
            ),
            "≤ 10 s",
            Some(elapsed.as_secs_f64() <= 10.0),
        );
        std::hint::black_box(pages_bytes);
    }
    // Kept on request, for profiling the API against it afterwards.
    if std::env::var_os("CHANNELSHIFT_BENCH_KEEP").is_some() {
        println!(
            "kept the end-to-end database {} (CHANNELSHIFT_BENCH_KEEP)",
            e2e_scope.database
        );
    } else {
        scopes.push(e2e_scope);
    }
    for scope in &scopes {
        let _ = scope.drop_database().await;
    }
    Ok(report)
}

fn main() -> Result<()> {
    // `cargo test --all-targets` runs bench targets without `--bench`; this
    // harness needs the bench stack (`cargo xtask bench`).
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("pipeline: run by `cargo xtask bench`; nothing to do under `cargo test`");
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let started = Instant::now();
    let report = runtime.block_on(run())?;
    let machine = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split(':').nth(1))
                .map(|name| name.trim().to_string())
        })
        .unwrap_or_default();
    let header = format!(
        "## Latest run: {} ({} cores, {machine}), `cargo xtask bench`, {:.1} min",
        Utc::now().format("%Y-%m-%d"),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        started.elapsed().as_secs_f64() / 60.0
    );
    let markdown = report.markdown(&header);
    println!("\n{markdown}");
    if let Ok(path) = std::env::var("CHANNELSHIFT_BENCH_REPORT") {
        // target/ need not exist: the build may use another CARGO_TARGET_DIR.
        if let Some(folder) = std::path::Path::new(&path).parent() {
            std::fs::create_dir_all(folder)
                .with_context(|| format!("creating {}", folder.display()))?;
        }
        std::fs::write(&path, &markdown).with_context(|| format!("writing {path}"))?;
        let json = std::path::Path::new(&path).with_extension("json");
        std::fs::write(&json, serde_json::to_string_pretty(&report.json(&header))?)
            .with_context(|| format!("writing {}", json.display()))?;
    }
    Ok(())
}
