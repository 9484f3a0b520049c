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
use std::collections::BTreeMap;

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
    let dated: Vec<DatedServiceContacts> = services
        .iter()
        .map(|service| DatedServiceContacts {
            service: service.service.clone(),
            baseline: service.baseline.clone(),
            current: BTreeMap::from([(priced_on, service.current.clone())]),
        })
        .collect();
    channel_shift_savings_dated(&dated, unit_costs)
}

/// One service's contacts per channel in the baseline period, and in the current period per day
/// they are priced on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatedServiceContacts {
    pub service: String,
    pub baseline: ContactsByChannel,
    pub current: BTreeMap<NaiveDate, ContactsByChannel>,
}

/// Channel-shift savings with each day's contacts priced at the unit costs in force that day:
/// for a service, Σ over days d and channels c of (C_d × baseline_c − B × current_c,d) × cost_c,d
/// ÷ B, where C_d is the day's contacts and B the baseline's. With one day this is
/// [`channel_shift_savings`]. A channel needs a cost on a day its weighted shift is not zero;
/// the channels missing one on the first such day are named together.
pub fn channel_shift_savings_dated(
    services: &[DatedServiceContacts],
    unit_costs: &UnitCosts,
) -> Result<ChannelShiftSavings, CostError> {
    let (with_baseline, without): (Vec<_>, Vec<_>) = services
        .iter()
        .partition(|service| service.baseline.values().sum::<u64>() > 0);

    // Each service's and day's Σ over channels of (C_d × baseline_c − B × current_c,d).
    let mut shifts_by_service = Vec::with_capacity(with_baseline.len());
    let mut moved: BTreeMap<NaiveDate, Vec<Channel>> = BTreeMap::new();
    for service in &with_baseline {
        let mut by_day = Vec::with_capacity(service.current.len());
        for (&day, current) in &service.current {
            let shifts = weighted_shift(&service.baseline, current)?;
            moved.entry(day).or_default().extend(
                shifts
                    .iter()
                    .filter(|(_, shift)| *shift != 0)
                    .map(|&(channel, _)| channel),
            );
            by_day.push((day, shifts));
        }
        shifts_by_service.push(by_day);
    }
    let mut costs: BTreeMap<NaiveDate, BTreeMap<Channel, Pence>> = BTreeMap::new();
    for (day, channels) in moved {
        costs.insert(day, unit_costs.costs_on(channels, day)?);
    }

    let mut saved = Vec::with_capacity(with_baseline.len());
    let mut total: i64 = 0;
    for (service, by_day) in with_baseline.iter().zip(&shifts_by_service) {
        let mut numerator: i128 = 0;
        for (day, shifts) in by_day {
            for &(channel, shift) in shifts.iter().filter(|(_, shift)| *shift != 0) {
                let cost = costs
                    .get(day)
                    .and_then(|costs| costs.get(&channel))
                    .expect("costs_on returned a cost for every channel that moved");
                numerator = shift
                    .checked_mul(i128::from(cost.0))
                    .and_then(|term| numerator.checked_add(term))
                    .ok_or(CostError::Overflow)?;
            }
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
            current_contacts: service
                .current
                .values()
                .flat_map(|contacts| contacts.values())
                .sum(),
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
fn weighted_shift(
    baseline: &ContactsByChannel,
    current: &ContactsByChannel,
) -> Result<Vec<(Channel, i128)>, CostError> {
    let baseline_total = i128::from(baseline.values().sum::<u64>());
    let current_total = i128::from(current.values().sum::<u64>());
    let count = |contacts: &ContactsByChannel, channel| {
        i128::from(contacts.get(&channel).copied().unwrap_or(0))
    };
    Channel::ALL
        .iter()
        .map(|&channel| {
            let kept = current_total.checked_mul(count(baseline, channel));
            let taken = baseline_total.checked_mul(count(current, channel));
            match (kept, taken) {
                (Some(kept), Some(taken)) => Ok((channel, kept - taken)),
                _ => Err(CostError::Overflow),
            }
        })
        .collect()
}

/// The share (0-1) of a financial year's savings target due by `to`
/// (inclusive): with `profile` (12 monthly percentages, April first, adding
/// up to 100), the months of the year before `to`'s month plus its own
/// month's share pro rata to `to`'s day of it; without, the year's days up
/// to `to` ÷ its days (pro rata).
pub fn share_of_year_due(profile: Option<&[f64; 12]>, to: NaiveDate) -> f64 {
    use crate::period::{Period, PeriodKind};
    use chrono::Datelike;
    let (Ok(year), Ok(month)) = (
        Period::containing(PeriodKind::FinancialYear, to),
        Period::containing(PeriodKind::Month, to),
    ) else {
        return 1.0;
    };
    let days = |period: &Period| (period.last_day() - period.first_day()).num_days() + 1;
    match profile {
        None => ((to - year.first_day()).num_days() + 1) as f64 / days(&year) as f64,
        Some(profile) => {
            // April is month 0 of the financial year.
            let index = ((to.month() + 8) % 12) as usize;
            let before: f64 = profile[..index].iter().sum();
            (before + profile[index] * f64::from(to.day()) / days(&month) as f64) / 100.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("a date")
    }

    #[test]
    fn the_share_due_follows_the_days_or_the_councils_monthly_profile() {
        // Pro rata: 30 June is day 91 of 365.
        let due = share_of_year_due(None, ymd(2025, 6, 30));
        assert!((due - 91.0 / 365.0).abs() < 1e-12);
        assert!((share_of_year_due(None, ymd(2026, 3, 31)) - 1.0).abs() < 1e-12);
        // Back-loaded: 2% a month April-September, 8% October-December, then 20%, 20%, 24%.
        let profile = [
            2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 8.0, 8.0, 8.0, 20.0, 20.0, 24.0,
        ];
        let q1 = share_of_year_due(Some(&profile), ymd(2025, 6, 30));
        assert!((q1 - 0.06).abs() < 1e-12);
        // Half of January (15 of 31 days): 36% + 20% × 15/31.
        let mid_january = share_of_year_due(Some(&profile), ymd(2026, 1, 15));
        assert!((mid_january - (0.36 + 0.20 * 15.0 / 31.0)).abs() < 1e-12);
        assert!((share_of_year_due(Some(&profile), ymd(2026, 3, 31)) - 1.0).abs() < 1e-12);
    }

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
    fn savings_price_each_day_at_its_own_cost() {
        let mut costs = UnitCosts::empty();
        costs.set(Channel::Web, date("2012-04-01"), Pence(15));
        costs.set(Channel::Phone, date("2012-04-01"), Pence(283));
        costs.set(Channel::Phone, date("2025-10-01"), Pence(400));
        // Baseline 10 phone, 10 web (B = 20); June: 4 phone, 6 web; December: 2 phone, 8 web.
        let baseline: ContactsByChannel = [(Channel::Phone, 10), (Channel::Web, 10)].into();
        let service = DatedServiceContacts {
            service: "waste".into(),
            baseline: baseline.clone(),
            current: BTreeMap::from([
                (
                    date("2025-06-10"),
                    [(Channel::Phone, 4), (Channel::Web, 6)].into(),
                ),
                (
                    date("2025-12-10"),
                    [(Channel::Phone, 2), (Channel::Web, 8)].into(),
                ),
            ]),
        };
        // June: phone (10 × 10 − 20 × 4) × 283 + web (10 × 10 − 20 × 6) × 15 = 5,660 − 300;
        // December: phone (100 − 40) × 400 + web (100 − 160) × 15 = 24,000 − 900;
        // Σ 28,460 ÷ 20 = 1,423 p.
        let dated =
            channel_shift_savings_dated(std::slice::from_ref(&service), &costs).expect("costed");
        assert_eq!(dated.total, Pence(1_423));
        assert_eq!(dated.services[0].current_contacts, 20);
        // The whole year at December's cost instead: (200 − 120) × 400 + (200 − 280) × 15
        // = 30,800 ÷ 20 = 1,540 p.
        let year_end = channel_shift_savings(
            &[ServiceContacts {
                service: "waste".into(),
                baseline,
                current: [(Channel::Phone, 6), (Channel::Web, 14)].into(),
            }],
            &costs,
            date("2026-03-31"),
        )
        .expect("costed");
        assert_eq!(year_end.total, Pence(1_540));
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
