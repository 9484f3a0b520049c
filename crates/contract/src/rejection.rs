//! Why a message was refused: a stable reason code (for metrics and
//! dead-letter headers), the field at fault, and a sentence for people.

use std::fmt;

/// Stable, snake_case reason codes; dashboards and alerts key on them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectionReason {
    /// Larger than the configured message size limit.
    TooLarge,
    /// Not UTF-8 JSON, or truncated, or nested too deeply.
    InvalidJson,
    /// JSON, but not an object.
    NotAnObject,
    /// A key given twice in one object.
    DuplicateField,
    /// `schema_version` missing or not one this build understands.
    UnsupportedSchemaVersion,
    /// A required field is absent or null.
    MissingField,
    /// A field of the wrong JSON type.
    WrongType,
    /// A value outside its set or not following its pattern.
    InvalidValue,
    /// A number or a length outside its range.
    OutOfRange,
    /// A timestamp more than five minutes ahead of the receiver's clock.
    InFuture,
    /// A timestamp older than the receiver accepts (ingest's
    /// `max_event_age_days`; by default any age is accepted).
    TooOld,
    /// Valid by the contract, but ClickHouse refuses the row for good (a
    /// constraint, a value a view cannot take): retrying cannot store it.
    StoreRefused,
}

impl RejectionReason {
    pub const ALL: &'static [RejectionReason] = &[
        Self::TooLarge,
        Self::InvalidJson,
        Self::NotAnObject,
        Self::DuplicateField,
        Self::UnsupportedSchemaVersion,
        Self::MissingField,
        Self::WrongType,
        Self::InvalidValue,
        Self::OutOfRange,
        Self::InFuture,
        Self::TooOld,
        Self::StoreRefused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::TooLarge => "too_large",
            Self::InvalidJson => "invalid_json",
            Self::NotAnObject => "not_an_object",
            Self::DuplicateField => "duplicate_field",
            Self::UnsupportedSchemaVersion => "unsupported_schema_version",
            Self::MissingField => "missing_field",
            Self::WrongType => "wrong_type",
            Self::InvalidValue => "invalid_value",
            Self::OutOfRange => "out_of_range",
            Self::InFuture => "in_future",
            Self::TooOld => "too_old",
            Self::StoreRefused => "store_refused",
        }
    }
}

impl fmt::Display for RejectionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused message: why, which field, and a human explanation.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}{}: {detail}", field.as_deref().map(|f| format!(" ({f})")).unwrap_or_default())]
pub struct Rejection {
    pub reason: RejectionReason,
    pub field: Option<String>,
    pub detail: String,
}

impl Rejection {
    pub fn new(reason: RejectionReason, field: Option<&str>, detail: impl Into<String>) -> Self {
        Self {
            reason,
            field: field.map(str::to_string),
            detail: detail.into(),
        }
    }

    pub fn field(reason: RejectionReason, field: &str, detail: impl Into<String>) -> Self {
        Self::new(reason, Some(field), detail)
    }
}
