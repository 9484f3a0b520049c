//! A council's reporting policy: the settings its figures are computed
//! under (`[kpi]` in the configuration), checked once and held as the
//! values the KPI maths takes.

use channelshift_kpi::catalogue::{Headline, Kpi, TargetScope};
use channelshift_kpi::channel::{Channel, ChannelClass, ChannelClasses};
use channelshift_kpi::cost::{Pence, UnitCosts};
use channelshift_kpi::opportunity::OpportunityRules;
use channelshift_kpi::rag::Target;
use channelshift_kpi::savings::share_of_year_due;
use channelshift_kpi::suppression::Suppression;
use channelshift_kpi::take_up::TakeUpDefinition;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What every report is computed under.
#[derive(Clone, Debug)]
pub struct Policy {
    pub channel_classes: ChannelClasses,
    pub take_up_definition: TakeUpDefinition,
    pub suppression: Suppression,
    pub unit_costs: UnitCosts,
    pub targets: BTreeMap<Kpi, Target>,
    pub baseline: Option<Baseline>,
    /// How long ago a pack's as-of must be (see [`KpiSettings::pack_settle_seconds`]).
    pub pack_settle_seconds: i64,
    /// The council's display name, when the platform configures it.
    pub name: Option<String>,
    /// The satisfaction measure the scorecard and packs headline.
    pub satisfaction: Headline,
    /// The settings this policy was made from (a pack's process gets them).
    pub settings: KpiSettings,
    /// First-contact resolution's repeat window, days.
    pub repeat_window_days: u32,
    /// The savings target's monthly profile, % a month from April.
    pub savings_profile: Option<[f64; 12]>,
    /// How channel-shift opportunities are benchmarked and judged.
    pub opportunity: OpportunityRules,
}

impl Policy {
    /// Checks the settings; an unusable one is an error naming it.
    pub fn new(settings: &KpiSettings) -> anyhow::Result<Self> {
        Ok(Self {
            channel_classes: settings.channel_classes()?,
            take_up_definition: settings.take_up_definition()?,
            suppression: Suppression {
                threshold: settings.suppression_threshold,
            },
            unit_costs: settings.unit_costs()?,
            targets: settings.targets.clone(),
            baseline: settings.baseline()?,
            pack_settle_seconds: settings.pack_settle_seconds.max(0),
            name: settings.name.clone(),
            satisfaction: settings.satisfaction.headline()?,
            settings: settings.clone(),
            repeat_window_days: settings.repeat_window_days()?,
            savings_profile: settings.savings_profile()?,
            opportunity: settings.opportunity.rules()?,
        })
    }

    /// The row that is `kpi`'s headline on the scorecard: the council's
    /// satisfaction measure, else the catalogue's.
    pub fn headline(&self, kpi: Kpi) -> Option<Headline> {
        match kpi {
            Kpi::Satisfaction => Some(self.satisfaction),
            other => other.spec().scorecard,
        }
    }

    /// The target `kpi`'s figure up to `to` is held to: the configured one,
    /// or for a financial-year-to-date KPI (savings) the annual target and
    /// tolerance profiled pro rata to `to` (the days of the financial year up
    /// to and including it, or by the council's `savings_profile`), so the
    /// first quarter is not red by construction.
    pub fn target_on(&self, kpi: Kpi, to: NaiveDate) -> Option<Target> {
        let target = *self.targets.get(&kpi)?;
        match kpi.spec().targets {
            TargetScope::FinancialYearToDate => {
                Some(target.pro_rata(share_of_year_due(self.savings_profile.as_ref(), to)))
            }
            TargetScope::Period | TargetScope::None => Some(target),
        }
    }

    /// The row a pack's trend of `kpi` plots.
    pub fn trend_headline(&self, kpi: Kpi) -> Headline {
        match kpi {
            Kpi::Satisfaction => self.satisfaction,
            other => other.spec().trend.headline,
        }
    }

    /// What a pack's trend of `kpi` plots, in plain English.
    pub fn trend_measure(&self, kpi: Kpi) -> &'static str {
        let satisfaction = SATISFACTION_MEASURES
            .iter()
            .find(|(instrument, measure, _)| {
                self.satisfaction
                    == Headline::Measure {
                        instrument,
                        measure,
                    }
            });
        match (kpi, satisfaction) {
            (Kpi::Satisfaction, Some((_, _, text))) => text,
            _ => kpi.spec().trend.measure,
        }
    }

    /// How the council is named in packs and on the scorecard:
    /// "Exeter City Council (E07000041)", or the code alone without a name.
    pub fn label(&self, council: &str) -> String {
        match &self.name {
            Some(name) => format!("{name} ({council})"),
            None => council.to_string(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KpiSettings {
    /// `current` (assisted digital counts as digital) or `gds_2014`.
    #[serde(default = "default_take_up_definition")]
    pub take_up_definition: String,
    /// Counts below this, and rates over denominators below it, are suppressed.
    #[serde(default = "default_suppression_threshold")]
    pub suppression_threshold: u64,
    /// Per KPI (`digital-take-up`, `satisfaction`, …): target, tolerance, polarity.
    /// A name that is not a KPI is a start-up error.
    #[serde(default)]
    pub targets: BTreeMap<Kpi, Target>,
    /// Effective-dated unit costs; when absent, Socitm 2012's defaults.
    #[serde(default)]
    pub unit_costs: Option<Vec<UnitCostEntry>>,
    /// The period efficiency savings are measured against.
    #[serde(default)]
    pub baseline: Option<Baseline>,
    /// Channels moved out of their default class, e.g. `kiosk = "digital_assisted"`.
    #[serde(default)]
    pub channel_classes: BTreeMap<String, String>,
    /// A pack may be "as of" an instant at least this many seconds ago: by
    /// then every row ingest stamped earlier is stored (an ingest write
    /// attempt lasts at most its `attempt_timeout_seconds`, 60 by default:
    /// keep this above it), so the pack can be reproduced exactly.
    #[serde(default = "default_pack_settle_seconds")]
    pub pack_settle_seconds: i64,
    /// The council's display name ("Exeter City Council"), set in its
    /// `[councils.<GSS>]` block.
    #[serde(default)]
    pub name: Option<String>,
    /// The satisfaction measure the scorecard headlines and its target is
    /// held to: `csat5`/`satisfied` (default), `govmetric3`/`good` or `net`,
    /// `nps11`/`nps`, `ces7`/`easy`.
    #[serde(default)]
    pub satisfaction: SatisfactionHeadline,
    /// First-contact resolution's repeat window, in days: a journey is
    /// resolved at first contact when no further contact of it comes
    /// within this many days (1 to 90).
    #[serde(default = "default_repeat_window_days")]
    pub repeat_window_days: u32,
    /// Direction of travel says "no significant change" when the earlier
    /// figure lies inside this figure's 95% interval.
    #[serde(default)]
    pub direction_significance: bool,
    /// How the annual savings target is spread over the financial year:
    /// 12 percentages, April to March, adding up to 100. Without it the
    /// target accrues pro rata by day.
    #[serde(default)]
    pub savings_profile: Option<Vec<f64>>,
    /// How channel-shift opportunities are judged (`[kpi.opportunity]`).
    #[serde(default)]
    pub opportunity: OpportunitySettings,
    /// Whether the council's headline KPIs are compared with the other
    /// councils on the platform that opted in, and it sees theirs; set in
    /// its `[councils.<GSS>]` block.
    #[serde(default)]
    pub benchmarking: bool,
}

/// `[kpi.opportunity]`: the benchmark a service's assisted share is held
/// to, and when a shift is not recommended.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OpportunitySettings {
    /// Every service's benchmark assisted share (0 to 1); without it, the
    /// best quartile of the services of similar volume.
    pub target_assisted_share: Option<f64>,
    /// Services of similar volume: within this factor of each other (≥ 1).
    pub peer_volume_ratio: f64,
    /// The fewest services of similar volume, itself included, a best
    /// quartile is taken over (≥ 2).
    pub min_peers: usize,
    /// Not recommended where digital satisfaction is more than this many
    /// percentage points below assisted (≥ 0).
    pub satisfaction_gap_points: f64,
}

impl Default for OpportunitySettings {
    fn default() -> Self {
        let rules = OpportunityRules::default();
        Self {
            target_assisted_share: rules.target_assisted_share,
            peer_volume_ratio: rules.peer_volume_ratio,
            min_peers: rules.min_peers,
            satisfaction_gap_points: rules.satisfaction_gap_points,
        }
    }
}

impl OpportunitySettings {
    /// The rules, each setting checked.
    pub fn rules(&self) -> anyhow::Result<OpportunityRules> {
        if let Some(share) = self.target_assisted_share {
            anyhow::ensure!(
                (0.0..=1.0).contains(&share),
                "kpi.opportunity.target_assisted_share is {share}: a share from 0 to 1"
            );
        }
        anyhow::ensure!(
            self.peer_volume_ratio >= 1.0 && self.peer_volume_ratio.is_finite(),
            "kpi.opportunity.peer_volume_ratio is {}: a factor of 1 or more",
            self.peer_volume_ratio
        );
        anyhow::ensure!(
            self.min_peers >= 2,
            "kpi.opportunity.min_peers is {}: a quartile needs at least 2 services",
            self.min_peers
        );
        anyhow::ensure!(
            self.satisfaction_gap_points >= 0.0 && self.satisfaction_gap_points.is_finite(),
            "kpi.opportunity.satisfaction_gap_points is {}: 0 points or more",
            self.satisfaction_gap_points
        );
        Ok(OpportunityRules {
            target_assisted_share: self.target_assisted_share,
            peer_volume_ratio: self.peer_volume_ratio,
            min_peers: self.min_peers,
            satisfaction_gap_points: self.satisfaction_gap_points,
        })
    }
}

/// `satisfaction = { instrument = "csat5", measure = "satisfied" }`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SatisfactionHeadline {
    pub instrument: String,
    pub measure: String,
}

impl Default for SatisfactionHeadline {
    fn default() -> Self {
        Self {
            instrument: "csat5".into(),
            measure: "satisfied".into(),
        }
    }
}

/// Each instrument's measures, as the satisfaction KPI's rows name them,
/// with what a trend of it plots in plain English.
pub const SATISFACTION_MEASURES: &[(&str, &str, &str)] = &[
    (
        "csat5",
        "satisfied",
        "Customers satisfied (4 or 5 out of 5), %",
    ),
    (
        "govmetric3",
        "good",
        "Customers rating the service good (3 out of 3), %",
    ),
    (
        "govmetric3",
        "net",
        "GovMetric net score (% good minus % poor), points",
    ),
    (
        "nps11",
        "nps",
        "Net Promoter Score (% 9-10 minus % 0-6), points",
    ),
    (
        "ces7",
        "easy",
        "Customers finding it easy (5 to 7 out of 7), %",
    ),
];

impl SatisfactionHeadline {
    /// The headline row it names; an instrument and measure that do not go
    /// together are an error listing those that do.
    pub fn headline(&self) -> anyhow::Result<Headline> {
        SATISFACTION_MEASURES
            .iter()
            .find(|(instrument, measure, _)| {
                *instrument == self.instrument && *measure == self.measure
            })
            .map(|&(instrument, measure, _)| Headline::Measure {
                instrument,
                measure,
            })
            .ok_or_else(|| {
                let known: Vec<String> = SATISFACTION_MEASURES
                    .iter()
                    .map(|(instrument, measure, _)| format!("{instrument}/{measure}"))
                    .collect();
                anyhow::anyhow!(
                    "kpi.satisfaction: {}/{} is not a measure; one of {}",
                    self.instrument,
                    self.measure,
                    known.join(", ")
                )
            })
    }
}

/// The cost of one contact on `channel` from `from` until the channel's next entry.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct UnitCostEntry {
    pub channel: String,
    pub from: NaiveDate,
    /// Pounds and pence as text, e.g. `"2.83"`.
    pub pounds: String,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Baseline {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl Default for KpiSettings {
    fn default() -> Self {
        Self {
            take_up_definition: default_take_up_definition(),
            suppression_threshold: default_suppression_threshold(),
            targets: BTreeMap::new(),
            unit_costs: None,
            baseline: None,
            channel_classes: BTreeMap::new(),
            pack_settle_seconds: default_pack_settle_seconds(),
            name: None,
            satisfaction: SatisfactionHeadline::default(),
            repeat_window_days: default_repeat_window_days(),
            savings_profile: None,
            direction_significance: false,
            opportunity: OpportunitySettings::default(),
            benchmarking: false,
        }
    }
}

impl KpiSettings {
    pub fn savings_profile(&self) -> anyhow::Result<Option<[f64; 12]>> {
        let Some(months) = &self.savings_profile else {
            return Ok(None);
        };
        let profile: [f64; 12] = months.as_slice().try_into().map_err(|_| {
            anyhow::anyhow!(
                "kpi.savings_profile: {} months given; give 12 percentages, April to March",
                months.len()
            )
        })?;
        anyhow::ensure!(
            profile
                .iter()
                .all(|share| share.is_finite() && *share >= 0.0),
            "kpi.savings_profile: every month's share must be a percentage of 0 or more"
        );
        let total: f64 = profile.iter().sum();
        anyhow::ensure!(
            (total - 100.0).abs() < 0.01,
            "kpi.savings_profile: the months add up to {total}, not 100"
        );
        Ok(Some(profile))
    }

    pub fn repeat_window_days(&self) -> anyhow::Result<u32> {
        anyhow::ensure!(
            (1..=90).contains(&self.repeat_window_days),
            "kpi.repeat_window_days: {} is not a number of days from 1 to 90",
            self.repeat_window_days
        );
        Ok(self.repeat_window_days)
    }

    pub fn take_up_definition(&self) -> anyhow::Result<TakeUpDefinition> {
        self.take_up_definition
            .parse()
            .map_err(|error| anyhow::anyhow!("kpi.take_up_definition: {error}"))
    }

    pub fn unit_costs(&self) -> anyhow::Result<UnitCosts> {
        let Some(entries) = &self.unit_costs else {
            return Ok(UnitCosts::socitm_2012());
        };
        let mut costs = UnitCosts::empty();
        for entry in entries {
            let channel: Channel = entry
                .channel
                .parse()
                .map_err(|error| anyhow::anyhow!("kpi.unit_costs: {error}"))?;
            let pence: Pence = entry.pounds.parse().map_err(|error| {
                anyhow::anyhow!("kpi.unit_costs for {}: {error}", entry.channel)
            })?;
            anyhow::ensure!(
                pence.0 >= 0,
                "kpi.unit_costs for {}: a cost cannot be negative ({})",
                entry.channel,
                entry.pounds
            );
            costs.set(channel, entry.from, pence);
        }
        Ok(costs)
    }

    pub fn channel_classes(&self) -> anyhow::Result<ChannelClasses> {
        let mut classes = ChannelClasses::default();
        for (channel, class) in &self.channel_classes {
            let channel: Channel = channel
                .parse()
                .map_err(|error| anyhow::anyhow!("kpi.channel_classes: {error}"))?;
            let class: ChannelClass = class
                .parse()
                .map_err(|error| anyhow::anyhow!("kpi.channel_classes: {error}"))?;
            classes.set(channel, class);
        }
        Ok(classes)
    }

    pub fn baseline(&self) -> anyhow::Result<Option<Baseline>> {
        match self.baseline {
            Some(baseline) if baseline.from > baseline.to => {
                anyhow::bail!(
                    "kpi.baseline: from {} is after to {}",
                    baseline.from,
                    baseline.to
                )
            }
            other => Ok(other),
        }
    }
}

fn default_repeat_window_days() -> u32 {
    7
}
fn default_pack_settle_seconds() -> i64 {
    120
}
fn default_take_up_definition() -> String {
    "current".into()
}
fn default_suppression_threshold() -> u64 {
    channelshift_kpi::suppression::DEFAULT_THRESHOLD
}
