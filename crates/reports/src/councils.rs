//! The councils on the platform: `[kpi]` is the default block and each
//! `[councils.<GSS>]` block overrides any of its settings for one council
//! (its name, targets, unit costs, channel classes, …). Every figure of a
//! council is computed under its own [`Policy`]; a council's RAG is never
//! measured against another's target.

use crate::calendar::Calendar;
use crate::error::ReportError;
use crate::policy::{KpiSettings, Policy};
use anyhow::Context;
use channelshift_contract::CouncilCode;
use channelshift_kpi::channel::Channel;
use channelshift_store::{CouncilDefinitions, Definitions, TargetDefinition, UnitCostDefinition};
use chrono::NaiveDate;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// `[councils]` as configured: each council's overrides of `[kpi]`, by GSS code.
pub type CouncilBlocks = BTreeMap<String, Value>;

/// Every council's policy.
#[derive(Clone, Debug)]
pub struct Councils {
    default: Arc<Policy>,
    configured: BTreeMap<CouncilCode, Arc<Policy>>,
}

impl Councils {
    /// Checks `[kpi]` and every council's block over it. An unknown setting,
    /// a bad value or a code that is not a GSS code is an error naming the
    /// council and the setting.
    pub fn new(default: &KpiSettings, blocks: &CouncilBlocks) -> anyhow::Result<Self> {
        let mut configured = BTreeMap::new();
        for (code, block) in blocks {
            // Environment variables reach here lower-cased.
            let council = CouncilCode::parse(&code.to_ascii_uppercase())
                .with_context(|| format!("councils.{code}: {}", CouncilCode::RULE))?;
            anyhow::ensure!(
                block.get("pack_settle_seconds").is_none(),
                "councils.{council}: pack_settle_seconds is the platform's (set it in [kpi]): every council's packs settle alike"
            );
            let settings = merged(default, block).with_context(|| format!("councils.{council}"))?;
            anyhow::ensure!(
                settings.name.as_deref().is_some_and(|name| !name.trim().is_empty()),
                "councils.{council}: name is required (the council's display name, e.g. \"Exeter City Council\")"
            );
            let policy = Policy::new(&settings).with_context(|| format!("councils.{council}"))?;
            anyhow::ensure!(
                configured
                    .insert(council.clone(), Arc::new(policy))
                    .is_none(),
                "councils.{council} is configured twice"
            );
        }
        Ok(Self {
            default: Arc::new(Policy::new(default)?),
            configured,
        })
    }

    /// One policy for every council: a platform without `[councils]`.
    pub fn single(policy: Policy) -> Self {
        Self {
            default: Arc::new(policy),
            configured: BTreeMap::new(),
        }
    }

    /// The policy `council`'s figures are computed under. With councils
    /// configured, a council that is not one of them is a bad request; with
    /// none, every council has the `[kpi]` settings.
    pub fn policy(&self, council: &CouncilCode) -> Result<Arc<Policy>, ReportError> {
        if self.configured.is_empty() {
            return Ok(self.default.clone());
        }
        self.configured.get(council).cloned().ok_or_else(|| {
            ReportError::bad(
                "council",
                format!(
                    "{council} is not a council on this platform (configured: {})",
                    self.codes().join(", ")
                ),
            )
        })
    }

    /// Refuses a reporting calendar with a meeting for a council that is not
    /// on the platform.
    pub fn check_calendar(&self, calendar: &Calendar) -> anyhow::Result<()> {
        for entry in &calendar.entries {
            self.policy(&entry.council)
                .map_err(|error| anyhow::anyhow!("packs.calendar: {error}"))?;
        }
        Ok(())
    }

    /// The configured councils and their policies, in code order.
    pub fn configured(&self) -> impl Iterator<Item = (&CouncilCode, &Policy)> {
        self.configured
            .iter()
            .map(|(code, policy)| (code, policy.as_ref()))
    }

    /// The `[kpi]` settings' policy.
    pub fn default_policy(&self) -> &Policy {
        &self.default
    }

    /// What the dashboards compute with: every configured council's
    /// definitions, as published to ClickHouse.
    pub fn definitions(&self) -> Definitions {
        let first_date = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
        let last_date = NaiveDate::from_ymd_opt(2149, 6, 6).unwrap_or_default();
        Definitions {
            councils: self
                .configured()
                .map(|(code, policy)| CouncilDefinitions {
                    council: code.to_string(),
                    name: policy.name.clone().unwrap_or_default(),
                    take_up_definition: policy.take_up_definition.as_str().to_string(),
                    suppression_threshold: policy.suppression.threshold,
                    satisfaction_instrument: policy.settings.satisfaction.instrument.clone(),
                    satisfaction_measure: policy.settings.satisfaction.measure.clone(),
                    baseline: policy.baseline.map(|baseline| (baseline.from, baseline.to)),
                    channel_classes: Channel::ALL
                        .iter()
                        .map(|&channel| {
                            let class = policy.channel_classes.class_of(channel);
                            (channel.as_str().to_string(), class.as_str().to_string())
                        })
                        .collect(),
                    unit_costs: policy
                        .unit_costs
                        .entries()
                        .map(|(channel, from, to, pence)| UnitCostDefinition {
                            channel: channel.as_str().to_string(),
                            from: from.clamp(first_date, last_date),
                            to: to.unwrap_or(last_date).clamp(first_date, last_date),
                            pence: pence.0,
                        })
                        .collect(),
                    targets: policy
                        .targets
                        .iter()
                        .map(|(kpi, target)| TargetDefinition {
                            kpi: kpi.as_str().to_string(),
                            target: target.target(),
                            tolerance: target.tolerance(),
                            polarity: target.polarity().as_str().to_string(),
                        })
                        .collect(),
                    numbers: std::iter::once((
                        "repeat_window_days".to_string(),
                        f64::from(policy.repeat_window_days),
                    ))
                    .chain(policy.savings_profile.iter().flat_map(|profile| {
                        // savings_profile_01 is April.
                        profile.iter().enumerate().map(|(month, share)| {
                            (format!("savings_profile_{:02}", month + 1), *share)
                        })
                    }))
                    .collect(),
                })
                .collect(),
        }
    }

    fn codes(&self) -> Vec<String> {
        self.configured.keys().map(ToString::to_string).collect()
    }
}

/// `default` with `block`'s settings laid over it: tables merge key by key
/// at every depth (a channel class, a target, even a target's `tolerance`
/// alone), anything else (a list of unit costs, a number) replaces the
/// default's.
pub fn merged(default: &KpiSettings, block: &Value) -> anyhow::Result<KpiSettings> {
    anyhow::ensure!(
        block.is_object(),
        "expected a table of [kpi] settings, found {block}"
    );
    let mut value = serde_json::to_value(default)?;
    overlay(&mut value, block);
    Ok(serde_json::from_value(value)?)
}

fn overlay(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (key, value) in over {
                match base.get_mut(key) {
                    Some(existing) if existing.is_object() && value.is_object() => {
                        overlay(existing, value)
                    }
                    _ => {
                        base.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (base, over) => *base = over.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use channelshift_kpi::catalogue::Kpi;
    use channelshift_kpi::channel::{Channel, ChannelClass};
    use serde_json::json;

    fn code(text: &str) -> CouncilCode {
        CouncilCode::parse(text).expect("a GSS code")
    }

    fn default_settings() -> KpiSettings {
        serde_json::from_value(json!({
            "suppression_threshold": 10,
            "channel_classes": {"kiosk": "digital_assisted"},
            "targets": {
                "digital-take-up": {"target": 45.0, "tolerance": 5.0, "polarity": "higher_is_better"},
                "completion-rate": {"target": 85.0, "tolerance": 5.0, "polarity": "higher_is_better"}
            }
        }))
        .expect("valid settings")
    }

    #[test]
    fn a_council_overrides_only_what_it_names() {
        let blocks: CouncilBlocks = serde_json::from_value(json!({
            "E07000041": {"name": "Exeter City Council",
                          "targets": {"digital-take-up": {"target": 60.0, "tolerance": 2.0, "polarity": "higher_is_better"}},
                          "channel_classes": {"email": "digital_self_service"}},
            "e06000027": {"name": "Torbay Council", "suppression_threshold": 5}
        }))
        .expect("blocks");
        let councils = Councils::new(&default_settings(), &blocks).expect("valid");
        let exeter = councils.policy(&code("E07000041")).expect("configured");
        assert_eq!(exeter.targets[&Kpi::DigitalTakeUp].target(), 60.0);
        assert_eq!(exeter.targets[&Kpi::CompletionRate].target(), 85.0);
        assert_eq!(exeter.suppression.threshold, 10);
        // Its own class, and the default block's.
        assert_eq!(
            exeter.channel_classes.class_of(Channel::Email),
            ChannelClass::DigitalSelfService
        );
        assert_eq!(
            exeter.channel_classes.class_of(Channel::Kiosk),
            ChannelClass::DigitalAssisted
        );
        assert_eq!(exeter.label("E07000041"), "Exeter City Council (E07000041)");
        // A lower-case key (from an environment variable) is the same council.
        let torbay = councils.policy(&code("E06000027")).expect("configured");
        assert_eq!(torbay.suppression.threshold, 5);
        assert_eq!(torbay.targets[&Kpi::DigitalTakeUp].target(), 45.0);
        let error = councils
            .policy(&code("E07000042"))
            .expect_err("not on the platform");
        assert!(
            error.to_string().contains("not a council on this platform"),
            "{error}"
        );
    }

    #[test]
    fn a_bad_council_block_is_refused_naming_the_council() {
        for (block, says) in [
            (
                json!({"E07000041": {"suppression_treshold": 5, "name": "X"}}),
                "suppression_treshold",
            ),
            (
                json!({"E07000041": {"suppression_threshold": 5}}),
                "name is required",
            ),
            (json!({"Exeter": {"name": "Exeter"}}), "councils.Exeter"),
            (
                json!({"E07000041": {"name": "X", "satisfaction": {"instrument": "csat5", "measure": "nps"}}}),
                "csat5/nps is not a measure",
            ),
            (
                json!({"E07000041": {"name": "X", "unit_costs": [{"channel": "pigeon", "from": "2024-04-01", "pounds": "1"}]}}),
                "pigeon",
            ),
            (
                json!({"E07000041": {"name": "X", "pack_settle_seconds": 5}}),
                "platform's",
            ),
        ] {
            let blocks: CouncilBlocks = serde_json::from_value(block).expect("blocks");
            let error = Councils::new(&default_settings(), &blocks).expect_err("refused");
            assert!(
                format!("{error:#}").contains(says),
                "{error:#} should say {says}"
            );
        }
    }

    #[test]
    fn without_councils_every_council_has_the_default_block() {
        let councils = Councils::new(&default_settings(), &CouncilBlocks::new()).expect("valid");
        let any = councils.policy(&code("E07000042")).expect("any council");
        assert_eq!(any.targets[&Kpi::DigitalTakeUp].target(), 45.0);
        assert_eq!(any.label("E07000042"), "E07000042");
    }
}
