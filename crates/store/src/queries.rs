//! The duplicate lookup used by ingest, and the raw-row inserts.

use crate::connection::{Store, StoreError};
use crate::rows::{ContactRow, SatisfactionRow};
use clickhouse::Row;
use serde::{Deserialize, Serialize, Serializer};
use std::collections::HashSet;

/// Binds a list as a SQL tuple `('a', 'b')`, which `IN` can match against the
/// primary key (a bound `Vec` becomes an array, which `IN` does not take).
struct SqlTuple<'a>(&'a [&'a str]);

impl Serialize for SqlTuple<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut tuple = serializer.serialize_tuple(self.0.len())?;
        for item in self.0 {
            tuple.serialize_element(item)?;
        }
        tuple.end()
    }
}

/// Ids per duplicate-lookup query.
const ID_LOOKUP_CHUNK: usize = 2_000;

#[derive(Row, Deserialize)]
struct Id {
    id: String,
}

impl Store {
    /// Which of `ids` are already stored for `council`, as contact events
    /// (`satisfaction == false`) or satisfaction responses.
    pub async fn existing_ids(
        &self,
        council: &str,
        ids: &[&str],
        satisfaction: bool,
    ) -> Result<HashSet<String>, StoreError> {
        if ids.is_empty() {
            return Ok(HashSet::new());
        }
        let sql = if satisfaction {
            "SELECT response_id AS id FROM satisfaction_response_ids WHERE council = ? AND response_id IN ?"
        } else {
            "SELECT event_id AS id FROM contact_event_ids WHERE council = ? AND event_id IN ?"
        };
        let mut stored = HashSet::new();
        // Ids are at most 64 characters, so a chunk stays well inside the
        // server's 256 KiB max_query_size.
        for chunk in ids.chunks(ID_LOOKUP_CHUNK) {
            let rows = self
                .client
                .query(sql)
                .bind(council)
                .bind(SqlTuple(chunk))
                .fetch_all::<Id>()
                .await?;
            stored.extend(rows.into_iter().map(|row| row.id));
        }
        Ok(stored)
    }

    pub async fn insert_contacts(&self, rows: &[ContactRow]) -> Result<(), StoreError> {
        let mut insert = self.client.insert::<ContactRow>("contact_events").await?;
        for row in rows {
            insert.write(row).await?;
        }
        insert.end().await?;
        Ok(())
    }

    pub async fn insert_satisfaction(&self, rows: &[SatisfactionRow]) -> Result<(), StoreError> {
        let mut insert = self
            .client
            .insert::<SatisfactionRow>("satisfaction_responses")
            .await?;
        for row in rows {
            insert.write(row).await?;
        }
        insert.end().await?;
        Ok(())
    }
}
