//! Test certificates for the TLS a council's Kafka and ClickHouse use.

use anyhow::{Context, Result};
use std::process::Command;

/// Writes a test CA (`ca.pem`), a server certificate it signed for
/// `127.0.0.1` and `localhost` (`server.pem`, `server.key`), and an
/// unrelated CA (`other-ca.pem`) into `dir`, with the `openssl` command.
pub fn certificates(dir: &std::path::Path) -> Result<()> {
    let openssl = |args: &[&str]| -> Result<()> {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .context("running openssl")?;
        anyhow::ensure!(
            output.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(())
    };
    for (key, cert, subject) in [
        ("ca.key", "ca.pem", "/CN=Channelshift test CA"),
        ("other-ca.key", "other-ca.pem", "/CN=Some other CA"),
    ] {
        openssl(&[
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days",
            "2", "-subj", subject,
        ])?;
    }
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName = IP:127.0.0.1, DNS:localhost\n\
         basicConstraints = CA:FALSE\n\
         keyUsage = digitalSignature, keyEncipherment\n\
         extendedKeyUsage = serverAuth\n",
    )?;
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ])?;
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ])?;
    Ok(())
}
