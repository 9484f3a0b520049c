//! Kafka helpers for tests: producing many messages quickly, reading a
//! dead-letter topic, and looking at or resetting a group's offsets.

use anyhow::{Context, Result};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::time::Duration;

/// Produces every `(key, payload)` and waits for all acknowledgements.
pub async fn produce_all(
    producer: &FutureProducer,
    topic: &str,
    messages: &[(String, Vec<u8>)],
) -> Result<()> {
    for chunk in messages.chunks(2_000) {
        let sends = chunk.iter().map(|(key, payload)| {
            producer.send(
                FutureRecord::to(topic).key(key).payload(payload),
                Timeout::After(Duration::from_secs(60)),
            )
        });
        for result in futures::future::join_all(sends).await {
            result.map_err(|(error, _)| anyhow::anyhow!("producing to {topic}: {error}"))?;
        }
    }
    Ok(())
}

fn consumer(brokers: &str, group: &str) -> Result<BaseConsumer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()?)
}

fn partitions(consumer: &BaseConsumer, topic: &str) -> Result<Vec<i32>> {
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let topic = metadata
        .topics()
        .first()
        .context("topic missing from metadata")?;
    Ok(topic.partitions().iter().map(|p| p.id()).collect())
}

/// Every message on `topic` from the beginning, read until `expected` have
/// arrived or `timeout` passes (then what arrived is returned).
pub fn read_topic(
    brokers: &str,
    topic: &str,
    expected: usize,
    timeout: Duration,
) -> Result<Vec<OwnedMessage>> {
    let consumer = consumer(
        brokers,
        &format!("reader-{}", uuid::Uuid::new_v4().simple()),
    )?;
    let mut list = TopicPartitionList::new();
    for partition in partitions(&consumer, topic)? {
        list.add_partition_offset(topic, partition, Offset::Beginning)?;
    }
    consumer.assign(&list)?;
    let deadline = std::time::Instant::now() + timeout;
    let mut messages = Vec::new();
    while messages.len() < expected && std::time::Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            messages.push(message?.detach());
        }
    }
    // Linger briefly so that extra (unexpected) messages are seen too.
    let linger = std::time::Instant::now() + Duration::from_secs(2);
    while std::time::Instant::now() < linger {
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            messages.push(message?.detach());
        }
    }
    Ok(messages)
}

/// A header's value as text.
pub fn header(message: &OwnedMessage, key: &str) -> Option<String> {
    let headers = message.headers()?;
    headers
        .iter()
        .find(|header| header.key == key)
        .and_then(|header| header.value)
        .map(|value| String::from_utf8_lossy(value).into_owned())
}

/// Waits until `group` has committed every partition of `topic` up to the
/// end it has now, and returns those end offsets.
pub async fn await_committed(
    brokers: &str,
    group: &str,
    topic: &str,
    timeout: Duration,
) -> Result<BTreeMap<i32, i64>> {
    let ends = end_offsets(brokers, topic)?;
    crate::eventually(
        &format!("{group} committed {topic} to its end"),
        timeout,
        || async { Ok((committed_offsets(brokers, group, topic)? == ends).then_some(())) },
    )
    .await?;
    Ok(ends)
}

/// Waits until `group` has committed each of `topics` up to the end it has
/// now (a partition never written needs no commit). Ingest commits only what
/// it has stored or dead-lettered, so after this no row of what was produced
/// is still on its way.
pub async fn await_consumed(
    brokers: &str,
    group: &str,
    topics: &[&str],
    timeout: Duration,
) -> Result<()> {
    for topic in topics {
        let ends = end_offsets(brokers, topic)?;
        crate::eventually(
            &format!("{group} committed {topic} to its end"),
            timeout,
            || async {
                let committed = committed_offsets(brokers, group, topic)?;
                let done = ends
                    .iter()
                    .all(|(partition, &end)| end == 0 || committed.get(partition) == Some(&end));
                Ok(done.then_some(()))
            },
        )
        .await?;
    }
    Ok(())
}

/// The group's committed offset per partition of `topic` (-1001 when none).
pub fn committed_offsets(brokers: &str, group: &str, topic: &str) -> Result<BTreeMap<i32, i64>> {
    let consumer = consumer(brokers, group)?;
    let mut list = TopicPartitionList::new();
    for partition in partitions(&consumer, topic)? {
        list.add_partition(topic, partition);
    }
    let committed = consumer.committed_offsets(list, Duration::from_secs(10))?;
    Ok(committed
        .elements()
        .iter()
        .map(|element| (element.partition(), element.offset().to_raw().unwrap_or(-1)))
        .collect())
}

/// The high watermark (next offset to be written) per partition of `topic`.
pub fn end_offsets(brokers: &str, topic: &str) -> Result<BTreeMap<i32, i64>> {
    let consumer = consumer(
        brokers,
        &format!("watermarks-{}", uuid::Uuid::new_v4().simple()),
    )?;
    let mut ends = BTreeMap::new();
    for partition in partitions(&consumer, topic)? {
        let (_, high) = consumer.fetch_watermarks(topic, partition, Duration::from_secs(10))?;
        ends.insert(partition, high);
    }
    Ok(ends)
}

/// Commits offset 0 on every partition of `topic` for `group`, as an operator
/// resetting a group to replay a topic would (the group must be idle).
pub fn reset_offsets_to_start(brokers: &str, group: &str, topic: &str) -> Result<()> {
    let consumer = consumer(brokers, group)?;
    let mut list = TopicPartitionList::new();
    for partition in partitions(&consumer, topic)? {
        list.add_partition_offset(topic, partition, Offset::Offset(0))?;
    }
    consumer.commit(&list, rdkafka::consumer::CommitMode::Sync)?;
    Ok(())
}
