//! Identifiers and codes of the contract, each checked once at construction.

use serde::Serialize;
use std::fmt;

/// Declares a string newtype whose only constructor is `parse`, checked by `$valid`.
macro_rules! code {
    ($(#[$meta:meta])* $name:ident, $rule:literal, $valid:expr) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// What a valid value looks like, for rejection messages.
            pub const RULE: &'static str = $rule;

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
    };
}

code!(
    /// The idempotency key of a message: 1–64 of `[A-Za-z0-9._:-]`.
    EventId,
    "1-64 characters of A-Z a-z 0-9 . _ : -",
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
    |value| gss(value, b"ENSW", "", 8)
);

code!(
    /// A service slug, `^[a-z0-9_]{1,48}$`.
    ServiceSlug,
    "1-48 characters of a-z 0-9 _",
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
    |value| gss(value, b"EWS", "05", 6)
);

code!(
    /// An LSOA's GSS code, `^[EWS]01[0-9]{6}$`.
    LsoaCode,
    "an LSOA GSS code: E, W or S, then 01, then 6 digits",
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

    #[test]
    fn service_slugs_are_lower_snake_case() {
        assert!(ServiceSlug::parse("council_tax").is_some());
        assert!(ServiceSlug::parse("Council_Tax").is_none());
        assert!(ServiceSlug::parse("waste-collection").is_none());
        assert!(ServiceSlug::parse(&"a".repeat(49)).is_none());
    }
}
