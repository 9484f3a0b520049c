//! A ClickHouse server of a test's own, for tests that stop it: stopping the
//! shared test stack's server would fail every other test running alongside.

use crate::process::free_port;
use crate::server::{await_http_ok, OwnedServer};
use anyhow::{Context, Result};
use channelshift_store::{ClickHouseConfig, Store};
use secrecy::SecretString;
use std::fs;
use std::process::Command;
use std::time::Duration;

pub struct PrivateClickHouse {
    server: OwnedServer,
    http_port: u16,
    tcp_port: u16,
    /// Also served over HTTPS, with a certificate the test CA signed.
    https_port: Option<u16>,
}

fn server_binary() -> String {
    std::env::var("CHANNELSHIFT_CLICKHOUSE_SERVER")
        .unwrap_or_else(|_| "/usr/sbin/clickhouse-server".into())
}

impl PrivateClickHouse {
    /// Starts a server on free loopback ports with its data in a temporary folder.
    pub async fn start() -> Result<Self> {
        Self::start_with(false).await
    }

    /// Starts a server that also answers HTTPS on [`Self::https_url`], with
    /// a certificate for 127.0.0.1 signed by [`Self::ca_file`]'s CA.
    pub async fn start_https() -> Result<Self> {
        Self::start_with(true).await
    }

    async fn start_with(https: bool) -> Result<Self> {
        let server = OwnedServer::new("clickhouse")?;
        for sub in ["data", "tmp", "log", "user_files", "format_schemas"] {
            fs::create_dir_all(server.dir.join(sub))?;
        }
        if https {
            crate::tls::certificates(&server.dir)?;
        }
        let mut clickhouse = Self {
            server,
            http_port: free_port()?,
            tcp_port: free_port()?,
            https_port: if https { Some(free_port()?) } else { None },
        };
        clickhouse.write_config()?;
        clickhouse.restart().await?;
        Ok(clickhouse)
    }

    fn write_config(&self) -> Result<()> {
        let home = self.server.dir.display();
        fs::write(
            self.server.dir.join("config.xml"),
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
    {https}
</yandex>
"#,
                http = self.http_port,
                tcp = self.tcp_port,
                https = self.https_port.map_or(String::new(), |port| format!(
                    "<https_port>{port}</https_port>
    <openSSL><server>
        <certificateFile>{home}/server.pem</certificateFile>
        <privateKeyFile>{home}/server.key</privateKeyFile>
        <verificationMode>none</verificationMode>
        <loadDefaultCAFile>false</loadDefaultCAFile>
        <cacheSessions>true</cacheSessions>
        <disableProtocols>sslv2,sslv3</disableProtocols>
        <preferServerCiphers>true</preferServerCiphers>
    </server></openSSL>"
                )),
            ),
        )?;
        self.write_users(false)
    }

    /// The server's one user; `read_only` gives its profile `readonly = 2`
    /// (reads and settings allowed, every write refused).
    fn write_users(&self, read_only: bool) -> Result<()> {
        let readonly = if read_only {
            "<readonly>2</readonly>"
        } else {
            ""
        };
        fs::write(
            self.server.dir.join("users.xml"),
            r#"<?xml version="1.0"?>
<yandex>
    <profiles><default><max_memory_usage>2000000000</max_memory_usage>READONLY</default></profiles>
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
"#
            .replace("READONLY", readonly),
        )?;
        Ok(())
    }

    /// Makes every write fail (as a full disk or a read-only table would, with
    /// a server error rather than a refused connection), or lifts that; waits
    /// until the server has reloaded its users file.
    pub async fn set_read_only(&self, read_only: bool) -> Result<()> {
        self.write_users(read_only)?;
        let want = if read_only { "2" } else { "0" };
        // POST: a GET is read-only whatever the profile says.
        let client = reqwest::Client::new();
        let url = self.url();
        crate::eventually(
            "ClickHouse reloads its users file",
            Duration::from_secs(30),
            || {
                let request = client
                    .post(&url)
                    .body("SELECT value FROM system.settings WHERE name = 'readonly'");
                async move {
                    let text = request.send().await?.text().await?;
                    Ok((text.trim() == want).then_some(()))
                }
            },
        )
        .await
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// The HTTPS endpoint of a server started with [`Self::start_https`].
    pub fn https_url(&self) -> Option<String> {
        self.https_port
            .map(|port| format!("https://127.0.0.1:{port}"))
    }

    /// The CA that signed the HTTPS certificate.
    pub fn ca_file(&self) -> std::path::PathBuf {
        self.server.dir.join("ca.pem")
    }

    /// A CA that signed nothing here.
    pub fn other_ca_file(&self) -> std::path::PathBuf {
        self.server.dir.join("other-ca.pem")
    }

    /// Connection settings for `database` on this server.
    pub fn config(&self, database: &str) -> ClickHouseConfig {
        ClickHouseConfig {
            url: self.url(),
            user: "default".into(),
            password: SecretString::from(String::new()),
            database: database.into(),
            ca_file: None,
        }
    }

    /// (Re)starts the server on the same ports and data, and waits until it answers.
    pub async fn restart(&mut self) -> Result<()> {
        let mut command = Command::new(server_binary());
        command.arg(format!(
            "--config-file={}",
            self.server.dir.join("config.xml").display()
        ));
        self.server.spawn(command)?;
        await_http_ok(
            "private ClickHouse answers",
            &format!("{}/ping", self.url()),
            Duration::from_secs(60),
        )
        .await
    }

    /// Stops the server abruptly, as a crash or a pulled plug would (by PID).
    pub fn kill(&mut self) -> Result<()> {
        self.server.kill()
    }
}

/// A store on `config` once the database answers: a service started just
/// before creates it and applies the migrations.
pub async fn migrated_store(config: &ClickHouseConfig) -> Result<Store> {
    crate::eventually("ClickHouse migrated", Duration::from_secs(30), || async {
        Ok(Store::connect(config).await.ok())
    })
    .await
}

/// Current ClickHouse (the chdb engine `cargo xtask test` serves at
/// `CHANNELSHIFT_CURRENT_CLICKHOUSE_URL`) for `database`: one user, no password.
pub fn current_engine(database: &str) -> Result<ClickHouseConfig> {
    let url = std::env::var("CHANNELSHIFT_CURRENT_CLICKHOUSE_URL").context(
        "CHANNELSHIFT_CURRENT_CLICKHOUSE_URL is not set: `cargo xtask test` starts ClickHouse \
         26 (chdb) and sets it",
    )?;
    Ok(ClickHouseConfig {
        url,
        user: "default".into(),
        password: String::new().into(),
        database: database.to_string(),
        ca_file: None,
    })
}
