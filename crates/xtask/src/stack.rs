//! The local stack: a ClickHouse server and a Tansu broker on loopback, each
//! with its data, logs and generated config under `.stack/<profile>/`.
//!
//! State (PIDs, ports, generated passwords) is kept in `state.json` there; a
//! second `up` reuses whatever is still running and answering.

use crate::install;
use crate::probe;
use crate::process;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::env;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub const WRITER_USER: &str = "channelshift_writer";
pub const READER_USER: &str = "channelshift_reader";
/// Grafana's user: reads the rollups' database and nothing else.
pub const DASHBOARDS_USER: &str = "channelshift_dashboards";

/// A named stack, so the demo and the tests can run side by side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    Demo,
    Test,
    Bench,
}

impl Profile {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "demo" => Ok(Self::Demo),
            "test" => Ok(Self::Test),
            "bench" => Ok(Self::Bench),
            other => bail!("unknown profile {other:?}: use demo, test or bench"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Demo => "demo",
            Self::Test => "test",
            Self::Bench => "bench",
        }
    }

    /// The first of the profile's ports; `CHANNELSHIFT_PORT_BASE` moves it
    /// (two checkouts on one machine give each a different base).
    fn port_base(self) -> Result<u16> {
        if let Ok(base) = env::var("CHANNELSHIFT_PORT_BASE") {
            return base
                .parse()
                .with_context(|| format!("CHANNELSHIFT_PORT_BASE={base:?} is not a port number"));
        }
        Ok(match self {
            Self::Demo => 18120,
            Self::Test => 28120,
            Self::Bench => 38120,
        })
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Ports {
    pub clickhouse_http: u16,
    pub clickhouse_tcp: u16,
    pub kafka: u16,
    pub api: u16,
    pub ingest: u16,
}

impl Ports {
    fn from_base(base: u16) -> Result<Self> {
        let at = |offset: u16| {
            base.checked_add(offset)
                .context("CHANNELSHIFT_PORT_BASE is too high")
        };
        Ok(Self {
            clickhouse_http: at(0)?,
            clickhouse_tcp: at(1)?,
            kafka: at(2)?,
            api: at(10)?,
            ingest: at(11)?,
        })
    }
}

/// A process the stack started: its PID and a string its command line must
/// contain for the PID still to be ours.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Running {
    pub pid: u32,
    pub marker: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct State {
    pub ports: Ports,
    pub writer_password: String,
    pub reader_password: String,
    /// Made on first use by a stack whose state predates it.
    #[serde(default)]
    pub dashboards_password: String,
    /// Broker storage: `sqlite` (durable, the default) or `memory`.
    pub broker_storage: String,
    #[serde(default)]
    pub processes: BTreeMap<String, Running>,
}

pub struct Stack {
    pub profile: Profile,
    pub dir: PathBuf,
    pub state: State,
}

pub fn stack_dir(profile: Profile) -> PathBuf {
    if let Some(dir) = env::var_os("CHANNELSHIFT_STACK_DIR") {
        return PathBuf::from(dir).join(profile.name());
    }
    workspace_root().join(".stack").join(profile.name())
}

/// The checkout this command runs in. Read at run time (`cargo run` sets
/// `CARGO_MANIFEST_DIR`), never baked in at compile time: checkouts share one
/// target dir, so the same binary serves several of them.
pub fn workspace_root() -> PathBuf {
    let manifest_dir = env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .or_else(|| env::current_dir().ok())
        .unwrap_or_else(|| PathBuf::from("."));
    // crates/xtask → the workspace root, two levels up.
    match manifest_dir.ancestors().nth(2) {
        Some(root) if manifest_dir.ends_with("crates/xtask") => root.to_path_buf(),
        _ => manifest_dir,
    }
}

impl Stack {
    /// Loads the profile's state, or creates it with fresh passwords.
    pub fn open(profile: Profile) -> Result<Self> {
        let dir = stack_dir(profile);
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let state_path = dir.join("state.json");
        let state = if state_path.exists() {
            let text = fs::read_to_string(&state_path)?;
            let mut state: State = serde_json::from_str(&text)
                .with_context(|| format!("reading {}", state_path.display()))?;
            if state.dashboards_password.is_empty() {
                state.dashboards_password = random_secret()?;
            }
            state
        } else {
            State {
                ports: Ports::from_base(profile.port_base()?)?,
                writer_password: random_secret()?,
                reader_password: random_secret()?,
                dashboards_password: random_secret()?,
                broker_storage: "sqlite".into(),
                processes: BTreeMap::new(),
            }
        };
        Ok(Self {
            profile,
            dir,
            state,
        })
    }

    pub fn save(&self) -> Result<()> {
        let text = serde_json::to_string_pretty(&self.state)?;
        write_private(&self.dir.join("state.json"), &text)?;
        write_private(&self.dir.join("env"), &self.env_file())?;
        Ok(())
    }

    /// Whether the named process is recorded and still ours.
    pub fn is_running(&self, name: &str) -> bool {
        self.state
            .processes
            .get(name)
            .is_some_and(|running| process::is_ours(running.pid, &running.marker))
    }

    /// Starts ClickHouse and the broker unless already running; returns the
    /// names of the processes this call started.
    pub fn up(&mut self) -> Result<Vec<String>> {
        install::ensure_all()?;
        if !self.any_running() {
            // Nothing of ours runs: take the ports (and storage) asked for now.
            self.state.ports = Ports::from_base(self.profile.port_base()?)?;
            if let Ok(storage) = env::var("CHANNELSHIFT_BROKER_STORAGE") {
                self.state.broker_storage = storage;
            }
        }
        let mut started = Vec::new();
        if self.start_clickhouse()? {
            started.push("clickhouse".to_string());
        }
        if self.start_broker()? {
            started.push("broker".to_string());
        }
        // Each start saved as it recorded its PID; this keeps ports chosen above
        // even when both were already running.
        self.save()?;
        Ok(started)
    }

    fn any_running(&self) -> bool {
        self.state
            .processes
            .keys()
            .any(|name| self.is_running(name))
    }

    fn start_clickhouse(&mut self) -> Result<bool> {
        let port = self.state.ports.clickhouse_http;
        if self.is_running("clickhouse") && probe::clickhouse_ready(port) {
            return Ok(false);
        }
        let home = self.dir.join("clickhouse");
        // users.d: more users, read while the server runs (the tests add
        // one per test that may read only that test's rollups).
        for sub in [
            "data",
            "tmp",
            "log",
            "user_files",
            "format_schemas",
            "users.d",
        ] {
            fs::create_dir_all(home.join(sub))?;
        }
        let config = home.join("config.xml");
        fs::write(&config, self.clickhouse_config(&home))?;
        write_private(&home.join("users.xml"), &self.clickhouse_users())?;
        self.ensure_ports_free(&[port, self.state.ports.clickhouse_tcp])?;

        let log = home.join("log").join("stdout.log");
        let mut command = Command::new("/usr/sbin/clickhouse-server");
        command
            .arg(format!("--config-file={}", config.display()))
            .current_dir(&home);
        let pid = process::spawn_detached(command, &log)?;
        let marker = config.display().to_string();
        self.state.processes.insert(
            "clickhouse".into(),
            Running {
                pid,
                marker: marker.clone(),
            },
        );
        // Recorded before waiting, so a start that fails can still be stopped.
        self.save()?;
        println!(
            "started ClickHouse (pid {pid}) on 127.0.0.1:{port}, data in {}",
            home.display()
        );
        process::await_ready(
            "ClickHouse",
            pid,
            &home.join("log").join("error.log"),
            Duration::from_secs(60),
            || probe::clickhouse_ready(port),
        )?;
        Ok(true)
    }

    fn start_broker(&mut self) -> Result<bool> {
        let port = self.state.ports.kafka;
        if self.is_running("broker") && probe::kafka_ready(port) {
            return Ok(false);
        }
        let home = self.dir.join("broker");
        fs::create_dir_all(&home)?;
        self.ensure_ports_free(&[port])?;
        let listener = format!("tcp://127.0.0.1:{port}");
        let storage = match self.state.broker_storage.as_str() {
            "memory" => "memory://tansu/".to_string(),
            // Relative to the working directory, which is the broker's data folder.
            "sqlite" => "sqlite://tansu.db".to_string(),
            other => bail!("CHANNELSHIFT_BROKER_STORAGE={other:?}: use sqlite or memory"),
        };
        let log = home.join("broker.log");
        let mut command = Command::new(install::tansu_binary());
        command
            .args(["broker", "--listener-url", &listener])
            .args(["--advertised-listener-url", &listener])
            .args(["--storage-engine", &storage])
            .args(["--cluster-id", "channelshift"])
            .env("RUST_LOG", "warn")
            .current_dir(&home);
        let pid = process::spawn_detached(command, &log)?;
        self.state.processes.insert(
            "broker".into(),
            Running {
                pid,
                marker: listener.clone(),
            },
        );
        self.save()?;
        println!(
            "started the Tansu broker (pid {pid}) on 127.0.0.1:{port}, {} storage in {}",
            self.state.broker_storage,
            home.display()
        );
        process::await_ready(
            "the Tansu broker",
            pid,
            &log,
            Duration::from_secs(60),
            || probe::kafka_ready(port),
        )?;
        Ok(true)
    }

    fn ensure_ports_free(&self, ports: &[u16]) -> Result<()> {
        for &port in ports {
            if !probe::port_is_free(port) {
                bail!(
                    "port {port} on 127.0.0.1 is taken by a process this stack did not start; \
                     set CHANNELSHIFT_PORT_BASE to move the {} stack's ports",
                    self.profile.name()
                );
            }
        }
        Ok(())
    }

    /// Registers a service process (ingest, API) the demo started, so `down` stops it.
    pub fn record(&mut self, name: &str, pid: u32, marker: String) -> Result<()> {
        self.state
            .processes
            .insert(name.into(), Running { pid, marker });
        self.save()
    }

    /// Stops the named processes (all recorded ones when `only` is None),
    /// services before the servers they depend on.
    pub fn down(&mut self, only: Option<&[String]>) -> Result<()> {
        let mut names: Vec<String> = self.state.processes.keys().cloned().collect();
        // Services first, then the broker, ClickHouse last.
        names.sort_by_key(|name| match name.as_str() {
            "clickhouse" => 2,
            "broker" => 1,
            _ => 0,
        });
        for name in names {
            if only.is_some_and(|only| !only.contains(&name)) {
                continue;
            }
            if let Some(running) = self.state.processes.get(&name) {
                if process::is_ours(running.pid, &running.marker) {
                    println!("stopping {name} (pid {})", running.pid);
                }
                process::stop(running.pid, &running.marker, Duration::from_secs(30))?;
            }
            self.state.processes.remove(&name);
        }
        self.save()
    }

    pub fn status(&self) -> String {
        let mut lines = vec![format!(
            "{} stack in {}",
            self.profile.name(),
            self.dir.display()
        )];
        for (name, running) in &self.state.processes {
            let state = if process::is_ours(running.pid, &running.marker) {
                "running"
            } else {
                "not running"
            };
            lines.push(format!("  {name:<11} pid {:<8} {state}", running.pid));
        }
        let ports = &self.state.ports;
        lines.push(format!(
            "  ClickHouse http://127.0.0.1:{}  Kafka 127.0.0.1:{}  API http://127.0.0.1:{}",
            ports.clickhouse_http, ports.kafka, ports.api
        ));
        lines.join("\n")
    }

    /// The variables the tests and services read to find this stack.
    /// The PID of a process of the stack this checkout started, if it runs.
    pub fn pid_of(&self, name: &str) -> Option<u32> {
        self.state.processes.get(name).map(|running| running.pid)
    }

    pub fn env_vars(&self) -> Vec<(String, String)> {
        let ports = &self.state.ports;
        vec![
            (
                "CHANNELSHIFT_STACK_PROFILE".into(),
                self.profile.name().into(),
            ),
            (
                "CHANNELSHIFT_STACK_KAFKA_BROKERS".into(),
                format!("127.0.0.1:{}", ports.kafka),
            ),
            (
                "CHANNELSHIFT_STACK_CLICKHOUSE_URL".into(),
                format!("http://127.0.0.1:{}", ports.clickhouse_http),
            ),
            ("CHANNELSHIFT_STACK_WRITER_USER".into(), WRITER_USER.into()),
            (
                "CHANNELSHIFT_STACK_WRITER_PASSWORD".into(),
                self.state.writer_password.clone(),
            ),
            (
                "CHANNELSHIFT_STACK_TANSU_BIN".into(),
                install::tansu_binary().display().to_string(),
            ),
            ("CHANNELSHIFT_STACK_READER_USER".into(), READER_USER.into()),
            (
                "CHANNELSHIFT_STACK_READER_PASSWORD".into(),
                self.state.reader_password.clone(),
            ),
            (
                "CHANNELSHIFT_STACK_DASHBOARDS_USER".into(),
                DASHBOARDS_USER.into(),
            ),
            (
                "CHANNELSHIFT_STACK_DASHBOARDS_PASSWORD".into(),
                self.state.dashboards_password.clone(),
            ),
            (
                "CHANNELSHIFT_STACK_CLICKHOUSE_USERS_D".into(),
                self.dir
                    .join("clickhouse")
                    .join("users.d")
                    .display()
                    .to_string(),
            ),
        ]
    }

    fn env_file(&self) -> String {
        let mut text =
            String::from("# Written by `cargo xtask stack up`: source it to reach this stack.\n");
        for (key, value) in self.env_vars() {
            text.push_str(&format!("export {key}='{value}'\n"));
        }
        text
    }

    fn clickhouse_config(&self, home: &Path) -> String {
        let home = home.display();
        let ports = &self.state.ports;
        format!(
            r#"<?xml version="1.0"?>
<!-- Generated by `cargo xtask stack up`; edits are overwritten. -->
<yandex>
    <logger>
        <level>warning</level>
        <log>{home}/log/server.log</log>
        <errorlog>{home}/log/error.log</errorlog>
        <size>50M</size>
        <count>3</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <http_port>{http}</http_port>
    <tcp_port>{tcp}</tcp_port>
    <path>{home}/data/</path>
    <tmp_path>{home}/tmp/</tmp_path>
    <user_files_path>{home}/user_files/</user_files_path>
    <format_schema_path>{home}/format_schemas/</format_schema_path>
    <users_config>users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mark_cache_size>268435456</mark_cache_size>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <max_concurrent_queries>100</max_concurrent_queries>
</yandex>
"#,
            http = ports.clickhouse_http,
            tcp = ports.clickhouse_tcp,
        )
    }

    fn clickhouse_users(&self) -> String {
        let writer = sha256_hex(&self.state.writer_password);
        let reader = sha256_hex(&self.state.reader_password);
        let dashboards = sha256_hex(&self.state.dashboards_password);
        format!(
            r#"<?xml version="1.0"?>
<!-- Generated by `cargo xtask stack up`; edits are overwritten. Passwords are in ../state.json. -->
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
        </default>
        <!-- readonly=2: may set query settings, may not write or change schema. -->
        <reader>
            <readonly>2</readonly>
            <max_memory_usage>2000000000</max_memory_usage>
            <max_execution_time>30</max_execution_time>
        </reader>
        <!-- Grafana's: as the reader's; 18.16 has no settings constraints,
             current servers pin these with <constraints> (deploy/clickhouse/users.xml). -->
        <dashboards>
            <readonly>2</readonly>
            <max_memory_usage>1000000000</max_memory_usage>
            <max_execution_time>30</max_execution_time>
            <max_result_rows>100000</max_result_rows>
            <result_overflow_mode>throw</result_overflow_mode>
        </dashboards>
    </profiles>
    <users>
        <{WRITER_USER}>
            <password_sha256_hex>{writer}</password_sha256_hex>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </{WRITER_USER}>
        <{READER_USER}>
            <password_sha256_hex>{reader}</password_sha256_hex>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>reader</profile>
            <quota>default</quota>
        </{READER_USER}>
        <!-- The rollups only: 18.16 restricts a user by database. -->
        <{DASHBOARDS_USER}>
            <password_sha256_hex>{dashboards}</password_sha256_hex>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>dashboards</profile>
            <quota>default</quota>
            <allow_databases><database>channelshift_rollups</database></allow_databases>
        </{DASHBOARDS_USER}>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
"#
        )
    }
}

fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

pub fn random_secret() -> Result<String> {
    let mut bytes = [0u8; 18];
    fs::File::open("/dev/urandom")
        .and_then(|mut urandom| urandom.read_exact(&mut bytes))
        .context("reading /dev/urandom")?;
    Ok(hex::encode(bytes))
}

/// Writes a file only its owner can read: it holds the stack's passwords.
pub fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    Ok(())
}
