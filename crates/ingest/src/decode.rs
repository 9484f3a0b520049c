//! One message's bytes into what the batch keeps of it: a contact row, a
//! satisfaction row (customer reference pseudonymised, comment scrubbed), or
//! the rejection that sends it to the dead-letter topic. No I/O.

use crate::privacy::{scrub_comment, Pseudonymiser};
use channelshift_contract::{ContactEvent, Rejection, RejectionReason, SatisfactionResponse};
use channelshift_store::{ContactRow, KafkaPosition, Record, SatisfactionRow};
use chrono::{DateTime, Utc};

/// What a message becomes.
#[derive(Debug)]
pub enum Decoded {
    Contact(ContactRow),
    Satisfaction(SatisfactionRow),
    Rejected(Rejection),
}

/// What ingest accepts beyond the contract.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// A message over this is rejected unread (`too_large`).
    pub max_message_bytes: usize,
    /// Events and responses older than this many days are rejected
    /// (`too_old`); `None` accepts any age.
    pub max_age_days: Option<u32>,
}

/// Decodes a message of `record`'s topic, received `now`, within `limits`.
pub fn decode(
    record: Record,
    payload: &[u8],
    position: KafkaPosition,
    now: DateTime<Utc>,
    limits: Limits,
    pseudonymiser: &Pseudonymiser,
) -> Decoded {
    let max_message_bytes = limits.max_message_bytes;
    if payload.len() > max_message_bytes {
        return Decoded::Rejected(Rejection::new(
            RejectionReason::TooLarge,
            None,
            format!(
                "{} bytes is over the {max_message_bytes}-byte limit",
                payload.len()
            ),
        ));
    }
    let decoded = match record {
        Record::Contact => ContactEvent::from_json(payload, now).map(|event| {
            let customer_hash = event
                .customer_ref
                .as_deref()
                .map(|reference| pseudonymiser.pseudonym(event.council.as_str(), reference))
                .unwrap_or_default();
            Decoded::Contact(ContactRow::new(&event, customer_hash, position, now))
        }),
        Record::Satisfaction => SatisfactionResponse::from_json(payload, now).map(|response| {
            let comment = response
                .comment
                .as_deref()
                .map(scrub_comment)
                .unwrap_or_default();
            Decoded::Satisfaction(SatisfactionRow::new(&response, comment, position, now))
        }),
    };
    let decoded = decoded.unwrap_or_else(Decoded::Rejected);
    let (at, field) = match &decoded {
        Decoded::Contact(row) => (row.occurred_at, "occurred_at"),
        Decoded::Satisfaction(row) => (row.responded_at, "responded_at"),
        Decoded::Rejected(_) => return decoded,
    };
    match limits.max_age_days {
        Some(days) if i64::from(at) < now.timestamp() - i64::from(days) * 86_400 => {
            Decoded::Rejected(Rejection::new(
                RejectionReason::TooOld,
                Some(field),
                format!("more than {days} days old (ingest's max_event_age_days)"),
            ))
        }
        _ => decoded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn pseudonymiser() -> Pseudonymiser {
        Pseudonymiser::new(SecretString::from(
            "a test key of thirty-two bytes or more, for decode",
        ))
        .expect("a long key")
    }

    const LIMITS: Limits = Limits {
        max_message_bytes: 65_536,
        max_age_days: None,
    };

    const AT: KafkaPosition = KafkaPosition {
        partition: 2,
        offset: 41,
    };

    fn contact(customer_ref: &str) -> Vec<u8> {
        format!(
            r#"{{"schema_version":1,"event_id":"e-1","council":"E07000041","occurred_at":"2026-05-01T09:00:00Z","channel":"web","service":"waste","outcome":"completed","customer_type":"resident","customer_ref":"{customer_ref}"}}"#
        )
        .into_bytes()
    }

    #[test]
    fn a_contact_becomes_a_row_with_its_reference_pseudonymised() {
        let now = Utc::now();
        let Decoded::Contact(row) = decode(
            Record::Contact,
            &contact("CRM-123"),
            AT,
            now,
            LIMITS,
            &pseudonymiser(),
        ) else {
            panic!("a valid contact is a row");
        };
        assert_eq!(row.event_id, "e-1");
        assert_eq!((row.kafka_partition, row.kafka_offset), (2, 41));
        assert!(!row.customer_hash.is_empty());
        assert!(!row.customer_hash.contains("CRM-123"));
    }

    #[test]
    fn a_message_over_the_limit_is_rejected_unread() {
        let decoded = decode(
            Record::Contact,
            &contact("CRM-123"),
            AT,
            Utc::now(),
            Limits {
                max_message_bytes: 10,
                ..LIMITS
            },
            &pseudonymiser(),
        );
        assert!(
            matches!(&decoded, Decoded::Rejected(rejection) if rejection.reason == RejectionReason::TooLarge),
            "{decoded:?}"
        );
    }

    #[test]
    fn an_age_bound_rejects_older_events_and_none_accepts_any_age() {
        // The contact occurred on 1 May 2026.
        let now: DateTime<Utc> = "2026-12-05T12:00:00Z".parse().expect("an instant");
        let at_most = |days| Limits {
            max_age_days: Some(days),
            ..LIMITS
        };
        let decoded = decode(
            Record::Contact,
            &contact("x"),
            AT,
            now,
            at_most(30),
            &pseudonymiser(),
        );
        assert!(
            matches!(&decoded, Decoded::Rejected(rejection)
                if rejection.reason == RejectionReason::TooOld
                    && rejection.field.as_deref() == Some("occurred_at")),
            "{decoded:?}"
        );
        let decoded = decode(
            Record::Contact,
            &contact("x"),
            AT,
            now,
            at_most(365),
            &pseudonymiser(),
        );
        assert!(matches!(decoded, Decoded::Contact(_)), "{decoded:?}");
        let decoded = decode(
            Record::Contact,
            &contact("x"),
            AT,
            now,
            LIMITS,
            &pseudonymiser(),
        );
        assert!(matches!(decoded, Decoded::Contact(_)), "{decoded:?}");
    }

    #[test]
    fn a_message_is_read_as_its_topics_record() {
        // A contact on the satisfaction topic is not a satisfaction response.
        let decoded = decode(
            Record::Satisfaction,
            &contact("CRM-123"),
            AT,
            Utc::now(),
            LIMITS,
            &pseudonymiser(),
        );
        assert!(matches!(decoded, Decoded::Rejected(_)), "{decoded:?}");
    }
}
