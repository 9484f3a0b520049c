//! The ClickHouse store: connection (with row validation decided by the
//! server's version), versioned migrations, raw-row inserts, the de-duplication
//! lookup ingest relies on, the KPI queries over the rollups, and rebuilding
//! the rollups from raw rows.
//!
//! All SQL here runs on ClickHouse 18.16 and on current releases; values from
//! outside the process are always bound with `?`, never spliced.

mod audit;
mod cells;
mod checkpoints;
mod connection;
mod definitions;
mod fences;
mod forecasts;
mod imd;
mod instants;
mod journeys;
mod migrations;
mod partitions;
mod queries;
mod rebuild;
mod retention;
mod rows;

pub use audit::{Duplicate, DuplicateTotals, Record, StoredKey};
pub use cells::{
    Area, AreaCell, Bucket, CellFilter, ContactCell, DataVersion, JourneyCell, Keys,
    SatisfactionCell, Source, WaitCell,
};
pub use checkpoints::Checkpoint;
pub use connection::{rollups_database, ClickHouseConfig, QueryLimits, Store, StoreError};
pub use definitions::{CouncilDefinitions, Definitions, TargetDefinition, UnitCostDefinition};
pub use fences::{next_fence, Fencing, WRITE_QUERY_PREFIX};
pub use forecasts::{ForecastRecord, StoredForecasts};
pub use instants::{CutOff, IngestedUpTo, SettledMonths};
pub use journeys::{JourneyDays, SettledJourneysReport, JOURNEY_DEFINITION};
pub use migrations::{Rollup, MIGRATIONS, ROLLUPS, ROLLUPS_PLACEHOLDER};
pub use partitions::{months_per_insert, split_by_month, DEFAULT_PARTITION_LIMIT};
pub use queries::{RawRow, Staged};
pub use rebuild::{Month, RebuildError, RebuildReport, RebuildStep, RollupRebuilt, MONTH_ATTEMPTS};
pub use retention::next_month;
pub use rows::{ContactRow, KafkaPosition, SatisfactionRow};
