//! Holds the published schema to the parser: every rule the schema states,
//! the parser enforces on the same field; every field the parser reads, the
//! schema publishes. Then a corpus of messages judged by both, the schema
//! through an independent validator, must get the same verdicts.

use super::{contact_event_schema, satisfaction_response_schema};
use crate::{
    contact, satisfaction, ContactEvent, Rejection, RejectionReason, SatisfactionResponse,
};
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

/// One message of the contract: its schema, its parser and the fields its
/// wire struct reads.
struct Message {
    name: &'static str,
    schema: Value,
    parse: fn(&[u8], DateTime<Utc>) -> Result<(), Rejection>,
    wire_fields: &'static [&'static str],
}

fn messages() -> [Message; 2] {
    [
        Message {
            name: "contact event",
            schema: contact_event_schema(),
            parse: |bytes, now| ContactEvent::from_json(bytes, now).map(drop),
            wire_fields: contact::wire_fields(),
        },
        Message {
            name: "satisfaction response",
            schema: satisfaction_response_schema(),
            parse: |bytes, now| SatisfactionResponse::from_json(bytes, now).map(drop),
            wire_fields: satisfaction::wire_fields(),
        },
    ]
}

/// The receiver's clock in every test; the schema examples lie before it.
fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-11-20T12:00:00Z")
        .expect("valid test clock")
        .with_timezone(&Utc)
}

impl Message {
    fn properties(&self) -> &Map<String, Value> {
        self.schema["properties"]
            .as_object()
            .expect("a generated schema has properties")
    }

    fn required(&self) -> Vec<&str> {
        self.schema["required"]
            .as_array()
            .expect("a generated schema lists required properties")
            .iter()
            .map(|name| name.as_str().expect("required names are strings"))
            .collect()
    }

    /// The schema's published example: every property set, all valid.
    fn example(&self) -> Map<String, Value> {
        self.schema["examples"][0]
            .as_object()
            .expect("a generated schema has an example object")
            .clone()
    }

    fn with(&self, field: &str, value: Value) -> Value {
        let mut message = self.example();
        message.insert(field.to_string(), value);
        Value::Object(message)
    }

    fn without(&self, field: &str) -> Value {
        let mut message = self.example();
        message.remove(field);
        Value::Object(message)
    }

    fn parse(&self, message: &Value) -> Result<(), Rejection> {
        (self.parse)(message.to_string().as_bytes(), now())
    }

    /// Asserts the parser rejects `message` for `reason`, naming `field`.
    fn assert_rejects(&self, message: &Value, reason: RejectionReason, field: &str) {
        match self.parse(message) {
            Ok(()) => panic!("{}: {field}: accepted {message}", self.name),
            Err(rejection) => assert_eq!(
                (rejection.reason, rejection.field.as_deref()),
                (reason, Some(field)),
                "{}: {field}: {rejection}",
                self.name
            ),
        }
    }

    fn assert_accepts(&self, message: &Value) {
        if let Err(rejection) = self.parse(message) {
            panic!("{}: rejected ({rejection}): {message}", self.name);
        }
    }

    /// The properties whose schema has `keyword`, with its value.
    fn having<'a>(&'a self, keyword: &'a str) -> impl Iterator<Item = (&'a str, &'a Value)> {
        self.properties()
            .iter()
            .filter_map(move |(name, schema)| schema.get(keyword).map(|v| (name.as_str(), v)))
    }

    fn validator(&self) -> jsonschema::Validator {
        jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(&self.schema)
            .expect("the generated schema compiles")
    }
}

/// A property's JSON types, whether written as one name or a list.
fn types(schema: &Value) -> Vec<&str> {
    match &schema["type"] {
        Value::String(kind) => vec![kind.as_str()],
        Value::Array(kinds) => kinds.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

#[test]
fn schema_properties_are_exactly_the_fields_the_parser_reads() {
    for message in messages() {
        let mut published: Vec<&str> = message.properties().keys().map(String::as_str).collect();
        let mut read = message.wire_fields.to_vec();
        published.sort_unstable();
        read.sort_unstable();
        assert!(!read.is_empty(), "{}: no wire fields noted", message.name);
        assert_eq!(published, read, "{}", message.name);
    }
}

#[test]
fn the_published_example_sets_every_property_and_parses() {
    for message in messages() {
        let example = message.example();
        let mut set: Vec<&String> = example.keys().collect();
        let mut published: Vec<&String> = message.properties().keys().collect();
        set.sort_unstable();
        published.sort_unstable();
        assert_eq!(set, published, "{}", message.name);
        message.assert_accepts(&Value::Object(example));
    }
}

#[test]
fn a_message_of_schema_properties_and_an_unknown_field_parses() {
    for message in messages() {
        message.assert_accepts(&message.with("x_crm_priority", json!({"nested": [1, {}]})));
    }
}

#[test]
fn every_required_property_when_missing_is_named() {
    for message in messages() {
        for field in message.required() {
            message.assert_rejects(
                &message.without(field),
                RejectionReason::MissingField,
                field,
            );
            message.assert_rejects(
                &message.with(field, Value::Null),
                RejectionReason::MissingField,
                field,
            );
        }
    }
}

#[test]
fn every_optional_property_may_be_left_out_or_null() {
    for message in messages() {
        let required = message.required();
        for field in message.properties().keys() {
            if required.contains(&field.as_str()) {
                continue;
            }
            message.assert_accepts(&message.without(field));
            message.assert_accepts(&message.with(field, Value::Null));
        }
    }
}

#[test]
fn every_property_of_the_wrong_type_is_rejected_naming_it() {
    for message in messages() {
        for (field, schema) in message.properties() {
            let kinds = types(schema);
            let wrong = if kinds.contains(&"string") {
                json!(42)
            } else if kinds.contains(&"boolean") {
                json!("true")
            } else if kinds.contains(&"integer") {
                json!("1")
            } else {
                panic!("{}: {field} has no type the test knows", message.name)
            };
            message.assert_rejects(
                &message.with(field, wrong),
                RejectionReason::WrongType,
                field,
            );
        }
    }
}

#[test]
fn every_enum_is_the_set_the_parser_accepts() {
    for message in messages() {
        for (field, values) in message.having("enum") {
            let values = values.as_array().expect("enum is an array");
            for value in values.iter().filter(|v| !v.is_null()) {
                let mut instance = message.with(field, value.clone());
                if field == "instrument" {
                    // Another instrument needs a score on its own scale; 1 is on all.
                    instance["score"] = json!(1);
                }
                message.assert_accepts(&instance);
            }
            for outside in ["not_in_the_set", "", "WEB"] {
                assert!(!values.contains(&json!(outside)));
                message.assert_rejects(
                    &message.with(field, json!(outside)),
                    RejectionReason::InvalidValue,
                    field,
                );
            }
        }
    }
}

#[test]
fn every_pattern_is_enforced_by_the_parser() {
    let candidates = ["", "not valid!", "E07000041\n", "e07000041", "E05O12345"];
    for message in messages() {
        for (field, pattern) in message.having("pattern") {
            let pattern = pattern.as_str().expect("pattern is a string");
            let regex = regex::Regex::new(pattern).expect("pattern compiles");
            let example = message.example();
            let valid = example[field].as_str().expect("example codes are strings");
            assert!(regex.is_match(valid), "{field}: example {valid:?}");
            for candidate in candidates.iter().filter(|c| !regex.is_match(c)) {
                message.assert_rejects(
                    &message.with(field, json!(candidate)),
                    RejectionReason::InvalidValue,
                    field,
                );
            }
        }
    }
}

#[test]
fn every_length_limit_is_the_parsers() {
    for message in messages() {
        for (field, max) in message.having("maxLength") {
            let max = usize::try_from(max.as_u64().expect("maxLength is a count"))
                .expect("fits in usize");
            // Characters, not bytes: the schema counts code points, so must the parser.
            message.assert_accepts(&message.with(field, json!("é".repeat(max))));
            message.assert_rejects(
                &message.with(field, json!("a".repeat(max + 1))),
                RejectionReason::OutOfRange,
                field,
            );
        }
    }
}

#[test]
fn every_numeric_range_is_the_parsers() {
    for message in messages() {
        for (field, schema) in message.properties() {
            // The score's own range is the union of the instruments'; its
            // real bounds are the allOf rules, tested below.
            if field == "score" {
                continue;
            }
            if let Some(low) = schema.get("minimum").and_then(Value::as_i64) {
                message.assert_accepts(&message.with(field, json!(low)));
                message.assert_rejects(
                    &message.with(field, json!(low - 1)),
                    RejectionReason::OutOfRange,
                    field,
                );
            }
            if let Some(high) = schema.get("maximum").and_then(Value::as_i64) {
                message.assert_accepts(&message.with(field, json!(high)));
                message.assert_rejects(
                    &message.with(field, json!(high + 1)),
                    RejectionReason::OutOfRange,
                    field,
                );
            }
        }
    }
}

#[test]
fn every_instruments_score_range_is_the_parsers() {
    let message = &messages()[1];
    let rules = message.schema["allOf"]
        .as_array()
        .expect("the response schema has per-instrument rules");
    let instruments = message.properties()["instrument"]["enum"]
        .as_array()
        .expect("instrument is an enum");
    // One rule per instrument, no more, no fewer.
    assert_eq!(rules.len(), instruments.len());
    for rule in rules {
        let instrument = &rule["if"]["properties"]["instrument"]["const"];
        assert!(instruments.contains(instrument), "{instrument}");
        let range = &rule["then"]["properties"]["score"];
        let low = range["minimum"].as_i64().expect("minimum");
        let high = range["maximum"].as_i64().expect("maximum");
        let score = |value: i64| {
            let mut response = message.with("instrument", instrument.clone());
            response["score"] = json!(value);
            response
        };
        message.assert_accepts(&score(low));
        message.assert_accepts(&score(high));
        for outside in [low - 1, high + 1] {
            message.assert_rejects(&score(outside), RejectionReason::OutOfRange, "score");
        }
    }
}

#[test]
fn schema_version_const_is_the_version_the_parser_reads() {
    for message in messages() {
        let version = message.properties()["schema_version"]["const"]
            .as_i64()
            .expect("schema_version is a const integer");
        message.assert_accepts(&message.with("schema_version", json!(version)));
        message.assert_rejects(
            &message.with("schema_version", json!(version + 1)),
            RejectionReason::UnsupportedSchemaVersion,
            "schema_version",
        );
    }
}

#[test]
fn every_date_time_is_checked_by_the_parser() {
    for message in messages() {
        for (field, format) in message.having("format") {
            assert_eq!(format, "date-time", "{field}");
            for invalid in ["yesterday", "2025-07-01T23:30:00", "2025-02-30T10:00:00Z"] {
                message.assert_rejects(
                    &message.with(field, json!(invalid)),
                    RejectionReason::InvalidValue,
                    field,
                );
            }
        }
    }
}

/// Single-field changes to a message's example, valid and invalid, for the corpus.
fn corpus(message: &Message) -> Vec<Value> {
    let mut corpus = vec![
        Value::Object(message.example()),
        json!([message.example()]),
        json!("a string"),
        json!(null),
        json!({}),
    ];
    let minimal: Map<String, Value> = message
        .example()
        .into_iter()
        .filter(|(field, _)| message.required().contains(&field.as_str()))
        .collect();
    corpus.push(Value::Object(minimal));
    for field in message.properties().keys() {
        corpus.push(message.without(field));
        corpus.push(message.with(field, Value::Null));
        corpus.push(message.with(field, json!(7)));
        corpus.push(message.with(field, json!("")));
        corpus.push(message.with(field, json!(true)));
        corpus.push(message.with(field, json!(["web"])));
    }
    // Values at and past the edges, and strings the parser reads with care.
    let edges = [
        ("schema_version", json!(0)),
        ("schema_version", json!(2)),
        ("council", json!("W06000015")),
        ("council", json!("E070000411")),
        ("council", json!(" E07000041")),
        ("ward", json!("E01012345")),
        ("lsoa", json!("S01012345")),
        ("service", json!("waste-collection")),
        ("service", json!("a".repeat(48))),
        ("service", json!("a".repeat(49))),
        ("event_id", json!("crm:2025.11_7")),
        ("event_id", json!("x".repeat(65))),
        ("response_id", json!("r/1")),
        ("contact_event_id", json!("a b")),
        ("occurred_at", json!("2025-07-01T23:30:00.123456789+05:30")),
        ("occurred_at", json!("2025-07-01T23:30:00-00:00")),
        ("occurred_at", json!("2025-07-01t23:30:00z")),
        ("occurred_at", json!("2025-07-01T23:30:00+24:00")),
        ("occurred_at", json!("2025-13-01T23:30:00Z")),
        ("responded_at", json!("2025-11-20T12:04:59Z")),
        ("responded_at", json!("2024-02-29T00:00:00Z")),
        ("responded_at", json!("2025-02-29T00:00:00Z")),
        ("wait_seconds", json!(-1)),
        ("wait_seconds", json!(4_294_967_296_u64)),
        ("handling_seconds", json!(1.5)),
        ("customer_ref", json!("😀".repeat(128))),
        ("customer_ref", json!("😀".repeat(129))),
        ("comment", json!("é\n\"quoted\"".repeat(200))),
        ("source", json!({"system": "crm"})),
        ("score", json!(0)),
        ("score", json!(5)),
        ("score", json!(6)),
        ("score", json!(300)),
        ("score", json!(-1)),
        ("instrument", json!("nps11")),
        ("survey_mode", json!("carrier_pigeon")),
    ];
    for (field, value) in edges {
        if message.properties().contains_key(field) {
            corpus.push(message.with(field, value));
        }
    }
    corpus
}

#[test]
fn schema_and_parser_agree_on_a_corpus() {
    for message in messages() {
        let validator = message.validator();
        let corpus = corpus(&message);
        assert!(corpus.len() >= 30, "{}: corpus too small", message.name);
        let (mut valid, mut invalid) = (0, 0);
        for instance in &corpus {
            let schema_says = validator.is_valid(instance);
            let parser_says = message.parse(instance);
            assert_eq!(
                schema_says,
                parser_says.is_ok(),
                "{}: schema {} but parser {parser_says:?}: {instance}",
                message.name,
                if schema_says { "accepts" } else { "rejects" },
            );
            if schema_says {
                valid += 1;
            } else {
                invalid += 1;
            }
        }
        assert!(
            valid >= 10 && invalid >= 10,
            "{valid} valid, {invalid} invalid"
        );
    }
}

/// The rules the schema cannot state (its description lists them), and the
/// parser's one leniency: chrono reads a space in place of RFC 3339's `T`. If a
/// case ever agrees, the schema has learnt it and the description should say less.
#[test]
fn the_known_disagreements_are_still_the_only_ones() {
    let message = &messages()[0];
    let validator = message.validator();
    let cases = [
        (
            "occurred_at",
            json!("2025-11-20T13:00:00Z"),
            "in the future",
        ),
        ("occurred_at", json!("1969-12-31T23:59:59Z"), "before 1970"),
        ("schema_version", json!(1.0), "an integer written 1.0"),
        ("wait_seconds", json!(6e1), "an integer written 6e1"),
        (
            "occurred_at",
            json!("2025-07-01 23:30:00Z"),
            "a space for the T",
        ),
    ];
    for (field, value, what) in cases {
        let instance = message.with(field, value);
        assert_ne!(
            validator.is_valid(&instance),
            message.parse(&instance).is_ok(),
            "{what}: schema and parser now agree"
        );
    }
}
