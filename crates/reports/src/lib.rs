//! The KPI reports of Channelshift: a KPI's rows for a request, the
//! scorecard, and the figures of a committee pack, computed from the store's
//! cells under a council's [`policy::Policy`]. No HTTP here: the API and the
//! packs binary each turn these into what their users read.

pub mod calendar;
pub mod compute;
pub mod error;
pub mod job;
pub mod pack;
pub mod policy;
pub mod request;
pub mod rows;
pub mod scorecard;

pub use error::ReportError;
pub use policy::Policy;

use chrono::{DateTime, Utc};

/// An instant (Unix seconds) as RFC 3339 UTC text, e.g. `2026-10-05T09:00:00Z`.
pub fn as_of(seconds: Option<i64>) -> Option<String> {
    seconds
        .and_then(|seconds| DateTime::<Utc>::from_timestamp(seconds, 0))
        .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}
