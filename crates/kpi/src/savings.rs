//! Efficiency savings from channel shift: the cost avoided because each service's channel mix
//! moved away from its baseline mix.
//!
//! For a service, saving = current contacts × Σ over channels of (baseline share − current
//! share) × unit cost. With C current and B baseline contacts that is
//! Σ (C × baseline_c − B × current_c) × cost_c ÷ B, worked in whole numbers and divided once,
//! so it is exact to the penny (halves away from zero). The total is the sum of the rounded
//! service savings, so a report's rows add up to its total.

use chrono::NaiveDate;
use serde::Serialize;

use crate::channel::{Channel, ContactsByChannel};
use crate::cost::{divide_rounding_half_away, to_pence, CostError, Pence, UnitCosts};

/// One service's contacts per channel in the baseline period and in the current period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceContacts {
    pub service: String,
    pub baseline: ContactsByChannel,
    pub current: ContactsByChannel,
}

/// One service's saving.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceSaving {
    pub service: String,
    pub baseline_contacts: u64,
    pub current_contacts: u64,
    /// Positive when the mix moved to cheaper channels.
    pub saving: Pence,
}

/// Savings per service and in total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChannelShiftSavings {
    /// Services with baseline contacts, in input order.
    pub services: Vec<ServiceSaving>,
    /// Services with no baseline contacts: they contribute nothing, and the report says so.
    pub no_baseline: Vec<String>,
    /// Σ of the services' savings.
    pub total: Pence,
}

/// Channel-shift savings of `services`, priced with the unit costs in force on `priced_on`.
///
/// A channel needs a unit cost when its share moved in some service with a baseline; a channel
/// whose share is unchanged contributes zero whatever it costs. All the channels missing a cost
/// are named together in [`CostError::MissingUnitCost`].
pub fn channel_shift_savings(
    services: &[ServiceContacts],
    unit_costs: &UnitCosts,
    priced_on: NaiveDate,
) -> Result<ChannelShiftSavings, CostError> {
    let (with_baseline, without): (Vec<_>, Vec<_>) = services
        .iter()
        .partition(|service| service.baseline.values().sum::<u64>() > 0);

    // Each service's Σ over channels of (C × baseline_c − B × current_c): the numerators whose
    // costs are needed.
    let weighted_shifts = with_baseline
        .iter()
        .map(|service| weighted_shift(service))
        .collect::<Result<Vec<_>, _>>()?;
    let moved = weighted_shifts
        .iter()
        .flatten()
        .filter(|(_, shift)| *shift != 0)
        .map(|&(channel, _)| channel);
    let costs = unit_costs.costs_on(moved, priced_on)?;

    let mut saved = Vec::with_capacity(with_baseline.len());
    let mut total: i64 = 0;
    for (service, shifts) in with_baseline.iter().zip(&weighted_shifts) {
        let mut numerator: i128 = 0;
        for &(channel, shift) in shifts.iter().filter(|(_, shift)| *shift != 0) {
            let cost = costs
                .get(&channel)
                .expect("costs_on returned a cost for every channel that moved");
            numerator = shift
                .checked_mul(i128::from(cost.0))
                .and_then(|term| numerator.checked_add(term))
                .ok_or(CostError::Overflow)?;
        }
        let baseline_contacts: u64 = service.baseline.values().sum();
        let saving = to_pence(divide_rounding_half_away(
            numerator,
            i128::from(baseline_contacts),
        ))?;
        total = total.checked_add(saving.0).ok_or(CostError::Overflow)?;
        saved.push(ServiceSaving {
            service: service.service.clone(),
            baseline_contacts,
            current_contacts: service.current.values().sum(),
            saving,
        });
    }
    Ok(ChannelShiftSavings {
        services: saved,
        no_baseline: without
            .iter()
            .map(|service| service.service.clone())
            .collect(),
        total: Pence(total),
    })
}

/// C × baseline_c − B × current_c for every channel.
fn weighted_shift(service: &ServiceContacts) -> Result<Vec<(Channel, i128)>, CostError> {
    let baseline_total = i128::from(service.baseline.values().sum::<u64>());
    let current_total = i128::from(service.current.values().sum::<u64>());
    let count = |contacts: &ContactsByChannel, channel| {
        i128::from(contacts.get(&channel).copied().unwrap_or(0))
    };
    Channel::ALL
        .iter()
        .map(|&channel| {
            let kept = current_total.checked_mul(count(&service.baseline, channel));
            let taken = baseline_total.checked_mul(count(&service.current, channel));
            match (kept, taken) {
                (Some(kept), Some(taken)) => Ok((channel, kept - taken)),
                _ => Err(CostError::Overflow),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        text.parse().expect("test dates are valid")
    }

    fn service(
        name: &str,
        baseline: &[(Channel, u64)],
        current: &[(Channel, u64)],
    ) -> ServiceContacts {
        ServiceContacts {
            service: name.to_owned(),
            baseline: baseline.iter().copied().collect(),
            current: current.iter().copied().collect(),
        }
    }

    #[test]
    fn shift_from_phone_to_web_saves_the_cost_difference() {
        // Baseline: phone 600, web 400 (60% / 40%). Current: phone 300, web 700 (30% / 70%),
        // 1,000 contacts. Saving = 1,000 × ((0.6 − 0.3) × 283p + (0.4 − 0.7) × 15p)
        // = 1,000 × (84.9p − 4.5p) = 80,400p = £804.00.
        let council_tax = service(
            "council_tax",
            &[(Channel::Phone, 600), (Channel::Web, 400)],
            &[(Channel::Phone, 300), (Channel::Web, 700)],
        );
        let savings =
            channel_shift_savings(&[council_tax], &UnitCosts::default(), date("2025-06-01"))
                .expect("phone and web have costs");
        assert_eq!(savings.services[0].saving, Pence(80_400));
        assert_eq!(savings.services[0].current_contacts, 1_000);
        assert_eq!(savings.total, Pence(80_400));
        assert!(savings.no_baseline.is_empty());
    }

    #[test]
    fn service_without_baseline_contributes_nothing_and_is_listed() {
        // Waste as above but with 500 current contacts: shares 0.6→0.2 phone, 0.4→0.8 web.
        // 500 × (0.4 × 283p − 0.4 × 15p) = 500 × 107.2p = 53,600p.
        // Parking has no baseline, so it is listed and adds nothing despite its phone calls.
        let waste = service(
            "waste",
            &[(Channel::Phone, 60), (Channel::Web, 40)],
            &[(Channel::Phone, 100), (Channel::Web, 400)],
        );
        let parking = service("parking", &[], &[(Channel::Phone, 50)]);
        let savings =
            channel_shift_savings(&[waste, parking], &UnitCosts::default(), date("2025-06-01"))
                .expect("phone and web have costs");
        assert_eq!(savings.services.len(), 1);
        assert_eq!(savings.services[0].saving, Pence(53_600));
        assert_eq!(savings.no_baseline, ["parking"]);
        assert_eq!(savings.total, Pence(53_600));
    }

    #[test]
    fn missing_unit_cost_is_named_rather_than_treated_as_free() {
        // Webchat's share moved 0% → 20%; it has no Socitm cost, so the figure cannot be made.
        let benefits = service(
            "benefits",
            &[(Channel::Phone, 100)],
            &[(Channel::Phone, 80), (Channel::Webchat, 20)],
        );
        let error = channel_shift_savings(&[benefits], &UnitCosts::default(), date("2025-06-01"))
            .expect_err("webchat has no cost");
        assert_eq!(
            error,
            CostError::MissingUnitCost {
                channels: vec![Channel::Webchat],
                on: date("2025-06-01"),
            }
        );
    }

    #[test]
    fn channel_whose_share_did_not_move_needs_no_cost() {
        // Email is 10% in both periods: its term is zero whatever it costs.
        // 100 × ((0.5 − 0.3) × 283p + (0.4 − 0.6) × 15p) = 100 × (56.6p − 3p) = 5,360p.
        let housing = service(
            "housing",
            &[
                (Channel::Phone, 50),
                (Channel::Web, 40),
                (Channel::Email, 10),
            ],
            &[
                (Channel::Phone, 30),
                (Channel::Web, 60),
                (Channel::Email, 10),
            ],
        );
        let savings = channel_shift_savings(&[housing], &UnitCosts::default(), date("2025-06-01"))
            .expect("email's share did not move");
        assert_eq!(savings.total, Pence(5_360));
    }

    #[test]
    fn shift_towards_dearer_channels_is_a_negative_saving_rounded_to_the_penny() {
        // Baseline web 2, phone 1 (⅔, ⅓); current web 0, phone 1 (0, 1), 1 contact.
        // 1 × ((⅔ − 0) × 15p + (⅓ − 1) × 283p) = 10p − 188.667p = −178.667p → −179p.
        let licensing = service(
            "licensing",
            &[(Channel::Web, 2), (Channel::Phone, 1)],
            &[(Channel::Phone, 1)],
        );
        let savings =
            channel_shift_savings(&[licensing], &UnitCosts::default(), date("2025-06-01"))
                .expect("phone and web have costs");
        assert_eq!(savings.total, Pence(-179));
    }

    #[test]
    fn savings_use_the_unit_costs_effective_on_the_pricing_date() {
        // Phone costs 300p from 2025-04-01; before that, 200p. Baseline phone 100%, current
        // phone 50% / web 50% (web 10p), 10 contacts: 10 × (0.5 × cost − 0.5 × 10p).
        let mut costs = UnitCosts::empty();
        costs.set(Channel::Phone, date("2024-04-01"), Pence(200));
        costs.set(Channel::Phone, date("2025-04-01"), Pence(300));
        costs.set(Channel::Web, date("2024-04-01"), Pence(10));
        let parking = service(
            "parking",
            &[(Channel::Phone, 10)],
            &[(Channel::Phone, 5), (Channel::Web, 5)],
        );
        let at = |day| {
            channel_shift_savings(std::slice::from_ref(&parking), &costs, date(day))
                .map(|savings| savings.total)
        };
        assert_eq!(at("2025-03-31"), Ok(Pence(950))); // 10 × (100p − 5p)
        assert_eq!(at("2025-04-01"), Ok(Pence(1_450))); // 10 × (150p − 5p)
    }
}
