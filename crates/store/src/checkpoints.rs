//! Ingest's position on Kafka, kept in ClickHouse next to the rows it
//! produced: on assignment a consumer seeks here rather than trusting the
//! group's committed offset, so a reset or replayed partition is not read
//! (or dead-lettered) twice.

use crate::connection::{Store, StoreError};
use chrono::Utc;
use clickhouse::Row;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The next offset to read on one partition, after everything before it was
/// stored or dead-lettered.
#[derive(Clone, Debug, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct Checkpoint {
    pub topic: String,
    pub partition: i32,
    pub next_offset: i64,
}

#[derive(Row, Serialize)]
struct CheckpointRow {
    topic: String,
    partition: i32,
    next_offset: i64,
    written_at: u32,
}

#[derive(Row, Deserialize)]
struct Position {
    partition: i32,
    next_offset: i64,
}

impl Store {
    /// The stored next offset of each partition of `topic` that has one.
    pub async fn checkpoints(&self, topic: &str) -> Result<HashMap<i32, i64>, StoreError> {
        let rows = self
            .query(
                "SELECT partition, max(next_offset) AS next_offset
                FROM ingest_checkpoints WHERE topic = ? GROUP BY partition",
            )
            .bind(topic)
            .fetch_all::<Position>()
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| (row.partition, row.next_offset))
            .collect())
    }

    /// Records checkpoints; a lower offset than one already stored changes nothing.
    pub async fn save_checkpoints(&self, checkpoints: &[Checkpoint]) -> Result<(), StoreError> {
        if checkpoints.is_empty() {
            return Ok(());
        }
        let written_at = u32::try_from(Utc::now().timestamp()).unwrap_or(u32::MAX);
        let mut insert = self.insert::<CheckpointRow>("ingest_checkpoints").await?;
        for checkpoint in checkpoints {
            insert
                .write(&CheckpointRow {
                    topic: checkpoint.topic.clone(),
                    partition: checkpoint.partition,
                    next_offset: checkpoint.next_offset,
                    written_at,
                })
                .await?;
        }
        insert.end().await?;
        Ok(())
    }
}
