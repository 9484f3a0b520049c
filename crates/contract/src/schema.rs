//! The wire contract published as JSON Schema (draft 2020-12), built from the
//! constants the parser checks, so the two cannot say different things.
//! The documents are committed under `crates/contract/schema/`; a test fails
//! when they fall behind this code.
//!
//! The schema is hand-built rather than derived (e.g. with `schemars`): the
//! Rust types are loose on purpose (every wire field is optional, codes are
//! plain strings) and carry none of the contract's constraints, so a derived
//! schema would have to be annotated with every pattern and limit again.

use crate::codes::{CouncilCode, EventId, LsoaCode, ServiceSlug, WardCode};
use crate::vocabulary::{Channel, CustomerType, Instrument, Interaction, Outcome, SurveyMode};
use crate::{
    COMMENT_MAX_CHARS, CUSTOMER_REF_MAX_CHARS, DEFAULT_MAX_MESSAGE_BYTES, JOURNEY_ID_MAX_CHARS,
    MAX_DURATION_SECONDS, MAX_FUTURE_SKEW, SCHEMA_VERSION, SOURCE_MAX_CHARS,
};
use serde_json::{json, Map, Value};

/// Where the documents are published; each `$id` is this plus the file name.
const BASE_URI: &str = "https://channelshift.example/schema/";

const DRAFT: &str = "https://json-schema.org/draft/2020-12/schema";

/// The published documents, each with the file name it is committed under in
/// `crates/contract/schema/`.
pub fn documents() -> Vec<(String, Value)> {
    vec![
        (file_name(CONTACT_EVENT), contact_event_schema()),
        (
            file_name(SATISFACTION_RESPONSE),
            satisfaction_response_schema(),
        ),
    ]
}

const CONTACT_EVENT: &str = "contact-event";
const SATISFACTION_RESPONSE: &str = "satisfaction-response";

/// A new `schema_version` gets new files; the old ones stay for producers still on it.
fn file_name(stem: &str) -> String {
    format!("{stem}.v{SCHEMA_VERSION}.json")
}

/// The contact event: one finished contact of a customer with the council.
pub fn contact_event_schema() -> Value {
    let fields = vec![
        schema_version(),
        required(
            "event_id",
            code(
                EventId::PATTERN,
                "The idempotency key: a message seen twice is counted once. UUID recommended.",
            ),
        ),
        required("council", council()),
        required("occurred_at", timestamp("When the contact finished.")),
        required(
            "channel",
            one_of(
                Channel::ALL.iter().map(|c| c.as_str()),
                "How the customer reached the council.",
            ),
        ),
        optional(
            "assisted",
            json!({
                "type": "boolean",
                "default": false,
                "description": "Meaningful on digital self-service channels: the transaction \
                    went through the digital service with help from staff or a volunteer \
                    (assisted digital).",
            }),
        ),
        required(
            "service",
            code(
                ServiceSlug::PATTERN,
                "The council service, as a slug. Recommended: council_tax, benefits, waste, \
                 housing, planning, registrars, parking, highways, libraries, licensing, \
                 social_care, environmental_health, other.",
            ),
        ),
        optional("interaction", {
            let mut schema = one_of(
                Interaction::ALL.iter().map(|i| i.as_str()),
                "What kind of contact it was: transaction (a change of records, a payment, a \
                 booking, an application, a report), information, chase (progress chasing) or \
                 complaint. Only transactions count toward digital take-up.",
            );
            schema["default"] = json!(Interaction::Transaction.as_str());
            schema
        }),
        required(
            "outcome",
            one_of(
                Outcome::ALL.iter().map(|o| o.as_str()),
                "How the contact ended: completed; ineligible (the service did its job, the \
                 customer was not eligible); abandoned; failed (an error); transferred (sent \
                 to another channel).",
            ),
        ),
        required("customer_type", customer_type("Who the customer was.")),
        optional(
            "customer_ref",
            text(
                CUSTOMER_REF_MAX_CHARS,
                "The customer's reference in the sending system. Pseudonymised with a keyed \
                 hash at ingest, never stored raw. Empty counts as absent.",
            ),
        ),
        optional(
            "journey_id",
            text(
                JOURNEY_ID_MAX_CHARS,
                "Links the contacts of one request (repeat contact, first-contact \
                 resolution). Empty counts as absent.",
            ),
        ),
        optional(
            "avoidable",
            json!({
                "type": "boolean",
                "description": "Failure demand: the contact should not have been needed.",
            }),
        ),
        optional(
            "first_contact_resolved",
            json!({
                "type": "boolean",
                "description": "The request was resolved by this first contact.",
            }),
        ),
        optional("ward", ward()),
        optional("lsoa", lsoa()),
        optional(
            "wait_seconds",
            seconds("How long the customer waited to be served."),
        ),
        optional(
            "handling_seconds",
            seconds("How long the contact took to handle."),
        ),
        optional(
            "source",
            text(
                SOURCE_MAX_CHARS,
                "The system that emitted the event (CRM, telephony, forms). Empty counts as \
                 absent.",
            ),
        ),
    ];
    document(
        CONTACT_EVENT,
        "Contact event",
        "One finished contact of a customer with the council.",
        "contact-events",
        fields,
        Vec::new(),
        json!({
            "schema_version": SCHEMA_VERSION,
            "event_id": "0b6f3c1e-8a34-4a53-9a55-1f4c1d2a7b10",
            "council": "E07000041",
            "occurred_at": "2025-07-01T23:30:00+01:00",
            "channel": "web",
            "assisted": false,
            "service": "council_tax",
            "interaction": "transaction",
            "outcome": "completed",
            "customer_type": "resident",
            "customer_ref": "CRM-0042-7731",
            "journey_id": "j-2025-07-01-0193",
            "avoidable": false,
            "first_contact_resolved": true,
            "ward": "E05012345",
            "lsoa": "E01012345",
            "wait_seconds": 0,
            "handling_seconds": 312,
            "source": "forms",
        }),
    )
}

/// The satisfaction response: one answer to a survey about a contact.
pub fn satisfaction_response_schema() -> Value {
    let fields = vec![
        schema_version(),
        required(
            "response_id",
            code(
                EventId::PATTERN,
                "The idempotency key: a response seen twice is counted once. UUID recommended.",
            ),
        ),
        required("council", council()),
        required("responded_at", timestamp("When the customer answered.")),
        optional(
            "contact_event_id",
            code(
                EventId::PATTERN,
                "The event_id of the contact rated, when known.",
            ),
        ),
        required(
            "channel",
            one_of(
                Channel::ALL.iter().map(|c| c.as_str()),
                "The channel rated.",
            ),
        ),
        required(
            "service",
            code(ServiceSlug::PATTERN, "The service rated, as a slug."),
        ),
        optional("customer_type", {
            let mut schema = customer_type("Who answered.");
            schema["default"] = json!(CustomerType::Unknown.as_str());
            schema
        }),
        required("instrument", instrument()),
        required("score", score()),
        optional(
            "survey_mode",
            one_of(
                SurveyMode::ALL.iter().map(|m| m.as_str()),
                "How the survey was answered.",
            ),
        ),
        optional(
            "comment",
            text(
                COMMENT_MAX_CHARS,
                "Free text. Emails, phone numbers and postcodes are removed before storage. \
                 Empty counts as absent.",
            ),
        ),
        optional("ward", ward()),
        optional("lsoa", lsoa()),
    ];
    document(
        SATISFACTION_RESPONSE,
        "Satisfaction response",
        "One answer to a survey about a contact.",
        "satisfaction-responses",
        fields,
        score_ranges(),
        json!({
            "schema_version": SCHEMA_VERSION,
            "response_id": "5d0c2b7e-3f1a-4c8e-9b2d-7a6e1f0c9d34",
            "council": "E07000041",
            "responded_at": "2025-07-02T09:15:00Z",
            "contact_event_id": "0b6f3c1e-8a34-4a53-9a55-1f4c1d2a7b10",
            "channel": "web",
            "service": "council_tax",
            "customer_type": "resident",
            "instrument": "csat5",
            "score": 4,
            "survey_mode": "email",
            "comment": "Quick and clear.",
            "ward": "E05012345",
            "lsoa": "E01012345",
        }),
    )
}

/// One property of a message, and whether the parser demands it.
struct Field {
    name: &'static str,
    required: bool,
    schema: Value,
}

fn required(name: &'static str, schema: Value) -> Field {
    Field {
        name,
        required: true,
        schema,
    }
}

/// The parser reads `null` in an optional field as absent, so the schema admits it.
fn optional(name: &'static str, mut schema: Value) -> Field {
    if let Some(kind) = schema.get("type").cloned() {
        schema["type"] = json!([kind, "null"]);
    }
    if let Some(Value::Array(values)) = schema.get_mut("enum") {
        values.push(Value::Null);
    }
    Field {
        name,
        required: false,
        schema,
    }
}

fn document(
    stem: &str,
    title: &str,
    summary: &str,
    topic: &str,
    fields: Vec<Field>,
    all_of: Vec<Value>,
    example: Value,
) -> Value {
    let required: Vec<&str> = fields
        .iter()
        .filter(|f| f.required)
        .map(|f| f.name)
        .collect();
    let properties: Map<String, Value> = fields
        .into_iter()
        .map(|f| (f.name.to_string(), f.schema))
        .collect();
    let mut schema = json!({
        "$schema": DRAFT,
        "$id": format!("{BASE_URI}{}", file_name(stem)),
        "title": title,
        "description": description(summary, topic),
        "type": "object",
        "required": required,
        "properties": properties,
        // Unknown fields are ignored, so producers may add fields ahead of consumers.
        "additionalProperties": true,
        "examples": [example],
    });
    if !all_of.is_empty() {
        schema["allOf"] = Value::Array(all_of);
    }
    schema
}

/// The message's summary, how it travels, and the rules a JSON Schema
/// validator cannot check, so that nobody takes "valid" for "accepted".
fn description(summary: &str, topic: &str) -> String {
    format!(
        "{summary} Sent as one UTF-8 JSON object per Kafka message on the topic `{topic}` \
         (default name); a rejected message goes to `{topic}.dlq` with the original bytes \
         and a reason that names the field. Unknown fields are ignored; `null` in an \
         optional field counts as absent. Rules this schema cannot express, which ingest \
         still enforces: a timestamp more than {skew} minutes ahead of the receiver's clock, \
         or before 1970-01-01T00:00:00Z, is rejected; a message larger than ingest's limit \
         ({kib} KiB by default, configurable) is rejected; a key given twice in one object \
         is rejected; integers must be written as JSON integers (4, not 4.0 or 4e0). Ingest always \
         checks `format: date-time`; most validators check `format` only when told to.",
        skew = MAX_FUTURE_SKEW.num_minutes(),
        kib = DEFAULT_MAX_MESSAGE_BYTES / 1024,
    )
}

fn schema_version() -> Field {
    required(
        "schema_version",
        json!({
            "type": "integer",
            "const": SCHEMA_VERSION,
            "description": "The version of this contract; other versions are rejected.",
        }),
    )
}

fn code(pattern: &str, description: &str) -> Value {
    json!({ "type": "string", "pattern": pattern, "description": description })
}

fn council() -> Value {
    code(
        CouncilCode::PATTERN,
        "GSS code of the local authority (e.g. E07000041).",
    )
}

fn ward() -> Value {
    code(
        WardCode::PATTERN,
        "GSS code of the customer's electoral ward: the geography of hot spots.",
    )
}

fn lsoa() -> Value {
    code(
        LsoaCode::PATTERN,
        "GSS code of the customer's lower layer super output area (LSOA): the geography \
         of hot spots.",
    )
}

fn text(max_chars: usize, description: &str) -> Value {
    json!({ "type": "string", "maxLength": max_chars, "description": description })
}

fn timestamp(description: &str) -> Value {
    json!({
        "type": "string",
        "format": "date-time",
        "description": format!(
            "{description} RFC 3339 with an offset (Z or ±hh:mm). Rejected if more than {} \
             minutes ahead of the receiver's clock or before 1970.",
            MAX_FUTURE_SKEW.num_minutes()
        ),
    })
}

fn seconds(description: &str) -> Value {
    json!({
        "type": "integer",
        "minimum": 0,
        "maximum": MAX_DURATION_SECONDS,
        "description": format!("{description} Whole seconds, at most one day."),
    })
}

fn one_of<'a>(values: impl Iterator<Item = &'a str>, description: &str) -> Value {
    json!({
        "type": "string",
        "enum": values.collect::<Vec<_>>(),
        "description": description,
    })
}

fn customer_type(description: &str) -> Value {
    one_of(CustomerType::ALL.iter().map(|c| c.as_str()), description)
}

fn instrument() -> Value {
    let scales: Vec<String> = Instrument::ALL
        .iter()
        .map(|&instrument| {
            let (low, high) = instrument.scale();
            format!("{instrument} ({low}-{high}: {})", meaning(instrument))
        })
        .collect();
    one_of(
        Instrument::ALL.iter().map(|i| i.as_str()),
        &format!(
            "The survey question the score answers; scores are never mixed across \
             instruments. {}.",
            scales.join("; ")
        ),
    )
}

/// What an instrument's scale means, for people reading the schema.
fn meaning(instrument: Instrument) -> &'static str {
    match instrument {
        Instrument::Csat5 => "the GDS question \"Overall, how satisfied…\"",
        Instrument::Govmetric3 => "1 poor, 2 average, 3 good",
        Instrument::Nps11 => "net promoter, likelihood to recommend",
        Instrument::Ces7 => "customer effort, agreement",
    }
}

/// The widest range any instrument allows; [`score_ranges`] narrows it per instrument.
fn score() -> Value {
    let low = Instrument::ALL.iter().map(|i| i.scale().0).min();
    let high = Instrument::ALL.iter().map(|i| i.scale().1).max();
    json!({
        "type": "integer",
        "minimum": low,
        "maximum": high,
        "description": "The answer, an integer inside the instrument's scale.",
    })
}

/// One `if instrument is X then score lies in X's scale` per instrument.
fn score_ranges() -> Vec<Value> {
    Instrument::ALL
        .iter()
        .map(|&instrument| {
            let (low, high) = instrument.scale();
            json!({
                "if": {
                    "properties": { "instrument": { "const": instrument.as_str() } },
                    "required": ["instrument"],
                },
                "then": {
                    "properties": { "score": { "minimum": low, "maximum": high } },
                },
            })
        })
        .collect()
}

#[cfg(test)]
mod consistency;
#[cfg(test)]
mod tests;
