//! The OpenAPI 3.1 document at `/api/v1/openapi.json`, derived by `utoipa`
//! from the handlers' own types: each endpoint's query struct (`query`), its
//! answer and error types, and the closed sets they name. The KPI catalogue
//! (what each KPI accepts) and the packs' media types are added from the
//! same tables the handlers check against.

use crate::error::ErrorBody;
use crate::kpi::KpiResponse;
use axum::Json;
use channelshift_kpi::catalogue::Kpi;
use channelshift_reports::pack::Format;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, PathItem};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, RefOr, ResponseBuilder, ResponsesBuilder};
use utoipa::{Modify, OpenApi};

pub const KPI_ROUTE: &str = "/api/v1/kpi/{kpi}";
pub const SCORECARD_ROUTE: &str = "/api/v1/scorecard";
pub const OPENAPI_ROUTE: &str = "/api/v1/openapi.json";
pub const PACK_ROUTE: &str = "/api/v1/exports/pack";
pub const OPPORTUNITY_ROUTE: &str = "/api/v1/opportunities";
pub const BENCHMARKS_ROUTE: &str = "/api/v1/benchmarks";

/// Every route the router serves, as (method, path).
pub const ROUTES: &[(&str, &str)] = &[
    ("get", KPI_ROUTE),
    ("get", SCORECARD_ROUTE),
    ("get", OPENAPI_ROUTE),
    ("get", PACK_ROUTE),
    ("get", OPPORTUNITY_ROUTE),
    ("get", BENCHMARKS_ROUTE),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
];

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Channelshift KPI API",
        version = "1",
        description = "Channel-shift KPIs of a council from its contact events and satisfaction surveys. Dates are Europe/London local dates; small numbers are suppressed (value null, suppressed true).",
    ),
    paths(
        crate::kpi::get_kpi,
        crate::scorecard::get_scorecard,
        crate::pack::get_pack,
        crate::opportunity::get_opportunities,
        crate::scorecard::get_benchmarks,
        get_openapi,
    ),
    components(schemas(ErrorBody, KpiResponse)),
    modifiers(&Catalogue, &Operator),
)]
struct ApiDoc;

/// The whole document.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// This document.
#[utoipa::path(get, path = OPENAPI_ROUTE, responses((status = 200, description = "OpenAPI 3.1")))]
pub async fn get_openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(document())
}

/// Adds what the handlers check against but a type cannot say: each KPI's
/// unit, definition, group keys and filters; the packs' media types; and the
/// bearer scheme.
struct Catalogue;

impl Modify for Catalogue {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        if let Some(operation) = openapi
            .paths
            .paths
            .get_mut(KPI_ROUTE)
            .and_then(|item| item.get.as_mut())
        {
            let lines: Vec<String> = Kpi::ALL.iter().map(|&kpi| kpi_line(kpi)).collect();
            let described = operation.description.take().unwrap_or_default();
            operation.description = Some(format!("{described}\n\n{}", lines.join("\n")));
        }
        if let Some(RefOr::T(response)) = openapi
            .paths
            .paths
            .get_mut(PACK_ROUTE)
            .and_then(|item| item.get.as_mut())
            .and_then(|operation| operation.responses.responses.get_mut("200"))
        {
            for format in Format::ALL {
                let media = format.content_type().split(';').next().unwrap_or_default();
                response
                    .content
                    .insert(media.to_string(), ContentBuilder::new().build().into());
            }
        }
    }
}

/// One KPI in the catalogue: slug, unit, definition, what it accepts.
fn kpi_line(kpi: Kpi) -> String {
    let spec = kpi.spec();
    let keys: Vec<&str> = spec.group_by.iter().map(|key| key.as_str()).collect();
    let filters: Vec<&str> = spec.filters.iter().map(|key| key.as_str()).collect();
    let none = |list: &[&str]| {
        if list.is_empty() {
            "none".to_string()
        } else {
            list.join(", ")
        }
    };
    format!(
        "- `{kpi}` ({}): {} group_by: {}; filters: {}.",
        spec.unit,
        spec.definition,
        none(&keys),
        none(&filters)
    )
}

/// The operator endpoints, open and outside `/api/v1`.
struct Operator;

impl Modify for Operator {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        // (path, summary, [(status, description)])
        type Endpoint = (
            &'static str,
            &'static str,
            &'static [(&'static str, &'static str)],
        );
        let endpoints: [Endpoint; 3] = [
            ("/healthz", "Alive (open)", &[("200", "alive")]),
            (
                "/readyz",
                "Ready: ClickHouse answers (open)",
                &[("200", "ready"), ("503", "not ready")],
            ),
            (
                "/metrics",
                "Prometheus metrics (open)",
                &[("200", "text exposition format")],
            ),
        ];
        for (path, summary, answers) in endpoints {
            let mut responses = ResponsesBuilder::new();
            for (status, description) in answers {
                responses =
                    responses.response(*status, ResponseBuilder::new().description(*description));
            }
            let operation = OperationBuilder::new()
                .summary(Some(summary))
                .responses(responses.build())
                .build();
            openapi
                .paths
                .paths
                .insert(path.to_string(), PathItem::new(HttpMethod::Get, operation));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use channelshift_kpi::catalogue::{FilterKey, GroupKey};
    use serde_json::Value;

    fn json() -> Value {
        serde_json::to_value(document()).expect("the document serialises")
    }

    #[test]
    fn every_route_is_documented_and_every_documented_path_is_a_route() {
        let document = json();
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
    fn every_kpi_and_what_it_accepts_is_documented() {
        let document = json();
        let kpi = &document["paths"][KPI_ROUTE]["get"];
        let description = kpi["description"].as_str().expect("a description");
        for &kpi in Kpi::ALL {
            let line = description
                .lines()
                .find(|line| line.starts_with(&format!("- `{kpi}`")))
                .unwrap_or_else(|| panic!("{kpi} missing"));
            for key in kpi.spec().group_by {
                assert!(line.contains(key.as_str()), "{kpi}: {key} missing");
            }
        }
        let keys = GroupKey::ALL.iter().map(|key| key.as_str());
        let filters = FilterKey::ALL.iter().map(|key| key.as_str());
        assert!(keys.chain(filters).all(|key| description.contains(key)));
    }

    #[test]
    fn the_query_parameters_are_the_query_structs_fields() {
        let document = json();
        let names = |path: &str| -> Vec<String> {
            document["paths"][path]["get"]["parameters"]
                .as_array()
                .expect("parameters")
                .iter()
                .map(|parameter| parameter["name"].as_str().expect("a name").to_string())
                .collect()
        };
        let mut kpi = vec!["kpi", "council", "from", "to", "period", "group_by"];
        kpi.extend(FilterKey::ALL.iter().map(|key| key.as_str()));
        assert_eq!(names(KPI_ROUTE), kpi);
        assert_eq!(names(SCORECARD_ROUTE), ["council", "period", "date"]);
        assert_eq!(
            names(PACK_ROUTE),
            [
                "council",
                "period",
                "date",
                "format",
                "as_of",
                "previous_as_of"
            ]
        );
        // A closed set's schema lists its members.
        let channel = &document["paths"][KPI_ROUTE]["get"]["parameters"][7];
        assert_eq!(channel["name"], "channel");
        assert!(channel.to_string().contains("face_to_face"), "{channel}");
    }

    #[test]
    fn every_pack_format_has_its_media_type() {
        let document = json();
        let content = &document["paths"][PACK_ROUTE]["get"]["responses"]["200"]["content"];
        for format in Format::ALL {
            let media = format.content_type().split(';').next().unwrap_or_default();
            assert!(content.get(media).is_some(), "{media} missing");
        }
    }
}
