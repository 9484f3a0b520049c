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
        let mut command = Command::new(broker_binary()?);
        command
            .args(["broker", "--listener-url", &listener])
            .args(["--advertised-listener-url", &listener])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .args(["--cluster-id", "channelshift-test"])
            // CHANNELSHIFT_TEST_BROKER_LOG=info shows the group coordinator's
            // joins, syncs and missed heartbeats.
            .env(
                "RUST_LOG",
                std::env::var("CHANNELSHIFT_TEST_BROKER_LOG").unwrap_or_else(|_| "warn".into()),
            );
        self.server.spawn(command)?;
        let address = self.address();
        crate::eventually("private broker listens", Duration::from_secs(30), || {
            let address = address.clone();
            async move {
                Ok(tokio::net::TcpStream::connect(&address)
                    .await
                    .ok()
                    .map(|_| ()))
            }
        })
        .await
    }

    /// Stops the broker abruptly (by PID).
    pub fn kill(&mut self) -> Result<()> {
        self.server.kill()
    }
}
