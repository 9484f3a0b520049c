//! The KPI API: authenticated JSON over the ClickHouse rollups, plus the open
//! operator endpoints. `router` builds the whole app, so tests can drive it
//! in-process; `serve` serves it within the configured limits; `run` wires
//! both to the configuration.

pub mod answers;
pub mod auth;
pub mod cancel;
pub mod config;
pub mod error;
pub mod kpi;
mod metrics;
pub mod openapi;
pub mod opportunity;
pub mod pack;
pub mod query;
pub mod request;
pub mod scorecard;

use anyhow::{Context, Result};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use channelshift_contract::CouncilCode;
use channelshift_reports::calendar::Calendar;
use channelshift_reports::Councils;
use channelshift_runtime::health::Health;
use channelshift_runtime::ops;
use channelshift_runtime::shutdown::Shutdown;
use channelshift_store::Store;
use config::{ApiConfig, ServerLimits, TlsConfig};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use prometheus::Registry;
use sha2::Digest;
use std::sync::Arc;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub token_hashes: Arc<Vec<String>>,
    /// Each council's settings, which its figures are computed under.
    pub councils: Arc<Councils>,
    /// Renders the packs asked for, each in a `channelshift-packs` process.
    pub packs: pack::Renderer,
    /// The reporting calendar, for a pack's previous as-of.
    pub calendar: Arc<Calendar>,
    /// KPI and scorecard answers, given again while ingest stores nothing new.
    pub answers: Arc<answers::Answers<channelshift_store::DataVersion>>,
}

impl AppState {
    pub fn new(config: &ApiConfig, store: Store) -> Result<Self> {
        let token_hashes = auth::accepted_hashes(&config.auth)?;

        let packs = pack::Renderer::new(&store, &config.clickhouse, &config.query, &config.packs);
        let councils = Councils::new(&config.kpi, &config.councils)?;
        if councils.default_policy().suppression.threshold == 0 {
            tracing::warn!("kpi.suppression_threshold is 0: small numbers will not be suppressed");
        }
        for (council, policy) in councils.configured() {
            if policy.suppression.threshold == 0 {
                tracing::warn!(%council, "the council's suppression_threshold is 0: its small numbers will not be suppressed");
            }
        }
        let calendar = Calendar::new(&config.packs.calendar)?;
        councils.check_calendar(&calendar)?;
        Ok(Self {
            store,
            token_hashes: Arc::new(token_hashes),
            councils: Arc::new(councils),
            packs,
            calendar: Arc::new(calendar),
            answers: Arc::new(answers::Answers::new(std::time::Duration::from_secs(
                config.server.answer_cache_seconds,
            ))?),
        })
    }
}

/// The whole application: `/api/v1/*` behind a bearer token, operator
/// endpoints open, request metrics on everything, and every request bounded
/// in time and body size by `limits`.
pub fn router(
    state: AppState,
    registry: &Registry,
    health: Health,
    limits: &ServerLimits,
) -> Result<Router> {
    let request_metrics = metrics::RequestMetrics::register(registry)?;
    state.answers.register(registry)?;
    let api = Router::new()
        .route(openapi::KPI_ROUTE, get(kpi::get_kpi))
        .route(openapi::SCORECARD_ROUTE, get(scorecard::get_scorecard))
        .route(openapi::PACK_ROUTE, get(pack::get_pack))
        .route(
            openapi::OPPORTUNITY_ROUTE,
            get(opportunity::get_opportunities),
        )
        .route(openapi::BENCHMARKS_ROUTE, get(scorecard::get_benchmarks))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .with_state(state);
    let open = Router::new().route(openapi::OPENAPI_ROUTE, get(openapi::get_openapi));
    Ok(api
        .merge(open)
        .merge(ops::router(registry.clone(), health))
        // A request the store cannot answer in time is the server's failure: 503.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            limits.request_timeout(),
        ))
        .layer(RequestBodyLimitLayer::new(limits.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            request_metrics,
            metrics::record,
        )))
}

/// Serves the API on `config.listen` until `shutdown`.
pub async fn run(config: ApiConfig, shutdown: Shutdown) -> Result<()> {
    config.server.checked()?;
    config.query.checked().map_err(anyhow::Error::msg)?;
    let store = Store::connect(&config.clickhouse)
        .await
        .context("connecting to ClickHouse")?
        .limited(&config.query);
    let health = Health::new();
    health.set("clickhouse", true);
    let registry = Registry::new();
    let state = AppState::new(&config, store.clone())?;
    watch_definitions(&state, &registry, shutdown.clone())?;
    let app = router(state, &registry, health.clone(), &config.server)?;
    spawn_store_probe(store, health, shutdown.clone());

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let tls = config.tls.as_ref().map(TlsConfig::acceptor).transpose()?;
    tracing::info!(
        address = %listener.local_addr()?,
        https = tls.is_some(),
        "KPI API listening"
    );
    serve(listener, app, &config.server, tls, shutdown.requested()).await;
    Ok(())
}

/// Serves `app` over HTTP/1 until `stop` completes, then lets requests in
/// flight finish for at most the request timeout.
///
/// Not `axum::serve`: it gives hyper no timer, so a client that never
/// finishes its headers would hold its connection (and a task) forever. Here
/// hyper closes a connection whose request head has not arrived within
/// `header_read_timeout` (idle keep-alive connections included) and answers
/// 431 to a head larger than `max_header_bytes`.
///
/// With `tls`, each connection's TLS handshake must also end within
/// `header_read_timeout`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: &ServerLimits,
    tls: Option<tokio_rustls::TlsAcceptor>,
    stop: impl std::future::Future<Output = ()>,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout())
        .max_buf_size(limits.max_header_bytes.max(8192));
    let connections = GracefulShutdown::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors, most likely: back off, keep serving.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let service = TowerToHyperService::new(app.clone());
        let Some(acceptor) = tls.clone() else {
            let connection =
                connections.watch(http.serve_connection(TokioIo::new(stream), service));
            tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::debug!(%error, "connection ended with an error");
                }
            });
            continue;
        };
        let (http, watcher) = (http.clone(), connections.watcher());
        let handshake_timeout = limits.header_read_timeout();
        tokio::spawn(async move {
            let stream =
                match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(error)) => {
                        tracing::debug!(%error, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!("TLS handshake timed out");
                        return;
                    }
                };
            let connection = watcher.watch(http.serve_connection(TokioIo::new(stream), service));
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.request_timeout(), connections.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the request timeout; stopping anyway");
    }
}

/// The fingerprint of the councils' definitions: SHA-256 (hex) of their
/// JSON, recorded with each publication so the API can tell whether the
/// dashboards compute with its own.
pub fn definitions_fingerprint(councils: &Councils) -> String {
    let json = serde_json::to_string(&councils.definitions()).unwrap_or_default();
    hex::encode(sha2::Sha256::digest(json.as_bytes()))
}

/// `channelshift-api publish-definitions`: writes each configured council's
/// definitions to ClickHouse for the dashboards; returns the generation.
/// Needs a ClickHouse user that may write the rollups' database.
pub async fn publish_definitions(config: &ApiConfig) -> Result<u64> {
    let councils = Councils::new(&config.kpi, &config.councils)?;
    anyhow::ensure!(
        councils.configured().next().is_some(),
        "no [councils.<GSS>] block is configured: the dashboards list only configured councils"
    );
    let store = Store::connect(&config.clickhouse)
        .await
        .context("connecting to ClickHouse")?;
    let generation = store
        .publish_definitions(&councils.definitions(), &definitions_fingerprint(&councils))
        .await
        .context("writing the definitions (the ClickHouse user must be able to write the rollups' database)")?;
    Ok(generation)
}

/// The councils a nightly job runs for: the configured ones, or with none
/// configured every council with contacts (in `journey_days`).
async fn nightly_councils(councils: &Councils, store: &Store) -> Result<Vec<CouncilCode>> {
    let mut codes: Vec<CouncilCode> = councils
        .configured()
        .map(|(code, _)| code.clone())
        .collect();
    if codes.is_empty() {
        for code in store.councils_with_journeys().await? {
            codes.push(
                CouncilCode::parse(&code)
                    .with_context(|| format!("a council code in journey_days: {code}"))?,
            );
        }
    }
    Ok(codes)
}

/// `channelshift-api settle-journeys`: judges each council's settled days
/// of first-contact resolution not yet stored (or whose contacts changed)
/// and stores them, so that packs and a restarted API read them instead of
/// judging them again; judged at `judged_at` (Unix seconds), with each
/// council's repeat window. The configured councils, or with none configured
/// every council with contacts, under `[kpi]`. Calls `progress` after each
/// month judged. Needs a ClickHouse user that may write the rollups'
/// database.
pub async fn settle_journeys(
    config: &ApiConfig,
    judged_at: i64,
    mut progress: impl FnMut(&CouncilCode, chrono::NaiveDate, usize),
) -> Result<Vec<(CouncilCode, channelshift_store::SettledJourneysReport)>> {
    let councils = Councils::new(&config.kpi, &config.councils)?;
    let store = Store::connect(&config.clickhouse)
        .await
        .context("connecting to ClickHouse")?;
    let windows: Vec<(CouncilCode, u32)> = nightly_councils(&councils, &store)
        .await?
        .into_iter()
        .map(|code| {
            let window = councils
                .policy(&code)
                .map(|policy| policy.repeat_window_days);
            window.map(|window| (code, window))
        })
        .collect::<Result<_, _>>()?;
    let mut reports = Vec::with_capacity(windows.len());
    for (council, window) in windows {
        let report = store
            .settle_journeys(&council, window, judged_at, |month, days| {
                progress(&council, month, days)
            })
            .await
            .with_context(|| {
                format!(
                    "settling {council}'s journeys (the ClickHouse user must be able to write the rollups' database)"
                )
            })?;
        reports.push((council, report));
    }
    Ok(reports)
}

/// `channelshift-api forecast`: makes and stores each council's year-end
/// forecasts of the headline KPIs from its history to the month starting
/// `history_to` (any day of it), made at `made_at` (Unix seconds). The
/// configured councils, or with none configured every council with
/// contacts. Needs a ClickHouse user that may write the rollups' database.
pub async fn forecast(
    config: &ApiConfig,
    history_to: chrono::NaiveDate,
    made_at: i64,
) -> Result<Vec<(CouncilCode, channelshift_store::StoredForecasts)>> {
    let councils = Councils::new(&config.kpi, &config.councils)?;
    let store = Store::connect(&config.clickhouse)
        .await
        .context("connecting to ClickHouse")?;
    let codes = nightly_councils(&councils, &store).await?;
    forecast_councils(&store, &councils, &codes, history_to, made_at).await
}

/// Makes and stores the forecasts of each of `codes` under `councils`'
/// policies, as [`forecast`] does with a store of its own.
pub async fn forecast_councils(
    store: &Store,
    councils: &Councils,
    codes: &[CouncilCode],
    history_to: chrono::NaiveDate,
    made_at: i64,
) -> Result<Vec<(CouncilCode, channelshift_store::StoredForecasts)>> {
    let mut made = Vec::with_capacity(codes.len());
    for council in codes {
        let policy = councils.policy(council)?;
        let forecasts =
            channelshift_reports::forecast::make(store, &policy, council, history_to, made_at)
                .await
                .with_context(|| format!("forecasting {council}'s year end"))?;
        store
            .store_forecasts(council, &forecasts)
            .await
            .with_context(|| {
                format!(
                    "storing {council}'s forecasts (the ClickHouse user must be able to write the rollups' database)"
                )
            })?;
        made.push((council.clone(), forecasts));
    }
    Ok(made)
}

/// `channelshift-api load-imd`: reads a council's IMD lookup (CSV: LSOA
/// code, decile 1 to 10; an optional header row) and loads it; returns how
/// many LSOAs. Every row is checked first: a bad one, named by its line,
/// loads nothing.
pub async fn load_imd(config: &ApiConfig, file: &std::path::Path) -> Result<u64> {
    let deciles = read_imd_lookup(file)?;
    let store = Store::connect(&config.clickhouse)
        .await
        .context("connecting to ClickHouse")?;
    store.load_imd_deciles(&deciles).await.context(
        "loading the IMD lookup (the ClickHouse user must be able to write the rollups' database)",
    )
}

/// The (LSOA code, decile) pairs of an IMD lookup file.
pub fn read_imd_lookup(file: &std::path::Path) -> Result<Vec<(String, u8)>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_path(file)
        .with_context(|| format!("reading {}", file.display()))?;
    let mut deciles = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let line = index + 1;
        let record = record.with_context(|| format!("{}: line {line}", file.display()))?;
        let code = record
            .get(0)
            .unwrap_or_default()
            .trim_start_matches('\u{feff}');
        let decile = record.get(1).unwrap_or_default();
        if line == 1 && decile.parse::<u8>().is_err() {
            continue; // a header row
        }
        let shaped = code.len() == 9
            && (code.starts_with("E01") || code.starts_with("W01"))
            && code[3..].bytes().all(|byte| byte.is_ascii_digit());
        anyhow::ensure!(
            shaped,
            "{}: line {line}: {code:?} is not an LSOA code (E01 or W01 and six digits)",
            file.display()
        );
        let decile: u8 = decile
            .parse()
            .ok()
            .filter(|decile| (1..=10).contains(decile))
            .with_context(|| {
                format!(
                    "{}: line {line}: the decile {decile:?} is not a whole number from 1 to 10",
                    file.display()
                )
            })?;
        deciles.push((code.to_string(), decile));
    }
    anyhow::ensure!(
        !deciles.is_empty(),
        "{}: no LSOA in the file",
        file.display()
    );
    Ok(deciles)
}

/// Checks every five seconds, until `shutdown`, that ClickHouse holds the
/// definitions of `state`'s councils (`publish-definitions`), so the
/// dashboards compute as the API does: the gauge
/// `channelshift_api_definitions_published` (registered in `registry`) is 1
/// while they are, and a warning is logged when they stop being.
pub fn watch_definitions(state: &AppState, registry: &Registry, shutdown: Shutdown) -> Result<()> {
    let published = prometheus::IntGauge::new(
        "channelshift_api_definitions_published",
        "1 when ClickHouse holds this API's KPI definitions (channelshift-api publish-definitions), so the dashboards compute as the API does; 0 when they differ or cannot be read",
    )?;
    registry.register(Box::new(published.clone()))?;
    let fingerprint = definitions_fingerprint(&state.councils);
    let store = state.store.clone();
    tokio::spawn(async move {
        let mut warned = false;
        while !shutdown.is_requested() {
            let current = matches!(
                store.published_definitions().await,
                Ok(Some(ref published)) if *published == fingerprint
            );
            published.set(i64::from(current));
            if !current && !warned {
                tracing::warn!(
                    "the KPI definitions in ClickHouse are not this configuration's: the dashboards compute with others until `channelshift-api publish-definitions` runs with this configuration"
                );
            }
            warned = !current;
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        }
    });
    Ok(())
}

/// Keeps the readiness flag for ClickHouse current.
fn spawn_store_probe(store: Store, health: Health, shutdown: Shutdown) {
    tokio::spawn(async move {
        while !shutdown.is_requested() {
            health.set("clickhouse", store.ping().await);
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use channelshift_kpi::channel::Channel;
    use chrono::NaiveDate;

    #[test]
    fn the_example_configuration_is_valid() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/api.example.toml");
        let config: ApiConfig =
            channelshift_runtime::config::load(Some(&path)).expect("the example parses");
        let kpi = &config.kpi;
        assert_eq!(kpi.targets.len(), 8);
        let costs = kpi.unit_costs().expect("unit costs parse");
        let day = NaiveDate::from_ymd_opt(2025, 6, 1).expect("valid date");
        assert_eq!(
            costs.cost_on(Channel::Phone, day).map(|pence| pence.0),
            Some(283)
        );
        assert!(kpi.baseline().expect("baseline is ordered").is_some());
        kpi.channel_classes().expect("channel classes parse");
        kpi.take_up_definition().expect("definition parses");
        config.server.checked().expect("server limits are usable");
        assert_eq!(
            config.server,
            ServerLimits::default(),
            "the example shows the defaults"
        );
        assert!(config.auth.revoked_sha256.is_empty());
        let councils = Councils::new(&config.kpi, &config.councils).expect("councils are valid");
        let code = |text: &str| channelshift_contract::CouncilCode::parse(text).expect("a code");
        let exeter = councils.policy(&code("E07000041")).expect("configured");
        let east_devon = councils.policy(&code("E07000040")).expect("configured");
        assert_eq!(exeter.label("E07000041"), "Exeter City Council (E07000041)");
        use channelshift_kpi::catalogue::Kpi;
        assert_eq!(exeter.targets[&Kpi::DigitalTakeUp].target(), 45.0);
        assert_eq!(east_devon.targets[&Kpi::DigitalTakeUp].target(), 50.0);
        assert_eq!(east_devon.targets[&Kpi::CompletionRate].target(), 85.0);
        let april_2026 = NaiveDate::from_ymd_opt(2026, 4, 1).expect("valid date");
        assert_eq!(
            east_devon
                .unit_costs
                .cost_on(Channel::Phone, april_2026)
                .map(|pence| pence.0),
            Some(345)
        );
        assert_eq!(east_devon.suppression.threshold, 5);
        assert!(exeter.settings.benchmarking && east_devon.settings.benchmarking);
        assert_eq!(
            exeter.opportunity,
            channelshift_kpi::opportunity::OpportunityRules::default(),
            "the example shows the opportunity defaults"
        );
        let calendar =
            Calendar::new(&config.packs.calendar).expect("the example calendar is valid");
        assert_eq!(calendar.entries.len(), 2);
        assert_eq!(calendar.entries[0].period.label(), "2026-27 Q1");
        assert_eq!(
            calendar.previous_as_of("E07000041", calendar.entries[1].as_of),
            Some(calendar.entries[0].as_of)
        );
    }

    #[test]
    fn an_imd_lookup_with_a_bad_code_or_decile_is_refused_naming_its_line() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let file = dir.path().join("imd.csv");
        for (text, says) in [
            (
                "E01000001,3\nE0100000X,4\n",
                "line 2: \"E0100000X\" is not an LSOA code",
            ),
            ("E01000001,0\n", "line 1: the decile \"0\""),
            ("LSOA,decile\n", "no LSOA"),
        ] {
            std::fs::write(&file, text).expect("written");
            let error = read_imd_lookup(&file).expect_err("refused");
            assert!(format!("{error:#}").contains(says), "{error:#}: {says}");
        }
        std::fs::write(&file, "W01000005, 10\n").expect("written");
        assert_eq!(
            read_imd_lookup(&file).expect("a Welsh LSOA"),
            [("W01000005".to_string(), 10)]
        );
    }

    #[test]
    fn an_opportunity_setting_out_of_range_is_refused_naming_it() {
        for (setting, says) in [
            (
                serde_json::json!({"target_assisted_share": 1.5}),
                "target_assisted_share is 1.5",
            ),
            (
                serde_json::json!({"peer_volume_ratio": 0.5}),
                "peer_volume_ratio is 0.5",
            ),
            (serde_json::json!({"min_peers": 1}), "min_peers is 1"),
            (
                serde_json::json!({"satisfaction_gap_points": -1.0}),
                "satisfaction_gap_points is -1",
            ),
        ] {
            let settings: config::KpiSettings =
                serde_json::from_value(serde_json::json!({ "opportunity": setting }))
                    .expect("parses");
            let error = channelshift_reports::Policy::new(&settings).expect_err("refused");
            assert!(format!("{error:#}").contains(says), "{error:#}: {says}");
        }
    }

    #[test]
    fn a_target_for_an_unknown_kpi_is_refused() {
        let settings = serde_json::json!({"targets": {"digital-takeup": {
            "target": 45.0, "tolerance": 5.0, "polarity": "higher_is_better"
        }}});
        let error =
            serde_json::from_value::<config::KpiSettings>(settings).expect_err("typo refused");
        assert!(error.to_string().contains("digital-takeup"), "{error}");
    }
}
