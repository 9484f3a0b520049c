//! Any bytes into both message parsers: they must return a value or a
//! rejection, never panic, loop or overflow the stack, and what they accept
//! must hold the contract's limits. Seeds: `seeds/parse/`.

#![no_main]

use channelshift_contract::{
    ContactEvent, Rejection, SatisfactionResponse, COMMENT_MAX_CHARS, CUSTOMER_REF_MAX_CHARS,
    MAX_DURATION_SECONDS, SOURCE_MAX_CHARS,
};
use chrono::DateTime;
use libfuzzer_sys::fuzz_target;

fn check_rejection(rejection: &Rejection) {
    // A field is a real path, never serde's placeholder for "unknown".
    assert_ne!(rejection.field.as_deref(), Some("?"));
    assert!(!rejection.to_string().is_empty());
}

fuzz_target!(|bytes: &[u8]| {
    // A fixed clock keeps every run reproducible (2025-11-24T16:00:00Z).
    let now = DateTime::from_timestamp(1_764_000_000, 0).expect("a valid instant");
    match ContactEvent::from_json(bytes, now) {
        Ok(event) => {
            assert!(
                std::str::from_utf8(bytes).is_ok(),
                "accepted bytes are UTF-8"
            );
            assert!(event.occurred_at.timestamp() >= 0);
            assert!(event.occurred_at <= now + channelshift_contract::MAX_FUTURE_SKEW);
            for seconds in [event.wait_seconds, event.handling_seconds]
                .into_iter()
                .flatten()
            {
                assert!(seconds <= MAX_DURATION_SECONDS);
            }
            for (text, max) in [
                (&event.customer_ref, CUSTOMER_REF_MAX_CHARS),
                (&event.source, SOURCE_MAX_CHARS),
            ] {
                assert!(text.as_ref().is_none_or(|t| t.chars().count() <= max));
            }
        }
        Err(rejection) => check_rejection(&rejection),
    }
    match SatisfactionResponse::from_json(bytes, now) {
        Ok(response) => {
            assert!(
                std::str::from_utf8(bytes).is_ok(),
                "accepted bytes are UTF-8"
            );
            assert!(response.responded_at.timestamp() >= 0);
            assert!(response
                .comment
                .as_ref()
                .is_none_or(|c| c.chars().count() <= COMMENT_MAX_CHARS));
            let (low, high) = response.score.instrument().scale();
            assert!((low..=high).contains(&response.score.value()));
        }
        Err(rejection) => check_rejection(&rejection),
    }
});
