//! A council's reporting policy: the settings its figures are computed
//! under (`[kpi]` in the configuration), checked once and held as the
//! values the KPI maths takes.

use channelshift_kpi::catalogue::Kpi;
use channelshift_kpi::channel::{Channel, ChannelClass, ChannelClasses};
use channelshift_kpi::cost::{Pence, UnitCosts};
use channelshift_kpi::rag::Target;
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
        })
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
        }
    }
}

impl KpiSettings {
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

fn default_pack_settle_seconds() -> i64 {
    120
}
fn default_take_up_definition() -> String {
    "current".into()
}
fn default_suppression_threshold() -> u64 {
    channelshift_kpi::suppression::DEFAULT_THRESHOLD
}
