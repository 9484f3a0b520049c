//! Kafka as a council runs it: every client over TLS with SASL/SCRAM-SHA-512,
//! against a private broker that requires authentication behind a TLS proxy
//! whose certificate a test CA signed. Events travel end to end (producer,
//! ingest, reconcile); a wrong password, a missing login and a CA that did
//! not sign the broker's certificate are each refused with an error that
//! says so.

use anyhow::{Context, Result};
use channelshift_ingest::reconcile::{reconcile, ReconcileConfig, Span};
use channelshift_kafka::{KafkaSecurity, Mechanism, Protocol};
use channelshift_tests::broker::SecuredBroker;
use channelshift_tests::checks::contact_totals;
use channelshift_tests::kafka::produce_all;
use channelshift_tests::process::IngestProcess;
use channelshift_tests::{contact_events, create_topics, eventually, producer, Scope};
use secrecy::SecretString;
use std::path::PathBuf;
use std::time::Duration;

const PASSWORD: &str = "scram-test-password-5c1e9a";

fn sasl_ssl(password: &str, ca: PathBuf) -> KafkaSecurity {
    KafkaSecurity {
        protocol: Protocol::SaslSsl,
        sasl_mechanism: Some(Mechanism::ScramSha512),
        username: Some(SecuredBroker::USER.into()),
        password: Some(SecretString::from(password.to_string())),
        ca_file: Some(ca),
        ..KafkaSecurity::default()
    }
}

/// Asks `brokers` for metadata with `security`: Ok, or why not in
/// librdkafka's words (what ingest logs when it cannot connect).
fn metadata(brokers: &str, security: &KafkaSecurity) -> Result<(), String> {
    match security.diagnose(brokers) {
        None => Ok(()),
        Some(why) => Err(why),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_travel_end_to_end_over_sasl_ssl_and_bad_credentials_are_refused() -> Result<()> {
    let broker = SecuredBroker::start(PASSWORD).await?;
    let right = sasl_ssl(PASSWORD, broker.ca_file());
    metadata(&broker.address(), &right)
        .map_err(|error| anyhow::anyhow!("the right settings were refused: {error}"))?;

    // A wrong password: refused, and the error says authentication failed.
    let refused = metadata(
        &broker.address(),
        &sasl_ssl("wrong-password", broker.ca_file()),
    )
    .err()
    .context("a wrong password was served")?;
    assert!(
        refused.to_lowercase().contains("authentication"),
        "the refusal does not say why: {refused}"
    );
    // TLS without SASL: the broker requires a login.
    let anonymous = KafkaSecurity {
        protocol: Protocol::Ssl,
        ca_file: Some(broker.ca_file()),
        ..KafkaSecurity::default()
    };
    assert!(
        metadata(&broker.address(), &anonymous).is_err(),
        "a client without SASL was served"
    );
    // Plaintext without SASL on the broker's own port: refused too.
    assert!(
        metadata(&broker.plaintext_address(), &KafkaSecurity::default()).is_err(),
        "a plaintext client without SASL was served"
    );
    // A CA that did not sign the proxy's certificate: the handshake fails.
    let untrusted = metadata(
        &broker.address(),
        &sasl_ssl(PASSWORD, broker.other_ca_file()),
    )
    .err()
    .context("a certificate from an untrusted CA was accepted")?;
    assert!(
        untrusted.to_lowercase().contains("ssl") || untrusted.contains("certificate"),
        "the refusal does not say why: {untrusted}"
    );

    // End to end: producer, ingest and reconcile all over SASL_SSL.
    let mut scope = Scope::new("sasl-ssl");
    scope.stack.kafka_brokers = broker.address();
    scope.stack.kafka_security = right;
    create_topics(&scope).await?;
    let events = contact_events("secure", 0..500);
    produce_all(&producer(&scope)?, &scope.contact_topic, &events).await?;
    let config = scope.ingest_config();
    let ingest = IngestProcess::ingest("sasl-ssl", config.clone()).await?;
    let store = scope.store().await?;
    eventually(
        "500 events stored over SASL_SSL",
        Duration::from_secs(90),
        || async { Ok((contact_totals(&store).await?.rows >= 500).then_some(())) },
    )
    .await
    .map_err(|error| error.context(ingest.log_tail()))?;
    let report = reconcile(&ReconcileConfig::from(&config), Span::FromBeginning).await?;
    eventually(
        "the reconciliation is exact",
        Duration::from_secs(30),
        || {
            let config = ReconcileConfig::from(&config);
            async move {
                let report = reconcile(&config, Span::FromBeginning).await?;
                Ok(report.is_exact().then_some(()))
            }
        },
    )
    .await
    .map_err(|error| error.context(format!("{report}")))?;
    assert_eq!(contact_totals(&store).await?.rows, 500);
    drop(ingest);

    // Ingest given a wrong password says so in its log and is not ready.
    let mut wrong = scope.ingest_config();
    wrong.kafka.security = sasl_ssl("wrong-password", broker.ca_file());
    wrong.kafka.group_id = format!("{}-wrong", wrong.kafka.group_id);
    let refused = IngestProcess::ingest("sasl-ssl-wrong", wrong).await?;
    eventually(
        "ingest logs the authentication failure",
        Duration::from_secs(90),
        || async { Ok(refused.log_contains("uthentication").then_some(())) },
    )
    .await
    .map_err(|error| error.context(refused.log_tail()))?;
    assert_ne!(refused.readiness().await?, 200, "ready without a broker");
    drop(refused);
    scope.drop_database().await
}

/// The dead-letter topics ingest creates keep a letter (the refused message,
/// personal data included) for `kafka.dead_letter_retention_days`; the
/// event topics keep the broker's default.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letter_topics_are_created_with_their_retention() -> Result<()> {
    use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
    use rdkafka::client::DefaultClientContext;
    let scope = Scope::new("dlq-retention");
    let mut kafka = scope.ingest_config().kafka;
    kafka.dead_letter_retention_days = 7;
    channelshift_ingest::pipeline::create_topics(&kafka).await?;
    let admin: AdminClient<DefaultClientContext> = kafka.client()?.create()?;
    let retention = |topic: String| {
        let admin = &admin;
        async move {
            let described = admin
                .describe_configs(
                    &[ResourceSpecifier::Topic(&topic)],
                    &AdminOptions::new().request_timeout(Some(Duration::from_secs(10))),
                )
                .await?;
            let resource = described
                .into_iter()
                .next()
                .context("no answer")?
                .map_err(|error| anyhow::anyhow!("describing {topic}: {error:?}"))?;
            anyhow::Ok(
                resource
                    .get("retention.ms")
                    .and_then(|entry| entry.value.clone()),
            )
        }
    };
    let dead_letters =
        channelshift_ingest::config::KafkaConfig::dead_letter_topic(&kafka.contact_topic);
    assert_eq!(
        retention(dead_letters).await?.as_deref(),
        Some("604800000"),
        "7 days in ms"
    );
    assert_ne!(
        retention(kafka.contact_topic.clone()).await?.as_deref(),
        Some("604800000")
    );
    Ok(())
}
