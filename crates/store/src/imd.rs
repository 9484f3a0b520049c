//! The Index of Multiple Deprivation decile of each LSOA, loaded from a
//! council's lookup file (`channelshift-api load-imd`), so digital-exclusion
//! hot spots can be read beside deprivation. In the rollups' database: the
//! dashboards may read it too.

use crate::connection::{Store, StoreError};
use clickhouse::Row;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Row, Serialize)]
struct ImdRow<'a> {
    lsoa: &'a str,
    imd_decile: u8,
    load: u64,
}

#[derive(Row, Deserialize)]
struct ImdDecile {
    lsoa: String,
    imd_decile: u8,
}

impl Store {
    /// Loads (LSOA code, IMD decile) pairs; a later load replaces an LSOA's
    /// decile. Returns how many were loaded.
    pub async fn load_imd_deciles(&self, deciles: &[(String, u8)]) -> Result<u64, StoreError> {
        // Two loads in one second, or a clock behind, still order.
        let load = self.next_number("lsoa_imd", "load").await?;
        let mut insert = self
            .rollups_client()
            .insert::<ImdRow<'_>>("lsoa_imd")
            .await?;
        for (lsoa, imd_decile) in deciles {
            insert
                .write(&ImdRow {
                    lsoa,
                    imd_decile: *imd_decile,
                    load,
                })
                .await?;
        }
        insert.end().await?;
        Ok(deciles.len() as u64)
    }

    /// The latest loaded decile of each of `lsoas` the lookup knows.
    pub async fn imd_deciles(&self, lsoas: &[String]) -> Result<BTreeMap<String, u8>, StoreError> {
        if lsoas.is_empty() {
            return Ok(BTreeMap::new());
        }
        let rows = self
            .query(&format!(
                "SELECT lsoa, argMax(imd_decile, load) AS imd_decile FROM {} \
                 WHERE has(?, lsoa) GROUP BY lsoa",
                self.rollup("lsoa_imd")
            ))
            .bind(lsoas)
            .fetch_all::<ImdDecile>()
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| (row.lsoa, row.imd_decile))
            .collect())
    }
}
