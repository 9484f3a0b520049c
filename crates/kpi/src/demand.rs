//! Failure demand and resolution: avoidable contact %, and first-contact
//! resolution % measured on journeys (contacts linked by `journey_id`).
//!
//! A journey's contacts are split at gaps longer than the repeat window: a
//! contact with no contact of the same journey within the window before it
//! starts a journey, and that journey is resolved at first contact when no
//! further contact of it comes within the window after its first. The store
//! computes the same in SQL (`journey_cells`); [`journeys`] is the
//! definition in plain code, for tests and for the reader.

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

/// One journey of a `journey_id`: the instant of its first contact and
/// whether no further contact came within the window after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Journey {
    /// Unix seconds.
    pub first: i64,
    pub resolved: bool,
}

impl Journey {
    /// Whether the window after the first contact had ended by `at`: only
    /// then is the journey judged (before, it is open).
    pub fn closed_by(&self, window_seconds: i64, at: i64) -> bool {
        self.first + window_seconds <= at
    }
}

/// The journeys of one `journey_id` from its contacts' instants (Unix
/// seconds, in any order). Two contacts at the same instant are a repeat.
pub fn journeys(instants: &[i64], window_seconds: i64) -> Vec<Journey> {
    let mut sorted = instants.to_vec();
    sorted.sort_unstable();
    let mut found = Vec::new();
    for (i, &at) in sorted.iter().enumerate() {
        let starts = i == 0 || at - sorted[i - 1] > window_seconds;
        if starts {
            let resolved = sorted
                .get(i + 1)
                .is_none_or(|&next| next - at > window_seconds);
            found.push(Journey {
                first: at,
                resolved,
            });
        }
    }
    found
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

    const WEEK: i64 = 7 * 86_400;
    const DAY: i64 = 86_400;

    #[test]
    fn a_repeat_inside_the_window_unresolves_the_journey_and_one_outside_starts_another() {
        // Contacts at day 0, day 3 (a repeat), day 20 (a new journey), day 20 + 7 days exactly.
        let found = journeys(&[20 * DAY, 0, 3 * DAY, 27 * DAY], WEEK);
        assert_eq!(
            found,
            vec![
                Journey {
                    first: 0,
                    resolved: false
                },
                // A repeat exactly a window later is inside it.
                Journey {
                    first: 20 * DAY,
                    resolved: false
                },
            ]
        );
        let alone = journeys(&[5, 5 + WEEK + 1], WEEK);
        assert!(alone.iter().all(|journey| journey.resolved));
        assert_eq!(alone.len(), 2);
        // Two contacts at one instant: a repeat.
        assert!(!journeys(&[9, 9], WEEK)[0].resolved);
        assert!(!alone[1].closed_by(WEEK, 5 + 2 * WEEK));
        assert!(alone[1].closed_by(WEEK, 5 + 2 * WEEK + 1));
    }

    #[test]
    fn first_contact_resolution_is_a_share_of_journeys() {
        // 45 of 60 journeys resolved first time = 75%.
        let rate = first_contact_resolution(45, 60);
        assert_eq!(rate.percent(), Some(75.0));
        assert_eq!(rate.denominator(), 60);
    }
}
