//! The duplicate lookup used by ingest, and the raw-row inserts (staged, and
//! fenced: see `fences.rs`).

use crate::audit::Record;
use crate::connection::{Store, StoreError};
use crate::fences::Fencing;
use crate::partitions::{months_per_insert, split_by_month};
use crate::rows::{ContactRow, SatisfactionRow};
use clickhouse::{Row, RowOwned, RowWrite};
use serde::Deserialize;
use std::collections::HashSet;

/// A raw row ingest writes through the staging table: contacts or
/// satisfaction responses.
pub trait RawRow: RowOwned + RowWrite {
    /// Which table it goes to.
    const RECORD: Record;
    /// The instant the raw table is partitioned by (Unix seconds).
    fn at(&self) -> u32;
    /// When the row is stored (Unix seconds): set by the move, see
    /// [`Store::move_staged`].
    fn ingested_at(&self) -> u32;
    fn stage(&self) -> u64;
    fn set_stage(&mut self, stage: u64);
}

/// `RawRow` for a raw row type: its record and the field it is
/// partitioned by.
macro_rules! raw_row {
    ($row:ty, $record:expr, $at:ident) => {
        impl RawRow for $row {
            const RECORD: Record = $record;
            fn at(&self) -> u32 {
                self.$at
            }
            fn ingested_at(&self) -> u32 {
                self.ingested_at
            }
            fn stage(&self) -> u64 {
                self.stage
            }
            fn set_stage(&mut self, stage: u64) {
                self.stage = stage;
            }
        }
    };
}

raw_row!(ContactRow, Record::Contact, occurred_at);
raw_row!(SatisfactionRow, Record::Satisfaction, responded_at);

/// Rows of one kind staged together (see [`Store::stage`]): moved to the
/// raw table by [`Store::move_staged`] or discarded by [`Store::unstage`].
#[derive(Debug)]
#[must_use = "a stage is moved or discarded, or it lingers until dropped as stale"]
pub struct Staged {
    record: Record,
    stage: u64,
}

impl Staged {
    /// A stage of its own for each staged INSERT (a retry, or a half of a
    /// batch, never meets rows staged by another), set on every row.
    pub fn assign<R: RawRow>(rows: &mut [R]) -> Self {
        let stage = rand::random::<u64>().max(1);
        rows.iter_mut().for_each(|row| row.set_stage(stage));
        Self {
            record: R::RECORD,
            stage,
        }
    }
}

/// Ids per duplicate-lookup query: a batch's ids (50,000 by default) in one
/// query, so the index is read once per batch. Random ids fall in every
/// granule of the index, so such a query reads all of it; ids that grow
/// with time (as the simulator's do) fall in the few granules at its end.
const ID_LOOKUP_CHUNK: usize = 50_000;

/// `IN` a bound text of ids separated by spaces (ids have none: see
/// `channelshift_contract::EventId`), split by the server. One text literal
/// instead of an element per id: cheap to send and to parse.
pub(crate) const IN_IDS: &str = " IN (SELECT arrayJoin(splitByChar(' ', ?)))";

/// The server's limit on a query's text, raised for lookups: 50,000 ids of
/// at most 64 characters and their separators fit in 3.3 MB.
const LOOKUP_QUERY_BYTES: &str = "4194304";

#[derive(Row, Deserialize)]
struct Id {
    id: String,
}

impl Store {
    /// Which of `ids` are already stored for `council`, by the id index.
    pub async fn existing_ids(
        &self,
        record: Record,
        council: &str,
        ids: &[&str],
    ) -> Result<HashSet<String>, StoreError> {
        let sql = format!(
            "SELECT {id} AS id FROM {index} WHERE council = ? AND {id}{IN_IDS}",
            id = record.id_column(),
            index = record.id_index()
        );
        self.ids_found(ids, || self.query(&sql).bind(council)).await
    }

    /// Stores contact rows, each carrying its partition's fence: staged,
    /// then moved (see [`Store::stage`] and [`Store::move_staged`]); sets
    /// their `stage`. Returns the INSERTs into the raw table.
    pub async fn insert_contacts(
        &self,
        rows: &mut [ContactRow],
        fencing: Fencing,
    ) -> Result<usize, StoreError> {
        self.insert_rows(rows, fencing).await
    }

    /// As [`Store::insert_contacts`], for satisfaction responses.
    pub async fn insert_satisfaction(
        &self,
        rows: &mut [SatisfactionRow],
        fencing: Fencing,
    ) -> Result<usize, StoreError> {
        self.insert_rows(rows, fencing).await
    }

    /// Stages `rows` under a new stage, then moves them.
    pub async fn insert_rows<R: RawRow>(
        &self,
        rows: &mut [R],
        fencing: Fencing,
    ) -> Result<usize, StoreError> {
        if rows.is_empty() {
            return Ok(0);
        }
        let staged = Staged::assign(rows);
        self.stage(&staged, rows).await?;
        self.move_staged(staged, rows, fencing).await
    }

    /// Writes `rows` (all carrying `staged`'s stage, see [`Staged::assign`])
    /// to the staging table. Nothing reads them there until
    /// [`Store::move_staged`]; [`Store::unstage`] discards them. If this
    /// fails, whatever part of the stage was written is dropped as stale
    /// later.
    pub async fn stage<R: RawRow>(&self, staged: &Staged, rows: &[R]) -> Result<(), StoreError> {
        debug_assert!(rows.iter().all(|row| row.stage() == staged.stage));
        let mut insert = self.insert::<R>(staged.record.staging()).await?;
        for row in rows {
            insert.write(row).await?;
        }
        insert.end().await?;
        Ok(())
    }

    /// Moves staged `rows` by `INSERT … SELECT` to the raw table (one INSERT
    /// per group of months, see [`crate::split_by_month`]; the raw table's
    /// views run as for any INSERT) and their ids to the id index, after the
    /// raw rows. With [`Fencing::On`] the server moves only rows whose fence
    /// is still their partition's current one. The stage is dropped
    /// afterwards, whatever happened; a retry stages again. `rows` are the
    /// staged ones: their months bound the moves, and the latest of their
    /// `ingested_at` is every moved row's, whatever the staged copy says (a
    /// stage written ahead of its write attempt is stamped by the attempt).
    /// Returns the INSERTs into the raw table.
    pub async fn move_staged<R: RawRow>(
        &self,
        staged: Staged,
        rows: &[R],
        fencing: Fencing,
    ) -> Result<usize, StoreError> {
        let moved = self.move_stage(rows, staged.stage, fencing).await;
        self.unstage(staged).await;
        moved
    }

    /// Drops a stage's rows from the staging table, unmoved. A stage that
    /// cannot be dropped now is dropped as stale later.
    pub async fn unstage(&self, staged: Staged) {
        let sql = format!("ALTER TABLE {} DROP PARTITION ?", staged.record.staging());
        if let Err(error) = self.query(&sql).bind(staged.stage).execute().await {
            tracing::warn!(%error, stage = staged.stage, "could not drop a staged insert; it is dropped as stale later");
        }
    }

    async fn move_stage<R: RawRow>(
        &self,
        rows: &[R],
        stage: u64,
        fencing: Fencing,
    ) -> Result<usize, StoreError> {
        let record = R::RECORD;
        let fenced = match fencing {
            Fencing::On => format!(" AND {}", record.fence_condition()),
            Fencing::Off => String::new(),
        };
        // The staging table has the raw table's columns and these two.
        let columns: Vec<&str> = R::COLUMN_NAMES
            .iter()
            .filter(|column| !matches!(**column, "fence" | "stage"))
            .copied()
            .collect();
        // The same columns, but the stamp bound (the first parameter).
        let values = columns
            .iter()
            .map(|column| match *column {
                "ingested_at" => "toDateTime(?)",
                column => column,
            })
            .collect::<Vec<_>>()
            .join(", ");
        let columns = columns.join(", ");
        let stamp = rows.iter().map(R::ingested_at).max().unwrap_or(0);
        let groups = split_by_month(rows, R::at, months_per_insert(self.partition_limit));
        for group in &groups {
            let (from, to) = group.iter().fold((u32::MAX, 0), |(from, to), row| {
                (from.min(R::at(row)), to.max(R::at(row)))
            });
            let sql = format!(
                "INSERT INTO {table} ({columns}) SELECT {values} FROM {staging} \
                 WHERE stage = ? AND {time} >= toDateTime(?) AND {time} <= toDateTime(?){fenced}",
                table = record.table(),
                staging = record.staging(),
                time = record.timestamp_column(),
            );
            self.query(&sql)
                .bind(stamp)
                .bind(stage)
                .bind(from)
                .bind(to)
                .execute()
                .await?;
        }
        let sql = format!(
            "INSERT INTO {index} (council, {id}) SELECT council, {id} FROM {staging} \
             WHERE stage = ?{fenced}",
            index = record.id_index(),
            id = record.id_column(),
            staging = record.staging(),
        );
        self.query(&sql).bind(stage).execute().await?;
        Ok(groups.len())
    }

    /// Which of `ids` have raw rows for `council` with a timestamp within
    /// `from..=to` (Unix seconds), whatever the id index says. An INSERT the
    /// server stopped part-way (killed, or a view's write failing) can leave
    /// the raw rows without their id index rows, as the views are written
    /// after the table; this finds them. It reads the raw table, so ingest
    /// asks only when an attempt may have been cut short.
    pub async fn existing_raw_ids(
        &self,
        record: Record,
        council: &str,
        ids: &[&str],
        from: u32,
        to: u32,
    ) -> Result<HashSet<String>, StoreError> {
        let sql = format!(
            "SELECT DISTINCT {id} AS id FROM {table} WHERE council = ? \
             AND {at} >= toDateTime(?) AND {at} <= toDateTime(?) AND {id}{IN_IDS}",
            id = record.id_column(),
            table = record.table(),
            at = record.timestamp_column()
        );
        self.ids_found(ids, || self.query(&sql).bind(council).bind(from).bind(to))
            .await
    }

    /// For each of `partitions` with raw rows in `record`'s table, one past
    /// the highest Kafka offset those rows came from: no row of a message at
    /// or after it is stored. Rows of another topic with the same partition
    /// number only raise it. Reads two columns of the whole table, so ingest
    /// asks once per claim.
    pub async fn stored_offsets_end(
        &self,
        record: Record,
        partitions: &[i32],
    ) -> Result<std::collections::HashMap<i32, i64>, StoreError> {
        #[derive(Row, Deserialize)]
        struct End {
            partition: i32,
            end: i64,
        }
        if partitions.is_empty() {
            return Ok(std::collections::HashMap::new());
        }
        let rows = self
            .query(&format!(
                "SELECT kafka_partition AS partition, max(kafka_offset) + 1 AS end FROM {} \
                 WHERE has(?, kafka_partition) GROUP BY kafka_partition",
                record.table()
            ))
            .bind(partitions)
            .fetch_all::<End>()
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| (row.partition, row.end))
            .collect())
    }

    /// The ids a query ending in [`IN_IDS`] finds among `ids`, asked a chunk
    /// at a time: `query` binds every parameter before that last one. No
    /// ids, no query.
    pub(crate) async fn ids_found(
        &self,
        ids: &[&str],
        query: impl Fn() -> clickhouse::query::Query,
    ) -> Result<HashSet<String>, StoreError> {
        let mut found = HashSet::new();
        for chunk in ids.chunks(ID_LOOKUP_CHUNK) {
            let rows = query()
                .bind(chunk.join(" "))
                .with_setting("max_query_size", LOOKUP_QUERY_BYTES)
                .fetch_all::<Id>()
                .await?;
            found.extend(rows.into_iter().map(|row| row.id));
        }
        Ok(found)
    }

    /// Indexes those of `ids` whose raw rows for `council` (timestamps within
    /// `from..=to`, Unix seconds) are stored without index rows: the rows an
    /// INSERT cut short, or a replica stopped between its INSERT and its index,
    /// left behind (see [`Store::existing_raw_ids`]). With `fence` (a partition
    /// and the fence this replica holds on it), the server writes them only
    /// while that fence is still the partition's current one: a replica that
    /// lost the partition must not index rows its new owner has stored and is
    /// about to index itself, or the index would hold those ids twice.
    pub async fn reindex_raw_ids(
        &self,
        record: Record,
        council: &str,
        ids: &[&str],
        (from, to): (u32, u32),
        fence: Option<(i32, u64)>,
    ) -> Result<(), StoreError> {
        let fenced = match fence {
            Some(_) => format!(
                " AND toUInt64(?) IN (SELECT max(fence) FROM ingest_fences \
                 WHERE stream = '{}' AND partition = ?)",
                record.table()
            ),
            None => String::new(),
        };
        let sql = format!(
            "INSERT INTO {index} (council, {id}) SELECT DISTINCT council, {id} FROM {table} \
             WHERE council = ? AND {at} >= toDateTime(?) AND {at} <= toDateTime(?) \
             AND {id}{IN_IDS}{fenced}",
            index = record.id_index(),
            id = record.id_column(),
            table = record.table(),
            at = record.timestamp_column(),
        );
        for chunk in ids.chunks(ID_LOOKUP_CHUNK) {
            let mut query = self
                .query(&sql)
                .bind(council)
                .bind(from)
                .bind(to)
                .bind(chunk.join(" "))
                .with_setting("max_query_size", LOOKUP_QUERY_BYTES);
            if let Some((partition, fence)) = fence {
                query = query.bind(fence).bind(partition);
            }
            query.execute().await?;
        }
        Ok(())
    }
}
