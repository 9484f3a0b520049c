//! Reading a few messages again, by position, for the dead-letter topic. A
//! batch keeps rows, not the bytes they came from; when ClickHouse refuses a
//! row for good, its message is read back from Kafka so that the dead letter
//! is the message byte for byte, like every other. This is rare: it is not on
//! the path of a batch that is stored.

use anyhow::{bail, Context, Result};
use channelshift_store::KafkaPosition;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use std::time::{Duration, Instant};

/// A message read back: its key and payload.
pub struct Fetched {
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
}

/// Reads the message at each of `positions` of `topic`, in order. Blocking:
/// run it off the async runtime.
pub fn messages(
    mut client: ClientConfig,
    topic: &str,
    positions: &[KafkaPosition],
) -> Result<Vec<Fetched>> {
    let consumer: BaseConsumer = client
        // Assigned by hand and never committed: the group is only a name.
        .set("group.id", "channelshift-ingest-refetch")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .create()
        .context("creating the consumer that reads refused messages back")?;
    let mut fetched = Vec::with_capacity(positions.len());
    for position in positions {
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition_offset(
            topic,
            position.partition,
            Offset::Offset(position.offset),
        )?;
        consumer.assign(&assignment)?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if Instant::now() > deadline {
                bail!(
                    "{topic} partition {} offset {}: not read back within 30 s",
                    position.partition,
                    position.offset
                );
            }
            let Some(message) = consumer.poll(Duration::from_millis(500)) else {
                continue;
            };
            let message = message?;
            if message.partition() == position.partition && message.offset() == position.offset {
                fetched.push(Fetched {
                    key: message.key().map(<[u8]>::to_vec),
                    payload: message.payload().unwrap_or_default().to_vec(),
                });
                break;
            }
        }
    }
    Ok(fetched)
}
