//! Personal data never reaches the store: customer references become a keyed
//! hash (HMAC-SHA256 under the council's secret), and free-text comments lose
//! email addresses, UK phone numbers and postcodes.

use hmac::{Hmac, Mac};
use regex::Regex;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use std::sync::LazyLock;

/// Turns customer references into stable pseudonyms. Without the key nobody
/// can test a guessed reference against the stored pseudonyms.
#[derive(Clone)]
pub struct Pseudonymiser {
    key: SecretString,
}

impl Pseudonymiser {
    pub fn new(key: SecretString) -> Self {
        Self { key }
    }

    /// 32 hex characters (128 bits of HMAC-SHA256): collisions are not a
    /// practical concern at council volumes, and rows stay small.
    pub fn pseudonym(&self, customer_ref: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.key.expose_secret().as_bytes())
            .expect("HMAC accepts keys of any length");
        mac.update(customer_ref.as_bytes());
        let digest = mac.finalize().into_bytes();
        hex::encode(&digest[..16])
    }
}

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)[a-z0-9._%+\-]+@[a-z0-9\-]+(?:\.[a-z0-9\-]+)+")
        .expect("email pattern is valid")
});

/// UK numbers: +44 or 0, then 9–10 more digits, allowing spaces, dots, dashes
/// and a bracketed area code.
static PHONE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:\+\s?44\s?(?:\(0\)\s?)?|\(?0)\d(?:[\s\-.()]*\d){8,9}")
        .expect("phone pattern is valid")
});

/// Full UK postcodes (e.g. `SW1A 1AA`, `b33 8th`), spaced or not.
static POSTCODE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b[a-z]{1,2}[0-9][a-z0-9]?\s*[0-9][abd-hjlnp-uw-z]{2}\b")
        .expect("postcode pattern is valid")
});

/// Removes personal data from a comment, leaving markers where it was.
pub fn scrub_comment(comment: &str) -> String {
    let text = EMAIL.replace_all(comment, "[email]");
    let text = PHONE.replace_all(&text, "[phone]");
    POSTCODE.replace_all(&text, "[postcode]").into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_are_stable_per_key_and_differ_across_keys() {
        let a = Pseudonymiser::new(SecretString::from("key-a"));
        let b = Pseudonymiser::new(SecretString::from("key-b"));
        assert_eq!(a.pseudonym("cust-42"), a.pseudonym("cust-42"));
        assert_ne!(a.pseudonym("cust-42"), a.pseudonym("cust-43"));
        assert_ne!(a.pseudonym("cust-42"), b.pseudonym("cust-42"));
        assert_eq!(a.pseudonym("cust-42").len(), 32);
        assert!(!a.pseudonym("cust-42").contains("42"));
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
    fn ordinary_numbers_and_words_survive_scrubbing() {
        let text = "Waited 45 minutes on 3 calls in 2025; reference AB12 was fine.";
        assert_eq!(scrub_comment(text), text);
    }
}
