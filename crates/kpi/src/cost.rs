//! Money in exact pence, effective-dated unit costs per channel, and cost per transaction.
//!
//! Money is whole pence in an `i64`: unit costs are quoted to the penny, and sums of counts ×
//! pence are exact. Only a division (per transaction, shares of a mix) rounds, once, to the
//! nearest penny with halves away from zero, using 128-bit intermediates.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::channel::{Channel, ContactsByChannel};

/// An amount of money in pence; negative for a cost that rose rather than fell.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Pence(pub i64);

/// Text that is not an amount in pounds with at most two decimal places.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an amount of pounds such as 2.83 or £8.62")]
pub struct InvalidPounds(pub String);

impl std::str::FromStr for Pence {
    type Err = InvalidPounds;

    /// Reads pounds as written in a unit-cost table: `8.62`, `£0.15`, `3`, `-1.5`. More than two
    /// decimal places is refused, because pence are the unit and rounding here would be silent.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidPounds(text.to_owned());
        let (negative, unsigned) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let unsigned = unsigned.strip_prefix('£').unwrap_or(unsigned);
        let (pounds, pence) = unsigned.split_once('.').unwrap_or((unsigned, ""));
        let digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
        if pounds.is_empty()
            || !digits(pounds)
            || !digits(pence)
            || pence.len() > 2
            || (unsigned.contains('.') && pence.is_empty())
        {
            return Err(invalid());
        }
        let pounds: i64 = pounds.parse().map_err(|_| invalid())?;
        // "1.5" is 1 pound 50 pence, not 5 pence.
        let pence: i64 = format!("{pence:0<2}").parse().map_err(|_| invalid())?;
        let amount = pounds
            .checked_mul(100)
            .and_then(|whole| whole.checked_add(pence))
            .ok_or_else(invalid)?;
        Ok(Pence(if negative { -amount } else { amount }))
    }
}

impl std::fmt::Display for Pence {
    /// `£8.62`, `-£1.20`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let magnitude = self.0.unsigned_abs();
        write!(f, "{sign}£{}.{:02}", magnitude / 100, magnitude % 100)
    }
}

/// A figure could not be worked out in money.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CostError {
    /// The figure needs the unit cost of these channels on this date, and the table has none.
    /// A channel is never treated as free.
    #[error("no unit cost for {} on {on}", channel_list(.channels))]
    MissingUnitCost {
        channels: Vec<Channel>,
        on: NaiveDate,
    },
    /// The amount does not fit in pence as an `i64` (about £92 million million).
    #[error("the amount is too large to represent in pence")]
    Overflow,
}

fn channel_list(channels: &[Channel]) -> String {
    channels
        .iter()
        .map(|channel| channel.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Unit cost per contact for each channel, effective-dated so a past report can be regenerated
/// with the costs that applied then.
///
/// Serialised as `{channel: {effective_from: pence}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UnitCosts {
    by_channel: BTreeMap<Channel, BTreeMap<NaiveDate, Pence>>,
}

impl UnitCosts {
    /// A table with no costs at all.
    pub fn empty() -> UnitCosts {
        UnitCosts {
            by_channel: BTreeMap::new(),
        }
    }

    /// Socitm 2012 channel costs (≈200 councils): face to face £8.62, phone £2.83, web £0.15,
    /// app and kiosk at web's cost; no other channel has one. They apply on every date, as they
    /// are a default rather than a council's history. They describe simple contacts, not whole
    /// transactions — reports should say so, and councils should load their own.
    pub fn socitm_2012() -> UnitCosts {
        let mut costs = UnitCosts::empty();
        for (channel, pence) in [
            (Channel::FaceToFace, 862),
            (Channel::Phone, 283),
            (Channel::Web, 15),
            (Channel::App, 15),
            (Channel::Kiosk, 15),
        ] {
            costs.set(channel, NaiveDate::MIN, Pence(pence));
        }
        costs
    }

    /// Sets the cost of one `channel` contact from `effective_from` (included) until the next
    /// entry for that channel; an entry on the same date is replaced.
    pub fn set(&mut self, channel: Channel, effective_from: NaiveDate, cost: Pence) {
        self.by_channel
            .entry(channel)
            .or_default()
            .insert(effective_from, cost);
    }

    /// The cost of one `channel` contact on `on`: the latest entry effective on or before it.
    pub fn cost_on(&self, channel: Channel, on: NaiveDate) -> Option<Pence> {
        self.by_channel
            .get(&channel)?
            .range(..=on)
            .next_back()
            .map(|(_, &cost)| cost)
    }

    /// Whether any channel's cost changes on a day after `from` up to `to`:
    /// a figure over `from..=to` must then price each day at its own cost.
    pub fn changes_within(&self, from: NaiveDate, to: NaiveDate) -> bool {
        self.by_channel.values().any(|dated| {
            dated
                .keys()
                .any(|&effective_from| effective_from > from && effective_from <= to)
        })
    }

    /// Every entry as (channel, effective from, the last day it is in force
    /// (`None`: still in force), cost), by channel then date.
    pub fn entries(
        &self,
    ) -> impl Iterator<Item = (Channel, NaiveDate, Option<NaiveDate>, Pence)> + '_ {
        self.by_channel.iter().flat_map(|(&channel, dated)| {
            let mut next_from = dated.keys().skip(1).map(|from| from.pred_opt());
            dated
                .iter()
                .map(move |(&from, &cost)| (channel, from, next_from.next().flatten(), cost))
        })
    }

    /// The costs on `on` of every channel in `needed`, or an error naming all the channels
    /// that have none.
    pub(crate) fn costs_on(
        &self,
        needed: impl IntoIterator<Item = Channel>,
        on: NaiveDate,
    ) -> Result<BTreeMap<Channel, Pence>, CostError> {
        let mut costs = BTreeMap::new();
        let mut missing = Vec::new();
        for channel in needed {
            match self.cost_on(channel, on) {
                Some(cost) => {
                    costs.insert(channel, cost);
                }
                None => missing.push(channel),
            }
        }
        missing.sort_unstable();
        missing.dedup();
        if missing.is_empty() {
            Ok(costs)
        } else {
            Err(CostError::MissingUnitCost {
                channels: missing,
                on,
            })
        }
    }
}

impl Default for UnitCosts {
    /// [`UnitCosts::socitm_2012`].
    fn default() -> Self {
        UnitCosts::socitm_2012()
    }
}

/// Cost per transaction: Σ contacts × unit cost of their channel ÷ completed transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CostPerTransaction {
    /// Σ contacts × unit cost, exact.
    pub total_cost: Pence,
    /// The divisor: completed transactions in the same cell.
    pub completed_transactions: u64,
    /// Rounded to the nearest penny; `None` when nothing was completed.
    pub per_transaction: Option<Pence>,
}

/// Cost per transaction of `contacts` (all contacts, whatever their interaction) priced with the
/// unit costs in force on `priced_on`. Every channel with contacts needs a cost.
pub fn cost_per_transaction(
    contacts: &ContactsByChannel,
    completed_transactions: u64,
    unit_costs: &UnitCosts,
    priced_on: NaiveDate,
) -> Result<CostPerTransaction, CostError> {
    let dated = BTreeMap::from([(priced_on, contacts.clone())]);
    cost_per_transaction_dated(&dated, completed_transactions, unit_costs)
}

/// Cost per transaction of contacts counted per day (or per any day they are priced on): each
/// day's contacts at the unit costs in force that day, summed, then divided once. Every channel
/// with contacts needs a cost on each day it has them.
pub fn cost_per_transaction_dated(
    contacts: &BTreeMap<NaiveDate, ContactsByChannel>,
    completed_transactions: u64,
    unit_costs: &UnitCosts,
) -> Result<CostPerTransaction, CostError> {
    let mut total: i128 = 0;
    for (&day, by_channel) in contacts {
        let used = by_channel
            .iter()
            .filter(|(_, &count)| count > 0)
            .map(|(&channel, _)| channel);
        let costs = unit_costs.costs_on(used, day)?;
        for (channel, cost) in &costs {
            let count = i128::from(by_channel.get(channel).copied().unwrap_or(0));
            total = count
                .checked_mul(i128::from(cost.0))
                .and_then(|channel_cost| total.checked_add(channel_cost))
                .ok_or(CostError::Overflow)?;
        }
    }
    let per_transaction = match completed_transactions {
        0 => None,
        completed => Some(to_pence(divide_rounding_half_away(
            total,
            i128::from(completed),
        ))?),
    };
    Ok(CostPerTransaction {
        total_cost: to_pence(total)?,
        completed_transactions,
        per_transaction,
    })
}

/// `numerator ÷ denominator` to the nearest whole number, halves away from zero.
/// `denominator` must be positive.
pub(crate) fn divide_rounding_half_away(numerator: i128, denominator: i128) -> i128 {
    let quotient = numerator / denominator;
    let remainder = numerator % denominator;
    if remainder.abs() * 2 >= denominator {
        quotient + numerator.signum()
    } else {
        quotient
    }
}

pub(crate) fn to_pence(amount: i128) -> Result<Pence, CostError> {
    i64::try_from(amount)
        .map(Pence)
        .map_err(|_| CostError::Overflow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_day_is_priced_at_the_cost_in_force_that_day() {
        let mut costs = UnitCosts::empty();
        costs.set(Channel::Phone, date("2012-04-01"), Pence(283));
        costs.set(Channel::Phone, date("2025-10-01"), Pence(300));
        assert!(costs.changes_within(date("2025-04-01"), date("2026-03-31")));
        assert!(!costs.changes_within(date("2025-10-01"), date("2026-03-31")));
        let contacts = |count| ContactsByChannel::from([(Channel::Phone, count)]);
        let year = BTreeMap::from([
            (date("2025-06-10"), contacts(10)),
            (date("2025-12-10"), contacts(10)),
        ]);
        // 10 × 283 + 10 × 300 = 5,830 p over 20 transactions: 291.5 → 292 p.
        let dated = cost_per_transaction_dated(&year, 20, &costs).expect("costed");
        assert_eq!(dated.total_cost, Pence(5_830));
        assert_eq!(dated.per_transaction, Some(Pence(292)));
        // Priced at the year's end instead: 6,000 p, the figure this replaces.
        let year_end =
            cost_per_transaction(&contacts(20), 20, &costs, date("2026-03-31")).expect("costed");
        assert_eq!(year_end.total_cost, Pence(6_000));
        // Before the phone had a cost at all: named, never free.
        let early = BTreeMap::from([(date("2011-06-01"), contacts(1))]);
        assert!(matches!(
            cost_per_transaction_dated(&early, 1, &costs),
            Err(CostError::MissingUnitCost { .. })
        ));
    }

    fn date(text: &str) -> NaiveDate {
        text.parse().expect("test dates are valid")
    }

    #[test]
    fn default_costs_are_socitm_2012_with_app_and_kiosk_at_webs() {
        let costs = UnitCosts::default();
        let on = date("2025-06-01");
        assert_eq!(costs.cost_on(Channel::FaceToFace, on), Some(Pence(862)));
        assert_eq!(costs.cost_on(Channel::Phone, on), Some(Pence(283)));
        assert_eq!(costs.cost_on(Channel::Web, on), Some(Pence(15)));
        assert_eq!(costs.cost_on(Channel::App, on), Some(Pence(15)));
        assert_eq!(costs.cost_on(Channel::Kiosk, on), Some(Pence(15)));
        for channel in [
            Channel::Webchat,
            Channel::Email,
            Channel::Post,
            Channel::Ivr,
        ] {
            assert_eq!(costs.cost_on(channel, on), None, "{channel} has no default");
        }
    }

    #[test]
    fn default_costs_effective_date_reads_back_from_its_text() {
        // The defaults apply from NaiveDate::MIN; a serialised table must read back the same.
        assert_eq!(
            NaiveDate::MIN.to_string().parse::<NaiveDate>(),
            Ok(NaiveDate::MIN)
        );
    }

    #[test]
    fn unit_cost_is_the_latest_effective_on_or_before_the_date() {
        let mut costs = UnitCosts::empty();
        costs.set(Channel::Phone, date("2024-04-01"), Pence(300));
        costs.set(Channel::Phone, date("2025-04-01"), Pence(320));
        assert_eq!(costs.cost_on(Channel::Phone, date("2024-03-31")), None);
        assert_eq!(
            costs.cost_on(Channel::Phone, date("2024-04-01")),
            Some(Pence(300))
        );
        assert_eq!(
            costs.cost_on(Channel::Phone, date("2025-03-31")),
            Some(Pence(300))
        );
        assert_eq!(
            costs.cost_on(Channel::Phone, date("2025-04-01")),
            Some(Pence(320))
        );
    }

    #[test]
    fn cost_per_transaction_sums_contacts_times_unit_cost() {
        // 100 web × 15p + 40 phone × 283p + 10 face to face × 862p
        // = 1,500 + 11,320 + 8,620 = 21,440p; ÷ 120 completed = 178.67p → 179p.
        let contacts = ContactsByChannel::from([
            (Channel::Web, 100),
            (Channel::Phone, 40),
            (Channel::FaceToFace, 10),
        ]);
        let cost = cost_per_transaction(&contacts, 120, &UnitCosts::default(), date("2025-06-01"))
            .expect("every channel has a default cost");
        assert_eq!(cost.total_cost, Pence(21_440));
        assert_eq!(cost.per_transaction, Some(Pence(179)));
    }

    #[test]
    fn cost_per_transaction_names_every_channel_without_a_cost() {
        // Webchat and post have no Socitm default; neither may be treated as free. Email has
        // no cost either but no contacts, so it is not needed.
        let contacts = ContactsByChannel::from([
            (Channel::Post, 5),
            (Channel::Web, 100),
            (Channel::Webchat, 20),
            (Channel::Email, 0),
        ]);
        let error = cost_per_transaction(&contacts, 50, &UnitCosts::default(), date("2025-06-01"))
            .expect_err("webchat and post have no cost");
        assert_eq!(
            error,
            CostError::MissingUnitCost {
                channels: vec![Channel::Webchat, Channel::Post],
                on: date("2025-06-01"),
            }
        );
        assert_eq!(
            error.to_string(),
            "no unit cost for webchat, post on 2025-06-01"
        );
    }

    #[test]
    fn nothing_completed_gives_no_cost_per_transaction() {
        let contacts = ContactsByChannel::from([(Channel::Phone, 3)]);
        let cost = cost_per_transaction(&contacts, 0, &UnitCosts::default(), date("2025-06-01"))
            .expect("phone has a cost");
        assert_eq!(cost.total_cost, Pence(849));
        assert_eq!(cost.per_transaction, None);
    }

    #[test]
    fn pounds_read_and_print_exactly() {
        assert_eq!("8.62".parse(), Ok(Pence(862)));
        assert_eq!("£0.15".parse(), Ok(Pence(15)));
        assert_eq!("3".parse(), Ok(Pence(300)));
        assert_eq!("1.5".parse(), Ok(Pence(150)));
        assert_eq!("-£2.07".parse(), Ok(Pence(-207)));
        for bad in ["", "£", "2.835", "2.", ".5", "two", "1,000", "+1"] {
            assert!(bad.parse::<Pence>().is_err(), "{bad} should be refused");
        }
        assert_eq!(Pence(862).to_string(), "£8.62");
        assert_eq!(Pence(-120).to_string(), "-£1.20");
        assert_eq!(Pence(5).to_string(), "£0.05");
    }

    #[test]
    fn rounding_takes_halves_away_from_zero() {
        assert_eq!(divide_rounding_half_away(5, 2), 3);
        assert_eq!(divide_rounding_half_away(-5, 2), -3);
        assert_eq!(divide_rounding_half_away(4, 3), 1);
        assert_eq!(divide_rounding_half_away(-5, 3), -2);
    }
}
