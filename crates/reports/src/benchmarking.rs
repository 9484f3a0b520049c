//! Benchmarking across the councils on one platform: each headline KPI of a
//! council that opted in (`kpi.benchmarking = true` in its block) against
//! the others that opted in, for the same period: its rank, quartile, the
//! median and how many councils were compared. A council that has not opted
//! in is never compared, counted or named. Councils whose definition of a
//! KPI differs (take-up definition and channel classes, satisfaction
//! measure, repeat window, savings baseline) are never compared on it: the
//! answer says how many were left out and which setting differs.

use crate::councils::Councils;
use crate::error::ReportError;
use crate::policy::Policy;
use crate::scorecard::{scorecard, HeadlineFigure};
use channelshift_contract::CouncilCode;
use channelshift_kpi::catalogue::{Headline, Kpi, Unit};
use channelshift_kpi::period::PeriodKind;
use channelshift_kpi::rag::Polarity;
use channelshift_store::{Source, Store};
use chrono::NaiveDate;
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// The fewest councils, the asking one included, a KPI is compared over:
/// with two, the median and rank would give the other council's figure.
pub const MIN_COUNCILS: usize = 3;

/// One council's standing among the councils that opted in.
#[derive(Debug, Serialize, ToSchema)]
pub struct Benchmarks {
    pub council: String,
    pub council_name: String,
    /// The period compared, "2025-26 Q1".
    pub period: String,
    pub start: NaiveDate,
    pub end: NaiveDate,
    /// Councils that opted in, this one included.
    pub councils_opted_in: usize,
    pub kpis: Vec<Standing>,
}

/// One KPI's standing.
#[derive(Debug, Serialize, ToSchema)]
pub struct Standing {
    pub kpi: Kpi,
    pub unit: Unit,
    pub polarity: Polarity,
    /// This council's figure; `None` when withheld or without data.
    pub value: Option<f64>,
    /// Councils compared, this one included: those that opted in, share
    /// this KPI's definition and have a published figure.
    pub councils_compared: usize,
    /// 1 is best (by the KPI's polarity); tied figures share the best rank.
    pub rank: Option<usize>,
    /// 1 (best quarter) to 4: 1 + ⌊4 × (rank − 1) ÷ (councils − 1)⌋, at most 4.
    pub quartile: Option<u8>,
    /// The median figure of the councils compared.
    pub median: Option<f64>,
    /// Opted-in councils left out because they define this KPI differently.
    pub different_definition: usize,
    pub notes: Vec<String>,
}

/// The settings a KPI's figure depends on, named, with their values: two
/// councils are compared on it only where these are equal.
pub fn definition(kpi: Kpi, policy: &Policy) -> Vec<(&'static str, String)> {
    let settings = &policy.settings;
    match kpi {
        Kpi::DigitalTakeUp => vec![
            ("take-up definition", settings.take_up_definition.clone()),
            (
                "channel classes",
                serde_json::to_string(&policy.channel_classes).unwrap_or_default(),
            ),
        ],
        Kpi::Satisfaction => vec![(
            "satisfaction measure",
            match policy.satisfaction {
                Headline::Measure {
                    instrument,
                    measure,
                } => format!("{instrument}/{measure}"),
                _ => String::new(),
            },
        )],
        Kpi::FirstContactResolution => vec![(
            "repeat window (days)",
            policy.repeat_window_days.to_string(),
        )],
        Kpi::EfficiencySavings => vec![(
            "savings baseline",
            policy
                .baseline
                .map(|baseline| format!("{} to {}", baseline.from, baseline.to))
                .unwrap_or_default(),
        )],
        _ => Vec::new(),
    }
}

/// Rank (1 best, ties share the best), quartile and median of `value`
/// among `values` (which include it), by `polarity`.
pub fn standing(value: f64, values: &[f64], polarity: Polarity) -> (usize, u8, f64) {
    let better = |other: f64| match polarity {
        Polarity::HigherIsBetter => other > value,
        Polarity::LowerIsBetter => other < value,
    };
    let rank = 1 + values.iter().filter(|&&other| better(other)).count();
    let quartile = if values.len() < 2 {
        1
    } else {
        (1 + 4 * (rank - 1) / (values.len() - 1)).min(4) as u8
    };
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    let median = if sorted.len() % 2 == 1 {
        sorted[middle]
    } else {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    };
    (rank, quartile, median)
}

/// Where `council` stands among the councils that opted in, for the period
/// of `kind` containing `date`, from the rollups.
pub async fn benchmarks(
    store: &Store,
    councils: &Councils,
    council: &CouncilCode,
    kind: PeriodKind,
    date: NaiveDate,
) -> Result<Benchmarks, ReportError> {
    let policy = councils.policy(council)?;
    let opted_in: Vec<(&CouncilCode, &Policy)> = councils
        .configured()
        .filter(|(_, policy)| policy.settings.benchmarking)
        .collect();
    if !opted_in.iter().any(|(code, _)| *code == council) {
        return Err(ReportError::bad(
            "council",
            format!(
                "{council} has not opted in to benchmarking: set benchmarking = true in its [councils.{council}] block"
            ),
        ));
    }
    let mut figures: Vec<(&CouncilCode, &Policy, BTreeMap<Kpi, HeadlineFigure>)> = Vec::new();
    let mut own = None;
    for &(code, policy) in &opted_in {
        let card = scorecard(store, policy, code, kind, date, Source::Rollup).await?;
        if code == council {
            own = Some((card.period_label().to_string(), card.period_range()));
        }
        let by_kpi = card
            .figures()
            .into_iter()
            .map(|figure| (figure.kpi, figure))
            .collect();
        figures.push((code, policy, by_kpi));
    }
    let (label, (start, end)) = own.ok_or_else(|| ReportError::bad("council", "not compared"))?;
    let mine = figures
        .iter()
        .find(|(code, _, _)| *code == council)
        .map(|(_, _, by_kpi)| by_kpi.clone())
        .unwrap_or_default();

    let kpis = mine
        .values()
        .map(|figure| {
            let kpi = figure.kpi;
            let wanted = definition(kpi, &policy);
            let mut differing: BTreeMap<&'static str, usize> = BTreeMap::new();
            let mut values = Vec::new();
            let mut different_definition = 0;
            for (_, other_policy, other) in &figures {
                let theirs = definition(kpi, other_policy);
                if theirs != wanted {
                    different_definition += 1;
                    for ((name, ours), (_, their)) in wanted.iter().zip(&theirs) {
                        if ours != their {
                            *differing.entry(*name).or_default() += 1;
                        }
                    }
                    continue;
                }
                if let Some(value) = other.get(&kpi).and_then(|figure| figure.value) {
                    values.push(value);
                }
            }
            let mut notes: Vec<String> = differing
                .iter()
                .map(|(name, count)| {
                    format!(
                        "{count} of the councils that opted in differ in {name} and are not compared on this measure."
                    )
                })
                .collect();
            let compared = figure.value.filter(|_| values.len() >= MIN_COUNCILS);
            if figure.value.is_some() && compared.is_none() {
                notes.push(format!(
                    "Fewer than {MIN_COUNCILS} councils that opted in share this definition and have a published figure, so none is compared."
                ));
            }
            let (rank, quartile, median) = match compared {
                Some(value) => {
                    let (rank, quartile, median) = standing(value, &values, figure.polarity);
                    (Some(rank), Some(quartile), Some(median))
                }
                None => (None, None, None),
            };
            Standing {
                kpi,
                unit: figure.unit,
                polarity: figure.polarity,
                value: figure.value,
                councils_compared: if compared.is_some() { values.len() } else { 0 },
                rank,
                quartile,
                median,
                different_definition,
                notes,
            }
        })
        .collect();
    Ok(Benchmarks {
        council: council.to_string(),
        council_name: policy.label(council.as_str()),
        period: label,
        start,
        end,
        councils_opted_in: opted_in.len(),
        kpis,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_quartile_and_median_by_hand() {
        let values = [60.0, 40.0, 50.0];
        assert_eq!(
            standing(60.0, &values, Polarity::HigherIsBetter),
            (1, 1, 50.0)
        );
        // Rank 2 of 3: 1 + ⌊4 × 1 ÷ 2⌋ = 3.
        assert_eq!(
            standing(50.0, &values, Polarity::HigherIsBetter),
            (2, 3, 50.0)
        );
        assert_eq!(
            standing(40.0, &values, Polarity::HigherIsBetter),
            (3, 4, 50.0)
        );
        // Lower is better: 40 is first.
        assert_eq!(
            standing(40.0, &values, Polarity::LowerIsBetter),
            (1, 1, 50.0)
        );
        // Ties share the best rank; an even count takes the mean of the middle two.
        let values = [10.0, 20.0, 20.0, 30.0];
        assert_eq!(
            standing(20.0, &values, Polarity::HigherIsBetter),
            (2, 2, 20.0)
        );
        assert_eq!(
            standing(30.0, &[10.0, 30.0, 40.0, 50.0], Polarity::HigherIsBetter).2,
            35.0
        );
    }
}
