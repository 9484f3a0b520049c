//! Failure demand and resolution: avoidable contact % and first-contact resolution %.

use crate::interval::Rate;

/// Avoidable contact: contacts flagged avoidable ÷ contacts where the flag was recorded at all.
/// Contacts without the flag are left out of both, because unknown is not "unavoidable".
pub fn avoidable_contact(avoidable: u64, flagged: u64) -> Rate {
    Rate::new(avoidable, flagged)
}

/// First-contact resolution: journeys resolved at their first contact ÷ journeys.
pub fn first_contact_resolution(resolved_at_first_contact: u64, journeys: u64) -> Rate {
    Rate::new(resolved_at_first_contact, journeys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avoidable_contact_is_a_share_of_flagged_contacts_only() {
        // 30 avoidable of 120 flagged = 25%; the unflagged contacts never reach this function.
        let rate = avoidable_contact(30, 120);
        assert_eq!(rate.percent(), Some(25.0));
        assert_eq!(rate.denominator(), 120);
        assert!(rate.interval().is_some());
    }

    #[test]
    fn first_contact_resolution_is_a_share_of_journeys() {
        // 45 of 60 journeys resolved first time = 75%.
        let rate = first_contact_resolution(45, 60);
        assert_eq!(rate.percent(), Some(75.0));
        assert_eq!(rate.denominator(), 60);
    }
}
