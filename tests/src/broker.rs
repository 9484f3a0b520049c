//! A Tansu broker of a test's own (SQLite storage in a temporary folder), for
//! tests that stop it: stopping the shared test stack's broker would fail
//! every other test running alongside.

use crate::process::free_port;
use anyhow::{Context, Result};
use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct PrivateBroker {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

fn broker_binary() -> Result<PathBuf> {
    std::env::var("CHANNELSHIFT_STACK_TANSU_BIN")
        .map(PathBuf::from)
        .context("CHANNELSHIFT_STACK_TANSU_BIN is not set: run the tests with `cargo xtask test`")
}

impl PrivateBroker {
    pub async fn start() -> Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "channelshift-test-broker-{}",
            uuid::Uuid::new_v4().simple()
        ));
        fs::create_dir_all(&dir)?;
        let mut broker = Self {
            dir,
            port: free_port()?,
            child: None,
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
        anyhow::ensure!(self.child.is_none(), "the broker is already running");
        let listener = format!("tcp://{}", self.address());
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("broker.log"))?;
        let child = Command::new(broker_binary()?)
            .args(["broker", "--listener-url", &listener])
            .args(["--advertised-listener-url", &listener])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .args(["--cluster-id", "channelshift-test"])
            .env("RUST_LOG", "warn")
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting the Tansu broker")?;
        self.child = Some(child);
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
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        let _ = self.kill();
        let _ = fs::remove_dir_all(&self.dir);
    }
}
