//! Where messages go: a Kafka producer keyed by message id, with bounded
//! waiting for deliveries, or nowhere (`--dry-run`).

use anyhow::{bail, Context, Result};
use channelshift_kafka::KafkaSecurity;
use channelshift_simulator::Message;
use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::Timeout;
use std::time::Duration;

pub struct Sink {
    producer: Option<FutureProducer>,
    contact_topic: String,
    satisfaction_topic: String,
    pending: Vec<DeliveryFuture>,
    pub sent: u64,
}

impl Sink {
    pub fn kafka(
        brokers: &str,
        security: &KafkaSecurity,
        contact_topic: &str,
        satisfaction_topic: &str,
        linger_ms: u32,
    ) -> Result<Self> {
        let producer: FutureProducer = security
            .client_config(brokers)?
            .set("enable.idempotence", "true")
            .set("linger.ms", linger_ms.to_string())
            .set("message.timeout.ms", "120000")
            .create()
            .context("creating the Kafka producer")?;
        Ok(Self {
            producer: Some(producer),
            contact_topic: contact_topic.to_string(),
            satisfaction_topic: satisfaction_topic.to_string(),
            pending: Vec::new(),
            sent: 0,
        })
    }

    /// Counts messages and sends nothing.
    pub fn discard() -> Self {
        Self {
            producer: None,
            contact_topic: String::new(),
            satisfaction_topic: String::new(),
            pending: Vec::new(),
            sent: 0,
        }
    }

    /// Enqueues one message; a full queue waits for room.
    pub async fn send(&mut self, message: &Message) -> Result<()> {
        self.sent += 1;
        let Some(producer) = &self.producer else {
            return Ok(());
        };
        let topic = if message.satisfaction {
            &self.satisfaction_topic
        } else {
            &self.contact_topic
        };
        let mut record = FutureRecord::to(topic)
            .key(&message.key)
            .payload(&message.payload);
        let delivery = loop {
            match producer.send_result(record) {
                Ok(delivery) => break delivery,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((error, _)) => bail!("producing to {topic}: {error}"),
            }
        };
        self.pending.push(delivery);
        Ok(())
    }

    /// Awaits the deliveries once `limit` are pending: bounded memory, and
    /// delivery errors surface early.
    pub async fn settle(&mut self, limit: usize) -> Result<()> {
        if self.pending.len() >= limit {
            for delivery in self.pending.drain(..) {
                confirm(delivery).await?;
            }
        }
        Ok(())
    }

    /// Awaits every delivery and flushes the producer.
    pub async fn finish(&mut self) -> Result<()> {
        self.settle(0).await?;
        if let Some(producer) = &self.producer {
            producer.flush(Timeout::After(Duration::from_secs(60)))?;
        }
        Ok(())
    }
}

async fn confirm(delivery: DeliveryFuture) -> Result<()> {
    match delivery.await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((error, _))) => bail!("delivery failed: {error}"),
        Err(_canceled) => bail!("the producer was dropped before delivery"),
    }
}
