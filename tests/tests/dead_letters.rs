//! Bad input never blocks a partition and is never lost: each kind goes to
//! `<topic>.dlq` byte for byte, with headers naming the reason, the field and
//! where it came from, while the good messages around it are stored.

use anyhow::Result;
use channelshift_tests::checks::{contact_totals, satisfaction_totals, ContactTotals};
use channelshift_tests::kafka::{header, produce_all, read_topic};
use channelshift_tests::process::IngestProcess;
use channelshift_tests::{
    contact_event, create_topics, eventually, producer, satisfaction_response, Scope,
};
use rdkafka::Message;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

fn good_contact() -> Value {
    serde_json::from_slice(&contact_event("template", 0)).expect("test event is JSON")
}

fn with(field: &str, value: Value) -> Vec<u8> {
    let mut message = good_contact();
    message["event_id"] = json!(format!("bad-{field}"));
    message[field] = value;
    message.to_string().into_bytes()
}

fn without(field: &str) -> Vec<u8> {
    let mut message = good_contact();
    message["event_id"] = json!("bad-missing");
    message
        .as_object_mut()
        .expect("test event is an object")
        .remove(field);
    message.to_string().into_bytes()
}

/// (payload, expected reason, expected field) for every kind of bad contact event.
fn bad_contacts(max_message_bytes: usize) -> Vec<(Vec<u8>, &'static str, &'static str)> {
    let in_future = (chrono::Utc::now() + chrono::TimeDelta::hours(1)).to_rfc3339();
    let mut oversized = good_contact();
    oversized["source"] = json!("x".repeat(max_message_bytes));
    vec![
        (br#"{"schema_version": 1, "event_id": "#.to_vec(), "invalid_json", "event_id"),
        (b"[1, 2, 3]".to_vec(), "not_an_object", ""),
        (vec![0xff, 0xfe, 0x00, 0x41], "invalid_json", ""),
        (Vec::new(), "invalid_json", ""),
        (without("council"), "missing_field", "council"),
        (with("wait_seconds", json!("ten")), "wrong_type", "wait_seconds"),
        (with("channel", json!("fax")), "invalid_value", "channel"),
        (with("council", json!("X1234")), "invalid_value", "council"),
        (with("wait_seconds", json!(90_000)), "out_of_range", "wait_seconds"),
        (with("occurred_at", json!(in_future)), "in_future", "occurred_at"),
        // Older than the test's max_event_age_days (ten years).
        (with("occurred_at", json!("2001-06-01T10:00:00Z")), "too_old", "occurred_at"),
        (with("schema_version", json!(2)), "unsupported_schema_version", "schema_version"),
        (
            br#"{"schema_version":1,"event_id":"dup","council":"E07000041","occurred_at":"2025-01-01T10:00:00Z","channel":"web","channel":"phone","service":"waste","outcome":"completed","customer_type":"resident"}"#.to_vec(),
            "duplicate_field",
            "channel",
        ),
        (oversized.to_string().into_bytes(), "too_large", ""),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_go_to_the_dead_letter_topic_and_good_ones_still_flow() -> Result<()> {
    let scope = Scope::new("dlq");
    create_topics(&scope).await?;
    let mut config = scope.ingest_config();
    config.max_event_age_days = Some(3_650);
    let max_message_bytes = config.max_message_bytes;
    let ingest = IngestProcess::ingest("dlq", config).await?;
    let producer = producer(&scope)?;

    // Everything on one key, so one partition: good messages after bad ones
    // prove that a rejection does not block the partition.
    let key = "one-partition".to_string();
    let bad = bad_contacts(max_message_bytes);
    let mut contacts = Vec::new();
    for (i, (payload, _, _)) in bad.iter().enumerate() {
        contacts.push((key.clone(), contact_event(&format!("good-{i}"), i)));
        contacts.push((key.clone(), payload.clone()));
    }
    contacts.push((key.clone(), contact_event("good-last", 99)));
    produce_all(&producer, &scope.contact_topic, &contacts).await?;
    let bad_responses = vec![
        (
            {
                let mut value: Value =
                    serde_json::from_slice(&satisfaction_response("r-bad-1", 1))?;
                value["score"] = json!(9);
                value.to_string().into_bytes()
            },
            "out_of_range",
            "score",
        ),
        (
            {
                let mut value: Value =
                    serde_json::from_slice(&satisfaction_response("r-bad-2", 2))?;
                value["instrument"] = json!("stars");
                value.to_string().into_bytes()
            },
            "invalid_value",
            "instrument",
        ),
    ];
    let mut commented: Value = serde_json::from_slice(&satisfaction_response("r-good-1", 1))?;
    commented["comment"] =
        json!("Bin missed again. Ring 07700 900123 or jo@example.org, I'm at SW1A 1AA");
    let mut responses = vec![(key.clone(), commented.to_string().into_bytes())];
    for (payload, _, _) in &bad_responses {
        responses.push((key.clone(), payload.clone()));
    }
    responses.push((key.clone(), satisfaction_response("r-good-2", 2)));
    produce_all(&producer, &scope.satisfaction_topic, &responses).await?;

    let good_contacts = (bad.len() + 1) as u64;
    let store = scope.store().await?;
    eventually("good messages stored", Duration::from_secs(60), || async {
        let totals = contact_totals(&store).await?;
        let (responses, _) = satisfaction_totals(&store).await?;
        Ok((totals.settled() == good_contacts && responses == 2).then_some(()))
    })
    .await
    .map_err(|error| error.context(ingest.log_tail()))?;
    assert_eq!(
        contact_totals(&store).await?,
        ContactTotals::exactly(good_contacts)
    );

    // Nothing personal reaches ClickHouse: the comment is scrubbed.
    #[derive(clickhouse::Row, serde::Deserialize)]
    struct Comment {
        comment: String,
    }
    let stored = store
        .client()
        .query("SELECT comment FROM satisfaction_responses WHERE response_id = 'r-good-1'")
        .fetch_one::<Comment>()
        .await?;
    assert_eq!(
        stored.comment,
        "Bin missed again. Ring [phone] or [email], I'm at [postcode]"
    );

    // Contact dead letters: the original bytes and the right headers.
    let source = read_topic(
        &scope.stack.kafka_brokers,
        &scope.contact_topic,
        contacts.len(),
        Duration::from_secs(30),
    )?;
    let original: BTreeMap<(i32, i64), Vec<u8>> = source
        .iter()
        .map(|m| {
            (
                (m.partition(), m.offset()),
                m.payload().unwrap_or_default().to_vec(),
            )
        })
        .collect();
    let dead = read_topic(
        &scope.stack.kafka_brokers,
        &format!("{}.dlq", scope.contact_topic),
        bad.len(),
        Duration::from_secs(30),
    )?;
    assert_eq!(
        dead.len(),
        bad.len(),
        "one dead letter per bad contact event, no more"
    );
    for (letter, (payload, reason, field)) in dead.iter().zip(&bad) {
        let got = letter.payload().unwrap_or_default();
        assert_eq!(
            got,
            payload.as_slice(),
            "dead letter keeps the original bytes ({reason})"
        );
        assert_eq!(
            header(letter, "channelshift-reason").as_deref(),
            Some(*reason)
        );
        let expected_field = Some(*field).filter(|field| !field.is_empty());
        assert_eq!(
            header(letter, "channelshift-field").as_deref(),
            expected_field,
            "{reason}"
        );
        assert!(!header(letter, "channelshift-detail")
            .unwrap_or_default()
            .is_empty());
        assert_eq!(
            header(letter, "channelshift-source-topic").as_deref(),
            Some(scope.contact_topic.as_str())
        );
        let partition: i32 = header(letter, "channelshift-source-partition")
            .unwrap_or_default()
            .parse()?;
        let offset: i64 = header(letter, "channelshift-source-offset")
            .unwrap_or_default()
            .parse()?;
        assert_eq!(
            original.get(&(partition, offset)).map(Vec::as_slice),
            Some(payload.as_slice()),
            "the headers point at the original message ({reason})"
        );
    }

    let dead_responses = read_topic(
        &scope.stack.kafka_brokers,
        &format!("{}.dlq", scope.satisfaction_topic),
        bad_responses.len(),
        Duration::from_secs(30),
    )?;
    assert_eq!(dead_responses.len(), bad_responses.len());
    for (letter, (payload, reason, field)) in dead_responses.iter().zip(&bad_responses) {
        assert_eq!(letter.payload().unwrap_or_default(), payload.as_slice());
        assert_eq!(
            header(letter, "channelshift-reason").as_deref(),
            Some(*reason)
        );
        assert_eq!(
            header(letter, "channelshift-field").as_deref(),
            Some(*field)
        );
    }

    // The rejection metric counts each reason.
    let metrics = ingest.metrics().await?;
    let mut expected: BTreeMap<&str, f64> = BTreeMap::new();
    for (_, reason, _) in bad.iter().chain(&bad_responses) {
        *expected.entry(reason).or_default() += 1.0;
    }
    for (reason, count) in expected {
        let seen = channelshift_tests::process::metric_sum(
            &metrics,
            "channelshift_ingest_messages_rejected_total",
            &[("reason", reason)],
        );
        assert_eq!(seen, count, "rejections counted for {reason}");
    }
    drop(ingest);
    scope.drop_database().await
}
