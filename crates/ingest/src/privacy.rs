//! Personal data never reaches the store: customer references become a keyed
//! hash (HMAC-SHA256 under a key derived for each council from the
//! configured secret, so one council's pseudonyms cannot be linked to
//! another's), and free-text comments lose email addresses, card numbers,
//! National Insurance numbers, phone numbers (UK and international) and
//! postcodes.

use hmac::{Hmac, Mac};
use regex::{Captures, Regex};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use std::sync::LazyLock;

/// The shortest key accepted: 32 bytes, e.g. `openssl rand -hex 32` (64).
pub const MIN_KEY_BYTES: usize = 32;

/// Keys that appear in the project's documents and examples: refused, as
/// anybody could compute pseudonyms with them.
const EXAMPLE_KEYS: &[&str] = &[
    "change-me",
    "channelshift-dev-mode-key",
    "test-pseudonym-key",
    "a test key that is long enough to use",
];

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("privacy.pseudonym_key is {0} bytes; it must be at least {MIN_KEY_BYTES} (e.g. `openssl rand -hex 32`)")]
    TooShort(usize),
    #[error("privacy.pseudonym_key is an example from the documentation; generate one (`openssl rand -hex 32`)")]
    Example,
}

/// Turns customer references into stable pseudonyms. Without the key nobody
/// can test a guessed reference against the stored pseudonyms.
#[derive(Clone)]
pub struct Pseudonymiser {
    key: SecretString,
}

impl Pseudonymiser {
    /// Refuses a key shorter than [`MIN_KEY_BYTES`] or one of the examples.
    pub fn new(key: SecretString) -> Result<Self, KeyError> {
        let text = key.expose_secret();
        if EXAMPLE_KEYS
            .iter()
            .any(|example| text.trim().eq_ignore_ascii_case(example))
            || text.contains("change-me")
        {
            return Err(KeyError::Example);
        }
        if text.len() < MIN_KEY_BYTES {
            return Err(KeyError::TooShort(text.len()));
        }
        Ok(Self { key })
    }

    /// The built-in key of dev mode: for local demos only.
    pub fn dev_mode() -> Self {
        Self {
            key: SecretString::from("channelshift-dev-mode-key"),
        }
    }

    /// 32 hex characters (128 bits of HMAC-SHA256): collisions are not a
    /// practical concern at council volumes, and rows stay small. The key is
    /// the council's own (HMAC of the council code under the secret): the
    /// same reference gives unrelated pseudonyms in two councils.
    pub fn pseudonym(&self, council: &str, customer_ref: &str) -> String {
        let council_key = hmac(
            self.key.expose_secret().as_bytes(),
            &[b"channelshift council key\0", council.as_bytes()],
        );
        let digest = hmac(&council_key, &[customer_ref.as_bytes()]);
        hex::encode(&digest[..16])
    }
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)[a-z0-9._%+\-]+@[a-z0-9\-]+(?:\.[a-z0-9\-]+)+")
        .expect("email pattern is valid")
});

/// International numbers: `+` or `00`, a country code, then 6–12 more
/// digits, allowing spaces, dots, dashes and brackets (`+44 (0)20 …`,
/// `0044 20 …`, `+353 1 …`).
static INTERNATIONAL_PHONE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:\+\s?|\b00)[1-9]\d{0,2}(?:\s?\(0\))?(?:[\s\-.()]*\d){6,12}")
        .expect("international phone pattern is valid")
});

/// UK numbers: 0, then 9–10 more digits, allowing spaces, dots, dashes and a
/// bracketed area code.
static PHONE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\(?\b0\d(?:[\s\-.()]*\d){8,9}").expect("phone pattern is valid"));

/// National Insurance numbers: two letters, six digits, A–D (`QQ 12 34 56 C`).
static NI_NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b[a-z]{2}\s?\d{2}\s?\d{2}\s?\d{2}\s?[a-d]\b")
        .expect("NI number pattern is valid")
});

/// Runs of 13–19 digits, spaced or dashed: a card number when the Luhn
/// check passes.
static DIGIT_RUN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b\d(?:[\s\-]?\d){12,18}\b").expect("digit pattern is valid"));

/// Full UK postcodes (e.g. `SW1A 1AA`, `b33 8th`), spaced or not.
static POSTCODE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b[a-z]{1,2}[0-9][a-z0-9]?\s*[0-9][abd-hjlnp-uw-z]{2}\b")
        .expect("postcode pattern is valid")
});

/// True when `digits` passes the Luhn check that card numbers carry.
fn luhn(digits: &[u32]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, digit)| match (i % 2, digit * 2) {
            (1, doubled) if doubled > 9 => doubled - 9,
            (1, doubled) => doubled,
            _ => *digit,
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Removes personal data from a comment, leaving markers where it was.
pub fn scrub_comment(comment: &str) -> String {
    let text = EMAIL.replace_all(comment, "[email]");
    let text = DIGIT_RUN.replace_all(&text, |found: &Captures<'_>| {
        let digits: Vec<u32> = found[0].chars().filter_map(|c| c.to_digit(10)).collect();
        if luhn(&digits) {
            "[card]".to_string()
        } else {
            found[0].to_string()
        }
    });
    let text = NI_NUMBER.replace_all(&text, "[ni-number]");
    let text = INTERNATIONAL_PHONE.replace_all(&text, "[phone]");
    let text = PHONE.replace_all(&text, "[phone]");
    POSTCODE.replace_all(&text, "[postcode]").into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_are_stable_per_key_and_differ_across_keys() {
        let a = key("a");
        let b = key("b");
        let council = "E07000041";
        assert_eq!(
            a.pseudonym(council, "cust-42"),
            a.pseudonym(council, "cust-42")
        );
        assert_ne!(
            a.pseudonym(council, "cust-42"),
            a.pseudonym(council, "cust-43")
        );
        assert_ne!(
            a.pseudonym(council, "cust-42"),
            b.pseudonym(council, "cust-42")
        );
        assert_eq!(a.pseudonym(council, "cust-42").len(), 32);
        assert!(!a.pseudonym(council, "cust-42").contains("42"));
    }

    fn key(tag: &str) -> Pseudonymiser {
        Pseudonymiser::new(SecretString::from(format!("{tag}-{}", "9f".repeat(20))))
            .expect("a long generated key")
    }

    #[test]
    fn one_reference_in_two_councils_gives_unrelated_pseudonyms() {
        let a = key("a");
        assert_ne!(
            a.pseudonym("E07000041", "cust-42"),
            a.pseudonym("E07000042", "cust-42")
        );
        // A council code and reference cannot be shifted into each other.
        assert_ne!(
            a.pseudonym("E0700004", "1cust"),
            a.pseudonym("E07000041", "cust")
        );
    }

    #[test]
    fn short_keys_and_documented_examples_are_refused() {
        for example in EXAMPLE_KEYS {
            assert!(matches!(
                Pseudonymiser::new(SecretString::from(*example)),
                Err(KeyError::Example)
            ));
        }
        assert!(matches!(
            Pseudonymiser::new(SecretString::from(
                "change-me-please-to-something-very-long"
            )),
            Err(KeyError::Example)
        ));
        assert!(matches!(
            Pseudonymiser::new(SecretString::from("x".repeat(31))),
            Err(KeyError::TooShort(31))
        ));
        assert!(Pseudonymiser::new(SecretString::from("x".repeat(32))).is_ok());
    }

    #[test]
    fn comments_lose_emails_phone_numbers_and_postcodes() {
        let scrubbed = scrub_comment(
            "Email me at jo.bloggs+bins@example.co.uk or ring 01234 567890 / +44 7700 900123, I live at SW1A 1AA (or b338th).",
        );
        assert_eq!(
            scrubbed,
            "Email me at [email] or ring [phone] / [phone], I live at [postcode] (or [postcode])."
        );
    }

    #[test]
    fn comments_lose_card_numbers_ni_numbers_and_international_phones() {
        let scrubbed = scrub_comment(
            "Paid with 4111 1111 1111 1111 and 5500-0000-0000-0004; NI QQ 12 34 56 C (or \
             ab123456d). Call +353 1 234 5678, 0044 20 7946 0000, +44 (0)20 7946 0001 or \
             +1 (212) 555-0100.",
        );
        assert_eq!(
            scrubbed,
            "Paid with [card] and [card]; NI [ni-number] (or [ni-number]). Call [phone], \
             [phone], [phone] or [phone]."
        );
    }

    #[test]
    fn long_numbers_that_fail_the_luhn_check_are_not_cards() {
        // An order reference, not a card: kept (it is not personal data).
        assert_eq!(scrub_comment("ref 1234567890123"), "ref 1234567890123");
        assert!(luhn(&[4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]));
        assert!(!luhn(&[4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2]));
    }

    #[test]
    fn ordinary_numbers_and_words_survive_scrubbing() {
        let text = "Waited 45 minutes on 3 calls in 2025; reference AB12 was fine.";
        assert_eq!(scrub_comment(text), text);
    }
}
