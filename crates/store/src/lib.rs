//! The ClickHouse store: connection (with row validation decided by the
//! server's version), versioned migrations, raw-row inserts, the de-duplication
//! lookup ingest relies on, and the KPI queries over the rollups.
//!
//! All SQL here runs on ClickHouse 18.16 and on current releases; values from
//! outside the process are always bound with `?`, never spliced.

mod checkpoints;
mod connection;
mod migrations;
mod queries;
mod rows;

pub use checkpoints::Checkpoint;
pub use connection::{ClickHouseConfig, Store, StoreError};
pub use migrations::MIGRATIONS;
pub use queries::CompletedByChannel;
pub use rows::{ContactRow, KafkaPosition, SatisfactionRow};
