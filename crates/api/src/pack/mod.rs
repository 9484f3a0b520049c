//! Committee packs as scrutiny committees receive them — tidy CSV with CSVW
//! metadata (`csv`), ODS and XLSX workbooks (`workbook`), an accessible HTML
//! report (`html`) and its PDF (`pdf`) — produced on request or for every
//! meeting of the reporting calendar that is due (`calendar`). The figures
//! are the reports crate's ([`channelshift_reports::pack`]).

pub mod calendar;
mod csv;
mod html;
pub mod pdf;
mod words;
mod workbook;

use crate::error::ApiError;
use crate::request;
use crate::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use channelshift_kpi::period::{local_date, Period};
pub use channelshift_reports::pack::*;
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::HashMap;

/// The pack's as-of instant: given, or the latest settled one. An instant
/// less than `settle` seconds ago is refused: rows stamped before it may
/// still be on their way, so the pack could not be reproduced.
pub fn as_of(value: Option<&str>, settle: i64) -> Result<i64, ApiError> {
    let at = value.map(|text| parse_instant(text, "as_of")).transpose()?;
    Ok(settled_as_of(at, settle)?)
}

fn parse_instant(text: &str, parameter: &str) -> Result<i64, ApiError> {
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.timestamp())
        .map_err(|_| ApiError::bad(parameter, "an RFC 3339 instant, e.g. 2026-10-05T09:00:00Z"))
}

/// The formats a pack comes in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv,
    Csvw,
    Xlsx,
    Ods,
    Html,
    Pdf,
}

impl Format {
    pub const ALL: &'static [Format] = &[
        Format::Csv,
        Format::Csvw,
        Format::Xlsx,
        Format::Ods,
        Format::Html,
        Format::Pdf,
    ];

    pub fn parse(text: &str) -> Option<Format> {
        Format::ALL
            .iter()
            .copied()
            .find(|format| format.name() == text)
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Csvw => "csvw",
            Format::Xlsx => "xlsx",
            Format::Ods => "ods",
            Format::Html => "html",
            Format::Pdf => "pdf",
        }
    }

    /// The file name's ending after the pack's stem.
    pub fn suffix(self) -> &'static str {
        match self {
            Format::Csvw => ".csv-metadata.json",
            Format::Csv => ".csv",
            Format::Xlsx => ".xlsx",
            Format::Ods => ".ods",
            Format::Html => ".html",
            Format::Pdf => ".pdf",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8; header=present",
            Format::Csvw => "application/csvm+json",
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Format::Ods => "application/vnd.oasis.opendocument.spreadsheet",
            Format::Html => "text/html; charset=utf-8",
            Format::Pdf => "application/pdf",
        }
    }
}

/// Renders the pack in `format`.
pub async fn render(pack: &Pack, format: Format, state: &AppState) -> Result<Vec<u8>, ApiError> {
    Ok(match format {
        Format::Csv => csv::csv(pack).into_bytes(),
        Format::Csvw => serde_json::to_string_pretty(&csv::csvw(pack))
            .unwrap_or_default()
            .into_bytes(),
        Format::Xlsx => workbook::xlsx(pack).map_err(ApiError::Internal)?,
        Format::Ods => workbook::ods(pack).map_err(ApiError::Internal)?,
        Format::Html => html::report(pack).into_bytes(),
        Format::Pdf => pdf::render(&html::report(pack), &state.pdf)
            .await
            .map_err(|error| match error {
                pdf::PdfError::Unavailable(message) => ApiError::Unavailable(message),
                other => ApiError::Internal(other.to_string()),
            })?,
    })
}

/// The previous pack's as-of: given, else the calendar's latest meeting for
/// the council with an as-of before this one.
fn previous_as_of(
    state: &AppState,
    council: &str,
    as_of: i64,
    given: Option<&str>,
) -> Result<Option<i64>, ApiError> {
    match given {
        Some(text) => {
            let at = parse_instant(text, "previous_as_of")?;
            if at >= as_of {
                return Err(ApiError::bad(
                    "previous_as_of",
                    "must be earlier than as_of",
                ));
            }
            Ok(Some(at))
        }
        None => Ok(state.calendar.previous_as_of(council, as_of)),
    }
}

const PARAMETERS: &[&str] = &[
    "council",
    "period",
    "date",
    "format",
    "as_of",
    "previous_as_of",
];

/// `GET /api/v1/exports/pack?council=&period=&date=&format=&as_of=&previous_as_of=`
pub async fn get_pack(
    State(state): State<AppState>,
    params: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) =
        params.map_err(|rejection| ApiError::bad("query", rejection.body_text()))?;
    if let Some(unknown) = params
        .keys()
        .find(|name| !PARAMETERS.contains(&name.as_str()))
    {
        return Err(ApiError::bad(unknown, "unknown parameter"));
    }
    let council = request::council(params.get("council"))?;
    let kind = crate::scorecard::period_kind(params.get("period"))?;
    let date: NaiveDate = match params.get("date") {
        Some(_) => request::date(params.get("date"), "date")?,
        None => local_date(Utc::now()),
    };
    let period =
        Period::containing(kind, date).map_err(|error| ApiError::bad("date", error.to_string()))?;
    let as_of = as_of(
        params.get("as_of").map(String::as_str),
        state.policy.pack_settle_seconds,
    )?;
    let format_name = params.get("format").map(String::as_str).unwrap_or("csv");
    let format = Format::parse(format_name).ok_or_else(|| {
        let names: Vec<&str> = Format::ALL.iter().map(|format| format.name()).collect();
        ApiError::bad("format", format!("one of {}", names.join(", ")))
    })?;
    let previous_as_of = previous_as_of(
        &state,
        council.as_str(),
        as_of,
        params.get("previous_as_of").map(String::as_str),
    )?;
    let pack = build(
        &state.store,
        &state.policy,
        Scope {
            council: &council,
            period,
            as_of,
            previous_as_of,
        },
    )
    .await?;
    let body = render(&pack, format, &state).await?;
    let disposition = if format == Format::Html {
        "inline"
    } else {
        "attachment"
    };
    Ok((
        [
            (header::CONTENT_TYPE, format.content_type().to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!(
                    "{disposition}; filename=\"{}{}\"",
                    pack.file_stem(),
                    format.suffix()
                ),
            ),
        ],
        body,
    )
        .into_response())
}
