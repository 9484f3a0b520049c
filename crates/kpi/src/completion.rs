//! Completion rate (GDS): of the transactions started through digital self-service, the share
//! that ended completed or ineligible.

use crate::channel::Outcome;
use crate::interval::Rate;

/// Transactions started through digital self-service, counted by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutcomeCounts {
    pub completed: u64,
    pub ineligible: u64,
    pub abandoned: u64,
    pub failed: u64,
    pub transferred: u64,
}

impl OutcomeCounts {
    /// Adds `count` transactions that ended in `outcome`.
    pub fn add(&mut self, outcome: Outcome, count: u64) {
        let slot = match outcome {
            Outcome::Completed => &mut self.completed,
            Outcome::Ineligible => &mut self.ineligible,
            Outcome::Abandoned => &mut self.abandoned,
            Outcome::Failed => &mut self.failed,
            Outcome::Transferred => &mut self.transferred,
        };
        *slot += count;
    }
}

/// (completed + ineligible) ÷ (completed + ineligible + abandoned + failed + transferred).
///
/// The caller passes only transactions started through digital self-service; the definition
/// does not apply to other classes.
pub fn completion_rate(started: &OutcomeCounts) -> Rate {
    let finished = started.completed + started.ineligible;
    let all = finished + started.abandoned + started.failed + started.transferred;
    Rate::new(finished, all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ineligible_counts_as_completion_and_transfer_as_not() {
        // (70 + 10) ÷ (70 + 10 + 12 + 3 + 5) = 80 ÷ 100 = 80%.
        let mut started = OutcomeCounts::default();
        started.add(Outcome::Completed, 70);
        started.add(Outcome::Ineligible, 10);
        started.add(Outcome::Abandoned, 12);
        started.add(Outcome::Failed, 3);
        started.add(Outcome::Transferred, 5);
        let rate = completion_rate(&started);
        assert_eq!(rate.numerator(), 80);
        assert_eq!(rate.denominator(), 100);
        assert_eq!(rate.percent(), Some(80.0));
    }

    #[test]
    fn no_transactions_started_gives_no_completion_rate() {
        assert_eq!(completion_rate(&OutcomeCounts::default()).percent(), None);
    }
}
