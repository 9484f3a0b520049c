//! ClickHouse over HTTPS, as ClickHouse Cloud and most councils' servers are
//! reached: a private 18.16 server with its `https_port` and a certificate
//! from a test CA. The store connects, migrates and reads when given that CA;
//! a CA that did not sign the certificate, or none (the public roots), is
//! refused; a CA file with a plain `http://` url is a configuration error.

use anyhow::{Context, Result};
use channelshift_store::{ClickHouseConfig, Record, Store, StoreError};
use channelshift_tests::clickhouse::PrivateClickHouse;

fn https(server: &PrivateClickHouse, ca: Option<std::path::PathBuf>) -> Result<ClickHouseConfig> {
    let mut config = server.config("channelshift_tls");
    config.url = server.https_url().context("started with HTTPS")?;
    config.ca_file = ca;
    Ok(config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_speaks_https_to_a_server_signed_by_the_configured_ca() -> Result<()> {
    let server = PrivateClickHouse::start_https().await?;

    let store = Store::connect(&https(&server, Some(server.ca_file()))?).await?;
    store.migrate().await?;
    assert_eq!(store.raw_rows(Record::Contact).await?, 0);

    let untrusted = Store::connect(&https(&server, Some(server.other_ca_file()))?)
        .await
        .err()
        .context("a certificate from another CA was accepted")?;
    assert!(
        format!("{untrusted:?}")
            .to_lowercase()
            .contains("certificate"),
        "the refusal does not say why: {untrusted:?}"
    );
    let public_roots = Store::connect(&https(&server, None)?)
        .await
        .err()
        .context("a certificate from a test CA passed as a public one")?;
    assert!(
        format!("{public_roots:?}")
            .to_lowercase()
            .contains("certificate"),
        "the refusal does not say why: {public_roots:?}"
    );

    let mut plain = https(&server, Some(server.ca_file()))?;
    plain.url = server.url();
    let refused = Store::connect(&plain)
        .await
        .err()
        .context("ca_file with http://")?;
    assert!(
        matches!(refused, StoreError::Tls { .. }),
        "not a configuration error: {refused:?}"
    );
    Ok(())
}
