//! The 95% Wilson score interval for a proportion, and [`Rate`]: the numerator, denominator,
//! percentage and interval that every published percentage carries.

use serde::Serialize;

/// The standard normal quantile for a two-sided 95% interval.
pub const Z_95: f64 = 1.959963984540054;

/// A confidence interval, both ends included. Its unit is the unit of the figure it belongs to:
/// a proportion in [0, 1] from [`wilson_interval`], percent in a [`Rate`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

/// The 95% Wilson score interval for `successes` out of `n`, as proportions in [0, 1].
///
/// `None` when `n` is 0 (no evidence at all) or when `successes > n` (not a proportion).
/// Wilson rather than the normal approximation because council cells are often small and
/// near 0% or 100%, where the normal interval leaves [0, 1] or collapses to a point.
pub fn wilson_interval(successes: u64, n: u64) -> Option<Interval> {
    if n == 0 || successes > n {
        return None;
    }
    let n_f = n as f64;
    let p = successes as f64 / n_f;
    let z2 = Z_95 * Z_95;
    let denominator = 1.0 + z2 / n_f;
    let centre = (p + z2 / (2.0 * n_f)) / denominator;
    let half_width = Z_95 * (p * (1.0 - p) / n_f + z2 / (4.0 * n_f * n_f)).sqrt() / denominator;
    // At 0 and n the bound is exactly 0 or 1 in theory; pin it so rounding cannot print -0.0%.
    let low = if successes == 0 {
        0.0
    } else {
        (centre - half_width).max(0.0)
    };
    let high = if successes == n {
        1.0
    } else {
        (centre + half_width).min(1.0)
    };
    Some(Interval { low, high })
}

/// A percentage with its evidence: `numerator ÷ denominator × 100`, the denominator (n) and the
/// 95% Wilson interval, in percent.
///
/// `percent` and `interval` are `None` when the denominator is 0: nothing to divide, which is
/// not the same as 0%. A numerator above its denominator (e.g. a response rate where responses
/// in the period rate contacts from an earlier one) still has a percentage but no interval,
/// because it is not a proportion.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rate {
    numerator: u64,
    denominator: u64,
    percent: Option<f64>,
    interval: Option<Interval>,
}

impl Rate {
    /// The rate of `numerator` over `denominator`.
    pub fn new(numerator: u64, denominator: u64) -> Rate {
        // Multiplying before dividing keeps whole percentages exact (3 of 5 is 60.0, not
        // 59.99…), which matters when a figure is compared with a target.
        let percent = (denominator > 0).then(|| numerator as f64 * 100.0 / denominator as f64);
        let interval = wilson_interval(numerator, denominator).map(|proportion| Interval {
            low: proportion.low * 100.0,
            high: proportion.high * 100.0,
        });
        Rate {
            numerator,
            denominator,
            percent,
            interval,
        }
    }

    /// The count that met the definition.
    pub fn numerator(&self) -> u64 {
        self.numerator
    }

    /// The count it is a share of: the n published beside the percentage.
    pub fn denominator(&self) -> u64 {
        self.denominator
    }

    /// The percentage, `None` when the denominator is 0.
    pub fn percent(&self) -> Option<f64> {
        self.percent
    }

    /// The 95% Wilson interval in percent, `None` when the denominator is 0 or the numerator
    /// exceeds it.
    pub fn interval(&self) -> Option<Interval> {
        self.interval
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Asserts two floats agree to within `tolerance`.
    pub(crate) fn assert_close(actual: f64, expected: f64, tolerance: f64) {
        assert!(
            (actual - expected).abs() <= tolerance,
            "expected {expected} ± {tolerance}, got {actual}"
        );
    }

    #[test]
    fn wilson_interval_for_8_of_10_matches_hand_working() {
        // p = 0.8, z² = 3.8414588, z²/n = 0.38414588, denominator = 1.38414588
        // centre = (0.8 + 0.19207294) / 1.38414588 = 0.71674016
        // half = 1.95996398 × √(0.016 + 0.00960365) / 1.38414588
        //      = 1.95996398 × 0.16001140 / 1.38414588 = 0.22657769
        // → (0.49016247, 0.94331785) → (0.4902, 0.9433) to 4 d.p.
        let interval = wilson_interval(8, 10).expect("n > 0");
        assert_close(interval.low, 0.4902, 0.00005);
        assert_close(interval.high, 0.9433, 0.00005);
    }

    #[test]
    fn wilson_interval_is_none_without_observations() {
        assert_eq!(wilson_interval(0, 0), None);
        assert_eq!(wilson_interval(11, 10), None);
    }

    #[test]
    fn wilson_interval_at_zero_and_all_stays_inside_unit_range() {
        // 0 of 10: centre = 0.19207294 / 1.38414588 = 0.13876640 and the half width is the
        // same, so low = 0 and high = 2 × 0.13876640 = 0.27753280.
        let none = wilson_interval(0, 10).expect("n > 0");
        assert_eq!(none.low, 0.0);
        assert_close(none.high, 0.2775, 0.00005);
        // 10 of 10 mirrors it: (1 − 0.27753280, 1) = (0.72246720, 1).
        let all = wilson_interval(10, 10).expect("n > 0");
        assert_close(all.low, 0.7225, 0.00005);
        assert_eq!(all.high, 1.0);
    }

    #[test]
    fn rate_carries_percent_n_and_interval_in_percent() {
        let rate = Rate::new(8, 10);
        assert_eq!(rate.numerator(), 8);
        assert_eq!(rate.denominator(), 10);
        assert_eq!(rate.percent(), Some(80.0));
        let interval = rate.interval().expect("n > 0");
        assert_close(interval.low, 49.02, 0.005);
        assert_close(interval.high, 94.33, 0.005);
    }

    #[test]
    fn rate_over_nothing_has_no_percentage_rather_than_zero() {
        let rate = Rate::new(0, 0);
        assert_eq!(rate.percent(), None);
        assert_eq!(rate.interval(), None);
    }

    #[test]
    fn whole_percentages_are_exact() {
        assert_eq!(Rate::new(3, 5).percent(), Some(60.0));
        assert_eq!(Rate::new(7, 100).percent(), Some(7.0));
    }

    #[test]
    fn rate_above_one_hundred_percent_has_no_interval() {
        let rate = Rate::new(12, 10);
        assert_eq!(rate.percent(), Some(120.0));
        assert_eq!(rate.interval(), None);
    }
}
