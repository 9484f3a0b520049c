//! The Grafana dashboards (`dashboards/*.json`), proved without Grafana: their
//! structure is checked; every ClickHouse panel and variable query is expanded
//! as Grafana and the ClickHouse data source would and run, as the read-only
//! user, against data that went through the real ingest binary, and its
//! columns and figures compared with those the known data gives; every
//! Prometheus panel may name only metrics that a real scrape of ingest and
//! the API shows.

use anyhow::{bail, Context, Result};
use channelshift_api::config::{Baseline, CouncilBlocks, KpiSettings};
use channelshift_tests::grafana::{
    expand_sql, load_dashboards, metric_names, run_sql as run, scraped_names, Dashboard, TimeRange,
    CLICKHOUSE, PROMETHEUS, SCORECARD_PANEL_COLUMNS,
};
use channelshift_tests::monitored::{Monitored, COUNCIL, OTHER_COUNCIL};
use channelshift_tests::{publish_definitions, start_api_with, Scope, API_TOKEN};
use chrono::NaiveDate;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The 0.975 quantile of the standard normal distribution.
const Z_95: f64 = 1.959963984540054;

#[test]
fn dashboards_are_well_formed() -> Result<()> {
    let dashboards = load_dashboards()?;
    let files: Vec<&str> = dashboards.iter().map(|d| d.file.as_str()).collect();
    assert_eq!(files, ["kpi-overview.json", "pipeline-operations.json"]);
    let mut uids = BTreeSet::new();
    for dashboard in &dashboards {
        let file = &dashboard.file;
        let uid = dashboard.json["uid"].as_str().unwrap_or_default();
        assert!(!uid.is_empty(), "{file}: no uid");
        assert!(uids.insert(uid.to_string()), "{file}: uid {uid} used twice");
        assert!(dashboard.json["title"]
            .as_str()
            .is_some_and(|t| !t.is_empty()));
        assert_eq!(dashboard.json["timezone"], "Europe/London", "{file}");

        // Data sources are chosen through variables, never fixed UIDs.
        let datasource_variables: BTreeMap<String, String> = dashboard
            .variables()
            .into_iter()
            .filter(|variable| variable["type"] == "datasource")
            .map(|variable| {
                (
                    format!("${{{}}}", variable["name"].as_str().unwrap_or_default()),
                    variable["query"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let check_datasource = |what: &str, datasource: &Value| {
            let kind = datasource["type"].as_str().unwrap_or_default();
            let uid = datasource["uid"].as_str().unwrap_or_default();
            assert!(
                kind == CLICKHOUSE || kind == PROMETHEUS,
                "{file}: {what}: data source type {kind:?}"
            );
            assert_eq!(
                datasource_variables.get(uid).map(String::as_str),
                Some(kind),
                "{file}: {what}: data source uid {uid:?} is not a variable of type {kind}"
            );
        };

        let mut ids = BTreeSet::new();
        for panel in dashboard.panels() {
            let title = panel["title"].as_str().unwrap_or_default();
            assert!(!title.is_empty(), "{file}: a panel has no title");
            let id = panel["id"].as_u64().context("panel id")?;
            assert!(ids.insert(id), "{file}: panel id {id} used twice");
            assert!(
                panel["description"].as_str().is_some_and(|d| d.len() > 20),
                "{file}: \"{title}\" has no description"
            );
            assert!(
                panel["fieldConfig"]["defaults"]["unit"]
                    .as_str()
                    .is_some_and(|unit| !unit.is_empty()),
                "{file}: \"{title}\" has no unit"
            );
            check_datasource(title, &panel["datasource"]);
            let targets = panel["targets"].as_array().context("targets")?;
            assert!(!targets.is_empty(), "{file}: \"{title}\" has no query");
            let mut ref_ids = BTreeSet::new();
            for target in targets {
                check_datasource(title, &target["datasource"]);
                assert!(
                    ref_ids.insert(target["refId"].to_string()),
                    "{file}: \"{title}\""
                );
                match target["datasource"]["type"].as_str() {
                    Some(CLICKHOUSE) => {
                        assert_eq!(target["editorType"], "sql", "{file}: \"{title}\"");
                        assert!(target["rawSql"].as_str().is_some_and(|sql| !sql.is_empty()));
                    }
                    _ => assert!(target["expr"].as_str().is_some_and(|expr| !expr.is_empty())),
                }
            }
        }
        // No variable reaches SQL as typed (any viewer can set any value,
        // through the URL too): each is percent-encoded by Grafana and
        // decoded by ClickHouse, so quotes and backslashes stay data.
        for variable in dashboard.variables() {
            let name = variable["name"].as_str().unwrap_or_default();
            assert!(
                matches!(
                    variable["type"].as_str(),
                    Some("datasource" | "query" | "custom")
                ),
                "{file}: ${name} is a {} variable: a viewer could type anything into it",
                variable["type"]
            );
        }
        let mut sql_texts: Vec<String> = dashboard
            .queries(CLICKHOUSE)
            .into_iter()
            .map(|(_, target)| target["rawSql"].as_str().unwrap_or_default().to_string())
            .collect();
        sql_texts.extend(
            dashboard
                .variables()
                .into_iter()
                .filter(|variable| variable["type"] == "query")
                .map(|variable| variable["query"].as_str().unwrap_or_default().to_string()),
        );
        for sql in &sql_texts {
            let mut rest = sql.as_str();
            while let Some(at) = rest.find('$') {
                let reference = &rest[at..];
                if !reference.starts_with("$__") {
                    let before = &rest[..at];
                    assert!(
                        reference.starts_with("${")
                            && reference[..reference.find('}').unwrap_or(0)]
                                .ends_with(":percentencode")
                            && before.ends_with("decodeURLComponent('"),
                        "{file}: a variable reaches SQL unencoded: {}",
                        &reference[..reference.len().min(40)]
                    );
                }
                rest = &reference[1..];
            }
            // Definitions are the council's published ones, never constants
            // of a panel: thresholds, channel classes and unit costs.
            if let Some((_, after)) = sql.split_once("HAVING sum(") {
                assert!(
                    after.contains("FROM council_settings"),
                    "{file}: a suppression threshold not read from council_settings: {after}"
                );
            }
            for constant in [
                "channel IN ('",
                "transform(channel",
                "toFloat64(45)",
                "toFloat64(465000)",
            ] {
                assert!(
                    !sql.contains(constant),
                    "{file}: a definition written into a panel ({constant}): {sql}"
                );
            }
        }
        for variable in dashboard.variables() {
            if variable["type"] == "query" {
                check_datasource(
                    variable["name"].as_str().unwrap_or_default(),
                    &variable["datasource"],
                );
            }
        }
    }
    Ok(())
}

fn same(actual: &Value, expected: &Value) -> bool {
    match (actual.as_f64(), expected.as_f64()) {
        (Some(a), Some(e)) => (a - e).abs() <= 1e-9 * e.abs().max(1.0),
        _ => actual == expected,
    }
}

fn assert_rows(name: &str, columns: &[String], rows: &[Vec<Value>], expected: &Expected) {
    assert_eq!(columns, expected.columns, "{name}: columns");
    let wanted: Vec<Vec<Value>> = expected
        .rows
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|row| row.as_array().cloned().unwrap_or_default())
                .collect()
        })
        .unwrap_or_default();
    let matches = rows.len() == wanted.len()
        && rows.iter().zip(&wanted).all(|(row, want)| {
            row.len() == want.len() && row.iter().zip(want).all(|(a, e)| same(a, e))
        });
    assert!(
        matches,
        "{name}: rows\n  got      {}\n  expected {}",
        Value::from(rows.to_vec()),
        expected.rows
    );
}

struct Expected {
    columns: Vec<String>,
    rows: Value,
}

fn expected(columns: &[&str], rows: Value) -> Expected {
    Expected {
        columns: columns.iter().map(|c| c.to_string()).collect(),
        rows,
    }
}

/// The 95% Wilson score interval of `k` of `n`, in percent.
fn wilson(k: f64, n: f64) -> (f64, f64) {
    let p = k / n;
    let z2 = Z_95 * Z_95;
    let centre = p + z2 / (2.0 * n);
    let spread = Z_95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    let scale = 1.0 + z2 / n;
    (
        100.0 * (centre - spread) / scale,
        100.0 * (centre + spread) / scale,
    )
}

/// What each KPI-overview panel shows for the known data (see
/// `channelshift_tests::monitored::KnownData`) over local Q1 2025-26.
fn kpi_expectations(take_up_definition: &str) -> BTreeMap<&'static str, Expected> {
    let april_take_up = if take_up_definition == "current" {
        100.0 * 16.0 / 21.0
    } else {
        100.0 * 15.0 / 21.0
    };
    let period_take_up = if take_up_definition == "current" {
        100.0 * 22.0 / 33.0
    } else {
        100.0 * 21.0 / 33.0
    };
    // Ward E05000001's one assisted contact is digital only under "current".
    let ward_take_up = if take_up_definition == "current" {
        100.0
    } else {
        100.0 * 15.0 / 16.0
    };
    let (low, high) = wilson(7.0, 10.0);
    let csat = "% satisfied (4-5)";
    let nps = "NPS (% 9-10 minus % 0-6)";
    BTreeMap::from([
        (
            "Year-end forecast of each headline KPI",
            expected(
                &[
                    "kpi",
                    "year_end",
                    "forecast",
                    "low80",
                    "high80",
                    "low95",
                    "high95",
                    "backtest_mae",
                    "backtests",
                    "history_to",
                    "method_or_why_none",
                ],
                json!([
                    [
                        "digital-take-up",
                        "2026-03-31",
                        41,
                        40,
                        42,
                        39,
                        43,
                        0.5,
                        4,
                        "2025-05-01",
                        "MSTL"
                    ],
                    [
                        "efficiency-savings",
                        "2026-03-31",
                        null,
                        null,
                        null,
                        null,
                        null,
                        null,
                        4,
                        "2025-05-01",
                        "too little history"
                    ]
                ]),
            ),
        ),
        (
            "Digital take-up by month, against target",
            expected(
                &["time", "digital_take_up", "target"],
                json!([["2025-04-01", april_take_up, 45], ["2025-05-01", 50, 45]]),
            ),
        ),
        (
            "Digital take-up in the period",
            expected(&["digital_take_up", "n"], json!([[period_take_up, 33]])),
        ),
        (
            "Channel mix by month",
            expected(
                &["time", "channel", "contacts_total"],
                json!([
                    ["2025-04-01", "phone", 5],
                    ["2025-04-01", "web", 18],
                    ["2025-05-01", "face_to_face", 6],
                    ["2025-05-01", "web", 6],
                    ["2025-06-01", "phone", 1]
                ]),
            ),
        ),
        (
            // May's 6 digital transactions are too few to show.
            "Completion rate of digital self-service by month, against target",
            expected(
                &["time", "completion_rate", "target"],
                json!([["2025-04-01", 100.0 * 16.0 / 18.0, 85]]),
            ),
        ),
        (
            "Satisfaction by channel",
            expected(
                &[
                    "channel",
                    "instrument",
                    "measure",
                    "n",
                    "value",
                    "ci95_low",
                    "ci95_high",
                ],
                json!([
                    ["phone", "csat5", csat, 2, null, null, null],
                    ["web", "csat5", csat, 10, 70, low, high],
                    ["web", "nps11", nps, 10, 20, null, null]
                ]),
            ),
        ),
        (
            "Satisfaction by customer type",
            expected(
                &[
                    "customer_type",
                    "instrument",
                    "measure",
                    "n",
                    "value",
                    "ci95_low",
                    "ci95_high",
                ],
                json!([
                    ["business", "csat5", csat, 2, null, null, null],
                    ["resident", "csat5", csat, 10, 70, low, high],
                    ["resident", "nps11", nps, 10, 20, null, null]
                ]),
            ),
        ),
        (
            // Council tax only (waste has no baseline): 24 × 29.80 / 20 − 19.68.
            "Efficiency savings, financial year to date, against target",
            // Against £465,000 a year profiled to 30 June (91 of 365 days).
            expected(
                &["savings", "target_to_date", "annual_target", "n"],
                json!([[16.08, 465000.0 * (91.0 / 365.0), 465000, 36]]),
            ),
        ),
        (
            "Hot spots by ward: digital take-up",
            expected(
                &[
                    "ward",
                    "all_contacts",
                    "completed_transactions",
                    "digital_take_up",
                ],
                json!([
                    ["E05000002", 17, 17, 100.0 * 6.0 / 17.0],
                    ["E05000001", 18, 16, ward_take_up],
                    ["E05000003", 1, 0, null]
                ]),
            ),
        ),
    ])
}

/// Forecasts of 2025-26 from history to May 2025 (two runs: the later is
/// shown) and to July 2025 (after the range: not shown), as
/// `channelshift-api forecast` stores them.
async fn store_forecasts(scope: &Scope) -> Result<()> {
    use channelshift_store::StoredForecasts;
    use channelshift_tests::rollups::forecast_record as record;
    let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).context("date");
    let council = channelshift_contract::CouncilCode::parse(COUNCIL).context("council")?;
    let store = channelshift_store::Store::connect(&scope.writer()).await?;
    for (history_to, take_up) in [
        (date(2025, 5, 1)?, 40.0),
        (date(2025, 5, 1)?, 41.0),
        (date(2025, 7, 1)?, 60.0),
    ] {
        let forecasts = StoredForecasts {
            year_end: date(2026, 3, 31)?,
            history_to,
            made_at: chrono::Utc::now().timestamp(),
            records: vec![
                record("digital-take-up", date(2026, 2, 1)?, Some(take_up - 1.0)),
                record("digital-take-up", date(2026, 3, 1)?, Some(take_up)),
                record("efficiency-savings", date(2026, 3, 1)?, None),
            ],
        };
        store.store_forecasts(&council, &forecasts).await?;
    }
    Ok(())
}

fn dashboard<'a>(dashboards: &'a [Dashboard], file: &str) -> Result<&'a Dashboard> {
    dashboards
        .iter()
        .find(|dashboard| dashboard.file == file)
        .with_context(|| format!("{file} is missing"))
}

fn panel_title(name: &str) -> &str {
    name.split('"').nth(1).unwrap_or(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_panel_query_runs_on_known_data_and_names_only_exposed_metrics() -> Result<()> {
    let dashboards = load_dashboards()?;
    let monitored = Monitored::start("dashboards").await?;
    let scope = &monitored.scope;
    let grafana_user = scope.dashboards_user().await?;
    // Local 1 April to 30 June 2025, as a Europe/London dashboard sends it.
    let range = TimeRange {
        from: "2025-03-31T23:00:00Z".parse()?,
        to: "2025-06-30T22:59:59Z".parse()?,
    };

    // KPI overview: the variables' own queries first, then each panel with
    // every variable at "All" (what Grafana sends) and the defaults.
    let kpi = dashboard(&dashboards, "kpi-overview.json")?;
    // The definitions the dashboard computes with, as the API publishes them.
    let settings = |take_up_definition: &str| -> Result<KpiSettings> {
        Ok(serde_json::from_value(json!({
            "take_up_definition": take_up_definition,
            "suppression_threshold": 10,
            "baseline": {"from": "2024-04-01", "to": "2025-03-31"},
            "unit_costs": [
                {"channel": "face_to_face", "from": "2012-04-01", "pounds": "8.62"},
                {"channel": "phone", "from": "2012-04-01", "pounds": "2.83"},
                {"channel": "web", "from": "2012-04-01", "pounds": "0.15"}
            ],
            "targets": {
                "digital-take-up": {"target": 45.0, "tolerance": 5.0, "polarity": "higher_is_better"},
                "completion-rate": {"target": 85.0, "tolerance": 5.0, "polarity": "higher_is_better"},
                "efficiency-savings": {"target": 465000.0, "tolerance": 50000.0, "polarity": "higher_is_better"}
            }
        }))?)
    };
    let councils: CouncilBlocks = serde_json::from_value(json!({
        COUNCIL: {"name": "Council A"},
        OTHER_COUNCIL: {"name": "Council B"},
    }))?;
    publish_definitions(scope, &settings("current")?, &councils).await?;
    store_forecasts(scope).await?;
    let mut chosen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for variable in kpi.variables() {
        let name = variable["name"].as_str().unwrap_or_default().to_string();
        match variable["type"].as_str() {
            Some("textbox") | Some("custom") => {
                let value = variable["current"]["value"].as_str().unwrap_or_default();
                chosen.insert(name, vec![value.to_string()]);
            }
            Some("query") => {
                let sql = expand_sql(
                    variable["query"].as_str().unwrap_or_default(),
                    range,
                    &chosen,
                )?;
                let (_, rows) = run(&grafana_user, &sql).await.context(name.clone())?;
                let values: Vec<String> = rows
                    .iter()
                    .map(|row| row[0].as_str().unwrap_or_default().to_string())
                    .collect();
                let wanted: &[&str] = match name.as_str() {
                    "council" => &[COUNCIL, OTHER_COUNCIL],
                    "service" => &["council_tax", "libraries", "waste"],
                    "channel" => &["face_to_face", "phone", "web"],
                    "customer_type" => &["business", "resident"],
                    other => bail!("no expectation for variable ${other}"),
                };
                assert_eq!(values, wanted, "variable ${name}");
                // The council picked; every other list at "All".
                let pick = if name == "council" {
                    vec![COUNCIL.to_string()]
                } else {
                    values
                };
                chosen.insert(name, pick);
            }
            _ => {}
        }
    }
    for definition in ["current", "gds_2014"] {
        publish_definitions(scope, &settings(definition)?, &councils).await?;
        let expectations = kpi_expectations(definition);
        for (name, target) in kpi.queries(CLICKHOUSE) {
            let sql = expand_sql(
                target["rawSql"].as_str().unwrap_or_default(),
                range,
                &chosen,
            )?;
            let (columns, rows) = run(&grafana_user, &sql).await.context(name.clone())?;
            let title = panel_title(&name);
            if title.starts_with("Scorecard") {
                // Its figures are compared with the API's in councils.rs.
                assert_eq!(columns, SCORECARD_PANEL_COLUMNS);
                assert_eq!(rows.len(), 8, "{name}");
                continue;
            }
            if title == "Coverage of the period" {
                assert_eq!(columns, ["days_with_data", "days", "coverage"]);
                assert!(
                    rows[0][0].as_u64().is_some_and(|days| days > 0),
                    "{name}: {rows:?}"
                );
                continue;
            }
            if title == "Data as of" {
                assert_eq!(columns, ["newest_ingested_at"]);
                let newest = rows[0][0].as_str().unwrap_or_default();
                assert!(!newest.starts_with("1970"), "{name}: {newest}");
                continue;
            }
            let expected = expectations
                .get(title)
                .with_context(|| format!("{name}: no expected figures in this test"))?;
            assert_rows(&name, &columns, &rows, expected);
        }
    }

    // Values a viewer could put in the URL to break out of the quotes: they
    // stay data, so each panel answers as for a council with no rows.
    let mut unknown = chosen.clone();
    unknown.insert("council".into(), vec!["E07999999".into()]);
    let mut hostile = chosen.clone();
    hostile.insert(
        "council".into(),
        vec![format!("{COUNCIL}' OR council != '")],
    );
    hostile.insert(
        "service".into(),
        vec![
            "council_tax\\') OR 1=1 OR (service = '".into(),
            "waste".into(),
        ],
    );
    for (name, target) in kpi.queries(CLICKHOUSE) {
        if panel_title(&name) == "Data as of" {
            continue;
        }
        let sql = target["rawSql"].as_str().unwrap_or_default();
        let (_, expected) = run(&grafana_user, &expand_sql(sql, range, &unknown)?)
            .await
            .context(name.clone())?;
        let attacked = expand_sql(sql, range, &hostile)?;
        let (_, rows) = run(&grafana_user, &attacked)
            .await
            .with_context(|| format!("{name}: {attacked}"))?;
        assert_eq!(
            rows, expected,
            "{name} answered a hostile council: {attacked}"
        );
    }

    // The dashboard and the API, the reference implementation, agree.
    let take_up_sql = kpi
        .queries(CLICKHOUSE)
        .into_iter()
        .find(|(name, _)| panel_title(name) == "Digital take-up by month, against target")
        .map(|(_, target)| target["rawSql"].as_str().unwrap_or_default().to_string())
        .context("take-up panel")?;
    let savings_sql = kpi
        .queries(CLICKHOUSE)
        .into_iter()
        .find(|(name, _)| panel_title(name).starts_with("Efficiency savings"))
        .map(|(_, target)| target["rawSql"].as_str().unwrap_or_default().to_string())
        .context("savings panel")?;
    publish_definitions(scope, &settings("current")?, &councils).await?;
    let (_, take_up_rows) = run(&grafana_user, &expand_sql(&take_up_sql, range, &chosen)?).await?;
    let (_, savings_rows) = run(&grafana_user, &expand_sql(&savings_sql, range, &chosen)?).await?;
    let settings = KpiSettings {
        suppression_threshold: 10,
        baseline: Some(Baseline {
            from: "2024-04-01".parse()?,
            to: "2025-03-31".parse()?,
        }),
        ..KpiSettings::default()
    };
    let (api, api_server) = start_api_with(scope, settings).await?;
    let client = reqwest::Client::new();
    let kpi_rows = |kpi: &str, period: &str| {
        let request = client
            .get(format!(
                "{api}/api/v1/kpi/{kpi}?council={COUNCIL}&from=2025-04-01&to=2025-06-30&period={period}"
            ))
            .bearer_auth(API_TOKEN)
            .send();
        async move {
            let body: Value = request.await?.error_for_status()?.json().await?;
            anyhow::Ok(body["rows"].as_array().cloned().unwrap_or_default())
        }
    };
    let api_take_up: Vec<(String, Value)> = kpi_rows("digital-take-up", "month")
        .await?
        .iter()
        .filter(|row| !row["value"].is_null())
        .map(|row| {
            (
                row["period_start"].as_str().unwrap_or_default().to_string(),
                row["value"].clone(),
            )
        })
        .collect();
    let dashboard_take_up: Vec<(String, Value)> = take_up_rows
        .iter()
        .map(|row| {
            (
                row[0].as_str().unwrap_or_default().to_string(),
                row[1].clone(),
            )
        })
        .collect();
    assert_eq!(
        api_take_up.len(),
        dashboard_take_up.len(),
        "{api_take_up:?}"
    );
    for ((api_month, api_value), (month, value)) in api_take_up.iter().zip(&dashboard_take_up) {
        assert_eq!(api_month, month);
        // The API rounds to one decimal place.
        let (a, d) = (
            api_value.as_f64().unwrap_or(f64::NAN),
            value.as_f64().unwrap_or(f64::NAN),
        );
        assert!(
            (a - d).abs() <= 0.05,
            "take-up {month}: API {a}, dashboard {d}"
        );
    }
    let api_savings = kpi_rows("efficiency-savings", "total").await?;
    assert_eq!(
        api_savings.first().map(|row| row["value"].clone()),
        Some(savings_rows[0][0].clone()),
        "savings: API {api_savings:?}, dashboard {savings_rows:?}"
    );
    api_server.stop().await?;

    // Pipeline operations: its ClickHouse panel sees fresh rows.
    let operations = dashboard(&dashboards, "pipeline-operations.json")?;
    for (name, target) in operations.queries(CLICKHOUSE) {
        let sql = expand_sql(
            target["rawSql"].as_str().unwrap_or_default(),
            range,
            &chosen,
        )?;
        let (columns, rows) = run(&grafana_user, &sql).await.context(name.clone())?;
        assert_eq!(columns, ["table_name", "age_seconds"], "{name}");
        assert_eq!(rows.len(), 2, "{name}");
        for row in rows {
            let age = row[1].as_f64().unwrap_or(f64::NAN);
            assert!((0.0..3600.0).contains(&age), "{name}: {row:?}");
        }
    }

    // Prometheus panels: every metric they read is in a real scrape.
    let (ingest, api) = monitored.scrapes().await?;
    let exposed: BTreeSet<String> = scraped_names(&ingest)
        .into_iter()
        .chain(scraped_names(&api))
        .collect();
    let mut checked = 0;
    for dashboard in &dashboards {
        for (name, target) in dashboard.queries(PROMETHEUS) {
            let expr = target["expr"].as_str().unwrap_or_default();
            let names = metric_names(expr);
            assert!(!names.is_empty(), "{name}: reads no metric: {expr}");
            for metric in names {
                // `up` is Prometheus's own, checked by tests/tests/prometheus.rs.
                assert!(
                    metric == "up" || exposed.contains(&metric),
                    "{name}: {metric} is not exposed by ingest or the API"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 15, "only {checked} metric names checked");
    monitored.stop().await
}

/// The dashboards' ClickHouse user (Grafana's) reads the rollups and nothing
/// else: each attempt a viewer, or anyone holding Grafana's credentials,
/// could make on the raw data is refused by the server, and the dashboards'
/// own tables answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboards_user_reads_the_rollups_and_nothing_else() -> Result<()> {
    let scope = Scope::new("dashboards-user");
    let store = scope.store().await?;
    store.migrate().await?;
    let data = channelshift_tests::rollups::raw_data(40, 10);
    store
        .insert_contacts(&mut data.contacts.clone(), channelshift_store::Fencing::Off)
        .await?;
    store
        .insert_satisfaction(
            &mut data.responses.clone(),
            channelshift_store::Fencing::Off,
        )
        .await?;
    let user = scope.dashboards_user().await?;

    let (_, rows) = run(&user, "SELECT toUInt64(sum(contacts)) FROM contact_daily").await?;
    assert_eq!(rows, [[json!(data.contacts.len())]]);
    let (_, rows) = run(
        &user,
        "SELECT raw_table, toUInt32(max(newest_ingested_at)) > 0 FROM ingest_freshness \
         GROUP BY raw_table ORDER BY raw_table",
    )
    .await?;
    assert_eq!(
        rows,
        [
            [json!("contact_events"), json!(1)],
            [json!("satisfaction_responses"), json!(1)]
        ]
    );

    let db = &scope.database;
    let rollups = &user.database;
    let attacks = [
        format!("SELECT count() FROM `{db}`.contact_events"),
        format!("SELECT customer_hash FROM `{db}`.contact_events LIMIT 1"),
        format!("SELECT comment FROM `{db}`.satisfaction_responses LIMIT 1"),
        format!("SELECT count() FROM `{db}`.contact_event_ids"),
        format!("SELECT count() FROM `{db}`.contact_events_staging"),
        format!("SELECT count() FROM `{db}`.ingest_checkpoints"),
        format!("SELECT count() FROM merge('{db}', '^contact_events$')"),
        format!("SELECT count() FROM remote('127.0.0.1', `{db}`.contact_events)"),
        format!(
            "INSERT INTO `{rollups}`.contact_daily (council, contacts) VALUES ('E07000041', 1)"
        ),
        format!("DROP TABLE `{rollups}`.contact_daily"),
        format!("CREATE TABLE `{rollups}`.grafana_table (x UInt8) ENGINE = Memory"),
        "SELECT 1 SETTINGS readonly = 0".to_string(),
    ];
    // The API's reader may read the raw table: what refuses the dashboards'
    // user is its rights, not the query.
    let (_, rows) = run(&scope.reader(), &attacks[0]).await?;
    assert_eq!(rows, [[json!(data.contacts.len())]]);
    for attack in &attacks {
        let refused = run(&user, attack).await;
        let Err(error) = refused else {
            bail!("the dashboards' user was allowed: {attack}");
        };
        let error = error.to_string();
        eprintln!(
            "refused: {attack}\n  {}",
            error.lines().next().unwrap_or("")
        );
        // 291: access denied to the database; 164: readonly.
        assert!(
            error.contains("Code: 291") || error.contains("Code: 164"),
            "{attack} failed for another reason: {error}"
        );
    }
    scope.drop_database().await
}
