//! The alert rules and the Prometheus side of the dashboards: `promtool`
//! checks the rules and runs their unit tests (one firing and one quiet case
//! per alert), and a real Prometheus (Debian's package) scrapes a real ingest
//! process and the KPI API, loads the rules, and evaluates every alert and
//! every panel expression of the operations dashboard.

use anyhow::{bail, ensure, Context, Result};
use channelshift_tests::config_file::{toml_text, ReconcileFile};
use channelshift_tests::eventually;
use channelshift_tests::grafana::{
    expand_promql, load_dashboards, metric_names, repository_root, scraped_names, PROMETHEUS,
};
use channelshift_tests::monitored::Monitored;
use channelshift_tests::process::{free_port, reconcile_command};
use channelshift_tests::server::{await_http_ok, OwnedServer};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

fn prometheus_dir() -> PathBuf {
    repository_root().join("deploy/prometheus")
}

/// Runs a Prometheus tool and fails with its output unless it succeeds.
/// Runs `channelshift-ingest reconcile --metrics-file` over the monitored
/// stack's topics and tables; returns the file, after `promtool check metrics`.
async fn reconcile_metrics_file(monitored: &Monitored) -> Result<String> {
    let dir = std::env::temp_dir().join(format!("reconcile-{}", monitored.scope.database));
    std::fs::create_dir_all(&dir)?;
    let config = dir.join("ingest.toml");
    let metrics = dir.join("channelshift_reconcile.prom");
    std::fs::write(
        &config,
        toml_text(&ReconcileFile::from(&monitored.scope.ingest_config())),
    )?;
    let mut command =
        reconcile_command(&config, &["--metrics-file".as_ref(), metrics.as_os_str()])?;
    let output = tokio::task::spawn_blocking(move || command.output()).await??;
    ensure!(
        matches!(output.status.code(), Some(0 | 3)),
        "reconcile: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(&metrics)?;
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    {
        use std::io::Write;
        promtool
            .stdin
            .take()
            .context("promtool's stdin")?
            .write_all(text.as_bytes())?;
    }
    let checked = promtool.wait_with_output()?;
    ensure!(
        checked.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(text)
}

fn run_tool(tool: &str, args: &[&str]) -> Result<String> {
    let output = Command::new(tool)
        .args(args)
        .current_dir(prometheus_dir())
        .output()
        .with_context(|| {
            format!(
                "running {tool}: install Debian's prometheus package (cargo xtask install does)"
            )
        })?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    ensure!(
        output.status.success(),
        "{tool} {} failed:\n{text}",
        args.join(" ")
    );
    Ok(text)
}

#[test]
fn alert_rules_and_scrape_config_pass_promtool_and_the_rule_unit_tests() -> Result<()> {
    run_tool("promtool", &["check", "rules", "alerts.yml"])?;
    run_tool("promtool", &["check", "config", "prometheus.yml"])?;
    let tests = run_tool("promtool", &["test", "rules", "alerts.test.yml"])?;
    assert!(tests.contains("SUCCESS"), "{tests}");
    Ok(())
}

/// `- alert: Name` lines of the rule file.
fn alert_names(rules: &str) -> BTreeSet<String> {
    rules
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- alert:"))
        .map(|name| name.trim().to_string())
        .collect()
}

#[test]
fn every_alert_has_a_firing_and_a_quiet_unit_test() -> Result<()> {
    let rules = std::fs::read_to_string(prometheus_dir().join("alerts.yml"))?;
    let tests = std::fs::read_to_string(prometheus_dir().join("alerts.test.yml"))?;
    // Each `alertname:` line is followed by `exp_alerts: []` (must stay quiet)
    // or by a list of expected alerts (must fire).
    let mut fires: BTreeMap<String, bool> = BTreeMap::new();
    let mut quiet: BTreeMap<String, bool> = BTreeMap::new();
    let lines: Vec<&str> = tests.lines().map(str::trim).collect();
    for (i, line) in lines.iter().enumerate() {
        if let Some(name) = line.strip_prefix("alertname:") {
            let next = lines.get(i + 1).copied().unwrap_or_default();
            let name = name.trim().to_string();
            if next == "exp_alerts: []" {
                quiet.insert(name, true);
            } else if next == "exp_alerts:" {
                fires.insert(name, true);
            } else {
                bail!("unexpected line after alertname {name}: {next}");
            }
        }
    }
    let names = alert_names(&rules);
    assert!(names.len() >= 10, "{names:?}");
    for name in &names {
        assert!(
            fires.contains_key(name),
            "{name} has no unit test where it fires"
        );
        assert!(
            quiet.contains_key(name),
            "{name} has no unit test where it stays quiet"
        );
    }
    for tested in fires.keys().chain(quiet.keys()) {
        assert!(
            names.contains(tested),
            "the unit tests name an unknown alert {tested}"
        );
    }
    Ok(())
}

#[test]
fn every_alert_links_to_its_own_runbook_section() -> Result<()> {
    let rules = std::fs::read_to_string(prometheus_dir().join("alerts.yml"))?;
    let runbook = std::fs::read_to_string(repository_root().join("deploy/RUNBOOK.md"))?;
    let headings: BTreeSet<&str> = runbook
        .lines()
        .filter_map(|line| line.strip_prefix("## "))
        .collect();
    for name in alert_names(&rules) {
        assert!(
            headings.contains(name.as_str()),
            "RUNBOOK.md has no section \"## {name}\""
        );
        // GitHub's anchor for a heading is its lower-cased text.
        let link = format!("runbook_url: \"deploy/RUNBOOK.md#{}\"", name.to_lowercase());
        assert!(
            rules.contains(&link),
            "{name} does not link to its section: {link}"
        );
    }
    Ok(())
}

/// A Prometheus server the test owns, killed by PID when dropped.
struct Prometheus {
    url: String,
    _server: OwnedServer,
}

impl Prometheus {
    /// Starts `/usr/bin/prometheus` scraping `ingest` and `api` (host:port)
    /// every second under the job names of deploy/prometheus/prometheus.yml,
    /// with the project's alert rules.
    async fn start(ingest: &str, api: &str) -> Result<Self> {
        let mut server = OwnedServer::new("prometheus")?;
        let port = free_port()?;
        let rules = prometheus_dir().join("alerts.yml");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {rules}\n\
             scrape_configs:\n\
             \x20 - job_name: channelshift-ingest\n    static_configs:\n      - targets: [\"{ingest}\"]\n\
             \x20 - job_name: channelshift-api\n    static_configs:\n      - targets: [\"{api}\"]\n",
            rules = rules.display()
        );
        let config_path = server.dir.join("prometheus.yml");
        std::fs::write(&config_path, config)?;
        let mut command = Command::new("prometheus");
        command
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                server.dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"));
        server.spawn(command)?;
        let url = format!("http://127.0.0.1:{port}");
        await_http_ok(
            "Prometheus is ready",
            &format!("{url}/-/ready"),
            Duration::from_secs(30),
        )
        .await
        .with_context(|| {
            std::fs::read_to_string(server.dir.join("server.log")).unwrap_or_default()
        })?;
        Ok(Self {
            url,
            _server: server,
        })
    }

    async fn api(&self, path: &str, query: &[(&str, &str)]) -> Result<Value> {
        let body: Value = reqwest::Client::new()
            .get(format!("{}/api/v1/{path}", self.url))
            .query(query)
            .send()
            .await?
            .json()
            .await?;
        ensure!(body["status"] == "success", "{path} {query:?}: {body}");
        Ok(body["data"].clone())
    }

    /// The instant-query result vector of `expr`.
    async fn query(&self, expr: &str) -> Result<Vec<Value>> {
        let data = self.api("query", &[("query", expr)]).await?;
        Ok(data["result"].as_array().cloned().unwrap_or_default())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_services_and_evaluates_every_alert_and_panel() -> Result<()> {
    let monitored = Monitored::start("prometheus").await?;
    let (ingest, api) = monitored.targets();
    let prometheus = Prometheus::start(&ingest, &api).await?;

    // Both targets up.
    eventually("both targets are up", Duration::from_secs(30), || async {
        let targets = prometheus.api("targets", &[]).await?;
        let active = targets["activeTargets"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let up: BTreeSet<String> = active
            .iter()
            .filter(|target| target["health"] == "up")
            .filter_map(|target| target["labels"]["job"].as_str().map(str::to_string))
            .collect();
        Ok((up.len() == 2).then_some(()))
    })
    .await?;
    let up = prometheus
        .query(r#"up{job=~"channelshift-.*"} == 1"#)
        .await?;
    assert_eq!(up.len(), 2, "{up:?}");

    // Key series, as Prometheus stored them.
    for expr in [
        r#"channelshift_ingest_messages_consumed_total{job="channelshift-ingest"}"#,
        r#"channelshift_ingest_rows_inserted_total{job="channelshift-ingest",table="contact_events"}"#,
        r#"channelshift_ingest_messages_rejected_total{job="channelshift-ingest"}"#,
        r#"channelshift_ingest_consumer_lag_messages{job="channelshift-ingest"}"#,
        r#"channelshift_ingest_ready{job="channelshift-ingest"} == 1"#,
        r#"channelshift_ingest_last_insert_timestamp_seconds{job="channelshift-ingest"} > 0"#,
        r#"channelshift_api_requests_total{job="channelshift-api",status="200"}"#,
        r#"channelshift_api_request_duration_seconds_bucket{job="channelshift-api"}"#,
    ] {
        let result = prometheus.query(expr).await?;
        assert!(!result.is_empty(), "no series for {expr}");
    }

    // Every alert rule loaded, evaluated without error, and reading only
    // metrics the services expose.
    let (ingest_text, api_text) = monitored.scrapes().await?;
    // And a scheduled reconcile's metrics file, which node exporter's
    // textfile collector serves: written by the real command, and valid.
    let reconcile_text = reconcile_metrics_file(&monitored).await?;
    let exposed: BTreeSet<String> = scraped_names(&ingest_text)
        .into_iter()
        .chain(scraped_names(&api_text))
        .chain(scraped_names(&reconcile_text))
        .collect();
    let rules = eventually("every rule evaluated", Duration::from_secs(30), || async {
        let groups = prometheus.api("rules", &[("type", "alert")]).await?;
        let rules: Vec<Value> = groups["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|group| group["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        Ok(rules
            .iter()
            .all(|rule| rule["health"] == "ok")
            .then_some(rules))
    })
    .await?;
    let loaded: BTreeSet<String> = rules
        .iter()
        .filter_map(|rule| rule["name"].as_str().map(str::to_string))
        .collect();
    let file = std::fs::read_to_string(prometheus_dir().join("alerts.yml"))?;
    assert_eq!(loaded, alert_names(&file));
    for rule in &rules {
        let query = rule["query"].as_str().unwrap_or_default();
        for metric in metric_names(query) {
            assert!(
                metric == "up" || exposed.contains(&metric),
                "alert {}: {metric} is not exposed by ingest or the API",
                rule["name"]
            );
        }
    }

    // Every Prometheus panel expression of the dashboards evaluates; those
    // that need no failure to have data have some.
    let may_be_empty = ["API error ratio"];
    for dashboard in load_dashboards()? {
        for (name, target) in dashboard.queries(PROMETHEUS) {
            let expr = expand_promql(target["expr"].as_str().unwrap_or_default());
            let title = name.split('"').nth(1).unwrap_or_default();
            // A query Prometheus refuses fails at once; data may take a few scrapes.
            prometheus
                .query(&expr)
                .await
                .with_context(|| format!("{name}: {expr}"))?;
            let result = eventually(&name, Duration::from_secs(30), || {
                let expr = expr.clone();
                let prometheus = &prometheus;
                async move {
                    let result = prometheus.query(&expr).await?;
                    Ok((!result.is_empty() || may_be_empty.contains(&title)).then_some(result))
                }
            })
            .await;
            result.with_context(|| format!("{name}: {expr}"))?;
        }
    }

    drop(prometheus);
    monitored.stop().await
}
