//! Year-end forecasts through the real stack: thirty months of simulator
//! data go through Kafka and ingest, `forecast` stores each headline's
//! forecast from the history to September, and the scorecard shows it: the
//! same forecast the maths gives from the API's own monthly figures, with
//! its backtest; none where too little history, none for a quarter that
//! ended before the history did.

use anyhow::{Context, Result};
use channelshift_api::config::KpiSettings;
use channelshift_contract::CouncilCode;
use channelshift_kpi::forecast::{year_end, Accrual, Outlook};
use channelshift_simulator::{Generator, Scenario};
use channelshift_store::Store;
use channelshift_tests::checks::{load_and_wait, Stored};
use channelshift_tests::{
    create_topics, simulated, start_api_with, start_ingest, Scope, API_TOKEN,
};
use chrono::NaiveDate;
use serde_json::Value;
use std::time::Duration;

const COUNCIL: &str = "E07000041";

async fn get(client: &reqwest::Client, url: &str) -> Result<Value> {
    let response = client.get(url).bearer_auth(API_TOKEN).send().await?;
    anyhow::ensure!(
        response.status().is_success(),
        "{url}: {}",
        response.status()
    );
    Ok(response.json().await?)
}

fn headline<'a>(scorecard: &'a Value, kpi: &str) -> Result<&'a Value> {
    scorecard["kpis"]
        .as_array()
        .context("kpis")?
        .iter()
        .find(|headline| headline["kpi"] == kpi)
        .with_context(|| format!("{kpi} in the scorecard"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scorecard_shows_the_stored_year_end_forecast_the_maths_gives_from_the_apis_months(
) -> Result<()> {
    let scope = Scope::new("forecast");
    create_topics(&scope).await?;
    let ingest = start_ingest(scope.ingest_config());

    let mut scenario = Scenario::district();
    scenario.seed = 31;
    scenario.months = 30;
    scenario.end = NaiveDate::from_ymd_opt(2026, 9, 30).context("a date")?;
    scenario.contacts = Some(30 * 400);
    scenario.select_council(COUNCIL)?;
    let mut generator = Generator::new(scenario);
    let (contacts, responses) = simulated(&mut generator, None);
    let truth = generator.truth.councils[COUNCIL].clone();
    load_and_wait(
        &scope,
        &contacts,
        &responses,
        Stored::from(&truth),
        Duration::from_secs(120),
    )
    .await?;

    // `channelshift-api forecast --month 2026-09`, as the writer.
    // Savings against the first three months of the data, every channel priced.
    let pounds = [
        ("web", "0.15"),
        ("app", "0.15"),
        ("kiosk", "0.30"),
        ("phone", "2.83"),
        ("face_to_face", "8.62"),
        ("email", "1.50"),
        ("webchat", "1.20"),
        ("post", "5.00"),
        ("social", "1.00"),
        ("ivr", "0.50"),
        ("other", "2.00"),
    ];
    let kpi = KpiSettings {
        unit_costs: Some(
            pounds
                .iter()
                .map(
                    |(channel, pounds)| channelshift_api::config::UnitCostEntry {
                        channel: (*channel).into(),
                        from: NaiveDate::from_ymd_opt(2012, 4, 1).unwrap_or_default(),
                        pounds: (*pounds).into(),
                    },
                )
                .collect(),
        ),
        baseline: Some(channelshift_api::config::Baseline {
            from: NaiveDate::from_ymd_opt(2024, 4, 1).context("a date")?,
            to: NaiveDate::from_ymd_opt(2024, 6, 30).context("a date")?,
        }),
        ..KpiSettings::default()
    };
    let councils = channelshift_reports::Councils::new(&kpi, &Default::default())?;
    let writer = Store::connect(&scope.writer()).await?;
    let council = CouncilCode::parse(COUNCIL).context("a GSS code")?;
    let september = NaiveDate::from_ymd_opt(2026, 9, 1).context("a date")?;
    let made_at = chrono::Utc::now().timestamp();
    let made = channelshift_api::forecast_councils(
        &writer,
        &councils,
        std::slice::from_ref(&council),
        september,
        made_at,
    )
    .await?;
    assert_eq!(made.len(), 1);

    let (api, server) = start_api_with(&scope, kpi.clone()).await?;
    let client = reqwest::Client::new();
    let scorecard = get(
        &client,
        &format!("{api}/api/v1/scorecard?council={COUNCIL}&period=quarter&date=2026-08-15"),
    )
    .await?;
    let take_up = headline(&scorecard, "digital-take-up")?;
    let forecast = &take_up["forecast"];
    assert_eq!(forecast["year_end"], "2027-03-31", "{take_up}");
    assert_eq!(forecast["history_to"], "2026-09-01");
    assert_eq!(forecast["history_months"], 30);
    assert_eq!(forecast["backtests"], 30 - 6 - 12 + 1);
    assert_eq!(forecast["path"].as_array().map(Vec::len), Some(6));
    assert!(forecast["method"]
        .as_str()
        .is_some_and(|m| m.starts_with("MSTL")));
    let bound = |name: &str| forecast[name].as_f64().unwrap_or(f64::NAN);
    assert!(
        0.0 <= bound("low95")
            && bound("low95") <= bound("low80")
            && bound("low80") <= bound("value")
            && bound("value") <= bound("high80")
            && bound("high80") <= bound("high95")
            && bound("high95") <= 100.0,
        "{forecast}"
    );

    // The same forecast from the API's own monthly take-up.
    let months = get(
        &client,
        &format!(
            "{api}/api/v1/kpi/digital-take-up?council={COUNCIL}&from=2024-04-01&to=2026-09-30&period=month"
        ),
    )
    .await?;
    let history: Vec<f64> = months["rows"]
        .as_array()
        .context("rows")?
        .iter()
        .map(|row| row["value"].as_f64().context("a monthly value"))
        .collect::<Result<_>>()?;
    assert_eq!(history.len(), 30);
    let Outlook::Forecast(expected) = year_end(&history, 6, Accrual::Level, 0.0)? else {
        panic!("30 months are enough to forecast 6 ahead");
    };
    let end = expected.year_end().context("a year end")?;
    assert!((bound("value") - end.value.clamp(0.0, 100.0)).abs() < 1e-9);
    assert!((bound("backtest_mae") - expected.backtest_mae).abs() < 1e-9);

    // Savings: the months with contacts only (not £0 for the months before
    // the data began), summed to the year's end from the year so far.
    let savings = headline(&scorecard, "efficiency-savings")?;
    assert_eq!(savings["forecast"]["history_months"], 30, "{savings}");
    assert_eq!(savings["forecast"]["backtests"], 13);
    let so_far = savings["value"].as_f64().context("savings so far")?;
    let path = savings["forecast"]["path"].as_array().context("path")?;
    assert!(
        path.first()
            .and_then(|month| month["value"].as_f64())
            .is_some_and(|first| first > so_far),
        "October adds to the savings of April to September ({so_far}): {savings}"
    );
    // Not a forecast KPI: neither.
    let response_rate = headline(&scorecard, "response-rate")?;
    assert!(response_rate["forecast"].is_null() && response_rate["forecast_note"].is_null());

    // The first quarter ended in June: no forecast was made from history
    // to June or before, so its scorecard has none, and says so.
    let first_quarter = get(
        &client,
        &format!("{api}/api/v1/scorecard?council={COUNCIL}&period=quarter&date=2026-05-15"),
    )
    .await?;
    let take_up = headline(&first_quarter, "digital-take-up")?;
    assert!(take_up["forecast"].is_null());
    assert!(take_up["forecast_note"]
        .as_str()
        .is_some_and(|n| n.starts_with("none is stored")));

    // A forecast from history to August is kept beside September's: each
    // reader takes the latest history it may use.
    let august = NaiveDate::from_ymd_opt(2026, 8, 1).context("a date")?;
    channelshift_api::forecast_councils(
        &writer,
        &councils,
        std::slice::from_ref(&council),
        august,
        made_at,
    )
    .await?;
    let stored = writer
        .forecasts(
            &council,
            NaiveDate::from_ymd_opt(2027, 3, 31).context("a date")?,
            september,
            made_at,
        )
        .await?
        .context("stored forecasts")?;
    assert_eq!(stored.history_to, september, "the latest history is taken");
    let in_august = writer
        .forecasts(
            &council,
            NaiveDate::from_ymd_opt(2027, 3, 31).context("a date")?,
            august,
            made_at,
        )
        .await?
        .context("stored forecasts")?;
    assert_eq!(in_august.history_to, august);
    assert!(in_august
        .records
        .iter()
        .any(|record| record.kpi == "digital-take-up" && record.value.is_some()));

    // The pack of the quarter, as of now: the forecast in words, drawn on
    // the trend chart, and in the workbook's sheet of forecasts.
    let policy = channelshift_reports::policy::Policy::new(&kpi)?;
    let period = channelshift_kpi::period::Period::containing(
        channelshift_kpi::period::PeriodKind::FinancialQuarter,
        NaiveDate::from_ymd_opt(2026, 8, 15).context("a date")?,
    )?;
    let pack = channelshift_packs::build(
        &writer,
        &policy,
        channelshift_packs::Scope {
            council: &council,
            period,
            as_of: channelshift_store::CutOff(chrono::Utc::now().timestamp()),
            previous_as_of: None,
        },
    )
    .await?;
    let pdf = channelshift_packs::pdf::PdfSettings::new(&Default::default());
    let html = String::from_utf8(
        channelshift_packs::render(&pack, channelshift_packs::Format::Html, &pdf).await?,
    )?;
    let sentence = format!(
        "On course for {:.1}% by March 2027 (95% range {:.1}% to {:.1}%",
        bound("value"),
        bound("low95"),
        bound("high95")
    );
    assert!(html.contains(&sentence), "{sentence:?} in the report");
    assert!(
        html.contains(">Mar 27</text>") && html.contains(">Forecast</text>"),
        "the projection on the trend chart"
    );
    assert!(
        html.contains("On course to save £"),
        "savings to the year's end"
    );
    let xlsx = channelshift_packs::render(&pack, channelshift_packs::Format::Xlsx, &pdf).await?;
    let mut book: calamine::Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(xlsx))?;
    let range = calamine::Reader::worksheet_range(&mut book, "Year-end forecast")?;
    let take_up_row = range
        .rows()
        .find(|row| row.first().is_some_and(|cell| *cell == "digital-take-up"))
        .context("take-up's forecast row")?;
    let forecast_cell = take_up_row.get(3).and_then(calamine::DataType::get_float);
    assert_eq!(forecast_cell, Some(bound("value")));

    server.stop().await?;
    ingest.stop().await?;
    Ok(())
}
