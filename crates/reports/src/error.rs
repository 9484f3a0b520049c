//! Why a report could not be made, split by what the caller does about it.

use channelshift_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The request cannot be answered as asked (a date out of range, savings
    /// without a baseline): tell the asker, naming the parameter.
    #[error("{parameter}: {message}")]
    BadRequest { parameter: String, message: String },
    /// ClickHouse failed or returned what the contract does not allow: retry
    /// later, and look at the log.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ReportError {
    pub fn bad(parameter: &str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            parameter: parameter.into(),
            message: message.into(),
        }
    }
}
