//! The OpenAPI 3.1 document at `/api/v1/openapi.json`, generated from the
//! tables the handlers themselves use: the routes, the KPI specs (name, unit,
//! definition, accepted keys and filters) and the parameter vocabularies.

use channelshift_contract::{Channel, CouncilCode, CustomerType, Instrument, ServiceSlug};
use channelshift_kpi::catalogue::{FilterKey, GroupKey, Kpi};
use serde_json::{json, Map, Value};

pub const KPI_ROUTE: &str = "/api/v1/kpi/{kpi}";
pub const SCORECARD_ROUTE: &str = "/api/v1/scorecard";
pub const OPENAPI_ROUTE: &str = "/api/v1/openapi.json";
pub const PACK_ROUTE: &str = "/api/v1/exports/pack";

/// Every route the router serves, as (method, path).
pub const ROUTES: &[(&str, &str)] = &[
    ("get", KPI_ROUTE),
    ("get", SCORECARD_ROUTE),
    ("get", OPENAPI_ROUTE),
    ("get", PACK_ROUTE),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
];

fn names<T: Copy>(all: &[T], name: fn(T) -> &'static str) -> Vec<&'static str> {
    all.iter().map(|&item| name(item)).collect()
}

fn query(name: &str, required: bool, description: String, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": required, "description": description, "schema": schema})
}

fn filter_schema(key: FilterKey) -> Value {
    match key {
        FilterKey::Service => {
            json!({"type": "string", "pattern": "^[a-z0-9_]{1,48}$", "description": ServiceSlug::RULE})
        }
        FilterKey::Channel => {
            json!({"type": "string", "enum": names(Channel::ALL, Channel::as_str)})
        }
        FilterKey::CustomerType => {
            json!({"type": "string", "enum": names(CustomerType::ALL, CustomerType::as_str)})
        }
        FilterKey::Instrument => {
            json!({"type": "string", "enum": names(Instrument::ALL, Instrument::as_str)})
        }
    }
}

fn kpi_parameters() -> Vec<Value> {
    let kpi_names = names(Kpi::ALL, Kpi::as_str);
    let mut parameters = vec![
        json!({"name": "kpi", "in": "path", "required": true, "schema": {"type": "string", "enum": kpi_names}}),
        query(
            "council",
            true,
            format!("GSS code of the authority: {}", CouncilCode::RULE),
            json!({"type": "string", "pattern": "^[ENSW][0-9]{8}$"}),
        ),
        query(
            "from",
            true,
            "First local (Europe/London) date, inclusive".into(),
            json!({"type": "string", "format": "date"}),
        ),
        query(
            "to",
            true,
            "Last local date, inclusive; not before `from`".into(),
            json!({"type": "string", "format": "date"}),
        ),
        query(
            "period",
            false,
            "Rows per period; quarters and years are financial (April)".into(),
            json!({"type": "string", "enum": ["day", "week", "month", "quarter", "financial_year", "total"], "default": "total"}),
        ),
    ];
    let accepted: Vec<String> = Kpi::ALL
        .iter()
        .map(|&kpi| {
            let keys = names(kpi.spec().group_by, GroupKey::as_str);
            format!("{kpi}: {}", keys.join(", "))
        })
        .collect();
    parameters.push(query(
        "group_by",
        false,
        format!("Comma list of keys; accepted per KPI — {}", accepted.join("; ")),
        json!({"type": "string", "example": "service,customer_type", "x-keys": names(GroupKey::ALL, GroupKey::as_str)}),
    ));
    for &key in FilterKey::ALL {
        let users: Vec<&str> = Kpi::ALL
            .iter()
            .filter(|kpi| kpi.spec().filters.contains(&key))
            .map(|kpi| kpi.as_str())
            .collect();
        parameters.push(query(
            key.as_str(),
            false,
            format!("Filter; accepted by: {}", users.join(", ")),
            filter_schema(key),
        ));
    }
    parameters
}

fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

/// The whole document.
pub fn document() -> Value {
    let kpi_descriptions: Vec<String> = Kpi::ALL
        .iter()
        .map(|&kpi| {
            let spec = kpi.spec();
            format!("- `{kpi}` ({}): {}", spec.unit, spec.definition)
        })
        .collect();
    let mut paths = Map::new();
    paths.insert(KPI_ROUTE.into(), json!({"get": {
        "summary": "One KPI for a council over a range of local dates, per period and group",
        "description": kpi_descriptions.join("\n"),
        "security": [{"bearer": []}],
        "parameters": kpi_parameters(),
        "responses": {
            "200": {"description": "The KPI's rows", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/KpiResponse"}}}},
            "400": error_response("A parameter is missing or invalid; `parameter` names it"),
            "401": error_response("No valid bearer token"),
            "404": error_response("Unknown KPI"),
            "503": error_response("The KPI store could not answer"),
        }
    }}));
    paths.insert(SCORECARD_ROUTE.into(), json!({"get": {
        "summary": "Every headline KPI for the period containing `date`, with target, RAG, direction of travel and coverage",
        "security": [{"bearer": []}],
        "parameters": [
            query("council", true, "GSS code of the authority".into(), json!({"type": "string", "pattern": "^[ENSW][0-9]{8}$"})),
            query("period", false, "The period kind".into(), json!({"type": "string", "enum": ["month", "quarter", "financial_year"], "default": "quarter"})),
            query("date", false, "A local date inside the period; default today".into(), json!({"type": "string", "format": "date"})),
        ],
        "responses": {
            "200": {"description": "The scorecard", "content": {"application/json": {"schema": {"type": "object"}}}},
            "400": error_response("A parameter is missing or invalid"),
            "401": error_response("No valid bearer token"),
        }
    }}));
    let formats: Vec<&str> = channelshift_reports::pack::Format::ALL
        .iter()
        .map(|format| format.name())
        .collect();
    let contents: serde_json::Map<String, serde_json::Value> =
        channelshift_reports::pack::Format::ALL
            .iter()
            .map(|format| {
                let media = format.content_type().split(';').next().unwrap_or_default();
                (media.to_string(), json!({}))
            })
            .collect();
    paths.insert(PACK_ROUTE.into(), json!({"get": {
        "summary": "A committee pack: every KPI for the period, in total and by breakdown, with eight periods of trend and restatements since the previous pack, as tidy CSV (RFC 4180) or its CSVW metadata, an XLSX or ODS workbook, an accessible HTML report or its PDF; regenerating with the same as_of gives the same figures (the same CSV bytes)",
        "security": [{"bearer": []}],
        "parameters": [
            query("council", true, "GSS code of the authority".into(), json!({"type": "string", "pattern": "^[ENSW][0-9]{8}$"})),
            query("period", false, "The period kind".into(), json!({"type": "string", "enum": ["month", "quarter", "financial_year"], "default": "quarter"})),
            query("date", false, "A local date inside the period; default today".into(), json!({"type": "string", "format": "date"})),
            query("format", false, "The pack's format (csvw: the CSV's metadata)".into(), json!({"type": "string", "enum": formats, "default": "csv"})),
            query("as_of", false, "Include only data ingested up to this instant; default and latest: kpi.pack_settle_seconds before now".into(), json!({"type": "string", "format": "date-time"})),
            query("previous_as_of", false, "The previous pack's as_of, to flag restatements against; default: the reporting calendar's latest cut-off before as_of for the council".into(), json!({"type": "string", "format": "date-time"})),
        ],
        "responses": {
            "200": {"description": "The pack", "content": contents},
            "400": error_response("A parameter is missing or invalid"),
            "401": error_response("No valid bearer token"),
            "503": error_response("The store, or Chromium for a PDF, cannot answer now"),
        }
    }}));
    paths.insert(OPENAPI_ROUTE.into(), json!({"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1"}}}}));
    paths.insert(
        "/healthz".into(),
        json!({"get": {"summary": "Alive (open)", "responses": {"200": {"description": "alive"}}}}),
    );
    paths.insert("/readyz".into(), json!({"get": {"summary": "Ready: ClickHouse answers (open)", "responses": {"200": {"description": "ready"}, "503": {"description": "not ready"}}}}));
    paths.insert("/metrics".into(), json!({"get": {"summary": "Prometheus metrics (open)", "responses": {"200": {"description": "text exposition format"}}}}));
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Channelshift KPI API",
            "version": "1",
            "description": "Channel-shift KPIs of a council from its contact events and satisfaction surveys. Dates are Europe/London local dates; small numbers are suppressed (value null, suppressed true)."
        },
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error", "message"], "properties": {
                    "error": {"type": "string"}, "parameter": {"type": "string"}, "message": {"type": "string"}}},
                "KpiResponse": {"type": "object", "required": ["kpi", "unit", "definition", "as_of", "notes", "rows"], "properties": {
                    "kpi": {"type": "string"}, "unit": {"type": "string", "enum": ["percent", "gbp"]},
                    "definition": {"type": "string"}, "as_of": {"type": ["string", "null"], "format": "date-time"},
                    "notes": {"type": "array", "items": {"type": "string"}},
                    "rows": {"type": "array", "items": {"$ref": "#/components/schemas/KpiRow"}}}},
                "KpiRow": {"type": "object", "required": ["period_start", "period_end", "suppressed"],
                    "description": "Group keys (channel, channel_class, service, customer_type, ward, lsoa, instrument, measure) appear as extra string fields.",
                    "additionalProperties": true, "properties": {
                    "period_start": {"type": "string", "format": "date"}, "period_end": {"type": "string", "format": "date"},
                    "value": {"type": ["number", "null"]}, "numerator": {"type": ["integer", "null"]},
                    "denominator": {"type": ["integer", "null"]}, "n": {"type": ["integer", "null"]},
                    "ci95_low": {"type": ["number", "null"]}, "ci95_high": {"type": ["number", "null"]},
                    "suppressed": {"type": "boolean"}}}
            }
        }
    })
}

pub async fn get_openapi() -> axum::Json<Value> {
    axum::Json(document())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented_and_every_documented_path_is_a_route() {
        let document = document();
        let paths = document["paths"].as_object().expect("paths is an object");
        for (method, path) in ROUTES {
            assert!(
                paths
                    .get(*path)
                    .and_then(|item| item.get(*method))
                    .is_some(),
                "{method} {path} missing from the document"
            );
        }
        for path in paths.keys() {
            assert!(
                ROUTES.iter().any(|(_, route)| route == path),
                "{path} documented but not routed"
            );
        }
    }

    #[test]
    fn every_kpi_and_its_keys_are_documented() {
        let document = document();
        let text = document.to_string();
        for kpi in Kpi::ALL {
            assert!(text.contains(kpi.as_str()), "{kpi} missing");
            for key in kpi.spec().group_by {
                assert!(text.contains(&format!("{kpi}: ")) && text.contains(key.as_str()));
            }
        }
    }
}
