//! The reads a reconciliation makes: which rows name which Kafka offsets,
//! ids stored more than once, raw rows against the id index and the rollup,
//! and which ids a raw table holds whatever the id index says.

use crate::connection::{Store, StoreError};
use clickhouse::Row;
use serde::Deserialize;
use std::collections::HashSet;

/// The two kinds of record ingest stores, and the tables that hold each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Record {
    Contact,
    Satisfaction,
}

impl Record {
    /// The raw table.
    pub const fn table(self) -> &'static str {
        match self {
            Record::Contact => "contact_events",
            Record::Satisfaction => "satisfaction_responses",
        }
    }

    /// The id column of the raw table and of the id index.
    pub const fn id_column(self) -> &'static str {
        match self {
            Record::Contact => "event_id",
            Record::Satisfaction => "response_id",
        }
    }

    /// The id index ingest's duplicate lookup reads.
    pub const fn id_index(self) -> &'static str {
        match self {
            Record::Contact => "contact_event_ids",
            Record::Satisfaction => "satisfaction_response_ids",
        }
    }

    /// The column the raw table's timestamp is in.
    pub const fn timestamp_column(self) -> &'static str {
        match self {
            Record::Contact => "occurred_at",
            Record::Satisfaction => "responded_at",
        }
    }

    /// The daily rollup (in the rollups' database) and its column that
    /// counts one per raw row.
    pub const fn rollup(self) -> (&'static str, &'static str) {
        match self {
            Record::Contact => ("contact_daily", "contacts"),
            Record::Satisfaction => ("satisfaction_daily", "responses"),
        }
    }
}

/// A raw row's id and the Kafka offset it was stored from.
#[derive(Clone, Debug, PartialEq, Eq, Row, Deserialize)]
pub struct StoredKey {
    pub council: String,
    pub id: String,
    pub offset: i64,
}

/// An id stored more than once.
#[derive(Clone, Debug, PartialEq, Eq, Row, Deserialize)]
pub struct Duplicate {
    pub council: String,
    pub id: String,
    pub copies: u64,
    pub partitions: Vec<i32>,
    pub offsets: Vec<i64>,
}

/// Ids with more than one raw row, and the rows beyond the first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Row, Deserialize)]
pub struct DuplicateTotals {
    pub ids: u64,
    pub extra: u64,
}

#[derive(Row, Deserialize)]
struct Count {
    n: u64,
}

impl Store {
    async fn count(&self, sql: &str) -> Result<u64, StoreError> {
        Ok(self.client.query(sql).fetch_one::<Count>().await?.n)
    }

    /// Calls `each` with every raw row stored from `partition` at an offset
    /// in `start..end`, streamed so that millions of rows take no memory here.
    pub async fn stored_keys(
        &self,
        record: Record,
        partition: i32,
        start: i64,
        end: i64,
        mut each: impl FnMut(StoredKey),
    ) -> Result<(), StoreError> {
        let sql = format!(
            "SELECT council, {id} AS id, kafka_offset AS offset FROM {table} \
             WHERE kafka_partition = ? AND kafka_offset >= ? AND kafka_offset < ?",
            id = record.id_column(),
            table = record.table()
        );
        let mut cursor = self
            .client
            .query(&sql)
            .bind(partition)
            .bind(start)
            .bind(end)
            .fetch::<StoredKey>()?;
        while let Some(row) = cursor.next().await? {
            each(row);
        }
        Ok(())
    }

    /// How many ids have more than one raw row, and how many rows beyond the first.
    pub async fn duplicate_totals(&self, record: Record) -> Result<DuplicateTotals, StoreError> {
        let (table, id) = (record.table(), record.id_column());
        Ok(self
            .client
            .query(&format!(
                "SELECT count() AS ids, toUInt64(sum(copies - 1)) AS extra FROM \
                 (SELECT count() AS copies FROM {table} GROUP BY council, {id} HAVING count() > 1)"
            ))
            .fetch_one::<DuplicateTotals>()
            .await?)
    }

    /// Up to `limit` ids stored more than once, the most copies first.
    pub async fn duplicate_examples(
        &self,
        record: Record,
        limit: usize,
    ) -> Result<Vec<Duplicate>, StoreError> {
        let (table, id) = (record.table(), record.id_column());
        Ok(self
            .client
            .query(&format!(
                "SELECT council, {id} AS id, count() AS copies, groupArray(kafka_partition) AS partitions, \
                 groupArray(kafka_offset) AS offsets FROM {table} GROUP BY council, {id} \
                 HAVING count() > 1 ORDER BY copies DESC, id LIMIT {limit}"
            ))
            .fetch_all::<Duplicate>()
            .await?)
    }

    /// Rows in the raw table.
    pub async fn raw_rows(&self, record: Record) -> Result<u64, StoreError> {
        self.count(&format!("SELECT count() AS n FROM {}", record.table()))
            .await
    }

    /// Distinct ids in the id index. The index is a set: an id indexed twice
    /// (a replica re-indexing rows found without their index while the
    /// replica that stored them was still indexing them) is harmless.
    pub async fn id_index_rows(&self, record: Record) -> Result<u64, StoreError> {
        self.count(&format!(
            "SELECT count() AS n FROM (SELECT council, {id} FROM {index} GROUP BY council, {id})",
            id = record.id_column(),
            index = record.id_index()
        ))
        .await
    }

    /// Raw rows stored from offsets behind their partition's checkpoint
    /// (`checkpoints`: partition and next offset) whose id the index lacks.
    /// Rows ahead of a checkpoint may still be having their index written;
    /// behind it, ingest has finished with them.
    pub async fn unindexed_rows(
        &self,
        record: Record,
        checkpoints: &[(i32, i64)],
    ) -> Result<u64, StoreError> {
        if checkpoints.is_empty() {
            return Ok(0);
        }
        let (partitions, offsets): (Vec<i32>, Vec<i64>) = checkpoints.iter().copied().unzip();
        let sql = format!(
            "SELECT count() AS n FROM {table} \
             WHERE kafka_offset < transform(kafka_partition, CAST(? AS Array(Int32)), \
                                            CAST(? AS Array(Int64)), toInt64(-1)) \
               AND (council, {id}) NOT IN (SELECT council, {id} FROM {index})",
            table = record.table(),
            id = record.id_column(),
            index = record.id_index()
        );
        Ok(self
            .client
            .query(&sql)
            .bind(partitions)
            .bind(offsets)
            .fetch_one::<Count>()
            .await?
            .n)
    }

    /// The daily rollup's total count: equal to the raw rows when every
    /// insert reached the rollup.
    pub async fn rollup_total(&self, record: Record) -> Result<u64, StoreError> {
        let (rollup, counted) = record.rollup();
        self.count(&format!(
            "SELECT toUInt64(sum({counted})) AS n FROM {}",
            self.rollup(rollup)
        ))
        .await
    }

    /// Which of `ids` the raw table holds for `council`, whatever the id index
    /// says: a check must not depend on the index being complete.
    pub async fn raw_ids(
        &self,
        record: Record,
        council: &str,
        ids: &[&str],
    ) -> Result<HashSet<String>, StoreError> {
        let sql = format!(
            "SELECT DISTINCT {id} AS id FROM {table} WHERE council = ? AND {id}{IN_IDS}",
            id = record.id_column(),
            table = record.table(),
            IN_IDS = crate::queries::IN_IDS,
        );
        self.ids_found(ids, || self.client.query(&sql).bind(council))
            .await
    }
}
