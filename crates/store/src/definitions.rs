//! The KPI definitions of each council on the platform, published to
//! reference tables in the rollups' database so that the dashboards compute
//! with the same channel classes, unit costs, targets and thresholds as the
//! API and the packs (`channelshift-api publish-definitions`).
//!
//! A publication is a generation: its rows are written to every
//! `definitions_*` table, then its number to `definitions_generations`.
//! The `council_*` views show the rows of the newest recorded generation
//! only, so on one server (or a replicated one) a reader never sees half a
//! publication; on a sharded cluster the inserts must be synchronous for
//! that to hold (deploy/SCALING.md).

use crate::connection::{Store, StoreError};
use chrono::NaiveDate;
use clickhouse::Row;
use serde::{Deserialize, Serialize};

/// Every configured council's definitions.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Definitions {
    pub councils: Vec<CouncilDefinitions>,
}

/// One council's definitions.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CouncilDefinitions {
    pub council: String,
    pub name: String,
    pub take_up_definition: String,
    pub suppression_threshold: u64,
    pub satisfaction_instrument: String,
    pub satisfaction_measure: String,
    pub baseline: Option<(NaiveDate, NaiveDate)>,
    /// Every channel with its class.
    pub channel_classes: Vec<(String, String)>,
    pub unit_costs: Vec<UnitCostDefinition>,
    pub targets: Vec<TargetDefinition>,
    /// Numeric settings by name (`repeat_window_days`).
    pub numbers: Vec<(String, f64)>,
}

/// A channel's cost per contact from `from` to `to` (inclusive).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UnitCostDefinition {
    pub channel: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub pence: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TargetDefinition {
    pub kpi: String,
    pub target: f64,
    pub tolerance: f64,
    pub polarity: String,
}

#[derive(Row, Serialize)]
struct GenerationRow {
    generation: u64,
    published_at: u32,
    fingerprint: String,
}

#[derive(Row, Serialize)]
struct CouncilRow<'a> {
    generation: u64,
    council: &'a str,
    name: &'a str,
    take_up_definition: &'a str,
    suppression_threshold: u64,
    satisfaction_instrument: &'a str,
    satisfaction_measure: &'a str,
    has_baseline: u8,
    baseline_from: u16,
    baseline_to: u16,
}

#[derive(Row, Serialize)]
struct ChannelRow<'a> {
    generation: u64,
    council: &'a str,
    channel: &'a str,
    channel_class: &'a str,
}

#[derive(Row, Serialize)]
struct UnitCostRow<'a> {
    generation: u64,
    council: &'a str,
    channel: &'a str,
    effective_from: u16,
    effective_to: u16,
    pence: i64,
}

#[derive(Row, Serialize)]
struct TargetRow<'a> {
    generation: u64,
    council: &'a str,
    kpi: &'a str,
    target: f64,
    tolerance: f64,
    polarity: &'a str,
}

#[derive(Row, Serialize)]
struct NumberRow<'a> {
    generation: u64,
    council: &'a str,
    setting: &'a str,
    value: f64,
}

#[derive(Row, Deserialize)]
struct Fingerprint {
    fingerprint: String,
}

/// A date as ClickHouse's `Date` holds it: days since 1970-01-01, within
/// its range (1970-01-01 to 2149-06-06).
fn days(date: NaiveDate) -> u16 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    u16::try_from((date - epoch).num_days().max(0)).unwrap_or(u16::MAX)
}

impl Store {
    /// Publishes `definitions` as a new generation (milliseconds since the
    /// epoch) recorded with `fingerprint`; returns the generation.
    pub async fn publish_definitions(
        &self,
        definitions: &Definitions,
        fingerprint: &str,
    ) -> Result<u64, StoreError> {
        let now = chrono::Utc::now();
        let generation = self
            .next_number("definitions_generations", "generation")
            .await?;
        let rollups = self.rollups_client();
        let mut councils = rollups
            .insert::<CouncilRow<'_>>("definitions_councils")
            .await?;
        for council in &definitions.councils {
            let (has_baseline, from, to) = match council.baseline {
                Some((from, to)) => (1, days(from), days(to)),
                None => (0, 0, 0),
            };
            councils
                .write(&CouncilRow {
                    generation,
                    council: &council.council,
                    name: &council.name,
                    take_up_definition: &council.take_up_definition,
                    suppression_threshold: council.suppression_threshold,
                    satisfaction_instrument: &council.satisfaction_instrument,
                    satisfaction_measure: &council.satisfaction_measure,
                    has_baseline,
                    baseline_from: from,
                    baseline_to: to,
                })
                .await?;
        }
        councils.end().await?;
        let mut channels = rollups
            .insert::<ChannelRow<'_>>("definitions_channel_classes")
            .await?;
        for council in &definitions.councils {
            for (channel, class) in &council.channel_classes {
                channels
                    .write(&ChannelRow {
                        generation,
                        council: &council.council,
                        channel,
                        channel_class: class,
                    })
                    .await?;
            }
        }
        channels.end().await?;
        let mut costs = rollups
            .insert::<UnitCostRow<'_>>("definitions_unit_costs")
            .await?;
        for council in &definitions.councils {
            for cost in &council.unit_costs {
                costs
                    .write(&UnitCostRow {
                        generation,
                        council: &council.council,
                        channel: &cost.channel,
                        effective_from: days(cost.from),
                        effective_to: days(cost.to),
                        pence: cost.pence,
                    })
                    .await?;
            }
        }
        costs.end().await?;
        let mut targets = rollups
            .insert::<TargetRow<'_>>("definitions_targets")
            .await?;
        for council in &definitions.councils {
            for target in &council.targets {
                targets
                    .write(&TargetRow {
                        generation,
                        council: &council.council,
                        kpi: &target.kpi,
                        target: target.target,
                        tolerance: target.tolerance,
                        polarity: &target.polarity,
                    })
                    .await?;
            }
        }
        targets.end().await?;
        let mut numbers = rollups
            .insert::<NumberRow<'_>>("definitions_numbers")
            .await?;
        for council in &definitions.councils {
            for (setting, value) in &council.numbers {
                numbers
                    .write(&NumberRow {
                        generation,
                        council: &council.council,
                        setting,
                        value: *value,
                    })
                    .await?;
            }
        }
        numbers.end().await?;
        // Last: the views show this generation from now on.
        let mut marker = rollups
            .insert::<GenerationRow>("definitions_generations")
            .await?;
        marker
            .write(&GenerationRow {
                generation,
                published_at: u32::try_from(now.timestamp()).unwrap_or(u32::MAX),
                fingerprint: fingerprint.to_string(),
            })
            .await?;
        marker.end().await?;
        Ok(generation)
    }

    /// The fingerprint of the newest published generation; `None` before any.
    pub async fn published_definitions(&self) -> Result<Option<String>, StoreError> {
        let rows = self
            .query(&format!(
                "SELECT fingerprint FROM {} ORDER BY generation DESC LIMIT 1",
                self.rollup("definitions_generations")
            ))
            .fetch_all::<Fingerprint>()
            .await?;
        Ok(rows.into_iter().next().map(|row| row.fingerprint))
    }
}
