//! No one reads what they should not, and no request can break or hold the
//! API: missing, wrong and revoked tokens get a bare 401; hostile values in
//! every parameter get a 400 or a correct empty answer, never a 5xx or a
//! ClickHouse message; the API's ClickHouse user cannot write; slow, idle
//! and oversized clients are cut off while everyone else is served.

use anyhow::{Context, Result};
use channelshift_api::config::ServerLimits;
use channelshift_kpi::catalogue::Kpi;
use channelshift_store::QueryLimits;
use channelshift_tests::api_process::{ApiOptions, ApiProcess};
use channelshift_tests::checks::{contact_totals, satisfaction_totals};
use channelshift_tests::kafka::produce_all;
use channelshift_tests::{
    contact_events, create_topics, eventually, producer, satisfaction_responses, start_api,
    start_ingest, Scope, API_TOKEN,
};
use futures::StreamExt;
use reqwest::{StatusCode, Url};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const COUNCIL: &str = "E07000041";

/// Text that would mean the store's internals reached a client.
const STORE_MARKERS: &[&str] = &[
    "DB::Exception",
    "Code: ",
    "Syntax error",
    "ClickHouse",
    "clickhouse",
    "channelshift_reader",
    "cs_test_",
    "password",
    "Stack trace",
];

/// The only body a refused request gets.
fn unauthorized_body() -> Value {
    json!({"error": "unauthorized", "message": "a valid bearer token is required"})
}

/// Stores 60 contacts and 30 responses for `COUNCIL` through Kafka and ingest,
/// so a leak of data would have something to leak.
async fn scope_with_data(test: &str) -> Result<Scope> {
    let scope = Scope::new(test);
    create_topics(&scope).await?;
    let ingest = start_ingest(scope.ingest_config());
    let producer = producer(&scope)?;
    produce_all(&producer, &scope.contact_topic, &contact_events("c", 0..60)).await?;
    produce_all(
        &producer,
        &scope.satisfaction_topic,
        &satisfaction_responses("r", 0..30),
    )
    .await?;
    let store = scope.store().await?;
    // The materialized views fill the rollups the API reads as rows land.
    // (Each count is its own query: current servers type a scalar subquery
    // `Nullable`, which a `u64` field would not read.)
    eventually(
        "contacts and responses stored",
        Duration::from_secs(90),
        || {
            let store = store.clone();
            async move {
                let contacts = contact_totals(&store).await?.rollup_contacts;
                let (responses, _) = satisfaction_totals(&store).await?;
                Ok((contacts == 60 && responses == 30).then_some(()))
            }
        },
    )
    .await?;
    ingest.stop().await?;
    Ok(scope)
}

async fn get(
    client: &reqwest::Client,
    url: Url,
    token: Option<&str>,
) -> Result<(StatusCode, String)> {
    let mut request = client.get(url.clone());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.with_context(|| format!("GET {url}"))?;
    let status = response.status();
    Ok((status, response.text().await?))
}

fn url(base: &str, path: &str, query: &[(&str, &str)]) -> Result<Url> {
    let mut url = Url::parse(&format!("{base}{path}"))?;
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    Ok(url)
}

/// A data request for every route, valid apart from the token.
fn data_requests(base: &str) -> Result<Vec<Url>> {
    let range = [
        ("council", COUNCIL),
        ("from", "2025-01-01"),
        ("to", "2025-12-31"),
    ];
    let mut urls = Vec::new();
    for kpi in Kpi::ALL {
        urls.push(url(base, &format!("/api/v1/kpi/{kpi}"), &range)?);
    }
    urls.push(url(base, "/api/v1/kpi/no-such-kpi", &range)?);
    urls.push(url(
        base,
        "/api/v1/scorecard",
        &[("council", COUNCIL), ("date", "2025-06-30")],
    )?);
    urls.push(url(
        base,
        "/api/v1/exports/pack",
        &[("council", COUNCIL), ("date", "2025-06-30")],
    )?);
    Ok(urls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_a_valid_token_get_a_bare_401() -> Result<()> {
    let scope = scope_with_data("auth").await?;
    let revoked = "a-token-that-leaked-and-was-revoked";
    let api = ApiProcess::api(
        "api-auth",
        &scope,
        &ApiOptions {
            tokens: vec![API_TOKEN.to_string(), revoked.to_string()],
            revoked: vec![revoked.to_string()],
            ..ApiOptions::default()
        },
    )
    .await?;
    let client = reqwest::Client::new();

    // The data is there: the right token reads it.
    let (status, body) = get(
        &client,
        url(
            &api.base_url,
            "/api/v1/kpi/channel-mix",
            &[
                ("council", COUNCIL),
                ("from", "2025-01-01"),
                ("to", "2025-12-31"),
            ],
        )?,
        Some(API_TOKEN),
    )
    .await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    let body: Value = serde_json::from_str(&body)?;
    assert!(
        !body["rows"].as_array().context("rows")?.is_empty(),
        "the test data is visible with the right token: {body}"
    );

    let bearer = |token: &str| format!("Bearer {token}");
    let refused: Vec<(&str, Option<Vec<u8>>)> = vec![
        ("no Authorization header", None),
        ("empty header", Some(Vec::new())),
        ("scheme only", Some(b"Bearer".to_vec())),
        ("scheme and a space", Some(b"Bearer ".to_vec())),
        ("wrong token", Some(bearer("not-the-token").into_bytes())),
        ("revoked token", Some(bearer(revoked).into_bytes())),
        (
            "token with a suffix",
            Some(bearer(&format!("{API_TOKEN}x")).into_bytes()),
        ),
        (
            "token's prefix",
            Some(bearer(&API_TOKEN[..10]).into_bytes()),
        ),
        (
            "token's hash",
            Some(bearer(&hex_sha256(API_TOKEN)).into_bytes()),
        ),
        (
            "Basic scheme with the token",
            Some(format!("Basic {API_TOKEN}").into_bytes()),
        ),
        ("no scheme", Some(API_TOKEN.as_bytes().to_vec())),
        (
            "injection as token",
            Some(bearer("' OR 1=1 --").into_bytes()),
        ),
        (
            "non-ASCII bytes",
            Some(b"Bearer \xff\xfe\x80token".to_vec()),
        ),
        (
            "huge token",
            Some(bearer(&"t".repeat(16 * 1024)).into_bytes()),
        ),
    ];
    for target in data_requests(&api.base_url)? {
        for (case, header) in &refused {
            let mut request = client.get(target.clone());
            if let Some(header) = header {
                request = request.header(
                    reqwest::header::AUTHORIZATION,
                    reqwest::header::HeaderValue::from_bytes(header)?,
                );
            }
            let response = request.send().await?;
            let status = response.status();
            let challenge = response
                .headers()
                .get(reqwest::header::WWW_AUTHENTICATE)
                .cloned();
            let text = response.text().await?;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{case}: GET {target}: {text}"
            );
            assert_eq!(
                serde_json::from_str::<Value>(&text).ok(),
                Some(unauthorized_body()),
                "{case}: GET {target}: the body says nothing but that a token is needed"
            );
            assert_eq!(
                challenge.as_ref().map(|v| v.as_bytes()),
                Some(&b"Bearer"[..])
            );
        }
        // A token in the query string is not a token.
        let mut in_query = target.clone();
        in_query
            .query_pairs_mut()
            .append_pair("access_token", API_TOKEN);
        let (status, _) = get(&client, in_query, None).await?;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "token in the query: {target}"
        );
    }
    // The scheme name's case does not matter (RFC 7235), and the open document holds no data.
    let (status, _) = get(
        &client,
        url(&api.base_url, "/api/v1/openapi.json", &[])?,
        None,
    )
    .await?;
    assert_eq!(status, StatusCode::OK);
    let response = client
        .get(url(
            &api.base_url,
            "/api/v1/kpi/digital-take-up",
            &[
                ("council", COUNCIL),
                ("from", "2025-01-01"),
                ("to", "2025-12-31"),
            ],
        )?)
        .header("authorization", format!("bEaReR {API_TOKEN}"))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    drop(api);
    scope.drop_database().await
}

fn hex_sha256(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

/// Hostile values: SQL and formula injection, escapes, NUL, unusual Unicode,
/// format strings, numbers and dates out of range, separators, sheer size.
fn hostile_values() -> Vec<String> {
    let mut values: Vec<String> = [
        "'",
        "\"",
        "`",
        "' OR 1=1 --",
        "' OR '1'='1",
        "1 OR 1=1",
        "E07000041' OR '1'='1",
        "E07000041') OR 1=1 --",
        "'; DROP TABLE contact_events; --",
        "1; SELECT * FROM system.users",
        "' UNION SELECT name FROM system.tables --",
        "E07000041' UNION ALL SELECT * FROM system.processes --",
        "\\",
        "\\'",
        "E07000041\\",
        "\0",
        "E07000041\0",
        "\0' OR 1=1 --",
        "%00",
        "%27%20OR%201%3D1",
        "\r\nX-Injected: 1",
        "\u{ff45}\u{ff10}\u{ff17}\u{ff10}\u{ff10}\u{ff10}\u{ff10}\u{ff14}\u{ff11}",
        "E07000041\u{202e}",
        "\u{feff}E07000041",
        "e07000041",
        "\u{1f4a5}",
        "\u{3a9}\u{2248}\u{e7}\u{221a}",
        "%s%s%s%s%n",
        "%x%x%x%x",
        "{0}",
        "{}",
        "${jndi:ldap://127.0.0.1/a}",
        "{{7*7}}",
        "<script>alert(1)</script>",
        "=HYPERLINK(\"http://example.invalid\",\"x\")",
        "../../../../etc/passwd",
        "-1",
        "0",
        "99999999999999999999",
        "1e308",
        "NaN",
        "-0",
        "9999-12-31",
        "0000-01-01",
        "1969-12-31",
        "2025-02-30",
        "2025-01-01T00:00:00Z",
        "2025-01-01' OR '1'='1",
        "",
        " ",
        ",",
        ",,,",
        "day,week",
        "service,service",
        "channel,channel_class",
        "ward,lsoa",
        "union_select_1",
        "SETTINGS readonly=0",
        "FORMAT JSON",
    ]
    .iter()
    .map(|value| value.to_string())
    .collect();
    values.push("x".repeat(10_000));
    values.push("'".repeat(5_000));
    values
}

/// What a fuzzed request may get: 400 (or 404 for a KPI name) with a JSON
/// error, or 200 with an answer that holds no data (nothing matches a hostile
/// value); never a 5xx, never the store's words.
fn check_answer(what: &str, status: StatusCode, body: &str, filter: bool) {
    assert!(
        !status.is_server_error(),
        "{what}: {status} (a hostile value must not fail the server): {body:.400}"
    );
    for marker in STORE_MARKERS {
        assert!(
            !body.contains(marker),
            "{what}: the body holds {marker:?}: {body:.400}"
        );
    }
    match status {
        StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND => {
            // axum's own extractor rejections are plain text; ours are JSON.
            if let Ok(error) = serde_json::from_str::<Value>(body) {
                assert!(error["error"].is_string(), "{what}: {body:.400}");
            }
        }
        StatusCode::OK if filter => {
            let body: Value = serde_json::from_str(body).expect("a 200 answer is JSON");
            let rows = body["rows"].as_array().expect("a KPI answer has rows");
            for row in rows {
                for figure in ["n", "numerator"] {
                    assert!(
                        row[figure].is_null() || row[figure] == json!(0),
                        "{what}: a hostile filter value matched data: {row}"
                    );
                }
            }
        }
        StatusCode::OK => {}
        other => panic!("{what}: unexpected {other}: {body:.400}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_values_in_any_parameter_get_400_or_an_empty_answer() -> Result<()> {
    let scope = scope_with_data("fuzzparams").await?;
    let (base, server) = start_api(&scope, 10).await?;
    let client = reqwest::Client::new();
    let values = hostile_values();

    // (path, valid parameters, parameters to fuzz, which of them are filters)
    let range = vec![
        ("council", COUNCIL),
        ("from", "2025-01-01"),
        ("to", "2025-12-31"),
    ];
    let kpi_params = [
        "council",
        "from",
        "to",
        "period",
        "group_by",
        "service",
        "channel",
        "customer_type",
        "instrument",
    ];
    let filters = ["service", "channel", "customer_type", "instrument"];
    let mut cases: Vec<(String, Url, bool)> = Vec::new();
    for kpi in Kpi::ALL {
        let path = format!("/api/v1/kpi/{kpi}");
        for param in kpi_params {
            for value in &values {
                let mut query: Vec<(&str, &str)> =
                    range.iter().copied().filter(|(k, _)| *k != param).collect();
                query.push((param, value));
                cases.push((
                    format!("{path} {param}={value:.40?}"),
                    url(&base, &path, &query)?,
                    filters.contains(&param),
                ));
            }
        }
    }
    // The KPI name in the path, and a parameter whose name is hostile.
    for value in &values {
        let mut target = Url::parse(&format!("{base}/api/v1/kpi/"))?;
        target
            .path_segments_mut()
            .map_err(|()| anyhow::anyhow!("base URL"))?
            .pop()
            .push(value);
        target.query_pairs_mut().extend_pairs(&range);
        cases.push((format!("kpi name {value:.40?}"), target, false));
        let mut query = range.clone();
        query.push((value, "1"));
        cases.push((
            format!("parameter named {value:.40?}"),
            url(&base, "/api/v1/kpi/digital-take-up", &query)?,
            false,
        ));
    }
    // A repeated parameter: the hostile copy must not win silently.
    cases.push((
        "council twice".into(),
        Url::parse(&format!(
            "{base}/api/v1/kpi/digital-take-up?council={COUNCIL}&from=2025-01-01&to=2025-12-31&council=%27%20OR%201%3D1%20--"
        ))?,
        false,
    ));
    for (path, params, base_query) in [
        (
            "/api/v1/scorecard",
            vec!["council", "period", "date"],
            vec![("council", COUNCIL), ("date", "2025-06-30")],
        ),
        (
            "/api/v1/exports/pack",
            vec!["council", "period", "date", "format", "as_of"],
            vec![("council", COUNCIL), ("date", "2025-06-30")],
        ),
    ] {
        for param in params {
            for value in &values {
                let mut query: Vec<(&str, &str)> = base_query
                    .iter()
                    .copied()
                    .filter(|(k, _)| *k != param)
                    .collect();
                query.push((param, value));
                cases.push((
                    format!("{path} {param}={value:.40?}"),
                    url(&base, path, &query)?,
                    false,
                ));
            }
        }
    }

    let started = Instant::now();
    let total = cases.len();
    let mut answers = futures::stream::iter(cases)
        .map(|(what, target, filter)| {
            let client = client.clone();
            async move {
                let (status, body) = get(&client, target, Some(API_TOKEN)).await?;
                anyhow::Ok((what, status, body, filter))
            }
        })
        .buffer_unordered(8);
    let mut by_status = std::collections::BTreeMap::<u16, usize>::new();
    while let Some(answer) = answers.next().await {
        let (what, status, body, filter) = answer?;
        check_answer(&what, status, &body, filter);
        *by_status.entry(status.as_u16()).or_default() += 1;
    }
    println!(
        "{total} hostile requests in {:.1}s: {by_status:?}",
        started.elapsed().as_secs_f64()
    );

    // Still serving, with the same figures as before the barrage.
    let (status, body) = get(
        &client,
        url(&base, "/api/v1/kpi/channel-mix", &range)?,
        Some(API_TOKEN),
    )
    .await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    let body: Value = serde_json::from_str(&body)?;
    let contacts: u64 = body["rows"]
        .as_array()
        .context("rows")?
        .iter()
        .filter_map(|row| row["numerator"].as_u64())
        .sum();
    assert_eq!(contacts, 60, "{body}");
    server.stop().await?;
    scope.drop_database().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_clickhouse_user_cannot_write() -> Result<()> {
    let scope = Scope::new("readonly");
    let writer = scope.store().await?;
    writer.migrate().await?;
    let reader = channelshift_store::Store::connect(&scope.reader()).await?;
    let db = &scope.database;
    let attempts = [
        format!("INSERT INTO `{db}`.contact_events (event_id) VALUES ('written-by-the-reader')"),
        format!("CREATE TABLE `{db}`.reader_table (x UInt8) ENGINE = Memory"),
        format!("CREATE DATABASE `{db}_reader`"),
        format!("DROP TABLE `{db}`.contact_events"),
        format!("DROP DATABASE `{db}`"),
        format!("TRUNCATE TABLE `{db}`.contact_events"),
        format!("ALTER TABLE `{db}`.contact_events DELETE WHERE 1"),
        format!("ALTER TABLE `{db}`.contact_events ADD COLUMN reader_column UInt8"),
        format!("RENAME TABLE `{db}`.contact_events TO `{db}`.renamed"),
        format!("OPTIMIZE TABLE `{db}`.contact_events FINAL"),
        format!("DETACH TABLE `{db}`.contact_events"),
        "SET readonly = 0".to_string(),
        format!("SELECT count() FROM `{db}`.contact_events SETTINGS readonly = 0"),
    ];
    for statement in &attempts {
        let error = match reader.client().query(statement).execute().await {
            Ok(()) => panic!("the API's ClickHouse user ran {statement:?}"),
            Err(error) => error.to_string(),
        };
        // Refused for being read-only, not for a typo in the test.
        assert!(
            error.contains("readonly") || error.contains("read-only"),
            "{statement:?} failed for another reason: {error}"
        );
    }
    // Nothing changed: the tables are all there and empty.
    #[derive(clickhouse::Row, serde::Deserialize)]
    struct Count {
        n: u64,
    }
    let rows = writer
        .client()
        .query("SELECT count() AS n FROM contact_events")
        .fetch_one::<Count>()
        .await?;
    assert_eq!(rows.n, 0);
    let tables = writer
        .client()
        .query("SELECT count() AS n FROM system.tables WHERE database = ? AND name IN ('contact_events', 'reader_table', 'renamed')")
        .bind(db.as_str())
        .fetch_one::<Count>()
        .await?;
    assert_eq!(
        tables.n, 1,
        "contact_events is still there, nothing was added"
    );
    scope.drop_database().await
}

/// Writes `bytes` one per second (none when empty: an idle client) until
/// the server closes the connection; returns how long that took. Blocking
/// sockets, one thread per client, so the client's own pace is exact.
fn hold_connection(
    address: SocketAddr,
    bytes: &'static [u8],
    give_up: Duration,
    connected: &std::sync::atomic::AtomicUsize,
) -> Result<Duration> {
    let mut stream = std::net::TcpStream::connect(address)?;
    connected.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    stream.set_read_timeout(Some(Duration::from_secs(1)))?;
    let started = Instant::now();
    let mut buffer = [0u8; 1024];
    let mut next = bytes.iter().cycle();
    loop {
        if started.elapsed() > give_up {
            anyhow::bail!("the server kept a slow or idle client for {give_up:?}");
        }
        if let Some(byte) = next.next() {
            if stream.write_all(&[*byte]).is_err() {
                return Ok(started.elapsed());
            }
        }
        // A closed connection shows as EOF or a reset; hyper may answer 408 first.
        match stream.read(&mut buffer) {
            Ok(_) => return Ok(started.elapsed()),
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Ok(started.elapsed()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_clients_are_cut_off_while_others_are_served() -> Result<()> {
    let scope = Scope::new("slowclient");
    let header_timeout = Duration::from_secs(2);
    let api = ApiProcess::api(
        "api-slow",
        &scope,
        &ApiOptions {
            limits: ServerLimits {
                header_read_timeout_ms: header_timeout.as_millis() as u64,
                ..ServerLimits::default()
            },
            ..ApiOptions::default()
        },
    )
    .await?;
    let give_up = header_timeout * 3;

    // Many slowloris connections and idle ones at once.
    let address = api.address;
    let connected = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut held = Vec::new();
    for client in 0..100 {
        let bytes: &'static [u8] = if client % 2 == 0 {
            b"GET /api/v1/openapi.json HTTP/1.1\r\nHost: x\r\nX-Slow: "
        } else {
            b""
        };
        let connected = connected.clone();
        held.push(tokio::task::spawn_blocking(move || {
            hold_connection(address, bytes, give_up, &connected)
        }));
    }
    // Every slow client is connected before the others are timed.
    eventually(
        "the 100 slow and idle clients connected",
        Duration::from_secs(10),
        || async {
            let count = connected.load(std::sync::atomic::Ordering::SeqCst);
            Ok((count == 100).then_some(()))
        },
    )
    .await?;

    // Meanwhile everyone else is served, promptly.
    let client = reqwest::Client::new();
    let served_from = Instant::now();
    while served_from.elapsed() < header_timeout + Duration::from_secs(1) {
        let asked = Instant::now();
        let response = client
            .get(format!("{}/api/v1/openapi.json", api.base_url))
            .timeout(Duration::from_secs(2))
            .send()
            .await?;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(asked.elapsed() < Duration::from_secs(1), "served slowly");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut longest = Duration::ZERO;
    for task in held {
        let held = task.await??;
        longest = longest.max(held);
    }
    println!("slow and idle connections closed after at most {longest:?}");
    assert!(
        longest >= header_timeout - Duration::from_millis(200),
        "closed before the timeout: {longest:?}"
    );
    assert!(
        longest <= header_timeout + Duration::from_millis(1500),
        "held past the header read timeout: {longest:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_overlong_requests_are_refused_not_served() -> Result<()> {
    let scope = Scope::new("limits");
    let writer = scope.store().await?;
    writer.migrate().await?;
    let api = ApiProcess::api(
        "api-limits",
        &scope,
        &ApiOptions {
            limits: ServerLimits {
                max_header_bytes: 16 * 1024,
                max_body_bytes: 1024,
                ..ServerLimits::default()
            },
            ..ApiOptions::default()
        },
    )
    .await?;
    let client = reqwest::Client::new();
    let scorecard = format!(
        "{}/api/v1/scorecard?council={COUNCIL}&date=2025-06-30",
        api.base_url
    );

    // A request head beyond the limit: refused by hyper before any handler,
    // with 431 (or 414). The server closes with part of the head unread, so
    // the client may see that as a reset before it reads the answer: either
    // way the request was not served.
    let long = format!("{scorecard}&padding={}", "p".repeat(32 * 1024));
    let overlong_line = client.get(&long).bearer_auth(API_TOKEN);
    let oversized_headers = client
        .get(&scorecard)
        .bearer_auth(API_TOKEN)
        .header("x-padding", "h".repeat(32 * 1024));
    for (what, request) in [
        ("an overlong request line", overlong_line),
        ("oversized headers", oversized_headers),
    ] {
        match request.send().await {
            Ok(response) => assert!(
                matches!(response.status().as_u16(), 414 | 431),
                "{what}: {}",
                response.status()
            ),
            Err(error) => {
                println!("{what}: connection closed before the answer was read ({error})")
            }
        }
    }

    // A body beyond the limit: 413 from its Content-Length alone. Raw, with
    // the body never sent: a client still writing when the server answers
    // and closes may see a reset instead of the 413.
    let address = api.address;
    let head = tokio::task::spawn_blocking(move || -> Result<String> {
        let mut stream = std::net::TcpStream::connect(address)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(
            stream,
            "GET /api/v1/scorecard?council={COUNCIL}&date=2025-06-30 HTTP/1.1\r\n\
             Host: x\r\nAuthorization: Bearer {API_TOKEN}\r\nContent-Length: 65536\r\n\r\n"
        )?;
        let mut answer = [0u8; 64];
        let read = stream.read(&mut answer)?;
        Ok(String::from_utf8_lossy(&answer[..read]).into_owned())
    })
    .await??;
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");

    // After all that, a normal request is answered.
    let response = client.get(&scorecard).bearer_auth(API_TOKEN).send().await?;
    assert_eq!(response.status(), StatusCode::OK);
    drop(api);

    // A handler that overruns the request timeout is cut off with a bare 503.
    let api = ApiProcess::api(
        "api-timeout",
        &scope,
        &ApiOptions {
            limits: ServerLimits {
                request_timeout_ms: 1,
                ..ServerLimits::default()
            },
            ..ApiOptions::default()
        },
    )
    .await?;
    let response = client
        .get(format!(
            "{}/api/v1/scorecard?council={COUNCIL}&date=2025-06-30",
            api.base_url
        ))
        .bearer_auth(API_TOKEN)
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.text().await?, "");
    drop(api);
    scope.drop_database().await
}

/// The largest answer a request may ask for is bounded by the query limits
/// (`[query]`, here 5 result rows for the test): a request whose query would
/// answer more gets a 400 `too_large` that says how to narrow it, never an
/// exhausted process; a request within the limit is still served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_whose_query_meets_a_limit_gets_a_400_that_says_how_to_narrow_it() -> Result<()> {
    let scope = scope_with_data("query-limits").await?;
    let api = ApiProcess::api(
        "api-query-limits",
        &scope,
        &ApiOptions {
            query: Some(QueryLimits {
                max_result_rows: 5,
                ..QueryLimits::default()
            }),
            ..ApiOptions::default()
        },
    )
    .await?;
    let client = reqwest::Client::new();
    let year = [
        ("council", COUNCIL),
        ("from", "2025-01-01"),
        ("to", "2025-12-31"),
    ];
    let by_day = url(
        &api.base_url,
        "/api/v1/kpi/digital-take-up",
        &[&year[..], &[("period", "day"), ("group_by", "service")]].concat(),
    )?;
    let (status, body) = get(&client, by_day, Some(API_TOKEN)).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let body: Value = serde_json::from_str(&body)?;
    assert_eq!(body["error"], "too_large", "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("narrower filter"),
        "{body}"
    );
    let whole_year = url(
        &api.base_url,
        "/api/v1/kpi/digital-take-up",
        &[&year[..], &[("period", "total")]].concat(),
    )?;
    let (status, body) = get(&client, whole_year, Some(API_TOKEN)).await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The API is still up and ready after the refused request.
    assert_eq!(api.readiness().await?, 200);
    scope.drop_database().await
}

#[derive(clickhouse::Row, serde::Deserialize)]
struct Running {
    n: u64,
}

/// API queries still running on the server, by their id's prefix.
async fn api_queries_running(store: &channelshift_store::Store) -> Result<u64> {
    Ok(store
        .client()
        .query("SELECT count() AS n FROM system.processes WHERE startsWith(query_id, ?)")
        .bind(channelshift_api::cancel::QUERY_ID_PREFIX)
        .fetch_one::<Running>()
        .await?
        .n)
}

/// Makes `table` (qualified) a view that sleeps 1 s on each row of what was
/// the table, and returns how long a query over all of it takes then.
/// Its rows must be in one-row parts (merges stopped before they were
/// written): `sleepEachRow` may sleep at most 3 s a block.
async fn sleep_on_every_row(store: &channelshift_store::Store, table: &str) -> Result<Duration> {
    for statement in [
        format!("RENAME TABLE {table} TO {table}_stored"),
        format!("CREATE VIEW {table} AS SELECT * FROM {table}_stored WHERE sleepEachRow(1) = 0"),
    ] {
        store.client().query(&statement).execute().await?;
    }
    // What a query over it costs when nobody stops it.
    let started = Instant::now();
    store
        .client()
        .query(&format!("SELECT count() FROM {table}"))
        .execute()
        .await?;
    Ok(started.elapsed())
}

/// Asks `path` of an API that gives up on requests after 1.5 s, and checks
/// that the request's queries are gone from the server well before the
/// `uncancelled` time they would need.
async fn gives_up_and_stops(
    scope: &Scope,
    store: &channelshift_store::Store,
    name: &str,
    path: &str,
    query: &[(&str, &str)],
    uncancelled: Duration,
) -> Result<()> {
    assert!(uncancelled >= Duration::from_secs(6), "{uncancelled:?}");
    let api = ApiProcess::api(
        name,
        scope,
        &ApiOptions {
            limits: ServerLimits {
                request_timeout_ms: 1_500,
                ..ServerLimits::default()
            },
            ..ApiOptions::default()
        },
    )
    .await?;
    let client = reqwest::Client::new();
    let (status, _) = get(&client, url(&api.base_url, path, query)?, Some(API_TOKEN)).await?;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let timed_out = Instant::now();
    eventually(
        "the timed-out request's queries stopped",
        Duration::from_secs(30),
        || {
            let store = store.clone();
            async move { Ok((api_queries_running(&store).await? == 0).then_some(())) }
        },
    )
    .await?;
    let stopped_after = timed_out.elapsed();
    eprintln!(
        "{name}: {uncancelled:?} uncancelled; the request's queries gone {stopped_after:?} after its 503"
    );
    assert!(
        stopped_after < uncancelled / 2,
        "{name}: the queries ran on for {stopped_after:?} after the 503 ({uncancelled:?} uncancelled): {}",
        api.log_tail()
    );
    Ok(())
}

/// A KPI request the API gives up on (its `request_timeout_ms`) stops its
/// ClickHouse query, on 18.16 too, which does not cancel a query when its
/// client hangs up: here `contact_daily` is made to need about 12 s (16
/// one-row parts, each slept on for 1 s by a view).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_times_out_stops_its_query_on_the_server() -> Result<()> {
    let scope = Scope::new("query-cancel");
    let store = scope.store().await?;
    store.migrate().await?;
    let daily = store.rollup("contact_daily");
    store
        .client()
        .query(&format!("SYSTEM STOP MERGES {daily}"))
        .execute()
        .await?;
    for day in 1..=16 {
        store
            .client()
            .query(&format!(
                "INSERT INTO {daily} (council, day, service, channel, \
                 customer_type, interaction, outcome, assisted, contacts) VALUES \
                 ('{COUNCIL}', '2025-01-{day:02}', 'waste', 'web', 'resident', 'transaction', \
                 'completed', 0, 20)"
            ))
            .execute()
            .await?;
    }
    let uncancelled = sleep_on_every_row(&store, &daily).await?;
    gives_up_and_stops(
        &scope,
        &store,
        "api-query-cancel",
        "/api/v1/kpi/digital-take-up",
        &[
            ("council", COUNCIL),
            // Not a whole month, so read from `contact_daily` (a whole
            // month is read from `contact_monthly`).
            ("from", "2025-01-01"),
            ("to", "2025-01-30"),
            ("period", "total"),
        ],
        uncancelled,
    )
    .await?;
    scope.drop_database().await
}

/// The same for a committee pack, whose queries run in the pack's own
/// process (stopped with it) and read the raw table as of an instant: the
/// API stops them by the id prefix it gives that process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pack_request_that_times_out_stops_its_queries_on_the_server() -> Result<()> {
    let scope = Scope::new("pack-cancel");
    let store = scope.store().await?;
    store.migrate().await?;
    store
        .client()
        .query("SYSTEM STOP MERGES contact_events")
        .execute()
        .await?;
    let an_hour_ago = channelshift_tests::rollups::seconds(chrono::Utc::now()) - 3_600;
    for day in 1..=16 {
        let occurred = channelshift_tests::rollups::at(&format!("2025-01-{day:02}T12:00:00Z"));
        let mut row = channelshift_tests::rollups::contact(day, occurred);
        row.ingested_at = an_hour_ago;
        store
            .insert_contacts(&mut [row], channelshift_store::Fencing::Off)
            .await?;
    }
    let uncancelled =
        sleep_on_every_row(&store, &format!("{}.contact_events", scope.database)).await?;
    gives_up_and_stops(
        &scope,
        &store,
        "api-pack-cancel",
        "/api/v1/exports/pack",
        &[
            ("council", COUNCIL),
            ("period", "quarter"),
            ("date", "2025-01-15"),
            ("format", "csv"),
        ],
        uncancelled,
    )
    .await?;
    scope.drop_database().await
}
