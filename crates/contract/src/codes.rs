//! Identifiers and codes of the contract, each checked once at construction.

use serde::Serialize;
use std::fmt;

/// Declares a string newtype whose only constructor is `parse`, checked by `$valid`.
/// `$pattern` states the same rule for the published JSON Schema; the tests
/// below hold the two to the same verdict on every sample.
macro_rules! code {
    ($(#[$meta:meta])* $name:ident, $rule:literal, $pattern:literal, $valid:expr) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// What a valid value looks like, for rejection messages.
            pub const RULE: &'static str = $rule;

            /// The same rule as an anchored ECMA-262 regular expression, as JSON
            /// Schema's `pattern` wants it. The check itself stays hand-written:
            /// no regex engine runs on the hot path.
            pub const PATTERN: &'static str = $pattern;

            /// Builds the value if it follows [`Self::RULE`].
            pub fn parse(value: &str) -> Option<Self> {
                let valid: fn(&str) -> bool = $valid;
                valid(value).then(|| Self(value.to_string()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                crate::vocabulary::string_schema($rule)
                    .pattern(Some($pattern))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

code!(
    /// The idempotency key of a message: 1–64 of `[A-Za-z0-9._:-]`.
    EventId,
    "1-64 characters of A-Z a-z 0-9 . _ : -",
    "^[A-Za-z0-9._:-]{1,64}$",
    |value| {
        (1..=64).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
    }
);

code!(
    /// A GSS code of a local authority, `^[ENSW][0-9]{8}$` (e.g. `E07000041`).
    CouncilCode,
    "a GSS code: E, N, S or W then 8 digits",
    "^[ENSW][0-9]{8}$",
    |value| gss(value, b"ENSW", "", 8)
);

code!(
    /// A service slug, `^[a-z0-9_]{1,48}$`.
    ServiceSlug,
    "1-48 characters of a-z 0-9 _",
    "^[a-z0-9_]{1,48}$",
    |value| {
        (1..=48).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    }
);

code!(
    /// A ward's GSS code, `^[EWS]05[0-9]{6}$`.
    WardCode,
    "a ward GSS code: E, W or S, then 05, then 6 digits",
    "^[EWS]05[0-9]{6}$",
    |value| gss(value, b"EWS", "05", 6)
);

code!(
    /// An LSOA's GSS code, `^[EWS]01[0-9]{6}$`.
    LsoaCode,
    "an LSOA GSS code: E, W or S, then 01, then 6 digits",
    "^[EWS]01[0-9]{6}$",
    |value| gss(value, b"EWS", "01", 6)
);

/// A GSS-style code: one of `countries`, then `entity`, then `digits` digits.
fn gss(value: &str, countries: &[u8], entity: &str, digits: usize) -> bool {
    let bytes = value.as_bytes();
    bytes.len() == 1 + entity.len() + digits
        && countries.contains(&bytes[0])
        && value[1..].starts_with(entity)
        && bytes[1 + entity.len()..].iter().all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn council_codes_follow_the_gss_pattern() {
        assert!(CouncilCode::parse("E07000041").is_some());
        assert!(CouncilCode::parse("W06000015").is_some());
        assert!(CouncilCode::parse("X07000041").is_none());
        assert!(CouncilCode::parse("E0700004").is_none());
        assert!(CouncilCode::parse("E070000411").is_none());
        assert!(CouncilCode::parse("E07O00041").is_none());
    }

    #[test]
    fn ward_and_lsoa_codes_need_their_entity_prefix() {
        assert!(WardCode::parse("E05012345").is_some());
        assert!(WardCode::parse("E01012345").is_none());
        assert!(WardCode::parse("N05012345").is_none());
        assert!(LsoaCode::parse("W01000001").is_some());
        assert!(LsoaCode::parse("W05000001").is_none());
    }

    #[test]
    fn event_ids_allow_uuids_and_reject_spaces_and_overlong_ids() {
        assert!(EventId::parse("0b6f3c1e-8a34-4a53-9a55-1f4c1d2a7b10").is_some());
        assert!(EventId::parse("crm:2025.11/7").is_none());
        assert!(EventId::parse("a b").is_none());
        assert!(EventId::parse("").is_none());
        assert!(EventId::parse(&"x".repeat(64)).is_some());
        assert!(EventId::parse(&"x".repeat(65)).is_none());
    }

    /// Holds `pattern` to `parse`'s verdict on every sample; the samples must
    /// include both valid and invalid values, or the test proves nothing.
    fn assert_pattern_agrees(pattern: &str, parse: fn(&str) -> bool, samples: &[&str]) {
        let regex = regex::Regex::new(pattern).expect("PATTERN compiles");
        for sample in samples {
            assert_eq!(
                regex.is_match(sample),
                parse(sample),
                "{pattern} and parse disagree on {sample:?}"
            );
        }
        assert!(samples.iter().any(|s| parse(s)), "no valid sample");
        assert!(samples.iter().any(|s| !parse(s)), "no invalid sample");
    }

    /// Values every code type must refuse: blanks, padding, line breaks (a
    /// regex's `$` could let a trailing newline through), non-ASCII look-alikes.
    const HOSTILE: &[&str] = &[
        "",
        " ",
        "\n",
        "E07000041\n",
        "\nE07000041",
        " E07000041",
        "E07000041 ",
        "E0700004\u{661}",
        "\u{415}07000041",
    ];

    fn samples<'a>(own: &[&'a str]) -> Vec<&'a str> {
        own.iter().chain(HOSTILE).copied().collect()
    }

    #[test]
    fn event_id_pattern_agrees_with_parse() {
        let long = "x".repeat(64);
        let too_long = "x".repeat(65);
        assert_pattern_agrees(
            EventId::PATTERN,
            |v| EventId::parse(v).is_some(),
            &samples(&[
                "0b6f3c1e-8a34-4a53-9a55-1f4c1d2a7b10",
                "crm:2025.11_7-A",
                "a",
                &long,
                &too_long,
                "crm:2025.11/7",
                "a b",
                "r\u{e9}f",
                "id\n",
            ]),
        );
    }

    #[test]
    fn council_code_pattern_agrees_with_parse() {
        assert_pattern_agrees(
            CouncilCode::PATTERN,
            |v| CouncilCode::parse(v).is_some(),
            &samples(&[
                "E07000041",
                "N09000001",
                "S12000033",
                "W06000015",
                "X07000041",
                "e07000041",
                "E0700004",
                "E070000411",
                "E07O00041",
                "EE7000041",
            ]),
        );
    }

    #[test]
    fn service_slug_pattern_agrees_with_parse() {
        let long = "a".repeat(48);
        let too_long = "a".repeat(49);
        assert_pattern_agrees(
            ServiceSlug::PATTERN,
            |v| ServiceSlug::parse(v).is_some(),
            &samples(&[
                "council_tax",
                "waste",
                "_",
                "a1",
                &long,
                &too_long,
                "Council_Tax",
                "waste-collection",
                "waste.collection",
                "d\u{e9}chets",
            ]),
        );
    }

    #[test]
    fn ward_code_pattern_agrees_with_parse() {
        assert_pattern_agrees(
            WardCode::PATTERN,
            |v| WardCode::parse(v).is_some(),
            &samples(&[
                "E05012345",
                "S05000001",
                "W05000999",
                "N05012345",
                "E01012345",
                "E0501234",
                "E050123456",
                "E05O12345",
            ]),
        );
    }

    #[test]
    fn lsoa_code_pattern_agrees_with_parse() {
        assert_pattern_agrees(
            LsoaCode::PATTERN,
            |v| LsoaCode::parse(v).is_some(),
            &samples(&[
                "E01000001",
                "S01012345",
                "W01000001",
                "N01000001",
                "W05000001",
                "E0100000",
                "E010000011",
                "E01OOOOO1",
            ]),
        );
    }

    #[test]
    fn service_slugs_are_lower_snake_case() {
        assert!(ServiceSlug::parse("council_tax").is_some());
        assert!(ServiceSlug::parse("Council_Tax").is_none());
        assert!(ServiceSlug::parse("waste-collection").is_none());
        assert!(ServiceSlug::parse(&"a".repeat(49)).is_none());
    }
}
