//! A server process a test owns: it lives in a temporary folder, logs there,
//! is stopped by its PID, and its folder goes with it.

use anyhow::{Context, Result};
use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct OwnedServer {
    pub dir: PathBuf,
    child: Option<Child>,
}

impl OwnedServer {
    /// A fresh folder for a server of this `kind`; nothing is started yet.
    pub fn new(kind: &str) -> Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "channelshift-test-{kind}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        fs::create_dir_all(&dir)?;
        Ok(Self { dir, child: None })
    }

    /// Starts `command` in the folder, appending its output to `server.log`.
    pub fn spawn(&mut self, mut command: Command) -> Result<()> {
        anyhow::ensure!(self.child.is_none(), "the server is already running");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))?;
        let child = command
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {command:?}"))?;
        self.child = Some(child);
        Ok(())
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

impl Drop for OwnedServer {
    fn drop(&mut self) {
        let _ = self.kill();
        // As for ingest replicas: CHANNELSHIFT_TEST_KEEP_LOGS keeps the
        // folder (and its log) for a look after a long run.
        if std::env::var_os("CHANNELSHIFT_TEST_KEEP_LOGS").is_none() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Waits until `url` answers with a success status.
pub async fn await_http_ok(what: &str, url: &str, timeout: Duration) -> Result<()> {
    let client = reqwest::Client::new();
    crate::eventually(what, timeout, || {
        let request = client.get(url).send();
        async move {
            Ok(request
                .await
                .ok()
                .filter(|response| response.status().is_success())
                .map(|_| ()))
        }
    })
    .await
}
