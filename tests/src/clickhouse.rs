//! A ClickHouse server of a test's own, for tests that stop it: stopping the
//! shared test stack's server would fail every other test running alongside.

use crate::process::free_port;
use anyhow::{Context, Result};
use channelshift_store::ClickHouseConfig;
use secrecy::SecretString;
use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct PrivateClickHouse {
    dir: PathBuf,
    http_port: u16,
    tcp_port: u16,
    child: Option<Child>,
}

fn server_binary() -> String {
    std::env::var("CHANNELSHIFT_CLICKHOUSE_SERVER")
        .unwrap_or_else(|_| "/usr/sbin/clickhouse-server".into())
}

impl PrivateClickHouse {
    /// Starts a server on free loopback ports with its data in a temporary folder.
    pub async fn start() -> Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "channelshift-test-clickhouse-{}",
            uuid::Uuid::new_v4().simple()
        ));
        for sub in ["data", "tmp", "log", "user_files", "format_schemas"] {
            fs::create_dir_all(dir.join(sub))?;
        }
        let mut server = Self {
            dir,
            http_port: free_port()?,
            tcp_port: free_port()?,
            child: None,
        };
        server.write_config()?;
        server.restart().await?;
        Ok(server)
    }

    fn write_config(&self) -> Result<()> {
        let home = self.dir.display();
        fs::write(
            self.dir.join("config.xml"),
            format!(
                r#"<?xml version="1.0"?>
<yandex>
    <logger><level>warning</level><log>{home}/log/server.log</log><errorlog>{home}/log/error.log</errorlog></logger>
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
    <mark_cache_size>67108864</mark_cache_size>
</yandex>
"#,
                http = self.http_port,
                tcp = self.tcp_port,
            ),
        )?;
        fs::write(
            self.dir.join("users.xml"),
            r#"<?xml version="1.0"?>
<yandex>
    <profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
"#,
        )?;
        Ok(())
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// Connection settings for `database` on this server.
    pub fn config(&self, database: &str) -> ClickHouseConfig {
        ClickHouseConfig {
            url: self.url(),
            user: "default".into(),
            password: SecretString::from(String::new()),
            database: database.into(),
        }
    }

    /// (Re)starts the server on the same ports and data, and waits until it answers.
    pub async fn restart(&mut self) -> Result<()> {
        anyhow::ensure!(self.child.is_none(), "the server is already running");
        let log = fs::File::create(self.dir.join("log").join("stdout.log"))?;
        let child = Command::new(server_binary())
            .arg(format!(
                "--config-file={}",
                self.dir.join("config.xml").display()
            ))
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting clickhouse-server")?;
        self.child = Some(child);
        let url = format!("{}/ping", self.url());
        let client = reqwest::Client::new();
        crate::eventually(
            "private ClickHouse answers",
            Duration::from_secs(60),
            || {
                let request = client.get(&url).send();
                async move {
                    Ok(request
                        .await
                        .ok()
                        .filter(|r| r.status().is_success())
                        .map(|_| ()))
                }
            },
        )
        .await
    }

    /// Stops the server abruptly, as a crash or a pulled plug would (by PID).
    pub fn kill(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }
}

impl Drop for PrivateClickHouse {
    fn drop(&mut self) {
        let _ = self.kill();
        let _ = fs::remove_dir_all(&self.dir);
    }
}
