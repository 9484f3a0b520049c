//! The KPI reports of Channelshift: a KPI's rows for a request, the
//! scorecard, and the figures of a committee pack, computed from the store's
//! cells under a council's [`policy::Policy`], with the reporting calendar
//! and `[packs]` settings. No HTTP and no rendering here: the API and the
//! packs binary each turn these into what their users read, and
//! [`job`] is what the API hands the packs binary for one pack.

pub mod benchmarking;
pub mod calendar;
pub mod compute;
pub mod councils;
pub mod error;
pub mod forecast;
pub mod job;
pub mod opportunity;
pub mod pack;
pub mod policy;
pub mod request;
pub mod rows;
pub mod scorecard;

pub use councils::Councils;
pub use error::ReportError;
pub use policy::Policy;

use channelshift_store::IngestedUpTo;

/// What a live figure's `as_of` says: when ingest last stored a batch, as
/// RFC 3339 UTC text (`2026-10-05T09:00:00Z`); `None` before any.
pub fn as_of(ingested: Option<IngestedUpTo>) -> Option<String> {
    ingested.map(|at| at.to_string())
}
