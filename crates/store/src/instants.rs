//! The two instants a figure states, as distinct types so one cannot stand
//! in for the other: when ingest last stored a batch (what a live figure
//! includes), and the cut-off a published report is "as of" (what it reads).

use chrono::{DateTime, SecondsFormat, Utc};
use std::fmt;

/// When ingest last stored a batch (Unix seconds), from its checkpoints:
/// every figure read now includes everything ingested up to then.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IngestedUpTo(pub i64);

/// The instant a report is as of (Unix seconds): only rows ingested by then
/// are read, so a report regenerated with the same cut-off has the same
/// figures however much data arrived since.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CutOff(pub i64);

/// RFC 3339 in UTC to the second, e.g. `2026-10-05T09:00:00Z`; empty for an
/// instant chrono cannot represent.
fn rfc3339(seconds: i64) -> String {
    DateTime::<Utc>::from_timestamp(seconds, 0)
        .map(|at| at.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_default()
}

impl fmt::Display for IngestedUpTo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&rfc3339(self.0))
    }
}

impl fmt::Display for CutOff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&rfc3339(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_read_as_rfc_3339_utc() {
        assert_eq!(CutOff(1_759_654_800).to_string(), "2025-10-05T09:00:00Z");
        assert_eq!(IngestedUpTo(0).to_string(), "1970-01-01T00:00:00Z");
        assert_eq!(CutOff(i64::MAX).to_string(), "");
    }
}
