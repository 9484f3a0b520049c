//! Decoding of wire bytes into the loosely-typed wire structs, and the checks
//! shared by both messages. Every serde error becomes a [`Rejection`] naming
//! the field, via `serde_path_to_error`.

use crate::codes::{CouncilCode, EventId, LsoaCode, ServiceSlug, WardCode};
use crate::rejection::{Rejection, RejectionReason};
use crate::{MAX_DURATION_SECONDS, MAX_FUTURE_SKEW, SCHEMA_VERSION};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::error::Category;

/// Decodes one JSON object into `T`; unknown fields are ignored.
pub(crate) fn decode<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, Rejection> {
    // serde would also build a struct from a JSON array; the contract wants objects.
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {}
        Some(b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n') => {
            return Err(Rejection::new(
                RejectionReason::NotAnObject,
                None,
                "the message is JSON but not an object",
            ))
        }
        _ => {
            return Err(Rejection::new(
                RejectionReason::InvalidJson,
                None,
                "the message does not start a JSON value",
            ))
        }
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        // "." is the whole message; "?" is a path serde could not name (EOF).
        let field = (path != "." && path != "?").then_some(path);
        classify(error.inner(), field, bytes)
    })?;
    deserializer
        .end()
        .map_err(|error| Rejection::new(RejectionReason::InvalidJson, None, error.to_string()))?;
    // serde_json skips the strings of ignored (unknown) fields without
    // checking their UTF-8, so a message can parse and still not be UTF-8 JSON.
    if let Err(error) = std::str::from_utf8(bytes) {
        return Err(Rejection::new(
            RejectionReason::InvalidJson,
            None,
            format!("the message is not UTF-8 ({error})"),
        ));
    }
    Ok(value)
}

fn classify(error: &serde_json::Error, field: Option<String>, bytes: &[u8]) -> Rejection {
    let message = error.to_string();
    let reason = match error.classify() {
        // serde_json reports a number or a bool where an enum's string belongs
        // as a syntax error ("expected value"); if the whole message is
        // well-formed, the value was only of the wrong type.
        Category::Syntax if field.is_some() && well_formed(bytes) => {
            return Rejection {
                reason: RejectionReason::WrongType,
                field,
                detail: "a value of the wrong JSON type for this field".to_string(),
            };
        }
        Category::Io | Category::Syntax | Category::Eof => RejectionReason::InvalidJson,
        Category::Data if message.starts_with("duplicate field") => RejectionReason::DuplicateField,
        Category::Data if message.starts_with("unknown variant") => RejectionReason::InvalidValue,
        Category::Data if message.starts_with("invalid value") => RejectionReason::OutOfRange,
        Category::Data => RejectionReason::WrongType,
    };
    // serde names a repeated key only in its message ("duplicate field `channel`").
    let field = match reason {
        RejectionReason::DuplicateField if field.is_none() => {
            message.split('`').nth(1).map(str::to_string)
        }
        _ => field,
    };
    Rejection {
        reason,
        field,
        detail: without_values(&message),
    }
}

/// serde's message with the values it quotes left out (`invalid type: string
/// "…", expected u32`, ``unknown variant `…`, expected one of …``): a
/// misplaced value can be personal data, and details reach logs and
/// dead-letter headers. The expected names and types stay.
fn without_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    // The first backquoted word of an unknown variant is the value sent.
    if let Some(after) = rest.strip_prefix("unknown variant `") {
        if let Some(end) = after.find('`') {
            out.push_str("unknown variant `…`");
            rest = &after[end + 1..];
        }
    }
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            out.push(c);
            continue;
        }
        out.push_str("\"…\"");
        let mut escaped = false;
        for inner in chars.by_ref() {
            match (escaped, inner) {
                (false, '\\') => escaped = true,
                (false, '"') => break,
                _ => escaped = false,
            }
        }
    }
    out
}

/// Whether `bytes` are one JSON value serde_json can hold; only asked on the
/// rejection path. Decoded to a `Value`, not skipped, so that a lone surrogate
/// escape or a number beyond `f64` counts as malformed, not as a wrong type.
/// UTF-8 is checked apart because serde_json skips ignored strings unchecked.
fn well_formed(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes)
        .is_ok_and(|text| serde_json::from_str::<serde_json::Value>(text).is_ok())
}

pub(crate) fn required<T>(value: Option<T>, field: &str) -> Result<T, Rejection> {
    value.ok_or_else(|| {
        Rejection::field(
            RejectionReason::MissingField,
            field,
            "required field is missing or null",
        )
    })
}

pub(crate) fn check_schema_version(version: Option<i64>) -> Result<(), Rejection> {
    match required(version, "schema_version")? {
        v if v == i64::from(SCHEMA_VERSION) => Ok(()),
        other => Err(Rejection::field(
            RejectionReason::UnsupportedSchemaVersion,
            "schema_version",
            format!("schema_version {other} is not supported; this build reads {SCHEMA_VERSION}"),
        )),
    }
}

/// Parses with a code type's constructor, rejecting with its rule.
pub(crate) fn code<T>(
    value: &str,
    field: &str,
    parse: fn(&str) -> Option<T>,
    rule: &str,
) -> Result<T, Rejection> {
    parse(value).ok_or_else(|| {
        Rejection::field(
            RejectionReason::InvalidValue,
            field,
            // The value itself is not echoed: a field meant for a code can
            // hold personal data sent by mistake, and details reach logs
            // and dead-letter headers.
            format!(
                "a value of {} characters does not match: {rule}",
                value.chars().count()
            ),
        )
    })
}

pub(crate) fn event_id(value: &str, field: &str) -> Result<EventId, Rejection> {
    code(value, field, EventId::parse, EventId::RULE)
}

pub(crate) fn council(value: &str) -> Result<CouncilCode, Rejection> {
    code(value, "council", CouncilCode::parse, CouncilCode::RULE)
}

pub(crate) fn service(value: &str) -> Result<ServiceSlug, Rejection> {
    code(value, "service", ServiceSlug::parse, ServiceSlug::RULE)
}

pub(crate) fn ward(value: Option<&str>) -> Result<Option<WardCode>, Rejection> {
    value
        .map(|v| code(v, "ward", WardCode::parse, WardCode::RULE))
        .transpose()
}

pub(crate) fn lsoa(value: Option<&str>) -> Result<Option<LsoaCode>, Rejection> {
    value
        .map(|v| code(v, "lsoa", LsoaCode::parse, LsoaCode::RULE))
        .transpose()
}

/// An optional free string of at most `max` characters; empty counts as absent.
pub(crate) fn bounded(
    value: Option<&str>,
    field: &str,
    max: usize,
) -> Result<Option<String>, Rejection> {
    match value {
        None | Some("") => Ok(None),
        Some(v) if v.chars().count() > max => Err(Rejection::field(
            RejectionReason::OutOfRange,
            field,
            format!("longer than {max} characters"),
        )),
        Some(v) => Ok(Some(v.to_string())),
    }
}

/// The earliest instant the store can hold (ClickHouse `DateTime` is unsigned seconds).
const EARLIEST: i64 = 0;

/// An RFC 3339 timestamp with an offset, not before 1970 and not more than
/// [`MAX_FUTURE_SKEW`] after `now`.
pub(crate) fn timestamp(
    value: &str,
    field: &str,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, Rejection> {
    let parsed = DateTime::parse_from_rfc3339(value).map_err(|error| {
        Rejection::field(
            RejectionReason::InvalidValue,
            field,
            format!(
                "a value of {} characters is not an RFC 3339 timestamp with offset ({error})",
                value.chars().count()
            ),
        )
    })?;
    let utc = parsed.with_timezone(&Utc);
    if utc.timestamp() < EARLIEST {
        return Err(Rejection::field(
            RejectionReason::OutOfRange,
            field,
            format!("{value} is before 1970-01-01T00:00:00Z"),
        ));
    }
    if utc > now + MAX_FUTURE_SKEW {
        return Err(Rejection::field(
            RejectionReason::InFuture,
            field,
            format!(
                "{value} is more than {} minutes in the future (received at {now})",
                MAX_FUTURE_SKEW.num_minutes()
            ),
        ));
    }
    Ok(utc)
}

/// A duration of at most [`MAX_DURATION_SECONDS`]; negatives fail earlier, in serde.
pub(crate) fn seconds(value: Option<u32>, field: &str) -> Result<Option<u32>, Rejection> {
    match value {
        Some(v) if v > MAX_DURATION_SECONDS => Err(Rejection::field(
            RejectionReason::OutOfRange,
            field,
            format!("{v} is above {MAX_DURATION_SECONDS}"),
        )),
        other => Ok(other),
    }
}

/// The field names a wire struct reads, as its `Deserialize` derive declares
/// them, so tests can hold the published schema to exactly that list.
#[cfg(test)]
pub(crate) fn fields_read_by<T: Deserialize<'static>>() -> &'static [&'static str] {
    use serde::de::{self, value::Error, Deserializer, Visitor};

    /// A deserializer that only notes the fields a struct asks for, then stops.
    struct FieldNames<'a>(&'a mut &'static [&'static str]);

    impl<'de> Deserializer<'de> for FieldNames<'_> {
        type Error = Error;

        fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Error> {
            Err(de::Error::custom("only structs name their fields"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Error> {
            *self.0 = fields;
            Err(de::Error::custom("fields noted"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }

    let mut fields: &'static [&'static str] = &[];
    // The error is the point: the deserializer stops as soon as it has the names.
    let _ = T::deserialize(FieldNames(&mut fields));
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejection_details_leave_out_the_values_serde_quotes() {
        assert_eq!(
            without_values(
                r#"invalid type: string "jo@example.com \" x", expected u32 at line 1 column 9"#
            ),
            r#"invalid type: string "…", expected u32 at line 1 column 9"#
        );
        assert_eq!(
            without_values("unknown variant `QQ123456C`, expected one of `web`, `app`"),
            "unknown variant `…`, expected one of `web`, `app`"
        );
        assert_eq!(
            without_values("duplicate field `channel`"),
            "duplicate field `channel`"
        );
    }

    #[test]
    fn a_code_that_does_not_match_is_not_echoed() {
        let rejection = council("jo@example.com").expect_err("not a council code");
        assert!(
            !rejection.detail.contains("example"),
            "{}",
            rejection.detail
        );
        assert!(rejection.detail.contains("14 characters"));
    }
}
