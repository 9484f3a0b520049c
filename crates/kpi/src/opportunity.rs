//! Channel-shift opportunity: per service, the annual saving if its assisted
//! share of contacts (telephone, face-to-face and paper) fell to a benchmark,
//! ranked, with every assumption stated and the service's satisfaction by
//! channel beside it, so a shift is never recommended where digital contact
//! satisfies customers much less than assisted contact does.
//!
//! For a service with V contacts a year, A of them assisted, and a
//! benchmark assisted share b below A ÷ V, M = A − b × V contacts move. They
//! leave the assisted channels in proportion to the service's assisted mix
//! and arrive on its digital self-service channels in proportion to their mix
//! (on the web where it has none), so the saving is M × (the mean unit cost
//! of its assisted contacts − the mean unit cost of its digital self-service
//! contacts), rounded once to the penny.
//!
//! The benchmark is a configured target share, or else the best quartile of
//! the council's own services of similar volume: the 25th percentile
//! (linear interpolation between order statistics) of the assisted shares of
//! the services whose annual volume is within a factor of
//! [`OpportunityRules::peer_volume_ratio`] of this one's, itself included,
//! when there are at least [`OpportunityRules::min_peers`] of them.

use crate::channel::{Channel, ChannelClass, ChannelClasses, ContactsByChannel};
use crate::cost::{divide_rounding_half_away, Pence, UnitCosts};
use crate::interval::Rate;
use crate::suppression::{Published, Suppression};
use chrono::NaiveDate;
use serde::Serialize;

/// One service's contacts over a year and its satisfaction by channel group.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceYear {
    pub service: String,
    pub contacts: ContactsByChannel,
    /// Share of digital self-service respondents satisfied, on the council's
    /// headline instrument.
    pub digital_satisfied: Rate,
    /// The same for assisted respondents (telephone, face-to-face, paper).
    pub assisted_satisfied: Rate,
}

/// How the opportunity is judged: configuration, with documented defaults.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct OpportunityRules {
    /// Every service's benchmark assisted share (0 to 1) when set, instead
    /// of its peers' best quartile.
    pub target_assisted_share: Option<f64>,
    /// Peers are the services whose annual volume is at least this many
    /// times smaller and at most this many times larger (default 2).
    pub peer_volume_ratio: f64,
    /// The fewest peers, the service included, a best quartile is taken
    /// over (default 4).
    pub min_peers: usize,
    /// A shift is not recommended where digital satisfaction is more than
    /// this many percentage points below assisted (default 10).
    pub satisfaction_gap_points: f64,
}

impl Default for OpportunityRules {
    fn default() -> Self {
        OpportunityRules {
            target_assisted_share: None,
            peer_volume_ratio: 2.0,
            min_peers: 4,
            satisfaction_gap_points: 10.0,
        }
    }
}

/// Where a service's benchmark share came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "basis", rename_all = "snake_case")]
pub enum Benchmark {
    /// The configured target share.
    Configured { assisted_share: f64 },
    /// The best quartile of these services' assisted shares.
    BestQuartile {
        assisted_share: f64,
        peers: Vec<String>,
    },
}

impl Benchmark {
    pub fn assisted_share(&self) -> f64 {
        match self {
            Benchmark::Configured { assisted_share }
            | Benchmark::BestQuartile { assisted_share, .. } => *assisted_share,
        }
    }
}

/// What the figures say about moving a service's contacts online.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// A saving, and digital satisfaction not much below assisted (or too
    /// few responses to compare, said in `satisfaction_compared`).
    Recommended,
    /// A saving, but digital satisfaction is more than the configured gap
    /// below assisted.
    NotRecommended { gap_points: f64 },
    /// Moving would save nothing: the service's digital self-service
    /// contacts cost as much as its assisted ones, or more.
    NoSaving,
    /// The service's assisted share is at or below its benchmark already.
    AtBenchmark,
    /// Fewer services of similar volume than a best quartile needs, and no
    /// configured target.
    NoBenchmark { peers: usize },
    /// A channel the saving needs has no unit cost on the pricing date.
    MissingUnitCost { channels: Vec<Channel> },
    /// A channel group's count is below the suppression threshold: the
    /// service's figures are withheld.
    Withheld,
}

/// One service's opportunity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Opportunity {
    pub service: String,
    #[serde(flatten)]
    pub verdict: Verdict,
    /// Contacts in the year, all channels; `None` when withheld.
    pub contacts: Option<u64>,
    pub assisted_contacts: Option<u64>,
    pub digital_self_service_contacts: Option<u64>,
    /// Digital assisted and other channels, which the shift leaves alone.
    pub other_contacts: Option<u64>,
    /// Assisted ÷ all contacts, 0 to 1.
    pub assisted_share: Option<f64>,
    pub benchmark: Option<Benchmark>,
    /// Contacts a year that would move to digital self-service.
    pub moved_contacts: Option<u64>,
    /// Mean unit cost of the service's assisted contacts.
    pub assisted_unit_cost: Option<Pence>,
    /// Mean unit cost of the digital self-service contacts they would become.
    pub digital_unit_cost: Option<Pence>,
    /// The saving a year; `None` unless there is one to state.
    pub annual_saving: Option<Pence>,
    /// % of digital self-service respondents satisfied.
    pub digital_satisfied: Published<Rate>,
    /// % of assisted respondents satisfied.
    pub assisted_satisfied: Published<Rate>,
    /// Whether both satisfaction figures rest on enough responses to compare.
    pub satisfaction_compared: bool,
}

/// Every service's opportunity, ranked: recommended shifts by saving, then
/// those not recommended by saving, then (by service) those that would save
/// nothing, those at their benchmark, those without one, those that cannot
/// be priced and those withheld.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Opportunities {
    pub priced_on: NaiveDate,
    pub rules: OpportunityRules,
    pub services: Vec<Opportunity>,
    /// Σ of the recommended services' annual savings.
    pub recommended_saving: Pence,
}

const ASSISTED: [ChannelClass; 3] = [
    ChannelClass::Telephone,
    ChannelClass::FaceToFace,
    ChannelClass::Paper,
];

fn group_counts(classes: &ChannelClasses, contacts: &ContactsByChannel) -> (u64, u64, u64) {
    let (mut assisted, mut digital, mut other) = (0, 0, 0);
    for (&channel, &count) in contacts {
        match classes.class_of(channel) {
            class if ASSISTED.contains(&class) => assisted += count,
            ChannelClass::DigitalSelfService => digital += count,
            _ => other += count,
        }
    }
    (assisted, digital, other)
}

/// The `q` quantile (0 to 1) of `values`, interpolating linearly between
/// order statistics (numpy's default); `None` for no values.
pub fn quantile(values: &[f64], q: f64) -> Option<f64> {
    let mut sorted: Vec<f64> = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let last = sorted.len().checked_sub(1)?;
    let position = q.clamp(0.0, 1.0) * last as f64;
    let below = position.floor() as usize;
    let above = position.ceil() as usize;
    let fraction = position - below as f64;
    Some(sorted[below] + (sorted[above] - sorted[below]) * fraction)
}

/// The cost in pence of `contacts` on the channels `pick` keeps, and their
/// count; the channels without a cost on `on` are returned instead.
fn priced(
    contacts: &ContactsByChannel,
    pick: impl Fn(Channel) -> bool,
    unit_costs: &UnitCosts,
    on: NaiveDate,
) -> Result<(i128, i128), Vec<Channel>> {
    let (mut pence, mut count, mut missing) = (0i128, 0i128, Vec::new());
    for (&channel, &contacts) in contacts.iter().filter(|(&c, &n)| pick(c) && n > 0) {
        match unit_costs.cost_on(channel, on) {
            Some(cost) => pence += i128::from(cost.0) * i128::from(contacts),
            None => missing.push(channel),
        }
        count += i128::from(contacts);
    }
    if missing.is_empty() {
        Ok((pence, count))
    } else {
        Err(missing)
    }
}

/// Ranks every service's channel-shift opportunity over a year's contacts,
/// priced at the unit costs in force on `priced_on`.
pub fn opportunities(
    services: &[ServiceYear],
    classes: &ChannelClasses,
    unit_costs: &UnitCosts,
    priced_on: NaiveDate,
    rules: &OpportunityRules,
    suppression: &Suppression,
) -> Opportunities {
    let small = |count: u64| count > 0 && suppression.count(count).is_suppressed();
    // A rate is published only when its responses, those positive and those
    // not are each none or at least the threshold, as in the packs.
    let rate = |rate: Rate| {
        let (positive, n) = (rate.numerator(), rate.denominator());
        if small(n) || small(positive) || (positive <= n && small(n - positive)) {
            Published::Suppressed
        } else {
            Published::Shown(rate)
        }
    };
    // Each service's (assisted, digital self-service, other) contacts.
    let groups: Vec<(u64, u64, u64)> = services
        .iter()
        .map(|service| group_counts(classes, &service.contacts))
        .collect();
    let volumes: Vec<(u64, f64)> = groups
        .iter()
        .map(|&(assisted, digital, other)| {
            let total = assisted + digital + other;
            let share = if total == 0 {
                0.0
            } else {
                assisted as f64 / total as f64
            };
            (total, share)
        })
        .collect();
    // Primary suppression: a service whose contacts, or one of whose channel
    // groups, number from 1 to the threshold less one.
    let mut withheld: Vec<bool> = groups
        .iter()
        .map(|&(assisted, digital, other)| {
            [assisted, digital, other, assisted + digital + other]
                .into_iter()
                .any(small)
        })
        .collect();
    // Secondary: one service withheld alone could be had by subtracting the
    // others from the council's total, so the smallest shown one goes too.
    if withheld.iter().filter(|&&withheld| withheld).count() == 1 {
        let smallest = volumes
            .iter()
            .enumerate()
            .filter(|(index, _)| !withheld[*index])
            .min_by_key(|(_, (volume, _))| *volume)
            .map(|(index, _)| index);
        if let Some(index) = smallest {
            withheld[index] = true;
        }
    }

    let mut ranked: Vec<Opportunity> = services
        .iter()
        .zip(&volumes)
        .zip(&withheld)
        .zip(&groups)
        .map(
            |(((service, &(total, share)), &is_withheld), &(assisted, digital, other))| {
                let digital_satisfied = rate(service.digital_satisfied);
                let assisted_satisfied = rate(service.assisted_satisfied);
                let compared = match (digital_satisfied.shown(), assisted_satisfied.shown()) {
                    (Some(digital), Some(assisted)) => digital
                        .percent()
                        .zip(assisted.percent())
                        .map(|(digital, assisted)| assisted - digital),
                    _ => None,
                };
                let mut opportunity = Opportunity {
                    service: service.service.clone(),
                    verdict: Verdict::Withheld,
                    contacts: None,
                    assisted_contacts: None,
                    digital_self_service_contacts: None,
                    other_contacts: None,
                    assisted_share: None,
                    benchmark: None,
                    moved_contacts: None,
                    assisted_unit_cost: None,
                    digital_unit_cost: None,
                    annual_saving: None,
                    digital_satisfied,
                    assisted_satisfied,
                    satisfaction_compared: compared.is_some(),
                };
                if is_withheld {
                    return opportunity;
                }
                opportunity.contacts = Some(total);
                opportunity.assisted_contacts = Some(assisted);
                opportunity.digital_self_service_contacts = Some(digital);
                opportunity.other_contacts = Some(other);
                opportunity.assisted_share = (total > 0).then_some(share);

                let benchmark = match rules.target_assisted_share {
                    Some(target) => Benchmark::Configured {
                        assisted_share: target,
                    },
                    None => {
                        // Peers are published services only: a withheld
                        // service's share must not move a published quartile.
                        let peers: Vec<(&ServiceYear, f64)> = services
                            .iter()
                            .zip(&volumes)
                            .zip(&withheld)
                            .filter(|((_, &(volume, _)), &peer_withheld)| {
                                !peer_withheld
                                    && total > 0
                                    && volume > 0
                                    && volume as f64 * rules.peer_volume_ratio >= total as f64
                                    && volume as f64 <= total as f64 * rules.peer_volume_ratio
                            })
                            .map(|((peer, &(_, share)), _)| (peer, share))
                            .collect();
                        if peers.len() < rules.min_peers.max(1) {
                            opportunity.verdict = Verdict::NoBenchmark { peers: peers.len() };
                            return opportunity;
                        }
                        let shares: Vec<f64> = peers.iter().map(|(_, share)| *share).collect();
                        Benchmark::BestQuartile {
                            assisted_share: quantile(&shares, 0.25).unwrap_or(share),
                            peers: peers.iter().map(|(peer, _)| peer.service.clone()).collect(),
                        }
                    }
                };
                let target = benchmark.assisted_share();
                opportunity.benchmark = Some(benchmark);
                // Whole contacts move.
                let moved = (assisted as f64 - target * total as f64).max(0.0).round() as u64;
                if total == 0 || moved == 0 {
                    opportunity.verdict = Verdict::AtBenchmark;
                    return opportunity;
                }
                let is_assisted = |channel| ASSISTED.contains(&classes.class_of(channel));
                let is_digital =
                    |channel| classes.class_of(channel) == ChannelClass::DigitalSelfService;
                // With no digital self-service contacts yet, they would arrive on the web.
                let web = ContactsByChannel::from([(Channel::Web, 1)]);
                let arriving = if digital > 0 { &service.contacts } else { &web };
                let ((assisted_pence, assisted_count), (digital_pence, digital_count)) = match (
                    priced(&service.contacts, is_assisted, unit_costs, priced_on),
                    priced(arriving, is_digital, unit_costs, priced_on),
                ) {
                    (Ok(assisted), Ok(digital)) => (assisted, digital),
                    (assisted, digital) => {
                        let mut channels: Vec<Channel> = assisted
                            .err()
                            .into_iter()
                            .chain(digital.err())
                            .flatten()
                            .collect();
                        channels.sort_unstable();
                        channels.dedup();
                        opportunity.verdict = Verdict::MissingUnitCost { channels };
                        return opportunity;
                    }
                };
                // M × (SA ÷ A − SD ÷ D) = M × (SA × D − SD × A) ÷ (A × D), divided once.
                let mean = |pence: i128, count: i128| {
                    Pence(divide_rounding_half_away(pence, count.max(1)) as i64)
                };
                let saving = divide_rounding_half_away(
                    i128::from(moved)
                        * (assisted_pence * digital_count - digital_pence * assisted_count),
                    assisted_count * digital_count,
                );
                opportunity.moved_contacts = Some(moved);
                opportunity.assisted_unit_cost = Some(mean(assisted_pence, assisted_count));
                opportunity.digital_unit_cost = Some(mean(digital_pence, digital_count));
                opportunity.annual_saving = Some(Pence(saving as i64));
                opportunity.verdict = match compared {
                    // Digital costing as much as assisted, or more.
                    _ if saving <= 0 => Verdict::NoSaving,
                    Some(gap) if gap > rules.satisfaction_gap_points => {
                        Verdict::NotRecommended { gap_points: gap }
                    }
                    _ => Verdict::Recommended,
                };
                opportunity
            },
        )
        .collect();

    let rank = |opportunity: &Opportunity| match opportunity.verdict {
        Verdict::Recommended => 0,
        Verdict::NotRecommended { .. } => 1,
        Verdict::NoSaving => 2,
        Verdict::AtBenchmark => 3,
        Verdict::NoBenchmark { .. } => 4,
        Verdict::MissingUnitCost { .. } => 5,
        Verdict::Withheld => 6,
    };
    ranked.sort_by(|a, b| {
        rank(a)
            .cmp(&rank(b))
            .then(b.annual_saving.cmp(&a.annual_saving))
            .then(a.service.cmp(&b.service))
    });
    let recommended_saving = Pence(
        ranked
            .iter()
            .filter(|opportunity| opportunity.verdict == Verdict::Recommended)
            .filter_map(|opportunity| opportunity.annual_saving)
            .map(|saving| saving.0)
            .sum(),
    );
    Opportunities {
        priced_on,
        rules: *rules,
        services: ranked,
        recommended_saving,
    }
}

/// About how much, in words, to two or three significant figures: "£1.5m",
/// "£38k" from £10,000, "£4,200" from £1,000 (to the nearest hundred),
/// "£240" from £100 (to the nearest ten), "£60" below.
pub fn about(amount: Pence) -> String {
    let pounds = amount.0 as f64 / 100.0;
    let sign = if pounds < 0.0 { "-" } else { "" };
    let magnitude = pounds.abs();
    // Below £10,000 once rounded to `step`.
    let to = |step: f64| {
        let rounded = ((magnitude / step).round() * step) as u64;
        if rounded >= 1_000 {
            format!("{},{:03}", rounded / 1_000, rounded % 1_000)
        } else {
            rounded.to_string()
        }
    };
    if magnitude >= 999_500.0 {
        format!("{sign}£{:.1}m", magnitude / 1_000_000.0)
    } else if magnitude >= 9_950.0 {
        format!("{sign}£{}k", (magnitude / 1_000.0).round() as u64)
    } else if magnitude >= 995.0 {
        format!("{sign}£{}", to(100.0))
    } else if magnitude >= 99.5 {
        format!("{sign}£{}", to(10.0))
    } else {
        format!("{sign}£{}", to(1.0))
    }
}

fn percent(share: f64) -> String {
    format!("{:.0}%", share * 100.0)
}

impl Opportunity {
    /// The service's line in plain English, naming it with `label`.
    pub fn sentence(&self, label: &str) -> String {
        let shares = match (self.assisted_share, &self.benchmark) {
            (Some(share), Some(benchmark)) => Some((share, benchmark)),
            _ => None,
        };
        let benchmark_words = |benchmark: &Benchmark| match benchmark {
            Benchmark::Configured { .. } => "the configured target".to_string(),
            Benchmark::BestQuartile { peers, .. } => format!(
                "the best quartile of the council's {} services of similar volume",
                peers.len()
            ),
        };
        match (&self.verdict, shares, self.annual_saving) {
            (Verdict::Recommended, Some((share, benchmark)), Some(saving)) => format!(
                "Moving {label} from {} assisted contact to {} ({}) would save about {} a year.",
                percent(share),
                percent(benchmark.assisted_share()),
                benchmark_words(benchmark),
                about(saving),
            ),
            (Verdict::NotRecommended { gap_points }, Some((share, benchmark)), Some(saving)) => {
                format!(
                    "Moving {label} from {} assisted contact to {} would save about {} a year, but it is not recommended: its digital satisfaction is {:.0} points below assisted.",
                    percent(share),
                    percent(benchmark.assisted_share()),
                    about(saving),
                    gap_points,
                )
            }
            (Verdict::NoSaving, _, _) => format!(
                "Moving {label} online would save nothing: its digital contacts cost as much as its assisted ones."
            ),
            (Verdict::AtBenchmark, Some((share, benchmark)), _) => format!(
                "{label}'s assisted share ({}) is at or below {} ({}): no saving to state.",
                percent(share),
                benchmark_words(benchmark),
                percent(benchmark.assisted_share()),
            ),
            (Verdict::NoBenchmark { peers }, _, _) => format!(
                "{label} has {peers} services of similar volume, itself included, too few for a benchmark; set a target assisted share to judge it."
            ),
            (Verdict::MissingUnitCost { channels }, _, _) => format!(
                "{label}'s saving cannot be priced: no unit cost for {}.",
                channels
                    .iter()
                    .map(|channel| channel.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            _ => format!("{label}'s figures are withheld: a channel group has too few contacts to publish."),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 10, 31).expect("test data")
    }

    fn year(
        service: &str,
        phone: u64,
        face: u64,
        web: u64,
        satisfied: (Rate, Rate),
    ) -> ServiceYear {
        ServiceYear {
            service: service.to_string(),
            contacts: ContactsByChannel::from([
                (Channel::Phone, phone),
                (Channel::FaceToFace, face),
                (Channel::Web, web),
            ]),
            digital_satisfied: satisfied.0,
            assisted_satisfied: satisfied.1,
        }
    }

    fn alike() -> (Rate, Rate) {
        (Rate::new(80, 100), Rate::new(85, 100))
    }

    fn run(services: &[ServiceYear], rules: &OpportunityRules) -> Opportunities {
        opportunities(
            services,
            &ChannelClasses::default(),
            &UnitCosts::socitm_2012(),
            day(),
            rules,
            &Suppression::default(),
        )
    }

    #[test]
    fn quantile_interpolates_between_order_statistics() {
        // numpy.quantile([0.1, 0.2, 0.4, 0.8], 0.25) = 0.175
        assert!((quantile(&[0.4, 0.1, 0.8, 0.2], 0.25).expect("test data") - 0.175).abs() < 1e-12);
        assert_eq!(quantile(&[0.3], 0.25), Some(0.3));
        assert_eq!(quantile(&[], 0.25), None);
    }

    #[test]
    fn the_best_quartile_of_similar_services_prices_the_shift_by_hand() {
        // Assisted shares 0.6, 0.5, 0.3, 0.2, all 1,000 contacts a year: the
        // best quartile is 0.2 + 0.75 × (0.3 − 0.2) = 0.275.
        let services = [
            year("council-tax", 500, 100, 400, alike()),
            year("waste", 400, 100, 500, alike()),
            year("parking", 300, 0, 700, alike()),
            year("planning", 200, 0, 800, alike()),
        ];
        let ranked = run(&services, &OpportunityRules::default());
        let council_tax = &ranked.services[0];
        assert_eq!(council_tax.service, "council-tax");
        assert_eq!(council_tax.verdict, Verdict::Recommended);
        let benchmark = council_tax
            .benchmark
            .as_ref()
            .expect("test data")
            .assisted_share();
        assert!((benchmark - 0.275).abs() < 1e-12);
        // M = 600 − 0.275 × 1000 = 325 contacts. Assisted mean cost =
        // (500 × 283 + 100 × 862) ÷ 600 = 379.5p; web 15p. Saving =
        // 325 × 364.5 = 118,462.5p → £1,184.63 (halves away from zero).
        assert_eq!(council_tax.moved_contacts, Some(325));
        assert_eq!(council_tax.assisted_unit_cost, Some(Pence(380)));
        assert_eq!(council_tax.digital_unit_cost, Some(Pence(15)));
        assert_eq!(council_tax.annual_saving, Some(Pence(118_463)));
        // waste: M = 500 − 275 = 225; (400 × 283 + 100 × 862) ÷ 500 = 398.8p;
        // 225 × 383.8 = 86,355p.
        let waste = &ranked.services[1];
        assert_eq!(waste.service, "waste");
        assert_eq!(waste.annual_saving, Some(Pence(86_355)));
        // parking: M = 300 − 275 = 25; 25 × (283 − 15) = 6,700p.
        assert_eq!(ranked.services[2].annual_saving, Some(Pence(6_700)));
        // planning is below the benchmark already.
        assert_eq!(ranked.services[3].verdict, Verdict::AtBenchmark);
        assert_eq!(ranked.services[3].annual_saving, None);
        assert_eq!(ranked.recommended_saving, Pence(118_463 + 86_355 + 6_700));
        assert_eq!(
            council_tax.sentence("Council tax"),
            "Moving Council tax from 60% assisted contact to 28% (the best quartile of the council's 4 services of similar volume) would save about £1,200 a year."
        );
    }

    #[test]
    fn services_of_dissimilar_volume_are_not_peers() {
        // A service ten times larger has no peers within 2×.
        let mut services = vec![
            year("a", 500, 0, 500, alike()),
            year("b", 400, 0, 600, alike()),
            year("c", 300, 0, 700, alike()),
            year("d", 200, 0, 800, alike()),
        ];
        services.push(year("big", 6_000, 0, 4_000, alike()));
        let ranked = run(&services, &OpportunityRules::default());
        let big = ranked
            .services
            .iter()
            .find(|o| o.service == "big")
            .expect("test data");
        assert_eq!(big.verdict, Verdict::NoBenchmark { peers: 1 });
        assert!(big.sentence("big").contains("too few for a benchmark"));
        // A configured target judges it all the same.
        let rules = OpportunityRules {
            target_assisted_share: Some(0.5),
            ..OpportunityRules::default()
        };
        let ranked = run(&services, &rules);
        let big = &ranked.services[0];
        assert_eq!(big.service, "big");
        // M = 6,000 − 5,000 = 1,000 phone contacts at 283p − 15p.
        assert_eq!(big.annual_saving, Some(Pence(268_000)));
        assert_eq!(
            big.benchmark,
            Some(Benchmark::Configured {
                assisted_share: 0.5
            })
        );
    }

    #[test]
    fn a_shift_is_not_recommended_where_digital_satisfies_much_less() {
        let services = [
            year("a", 600, 0, 400, (Rate::new(50, 100), Rate::new(90, 100))),
            year("b", 400, 0, 600, alike()),
        ];
        let rules = OpportunityRules {
            target_assisted_share: Some(0.2),
            ..OpportunityRules::default()
        };
        let ranked = run(&services, &rules);
        // b is recommended and ranks first though a would save more.
        assert_eq!(ranked.services[0].service, "b");
        assert_eq!(ranked.services[0].verdict, Verdict::Recommended);
        let a = &ranked.services[1];
        assert_eq!(a.verdict, Verdict::NotRecommended { gap_points: 40.0 });
        assert_eq!(a.annual_saving, Some(Pence(400 * 268)));
        assert_eq!(ranked.recommended_saving, Pence(200 * 268));
        assert!(
            a.sentence("a").contains("not recommended"),
            "{}",
            a.sentence("a")
        );
    }

    #[test]
    fn too_few_responses_are_not_compared_and_not_shown() {
        let services = [year(
            "a",
            600,
            0,
            400,
            (Rate::new(1, 5), Rate::new(90, 100)),
        )];
        let rules = OpportunityRules {
            target_assisted_share: Some(0.2),
            ..OpportunityRules::default()
        };
        let a = &run(&services, &rules).services[0];
        assert!(!a.satisfaction_compared);
        assert!(a.digital_satisfied.is_suppressed());
        assert_eq!(a.verdict, Verdict::Recommended);
    }

    #[test]
    fn a_small_channel_group_withholds_the_service() {
        // 5 face-to-face contacts alone: the assisted group is 5 + 0.
        let services = [year("a", 0, 5, 400, alike())];
        let rules = OpportunityRules {
            target_assisted_share: Some(0.0),
            ..OpportunityRules::default()
        };
        let a = &run(&services, &rules).services[0];
        assert_eq!(a.verdict, Verdict::Withheld);
        assert_eq!(
            (a.contacts, a.assisted_share, a.annual_saving),
            (None, None, None)
        );
    }

    #[test]
    fn a_missing_unit_cost_is_named_not_treated_as_free() {
        let services = [ServiceYear {
            service: "a".into(),
            contacts: ContactsByChannel::from([(Channel::Post, 300), (Channel::Web, 700)]),
            digital_satisfied: Rate::new(0, 0),
            assisted_satisfied: Rate::new(0, 0),
        }];
        let rules = OpportunityRules {
            target_assisted_share: Some(0.1),
            ..OpportunityRules::default()
        };
        let a = &run(&services, &rules).services[0];
        assert_eq!(
            a.verdict,
            Verdict::MissingUnitCost {
                channels: vec![Channel::Post]
            }
        );
        assert!(
            a.sentence("a").contains("no unit cost for post"),
            "{}",
            a.sentence("a")
        );
    }

    #[test]
    fn a_service_with_no_digital_contacts_moves_them_to_the_web() {
        let services = [year("a", 1_000, 0, 0, alike())];
        let rules = OpportunityRules {
            target_assisted_share: Some(0.5),
            ..OpportunityRules::default()
        };
        let a = &run(&services, &rules).services[0];
        assert_eq!(a.digital_unit_cost, Some(Pence(15)));
        assert_eq!(a.annual_saving, Some(Pence(500 * 268)));
    }

    #[test]
    fn a_withheld_service_is_no_ones_peer_and_a_lone_one_takes_the_smallest_with_it() {
        let services = [
            year("a", 600, 0, 400, alike()),
            year("b", 500, 0, 500, alike()),
            year("c", 300, 0, 700, alike()),
            year("d", 200, 0, 800, alike()),
            year("e", 100, 0, 900, alike()),
            // 900 contacts: the smallest shown, so withheld beside "tiny".
            year("small", 0, 20, 880, alike()),
            // 5 emails, its only contacts of the "other" group: withheld.
            ServiceYear {
                service: "tiny".into(),
                contacts: ContactsByChannel::from([(Channel::Phone, 995), (Channel::Email, 5)]),
                digital_satisfied: Rate::new(0, 0),
                assisted_satisfied: Rate::new(0, 0),
            },
        ];
        let ranked = run(&services, &OpportunityRules::default());
        let of = |name: &str| {
            ranked
                .services
                .iter()
                .find(|o| o.service == name)
                .expect("listed")
        };
        assert_eq!(of("tiny").verdict, Verdict::Withheld);
        assert_eq!(of("small").verdict, Verdict::Withheld);
        assert_eq!(of("small").contacts, None);
        // The peers of "a" are a to e alone: the best quartile of 0.6, 0.5,
        // 0.3, 0.2, 0.1 is 0.2, not moved by the withheld services' 0.995
        // and 0.022.
        match &of("a").benchmark {
            Some(Benchmark::BestQuartile {
                assisted_share,
                peers,
            }) => {
                assert!((assisted_share - 0.2).abs() < 1e-12);
                assert_eq!(peers, &["a", "b", "c", "d", "e"]);
            }
            other => panic!("{other:?}"),
        }
        // Withheld services come last.
        assert_eq!(ranked.services[5].verdict, Verdict::Withheld);
        assert_eq!(ranked.services[6].verdict, Verdict::Withheld);
    }

    #[test]
    fn digital_costing_as_much_as_assisted_saves_nothing_and_is_not_recommended() {
        let mut costs = UnitCosts::empty();
        costs.set(Channel::Phone, day(), Pence(100));
        costs.set(Channel::Web, day(), Pence(150));
        let ranked = opportunities(
            &[year("a", 600, 0, 400, alike())],
            &ChannelClasses::default(),
            &costs,
            day(),
            &OpportunityRules {
                target_assisted_share: Some(0.2),
                ..OpportunityRules::default()
            },
            &Suppression::default(),
        );
        let a = &ranked.services[0];
        assert_eq!(a.verdict, Verdict::NoSaving);
        assert_eq!(a.annual_saving, Some(Pence(-400 * 50)));
        assert_eq!(ranked.recommended_saving, Pence(0));
        assert!(
            a.sentence("a").contains("would save nothing"),
            "{}",
            a.sentence("a")
        );
    }

    #[test]
    fn amounts_in_words_round_to_a_sensible_figure() {
        assert_eq!(about(Pence(3_812_345)), "£38k");
        assert_eq!(about(Pence(418_000)), "£4,200");
        assert_eq!(about(Pence(23_693)), "£240");
        assert_eq!(about(Pence(6_049)), "£60");
        assert_eq!(about(Pence(-2_500_000)), "-£25k");
        assert_eq!(about(Pence(149_000_000)), "£1.5m");
        assert_eq!(about(Pence(999_600)), "£10k");
    }
}
