//! Small-number suppression for anything published: a count above zero and below the threshold,
//! and any rate whose denominator is, is withheld and marked — never shown as zero. No cases at
//! all is not withheld: it is published as a count of 0, or a rate with no value ("no data").

use serde::Serialize;

use crate::interval::Rate;
use crate::satisfaction::NetScore;

/// The default threshold: counts of 1–9 are suppressed.
pub const DEFAULT_THRESHOLD: u64 = 10;

/// A figure as published: shown, or withheld because it rests on too few cases.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Published<T> {
    Shown(T),
    Suppressed,
}

impl<T> Published<T> {
    /// The figure when shown.
    pub fn shown(self) -> Option<T> {
        match self {
            Published::Shown(value) => Some(value),
            Published::Suppressed => None,
        }
    }

    /// Whether the figure was withheld.
    pub fn is_suppressed(&self) -> bool {
        matches!(self, Published::Suppressed)
    }
}

/// The suppression rule with its threshold (a threshold of 0 suppresses nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Suppression {
    /// The smallest count, or denominator, that may be shown.
    pub threshold: u64,
}

impl Default for Suppression {
    fn default() -> Self {
        Suppression {
            threshold: DEFAULT_THRESHOLD,
        }
    }
}

impl Suppression {
    /// A count, suppressed when below the threshold (so a zero count is suppressed too).
    pub fn count(&self, count: u64) -> Published<u64> {
        self.publish(count, count)
    }

    /// A rate, suppressed when its denominator is below the threshold. The rate's numerator
    /// travels with it: a caller that prints the numerator as a count of its own should pass it
    /// through [`Suppression::count`] as well.
    pub fn rate(&self, rate: Rate) -> Published<Rate> {
        self.publish(rate, rate.denominator())
    }

    /// A net score (NPS, GovMetric net), suppressed when its n is below the threshold.
    pub fn net_score(&self, score: NetScore) -> Published<NetScore> {
        self.publish(score, score.n())
    }

    fn publish<T>(&self, figure: T, cases: u64) -> Published<T> {
        // Nothing to protect in no cases: "no data", not "withheld".
        if cases > 0 && cases < self.threshold {
            Published::Suppressed
        } else {
            Published::Shown(figure)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::Instrument;
    use crate::satisfaction::{satisfaction, Satisfaction, ScoreCount};

    #[test]
    fn count_of_nine_is_suppressed_and_ten_is_shown() {
        let rule = Suppression::default();
        assert_eq!(rule.count(9), Published::Suppressed);
        assert_eq!(rule.count(10), Published::Shown(10));
    }

    #[test]
    fn no_cases_are_no_data_not_withheld() {
        let rule = Suppression::default();
        assert_eq!(rule.count(0), Published::Shown(0));
        assert!(rule.count(1).is_suppressed());
        let none = rule.rate(Rate::new(0, 0)).shown().expect("shown");
        assert_eq!(none.percent(), None, "a rate over nothing has no value");
    }

    #[test]
    fn rate_with_denominator_nine_is_suppressed_and_ten_is_shown() {
        let rule = Suppression::default();
        assert_eq!(rule.rate(Rate::new(9, 9)), Published::Suppressed);
        // The denominator decides: 2 of 10 is shown even though 2 is a small count.
        assert_eq!(
            rule.rate(Rate::new(2, 10)).shown().map(|r| r.percent()),
            Some(Some(20.0))
        );
    }

    #[test]
    fn net_score_is_suppressed_by_its_n() {
        let nine = [ScoreCount {
            score: 10,
            responses: 9,
        }];
        let Ok(Satisfaction::Nps11 { nps, .. }) = satisfaction(Instrument::Nps11, &nine) else {
            panic!("nps11 gives nps11 figures");
        };
        assert!(Suppression::default().net_score(nps).is_suppressed());
    }

    #[test]
    fn threshold_is_configurable() {
        let rule = Suppression { threshold: 5 };
        assert_eq!(rule.count(5), Published::Shown(5));
        assert_eq!(rule.count(4), Published::Suppressed);
    }
}
