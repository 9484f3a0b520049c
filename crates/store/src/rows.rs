//! Raw rows as ClickHouse stores them. Built from validated contract types
//! plus what ingest adds (pseudonym, scrubbed comment, Kafka position).

use channelshift_contract::{ContactEvent, SatisfactionResponse};
use chrono::{DateTime, Utc};
use clickhouse::Row;
use serde::Serialize;

/// Where a row came from on Kafka, stored beside it for reconciliation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KafkaPosition {
    pub partition: i32,
    pub offset: i64,
}

/// Seconds since the epoch, as ClickHouse `DateTime` stores them. The contract
/// rejects instants before 1970; ClickHouse cannot hold those after 2106.
fn epoch_seconds(at: DateTime<Utc>) -> u32 {
    u32::try_from(at.timestamp()).unwrap_or(u32::MAX)
}

/// One row of `contact_events`; field order is the table's column order.
#[derive(Clone, Debug, Row, Serialize)]
pub struct ContactRow {
    pub council: String,
    pub event_id: String,
    pub occurred_at: u32,
    pub channel: &'static str,
    pub assisted: u8,
    pub service: String,
    pub interaction: &'static str,
    pub outcome: &'static str,
    pub customer_type: &'static str,
    pub customer_hash: String,
    pub journey_id: String,
    pub avoidable: Option<u8>,
    pub first_contact_resolved: Option<u8>,
    pub ward: String,
    pub lsoa: String,
    pub wait_seconds: Option<u32>,
    pub handling_seconds: Option<u32>,
    pub source: String,
    pub kafka_partition: i32,
    pub kafka_offset: i64,
    pub ingested_at: u32,
    /// The writer's fence for `kafka_partition` (see `Store::claim`): the row
    /// is stored only while it is the partition's current one. A column of
    /// the staging table, not of the raw table.
    pub fence: u64,
    /// The staged INSERT the row travels in (set by the store).
    pub stage: u64,
}

impl ContactRow {
    /// `customer_hash` is the keyed pseudonym of `event.customer_ref` (empty
    /// when there was none); the raw reference is never stored.
    pub fn new(
        event: &ContactEvent,
        customer_hash: String,
        position: KafkaPosition,
        ingested_at: DateTime<Utc>,
    ) -> Self {
        Self {
            council: event.council.to_string(),
            event_id: event.event_id.to_string(),
            occurred_at: epoch_seconds(event.occurred_at),
            channel: event.channel.as_str(),
            assisted: u8::from(event.assisted),
            service: event.service.to_string(),
            interaction: event.interaction.as_str(),
            outcome: event.outcome.as_str(),
            customer_type: event.customer_type.as_str(),
            customer_hash,
            journey_id: event.journey_id.clone().unwrap_or_default(),
            avoidable: event.avoidable.map(u8::from),
            first_contact_resolved: event.first_contact_resolved.map(u8::from),
            ward: event
                .ward
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            lsoa: event
                .lsoa
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            wait_seconds: event.wait_seconds,
            handling_seconds: event.handling_seconds,
            source: event.source.clone().unwrap_or_default(),
            kafka_partition: position.partition,
            kafka_offset: position.offset,
            ingested_at: epoch_seconds(ingested_at),
            fence: 0,
            stage: 0,
        }
    }
}

/// One row of `satisfaction_responses`; field order is the table's column order.
#[derive(Clone, Debug, Row, Serialize)]
pub struct SatisfactionRow {
    pub council: String,
    pub response_id: String,
    pub responded_at: u32,
    pub contact_event_id: String,
    pub channel: &'static str,
    pub service: String,
    pub customer_type: &'static str,
    pub instrument: &'static str,
    pub score: u8,
    pub survey_mode: &'static str,
    pub comment: String,
    pub ward: String,
    pub lsoa: String,
    pub kafka_partition: i32,
    pub kafka_offset: i64,
    pub ingested_at: u32,
    /// The writer's fence for `kafka_partition` (see `Store::claim`): the row
    /// is stored only while it is the partition's current one. A column of
    /// the staging table, not of the raw table.
    pub fence: u64,
    /// The staged INSERT the row travels in (set by the store).
    pub stage: u64,
}

impl SatisfactionRow {
    /// `scrubbed_comment` is the comment with personal data removed; the raw
    /// comment is never stored.
    pub fn new(
        response: &SatisfactionResponse,
        scrubbed_comment: String,
        position: KafkaPosition,
        ingested_at: DateTime<Utc>,
    ) -> Self {
        Self {
            council: response.council.to_string(),
            response_id: response.response_id.to_string(),
            responded_at: epoch_seconds(response.responded_at),
            contact_event_id: response
                .contact_event_id
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            channel: response.channel.as_str(),
            service: response.service.to_string(),
            customer_type: response.customer_type.as_str(),
            instrument: response.score.instrument().as_str(),
            score: response.score.value(),
            survey_mode: response.survey_mode.map(|m| m.as_str()).unwrap_or_default(),
            comment: scrubbed_comment,
            ward: response
                .ward
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            lsoa: response
                .lsoa
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            kafka_partition: position.partition,
            kafka_offset: position.offset,
            ingested_at: epoch_seconds(ingested_at),
            fence: 0,
            stage: 0,
        }
    }
}
