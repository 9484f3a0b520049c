//! A Tansu broker of a test's own (SQLite storage in a temporary folder), for
//! tests that stop it: stopping the shared test stack's broker would fail
//! every other test running alongside.

use crate::process::free_port;
use crate::server::OwnedServer;
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

pub struct PrivateBroker {
    server: OwnedServer,
    port: u16,
    /// What the broker tells clients to connect to, when not itself (a
    /// TLS proxy in front of it).
    advertised: Option<String>,
    /// Whether clients must authenticate (SASL/SCRAM).
    authentication: bool,
}

fn broker_binary() -> Result<PathBuf> {
    std::env::var("CHANNELSHIFT_STACK_TANSU_BIN")
        .map(PathBuf::from)
        .context("CHANNELSHIFT_STACK_TANSU_BIN is not set: run the tests with `cargo xtask test`")
}

impl PrivateBroker {
    pub async fn start() -> Result<Self> {
        let mut broker = Self {
            server: OwnedServer::new("broker")?,
            port: free_port()?,
            advertised: None,
            authentication: false,
        };
        broker.restart().await?;
        Ok(broker)
    }

    /// `host:port` for clients.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// (Re)starts the broker on the same port and storage, and waits until it
    /// accepts connections.
    pub async fn restart(&mut self) -> Result<()> {
        let listener = format!("tcp://{}", self.address());
        let advertised = self.advertised.clone().unwrap_or_else(|| listener.clone());
        let mut command = Command::new(broker_binary()?);
        command
            .args(["broker", "--listener-url", &listener])
            .args(["--advertised-listener-url", &advertised]);
        if self.authentication {
            command.arg("--authentication");
        }
        command
            .args(["--storage-engine", "sqlite://tansu.db"])
            .args(["--cluster-id", "channelshift-test"])
            // CHANNELSHIFT_TEST_BROKER_LOG=info shows the group coordinator's
            // joins, syncs and missed heartbeats.
            .env(
                "RUST_LOG",
                std::env::var("CHANNELSHIFT_TEST_BROKER_LOG").unwrap_or_else(|_| "warn".into()),
            );
        self.server.spawn(command)?;
        listens("private broker", &self.address()).await
    }

    /// Stops the broker abruptly (by PID).
    pub fn kill(&mut self) -> Result<()> {
        self.server.kill()
    }
}

/// A private broker as a council runs one: clients authenticate with
/// SASL/SCRAM-SHA-512 (Tansu's own users) and reach it over TLS, through
/// a TLS-terminating proxy (`socat`) whose certificate a test CA signed
/// for `127.0.0.1`. Tansu 0.6's own TLS options cannot be given together,
/// hence the proxy; the broker advertises the proxy's address.
pub struct SecuredBroker {
    broker: PrivateBroker,
    proxy: OwnedServer,
    tls_port: u16,
}

impl SecuredBroker {
    pub const USER: &'static str = "channelshift";

    /// Starts the broker, creates [`Self::USER`] with `password`, restarts
    /// it requiring authentication, and starts the proxy.
    pub async fn start(password: &str) -> Result<Self> {
        let mut broker = PrivateBroker::start().await?;
        let status = Command::new(broker_binary()?)
            .args(["user", "create", "--broker"])
            .arg(format!("tcp://{}", broker.address()))
            .args([Self::USER, password, "--mechanism", "scram512"])
            .status()
            .context("running tansu user create")?;
        anyhow::ensure!(status.success(), "tansu user create failed ({status})");
        let tls_port = free_port()?;
        broker.kill()?;
        broker.advertised = Some(format!("tcp://127.0.0.1:{tls_port}"));
        broker.authentication = true;
        broker.restart().await?;

        let mut proxy = OwnedServer::new("tls-proxy")?;
        crate::tls::certificates(&proxy.dir)?;
        let mut command = Command::new("socat");
        command
            .arg(format!(
                "OPENSSL-LISTEN:{tls_port},bind=127.0.0.1,reuseaddr,fork,\
                 cert=server.pem,key=server.key,verify=0"
            ))
            .arg(format!("TCP:{}", broker.address()));
        proxy.spawn(command)?;
        listens("TLS proxy", &format!("127.0.0.1:{tls_port}")).await?;
        Ok(Self {
            broker,
            proxy,
            tls_port,
        })
    }

    /// `host:port` of the TLS proxy: what clients are given.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.tls_port)
    }

    /// The plaintext port, which requires SASL but not TLS.
    pub fn plaintext_address(&self) -> String {
        self.broker.address()
    }

    /// The CA that signed the proxy's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.proxy.dir.join("ca.pem")
    }

    /// A CA that signed nothing here.
    pub fn other_ca_file(&self) -> PathBuf {
        self.proxy.dir.join("other-ca.pem")
    }
}

/// Waits until `address` accepts TCP connections.
async fn listens(what: &str, address: &str) -> Result<()> {
    crate::eventually(
        &format!("{what} listens"),
        Duration::from_secs(30),
        || async {
            Ok(tokio::net::TcpStream::connect(address)
                .await
                .ok()
                .map(|_| ()))
        },
    )
    .await
}
