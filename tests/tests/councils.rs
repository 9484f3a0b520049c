//! Many councils on one platform: two councils configured differently
//! (`[kpi]` plus a `[councils.<GSS>]` block each) receive the same events,
//! and every figure, target, RAG status, saving, name and calendar pack of
//! each follows its own settings: in the API's scorecard, in the packs the
//! reporting calendar produces, and in the managers' dashboard, whose
//! scorecard panel reads the definitions the API publishes and gives the
//! API's numbers. The expected figures are worked by hand below.

use anyhow::{Context, Result};
use channelshift_api::config::{CouncilBlocks, KpiSettings};
use channelshift_packs::pdf::PdfSettings;
use channelshift_packs::{produce, Format, Packs};
use channelshift_reports::calendar::{Calendar, Meeting, PacksConfig};
use channelshift_reports::Councils;
use channelshift_store::Store;
use channelshift_tests::checks::{load_and_wait, Stored};
use channelshift_tests::grafana::{
    expand_sql, load_dashboards, run_sql, TimeRange, CLICKHOUSE, SCORECARD_PANEL_COLUMNS,
};
use channelshift_tests::{
    create_topics, eventually, publish_definitions, start_api_for_councils, start_ingest, Scope,
    API_TOKEN,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

const EXETER: &str = "E07000041";
const TORBAY: &str = "E06000027";
/// Has data, but is not a council of the platform.
const UNCONFIGURED: &str = "E07000042";

/// The default block: Exeter keeps most of it.
fn default_block() -> Value {
    json!({
        "suppression_threshold": 5,
        "pack_settle_seconds": 0,
        "baseline": {"from": "2024-04-01", "to": "2024-06-30"},
        "unit_costs": [
            {"channel": "web", "from": "2012-04-01", "pounds": "0.15"},
            {"channel": "kiosk", "from": "2012-04-01", "pounds": "0.15"},
            {"channel": "phone", "from": "2012-04-01", "pounds": "2.83"},
            {"channel": "face_to_face", "from": "2012-04-01", "pounds": "8.62"}
        ],
        "targets": {
            "digital-take-up": {"target": 45.0, "tolerance": 5.0, "polarity": "higher_is_better"},
            "completion-rate": {"target": 85.0, "tolerance": 5.0, "polarity": "higher_is_better"},
            "satisfaction": {"target": 80.0, "tolerance": 5.0, "polarity": "higher_is_better"},
            "cost-per-transaction": {"target": 2.0, "tolerance": 0.5, "polarity": "lower_is_better"},
            "efficiency-savings": {"target": 40.0, "tolerance": 10.0, "polarity": "higher_is_better"},
            "avoidable-contact": {"target": 20.0, "tolerance": 5.0, "polarity": "lower_is_better"},
            "first-contact-resolution": {"target": 75.0, "tolerance": 5.0, "polarity": "higher_is_better"},
            "response-rate": {"target": 30.0, "tolerance": 5.0, "polarity": "higher_is_better"}
        }
    })
}

/// Torbay differs in every setting a council can set.
fn council_blocks() -> Value {
    json!({
        EXETER: {"name": "Exeter City Council"},
        TORBAY: {
            "name": "Torbay Council",
            "take_up_definition": "gds_2014",
            "suppression_threshold": 3,
            "repeat_window_days": 30,
            // Savings due by month: 5% in each of April-June, then 10% a month, 5% in March.
            "savings_profile": [5, 5, 5, 10, 10, 10, 10, 10, 10, 10, 10, 5],
            "channel_classes": {"kiosk": "digital_assisted"},
            "baseline": {"from": "2024-07-01", "to": "2024-09-30"},
            "satisfaction": {"instrument": "nps11", "measure": "nps"},
            "unit_costs": [
                {"channel": "web", "from": "2012-04-01", "pounds": "0.50"},
                {"channel": "web", "from": "2025-06-01", "pounds": "0.80"},
                {"channel": "kiosk", "from": "2012-04-01", "pounds": "1.00"},
                {"channel": "phone", "from": "2012-04-01", "pounds": "4.00"},
                {"channel": "face_to_face", "from": "2012-04-01", "pounds": "10.00"}
            ],
            "targets": {
                "digital-take-up": {"target": 60.0, "tolerance": 2.0, "polarity": "higher_is_better"},
                "satisfaction": {"target": 10.0, "tolerance": 5.0, "polarity": "higher_is_better"},
                "cost-per-transaction": {"target": 1.0, "tolerance": 0.5, "polarity": "lower_is_better"}
            }
        }
    })
}

/// Messages as (key, payload).
type Messages = Vec<(String, Vec<u8>)>;

/// One council's events: the same for every council. In 2025-26 Q1:
/// completed transactions web 10 (one assisted), kiosk 4, phone 6, face to
/// face 2, and 2 abandoned on the web; the phone calls carry the avoidable
/// (2 of 6) and first-contact (5 of 6) flags. Baselines: April-June 2024
/// phone 10, web 5, face to face 5; July-September 2024 phone 8, web 8, face
/// to face 4. Responses: csat5 on the web 5, 5, 4, 3, 2; nps11 10, 9, 9, 8, 5, 3.
///
/// Journeys: phone calls on 12 May J1-J5 and J1 again (a repeat at the same
/// instant); face to face on 2 June J2 again (21 days after its first) and
/// J6; the two abandoned web forms on 3 June are both J7. Other contacts
/// carry no journey id.
fn events(council: &str) -> (Messages, Messages) {
    let mut contacts = Vec::new();
    let mut add = |day: &str, channel: &str, outcome: &str, count: usize, extra: Value| {
        for _ in 0..count {
            let id = format!("{council}-c{:03}", contacts.len());
            let mut event = json!({
                "schema_version": 1, "event_id": id, "council": council,
                "occurred_at": format!("{day}T10:00:00Z"), "channel": channel,
                "service": "council_tax", "interaction": "transaction", "outcome": outcome,
                "customer_type": "resident", "source": "crm",
            });
            if let (Some(event), Some(extra)) = (event.as_object_mut(), extra.as_object()) {
                event.extend(extra.clone());
            }
            contacts.push((id, event.to_string().into_bytes()));
        }
    };
    add("2025-05-10", "web", "completed", 9, json!({}));
    add(
        "2025-05-10",
        "web",
        "completed",
        1,
        json!({"assisted": true}),
    );
    add("2025-05-11", "kiosk", "completed", 4, json!({}));
    for journey in ["J1", "J2"] {
        add(
            "2025-05-12",
            "phone",
            "completed",
            1,
            json!({"avoidable": true, "first_contact_resolved": true, "journey_id": journey}),
        );
    }
    for journey in ["J3", "J4", "J5"] {
        add(
            "2025-05-12",
            "phone",
            "completed",
            1,
            json!({"avoidable": false, "first_contact_resolved": true, "journey_id": journey}),
        );
    }
    add(
        "2025-05-12",
        "phone",
        "completed",
        1,
        json!({"avoidable": false, "first_contact_resolved": false, "journey_id": "J1"}),
    );
    for journey in ["J2", "J6"] {
        add(
            "2025-06-02",
            "face_to_face",
            "completed",
            1,
            json!({"journey_id": journey}),
        );
    }
    add(
        "2025-06-03",
        "web",
        "abandoned",
        2,
        json!({"journey_id": "J7"}),
    );
    add("2024-05-15", "phone", "completed", 10, json!({}));
    add("2024-05-15", "web", "completed", 5, json!({}));
    add("2024-05-15", "face_to_face", "completed", 5, json!({}));
    add("2024-08-15", "phone", "completed", 8, json!({}));
    add("2024-08-15", "web", "completed", 8, json!({}));
    add("2024-08-15", "face_to_face", "completed", 4, json!({}));
    let mut responses = Vec::new();
    for (instrument, scores) in [
        ("csat5", &[5, 5, 4, 3, 2][..]),
        ("nps11", &[10, 9, 9, 8, 5, 3][..]),
    ] {
        for score in scores {
            let id = format!("{council}-r{:03}", responses.len());
            let response = json!({
                "schema_version": 1, "response_id": id, "council": council,
                "responded_at": "2025-05-20T12:00:00Z", "channel": "web",
                "service": "council_tax", "customer_type": "resident",
                "instrument": instrument, "score": score, "survey_mode": "web",
            });
            responses.push((id, response.to_string().into_bytes()));
        }
    }
    (contacts, responses)
}

/// (value, n, target, RAG) of each scorecard KPI for 2025-26 Q1, by hand.
fn expected(council: &str) -> BTreeMap<&'static str, (Option<f64>, u64, f64, &'static str)> {
    if council == EXETER {
        BTreeMap::from([
            // web 10 + kiosk 4 (assisted counts) of 22: Green against 45.
            (
                "digital-take-up",
                (Some(100.0 * 14.0 / 22.0), 22, 45.0, "green"),
            ),
            // web and kiosk: 14 completed of 16 started.
            ("completion-rate", (Some(87.5), 16, 85.0, "green")),
            // csat5: 3 of 5 scored 4-5.
            ("satisfaction", (Some(60.0), 5, 80.0, "red")),
            // (12 × 15 + 4 × 15 + 6 × 283 + 2 × 862) p = 3,662 p ÷ 22 = 166.45 p.
            ("cost-per-transaction", (Some(1.66), 22, 2.0, "green")),
            // (24 × 7,215 − 20 × 3,662) ÷ 20 = 4,996 p, against £40 a year
            // profiled to 30 June: 91 of 365 days.
            (
                "efficiency-savings",
                (Some(49.96), 24, 40.0 * (91.0 / 365.0), "green"),
            ),
            (
                "avoidable-contact",
                (Some(100.0 * 2.0 / 6.0), 6, 20.0, "red"),
            ),
            // Journeys within 7 days: J1 (a repeat) and J7 (two forms)
            // unresolved; J2 on 12 May, J3-J5, J2 again on 2 June (21 days
            // on: a journey of its own) and J6 resolved: 6 of 8.
            ("first-contact-resolution", (Some(75.0), 8, 75.0, "green")),
            // 11 answers of 24 contacts.
            (
                "response-rate",
                (Some(100.0 * 11.0 / 24.0), 24, 30.0, "green"),
            ),
        ])
    } else {
        BTreeMap::from([
            // Kiosk is assisted here and gds_2014 leaves assisted web out: 9 of 22.
            (
                "digital-take-up",
                (Some(100.0 * 9.0 / 22.0), 22, 60.0, "red"),
            ),
            // The web only: 10 completed of 12 started.
            (
                "completion-rate",
                (Some(100.0 * 10.0 / 12.0), 12, 85.0, "amber"),
            ),
            // nps11: (3 promoters − 2 detractors) ÷ 6.
            ("satisfaction", (Some(100.0 / 6.0), 6, 10.0, "green")),
            // The web costs 50 p until 31 May and 80 p from 1 June: each day
            // at its own cost, (10 × 50 + 2 × 80 + 4 × 100 + 6 × 400 + 2 × 1,000)
            // p = 5,460 p ÷ 22 = 248.18 p (at June's cost throughout it would
            // be £2.62).
            ("cost-per-transaction", (Some(2.48), 22, 1.0, "red")),
            // Baseline July-September 2024 (phone 8, web 8, face to face 4):
            // its mix costs 7,600 p a contact-set before 1 June and 7,840 p
            // from it, so Σ C_d × that = 20 × 7,600 + 4 × 7,840 = 183,360;
            // minus 20 × 5,460 = 74,160, ÷ 20 = 3,708 p (£36.48 at June's
            // costs throughout). Green against the £6 due by 30 June on
            // Torbay's monthly profile (15% of the year's £40; amber against
            // the whole year's £40 with its £10 tolerance).
            (
                "efficiency-savings",
                (Some(37.08), 24, 40.0 * 0.15, "green"),
            ),
            (
                "avoidable-contact",
                (Some(100.0 * 2.0 / 6.0), 6, 20.0, "red"),
            ),
            // Torbay's 30-day window: J2's contact on 2 June repeats its
            // first, so J1, J2 and J7 are unresolved: 4 of 7.
            (
                "first-contact-resolution",
                (Some(100.0 * 4.0 / 7.0), 7, 75.0, "red"),
            ),
            // 11 answers of 24 contacts.
            (
                "response-rate",
                (Some(100.0 * 11.0 / 24.0), 24, 30.0, "green"),
            ),
        ])
    }
}

fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() < 1e-6,
        (None, None) => true,
        _ => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_councils_are_each_computed_under_their_own_settings_everywhere() -> Result<()> {
    let scope = Scope::new("councils");
    create_topics(&scope).await?;
    let ingest = start_ingest(scope.ingest_config());
    let (mut contacts, mut responses) = events(EXETER);
    for council in [TORBAY, UNCONFIGURED] {
        let (more_contacts, more_responses) = events(council);
        contacts.extend(more_contacts);
        responses.extend(more_responses);
    }
    let store: Store = load_and_wait(
        &scope,
        &contacts,
        &responses,
        Stored {
            contacts: contacts.len() as u64,
            responses: responses.len() as u64,
        },
        Duration::from_secs(90),
    )
    .await?;
    let kpi: KpiSettings = serde_json::from_value(default_block())?;
    let blocks: CouncilBlocks = serde_json::from_value(council_blocks())?;

    // The API: each council's scorecard under its own settings and name.
    let (api, server) = start_api_for_councils(&scope, kpi.clone(), blocks.clone()).await?;
    let client = reqwest::Client::new();
    let mut scorecards = BTreeMap::new();
    for (council, name) in [(EXETER, "Exeter City Council"), (TORBAY, "Torbay Council")] {
        let response = client
            .get(format!(
                "{api}/api/v1/scorecard?council={council}&period=quarter&date=2025-05-15"
            ))
            .bearer_auth(API_TOKEN)
            .send()
            .await?;
        let body: Value = response.error_for_status()?.json().await?;
        assert_eq!(body["council_name"], format!("{name} ({council})"));
        for (kpi, (value, n, target, rag)) in expected(council) {
            let headline = body["kpis"]
                .as_array()
                .and_then(|kpis| kpis.iter().find(|headline| headline["kpi"] == kpi))
                .with_context(|| format!("{council} {kpi} in {body}"))?;
            assert!(
                close(headline["value"].as_f64(), value),
                "{council} {kpi}: {headline}, expected {value:?}"
            );
            assert_eq!(headline["n"], n, "{council} {kpi}: {headline}");
            assert!(
                close(headline["target"].as_f64(), Some(target)),
                "{council} {kpi}: {headline}"
            );
            if kpi == "efficiency-savings" {
                assert_eq!(headline["annual_target"], 40.0, "{headline}");
            }
            assert_eq!(headline["rag"], rag, "{council} {kpi}: {headline}");
        }
        let satisfaction = if council == EXETER {
            "csat5/satisfied"
        } else {
            "nps11/nps"
        };
        assert!(body.to_string().contains(satisfaction), "{body}");
        // Torbay's NPS is a net score, in points.
        let unit = if council == EXETER {
            "percent"
        } else {
            "points"
        };
        let headline = body["kpis"]
            .as_array()
            .and_then(|kpis| {
                kpis.iter()
                    .find(|headline| headline["kpi"] == "satisfaction")
            })
            .context("satisfaction on the scorecard")?;
        assert_eq!(headline["unit"], unit, "{council}: {headline}");
        scorecards.insert(council, body);
    }
    // The response rate by channel: the 11 web answers over each channel's
    // contacts, under Exeter's threshold of 5.
    let body: Value = client
        .get(format!(
            "{api}/api/v1/kpi/response-rate?council={EXETER}&from=2025-04-01&to=2025-06-30&group_by=channel"
        ))
        .bearer_auth(API_TOKEN)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let by_channel: BTreeMap<&str, &Value> = body["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|row| Some((row["channel"].as_str()?, row)))
        .collect();
    assert!(
        close(
            by_channel["web"]["value"].as_f64(),
            Some(100.0 * 11.0 / 12.0)
        ),
        "{body}"
    );
    assert_eq!(by_channel["web"]["n"], 12, "{body}");
    assert!(
        close(by_channel["phone"]["value"].as_f64(), Some(0.0)),
        "{body}"
    );
    assert_eq!(
        by_channel["kiosk"]["suppressed"], true,
        "4 contacts: {body}"
    );
    assert_eq!(
        by_channel["face_to_face"]["suppressed"], true,
        "2 contacts: {body}"
    );

    // A council with data that the platform does not configure is refused.
    let refused = client
        .get(format!(
            "{api}/api/v1/scorecard?council={UNCONFIGURED}&period=quarter&date=2025-05-15"
        ))
        .bearer_auth(API_TOKEN)
        .send()
        .await?;
    assert_eq!(refused.status(), 400);
    let text = refused.text().await?;
    assert!(text.contains("not a council on this platform"), "{text}");
    // A pack is titled with the council's name.
    let html = client
        .get(format!(
            "{api}/api/v1/exports/pack?council={TORBAY}&period=quarter&date=2025-05-15&format=html"
        ))
        .bearer_auth(API_TOKEN)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    assert!(
        html.contains("Torbay Council (E06000027)"),
        "no name in the pack"
    );
    // Nothing published yet: the API says the dashboards' definitions are not its own.
    assert_eq!(definitions_gauge(&client, &api).await?, 0.0);

    // The reporting calendar: each council's meeting produces its pack under
    // its own settings.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let now = chrono::Utc::now();
    let as_of = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let meets = (now + chrono::Duration::days(30)).date_naive().to_string();
    let meetings: Vec<Meeting> = serde_json::from_value(json!([
        {"council": EXETER, "committee": "Scrutiny Committee", "meets": meets,
         "data_as_of": as_of, "reports": "2025-05-15"},
        {"council": TORBAY, "committee": "Overview and Scrutiny Board", "meets": meets,
         "data_as_of": as_of, "reports": "2025-05-15"},
    ]))?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let out = tempfile_dir(&scope)?;
    let packs = Packs {
        store: Store::connect(&scope.reader()).await?,
        councils: Councils::new(&kpi, &blocks)?,
        calendar: Calendar::new(&meetings)?,
        pdf: PdfSettings::new(&PacksConfig::default()),
    };
    let files = produce::produce_due(&packs, &out, true, &[Format::Csv]).await?;
    assert_eq!(files.len(), 2, "{files:?}");
    for file in &files {
        let csv = std::fs::read_to_string(file)?;
        let council = if csv.contains(TORBAY) { TORBAY } else { EXETER };
        let (take_up, _, target, rag) = expected(council)["digital-take-up"];
        let line = csv
            .lines()
            .find(|line| line.starts_with(&format!("{council},digital-take-up,,total,")))
            .with_context(|| format!("no take-up total in {}", file.display()))?;
        let fields: Vec<&str> = line.split(',').collect();
        let value: f64 = fields[8].parse()?;
        assert!(close(Some(value), take_up), "{council}: {line}");
        assert_eq!(fields[14].parse::<f64>()?, target, "{council}: {line}");
        assert_eq!(fields[15], rag, "{council}: {line}");
    }

    // The dashboards: the definitions published, the council picker lists
    // the configured councils by name, and the scorecard panel gives the
    // API's figures, targets and RAG for each.
    publish_definitions(&scope, &kpi, &blocks).await?;
    eventually(
        "the API sees its definitions published",
        Duration::from_secs(15),
        || {
            let (client, api) = (&client, &api);
            async move { Ok((definitions_gauge(client, api).await? == 1.0).then_some(())) }
        },
    )
    .await?;
    server.stop().await?;
    let grafana = scope.dashboards_user().await?;
    let dashboards = load_dashboards()?;
    let overview = dashboards
        .iter()
        .find(|dashboard| dashboard.file == "kpi-overview.json")
        .context("kpi-overview.json")?;
    let range = TimeRange {
        from: "2025-03-31T23:00:00Z".parse()?,
        to: "2025-06-30T22:59:59Z".parse()?,
    };
    let picker = overview
        .variables()
        .into_iter()
        .find(|variable| variable["name"] == "council")
        .and_then(|variable| variable["query"].as_str())
        .context("council variable")?;
    let (_, councils) = run_sql(&grafana, &expand_sql(picker, range, &BTreeMap::new())?).await?;
    assert_eq!(
        councils,
        vec![
            vec![json!(EXETER), json!("Exeter City Council (E07000041)")],
            vec![json!(TORBAY), json!("Torbay Council (E06000027)")],
        ]
    );
    let panel = overview
        .queries(CLICKHOUSE)
        .into_iter()
        .find(|(name, _)| name.contains("Scorecard"))
        .and_then(|(_, target)| target["rawSql"].as_str())
        .context("scorecard panel")?;
    for council in [EXETER, TORBAY] {
        let variables = BTreeMap::from([("council".to_string(), vec![council.to_string()])]);
        let (columns, rows) = run_sql(&grafana, &expand_sql(panel, range, &variables)?).await?;
        assert_eq!(columns, SCORECARD_PANEL_COLUMNS);
        let api_kpis = scorecards[council]["kpis"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(rows.len(), api_kpis.len(), "{council}: {rows:?}");
        for (row, headline) in rows.iter().zip(&api_kpis) {
            assert_eq!(row[0], headline["kpi"], "{council}");
            assert!(
                close(row[1].as_f64(), headline["value"].as_f64()),
                "{council}: dashboard {row:?}, API {headline}"
            );
            assert_eq!(row[2], headline["n"], "{council}: {row:?} {headline}");
            assert!(
                close(row[3].as_f64(), headline["target"].as_f64()),
                "{council}: dashboard {row:?}, API {headline}"
            );
            assert!(
                close(row[5].as_f64(), headline["annual_target"].as_f64()),
                "{council}: dashboard {row:?}, API {headline}"
            );
            assert_eq!(
                row[7].as_str().map(str::to_lowercase),
                headline["rag"].as_str().map(str::to_string),
                "{council}: dashboard {row:?}, API {headline}"
            );
        }
    }
    drop(store);
    ingest.stop().await?;
    scope.drop_database().await
}

/// Four councils that opted in to benchmarking and one that did not, each
/// with 20 completed council-tax transactions on 10 May 2025: web and phone
/// in the proportions below. One of the four counts take-up by the 2014
/// definition.
const BENCHMARKED: [(&str, &str, usize, bool); 5] = [
    // (council, name, web contacts of 20, opted in)
    (EXETER, "Exeter City Council", 12, true),
    (TORBAY, "Torbay Council", 8, true),
    ("E07000040", "East Devon District Council", 10, true),
    ("E07000045", "Teignbridge District Council", 14, true),
    (OPTED_OUT, "Mid Devon District Council", 18, false),
];

/// On the platform, but not opted in to benchmarking.
const OPTED_OUT: &str = "E07000042";

fn benchmark_events() -> Messages {
    let mut contacts = Vec::new();
    for (council, _, web, _) in BENCHMARKED {
        for index in 0..20 {
            let id = format!("{council}-b{index:02}");
            let channel = if index < web { "web" } else { "phone" };
            let event = json!({
                "schema_version": 1, "event_id": id, "council": council,
                "occurred_at": "2025-05-10T10:00:00Z", "channel": channel,
                "service": "council_tax", "interaction": "transaction", "outcome": "completed",
                "customer_type": "resident", "source": "crm",
            });
            contacts.push((id, event.to_string().into_bytes()));
        }
    }
    contacts
}

/// A council's standing on one KPI in `GET /api/v1/benchmarks`.
fn standing<'a>(body: &'a Value, kpi: &str) -> Result<&'a Value> {
    body["kpis"]
        .as_array()
        .and_then(|kpis| kpis.iter().find(|standing| standing["kpi"] == kpi))
        .with_context(|| format!("{kpi} in {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn councils_that_opted_in_see_where_they_stand_among_each_other_and_no_one_else() -> Result<()>
{
    let scope = Scope::new("benchmarking");
    create_topics(&scope).await?;
    let ingest = start_ingest(scope.ingest_config());
    let contacts = benchmark_events();
    let store: Store = load_and_wait(
        &scope,
        &contacts,
        &[],
        Stored {
            contacts: contacts.len() as u64,
            responses: 0,
        },
        Duration::from_secs(90),
    )
    .await?;
    let kpi: KpiSettings = serde_json::from_value(json!({"suppression_threshold": 5}))?;
    let mut blocks = serde_json::Map::new();
    for (council, name, _, opted_in) in BENCHMARKED {
        let mut block = json!({"name": name, "benchmarking": opted_in});
        if council == "E07000045" {
            block["take_up_definition"] = json!("gds_2014");
        }
        blocks.insert(council.to_string(), block);
    }
    let blocks: CouncilBlocks = serde_json::from_value(Value::Object(blocks))?;
    let (api, server) = start_api_for_councils(&scope, kpi, blocks).await?;
    let client = reqwest::Client::new();
    let ask = |council: &str| {
        client
            .get(format!(
                "{api}/api/v1/benchmarks?council={council}&period=quarter&date=2025-05-15"
            ))
            .bearer_auth(API_TOKEN)
            .send()
    };

    // Exeter's take-up (60%) against Torbay's (40%) and East Devon's (50%):
    // Teignbridge counts take-up by another definition, and Mid Devon (90%)
    // has not opted in.
    let exeter: Value = ask(EXETER).await?.error_for_status()?.json().await?;
    assert_eq!(exeter["councils_opted_in"], 4, "{exeter:#}");
    let take_up = standing(&exeter, "digital-take-up")?;
    assert_eq!(take_up["value"], 60.0, "{take_up}");
    assert_eq!(take_up["councils_compared"], 3, "{take_up}");
    assert_eq!(take_up["rank"], 1, "{take_up}");
    assert_eq!(take_up["quartile"], 1, "{take_up}");
    assert_eq!(take_up["median"], 50.0, "{take_up}");
    assert_eq!(take_up["different_definition"], 1, "{take_up}");
    assert!(
        take_up["notes"].to_string().contains("take-up definition"),
        "the differing setting is named: {take_up}"
    );
    // Completion is defined alike everywhere: the four that opted in, all
    // at 100%, tie for first. Mid Devon would make five.
    let completion = standing(&exeter, "completion-rate")?;
    assert_eq!(completion["councils_compared"], 4, "{completion}");
    assert_eq!(completion["rank"], 1, "{completion}");
    assert!(
        !exeter.to_string().contains(OPTED_OUT),
        "a council that has not opted in is never named: {exeter}"
    );

    // Torbay is last of the three: 1 + ⌊4 × 2 ÷ 2⌋ = 5, so quartile 4.
    let torbay: Value = ask(TORBAY).await?.error_for_status()?.json().await?;
    let take_up = standing(&torbay, "digital-take-up")?;
    assert_eq!(
        (&take_up["rank"], &take_up["quartile"], &take_up["median"]),
        (&json!(3), &json!(4), &json!(50.0)),
        "{take_up}"
    );

    // Teignbridge alone counts take-up by the 2014 definition: nothing to
    // compare it with.
    let teignbridge: Value = ask("E07000045").await?.error_for_status()?.json().await?;
    let take_up = standing(&teignbridge, "digital-take-up")?;
    assert_eq!(take_up["councils_compared"], 0, "{take_up}");
    assert_eq!(take_up["rank"], Value::Null, "{take_up}");
    assert_eq!(take_up["median"], Value::Null, "{take_up}");
    assert_eq!(take_up["different_definition"], 3, "{take_up}");

    // A council that has not opted in sees no one.
    let response = ask(OPTED_OUT).await?;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await?;
    assert_eq!(body["parameter"], "council", "{body}");
    assert!(
        body["message"].to_string().contains("not opted in"),
        "{body}"
    );

    server.stop().await?;
    drop(store);
    ingest.stop().await?;
    scope.drop_database().await
}

/// `channelshift_api_definitions_published` as the API's `/metrics` shows it.
async fn definitions_gauge(client: &reqwest::Client, api: &str) -> Result<f64> {
    let text = client
        .get(format!("{api}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    text.lines()
        .find_map(|line| line.strip_prefix("channelshift_api_definitions_published "))
        .context("no channelshift_api_definitions_published in /metrics")?
        .trim()
        .parse()
        .context("the gauge's value")
}

/// A folder for the packs, inside the scope's own temporary space.
fn tempfile_dir(scope: &Scope) -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("channelshift-{}-packs", scope.database));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
