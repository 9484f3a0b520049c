//! The query parameters of each endpoint, as typed structs. Deserialising
//! one refuses a parameter the endpoint does not take (naming it); the values
//! stay as given, for `request` to check with messages of its own. The same
//! structs describe the parameters in the OpenAPI document.
//!
//! A parameter given twice takes its last value.

use crate::error::ApiError;
use channelshift_contract::{Channel, CouncilCode, CustomerType, Instrument, ServiceSlug};
use channelshift_kpi::catalogue::FilterKey;
use channelshift_reports::pack::Format;
use channelshift_reports::scorecard::ReportPeriod;
use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde::Deserialize;
use std::fmt;
use utoipa::IntoParams;

/// `GET /api/v1/kpi/{kpi}`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct KpiQuery {
    /// GSS code of the authority.
    #[param(required = true, value_type = CouncilCode, inline)]
    pub council: Option<String>,
    /// First local (Europe/London) date, inclusive.
    #[param(required = true, value_type = NaiveDate)]
    pub from: Option<String>,
    /// Last local date, inclusive; not before `from`.
    #[param(required = true, value_type = NaiveDate)]
    pub to: Option<String>,
    /// Rows per period, or `total` (the default) for one row per group; quarters and years are financial (April).
    #[param(value_type = Option<Granularity>, inline)]
    pub period: Option<String>,
    /// Comma list of keys to break the rows down by; the keys each KPI accepts are listed above.
    #[param(value_type = Option<String>, example = "service,customer_type")]
    pub group_by: Option<String>,
    /// Filter: one service. Which KPIs accept each filter is listed above.
    #[param(value_type = Option<ServiceSlug>, inline)]
    pub service: Option<String>,
    /// Filter: one channel.
    #[param(value_type = Option<Channel>, inline)]
    pub channel: Option<String>,
    /// Filter: one customer type.
    #[param(value_type = Option<CustomerType>, inline)]
    pub customer_type: Option<String>,
    /// Filter: one survey instrument.
    #[param(value_type = Option<Instrument>, inline)]
    pub instrument: Option<String>,
}

impl KpiQuery {
    /// The value given for a filter.
    pub fn filter(&self, key: FilterKey) -> Option<&String> {
        match key {
            FilterKey::Service => self.service.as_ref(),
            FilterKey::Channel => self.channel.as_ref(),
            FilterKey::CustomerType => self.customer_type.as_ref(),
            FilterKey::Instrument => self.instrument.as_ref(),
        }
    }
}

channelshift_contract::vocabulary! {
    /// The `period` of a KPI request: rows per period, or one row for the whole range.
    Granularity, "period" {
        Day = "day",
        Week = "week",
        Month = "month",
        Quarter = "quarter",
        FinancialYear = "financial_year",
        Total = "total",
    }
}

/// `GET /api/v1/scorecard`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ScorecardQuery {
    /// GSS code of the authority.
    #[param(required = true, value_type = CouncilCode, inline)]
    pub council: Option<String>,
    /// The period kind; default `quarter`.
    #[param(value_type = Option<ReportPeriod>, inline)]
    pub period: Option<String>,
    /// A local date inside the period; default today.
    #[param(value_type = Option<NaiveDate>)]
    pub date: Option<String>,
}

/// `GET /api/v1/opportunities`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OpportunityQuery {
    /// GSS code of the authority.
    #[param(required = true, value_type = CouncilCode, inline)]
    pub council: Option<String>,
    /// The last local date of the year the volumes are taken over; default today.
    #[param(value_type = Option<NaiveDate>)]
    pub date: Option<String>,
}

/// `GET /api/v1/exports/pack`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PackQuery {
    /// GSS code of the authority.
    #[param(required = true, value_type = CouncilCode, inline)]
    pub council: Option<String>,
    /// The period kind; default `quarter`.
    #[param(value_type = Option<ReportPeriod>, inline)]
    pub period: Option<String>,
    /// A local date inside the period; default today.
    #[param(value_type = Option<NaiveDate>)]
    pub date: Option<String>,
    /// The pack's format (csvw: the CSV's metadata); default `csv`.
    #[param(value_type = Option<Format>, inline)]
    pub format: Option<String>,
    /// Include only data ingested up to this instant; default and latest: `kpi.pack_settle_seconds` before now.
    #[param(value_type = Option<DateTime<Utc>>)]
    pub as_of: Option<String>,
    /// The previous pack's `as_of`, to flag restatements against; default: the reporting calendar's latest cut-off before `as_of` for the council.
    #[param(value_type = Option<DateTime<Utc>>)]
    pub previous_as_of: Option<String>,
}

/// The parameters of `query` (the URI's query string, if any) as `T`.
pub fn parse<T: DeserializeOwned>(query: Option<&str>) -> Result<T, ApiError> {
    let mut pairs: Vec<(String, Text)> = Vec::new();
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let value = Text(value.into_owned());
        match pairs.iter_mut().find(|(given, _)| *given == name) {
            Some(pair) => pair.1 = value,
            None => pairs.push((name.into_owned(), value)),
        }
    }
    T::deserialize(de::value::MapDeserializer::new(pairs.into_iter())).map_err(
        |error| match error {
            QueryError::Unknown(name) => ApiError::bad(&name, "unknown parameter"),
            QueryError::Other(message) => ApiError::bad("query", message),
        },
    )
}

/// Why a query string did not fit its struct.
#[derive(Debug)]
enum QueryError {
    Unknown(String),
    Other(String),
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryError::Unknown(name) => write!(f, "unknown parameter {name:?}"),
            QueryError::Other(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for QueryError {}

impl de::Error for QueryError {
    fn custom<T: fmt::Display>(message: T) -> Self {
        QueryError::Other(message.to_string())
    }

    fn unknown_field(field: &str, _expected: &'static [&'static str]) -> Self {
        QueryError::Unknown(field.to_string())
    }
}

/// One parameter's value: a string, present.
struct Text(String);

impl<'de> IntoDeserializer<'de, QueryError> for Text {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

impl<'de> de::Deserializer<'de> for Text {
    type Error = QueryError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, QueryError> {
        visitor.visit_string(self.0)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, QueryError> {
        visitor.visit_some(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
        byte_buf unit unit_struct newtype_struct seq tuple tuple_struct map struct
        enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(error: ApiError) -> (String, String) {
        match error {
            ApiError::BadRequest { parameter, message } => (parameter, message),
            other => panic!("expected a bad request, got {other:?}"),
        }
    }

    #[test]
    fn parameters_are_read_as_given_and_the_last_of_a_repeat_wins() {
        let query: KpiQuery = parse(Some(
            "council=E07000041&from=2026-04-01&channel=web&channel=phone&to=",
        ))
        .expect("known parameters");
        assert_eq!(query.council.as_deref(), Some("E07000041"));
        assert_eq!(query.channel.as_deref(), Some("phone"));
        assert_eq!(query.to.as_deref(), Some(""), "present but empty");
        assert_eq!(query.period, None);
        assert_eq!(query.filter(FilterKey::Channel), Some(&"phone".to_string()));
    }

    #[test]
    fn no_query_string_is_no_parameters() {
        let query: ScorecardQuery = parse(None).expect("empty");
        assert!(query.council.is_none() && query.period.is_none() && query.date.is_none());
    }

    #[test]
    fn an_unknown_parameter_is_named() {
        let error =
            parse::<ScorecardQuery>(Some("council=E07000041&colour=red")).expect_err("refused");
        assert_eq!(bad(error), ("colour".into(), "unknown parameter".into()));
        // A parameter of another endpoint is unknown here too.
        let error = parse::<ScorecardQuery>(Some("format=csv")).expect_err("refused");
        assert_eq!(bad(error).0, "format");
    }

    #[test]
    fn percent_encoding_is_decoded() {
        let query: PackQuery =
            parse(Some("council=E07000041&as_of=2026-10-05T09%3A00%3A00Z")).expect("known");
        assert_eq!(query.as_of.as_deref(), Some("2026-10-05T09:00:00Z"));
    }
}
