//! One writer per Kafka partition, enforced by the server. A replica that is
//! given a partition claims it with a fence above every earlier one; its rows
//! travel through a staging table and reach the raw table and the id index
//! by `INSERT … SELECT … WHERE` the fence is still the partition's current
//! one, so a replica that lost the partition has its writes dropped by the
//! server, whenever they arrive. The argument for why this is enough is in
//! ingest's `pipeline.rs`.

use crate::audit::Record;
use crate::connection::{Store, StoreError};
use chrono::Utc;
use clickhouse::Row;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The query ids of ingest's writes start with this, then `<replica>:`.
pub const WRITE_QUERY_PREFIX: &str = "channelshift-ingest:";

/// Whether the server checks fences in the INSERT. Off only to measure what
/// fencing prevents (a test does); rows still travel through staging.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fencing {
    On,
    Off,
}

#[derive(Row, Deserialize)]
struct PartitionFence {
    partition: i32,
    fence: u64,
}

#[derive(Row, Serialize)]
struct FenceRow<'a> {
    stream: &'a str,
    partition: i32,
    fence: u64,
    owner: &'a str,
    claimed_at: u32,
}

#[derive(Row, Deserialize)]
struct QueryId {
    query_id: String,
}

#[derive(Row, Deserialize)]
struct Count {
    n: u64,
}

#[derive(Row, Deserialize)]
struct PartitionId {
    partition_id: String,
}

impl Record {
    /// Where rows wait for the fenced `INSERT … SELECT`.
    pub const fn staging(self) -> &'static str {
        match self {
            Record::Contact => "contact_events_staging",
            Record::Satisfaction => "satisfaction_responses_staging",
        }
    }

    /// The `WHERE` condition that keeps the staged rows whose fence is their
    /// partition's current one (see [`Store::claim`]).
    pub(crate) fn fence_condition(self) -> String {
        format!(
            "(kafka_partition, fence) IN (SELECT partition, max(fence) FROM ingest_fences \
             WHERE stream = '{}' GROUP BY partition)",
            self.table()
        )
    }
}

/// The fence after `current`: the next epoch, with `salt` (random) in the
/// low half so that two claims of one epoch never tie.
pub fn next_fence(current: u64, salt: u32) -> u64 {
    (((current >> 32) + 1) << 32) | u64::from(salt.max(1))
}

impl Store {
    /// The current fence of each of `partitions` that has been claimed.
    pub async fn fences(
        &self,
        record: Record,
        partitions: &[i32],
    ) -> Result<HashMap<i32, u64>, StoreError> {
        let rows = self
            .query(
                "SELECT partition, max(fence) AS fence FROM ingest_fences \
                 WHERE stream = ? AND has(?, partition) GROUP BY partition",
            )
            .bind(record.table())
            .bind(partitions)
            .fetch_all::<PartitionFence>()
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| (row.partition, row.fence))
            .collect())
    }

    /// Claims `partitions` for `owner` with fences above every earlier one
    /// (`salt` makes each claim's fence its own). From the moment this
    /// returns, a staged INSERT carrying an earlier fence stores nothing.
    /// Returns the fence claimed for each partition.
    pub async fn claim(
        &self,
        record: Record,
        partitions: &[i32],
        owner: &str,
        salt: u32,
    ) -> Result<HashMap<i32, u64>, StoreError> {
        if partitions.is_empty() {
            return Ok(HashMap::new());
        }
        let current = self.fences(record, partitions).await?;
        let claimed: HashMap<i32, u64> = partitions
            .iter()
            .map(|partition| {
                let before = current.get(partition).copied().unwrap_or(0);
                (*partition, next_fence(before, salt))
            })
            .collect();
        let claimed_at = u32::try_from(Utc::now().timestamp()).unwrap_or(u32::MAX);
        let mut insert = self.insert::<FenceRow<'_>>("ingest_fences").await?;
        for (partition, fence) in &claimed {
            insert
                .write(&FenceRow {
                    stream: record.table(),
                    partition: *partition,
                    fence: *fence,
                    owner,
                    claimed_at,
                })
                .await?;
        }
        insert.end().await?;
        Ok(claimed)
    }

    /// The ids of the queries running on the server whose id starts with `prefix`.
    pub async fn running_queries(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let rows = self
            .query("SELECT query_id FROM system.processes WHERE startsWith(query_id, ?)")
            .bind(prefix)
            .fetch_all::<QueryId>()
            .await?;
        Ok(rows.into_iter().map(|row| row.query_id).collect())
    }

    /// How many of `query_ids` are still running.
    pub async fn still_running(&self, query_ids: &[String]) -> Result<u64, StoreError> {
        if query_ids.is_empty() {
            return Ok(0);
        }
        Ok(self
            .query("SELECT count() AS n FROM system.processes WHERE has(?, query_id)")
            .bind(query_ids)
            .fetch_one::<Count>()
            .await?
            .n)
    }

    /// Asks the server to stop `query_ids` and returns at once; see
    /// [`Store::still_running`] for when they have.
    pub async fn kill_queries(&self, query_ids: &[String]) -> Result<(), StoreError> {
        if query_ids.is_empty() {
            return Ok(());
        }
        self.query("KILL QUERY WHERE has(?, query_id) ASYNC")
            .bind(query_ids)
            .execute()
            .await?;
        Ok(())
    }

    /// Asks the server to stop every query whose id starts with `prefix`
    /// (those of a [`Store::tagged`] store), and returns at once. The API
    /// sends it for a request it gave up on, whose queries would otherwise
    /// run to their `max_execution_time` on servers that do not cancel a
    /// query when its client hangs up (18.16). Send it from an untagged
    /// store: a tagged one's KILL would carry the prefix too.
    pub async fn kill_queries_starting(&self, prefix: &str) -> Result<(), StoreError> {
        self.client
            .query("KILL QUERY WHERE startsWith(query_id, ?) ASYNC")
            .bind(prefix)
            .execute()
            .await?;
        Ok(())
    }

    /// Drops staged INSERTs older than `seconds`: left behind when a replica
    /// stopped between staging and dropping its stage. Returns how many.
    pub async fn drop_stale_stages(&self, seconds: u32) -> Result<usize, StoreError> {
        let mut dropped = 0;
        for record in [Record::Contact, Record::Satisfaction] {
            let stale = self
                .query(
                    "SELECT DISTINCT partition_id FROM system.parts \
                     WHERE database = currentDatabase() AND table = ? AND active \
                     AND modification_time < now() - ?",
                )
                .bind(record.staging())
                .bind(seconds)
                .fetch_all::<PartitionId>()
                .await?;
            for stage in stale {
                let sql = format!("ALTER TABLE {} DROP PARTITION ID ?", record.staging());
                self.query(&sql).bind(&stage.partition_id).execute().await?;
                dropped += 1;
            }
        }
        Ok(dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_claim_is_above_every_earlier_one_whatever_its_salt() {
        let first = next_fence(0, u32::MAX);
        let second = next_fence(first, 1);
        assert!(second > first, "a later epoch wins with any salt");
        assert_eq!(second >> 32, 2);
        assert_ne!(next_fence(first, 0), next_fence(first, 0) & !0xffff_ffff);
    }
}
