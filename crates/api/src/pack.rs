//! Committee packs, first format: every KPI for a council and a period as
//! tidy CSV (RFC 4180: one row per KPI × measure × breakdown) with a CSVW
//! metadata document describing its columns.
//!
//! Figures come from the raw tables as they stood at the pack's as-of instant
//! (`Source::RawAsOf`), so a pack regenerated with the same as-of is byte for
//! byte the same however much data arrived since. Packs are published: small
//! numerators are withheld as well as small denominators.

use crate::error::ApiError;
use crate::kpi::{self, KPIS};
use crate::kpis::KpiRow;
use crate::request::{self, Grouping, KpiRequest};
use crate::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use channelshift_kpi::period::{local_date, Period};
use channelshift_store::{CellFilter, Source};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::json;
use std::collections::HashMap;
use std::fmt::Write;

/// The columns, in order, with their CSVW datatype and meaning.
const COLUMNS: &[(&str, &str, &str)] = &[
    ("council", "string", "GSS code of the council"),
    ("kpi", "string", "The KPI (see the API's definitions)"),
    ("measure", "string", "For satisfaction: instrument/measure, e.g. csat5/satisfied; empty otherwise"),
    ("breakdown", "string", "What the row is broken down by: total, channel, channel_class, service, customer_type, ward or lsoa"),
    ("breakdown_value", "string", "The value of the breakdown (empty for total)"),
    ("period_start", "date", "First local (Europe/London) day of the period"),
    ("period_end", "date", "Last local day of the period"),
    ("unit", "string", "percent or gbp"),
    ("value", "decimal", "The figure; empty when suppressed or not computable"),
    ("numerator", "integer", "Cases counted (pence of cost for cost-per-transaction)"),
    ("denominator", "integer", "Cases the rate is over"),
    ("n", "integer", "Cases the figure rests on"),
    ("ci95_low", "decimal", "Lower bound of the 95% interval"),
    ("ci95_high", "decimal", "Upper bound of the 95% interval"),
    ("target", "decimal", "The council's target (total rows only)"),
    ("rag", "string", "green, amber or red against the target (total rows only)"),
    ("suppressed", "boolean", "true when withheld because it rests on fewer cases than the threshold"),
    ("as_of", "datetime", "Data ingested up to this instant (UTC) is included; later data is not"),
];

/// One pack row.
struct PackRow {
    kpi: &'static str,
    unit: &'static str,
    breakdown: &'static str,
    row: KpiRow,
}

/// The pack's scope: council, period and as-of instant.
pub struct Pack {
    pub council: String,
    pub period: Period,
    pub as_of: i64,
    rows: Vec<PackRow>,
}

fn published(row: KpiRow, state: &AppState) -> KpiRow {
    // Published outputs withhold small counts of cases, not only small bases.
    let small = row
        .numerator
        .is_some_and(|count| count >= 0 && state.suppression.count(count as u64).is_suppressed());
    if row.denominator.is_some() && small {
        row.withheld()
    } else {
        row
    }
}

/// Computes every KPI of the pack, unbroken and by each breakdown the KPI accepts.
pub async fn build(
    state: &AppState,
    council: &str,
    period: Period,
    as_of: i64,
) -> Result<Pack, ApiError> {
    let (from, to) = (period.first_day(), period.last_day());
    let mut rows = Vec::new();
    for spec in KPIS {
        if spec.name == "efficiency-savings" && state.baseline.is_none() {
            continue;
        }
        let breakdowns =
            std::iter::once(None).chain(spec.accepts.group_by.iter().copied().map(Some));
        for breakdown in breakdowns {
            // Hot spots are always by area: their "total" is the ward breakdown.
            if spec.name == "hotspots" && breakdown.is_none() {
                continue;
            }
            let request = KpiRequest {
                filter: CellFilter {
                    council: council.to_string(),
                    from,
                    to,
                    ..CellFilter::default()
                },
                grouping: Grouping::Total,
                group_by: breakdown.into_iter().collect(),
                periods: vec![(from, to)],
            };
            let report = kpi::compute(state, spec.name, &request, Source::RawAsOf(as_of)).await?;
            for row in report.rows {
                rows.push(PackRow {
                    kpi: spec.name,
                    unit: spec.unit,
                    breakdown: breakdown.map_or("total", |key| key.as_str()),
                    row: published(row, state),
                });
            }
        }
    }
    Ok(Pack {
        council: council.to_string(),
        period,
        as_of,
        rows,
    })
}

/// A CSV field, quoted when it must be (RFC 4180).
fn field(text: &str) -> String {
    if text.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

fn number<T: ToString>(value: Option<T>) -> String {
    value.map(|value| value.to_string()).unwrap_or_default()
}

impl Pack {
    pub fn as_of_text(&self) -> String {
        DateTime::<Utc>::from_timestamp(self.as_of, 0)
            .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default()
    }

    pub fn file_stem(&self) -> String {
        format!(
            "channelshift-{}-{}",
            self.council,
            self.period.label().replace(' ', "-")
        )
    }

    /// The pack as RFC 4180 CSV (CRLF line ends, header row).
    pub fn csv(&self, state: &AppState) -> String {
        let mut out = String::new();
        let header: Vec<&str> = COLUMNS.iter().map(|(name, _, _)| *name).collect();
        out.push_str(&header.join(","));
        out.push_str("\r\n");
        let as_of = self.as_of_text();
        for pack_row in &self.rows {
            let row = &pack_row.row;
            let measure = match (row.key("instrument"), row.key("measure")) {
                (Some(instrument), Some(measure)) => format!("{instrument}/{measure}"),
                _ => String::new(),
            };
            let breakdown_value = if pack_row.breakdown == "total" {
                ""
            } else {
                row.key(pack_row.breakdown).unwrap_or_default()
            };
            let target = (pack_row.breakdown == "total")
                .then(|| state.targets.get(pack_row.kpi))
                .flatten()
                .filter(|_| measure.is_empty() || measure == "csat5/satisfied");
            let rag = target
                .zip(row.value)
                .map(|(target, value)| target.rag(value).as_str());
            let fields = [
                field(&self.council),
                field(pack_row.kpi),
                field(&measure),
                field(pack_row.breakdown),
                field(breakdown_value),
                row.period_start.to_string(),
                row.period_end.to_string(),
                field(pack_row.unit),
                number(row.value),
                number(row.numerator),
                number(row.denominator),
                number(row.n),
                number(row.ci95_low),
                number(row.ci95_high),
                number(target.map(|target| target.target())),
                rag.unwrap_or_default().to_string(),
                row.suppressed.to_string(),
                as_of.clone(),
            ];
            let _ = write!(out, "{}\r\n", fields.join(","));
        }
        out
    }

    /// CSVW metadata describing the CSV's columns (`<stem>.csv-metadata.json`).
    pub fn csvw(&self) -> serde_json::Value {
        let columns: Vec<serde_json::Value> = COLUMNS
            .iter()
            .map(|(name, datatype, description)| {
                json!({"name": name, "titles": name, "datatype": datatype, "dc:description": description})
            })
            .collect();
        json!({
            "@context": "http://www.w3.org/ns/csvw",
            "url": format!("{}.csv", self.file_stem()),
            "dc:title": format!("Channel-shift KPIs for {}, {}", self.council, self.period.label()),
            "dc:description": "Every KPI for the period, in total and by each breakdown, with n, 95% interval, target, RAG and suppression flag. Small numbers are withheld and marked, never shown as zero.",
            "dc:date": self.as_of_text(),
            "dialect": {"header": true, "delimiter": ",", "lineTerminators": ["\r\n"]},
            "tableSchema": {"columns": columns}
        })
    }
}

/// The pack's as-of instant: given, or the latest settled one. An instant
/// less than `settle` seconds ago is refused: rows stamped before it may
/// still be on their way, so the pack could not be reproduced.
fn as_of(value: Option<&String>, settle: i64) -> Result<i64, ApiError> {
    let settled = Utc::now().timestamp() - settle;
    match value {
        Some(text) => {
            let at = DateTime::parse_from_rfc3339(text)
                .map(|at| at.timestamp())
                .map_err(|_| {
                    ApiError::bad("as_of", "an RFC 3339 instant, e.g. 2026-10-05T09:00:00Z")
                })?;
            if at > settled {
                return Err(ApiError::bad(
                    "as_of",
                    format!("must be at least {settle} s ago, so that everything ingested by then is stored"),
                ));
            }
            Ok(at)
        }
        None => Ok(settled),
    }
}

/// `GET /api/v1/exports/pack?council=&period=&date=&format=csv|csvw&as_of=`
pub async fn get_pack(
    State(state): State<AppState>,
    params: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) =
        params.map_err(|rejection| ApiError::bad("query", rejection.body_text()))?;
    if let Some(unknown) = params
        .keys()
        .find(|name| !["council", "period", "date", "format", "as_of"].contains(&name.as_str()))
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
    let as_of = as_of(params.get("as_of"), state.pack_settle_seconds)?;
    let format = params.get("format").map(String::as_str).unwrap_or("csv");
    if !["csv", "csvw"].contains(&format) {
        return Err(ApiError::bad(
            "format",
            "csv or csvw (more formats are coming)",
        ));
    }
    let pack = build(&state, council.as_str(), period, as_of).await?;
    let stem = pack.file_stem();
    Ok(match format {
        "csvw" => (
            [
                (header::CONTENT_TYPE, "application/csvm+json".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{stem}.csv-metadata.json\""),
                ),
            ],
            serde_json::to_string_pretty(&pack.csvw()).unwrap_or_default(),
        )
            .into_response(),
        _ => (
            [
                (
                    header::CONTENT_TYPE,
                    "text/csv; charset=utf-8; header=present".to_string(),
                ),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{stem}.csv\""),
                ),
            ],
            pack.csv(&state),
        )
            .into_response(),
    })
}
