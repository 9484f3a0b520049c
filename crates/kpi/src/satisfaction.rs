//! Satisfaction per instrument from score counts (never averaged across instruments), each
//! percentage with n and a Wilson interval, and the response rate.

use serde::Serialize;

use crate::channel::Instrument;
use crate::interval::{Interval, Rate, Z_95};

/// How many responses gave one score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScoreCount {
    pub score: u8,
    pub responses: u64,
}

/// A score the instrument cannot give; the wire contract should have rejected it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("score {score} is outside the {instrument} scale")]
pub struct ScoreOutOfRange {
    pub instrument: Instrument,
    pub score: u8,
}

/// A net score in percentage points, −100 to 100: the share of positive responses minus the
/// share of negative ones (NPS; GovMetric net).
///
/// `interval` is a 95% Wald interval for a difference of two shares of one sample:
/// variance = (p₊ + p₋ − (p₊ − p₋)²) ÷ n, bounds clamped to ±100. It is an approximation that
/// narrows to a point when every response is in one group; for small n read the Wilson intervals
/// of the two shares instead. `value` and `interval` are `None` when there are no responses.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct NetScore {
    value: Option<f64>,
    n: u64,
    interval: Option<Interval>,
}

impl NetScore {
    /// The net score of `positive` and `negative` responses out of `n`.
    fn new(positive: u64, negative: u64, n: u64) -> NetScore {
        if n == 0 {
            return NetScore {
                value: None,
                n,
                interval: None,
            };
        }
        let n_f = n as f64;
        let (p_positive, p_negative) = (positive as f64 / n_f, negative as f64 / n_f);
        let net = p_positive - p_negative;
        let variance = (p_positive + p_negative - net * net).max(0.0) / n_f;
        let half_width = Z_95 * variance.sqrt();
        NetScore {
            value: Some((positive as f64 - negative as f64) * 100.0 / n_f),
            n,
            interval: Some(Interval {
                low: (net - half_width).max(-1.0) * 100.0,
                high: (net + half_width).min(1.0) * 100.0,
            }),
        }
    }

    /// The net score in percentage points, `None` without responses.
    pub fn value(&self) -> Option<f64> {
        self.value
    }

    /// The number of responses.
    pub fn n(&self) -> u64 {
        self.n
    }

    /// The approximate 95% interval in percentage points (see the type's documentation).
    pub fn interval(&self) -> Option<Interval> {
        self.interval
    }
}

/// The satisfaction figures of one instrument. Every [`Rate`] has the instrument's responses as
/// its denominator.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "instrument")]
pub enum Satisfaction {
    /// % satisfied: scores 4–5 (GDS).
    #[serde(rename = "csat5")]
    Csat5 { satisfied: Rate },
    /// % good (3), % poor (1) and net = (good − poor) ÷ n.
    #[serde(rename = "govmetric3")]
    Govmetric3 {
        good: Rate,
        poor: Rate,
        net: NetScore,
    },
    /// Promoters (9–10), detractors (0–6) and NPS = % promoters − % detractors.
    #[serde(rename = "nps11")]
    Nps11 {
        promoters: Rate,
        detractors: Rate,
        nps: NetScore,
    },
    /// % scoring 5–7: agreeing the contact was easy.
    #[serde(rename = "ces7")]
    Ces7 { easy: Rate },
}

impl Satisfaction {
    /// The instrument the figures belong to.
    pub fn instrument(&self) -> Instrument {
        match self {
            Satisfaction::Csat5 { .. } => Instrument::Csat5,
            Satisfaction::Govmetric3 { .. } => Instrument::Govmetric3,
            Satisfaction::Nps11 { .. } => Instrument::Nps11,
            Satisfaction::Ces7 { .. } => Instrument::Ces7,
        }
    }

    /// The number of responses (n).
    pub fn responses(&self) -> u64 {
        match self {
            Satisfaction::Csat5 { satisfied: rate }
            | Satisfaction::Govmetric3 { good: rate, .. }
            | Satisfaction::Nps11 {
                promoters: rate, ..
            }
            | Satisfaction::Ces7 { easy: rate } => rate.denominator(),
        }
    }
}

/// The satisfaction figures of `instrument` from the count of responses per score. Scores may
/// repeat (they are summed); a score outside the instrument's scale is an error rather than
/// being dropped, so n always matches the responses given.
pub fn satisfaction(
    instrument: Instrument,
    scores: &[ScoreCount],
) -> Result<Satisfaction, ScoreOutOfRange> {
    let (low, high) = instrument.scale();
    let range = low..=high;
    if let Some(outside) = scores.iter().find(|count| !range.contains(&count.score)) {
        return Err(ScoreOutOfRange {
            instrument,
            score: outside.score,
        });
    }
    let n = scores.iter().map(|count| count.responses).sum();
    let scoring = |low: u8, high: u8| {
        scores
            .iter()
            .filter(|count| (low..=high).contains(&count.score))
            .map(|count| count.responses)
            .sum::<u64>()
    };
    Ok(match instrument {
        Instrument::Csat5 => Satisfaction::Csat5 {
            satisfied: Rate::new(scoring(4, 5), n),
        },
        Instrument::Govmetric3 => {
            let (good, poor) = (scoring(3, 3), scoring(1, 1));
            Satisfaction::Govmetric3 {
                good: Rate::new(good, n),
                poor: Rate::new(poor, n),
                net: NetScore::new(good, poor, n),
            }
        }
        Instrument::Nps11 => {
            let (promoters, detractors) = (scoring(9, 10), scoring(0, 6));
            Satisfaction::Nps11 {
                promoters: Rate::new(promoters, n),
                detractors: Rate::new(detractors, n),
                nps: NetScore::new(promoters, detractors, n),
            }
        }
        Instrument::Ces7 => Satisfaction::Ces7 {
            easy: Rate::new(scoring(5, 7), n),
        },
    })
}

/// Response rate: responses ÷ contacts in the same cell. It can exceed 100% when responses in a
/// period rate contacts from an earlier one; such a rate has no interval.
pub fn response_rate(responses: u64, contacts: u64) -> Rate {
    Rate::new(responses, contacts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interval::tests::assert_close;

    fn counts(pairs: &[(u8, u64)]) -> Vec<ScoreCount> {
        pairs
            .iter()
            .map(|&(score, responses)| ScoreCount { score, responses })
            .collect()
    }

    #[test]
    fn csat5_satisfied_is_scores_four_and_five() {
        // 1:2, 2:3, 3:5, 4:20, 5:10 → n = 40, satisfied = 30 → 75%.
        let scores = counts(&[(1, 2), (2, 3), (3, 5), (4, 20), (5, 10)]);
        let Ok(Satisfaction::Csat5 { satisfied }) = satisfaction(Instrument::Csat5, &scores) else {
            panic!("csat5 gives csat5 figures");
        };
        assert_eq!(satisfied.numerator(), 30);
        assert_eq!(satisfied.denominator(), 40);
        assert_eq!(satisfied.percent(), Some(75.0));
    }

    #[test]
    fn govmetric3_net_is_good_minus_poor_over_n() {
        // poor 10, average 30, good 60 → n = 100, good 60%, poor 10%, net (60 − 10)/100 = 50.
        // Interval: p₊ = .6, p₋ = .1, var = (.7 − .25)/100 = .0045, half = 1.96 × .067082 =
        // .131478 → (36.85, 63.15).
        let scores = counts(&[(1, 10), (2, 30), (3, 60)]);
        let figures = satisfaction(Instrument::Govmetric3, &scores).expect("scores in range");
        let Satisfaction::Govmetric3 { good, poor, net } = figures else {
            panic!("govmetric3 gives govmetric3 figures");
        };
        assert_eq!(good.percent(), Some(60.0));
        assert_eq!(poor.percent(), Some(10.0));
        assert_eq!(net.value(), Some(50.0));
        assert_eq!(net.n(), 100);
        let interval = net.interval().expect("n > 0");
        assert_close(interval.low, 36.85, 0.005);
        assert_close(interval.high, 63.15, 0.005);
    }

    #[test]
    fn nps_is_promoters_minus_detractors_with_intervals_on_both_shares() {
        // 0–6: 5+5 = 10 detractors, 7–8: 8 passives, 9–10: 12+10 = 22 promoters, n = 40.
        // NPS = 55% − 25% = 30. Promoter share 22/40 has its own Wilson interval.
        let scores = counts(&[(0, 5), (6, 5), (7, 4), (8, 4), (9, 12), (10, 10)]);
        let figures = satisfaction(Instrument::Nps11, &scores).expect("scores in range");
        let Satisfaction::Nps11 {
            promoters,
            detractors,
            nps,
        } = figures
        else {
            panic!("nps11 gives nps11 figures");
        };
        assert_eq!(promoters.percent(), Some(55.0));
        assert_eq!(detractors.percent(), Some(25.0));
        assert_eq!(nps.value(), Some(30.0));
        assert!(promoters.interval().is_some() && detractors.interval().is_some());
        assert_eq!(figures.responses(), 40);
    }

    #[test]
    fn ces7_counts_scores_five_to_seven() {
        // 4 is neutral: 1–4: 9, 5–7: 21 → 21/30 = 70%.
        let scores = counts(&[(1, 1), (4, 8), (5, 6), (6, 7), (7, 8)]);
        let Ok(Satisfaction::Ces7 { easy }) = satisfaction(Instrument::Ces7, &scores) else {
            panic!("ces7 gives ces7 figures");
        };
        assert_eq!(easy.percent(), Some(70.0));
    }

    #[test]
    fn score_outside_the_instruments_scale_is_an_error() {
        assert_eq!(
            satisfaction(Instrument::Csat5, &counts(&[(0, 3)])),
            Err(ScoreOutOfRange {
                instrument: Instrument::Csat5,
                score: 0
            })
        );
        // 0 is valid for NPS.
        assert!(satisfaction(Instrument::Nps11, &counts(&[(0, 3)])).is_ok());
    }

    #[test]
    fn no_responses_gives_no_net_score() {
        let figures = satisfaction(Instrument::Nps11, &[]).expect("nothing out of range");
        let Satisfaction::Nps11 { nps, promoters, .. } = figures else {
            panic!("nps11 gives nps11 figures");
        };
        assert_eq!(nps.value(), None);
        assert_eq!(nps.interval(), None);
        assert_eq!(promoters.percent(), None);
    }

    #[test]
    fn response_rate_is_responses_over_contacts() {
        assert_eq!(response_rate(12, 240).percent(), Some(5.0));
    }
}
