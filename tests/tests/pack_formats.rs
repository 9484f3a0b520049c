//! Committee packs in every format, from realistic simulator data through
//! Kafka, ingest and ClickHouse:
//! - the XLSX and ODS workbooks, read back with calamine, hold the KPI API's
//!   figures for the same period, sheet by sheet;
//! - late data for a period already reported is flagged as a restatement,
//!   with the figure the previous pack published;
//! - the HTML report passes axe-core's WCAG 2.2 AA rules in headless
//!   Chromium, and its PDF has real text, a title and pages;
//! - the CLI writes one pack in all formats, and `packs-due` writes every
//!   pack of the reporting calendar once, with restatements against the
//!   calendar's previous meeting.

use anyhow::{Context, Result};
use calamine::{open_workbook_from_rs, Data, Ods, Range, Reader, Xlsx};
use channelshift_api::config::{Baseline, KpiSettings, UnitCostEntry};
use channelshift_kpi::catalogue::Kpi;
use channelshift_kpi::rag::{Polarity, Target};
use channelshift_simulator::{Generator, Scenario};
use channelshift_tests::checks::{await_settled, last_ingested, load_and_wait, Stored};
use channelshift_tests::config_file::{
    toml_text, ApiFile, AuthSection, KpiSection, Meeting, PacksSection, Span,
};
use channelshift_tests::process::packs_binary;
use channelshift_tests::{
    create_topics, simulated, start_api_with, start_ingest, Scope, API_TOKEN,
};
use chrono::NaiveDate;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::io::Cursor;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const COUNCIL: &str = "E07000041";
/// The pack's quarter (2025-26 Q3, October to December 2025) and the one before.
const PACK_DATE: &str = "2025-11-15";
const Q3: (&str, &str) = ("2025-10-01", "2025-12-31");
const Q2: (&str, &str) = ("2025-07-01", "2025-09-30");

async fn get(client: &reqwest::Client, url: &str) -> Result<Vec<u8>> {
    let response = client.get(url).bearer_auth(API_TOKEN).send().await?;
    let status = response.status();
    let body = response.bytes().await?.to_vec();
    anyhow::ensure!(
        status.is_success(),
        "{url}: {status}: {}",
        String::from_utf8_lossy(&body)
    );
    Ok(body)
}

async fn kpi(client: &reqwest::Client, api: &str, query: &str) -> Result<Value> {
    Ok(serde_json::from_slice(
        &get(client, &format!("{api}/api/v1/kpi/{query}")).await?,
    )?)
}

fn target(target: f64, tolerance: f64, polarity: &str) -> Result<Target> {
    let polarity = match polarity {
        "lower" => Polarity::LowerIsBetter,
        _ => Polarity::HigherIsBetter,
    };
    Ok(Target::new(target, tolerance, polarity)?)
}

fn settings() -> Result<KpiSettings> {
    let mut targets = BTreeMap::new();
    targets.insert(Kpi::DigitalTakeUp, target(50.0, 5.0, "higher")?);
    targets.insert(Kpi::Satisfaction, target(85.0, 5.0, "higher")?);
    targets.insert(Kpi::CostPerTransaction, target(2.5, 0.5, "lower")?);
    targets.insert(
        Kpi::EfficiencySavings,
        target(465_000.0, 50_000.0, "higher")?,
    );
    // Every channel costed, so cost per transaction has a figure.
    let costs = [
        ("web", "0.15"),
        ("app", "0.15"),
        ("kiosk", "0.15"),
        ("webchat", "1.50"),
        ("email", "3.00"),
        ("social", "1.50"),
        ("phone", "2.83"),
        ("ivr", "0.50"),
        ("face_to_face", "8.62"),
        ("post", "5.00"),
        ("other", "3.00"),
    ];
    let unit_costs = costs
        .iter()
        .map(|(channel, pounds)| UnitCostEntry {
            channel: channel.to_string(),
            from: NaiveDate::from_ymd_opt(2020, 1, 1).unwrap_or_default(),
            pounds: pounds.to_string(),
        })
        .collect();
    Ok(KpiSettings {
        targets,
        unit_costs: Some(unit_costs),
        baseline: Some(Baseline {
            from: NaiveDate::from_ymd_opt(2025, 4, 1).context("date")?,
            to: NaiveDate::from_ymd_opt(2025, 6, 30).context("date")?,
        }),
        pack_settle_seconds: 3,
        ..KpiSettings::default()
    })
}

/// A sheet as rows of column name → cell (the header is the first row).
fn table(range: &Range<Data>) -> Vec<HashMap<String, Data>> {
    let mut rows = range.rows();
    let header: Vec<String> = rows
        .next()
        .map(|row| row.iter().map(|cell| cell.to_string()).collect())
        .unwrap_or_default();
    rows.map(|row| header.iter().cloned().zip(row.iter().cloned()).collect())
        .collect()
}

fn float(cell: Option<&Data>) -> Option<f64> {
    match cell? {
        Data::Float(value) => Some(*value),
        Data::Int(value) => Some(*value as f64),
        _ => None,
    }
}

fn text(cell: Option<&Data>) -> String {
    cell.map(|cell| cell.to_string()).unwrap_or_default()
}

fn close(a: Option<f64>, b: Option<f64>, what: &str) {
    match (a, b) {
        (Some(a), Some(b)) => assert!((a - b).abs() < 1e-6, "{what}: {a} ≠ {b}"),
        other => panic!("{what}: {other:?}"),
    }
}

/// The API's figures for the pack's quarter that the workbooks must hold.
struct Expected {
    take_up: Value,
    take_up_by_customer: Value,
    satisfaction_by_customer: Value,
    cost: Value,
    previous_take_up: Value,
    /// `GET /api/v1/opportunities` for the quarter's last day.
    opportunities: Value,
}

/// Checks a workbook (XLSX or ODS, read back by calamine) against the API.
fn check_workbook<R: Reader<Cursor<Vec<u8>>>>(
    mut book: R,
    expected: &Expected,
    as_of: &str,
    restated_from: f64,
) -> Result<()>
where
    R::Error: std::error::Error + Send + Sync + 'static,
{
    let names = book.sheet_names();
    for sheet in [
        "Summary",
        "digital-take-up",
        "satisfaction",
        "hotspots",
        "Trends",
        "Year-end forecast",
        "Definitions",
        "Metadata",
    ] {
        anyhow::ensure!(
            names.iter().any(|name| name == sheet),
            "sheet {sheet} in {names:?}"
        );
    }
    let sheet = |book: &mut R, name: &str| -> Result<Vec<HashMap<String, Data>>> {
        Ok(table(&book.worksheet_range(name)?))
    };

    // Take-up, in total and by customer type, equals the API's.
    let take_up = sheet(&mut book, "digital-take-up")?;
    let total = take_up
        .iter()
        .find(|row| text(row.get("Breakdown")) == "Total")
        .context("a total row")?;
    let api = &expected.take_up["rows"][0];
    close(float(total.get("Figure")), api["value"].as_f64(), "take-up");
    close(
        float(total.get("Numerator")),
        api["numerator"].as_f64(),
        "take-up numerator",
    );
    close(
        float(total.get("Denominator")),
        api["denominator"].as_f64(),
        "take-up denominator",
    );
    assert_eq!(text(total.get("Period start")), Q3.0);
    assert_eq!(float(total.get("Target")), Some(50.0));
    assert!(
        text(total.get("RAG")).contains(':'),
        "RAG in words: {:?}",
        total.get("RAG")
    );
    for api in expected.take_up_by_customer["rows"]
        .as_array()
        .context("rows")?
    {
        let customer = api["customer_type"].as_str().context("customer type")?;
        let row = take_up
            .iter()
            .find(|row| {
                text(row.get("Breakdown")) == "Customer type"
                    && text(row.get("Value of breakdown")) == customer
            })
            .with_context(|| format!("take-up for {customer}"))?;
        assert_eq!(float(row.get("Cases (n)")), api["n"].as_f64(), "{customer}");
        if api["numerator"].as_u64().is_some_and(|n| n >= 10) {
            close(float(row.get("Figure")), api["value"].as_f64(), customer);
        }
    }

    // Satisfaction by customer type (business and resident), csat5 % satisfied.
    let satisfaction = sheet(&mut book, "satisfaction")?;
    for api in expected.satisfaction_by_customer["rows"]
        .as_array()
        .context("rows")?
    {
        if api["instrument"] != "csat5" || api["measure"] != "satisfied" {
            continue;
        }
        let customer = api["customer_type"].as_str().context("customer type")?;
        let row = satisfaction
            .iter()
            .find(|row| {
                text(row.get("Breakdown")) == "Customer type"
                    && text(row.get("Value of breakdown")) == customer
                    && text(row.get("Measure")) == "csat5/satisfied"
            })
            .with_context(|| format!("satisfaction for {customer}"))?;
        if api["numerator"].as_u64().is_some_and(|n| n >= 10)
            && !api["suppressed"].as_bool().unwrap_or(true)
        {
            close(float(row.get("Figure")), api["value"].as_f64(), customer);
        } else {
            assert_eq!(
                row.get("Withheld"),
                Some(&Data::Bool(true)),
                "{customer} withheld"
            );
            assert_eq!(
                text(row.get("Figure")),
                "withheld",
                "the cell says so: {row:?} {api}"
            );
        }
    }
    // Some satisfaction figures rest on too few answers: their cells say so.
    let withheld = satisfaction
        .iter()
        .filter(|row| row.get("Withheld") == Some(&Data::Bool(true)))
        .collect::<Vec<_>>();
    assert!(!withheld.is_empty(), "small counts are withheld");
    assert!(withheld
        .iter()
        .all(|row| text(row.get("Figure")) == "withheld"
            && row.get("Cases (n)").is_none_or(|n| *n == Data::Empty)));

    // Cost per transaction in £.
    let cost = sheet(&mut book, "cost-per-transaction")?;
    let total = cost
        .iter()
        .find(|row| text(row.get("Breakdown")) == "Total")
        .context("a cost total row")?;
    close(
        float(total.get("Figure")),
        expected.cost["rows"][0]["value"].as_f64(),
        "cost",
    );

    // The summary's take-up this period and last, and its sentence.
    let summary = sheet(&mut book, "Summary")?;
    let row = summary
        .iter()
        .find(|row| text(row.get("KPI")) == "Digital take-up")
        .context("take-up in the summary")?;
    close(
        float(row.get("This period")),
        api["value"].as_f64(),
        "summary take-up",
    );
    close(
        float(row.get("Previous period")),
        expected.previous_take_up["rows"][0]["value"].as_f64(),
        "summary previous take-up",
    );
    assert!(
        text(row.get("In words")).starts_with("Digital take-up was "),
        "{:?}",
        row.get("In words")
    );

    // Q2's take-up was published as `restated_from` and has changed since.
    let trends = sheet(&mut book, "Trends")?;
    let q2 = trends
        .iter()
        .find(|row| {
            text(row.get("KPI")) == "digital-take-up" && text(row.get("Period start")) == Q2.0
        })
        .context("Q2 in the trend")?;
    assert_eq!(q2.get("Restated"), Some(&Data::Bool(true)), "Q2 restated");
    close(
        float(q2.get("Previously published")),
        Some(restated_from),
        "previously published",
    );
    close(
        float(q2.get("Figure")),
        expected.previous_take_up["rows"][0]["value"].as_f64(),
        "Q2 now",
    );
    let quarters = trends
        .iter()
        .filter(|row| text(row.get("KPI")) == "digital-take-up")
        .count();
    assert_eq!(quarters, 8, "eight quarters of trend");

    // Where to shift next: the API's services, in its order, with its savings.
    let shift = sheet(&mut book, "Where to shift next")?;
    let services = expected.opportunities["services"]
        .as_array()
        .context("the API's opportunities")?;
    assert_eq!(shift.len(), services.len(), "a row per service");
    assert!(
        services
            .iter()
            .any(|service| service["verdict"] == "recommended"),
        "the simulator's council has a shift to recommend: {:#}",
        expected.opportunities
    );
    for (row, service) in shift.iter().zip(services) {
        let slug = service["service"].as_str().context("service")?;
        assert_eq!(
            text(row.get("Service")).to_lowercase(),
            slug.replace('_', " ")
        );
        match service["annual_saving"].as_f64() {
            Some(pence) => close(
                float(row.get("Saving a year (£)")),
                Some(pence / 100.0),
                "saving a year",
            ),
            None => assert_eq!(float(row.get("Saving a year (£)")), None),
        }
    }
    let definitions = sheet(&mut book, "Definitions")?;
    assert_eq!(
        definitions.len(),
        channelshift_kpi::catalogue::Kpi::ALL.len() + 2,
        "a definition per KPI, one of where to shift next and one of the forecasts"
    );
    // Nine months of history: too few to forecast, and the sheet says why.
    let forecasts = sheet(&mut book, "Year-end forecast")?;
    assert_eq!(forecasts.len(), 5, "a row per forecast KPI");
    assert!(forecasts
        .iter()
        .all(|row| text(row.get("In words")).starts_with("No year-end forecast: ")));
    assert!(definitions
        .iter()
        .all(|row| text(row.get("What it means")).len() > 40));
    let metadata = sheet(&mut book, "Metadata")?;
    let item = |name: &str| {
        metadata
            .iter()
            .find(|row| text(row.get("Item")) == name)
            .map(|row| text(row.get("Value")))
    };
    assert_eq!(item("Data as of (UTC)").as_deref(), Some(as_of));
    assert_eq!(item("Council").as_deref(), Some(COUNCIL));
    assert_eq!(
        item("Savings baseline").as_deref(),
        Some("2025-04-01 to 2025-06-30")
    );
    assert_eq!(
        item("Unit cost, Phone (£ per contact)").as_deref(),
        Some("2.83")
    );
    assert_eq!(
        item("First-contact resolution: repeat window (days)").as_deref(),
        Some("7")
    );
    assert_eq!(
        item("Savings target falls due").as_deref(),
        Some("pro rata by day through the financial year")
    );
    Ok(())
}

/// The CSV's rows as column name → text (no field in this data needs quoting).
fn csv_rows(csv: &str) -> Vec<HashMap<String, String>> {
    let mut lines = csv.split("\r\n").filter(|line| !line.is_empty());
    let header: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split(',')
        .map(str::to_string)
        .collect();
    lines
        .map(|line| {
            header
                .iter()
                .cloned()
                .zip(line.split(',').map(str::to_string))
                .collect()
        })
        .collect()
}

fn take_up_of(rows: &[HashMap<String, String>], period_start: &str) -> Option<f64> {
    rows.iter()
        .find(|row| {
            row["kpi"] == "digital-take-up"
                && row["breakdown"] == "total"
                && row["period_start"] == period_start
        })
        .and_then(|row| row["value"].parse().ok())
}

/// Late phone transactions in August 2025: they lower Q2's take-up.
fn late_phone_calls(count: usize) -> Vec<(String, Vec<u8>)> {
    (0..count)
        .map(|i| {
            let id = format!("late-call-{i}");
            let event = serde_json::json!({
                "schema_version": 1,
                "event_id": id,
                "council": COUNCIL,
                "occurred_at": format!("2025-08-{:02}T11:{:02}:00Z", 1 + i % 28, i % 60),
                "channel": "phone",
                "service": "council_tax",
                "outcome": "completed",
                "customer_type": "resident",
                "ward": "E05004321",
            });
            (id, event.to_string().into_bytes())
        })
        .collect()
}

/// Runs a program and returns its standard output, failing with its errors.
fn run(command: &mut Command) -> Result<String> {
    let output = command
        .output()
        .with_context(|| format!("running {command:?}"))?;
    anyhow::ensure!(
        output.status.success(),
        "{command:?}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// axe-core's WCAG 2.2 AA check of an HTML file in headless Chromium.
fn accessibility_violations(html: &Path) -> Result<Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser/axe.mjs");
    let out = run(Command::new("node")
        .arg(script)
        .arg(html)
        .arg(html.with_extension("png")))?;
    Ok(serde_json::from_str(&out)?)
}

fn pdf_info(pdf: &Path) -> Result<(String, u64)> {
    let info = run(Command::new("pdfinfo").arg(pdf))?;
    let field = |name: &str| {
        info.lines()
            .find_map(|line| line.strip_prefix(name))
            .map(|value| value.trim().to_string())
            .unwrap_or_default()
    };
    Ok((field("Title:"), field("Pages:").parse()?))
}

fn instant(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_format_holds_the_apis_figures_flags_restatements_and_is_accessible() -> Result<()> {
    let scope = Scope::new("packfmt");
    create_topics(&scope).await?;
    let ingest = start_ingest(scope.ingest_config());

    // Nine months of a district council, April to December 2025.
    let mut scenario = Scenario::district();
    scenario.seed = 61;
    scenario.contacts = Some(15_000);
    scenario.months = 9;
    scenario.end = NaiveDate::from_ymd_opt(2025, 12, 31).context("date")?;
    let mut generator = Generator::new(scenario);
    let (contacts, responses) = simulated(&mut generator, None);
    let truth = generator.truth.councils[COUNCIL].clone();
    let stored = Stored::from(&truth);
    let store = load_and_wait(
        &scope,
        &contacts,
        &responses,
        stored,
        Duration::from_secs(180),
    )
    .await?;
    let (api, server) = start_api_with(&scope, settings()?).await?;
    let client = reqwest::Client::new();

    // The first pack's cut-off: everything so far. Then late calls for Q2.
    let first_cut_off = last_ingested(&store).await?;
    await_settled(first_cut_off, 3).await;
    let pack =
        format!("{api}/api/v1/exports/pack?council={COUNCIL}&period=quarter&date={PACK_DATE}");
    let first_csv = String::from_utf8(
        get(&client, &format!("{pack}&as_of={}", instant(first_cut_off))).await?,
    )?;
    let published_q2 =
        take_up_of(&csv_rows(&first_csv), Q2.0).context("Q2 take-up in the first pack")?;

    let late = late_phone_calls(300);
    let stored = Stored {
        contacts: stored.contacts + 300,
        ..stored
    };
    load_and_wait(&scope, &late, &[], stored, Duration::from_secs(60)).await?;
    let cut_off = last_ingested(&store).await?;
    await_settled(cut_off, 3).await;
    let as_of = instant(cut_off);
    let query = format!(
        "{pack}&as_of={as_of}&previous_as_of={}",
        instant(first_cut_off)
    );

    let range = |(from, to): (&str, &str)| format!("council={COUNCIL}&from={from}&to={to}");
    let expected = Expected {
        take_up: kpi(&client, &api, &format!("digital-take-up?{}", range(Q3))).await?,
        take_up_by_customer: kpi(
            &client,
            &api,
            &format!("digital-take-up?{}&group_by=customer_type", range(Q3)),
        )
        .await?,
        satisfaction_by_customer: kpi(
            &client,
            &api,
            &format!("satisfaction?{}&group_by=customer_type", range(Q3)),
        )
        .await?,
        cost: kpi(
            &client,
            &api,
            &format!("cost-per-transaction?{}", range(Q3)),
        )
        .await?,
        previous_take_up: kpi(&client, &api, &format!("digital-take-up?{}", range(Q2))).await?,
        opportunities: serde_json::from_slice(
            &get(
                &client,
                &format!("{api}/api/v1/opportunities?council={COUNCIL}&date={}", Q3.1),
            )
            .await?,
        )?,
    };
    assert!(
        expected.previous_take_up["rows"][0]["value"]
            .as_f64()
            .unwrap_or(f64::NAN)
            < published_q2 - 0.5,
        "the late calls lower Q2's take-up"
    );

    // CSV: Q2's trend row is flagged restated with the published figure.
    let csv = String::from_utf8(get(&client, &format!("{query}&format=csv")).await?)?;
    let rows = csv_rows(&csv);
    let q2 = rows
        .iter()
        .find(|row| row["kpi"] == "digital-take-up" && row["period_start"] == Q2.0)
        .context("Q2's take-up in the CSV")?;
    assert_eq!(q2["restated"], "true");
    close(
        q2["previously_published"].parse().ok(),
        Some(published_q2),
        "CSV previously published",
    );
    let q1 = rows
        .iter()
        .find(|row| row["kpi"] == "digital-take-up" && row["period_start"] == "2025-04-01")
        .context("Q1's take-up in the CSV")?;
    assert_eq!(q1["restated"], "false", "Q1 had no late data");

    // XLSX and ODS, read back.
    let started = Instant::now();
    let xlsx = get(&client, &format!("{query}&format=xlsx")).await?;
    let xlsx_time = started.elapsed();
    check_workbook(
        open_workbook_from_rs::<Xlsx<_>, _>(Cursor::new(xlsx))?,
        &expected,
        &as_of,
        published_q2,
    )?;
    let ods = get(&client, &format!("{query}&format=ods")).await?;
    check_workbook(
        open_workbook_from_rs::<Ods<_>, _>(Cursor::new(ods))?,
        &expected,
        &as_of,
        published_q2,
    )?;

    // HTML: the headline in words, and no WCAG 2.2 AA violation.
    let dir = tempfile::tempdir()?;
    let html = String::from_utf8(get(&client, &format!("{query}&format=html")).await?)?;
    let take_up = expected.take_up["rows"][0]["value"]
        .as_f64()
        .context("take-up")?;
    let headline = format!("Digital take-up was {take_up:.1}% this quarter");
    assert!(html.contains(&headline), "{headline:?} in the report");
    assert!(
        html.contains("Restated figures"),
        "the report lists restatements"
    );
    assert!(
        html.contains("<h2 id=\"opportunities\">Where to shift next</h2>"),
        "the report says where to shift next"
    );
    assert!(
        html.contains("<svg") && html.contains("role=\"img\""),
        "a chart with a role"
    );
    let html_path = dir.path().join("pack.html");
    std::fs::write(&html_path, &html)?;
    let axe = accessibility_violations(&html_path)?;
    let violations = axe["violations"].as_array().context("violations")?;
    assert!(
        violations.is_empty(),
        "WCAG 2.2 AA violations: {violations:#?}"
    );
    assert!(
        axe["passes"].as_u64().unwrap_or(0) > 10,
        "axe ran its rules: {axe}"
    );
    let title =
        format!("Channel shift performance, 2025-26 Q3 (October to December 2025): {COUNCIL}");
    assert_eq!(axe["title"], title.as_str());

    // PDF: a title, pages, and the report's real text.
    let started = Instant::now();
    let pdf = get(&client, &format!("{query}&format=pdf")).await?;
    let pdf_time = started.elapsed();
    let pdf_path = dir.path().join("pack.pdf");
    std::fs::write(&pdf_path, &pdf)?;
    let (pdf_title, pages) = pdf_info(&pdf_path)?;
    assert_eq!(pdf_title, title);
    assert!(pages >= 10, "a page per KPI and more: {pages}");
    let text = run(Command::new("pdftotext")
        .args(["-layout"])
        .arg(&pdf_path)
        .arg("-"))?;
    let squeezed: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        squeezed.contains(&headline),
        "{headline:?} in the PDF's text"
    );
    assert!(
        squeezed.contains("Restated"),
        "restatements in the PDF's text"
    );
    eprintln!(
        "pack formats: XLSX in {:.2} s, PDF in {:.2} s ({pages} pages, {} bytes); axe {} with {} rules passed",
        xlsx_time.as_secs_f64(),
        pdf_time.as_secs_f64(),
        pdf.len(),
        axe["axe"],
        axe["passes"]
    );

    // In process: each pack from the rollups where its months are settled
    // (Q2 is not, for the first cut-off: the late calls came after it) is
    // the pack from the raw tables alone, in every text format.
    let policy = channelshift_reports::policy::Policy::new(&settings()?)?;
    let council = channelshift_contract::CouncilCode::parse(COUNCIL).context("council")?;
    let period = channelshift_kpi::period::Period::containing(
        channelshift_kpi::period::PeriodKind::FinancialQuarter,
        NaiveDate::parse_from_str(PACK_DATE, "%Y-%m-%d")?,
    )?;
    for (as_of, previous_as_of) in [(first_cut_off, None), (cut_off, Some(first_cut_off))] {
        let scope = || channelshift_packs::Scope {
            council: &council,
            period,
            as_of: channelshift_store::CutOff(as_of),
            previous_as_of: previous_as_of.map(channelshift_store::CutOff),
        };
        let either = channelshift_packs::build(&store, &policy, scope()).await?;
        let raw = channelshift_packs::build_from_raw(&store, &policy, scope()).await?;
        let pdf = channelshift_packs::pdf::PdfSettings::new(&Default::default());
        for format in [
            channelshift_packs::Format::Csv,
            channelshift_packs::Format::Csvw,
            channelshift_packs::Format::Html,
        ] {
            assert_eq!(
                String::from_utf8(channelshift_packs::render(&either, format, &pdf).await?)?,
                String::from_utf8(channelshift_packs::render(&raw, format, &pdf).await?)?,
                "{} as of {as_of}: from the rollups where settled, and from raw",
                format.as_str()
            );
        }
    }

    server.stop().await?;
    cli(&scope, dir.path(), first_cut_off, cut_off, published_q2).await?;
    ingest.stop().await?;
    scope.drop_database().await
}

/// The CLI: one pack in all formats, then the calendar's due packs, twice.
async fn cli(
    scope: &Scope,
    dir: &Path,
    first_cut_off: i64,
    cut_off: i64,
    published_q2: f64,
) -> Result<()> {
    // Meetings a week and a fortnight after the cut-offs.
    let today = chrono::Utc::now().date_naive();
    let first_meeting = today + chrono::Days::new(7);
    let second_meeting = today + chrono::Days::new(14);
    let meeting = |meets: NaiveDate, cut_off: i64| Meeting {
        council: COUNCIL.into(),
        committee: "Overview and Scrutiny Committee".into(),
        meets: meets.to_string(),
        data_as_of: instant(cut_off),
        reports: "2025-11-15".into(),
    };
    let config = toml_text(&ApiFile {
        listen: None,
        clickhouse: (&scope.reader()).into(),
        auth: AuthSection::new(&[], &[]),
        kpi: KpiSection {
            pack_settle_seconds: Some(3),
            baseline: Some(Span {
                from: "2025-04-01".into(),
                to: "2025-06-30".into(),
            }),
            ..KpiSection::default()
        },
        server: None,
        query: None,
        packs: Some(PacksSection {
            calendar: vec![
                meeting(first_meeting, first_cut_off),
                meeting(second_meeting, cut_off),
            ],
            ..PacksSection::default()
        }),
    });
    let config_path = dir.join("api.toml");
    std::fs::write(&config_path, config)?;
    let binary = packs_binary()?;

    let one = dir.join("one");
    let started = Instant::now();
    let out = run(Command::new(&binary)
        .args([
            "pack",
            "--council",
            COUNCIL,
            "--date",
            PACK_DATE,
            "--as-of",
            &instant(cut_off),
            "--out",
        ])
        .arg(&one)
        .arg("--config")
        .arg(&config_path))?;
    let elapsed = started.elapsed();
    let files: Vec<&str> = out.lines().collect();
    assert_eq!(files.len(), 6, "csv, csvw, xlsx, ods, html, pdf: {files:?}");
    for ending in [
        ".csv",
        ".csv-metadata.json",
        ".xlsx",
        ".ods",
        ".html",
        ".pdf",
    ] {
        assert!(
            files.iter().any(|file| file.ends_with(ending)),
            "{ending} in {files:?}"
        );
    }
    eprintln!(
        "CLI: one quarterly pack in all six formats in {:.2} s",
        elapsed.as_secs_f64()
    );

    // The calendar: both meetings are due; the second flags Q2 restated
    // against the first's cut-off. A second run finds nothing to do.
    let packs = dir.join("packs");
    let out = run(Command::new(&binary)
        .arg("packs-due")
        .arg("--out")
        .arg(&packs)
        .arg("--config")
        .arg(&config_path))?;
    assert_eq!(out.lines().count(), 12, "two packs of six files: {out}");
    let second = packs
        .join(format!(
            "{second_meeting}-{COUNCIL}-overview-and-scrutiny-committee"
        ))
        .join(format!("channelshift-{COUNCIL}-2025-26-Q3.csv"));
    let rows = csv_rows(&std::fs::read_to_string(&second)?);
    let q2 = rows
        .iter()
        .find(|row| row["kpi"] == "digital-take-up" && row["period_start"] == Q2.0)
        .context("Q2 in the second meeting's pack")?;
    assert_eq!(q2["restated"], "true");
    close(
        q2["previously_published"].parse().ok(),
        Some(published_q2),
        "calendar restatement",
    );
    let first = packs
        .join(format!(
            "{first_meeting}-{COUNCIL}-overview-and-scrutiny-committee"
        ))
        .join(format!("channelshift-{COUNCIL}-2025-26-Q3.csv"));
    let rows = csv_rows(&std::fs::read_to_string(&first)?);
    assert!(
        rows.iter().all(|row| row["restated"] == "false"),
        "the first pack has nothing to restate"
    );
    let again = run(Command::new(&binary)
        .arg("packs-due")
        .arg("--out")
        .arg(&packs)
        .arg("--config")
        .arg(&config_path))?;
    assert_eq!(again.lines().count(), 0, "nothing left to do: {again}");
    Ok(())
}
