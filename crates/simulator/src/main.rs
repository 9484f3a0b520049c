//! `channelshift-sim backfill|live [options]`: produces a scenario's council
//! contacts to Kafka, prints (and with `--truth`, writes) what it produced,
//! and, given `--api`, waits until the KPI API agrees with it.

mod api_check;
mod cli;
mod sink;

use anyhow::{Context, Result};
use channelshift_simulator::{Generator, Truth};
use clap::Parser;
use cli::{Mode, Options};
use indicatif::{ProgressBar, ProgressStyle};
use sink::Sink;
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() -> Result<()> {
    let options = cli::options(cli::Cli::parse())?;
    let truth = match options.mode {
        Mode::Backfill => backfill(&options).await?,
        Mode::Live => live(&options).await?,
    };
    if let Some(path) = &options.truth_file {
        let json = serde_json::to_string_pretty(&truth)?;
        std::fs::write(path, json + "\n")
            .with_context(|| format!("writing the truth to {}", path.display()))?;
    }
    if options.print_truth {
        println!("{}", serde_json::to_string_pretty(&truth.summary())?);
    } else if !options.quiet {
        println!(
            "sent {} contact events ({} completed transactions, {} digital) and {} satisfaction responses{}",
            truth.contact_events,
            truth.completed_transactions,
            truth.digital_completed_transactions,
            truth.satisfaction_responses,
            match &options.truth_file {
                Some(path) => format!("; the whole truth is in {}", path.display()),
                None => "; --truth FILE writes the whole truth, --print-truth prints its summary".into(),
            }
        );
    }
    if let Some((api, token)) = &options.api {
        let scenario = &options.scenario;
        let council = &scenario.councils[0].code;
        let period = api_check::Period {
            council,
            from: scenario.start(),
            to: scenario.end,
        };
        let council_truth = truth.council(council).cloned().unwrap_or_default();
        api_check::await_and_report(&period, &council_truth, api, token, options.quiet).await?;
    }
    Ok(())
}

fn sink(options: &Options, linger_ms: u32) -> Result<Sink> {
    if options.dry_run {
        Ok(Sink::discard())
    } else {
        Sink::kafka(
            &options.brokers,
            &options.kafka_security,
            &options.contact_topic,
            &options.satisfaction_topic,
            linger_ms,
        )
    }
}

async fn backfill(options: &Options) -> Result<Truth> {
    let scenario = &options.scenario;
    let mut generator = Generator::new(scenario.clone());
    let planned = generator.planned_contacts();
    if !options.quiet {
        let councils: Vec<&str> = scenario.councils.iter().map(|c| c.code.as_str()).collect();
        println!(
            "producing {planned} contacts for {} from {} to {} (seed {}) to {}",
            councils.join(", "),
            scenario.start(),
            scenario.end,
            scenario.seed,
            if options.dry_run {
                "nowhere (dry run)"
            } else {
                &options.brokers
            }
        );
    }
    let mut sink = sink(options, 20)?;
    let mut progress = Progress::new(planned, options.quiet);
    let started = Instant::now();
    while let Some(batch) = generator.next_batch() {
        for message in &batch {
            sink.send(message).await?;
        }
        sink.settle(10_000).await?;
        progress.update(generator.truth.contact_events, sink.sent);
    }
    sink.finish().await?;
    progress.finish();
    if !options.quiet {
        println!(
            "produced {} messages in {:.1}s",
            sink.sent,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(generator.truth)
}

/// Shows events/s and the ETA: a bar on a terminal, else a line every few seconds.
struct Progress {
    bar: Option<ProgressBar>,
    planned: u64,
    quiet: bool,
    started: Instant,
    last_line: Instant,
}

impl Progress {
    fn new(planned: u64, quiet: bool) -> Self {
        let bar = (!quiet)
            .then(|| ProgressBar::new(planned))
            .filter(|bar| !bar.is_hidden());
        if let Some(bar) = &bar {
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:32} {human_pos}/{human_len} contacts  {per_sec}  ETA {eta}  {msg}",
                )
                .expect("the progress template is valid"),
            );
        }
        Self {
            bar,
            planned,
            quiet,
            started: Instant::now(),
            last_line: Instant::now(),
        }
    }

    fn update(&mut self, contacts: u64, messages: u64) {
        if let Some(bar) = &self.bar {
            if contacts.is_multiple_of(500) || contacts == self.planned {
                bar.set_position(contacts);
                bar.set_message(format!("{messages} messages"));
            }
        } else if !self.quiet && self.last_line.elapsed() >= Duration::from_secs(2) {
            let seconds = self.started.elapsed().as_secs_f64();
            let rate = contacts as f64 / seconds;
            let eta = self.planned.saturating_sub(contacts) as f64 / rate.max(f64::MIN_POSITIVE);
            println!(
                "  {contacts}/{} contacts ({:.0}%), {rate:.0} events/s, {messages} messages, ETA {eta:.0}s",
                self.planned,
                100.0 * contacts as f64 / self.planned.max(1) as f64
            );
            self.last_line = Instant::now();
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}

async fn live(options: &Options) -> Result<Truth> {
    let scenario = &options.scenario;
    let mut generator = Generator::live(scenario.clone());
    let mut sink = sink(options, 5)?;
    if !options.quiet {
        let councils: Vec<&str> = scenario.councils.iter().map(|c| c.code.as_str()).collect();
        println!(
            "producing {} contact events/s for {} (seed {}) to {}{}; stop with Ctrl-C",
            options.rate,
            councils.join(", "),
            scenario.seed,
            options.brokers,
            options
                .duration
                .map(|d| format!(" for {:.0}s", d.as_secs_f64()))
                .unwrap_or_default()
        );
    }
    let stop = stop_signal(options.duration);
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let started = Instant::now();
    let mut last_report = Instant::now();
    let mut produced: u64 = 0;
    // Wait for deliveries about once a second's worth of messages.
    let settle_at = (options.rate as usize).clamp(100, 50_000);
    loop {
        tokio::select! {
            reason = &mut stop => {
                if !options.quiet {
                    println!("stopping: {reason}");
                }
                break;
            }
            _ = tick.tick() => {}
        }
        // Catch up to the rate, but never more than a second's worth at once.
        let due = (started.elapsed().as_secs_f64() * options.rate) as u64;
        let burst = due.saturating_sub(produced).min(options.rate.ceil() as u64);
        for _ in 0..burst {
            let batch = generator
                .next_batch()
                .context("the live generator never runs out")?;
            for message in &batch {
                sink.send(message).await?;
            }
            produced += 1;
        }
        if burst > 0 && produced < due {
            // Fell behind by more than a second: the broker is slow. Drop the backlog.
            produced = due;
        }
        sink.settle(settle_at).await?;
        if !options.quiet && last_report.elapsed() >= Duration::from_secs(10) {
            let contacts = generator.truth.contact_events;
            println!(
                "  {contacts} contacts ({:.0} events/s), {} messages",
                contacts as f64 / started.elapsed().as_secs_f64(),
                sink.sent
            );
            last_report = Instant::now();
        }
    }
    sink.finish().await?;
    Ok(generator.truth)
}

/// Resolves on SIGINT, SIGTERM or after `duration`, saying which.
async fn stop_signal(duration: Option<Duration>) -> &'static str {
    let timer = async {
        match duration {
            Some(duration) => tokio::time::sleep(duration).await,
            None => std::future::pending().await,
        }
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => tokio::select! {
                _ = tokio::signal::ctrl_c() => "interrupted",
                _ = terminate.recv() => "terminated",
                _ = timer => "duration reached",
            },
            Err(error) => {
                eprintln!("cannot listen for SIGTERM ({error}); Ctrl-C still works");
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => "interrupted",
                    _ = timer => "duration reached",
                }
            }
        }
    }
    #[cfg(not(unix))]
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "interrupted",
        _ = timer => "duration reached",
    }
}
