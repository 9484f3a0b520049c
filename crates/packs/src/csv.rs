//! The pack as tidy CSV (RFC 4180: one row per KPI × measure × breakdown ×
//! period) with a CSVW metadata document describing its columns.

use crate::{measure_of, words, Pack, PackRow, Trend, TrendPoint};
use channelshift_kpi::catalogue::{Kpi, Unit};
use channelshift_reports::rows::KpiRow;
use serde_json::json;
use std::fmt::Write;

/// The columns, in order, with their CSVW datatype and meaning.
pub const COLUMNS: &[(&str, &str, &str)] = &[
    ("council", "string", "GSS code of the council"),
    ("kpi", "string", "The KPI (see the definitions)"),
    ("measure", "string", "For satisfaction: instrument/measure, e.g. csat5/satisfied; empty otherwise"),
    ("breakdown", "string", "What the row is broken down by: total, financial_year_to_date (savings), channel, channel_class, service, customer_type, ward or lsoa"),
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
    ("target", "decimal", "The council's target (headline rows only); for savings in the financial year to date, the year's target profiled pro rata to the period's end"),
    ("rag", "string", "green, amber or red against the target (headline rows only)"),
    ("suppressed", "boolean", "true when withheld because it rests on fewer cases than the threshold"),
    ("restated", "boolean", "true when the figure differs from the one the previous pack published for the same period"),
    ("previously_published", "decimal", "The figure the previous pack published, for restated rows"),
    ("as_of", "datetime", "Data ingested up to this instant (UTC) is included; later data is not"),
];

/// A text field made safe for spreadsheets and quoted when it must be
/// (RFC 4180). Text a spreadsheet would read as a formula (`=`, `+`, `-`,
/// `@`, tab, carriage return first) is prefixed with `'` (OWASP's advice).
pub fn field(text: &str) -> String {
    let text = neutralise(text);
    if text.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.into_owned()
    }
}

/// Text that would start a formula, made inert.
pub fn neutralise(text: &str) -> std::borrow::Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}").into()
    } else {
        text.into()
    }
}

fn number<T: ToString>(value: Option<T>) -> String {
    value.map(|value| value.to_string()).unwrap_or_default()
}

/// One CSV line: a figure of the pack's period, or an earlier period's trend point.
struct Line<'a> {
    kpi: Kpi,
    unit: Unit,
    measure: String,
    breakdown: &'a str,
    breakdown_value: &'a str,
    row: &'a KpiRow,
    target: Option<f64>,
    rag: Option<&'static str>,
    /// `Some(previous figure)` when the row is restated.
    restated: Option<Option<f64>>,
}

fn write_line(out: &mut String, pack: &Pack, line: Line<'_>) {
    let row = line.row;
    let fields = [
        field(&pack.council),
        field(line.kpi.as_str()),
        field(&line.measure),
        field(line.breakdown),
        field(line.breakdown_value),
        row.period_start.to_string(),
        row.period_end.to_string(),
        field(line.unit.as_str()),
        number(row.value),
        number(row.numerator),
        number(row.denominator),
        number(row.n),
        number(row.ci95_low),
        number(row.ci95_high),
        number(line.target),
        line.rag.unwrap_or_default().to_string(),
        row.suppressed.to_string(),
        line.restated.is_some().to_string(),
        number(line.restated.flatten()),
        pack.as_of_text(),
    ];
    let _ = write!(out, "{}\r\n", fields.join(","));
}

fn pack_row(out: &mut String, pack: &Pack, pack_row: &PackRow) {
    write_line(
        out,
        pack,
        Line {
            kpi: pack_row.kpi,
            unit: pack_row.unit,
            measure: pack_row.measure(),
            breakdown: pack_row.breakdown,
            breakdown_value: pack_row.breakdown_value(),
            row: &pack_row.row,
            target: pack_row.target.map(|target| target.target()),
            rag: pack_row.rag.map(|rag| rag.as_str()),
            restated: None,
        },
    );
}

/// An earlier period's headline figure, with its restatement flag.
fn trend_row(out: &mut String, pack: &Pack, trend: &Trend, point: &TrendPoint) {
    let Some(row) = &point.row else {
        return;
    };
    write_line(
        out,
        pack,
        Line {
            kpi: trend.kpi,
            unit: trend.unit,
            measure: measure_of(row),
            breakdown: trend.breakdown,
            breakdown_value: match trend.breakdown {
                "total" => "",
                key => row.key(key).unwrap_or_default(),
            },
            row,
            target: trend.target.map(|target| target.target()),
            rag: trend
                .target
                .zip(row.value)
                .map(|(target, value)| target.rag(value).as_str()),
            restated: point.restated_from.map(|before| before.value),
        },
    );
}

/// The pack as RFC 4180 CSV (CRLF line ends, header row): the period's
/// figures, then each headline's earlier periods.
pub fn csv(pack: &Pack) -> String {
    let mut out = String::new();
    let header: Vec<&str> = COLUMNS.iter().map(|(name, _, _)| *name).collect();
    out.push_str(&header.join(","));
    out.push_str("\r\n");
    for row in &pack.rows {
        pack_row(&mut out, pack, row);
    }
    for trend in &pack.trends {
        for point in trend
            .points
            .iter()
            .filter(|point| point.period != pack.period)
        {
            trend_row(&mut out, pack, trend, point);
        }
    }
    out
}

/// CSVW metadata describing the CSV's columns (`<stem>.csv-metadata.json`).
pub fn csvw(pack: &Pack) -> serde_json::Value {
    let columns: Vec<serde_json::Value> = COLUMNS
        .iter()
        .map(|(name, datatype, description)| {
            json!({"name": name, "titles": name, "datatype": datatype, "dc:description": description})
        })
        .collect();
    json!({
        "@context": "http://www.w3.org/ns/csvw",
        "url": format!("{}.csv", pack.file_stem()),
        "dc:title": words::pack_title(pack),
        "dc:description": "Every KPI for the period, in total and by each breakdown, with n, 95% interval, target, RAG and suppression flag; then each headline figure for the seven periods before, flagged where it was restated since the previous pack. Small numbers are withheld and marked, never shown as zero; where one row of a breakdown is withheld the next smallest is too (secondary suppression), so no withheld count can be derived by subtraction.",
        "dc:date": pack.as_of_text(),
        "dialect": {"header": true, "delimiter": ",", "lineTerminators": ["\r\n"]},
        "tableSchema": {"columns": columns}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_text_is_made_inert_and_quoting_follows_rfc_4180() {
        assert_eq!(
            field("=HYPERLINK(\"http://x\",\"y\")"),
            "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""
        );
        assert_eq!(field("+1"), "'+1");
        assert_eq!(field("-2"), "'-2");
        assert_eq!(field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(field("\tx"), "'\tx");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("council_tax"), "council_tax");
        assert_eq!(field(""), "");
    }
}
