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

/// Decodes a message of `record`'s topic, received `now`; a message over
/// `max_message_bytes` is rejected unread.
pub fn decode(
    record: Record,
    payload: &[u8],
    position: KafkaPosition,
    now: DateTime<Utc>,
    max_message_bytes: usize,
    pseudonymiser: &Pseudonymiser,
) -> Decoded {
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
                .map(|reference| pseudonymiser.pseudonym(reference))
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
    decoded.unwrap_or_else(Decoded::Rejected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn pseudonymiser() -> Pseudonymiser {
        Pseudonymiser::new(SecretString::from("a test key that is long enough to use"))
    }

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
            65_536,
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
            10,
            &pseudonymiser(),
        );
        assert!(
            matches!(&decoded, Decoded::Rejected(rejection) if rejection.reason == RejectionReason::TooLarge),
            "{decoded:?}"
        );
    }

    #[test]
    fn a_message_is_read_as_its_topics_record() {
        // A contact on the satisfaction topic is not a satisfaction response.
        let decoded = decode(
            Record::Satisfaction,
            &contact("CRM-123"),
            AT,
            Utc::now(),
            65_536,
            &pseudonymiser(),
        );
        assert!(matches!(decoded, Decoded::Rejected(_)), "{decoded:?}");
    }
}
