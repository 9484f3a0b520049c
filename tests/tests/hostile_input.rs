//! The hostile corpus (`tests/corpus/hostile.json`) through the real broker
//! to the real ingest process: every message is either stored as it should be
//! (free text inert, personal data scrubbed, references pseudonymised) or
//! dead-lettered with the expected reason and field, and none crashes or
//! stalls ingest: valid messages sent after the corpus still arrive.
//!
//! Each corpus entry has `name`, `topic` (`contact` or `satisfaction`), the
//! payload as `text` (UTF-8) or `hex` (anything else), an optional `fill`
//! `[open, n, middle, close]` that replaces `@@FILL@@` with n times `open`,
//! then `middle`, then n times `close` (deep nesting and huge strings without
//! a huge file), and `expect`: `"stored"` (with the stored `id` and optional
//! `stored` column values) or `{"reason": …, "field": …}`.

use anyhow::{Context, Result};
use channelshift_tests::kafka::{header, produce_all, read_topic};
use channelshift_tests::process::{metric_sum, IngestProcess};
use channelshift_tests::{
    contact_events, create_topics, eventually, producer, satisfaction_responses, Scope,
};
use rdkafka::Message;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

const CORPUS: &str = include_str!("../corpus/hostile.json");

#[derive(Deserialize)]
struct Case {
    name: String,
    topic: String,
    text: Option<String>,
    hex: Option<String>,
    fill: Option<(String, usize, Option<String>, Option<String>)>,
    expect: Expect,
    id: Option<String>,
    #[serde(default)]
    stored: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Expect {
    Stored(String),
    Rejected {
        reason: String,
        field: Option<String>,
    },
}

impl Case {
    fn payload(&self) -> Result<Vec<u8>> {
        let mut bytes = match (&self.text, &self.hex) {
            (Some(text), None) => text.clone().into_bytes(),
            (None, Some(hex)) => hex::decode(hex)?,
            _ => anyhow::bail!("{}: give exactly one of text and hex", self.name),
        };
        if let Some((open, times, middle, close)) = &self.fill {
            let fill = format!(
                "{}{}{}",
                open.repeat(*times),
                middle.as_deref().unwrap_or_default(),
                close.as_deref().unwrap_or_default().repeat(*times)
            );
            let text = String::from_utf8(bytes).context("a filled payload is text")?;
            anyhow::ensure!(text.contains("@@FILL@@"), "{}: no @@FILL@@", self.name);
            bytes = text.replace("@@FILL@@", &fill).into_bytes();
        }
        Ok(bytes)
    }

    fn is_contact(&self) -> bool {
        self.topic == "contact"
    }
}

fn corpus() -> Result<Vec<(Case, Vec<u8>)>> {
    let cases: Vec<Case> = serde_json::from_str(CORPUS).context("parsing the corpus")?;
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for case in cases {
        anyhow::ensure!(
            matches!(case.topic.as_str(), "contact" | "satisfaction"),
            "{}: topic",
            case.name
        );
        if let Expect::Stored(word) = &case.expect {
            anyhow::ensure!(word == "stored" && case.id.is_some(), "{}", case.name);
        }
        let payload = case.payload()?;
        anyhow::ensure!(
            seen.insert(payload.clone()),
            "{}: the same payload twice",
            case.name
        );
        out.push((case, payload));
    }
    Ok(out)
}

#[derive(clickhouse::Row, Deserialize)]
struct ContactText {
    event_id: String,
    source: String,
    journey_id: String,
    customer_hash: String,
}

#[derive(clickhouse::Row, Deserialize)]
struct ResponseText {
    response_id: String,
    comment: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_message_is_stored_inert_or_dead_lettered_and_ingest_keeps_going(
) -> Result<()> {
    let corpus = corpus()?;
    assert!(
        corpus.len() >= 50,
        "the corpus has {} messages",
        corpus.len()
    );
    let scope = Scope::new("hostile");
    create_topics(&scope).await?;
    let config = scope.ingest_config();
    let max_message_bytes = config.max_message_bytes;
    let mut ingest = IngestProcess::ingest("hostile", config).await?;
    let producer = producer(&scope)?;

    // One key per topic, so one partition: the valid messages after the
    // corpus prove that nothing in it blocked the partition.
    let key = "one-partition".to_string();
    let on = |contact: bool| -> Vec<(String, Vec<u8>)> {
        corpus
            .iter()
            .filter(|(case, _)| case.is_contact() == contact)
            .map(|(_, payload)| (key.clone(), payload.clone()))
            .collect()
    };
    let started = Instant::now();
    produce_all(&producer, &scope.contact_topic, &on(true)).await?;
    produce_all(&producer, &scope.satisfaction_topic, &on(false)).await?;
    let after = |messages: Vec<(String, Vec<u8>)>| -> Vec<(String, Vec<u8>)> {
        messages
            .into_iter()
            .map(|(_, payload)| (key.clone(), payload))
            .collect()
    };
    produce_all(
        &producer,
        &scope.contact_topic,
        &after(contact_events("after", 0..5)),
    )
    .await?;
    produce_all(
        &producer,
        &scope.satisfaction_topic,
        &after(satisfaction_responses("after", 0..5)),
    )
    .await?;

    let stored_contacts: Vec<&str> = corpus
        .iter()
        .filter(|(case, _)| case.is_contact() && matches!(case.expect, Expect::Stored(_)))
        .filter_map(|(case, _)| case.id.as_deref())
        .collect();
    let stored_responses: Vec<&str> = corpus
        .iter()
        .filter(|(case, _)| !case.is_contact() && matches!(case.expect, Expect::Stored(_)))
        .filter_map(|(case, _)| case.id.as_deref())
        .collect();
    let (want_contacts, want_responses) = (stored_contacts.len() + 5, stored_responses.len() + 5);
    let store = scope.store().await?;
    let (contacts, responses) = eventually(
        "the corpus and the valid messages after it stored",
        Duration::from_secs(120),
        || {
            let store = store.clone();
            async move {
                let contacts = store
                    .client()
                    .query("SELECT event_id, source, journey_id, customer_hash FROM contact_events")
                    .fetch_all::<ContactText>()
                    .await?;
                let responses = store
                    .client()
                    .query("SELECT response_id, comment FROM satisfaction_responses")
                    .fetch_all::<ResponseText>()
                    .await?;
                Ok(
                    (contacts.len() == want_contacts && responses.len() == want_responses)
                        .then_some((contacts, responses)),
                )
            }
        },
    )
    .await
    .map_err(|error| error.context(ingest.log_tail()))?;
    println!(
        "{} hostile messages, then 10 valid ones, through ingest in {:.1}s",
        corpus.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        ingest.wait(Duration::ZERO).await?.is_none(),
        "ingest exited: {}",
        ingest.log_tail()
    );

    // Exactly the expected rows, with free text stored as inert data.
    let contacts: HashMap<&str, &ContactText> = contacts
        .iter()
        .map(|row| (row.event_id.as_str(), row))
        .collect();
    let responses: HashMap<&str, &ResponseText> = responses
        .iter()
        .map(|row| (row.response_id.as_str(), row))
        .collect();
    for (case, _) in &corpus {
        let Some(id) = case.id.as_deref() else {
            continue;
        };
        if case.is_contact() {
            let row = contacts
                .get(id)
                .with_context(|| format!("{}: {id} not stored", case.name))?;
            for (column, want) in &case.stored {
                match column.as_str() {
                    "source" => assert_eq!(&row.source, want, "{}", case.name),
                    "journey_id" => assert_eq!(&row.journey_id, want, "{}", case.name),
                    "customer_hash_is_not" => {
                        assert_ne!(&row.customer_hash, want, "{}", case.name);
                        assert_eq!(row.customer_hash.len(), 32, "{}: a pseudonym", case.name);
                    }
                    other => anyhow::bail!("{}: no check for {other}", case.name),
                }
            }
        } else {
            let row = responses
                .get(id)
                .with_context(|| format!("{}: {id} not stored", case.name))?;
            for (column, want) in &case.stored {
                anyhow::ensure!(column == "comment", "{}: no check for {column}", case.name);
                assert_eq!(&row.comment, want, "{}", case.name);
            }
        }
    }
    for id in (0..5).map(|i| format!("after-{i}")) {
        assert!(contacts.contains_key(id.as_str()) && responses.contains_key(id.as_str()));
    }

    // Every other message is a dead letter, byte for byte, with its reason.
    let by_payload: HashMap<&[u8], &Case> = corpus
        .iter()
        .map(|(case, payload)| (payload.as_slice(), case))
        .collect();
    let mut rejected_by_reason: BTreeMap<String, f64> = BTreeMap::new();
    for contact in [true, false] {
        let topic = if contact {
            &scope.contact_topic
        } else {
            &scope.satisfaction_topic
        };
        let expected = corpus
            .iter()
            .filter(|(case, _)| case.is_contact() == contact)
            .filter(|(case, _)| matches!(case.expect, Expect::Rejected { .. }))
            .count();
        let letters = read_topic(
            &scope.stack.kafka_brokers,
            &format!("{topic}.dlq"),
            expected,
            Duration::from_secs(30),
        )?;
        assert_eq!(letters.len(), expected, "dead letters on {topic}.dlq");
        for letter in &letters {
            let payload = letter.payload().unwrap_or_default();
            let case = by_payload
                .get(payload)
                .with_context(|| format!("a dead letter not from the corpus on {topic}"))?;
            let Expect::Rejected { reason, field } = &case.expect else {
                panic!(
                    "{}: dead-lettered, but should be stored: {:?}",
                    case.name,
                    header(letter, "channelshift-detail")
                );
            };
            assert_eq!(
                header(letter, "channelshift-reason").as_deref(),
                Some(reason.as_str()),
                "{}: {:?}",
                case.name,
                header(letter, "channelshift-detail")
            );
            assert_eq!(
                header(letter, "channelshift-field"),
                field.clone(),
                "{}: {:?}",
                case.name,
                header(letter, "channelshift-detail")
            );
            let detail = header(letter, "channelshift-detail").unwrap_or_default();
            assert!(!detail.is_empty(), "{}", case.name);
            // A header is no place to echo a 100 KB message.
            assert!(detail.len() <= max_message_bytes / 4, "{}", case.name);
            *rejected_by_reason.entry(reason.clone()).or_default() += 1.0;
        }
    }

    // The rejection metric saw each one, and ingest is still healthy.
    let metrics = ingest.metrics().await?;
    for (reason, count) in &rejected_by_reason {
        assert_eq!(
            metric_sum(
                &metrics,
                "channelshift_ingest_messages_rejected_total",
                &[("reason", reason)]
            ),
            *count,
            "rejections counted for {reason}"
        );
    }
    assert_eq!(ingest.readiness().await?, 200, "{}", ingest.log_tail());
    println!("dead letters by reason: {rejected_by_reason:?}");
    drop(ingest);
    scope.drop_database().await
}
