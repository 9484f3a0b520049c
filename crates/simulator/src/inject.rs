//! Faults on purpose: extra bad messages (each kind rejected by the contract
//! for a known reason) and duplicates (a valid message sent again, byte for
//! byte, a little later). Injection draws from its own random stream, so the
//! valid messages are the same with or without it.

use crate::generate::{Message, MessageKind};
use chrono::{DateTime, Duration, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use std::collections::VecDeque;

/// What is wrong with a bad message; kinds are used in turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Defect {
    /// Cut off half way: not JSON.
    MalformedJson,
    /// `channel: "fax"`.
    UnknownChannel,
    /// A required field left out.
    MissingField,
    /// The timestamp a century (backfill) or a day (live) ahead.
    FutureTimestamp,
    /// A number sent as a string.
    WrongType,
    /// `council: "E0700004"`.
    BadCouncilCode,
    /// A duration over a day, or a score outside its scale.
    OutOfRange,
    /// `schema_version: 2`.
    UnsupportedSchemaVersion,
    /// The message wrapped in an array.
    NotAnObject,
    /// A key given twice.
    DuplicateKey,
}

impl Defect {
    pub const ALL: [Defect; 10] = [
        Defect::MalformedJson,
        Defect::UnknownChannel,
        Defect::MissingField,
        Defect::FutureTimestamp,
        Defect::WrongType,
        Defect::BadCouncilCode,
        Defect::OutOfRange,
        Defect::UnsupportedSchemaVersion,
        Defect::NotAnObject,
        Defect::DuplicateKey,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Defect::MalformedJson => "malformed_json",
            Defect::UnknownChannel => "unknown_channel",
            Defect::MissingField => "missing_field",
            Defect::FutureTimestamp => "future_timestamp",
            Defect::WrongType => "wrong_type",
            Defect::BadCouncilCode => "bad_council_code",
            Defect::OutOfRange => "out_of_range",
            Defect::UnsupportedSchemaVersion => "unsupported_schema_version",
            Defect::NotAnObject => "not_an_object",
            Defect::DuplicateKey => "duplicate_key",
        }
    }

    /// The contract's rejection reason (`RejectionReason::as_str`) for this defect.
    pub fn expected_rejection(self) -> &'static str {
        match self {
            Defect::MalformedJson => "invalid_json",
            Defect::UnknownChannel | Defect::BadCouncilCode => "invalid_value",
            Defect::MissingField => "missing_field",
            Defect::FutureTimestamp => "in_future",
            Defect::WrongType => "wrong_type",
            Defect::OutOfRange => "out_of_range",
            Defect::UnsupportedSchemaVersion => "unsupported_schema_version",
            Defect::NotAnObject => "not_an_object",
            Defect::DuplicateKey => "duplicate_field",
        }
    }
}

/// How far after the original a duplicate is sent, in messages.
const DUPLICATE_DELAY: std::ops::RangeInclusive<u64> = 1..=200;

pub(crate) struct Injector {
    rng: ChaCha8Rng,
    bad_rate: f64,
    duplicate_rate: f64,
    next_defect: usize,
    /// Duplicates waiting for their turn: (send after this many messages, message).
    delayed: VecDeque<(u64, Message)>,
    sent: u64,
}

impl Injector {
    pub fn new(seed: u64, bad_rate: f64, duplicate_rate: f64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(u64::MAX);
        Self {
            rng,
            bad_rate,
            duplicate_rate,
            next_defect: 0,
            delayed: VecDeque::new(),
            sent: 0,
        }
    }

    /// Adds the bad messages and the due duplicates to one contact's valid
    /// messages. `live_now`: the clock of live mode, else `None`.
    pub fn inject(&mut self, valid: Vec<Message>, live_now: Option<DateTime<Utc>>) -> Vec<Message> {
        if self.bad_rate <= 0.0 && self.duplicate_rate <= 0.0 {
            return valid;
        }
        let mut out = Vec::with_capacity(valid.len() + 1);
        for message in valid {
            let bad = self.rng.random_bool(self.bad_rate);
            let duplicate = self.rng.random_bool(self.duplicate_rate);
            if duplicate {
                let after = self.sent + self.rng.random_range(DUPLICATE_DELAY);
                let copy = Message {
                    kind: MessageKind::Duplicate,
                    ..message.clone()
                };
                // Kept in order of release; delays are short, so this stays small.
                let at = self.delayed.partition_point(|(due, _)| *due <= after);
                self.delayed.insert(at, (after, copy));
            }
            if bad {
                let defect = Defect::ALL[self.next_defect % Defect::ALL.len()];
                self.next_defect += 1;
                out.push(self.corrupt(&message, defect, live_now));
            }
            out.push(message);
            self.sent += 1;
        }
        while self
            .delayed
            .front()
            .is_some_and(|(due, _)| *due <= self.sent)
        {
            if let Some((_, message)) = self.delayed.pop_front() {
                out.push(message);
            }
        }
        out
    }

    /// The duplicates still waiting when the valid messages run out.
    pub fn drain(&mut self) -> Vec<Message> {
        self.delayed.drain(..).map(|(_, message)| message).collect()
    }

    fn corrupt(
        &mut self,
        message: &Message,
        defect: Defect,
        live_now: Option<DateTime<Utc>>,
    ) -> Message {
        let mut value: Value =
            serde_json::from_slice(&message.payload).expect("generated messages are JSON");
        let (id_field, time_field, required): (&str, &str, &[&str]) = if message.satisfaction {
            (
                "response_id",
                "responded_at",
                &["council", "channel", "service", "instrument", "score"],
            )
        } else {
            (
                "event_id",
                "occurred_at",
                &["council", "channel", "service", "outcome", "customer_type"],
            )
        };
        // Its own id, so a bad message never shares an id with a valid one.
        let key = format!("{}-bad", message.key);
        value[id_field] = json!(key);
        let payload = match defect {
            Defect::MalformedJson => {
                let mut text = value.to_string().into_bytes();
                text.truncate(text.len() / 2);
                text
            }
            Defect::UnknownChannel => {
                value["channel"] = json!("fax");
                value.to_string().into_bytes()
            }
            Defect::MissingField => {
                let field = required[self.rng.random_range(0..required.len())];
                if let Some(object) = value.as_object_mut() {
                    object.remove(field);
                }
                value.to_string().into_bytes()
            }
            Defect::FutureTimestamp => {
                let original = value[time_field]
                    .as_str()
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.to_utc());
                let future = match (live_now, original) {
                    // A clock a day fast.
                    (Some(now), _) => now + Duration::days(1),
                    // A clock a century fast: in the future whenever it is read.
                    (None, Some(at)) => at + Duration::days(36_525),
                    (None, None) => Utc::now() + Duration::days(36_525),
                };
                value[time_field] = json!(crate::generate::rfc3339(future));
                value.to_string().into_bytes()
            }
            Defect::WrongType => {
                if message.satisfaction {
                    let score = value["score"].to_string();
                    value["score"] = json!(score);
                } else {
                    value["assisted"] = json!("yes");
                }
                value.to_string().into_bytes()
            }
            Defect::BadCouncilCode => {
                value["council"] = json!("E0700004");
                value.to_string().into_bytes()
            }
            Defect::OutOfRange => {
                if message.satisfaction {
                    value["score"] = json!(99);
                } else {
                    value["handling_seconds"] = json!(90_000);
                }
                value.to_string().into_bytes()
            }
            Defect::UnsupportedSchemaVersion => {
                value["schema_version"] = json!(2);
                value.to_string().into_bytes()
            }
            Defect::NotAnObject => json!([value]).to_string().into_bytes(),
            Defect::DuplicateKey => {
                // `{"council":"…",` in front of an object that has it too.
                let text = value.to_string();
                let council = value["council"].to_string();
                format!("{{\"council\":{council},{}", &text[1..]).into_bytes()
            }
        };
        Message {
            satisfaction: message.satisfaction,
            key,
            payload,
            kind: MessageKind::Bad(defect),
        }
    }
}
