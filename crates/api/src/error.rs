//! Every failure becomes a response here, in one place: a status and a JSON
//! body that says what was wrong with the request, never internals.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What kind of failure: `bad_request`, `too_large`, `unauthorized`,
    /// `not_found`, `unavailable`, `store_unavailable` or `internal`.
    pub error: &'static str,
    pub message: String,
    /// The query parameter that was wrong, on a `bad_request`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameter: Option<String>,
}

impl ErrorBody {
    fn new(error: &'static str, message: impl Into<String>) -> Self {
        Self {
            error,
            message: message.into(),
            parameter: None,
        }
    }
}

#[derive(Debug)]
pub enum ApiError {
    /// A query parameter was missing or invalid; names the parameter.
    BadRequest {
        parameter: String,
        message: String,
    },
    /// The request needs more than one request may have (a query stopped
    /// at its time, row or memory limit): asking again will not help.
    TooLarge,
    Unauthorized,
    NotFound(String),
    /// A dependency other than the store (e.g. the PDF renderer) cannot serve now.
    Unavailable(String),
    /// ClickHouse failed; details go to the log, not the client.
    Store(String),
    Internal(String),
}

impl ApiError {
    pub fn bad(parameter: &str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            parameter: parameter.into(),
            message: message.into(),
        }
    }
}

impl From<channelshift_reports::ReportError> for ApiError {
    fn from(error: channelshift_reports::ReportError) -> Self {
        match error {
            channelshift_reports::ReportError::BadRequest { parameter, message } => {
                Self::BadRequest { parameter, message }
            }
            channelshift_reports::ReportError::Store(error) => error.into(),
        }
    }
}

impl From<channelshift_store::StoreError> for ApiError {
    fn from(error: channelshift_store::StoreError) -> Self {
        if error.is_over_limit() {
            tracing::warn!(%error, "a query met its limit");
            Self::TooLarge
        } else {
            Self::Store(error.to_string())
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            ApiError::BadRequest { parameter, message } => (
                StatusCode::BAD_REQUEST,
                ErrorBody {
                    parameter: Some(parameter),
                    ..ErrorBody::new("bad_request", message)
                },
            ),
            ApiError::TooLarge => (
                StatusCode::BAD_REQUEST,
                ErrorBody::new(
                    "too_large",
                    "the request needs more time, rows or memory than one request may have: \
                     ask for a shorter period, a coarser period or grouping, or a narrower filter",
                ),
            ),
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                ErrorBody::new("unauthorized", "a valid bearer token is required"),
            ),
            ApiError::NotFound(what) => (StatusCode::NOT_FOUND, ErrorBody::new("not_found", what)),
            ApiError::Unavailable(message) => (
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorBody::new("unavailable", message),
            ),
            ApiError::Store(error) => {
                tracing::error!(%error, "store query failed");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorBody::new(
                        "store_unavailable",
                        "the KPI store could not answer; try again shortly",
                    ),
                )
            }
            ApiError::Internal(error) => {
                tracing::error!(%error, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorBody::new("internal", "internal error"),
                )
            }
        };
        (status, Json(body)).into_response()
    }
}
