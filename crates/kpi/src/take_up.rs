//! Digital take-up (GDS): completed transactions through digital self-service as a share of all
//! completed transactions, with or without assisted digital in the numerator.

use crate::channel::ChannelClass;
use crate::interval::Rate;

channelshift_contract::vocabulary! {
    /// Whether assisted digital counts as digital in the numerator.
    #[derive(Default)]
    TakeUpDefinition, "take-up definition" {
        /// Current GDS guidance: a transaction made through the digital service with help
        /// counts as digital. The default.
        #[default]
        Current = "current",
        /// The 2014 definition: assisted digital leaves the numerator but stays in the
        /// denominator.
        Gds2014 = "gds_2014",
    }
}

/// Completed transactions (interaction `transaction`, outcome completed or ineligible) through
/// channels of one class, split by the assisted flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompletedTransactions {
    pub class: ChannelClass,
    /// Made through the digital service with help from staff or a volunteer. Only meaningful
    /// for digital self-service; ignored for other classes.
    pub assisted: bool,
    pub count: u64,
}

/// Digital take-up as a [`Rate`]: numerator, denominator, % and Wilson interval. Rows of the
/// same class and flag may repeat; they are summed.
pub fn digital_take_up(completed: &[CompletedTransactions], definition: TakeUpDefinition) -> Rate {
    let counts_as_digital = |row: &CompletedTransactions| {
        row.class == ChannelClass::DigitalSelfService
            && (definition == TakeUpDefinition::Current || !row.assisted)
    };
    let digital = completed
        .iter()
        .filter(|row| counts_as_digital(row))
        .map(|row| row.count)
        .sum();
    let all = completed.iter().map(|row| row.count).sum();
    Rate::new(digital, all)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 60 unassisted and 10 assisted digital self-service, 25 telephone, 5 face to face:
    /// 100 completed transactions in all.
    fn completed() -> Vec<CompletedTransactions> {
        let row = |class, assisted, count| CompletedTransactions {
            class,
            assisted,
            count,
        };
        vec![
            row(ChannelClass::DigitalSelfService, false, 60),
            row(ChannelClass::DigitalSelfService, true, 10),
            row(ChannelClass::Telephone, false, 25),
            // An assisted flag on a phone call means nothing for take-up.
            row(ChannelClass::FaceToFace, true, 5),
        ]
    }

    #[test]
    fn assisted_digital_counts_as_digital_by_default() {
        // (60 + 10) ÷ 100 = 70%.
        let take_up = digital_take_up(&completed(), TakeUpDefinition::default());
        assert_eq!(take_up.numerator(), 70);
        assert_eq!(take_up.denominator(), 100);
        assert_eq!(take_up.percent(), Some(70.0));
        assert!(take_up.interval().is_some());
    }

    #[test]
    fn assisted_digital_leaves_numerator_under_2014_definition() {
        // 60 ÷ 100 = 60%: the 10 assisted stay in the denominator.
        let take_up = digital_take_up(&completed(), TakeUpDefinition::Gds2014);
        assert_eq!(take_up.numerator(), 60);
        assert_eq!(take_up.denominator(), 100);
        assert_eq!(take_up.percent(), Some(60.0));
    }

    #[test]
    fn no_completed_transactions_gives_no_take_up_rather_than_zero() {
        let take_up = digital_take_up(&[], TakeUpDefinition::Current);
        assert_eq!(take_up.percent(), None);
    }
}
