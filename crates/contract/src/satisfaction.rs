//! The satisfaction response: one answer to a survey about a contact.

use crate::codes::{CouncilCode, EventId, LsoaCode, ServiceSlug, WardCode};
use crate::rejection::{Rejection, RejectionReason};
use crate::vocabulary::{Channel, CustomerType, Instrument, SurveyMode};
use crate::wire;
use crate::COMMENT_MAX_CHARS;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::borrow::Cow;

/// A score that lies inside its instrument's scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Score {
    instrument: Instrument,
    value: u8,
}

impl Score {
    pub fn new(instrument: Instrument, value: i64) -> Option<Self> {
        let (low, high) = instrument.scale();
        let value = u8::try_from(value).ok()?;
        (low..=high)
            .contains(&value)
            .then_some(Self { instrument, value })
    }

    pub fn instrument(self) -> Instrument {
        self.instrument
    }

    pub fn value(self) -> u8 {
        self.value
    }
}

/// A valid satisfaction response. `comment` is still raw here: ingest scrubs
/// it of personal data before storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SatisfactionResponse {
    pub response_id: EventId,
    pub council: CouncilCode,
    pub responded_at: DateTime<Utc>,
    pub contact_event_id: Option<EventId>,
    pub channel: Channel,
    pub service: ServiceSlug,
    pub customer_type: CustomerType,
    pub score: Score,
    pub survey_mode: Option<SurveyMode>,
    pub comment: Option<String>,
    pub ward: Option<WardCode>,
    pub lsoa: Option<LsoaCode>,
}

#[derive(Deserialize)]
struct Wire<'a> {
    schema_version: Option<i64>,
    #[serde(borrow)]
    response_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    council: Option<Cow<'a, str>>,
    #[serde(borrow)]
    responded_at: Option<Cow<'a, str>>,
    #[serde(borrow)]
    contact_event_id: Option<Cow<'a, str>>,
    channel: Option<Channel>,
    #[serde(borrow)]
    service: Option<Cow<'a, str>>,
    customer_type: Option<CustomerType>,
    instrument: Option<Instrument>,
    score: Option<i64>,
    survey_mode: Option<SurveyMode>,
    #[serde(borrow)]
    comment: Option<Cow<'a, str>>,
    #[serde(borrow)]
    ward: Option<Cow<'a, str>>,
    #[serde(borrow)]
    lsoa: Option<Cow<'a, str>>,
}

impl SatisfactionResponse {
    /// Parses one wire message received at `now`.
    pub fn from_json(bytes: &[u8], now: DateTime<Utc>) -> Result<Self, Rejection> {
        let wire: Wire<'_> = wire::decode(bytes)?;
        wire::check_schema_version(wire.schema_version)?;
        let response_id = wire::event_id(
            &wire::required(wire.response_id, "response_id")?,
            "response_id",
        )?;
        let council = wire::council(&wire::required(wire.council, "council")?)?;
        let responded_at = wire::timestamp(
            &wire::required(wire.responded_at, "responded_at")?,
            "responded_at",
            now,
        )?;
        let contact_event_id = wire
            .contact_event_id
            .as_deref()
            .map(|id| wire::event_id(id, "contact_event_id"))
            .transpose()?;
        let channel = wire::required(wire.channel, "channel")?;
        let service = wire::service(&wire::required(wire.service, "service")?)?;
        let instrument = wire::required(wire.instrument, "instrument")?;
        let raw_score = wire::required(wire.score, "score")?;
        let score = Score::new(instrument, raw_score).ok_or_else(|| {
            let (low, high) = instrument.scale();
            Rejection::field(
                RejectionReason::OutOfRange,
                "score",
                format!("{raw_score} is outside {instrument}'s scale {low}-{high}"),
            )
        })?;
        Ok(Self {
            response_id,
            council,
            responded_at,
            contact_event_id,
            channel,
            service,
            customer_type: wire.customer_type.unwrap_or(CustomerType::Unknown),
            score,
            survey_mode: wire.survey_mode,
            comment: wire::bounded(wire.comment.as_deref(), "comment", COMMENT_MAX_CHARS)?,
            ward: wire::ward(wire.ward.as_deref())?,
            lsoa: wire::lsoa(wire.lsoa.as_deref())?,
        })
    }
}

/// Every field the parser reads, for the schema's consistency test.
#[cfg(test)]
pub(crate) fn wire_fields() -> &'static [&'static str] {
    wire::fields_read_by::<Wire<'static>>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2025-11-20T12:00:00Z")
            .expect("valid test clock")
            .with_timezone(&Utc)
    }

    fn valid() -> Value {
        json!({
            "schema_version": 1,
            "response_id": "r-1",
            "council": "E07000041",
            "responded_at": "2025-11-20T09:00:00Z",
            "channel": "phone",
            "service": "waste",
            "instrument": "csat5",
            "score": 4
        })
    }

    fn parse(value: &Value) -> Result<SatisfactionResponse, Rejection> {
        SatisfactionResponse::from_json(value.to_string().as_bytes(), now())
    }

    fn with(field: &str, value: Value) -> Value {
        let mut message = valid();
        message[field] = value;
        message
    }

    #[test]
    fn customer_type_defaults_to_unknown() {
        let response = parse(&valid()).expect("valid response");
        assert_eq!(response.customer_type, CustomerType::Unknown);
        assert_eq!(response.score.value(), 4);
    }

    #[test]
    fn scores_must_lie_inside_their_instruments_scale() {
        let cases = [
            ("csat5", 0, false),
            ("csat5", 5, true),
            ("csat5", 6, false),
            ("govmetric3", 3, true),
            ("govmetric3", 4, false),
            ("nps11", 0, true),
            ("nps11", 10, true),
            ("nps11", 11, false),
            ("ces7", 7, true),
            ("ces7", -1, false),
        ];
        for (instrument, score, ok) in cases {
            let mut message = with("instrument", json!(instrument));
            message["score"] = json!(score);
            let result = parse(&message);
            assert_eq!(result.is_ok(), ok, "{instrument} {score}");
            if let Err(rejection) = result {
                assert_eq!(rejection.reason, RejectionReason::OutOfRange);
                assert_eq!(rejection.field.as_deref(), Some("score"));
            }
        }
    }

    #[test]
    fn comments_longer_than_2000_characters_are_rejected() {
        assert!(parse(&with("comment", json!("é".repeat(2_000)))).is_ok());
        let rejection = parse(&with("comment", json!("a".repeat(2_001)))).expect_err("long");
        assert_eq!(rejection.reason, RejectionReason::OutOfRange);
    }

    #[test]
    fn unknown_instrument_is_an_invalid_value() {
        let rejection = parse(&with("instrument", json!("stars"))).expect_err("unknown");
        assert_eq!(rejection.reason, RejectionReason::InvalidValue);
        assert_eq!(rejection.field.as_deref(), Some("instrument"));
    }
}
