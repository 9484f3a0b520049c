//! The contact event: one finished contact of a customer with the council.

use crate::codes::{CouncilCode, EventId, LsoaCode, ServiceSlug, WardCode};
use crate::rejection::Rejection;
use crate::vocabulary::{Channel, CustomerType, Interaction, Outcome};
use crate::wire;
use crate::{CUSTOMER_REF_MAX_CHARS, JOURNEY_ID_MAX_CHARS, SOURCE_MAX_CHARS};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::borrow::Cow;

/// A valid contact event. `customer_ref` is still the raw reference here:
/// ingest pseudonymises it before anything is stored or logged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactEvent {
    pub event_id: EventId,
    pub council: CouncilCode,
    pub occurred_at: DateTime<Utc>,
    pub channel: Channel,
    pub assisted: bool,
    pub service: ServiceSlug,
    pub interaction: Interaction,
    pub outcome: Outcome,
    pub customer_type: CustomerType,
    pub customer_ref: Option<String>,
    pub journey_id: Option<String>,
    pub avoidable: Option<bool>,
    pub first_contact_resolved: Option<bool>,
    pub ward: Option<WardCode>,
    pub lsoa: Option<LsoaCode>,
    pub wait_seconds: Option<u32>,
    pub handling_seconds: Option<u32>,
    pub source: Option<String>,
}

/// The message as it arrives: every field optional so that absence is our
/// rejection (naming the field), not serde's.
#[derive(Deserialize)]
struct Wire<'a> {
    schema_version: Option<i64>,
    #[serde(borrow)]
    event_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    council: Option<Cow<'a, str>>,
    #[serde(borrow)]
    occurred_at: Option<Cow<'a, str>>,
    channel: Option<Channel>,
    assisted: Option<bool>,
    #[serde(borrow)]
    service: Option<Cow<'a, str>>,
    interaction: Option<Interaction>,
    outcome: Option<Outcome>,
    customer_type: Option<CustomerType>,
    #[serde(borrow)]
    customer_ref: Option<Cow<'a, str>>,
    #[serde(borrow)]
    journey_id: Option<Cow<'a, str>>,
    avoidable: Option<bool>,
    first_contact_resolved: Option<bool>,
    #[serde(borrow)]
    ward: Option<Cow<'a, str>>,
    #[serde(borrow)]
    lsoa: Option<Cow<'a, str>>,
    wait_seconds: Option<u32>,
    handling_seconds: Option<u32>,
    #[serde(borrow)]
    source: Option<Cow<'a, str>>,
}

impl ContactEvent {
    /// Parses one wire message received at `now`.
    pub fn from_json(bytes: &[u8], now: DateTime<Utc>) -> Result<Self, Rejection> {
        let wire: Wire<'_> = wire::decode(bytes)?;
        wire::check_schema_version(wire.schema_version)?;
        Ok(Self {
            event_id: wire::event_id(&wire::required(wire.event_id, "event_id")?, "event_id")?,
            council: wire::council(&wire::required(wire.council, "council")?)?,
            occurred_at: wire::timestamp(
                &wire::required(wire.occurred_at, "occurred_at")?,
                "occurred_at",
                now,
            )?,
            channel: wire::required(wire.channel, "channel")?,
            assisted: wire.assisted.unwrap_or(false),
            service: wire::service(&wire::required(wire.service, "service")?)?,
            interaction: wire.interaction.unwrap_or(Interaction::Transaction),
            outcome: wire::required(wire.outcome, "outcome")?,
            customer_type: wire::required(wire.customer_type, "customer_type")?,
            customer_ref: wire::bounded(
                wire.customer_ref.as_deref(),
                "customer_ref",
                CUSTOMER_REF_MAX_CHARS,
            )?,
            journey_id: wire::bounded(
                wire.journey_id.as_deref(),
                "journey_id",
                JOURNEY_ID_MAX_CHARS,
            )?,
            avoidable: wire.avoidable,
            first_contact_resolved: wire.first_contact_resolved,
            ward: wire::ward(wire.ward.as_deref())?,
            lsoa: wire::lsoa(wire.lsoa.as_deref())?,
            wait_seconds: wire::seconds(wire.wait_seconds, "wait_seconds")?,
            handling_seconds: wire::seconds(wire.handling_seconds, "handling_seconds")?,
            source: wire::bounded(wire.source.as_deref(), "source", SOURCE_MAX_CHARS)?,
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
    use crate::RejectionReason;
    use serde_json::{json, Value};

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2025-11-20T12:00:00Z")
            .expect("valid test clock")
            .with_timezone(&Utc)
    }

    fn valid() -> Value {
        json!({
            "schema_version": 1,
            "event_id": "0b6f3c1e-8a34-4a53-9a55-1f4c1d2a7b10",
            "council": "E07000041",
            "occurred_at": "2025-07-01T23:30:00+00:00",
            "channel": "web",
            "service": "council_tax",
            "outcome": "completed",
            "customer_type": "resident"
        })
    }

    fn parse(value: &Value) -> Result<ContactEvent, Rejection> {
        ContactEvent::from_json(value.to_string().as_bytes(), now())
    }

    fn rejection_of(value: &Value) -> (RejectionReason, Option<String>) {
        let rejection = parse(value).expect_err("message should be rejected");
        (rejection.reason, rejection.field)
    }

    fn with(field: &str, value: Value) -> Value {
        let mut message = valid();
        message[field] = value;
        message
    }

    fn without(field: &str) -> Value {
        let mut message = valid();
        message
            .as_object_mut()
            .expect("test message is an object")
            .remove(field);
        message
    }

    #[test]
    fn minimal_event_takes_documented_defaults() {
        let event = parse(&valid()).expect("valid event");
        assert_eq!(event.interaction, Interaction::Transaction);
        assert!(!event.assisted);
        assert_eq!(event.customer_ref, None);
        assert_eq!(event.occurred_at.to_rfc3339(), "2025-07-01T23:30:00+00:00");
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let event = parse(&with("crm_priority", json!({"nested": [1, 2, 3]})));
        assert!(event.is_ok());
    }

    #[test]
    fn every_required_field_is_named_when_missing() {
        for field in [
            "schema_version",
            "event_id",
            "council",
            "occurred_at",
            "channel",
            "service",
            "outcome",
            "customer_type",
        ] {
            assert_eq!(
                rejection_of(&without(field)),
                (RejectionReason::MissingField, Some(field.to_string())),
                "{field}"
            );
        }
    }

    #[test]
    fn null_required_field_is_missing() {
        assert_eq!(
            rejection_of(&with("channel", Value::Null)),
            (RejectionReason::MissingField, Some("channel".into()))
        );
    }

    #[test]
    fn other_schema_versions_are_rejected() {
        assert_eq!(
            rejection_of(&with("schema_version", json!(2))).0,
            RejectionReason::UnsupportedSchemaVersion
        );
    }

    #[test]
    fn values_outside_their_set_name_the_field() {
        assert_eq!(
            rejection_of(&with("channel", json!("fax"))),
            (RejectionReason::InvalidValue, Some("channel".into()))
        );
        assert_eq!(
            rejection_of(&with("outcome", json!("done"))),
            (RejectionReason::InvalidValue, Some("outcome".into()))
        );
        assert_eq!(
            rejection_of(&with("council", json!("E0700004"))),
            (RejectionReason::InvalidValue, Some("council".into()))
        );
        assert_eq!(
            rejection_of(&with("ward", json!("E01000001"))),
            (RejectionReason::InvalidValue, Some("ward".into()))
        );
    }

    #[test]
    fn wrong_types_name_the_field() {
        assert_eq!(
            rejection_of(&with("assisted", json!("yes"))),
            (RejectionReason::WrongType, Some("assisted".into()))
        );
        assert_eq!(
            rejection_of(&with("event_id", json!(42))),
            (RejectionReason::WrongType, Some("event_id".into()))
        );
        assert_eq!(
            rejection_of(&with("wait_seconds", json!(1.5))),
            (RejectionReason::WrongType, Some("wait_seconds".into()))
        );
    }

    #[test]
    fn a_number_where_a_set_value_belongs_is_a_wrong_type_not_bad_json() {
        for value in [json!(42), json!(true), json!(["web"])] {
            assert_eq!(
                rejection_of(&with("channel", value)),
                (RejectionReason::WrongType, Some("channel".into()))
            );
        }
        let broken = br#"{"schema_version": 1, "channel": ]}"#;
        let rejection = ContactEvent::from_json(broken, now()).expect_err("broken");
        assert_eq!(rejection.reason, RejectionReason::InvalidJson);
    }

    #[test]
    fn durations_are_bounded_to_a_day_and_never_negative() {
        assert_eq!(
            rejection_of(&with("handling_seconds", json!(-5))),
            (RejectionReason::OutOfRange, Some("handling_seconds".into()))
        );
        assert_eq!(
            rejection_of(&with("wait_seconds", json!(86_401))),
            (RejectionReason::OutOfRange, Some("wait_seconds".into()))
        );
        assert!(parse(&with("wait_seconds", json!(86_400))).is_ok());
    }

    #[test]
    fn timestamps_need_an_offset_and_a_plausible_date() {
        assert_eq!(
            rejection_of(&with("occurred_at", json!("2025-07-01T23:30:00"))).0,
            RejectionReason::InvalidValue
        );
        assert_eq!(
            rejection_of(&with("occurred_at", json!("2025-07-01T23:30:00+25:00"))).0,
            RejectionReason::InvalidValue
        );
        assert_eq!(
            rejection_of(&with("occurred_at", json!("9999-12-31T00:00:00Z"))).0,
            RejectionReason::InFuture
        );
        assert_eq!(
            rejection_of(&with("occurred_at", json!("1969-12-31T23:59:59Z"))).0,
            RejectionReason::OutOfRange
        );
    }

    #[test]
    fn five_minutes_of_clock_skew_is_tolerated() {
        assert!(parse(&with("occurred_at", json!("2025-11-20T12:05:00Z"))).is_ok());
        assert_eq!(
            rejection_of(&with("occurred_at", json!("2025-11-20T12:05:01Z"))).0,
            RejectionReason::InFuture
        );
    }

    #[test]
    fn malformed_json_and_non_objects_are_told_apart() {
        let truncated = ContactEvent::from_json(br#"{"schema_version": 1, "event"#, now());
        assert_eq!(
            truncated.expect_err("truncated").reason,
            RejectionReason::InvalidJson
        );
        let array = ContactEvent::from_json(b"[1, 2]", now());
        assert_eq!(
            array.expect_err("array").reason,
            RejectionReason::NotAnObject
        );
        let invalid_utf8 = ContactEvent::from_json(b"{\"source\": \"\xff\xfe\"}", now());
        assert_eq!(
            invalid_utf8.expect_err("bad utf-8").reason,
            RejectionReason::InvalidJson
        );
        let trailing = ContactEvent::from_json(format!("{} x", valid()).as_bytes(), now());
        assert_eq!(
            trailing.expect_err("trailing").reason,
            RejectionReason::InvalidJson
        );
    }

    /// Found by the hostile corpus (`tests/corpus/hostile.json`).
    #[test]
    fn bytes_serde_skips_unchecked_are_still_malformed_json() {
        let mut message = valid().to_string().into_bytes();
        // Invalid UTF-8 inside an unknown field, which serde skips unchecked.
        let at = message.len() - 1;
        message.splice(at..at, b",\"note\":\"caf\xe9\"".iter().copied());
        let rejection = ContactEvent::from_json(&message, now()).expect_err("not UTF-8");
        assert_eq!(rejection.reason, RejectionReason::InvalidJson);
        assert_eq!(rejection.field, None);
        // A lone surrogate escape is bad JSON text, not a value of the wrong type.
        let mut lone = valid();
        lone["source"] = json!("@");
        let lone = lone.to_string().replace("\"@\"", "\"\\ud800\"");
        let rejection = ContactEvent::from_json(lone.as_bytes(), now()).expect_err("surrogate");
        assert_eq!(rejection.reason, RejectionReason::InvalidJson);
        assert_eq!(rejection.field.as_deref(), Some("source"));
        // A message cut short names no field ("?" is serde's unknown path).
        let brace = ContactEvent::from_json(b"{", now()).expect_err("one brace");
        assert_eq!(
            (brace.reason, brace.field),
            (RejectionReason::InvalidJson, None)
        );
    }

    #[test]
    fn duplicated_keys_are_rejected_rather_than_guessed() {
        let text = r#"{"schema_version":1,"event_id":"a","event_id":"b","council":"E07000041","occurred_at":"2025-01-01T00:00:00Z","channel":"web","service":"waste","outcome":"completed","customer_type":"resident"}"#;
        let rejection = ContactEvent::from_json(text.as_bytes(), now()).expect_err("duplicate");
        assert_eq!(rejection.reason, RejectionReason::DuplicateField);
        assert_eq!(rejection.field.as_deref(), Some("event_id"));
    }

    #[test]
    fn deeply_nested_unknown_field_is_skipped_without_overflowing_the_stack() {
        let mut text = valid().to_string();
        text.pop();
        text.push_str(&format!(
            ",\"x\": {}{}}}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        ));
        let event = ContactEvent::from_json(text.as_bytes(), now());
        assert!(event.is_ok(), "{event:?}");
    }

    #[test]
    fn escaped_strings_are_decoded() {
        let event = parse(&with("source", json!("CRM \"main\" \u{e9}"))).expect("valid");
        assert_eq!(event.source.as_deref(), Some("CRM \"main\" \u{e9}"));
    }
}
