//! The production deployment (`deploy/`), checked as far as a machine without
//! Docker allows: the compose file parses and every file, build context and
//! Dockerfile it names exists; every service has a health check and its data a
//! named volume; the images are pinned and ours run as a non-root user; the
//! secrets it needs are in `.env.example`; the ingest and API environment
//! loads, through the services' own configuration loader, into exactly the
//! settings intended; and Prometheus, Grafana and ClickHouse agree with it on
//! names, users and ports.

use anyhow::{Context, Result};
use channelshift_api::config::ApiConfig;
use channelshift_ingest::config::IngestConfig;
use channelshift_tests::grafana::{load_dashboards, repository_root, CLICKHOUSE, PROMETHEUS};
use secrecy::ExposeSecret;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

fn deploy_dir() -> PathBuf {
    repository_root().join("deploy")
}

fn read(path: &str) -> Result<String> {
    let path = deploy_dir().join(path);
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

fn yaml(path: &str) -> Result<Value> {
    serde_norway::from_str(&read(path)?).with_context(|| format!("{path} is not valid YAML"))
}

fn compose() -> Result<Value> {
    yaml("docker-compose.yml")
}

/// `NAME=value` lines of `.env.example`.
fn env_example() -> Result<BTreeMap<String, String>> {
    Ok(read(".env.example")?
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| (name.trim().to_string(), value.trim().to_string()))
        .collect())
}

/// `value` with compose's `${NAME}` / `${NAME:?message}` / `${NAME:-default}`
/// replaced from `env`; a name missing from it is an error.
fn interpolate(value: &str, env: &BTreeMap<String, String>) -> Result<String> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').context("unclosed ${")? + start;
        let inner = &rest[start + 2..end];
        let name = inner.split([':', '-', '?']).next().unwrap_or_default();
        let found = env.get(name).with_context(|| {
            format!("{name} is used by docker-compose.yml but not in .env.example")
        })?;
        out.push_str(found);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn services(compose: &Value) -> Result<&serde_json::Map<String, Value>> {
    compose["services"].as_object().context("no services")
}

fn environment(service: &Value) -> BTreeMap<String, String> {
    service["environment"]
        .as_object()
        .map(|map| {
            map.iter()
                .map(|(key, value)| {
                    let text = match value {
                        Value::String(text) => text.clone(),
                        other => other.to_string(),
                    };
                    (key.clone(), text)
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn compose_file_names_only_files_that_exist_and_every_service_is_checked_and_kept() -> Result<()> {
    let compose = compose()?;
    let services = services(&compose)?;
    let names: BTreeSet<&str> = services.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "api",
            "clickhouse",
            "grafana",
            "ingest",
            "kafka",
            "prometheus"
        ])
    );
    let declared: BTreeSet<String> = compose["volumes"]
        .as_object()
        .context("no named volumes")?
        .keys()
        .cloned()
        .collect();
    let mut used = BTreeSet::new();
    let env = env_example()?;
    for (name, service) in services {
        let test = service["healthcheck"]["test"].as_array();
        assert!(
            test.is_some_and(|test| test.len() > 1),
            "{name} has no health check"
        );
        assert!(
            service["restart"].as_str().is_some(),
            "{name} has no restart policy"
        );
        // Images of others are pinned to a version.
        if service["build"].is_null() {
            let image = service["image"].as_str().context("image")?;
            let tag = image.rsplit_once(':').map(|(_, tag)| tag).unwrap_or("");
            assert!(
                !tag.is_empty() && tag != "latest",
                "{name}: image {image} is not pinned"
            );
        }
        for mount in service["volumes"].as_array().into_iter().flatten() {
            let mount = mount.as_str().context("short volume syntax")?;
            let source = mount.split(':').next().unwrap_or_default();
            if source.starts_with('.') {
                let path = deploy_dir().join(source);
                assert!(
                    path.exists(),
                    "{name}: {mount}: {} is missing",
                    path.display()
                );
            } else {
                assert!(
                    declared.contains(source),
                    "{name}: volume {source} is not declared"
                );
                used.insert(source.to_string());
            }
        }
        for value in environment(service).values() {
            interpolate(value, &env).with_context(|| format!("service {name}"))?;
        }
    }
    assert_eq!(used, declared, "every named volume is used");
    // Stateful services keep their data in named volumes.
    for (service, target) in [
        ("kafka", "/var/lib/kafka/data"),
        ("clickhouse", "/var/lib/clickhouse"),
        ("prometheus", "/prometheus"),
        ("grafana", "/var/lib/grafana"),
    ] {
        let mounts = services[service]["volumes"].to_string();
        assert!(
            mounts.contains(&format!("-data:{target}\"")),
            "{service}: {mounts}"
        );
    }
    Ok(())
}

#[test]
fn our_images_build_from_the_workspace_in_stages_and_run_as_a_non_root_user() -> Result<()> {
    let compose = compose()?;
    for (service, binary) in [
        ("ingest", "channelshift-ingest"),
        ("api", "channelshift-api"),
    ] {
        let build = &services(&compose)?[service]["build"];
        let context = deploy_dir().join(build["context"].as_str().context("context")?);
        assert_eq!(context.canonicalize()?, repository_root().canonicalize()?);
        let dockerfile_path = context.join(build["dockerfile"].as_str().context("dockerfile")?);
        let dockerfile = std::fs::read_to_string(&dockerfile_path)
            .with_context(|| format!("{}", dockerfile_path.display()))?;
        let froms = dockerfile
            .lines()
            .filter(|line| line.starts_with("FROM "))
            .count();
        assert!(froms >= 2, "{service}: not a multi-stage build");
        // Every COPY from the build context names something that exists.
        for line in dockerfile.lines().filter(|line| line.starts_with("COPY ")) {
            if line.contains("--from=") {
                continue;
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            for source in &words[1..words.len() - 1] {
                assert!(
                    context.join(source).exists(),
                    "{service}: {line}: {source} is not in the build context"
                );
            }
        }
        // The final stage switches to a numeric non-root user.
        let final_stage = dockerfile.rsplit("\nFROM ").next().unwrap_or_default();
        let user = final_stage
            .lines()
            .find_map(|line| line.strip_prefix("USER "))
            .context("no USER in the final stage")?;
        assert!(
            user.trim().parse::<u32>().is_ok_and(|uid| uid != 0),
            "{service}: USER {user}"
        );
        assert!(
            dockerfile.contains(&format!("-p {binary} --bin {binary}")),
            "{service}"
        );
        assert!(dockerfile.contains(&format!("ENTRYPOINT [\"/usr/local/bin/{binary}\"]")));
        let crate_dir = repository_root().join("crates").join(service);
        assert!(crate_dir.join("src/main.rs").exists());
        assert!(std::fs::read_to_string(crate_dir.join("Cargo.toml"))?
            .contains(&format!("name = \"{binary}\"")));
        // The Dockerfile-specific ignore file lets through what the build copies.
        let ignore = PathBuf::from(format!("{}.dockerignore", dockerfile_path.display()));
        let ignore =
            std::fs::read_to_string(&ignore).with_context(|| format!("{}", ignore.display()))?;
        for needed in ["!Cargo.toml", "!Cargo.lock", "!crates/**", "!tests/src/**"] {
            assert!(
                ignore.contains(needed),
                "{service}: .dockerignore lacks {needed}"
            );
        }
    }
    Ok(())
}

/// Environment variables are process-wide: one loader at a time.
static ENVIRONMENT: Mutex<()> = Mutex::new(());

/// Loads a service's configuration as the container would: `file` (if
/// mounted) overlaid by the service's `CHANNELSHIFT_*` environment, through
/// the services' own loader.
fn load_as_container<T: serde::de::DeserializeOwned>(
    service: &Value,
    file: Option<&Path>,
) -> Result<(T, BTreeSet<String>)> {
    let env = env_example()?;
    let variables: BTreeMap<String, String> = environment(service)
        .into_iter()
        .filter(|(key, _)| key.starts_with("CHANNELSHIFT_") && key != "CHANNELSHIFT_LOG_FORMAT")
        .map(|(key, value)| Ok((key, interpolate(&value, &env)?)))
        .collect::<Result<_>>()?;
    let _guard = ENVIRONMENT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    // The test runner's own CHANNELSHIFT_* variables would mix in.
    let saved: Vec<(String, String)> = std::env::vars()
        .filter(|(key, _)| key.starts_with("CHANNELSHIFT_"))
        .collect();
    for (key, _) in &saved {
        std::env::remove_var(key);
    }
    for (key, value) in &variables {
        std::env::set_var(key, value);
    }
    let loaded = channelshift_runtime::config::load::<T>(file);
    for key in variables.keys() {
        std::env::remove_var(key);
    }
    for (key, value) in &saved {
        std::env::set_var(key, value);
    }
    Ok((loaded?, variables.into_keys().collect()))
}

fn keys(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|name| name.to_string()).collect()
}

#[test]
fn service_environment_loads_into_the_intended_configuration() -> Result<()> {
    let compose = compose()?;
    let services = services(&compose)?;
    let env = env_example()?;

    for service in ["ingest", "api"] {
        // Read by the logger, not the configuration.
        assert_eq!(
            environment(&services[service])["CHANNELSHIFT_LOG_FORMAT"],
            "json"
        );
    }
    let (ingest, set): (IngestConfig, _) = load_as_container(&services["ingest"], None)?;
    // Every variable compose sets is checked here, so a misspelt one (which
    // the loader would ignore) fails.
    assert_eq!(
        set,
        keys(&[
            "CHANNELSHIFT_CLICKHOUSE__DATABASE",
            "CHANNELSHIFT_CLICKHOUSE__PASSWORD",
            "CHANNELSHIFT_CLICKHOUSE__URL",
            "CHANNELSHIFT_CLICKHOUSE__USER",
            "CHANNELSHIFT_KAFKA__BROKERS",
            "CHANNELSHIFT_KAFKA__GROUP_ID",
            "CHANNELSHIFT_KAFKA__PARTITIONS",
            "CHANNELSHIFT_LISTEN",
            "CHANNELSHIFT_PRIVACY__PSEUDONYM_KEY",
        ])
    );
    assert_eq!(ingest.listen.to_string(), "0.0.0.0:9464");
    assert_eq!(ingest.kafka.brokers, "kafka:9092");
    assert_eq!(ingest.kafka.group_id, "channelshift-ingest");
    assert_eq!(ingest.kafka.partitions, 3);
    assert_eq!(ingest.clickhouse.url, "http://clickhouse:8123");
    assert_eq!(ingest.clickhouse.user, "channelshift_writer");
    assert_eq!(
        ingest.clickhouse.password.expose_secret(),
        env["CLICKHOUSE_WRITER_PASSWORD"]
    );
    assert_eq!(ingest.clickhouse.database, "channelshift");
    assert_eq!(
        ingest
            .privacy
            .pseudonym_key
            .as_ref()
            .map(|key| key.expose_secret().to_string()),
        Some(env["PSEUDONYM_KEY"].clone())
    );
    assert!(!ingest.privacy.dev_mode);

    // The API reads the mounted example file, overlaid by its environment.
    let api_service = &services["api"];
    assert_eq!(api_service["command"][1], "/etc/channelshift/api.toml");
    assert!(api_service["volumes"][0]
        .as_str()
        .is_some_and(|mount| mount.starts_with("./api.example.toml:/etc/channelshift/api.toml")));
    let (api, set): (ApiConfig, _) =
        load_as_container(api_service, Some(&deploy_dir().join("api.example.toml")))?;
    assert_eq!(
        set,
        keys(&[
            "CHANNELSHIFT_AUTH__TOKEN_SHA256",
            "CHANNELSHIFT_CLICKHOUSE__DATABASE",
            "CHANNELSHIFT_CLICKHOUSE__PASSWORD",
            "CHANNELSHIFT_CLICKHOUSE__URL",
            "CHANNELSHIFT_CLICKHOUSE__USER",
            "CHANNELSHIFT_LISTEN",
        ])
    );
    assert_eq!(api.listen.to_string(), "0.0.0.0:8080");
    assert_eq!(api.clickhouse.url, "http://clickhouse:8123");
    assert_eq!(api.clickhouse.user, "channelshift_reader");
    assert_eq!(
        api.clickhouse.password.expose_secret(),
        env["CLICKHOUSE_READER_PASSWORD"]
    );
    assert_eq!(api.clickhouse.database, "channelshift");
    assert_eq!(api.auth.token_sha256, [env["API_TOKEN_SHA256"].clone()]);
    Ok(())
}

#[test]
fn prometheus_grafana_and_clickhouse_agree_with_the_services() -> Result<()> {
    let compose = compose()?;
    let services = services(&compose)?;

    // Prometheus scrapes the services where they listen, under the job names
    // the alerts and the operations dashboard select on.
    let prometheus = yaml("prometheus/prometheus.yml")?;
    let jobs: BTreeMap<String, String> = prometheus["scrape_configs"]
        .as_array()
        .context("scrape_configs")?
        .iter()
        .map(|job| {
            (
                job["job_name"].as_str().unwrap_or_default().to_string(),
                job["static_configs"][0]["targets"][0]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(jobs["channelshift-ingest"], "ingest:9464");
    assert_eq!(jobs["channelshift-api"], "api:8080");
    assert_eq!(prometheus["rule_files"][0], "alerts.yml");
    let mounts = services["prometheus"]["volumes"].to_string();
    assert!(mounts.contains("./prometheus/alerts.yml:/etc/prometheus/alerts.yml"));

    // ClickHouse defines the two users the services log in as.
    let users = read("clickhouse/users.xml")?;
    for user in ["channelshift_writer", "channelshift_reader"] {
        assert!(
            users.contains(&format!("<{user}>")),
            "users.xml lacks {user}"
        );
    }
    assert!(users.contains("<readonly>2</readonly>"));
    for variable in [
        "CLICKHOUSE_WRITER_PASSWORD",
        "CLICKHOUSE_READER_PASSWORD",
        "CLICKHOUSE_DASHBOARDS_PASSWORD",
    ] {
        assert!(users.contains(&format!("from_env=\"{variable}\"")));
        assert!(environment(&services["clickhouse"]).contains_key(variable));
    }

    // Grafana: one data source of each type the dashboards use, the
    // ClickHouse one as the user that reads only the rollups (its grant and
    // its constraints in users.xml), and the dashboards folder mounted
    // where the provider reads it.
    let datasources = yaml("grafana/provisioning/datasources/channelshift.yml")?;
    let datasources = datasources["datasources"]
        .as_array()
        .context("datasources")?;
    let types: BTreeSet<&str> = datasources
        .iter()
        .filter_map(|source| source["type"].as_str())
        .collect();
    let mut used_types = BTreeSet::new();
    for dashboard in load_dashboards()? {
        for panel in dashboard.panels() {
            if let Some(kind) = panel["datasource"]["type"].as_str() {
                used_types.insert(kind.to_string());
            }
        }
    }
    assert_eq!(
        used_types,
        BTreeSet::from([CLICKHOUSE.to_string(), PROMETHEUS.to_string()])
    );
    for kind in &used_types {
        assert!(types.contains(kind.as_str()), "no {kind} data source");
    }
    let clickhouse = datasources
        .iter()
        .find(|source| source["type"] == CLICKHOUSE)
        .context("ClickHouse data source")?;
    assert_eq!(clickhouse["jsonData"]["host"], "clickhouse");
    assert_eq!(
        clickhouse["jsonData"]["username"],
        "channelshift_dashboards"
    );
    assert_eq!(
        clickhouse["jsonData"]["defaultDatabase"],
        "channelshift_rollups"
    );
    assert_eq!(
        clickhouse["secureJsonData"]["password"],
        "$CLICKHOUSE_DASHBOARDS_PASSWORD"
    );
    assert!(users.contains("<query>GRANT SELECT ON channelshift_rollups.*</query>"));
    assert!(users.contains("<readonly><const/></readonly>"));
    let grafana_environment = environment(&services["grafana"]);
    assert!(grafana_environment.contains_key("CLICKHOUSE_DASHBOARDS_PASSWORD"));
    assert!(!grafana_environment.contains_key("CLICKHOUSE_READER_PASSWORD"));
    assert!(!grafana_environment.contains_key("CLICKHOUSE_WRITER_PASSWORD"));
    let prometheus_source = datasources
        .iter()
        .find(|source| source["type"] == PROMETHEUS)
        .context("Prometheus data source")?;
    assert_eq!(prometheus_source["url"], "http://prometheus:9090");
    let provider = yaml("grafana/provisioning/dashboards/channelshift.yml")?;
    let path = provider["providers"][0]["options"]["path"]
        .as_str()
        .context("provider path")?;
    let grafana_mounts = services["grafana"]["volumes"].to_string();
    assert!(
        grafana_mounts.contains(&format!("../dashboards:{path}:ro")),
        "{grafana_mounts}"
    );
    assert!(grafana_mounts.contains("./grafana/provisioning:/etc/grafana/provisioning"));
    Ok(())
}
