//! The API's own HTTPS listener (`[tls]`): the real server answers over TLS
//! with the configured certificate, a client trusting another CA is refused,
//! and plain HTTP on the TLS port gets no answer.

use anyhow::{Context, Result};
use channelshift_api::config::{ApiConfig, AuthConfig, ServerLimits, TlsConfig};
use channelshift_tests::process::free_port;
use channelshift_tests::server::OwnedServer;
use channelshift_tests::{eventually, Scope};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// `curl` of `url`, trusting `ca`: the body, or curl's exit code and error.
fn curl(url: &str, ca: &Path) -> Result<String, String> {
    let output = Command::new("curl")
        .args([
            "--silent",
            "--show-error",
            "--fail",
            "--max-time",
            "10",
            "--cacert",
        ])
        .arg(ca)
        .arg(url)
        .output()
        .map_err(|error| format!("running curl: {error}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "{}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_serves_https_with_its_certificate_and_nothing_else() -> Result<()> {
    // A folder for the certificates only: nothing is started in it.
    let certificates = OwnedServer::new("api-tls")?;
    let dir = certificates.dir.clone();
    channelshift_tests::tls::certificates(&dir)?;
    let scope = Scope::new("api-tls");
    let port = free_port()?;
    let config = ApiConfig {
        councils: Default::default(),
        listen: SocketAddr::from(([127, 0, 0, 1], port)),
        clickhouse: scope.reader(),
        auth: AuthConfig {
            token_sha256: vec!["0".repeat(64)],
            revoked_sha256: Vec::new(),
        },
        kpi: Default::default(),
        server: ServerLimits::default(),
        query: Default::default(),
        packs: Default::default(),
        tls: Some(TlsConfig {
            certificate_file: dir.join("server.pem"),
            key_file: dir.join("server.key"),
        }),
    };
    let (trigger, shutdown) = channelshift_runtime::shutdown::channel();
    let server = tokio::spawn(channelshift_api::run(config, shutdown));

    let url = format!("https://127.0.0.1:{port}/healthz");
    let ca = dir.join("ca.pem");
    let body = eventually(
        "the API answers over HTTPS",
        Duration::from_secs(30),
        || {
            let (url, ca) = (url.clone(), ca.clone());
            async move { Ok(tokio::task::spawn_blocking(move || curl(&url, &ca).ok()).await?) }
        },
    )
    .await?;
    assert!(!body.is_empty());

    let other = dir.join("other-ca.pem");
    let refused = tokio::task::spawn_blocking({
        let url = url.clone();
        move || curl(&url, &other)
    })
    .await?
    .err()
    .context("a client trusting another CA was served")?;
    assert!(refused.contains("certificate"), "{refused}");

    let plain = format!("http://127.0.0.1:{port}/healthz");
    let refused = tokio::task::spawn_blocking(move || curl(&plain, &ca))
        .await?
        .err()
        .context("plain HTTP was served on the TLS port")?;
    assert!(!refused.is_empty());

    trigger.fire();
    server.await??;
    Ok(())
}
