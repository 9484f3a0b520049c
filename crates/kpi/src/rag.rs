//! Targets and RAG status (Green: target met; Amber: within tolerance of it; Red: outside), and
//! the direction of travel against an earlier value.

use serde::{Deserialize, Serialize};

/// Slack for comparing figures that went through floating point, so a value exactly on its
/// target or tolerance edge is not pushed across it by representation error.
const EPSILON: f64 = 1e-9;

channelshift_contract::vocabulary! {
    /// Which way is good for a KPI.
    Polarity, "polarity" {
        /// e.g. digital take-up, satisfaction.
        HigherIsBetter = "higher_is_better",
        /// e.g. cost per transaction, avoidable contact.
        LowerIsBetter = "lower_is_better",
    }
}

channelshift_contract::vocabulary! {
    /// RAG status against a target.
    Rag, "RAG status" {
        Green = "green",
        Amber = "amber",
        Red = "red",
    }
}

channelshift_contract::vocabulary! {
    /// Direction of travel, already read through the KPI's polarity.
    Direction, "direction of travel" {
        Improved = "improved",
        Worsened = "worsened",
        Unchanged = "unchanged",
        /// The earlier figure lies inside this figure's 95% interval (only
        /// when the council asks for it: `kpi.direction_significance`).
        NoSignificantChange = "no_significant_change",
    }
}

/// A target or tolerance that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvalidTarget {
    #[error("target {0} is not a finite number")]
    NotFinite(f64),
    #[error("tolerance {0} must be a finite number, zero or more")]
    BadTolerance(f64),
}

/// A KPI's target: the value to reach, how far short of it still counts as Amber (in the KPI's
/// own unit, e.g. 5 percentage points or 20 pence — not a relative percentage) and which way is
/// better.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "TargetConfig")]
pub struct Target {
    target: f64,
    tolerance: f64,
    polarity: Polarity,
}

/// The unchecked shape a target is configured in.
#[derive(Deserialize)]
struct TargetConfig {
    target: f64,
    tolerance: f64,
    polarity: Polarity,
}

impl TryFrom<TargetConfig> for Target {
    type Error = InvalidTarget;

    fn try_from(config: TargetConfig) -> Result<Self, Self::Error> {
        Target::new(config.target, config.tolerance, config.polarity)
    }
}

impl Target {
    /// A target of `target`, Amber up to `tolerance` short of it.
    pub fn new(target: f64, tolerance: f64, polarity: Polarity) -> Result<Target, InvalidTarget> {
        if !target.is_finite() {
            return Err(InvalidTarget::NotFinite(target));
        }
        if !tolerance.is_finite() || tolerance < 0.0 {
            return Err(InvalidTarget::BadTolerance(tolerance));
        }
        Ok(Target {
            target,
            tolerance,
            polarity,
        })
    }

    /// The value to reach.
    pub fn target(&self) -> f64 {
        self.target
    }

    /// The share `fraction` (0 to 1) of an annual target and its tolerance:
    /// the target profiled pro rata to a day of the year, which a year-to-date
    /// total is held to (the annual target stays the year's end's).
    pub fn pro_rata(&self, fraction: f64) -> Target {
        let fraction = if fraction.is_finite() {
            fraction.clamp(0.0, 1.0)
        } else {
            1.0
        };
        Target {
            target: self.target * fraction,
            tolerance: self.tolerance * fraction,
            polarity: self.polarity,
        }
    }

    /// How far short of the target still counts as Amber, in the KPI's unit.
    pub fn tolerance(&self) -> f64 {
        self.tolerance
    }

    /// Which way is better.
    pub fn polarity(&self) -> Polarity {
        self.polarity
    }

    /// Green when `value` meets the target, Amber when it falls short by no more than the
    /// tolerance (the edge is Amber), Red otherwise — including a value that is not a number.
    pub fn rag(&self, value: f64) -> Rag {
        // How far the value falls short of the target in the bad direction.
        let shortfall = match self.polarity {
            Polarity::HigherIsBetter => self.target - value,
            Polarity::LowerIsBetter => value - self.target,
        };
        if shortfall <= EPSILON {
            Rag::Green
        } else if shortfall <= self.tolerance + EPSILON {
            Rag::Amber
        } else {
            Rag::Red
        }
    }
}

/// Direction of travel from `previous` (the previous period, or the same period last year) to
/// `current`: any change in the good direction is Improved, any in the bad one Worsened.
pub fn direction_of_travel(current: f64, previous: f64, polarity: Polarity) -> Direction {
    let gain = match polarity {
        Polarity::HigherIsBetter => current - previous,
        Polarity::LowerIsBetter => previous - current,
    };
    if gain > EPSILON {
        Direction::Improved
    } else if gain < -EPSILON {
        Direction::Worsened
    } else {
        Direction::Unchanged
    }
}

/// [`direction_of_travel`], or, when `interval` (this figure's 95%
/// interval, low and high) holds `previous`, no significant change.
pub fn direction_with_significance(
    current: f64,
    previous: f64,
    polarity: Polarity,
    interval: Option<(f64, f64)>,
) -> Direction {
    match interval {
        Some((low, high)) if low <= previous && previous <= high => Direction::NoSignificantChange,
        _ => direction_of_travel(current, previous, polarity),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_previous_figure_inside_the_interval_is_no_significant_change() {
        use Direction::*;
        let interval = Some((52.0, 68.0));
        assert_eq!(
            direction_with_significance(60.0, 55.0, Polarity::HigherIsBetter, interval),
            NoSignificantChange
        );
        assert_eq!(
            direction_with_significance(60.0, 50.0, Polarity::HigherIsBetter, interval),
            Improved
        );
        assert_eq!(
            direction_with_significance(60.0, 55.0, Polarity::HigherIsBetter, None),
            Improved
        );
    }

    #[test]
    fn a_target_profiled_pro_rata_scales_target_and_tolerance() {
        let annual = target(465_000.0, 50_000.0, Polarity::HigherIsBetter);
        let quarter = annual.pro_rata(91.0 / 365.0);
        assert!((quarter.target() - 115_931.506_849).abs() < 1e-3);
        assert!((quarter.tolerance() - 12_465.753_424).abs() < 1e-3);
        assert_eq!(quarter.polarity(), Polarity::HigherIsBetter);
        // Q1's £100k is amber against the profile, red against the year.
        assert_eq!(quarter.rag(110_000.0), Rag::Amber);
        assert_eq!(annual.rag(110_000.0), Rag::Red);
        assert_eq!(annual.pro_rata(2.0).target(), 465_000.0);
    }

    fn target(value: f64, tolerance: f64, polarity: Polarity) -> Target {
        Target::new(value, tolerance, polarity).expect("test targets are valid")
    }

    #[test]
    fn higher_is_better_rag_at_inside_and_outside_tolerance() {
        // Take-up target 60%, tolerance 5 points: ≥ 60 Green, 55 to < 60 Amber, < 55 Red.
        let take_up = target(60.0, 5.0, Polarity::HigherIsBetter);
        assert_eq!(take_up.rag(60.0), Rag::Green);
        assert_eq!(take_up.rag(72.5), Rag::Green);
        assert_eq!(take_up.rag(57.0), Rag::Amber);
        assert_eq!(take_up.rag(55.0), Rag::Amber);
        assert_eq!(take_up.rag(54.9), Rag::Red);
    }

    #[test]
    fn lower_is_better_rag_at_inside_and_outside_tolerance() {
        // Cost per transaction target 200p, tolerance 20p: ≤ 200 Green, ≤ 220 Amber, else Red.
        let cost = target(200.0, 20.0, Polarity::LowerIsBetter);
        assert_eq!(cost.rag(200.0), Rag::Green);
        assert_eq!(cost.rag(150.0), Rag::Green);
        assert_eq!(cost.rag(210.0), Rag::Amber);
        assert_eq!(cost.rag(220.0), Rag::Amber);
        assert_eq!(cost.rag(220.1), Rag::Red);
    }

    #[test]
    fn tolerance_edge_is_amber_despite_floating_point() {
        // 0.3 − 0.1 is 0.19999999999999998 in binary; 0.2 is still exactly on the edge.
        let rate = target(0.3, 0.1, Polarity::HigherIsBetter);
        assert_eq!(rate.rag(0.2), Rag::Amber);
    }

    #[test]
    fn zero_tolerance_has_no_amber() {
        let strict = target(90.0, 0.0, Polarity::HigherIsBetter);
        assert_eq!(strict.rag(90.0), Rag::Green);
        assert_eq!(strict.rag(89.9), Rag::Red);
    }

    #[test]
    fn not_a_number_is_red() {
        assert_eq!(
            target(60.0, 5.0, Polarity::HigherIsBetter).rag(f64::NAN),
            Rag::Red
        );
    }

    #[test]
    fn invalid_targets_are_refused() {
        assert!(Target::new(f64::INFINITY, 1.0, Polarity::HigherIsBetter).is_err());
        assert!(Target::new(60.0, -1.0, Polarity::HigherIsBetter).is_err());
    }

    #[test]
    fn direction_of_travel_reads_through_polarity() {
        use Direction::*;
        assert_eq!(
            direction_of_travel(65.0, 60.0, Polarity::HigherIsBetter),
            Improved
        );
        assert_eq!(
            direction_of_travel(55.0, 60.0, Polarity::HigherIsBetter),
            Worsened
        );
        assert_eq!(
            direction_of_travel(180.0, 200.0, Polarity::LowerIsBetter),
            Improved
        );
        assert_eq!(
            direction_of_travel(210.0, 200.0, Polarity::LowerIsBetter),
            Worsened
        );
        assert_eq!(
            direction_of_travel(60.0, 60.0, Polarity::LowerIsBetter),
            Unchanged
        );
    }
}
