//! The KPI catalogue: every KPI the product reports, and for each one what the API, the
//! scorecard and the packs need to know about it — slug, unit, polarity, the breakdowns and
//! filters it accepts, which row is its headline, its title and wording for a committee, and
//! whether it needs a savings baseline. Each fact is an exhaustive `match`, so a new KPI does
//! not compile until every one of them is stated.

use crate::rag::Polarity;

channelshift_contract::vocabulary! {
    /// A KPI, by its slug in the API's path (`/api/v1/kpi/{kpi}`) and in configuration
    /// (`kpi.targets.<slug>`). Declaration order is report order.
    Kpi, "KPI" {
        DigitalTakeUp = "digital-take-up",
        ChannelMix = "channel-mix",
        Satisfaction = "satisfaction",
        CompletionRate = "completion-rate",
        CostPerTransaction = "cost-per-transaction",
        EfficiencySavings = "efficiency-savings",
        AvoidableContact = "avoidable-contact",
        FirstContactResolution = "first-contact-resolution",
        FirstContactResolutionFlag = "first-contact-resolution-flag",
        ResponseRate = "response-rate",
        TelephoneWait = "telephone-wait",
        TelephoneAbandonment = "telephone-abandonment",
        Hotspots = "hotspots",
    }
}

channelshift_contract::vocabulary! {
    /// A key a KPI's rows may be broken down by (`group_by`).
    GroupKey, "group_by key" {
        Channel = "channel",
        ChannelClass = "channel_class",
        Service = "service",
        CustomerType = "customer_type",
        Ward = "ward",
        Lsoa = "lsoa",
    }
}

channelshift_contract::vocabulary! {
    /// A filter parameter a KPI may accept.
    FilterKey, "filter" {
        Service = "service",
        Channel = "channel",
        CustomerType = "customer_type",
        Instrument = "instrument",
    }
}

channelshift_contract::vocabulary! {
    /// What a KPI's value is measured in.
    Unit, "unit" {
        Percent = "percent",
        /// Pounds sterling.
        Gbp = "gbp",
        Seconds = "seconds",
        /// Percentage points of a net score (% favourable − % unfavourable,
        /// −100 to 100): satisfaction's `net` and `nps` measures.
        Points = "points",
    }
}

impl Unit {
    /// `value` as it is published and printed: a percentage to one decimal
    /// place, pounds to the penny (the nearest, ties to even, as Rust prints
    /// it). RAG status and direction of travel compare these, so a committee
    /// never reads "red" beside a printed figure that meets its target.
    pub fn published(self, value: f64) -> f64 {
        let printed = match self {
            Unit::Percent => format!("{value:.1}"),
            Unit::Gbp => format!("{value:.2}"),
            Unit::Seconds => format!("{value:.0}"),
            Unit::Points => format!("{value:.1}"),
        };
        printed.parse().unwrap_or(value)
    }
}

impl Kpi {
    /// The unit of the KPI's rows of `measure`: a net score's points for
    /// satisfaction's `net` and `nps`, else the KPI's own.
    pub fn unit_of(self, measure: Option<&str>) -> Unit {
        match (self, measure) {
            (Kpi::Satisfaction, Some("net" | "nps")) => Unit::Points,
            _ => self.spec().unit,
        }
    }
}

/// Which of a KPI's rows is its headline figure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Headline {
    /// The first row of its total (or of the period, in a trend).
    First,
    /// The row of one instrument's measure (satisfaction: csat5 % satisfied).
    Measure {
        instrument: &'static str,
        measure: &'static str,
    },
    /// The channel-class row of digital self-service.
    DigitalSelfServiceShare,
    /// The published area with the lowest value: the worst hot spot.
    LowestArea,
    /// The row of one measure of a KPI with several (telephone wait: median).
    Named(&'static str),
}

impl Headline {
    /// The measure the headline row is picked by, when it is picked by one.
    pub fn measure(self) -> Option<&'static str> {
        match self {
            Headline::Measure { measure, .. } | Headline::Named(measure) => Some(measure),
            Headline::First | Headline::DigitalSelfServiceShare | Headline::LowestArea => None,
        }
    }
}

/// What a council's target for a KPI is judged against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetScope {
    /// The figure of the period reported.
    Period,
    /// The financial year to the period's end (savings accumulate through the year).
    FinancialYearToDate,
    /// No figure is held to a target.
    None,
}

/// What the pack's trend of a KPI plots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrendSpec {
    /// What the trend plots, in plain English.
    pub measure: &'static str,
    /// The breakdown the headline row is picked from; `None` is the total.
    pub group_by: Option<GroupKey>,
    pub headline: Headline,
}

/// Everything stated about one KPI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KpiSpec {
    pub unit: Unit,
    /// The definition the API publishes, for analysts.
    pub definition: &'static str,
    pub group_by: &'static [GroupKey],
    pub filters: &'static [FilterKey],
    /// Which way is good when the council's target does not say.
    pub polarity: Polarity,
    /// Its place on the scorecard, when it is a headline there.
    pub scorecard: Option<Headline>,
    pub trend: TrendSpec,
    pub targets: TargetScope,
    /// The title of its page in a pack.
    pub title: &'static str,
    /// What it means, for a committee member rather than an analyst.
    pub plain_english: &'static str,
    /// Whether it needs the savings baseline period (`kpi.baseline`).
    pub needs_baseline: bool,
    /// Whether a pack shows its 95% interval beside each breakdown.
    pub shows_interval: bool,
    /// Whether a pack reports it in total as well as by each breakdown (hot spots are
    /// always by area: their total is the ward breakdown).
    pub has_total: bool,
}

use FilterKey as F;
use GroupKey as G;

const CONTACT_FILTERS: &[FilterKey] = &[F::Service, F::Channel, F::CustomerType];
/// A KPI whose value is a share of channels (take-up, channel mix, savings)
/// has no `channel` filter: one channel's share of itself means nothing.
const SHARE_FILTERS: &[FilterKey] = &[F::Service, F::CustomerType];
const CONTACT_GROUPS: &[GroupKey] = &[G::Channel, G::ChannelClass, G::Service, G::CustomerType];

/// The headlines of the scorecard, in its order.
pub const SCORECARD: [Kpi; 8] = [
    Kpi::DigitalTakeUp,
    Kpi::CompletionRate,
    Kpi::Satisfaction,
    Kpi::CostPerTransaction,
    Kpi::EfficiencySavings,
    Kpi::AvoidableContact,
    Kpi::FirstContactResolution,
    Kpi::ResponseRate,
];

/// The KPIs of phone calls only (the store reads channel `phone`).
pub const PHONE_ONLY: [Kpi; 2] = [Kpi::TelephoneWait, Kpi::TelephoneAbandonment];

/// `group_by` keys that cannot be asked for together.
pub const EXCLUSIVE_GROUPS: [(GroupKey, GroupKey); 2] = [
    (GroupKey::Channel, GroupKey::ChannelClass),
    (GroupKey::Ward, GroupKey::Lsoa),
];

/// A total-period headline: its first row.
const TOTAL: TrendSpec = TrendSpec {
    measure: "",
    group_by: None,
    headline: Headline::First,
};

const CSAT_SATISFIED: Headline = Headline::Measure {
    instrument: "csat5",
    measure: "satisfied",
};

impl Kpi {
    /// Everything stated about this KPI.
    pub const fn spec(self) -> KpiSpec {
        match self {
            Kpi::DigitalTakeUp => KpiSpec {
                unit: Unit::Percent,
                definition: "Completed transactions (interaction transaction, outcome completed or ineligible) through digital self-service channels as a percentage of all completed transactions (GDS). Assisted digital counts as digital unless kpi.take_up_definition is gds_2014.",
                group_by: &[G::Service, G::CustomerType],
                filters: SHARE_FILTERS,
                polarity: Polarity::HigherIsBetter,
                scorecard: Some(Headline::First),
                trend: TrendSpec {
                    measure: "Digital take-up, % of completed transactions",
                    ..TOTAL
                },
                targets: TargetScope::Period,
                title: "Digital take-up",
                plain_english: "Of all the transactions customers completed with us (applying, paying, reporting, booking), the share they completed online themselves, through the website, app or a kiosk. Help from staff to use the website still counts as online.",
                needs_baseline: false,
                shows_interval: true,
                has_total: true,
            },
            Kpi::ChannelMix => KpiSpec {
                unit: Unit::Percent,
                definition: "Contacts (all interactions and outcomes) per channel, or per channel class, as a percentage of all contacts in the same period and group.",
                group_by: CONTACT_GROUPS,
                filters: SHARE_FILTERS,
                polarity: Polarity::HigherIsBetter,
                scorecard: None,
                trend: TrendSpec {
                    measure: "Share of all contacts made through digital self-service, %",
                    group_by: Some(G::ChannelClass),
                    headline: Headline::DigitalSelfServiceShare,
                },
                targets: TargetScope::Period,
                title: "How customers contact us",
                plain_english: "How all contacts were split between the ways customers reach us: online self-service, webchat and email, telephone, face to face and paper.",
                needs_baseline: false,
                shows_interval: false,
                has_total: true,
            },
            Kpi::Satisfaction => KpiSpec {
                unit: Unit::Percent,
                definition: "Per instrument, never averaged across instruments: csat5 % satisfied (4-5); govmetric3 % good and net (good - poor) / n; nps11 NPS (%9-10 - %0-6); ces7 % scoring 5-7. Percentages carry n and a 95% Wilson interval; net scores a normal-approximation interval.",
                group_by: CONTACT_GROUPS,
                filters: &[F::Service, F::Channel, F::CustomerType, F::Instrument],
                polarity: Polarity::HigherIsBetter,
                scorecard: Some(CSAT_SATISFIED),
                trend: TrendSpec {
                    measure: "Customers satisfied (4 or 5 out of 5), %",
                    group_by: None,
                    headline: CSAT_SATISFIED,
                },
                targets: TargetScope::Period,
                title: "Customer satisfaction",
                plain_english: "Of the customers who answered our satisfaction survey on a five-point scale, the share who said they were satisfied or very satisfied (4 or 5). Other survey scales are reported separately, never mixed in.",
                needs_baseline: false,
                shows_interval: true,
                has_total: true,
            },
            Kpi::CompletionRate => KpiSpec {
                unit: Unit::Percent,
                definition: "Transactions through digital self-service ending completed or ineligible, as a percentage of all such transactions started (completed, ineligible, abandoned, failed, transferred) (GDS).",
                group_by: &[G::Channel, G::Service, G::CustomerType],
                filters: CONTACT_FILTERS,
                polarity: Polarity::HigherIsBetter,
                scorecard: Some(Headline::First),
                trend: TrendSpec {
                    measure: "Online transactions completed, % of those started",
                    ..TOTAL
                },
                targets: TargetScope::Period,
                title: "Online completion rate",
                plain_english: "Of the transactions customers started online, the share they finished (including those found not eligible), rather than giving up, failing or being passed to another channel.",
                needs_baseline: false,
                shows_interval: true,
                has_total: true,
            },
            Kpi::CostPerTransaction => KpiSpec {
                unit: Unit::Gbp,
                definition: "Sum of contacts times the unit cost of their channel in force on the contact's own day (effective-dated: a period spanning a cost change prices each day at its own cost), divided by completed transactions. Default unit costs are Socitm 2012's, which describe simple contacts, not whole transactions; numerator is the total cost in pence.",
                group_by: &[G::ChannelClass, G::Service, G::CustomerType],
                filters: CONTACT_FILTERS,
                polarity: Polarity::LowerIsBetter,
                scorecard: Some(Headline::First),
                trend: TrendSpec {
                    measure: "Cost per completed transaction, £",
                    ..TOTAL
                },
                targets: TargetScope::Period,
                title: "Cost per transaction",
                plain_english: "What contacts cost us, at an agreed cost for each channel, divided by the number of completed transactions.",
                needs_baseline: false,
                shows_interval: false,
                has_total: true,
            },
            Kpi::EfficiencySavings => KpiSpec {
                unit: Unit::Gbp,
                definition: "Cost avoided by channel shift: for each service, current contacts times the sum over channels of (baseline share - current share) times unit cost, each day's contacts at the unit costs in force that day, summed over days and services (each service's saving rounded to the penny). Services without baseline contacts contribute nothing and are listed in notes.",
                group_by: &[G::Service],
                filters: &[F::Service, F::CustomerType],
                polarity: Polarity::HigherIsBetter,
                scorecard: Some(Headline::First),
                trend: TrendSpec {
                    measure: "Savings from channel shift in the period, £",
                    ..TOTAL
                },
                targets: TargetScope::FinancialYearToDate,
                title: "Savings from channel shift",
                plain_english: "An estimate of the cost avoided because customers moved to cheaper channels since the baseline period: this period's contacts costed at the baseline's channel mix, less their cost at today's mix.",
                needs_baseline: true,
                shows_interval: false,
                has_total: true,
            },
            Kpi::AvoidableContact => KpiSpec {
                unit: Unit::Percent,
                definition: "Contacts flagged avoidable (failure demand) as a percentage of contacts where the flag was given.",
                group_by: CONTACT_GROUPS,
                filters: CONTACT_FILTERS,
                polarity: Polarity::LowerIsBetter,
                scorecard: Some(Headline::First),
                trend: TrendSpec {
                    measure: "Avoidable contact, % of contacts assessed",
                    ..TOTAL
                },
                targets: TargetScope::Period,
                title: "Avoidable contact",
                plain_english: "Of the contacts staff assessed, the share that should not have been needed, such as chasing progress or correcting our mistakes (failure demand).",
                needs_baseline: false,
                shows_interval: false,
                has_total: true,
            },
            Kpi::FirstContactResolution => KpiSpec {
                unit: Unit::Percent,
                definition: "Journeys (contacts sharing a journey_id) resolved at first contact as a percentage of journeys started in the period whose repeat window (kpi.repeat_window_days, default 7 days, counted in whole 24-hour days from the first contact's instant) has closed. A contact starts a journey when no contact of the same journey_id came within the window before it; the journey is resolved when no further contact of it comes within the window after. A journey counts in the period, channel, service and customer type of its first contact. Journeys whose window is still open (open_journeys) and contacts without a journey_id (not_measurable) are reported beside the rate, never counted as resolved. Wilson CI.",
                group_by: CONTACT_GROUPS,
                filters: CONTACT_FILTERS,
                polarity: Polarity::HigherIsBetter,
                scorecard: Some(Headline::First),
                trend: TrendSpec {
                    measure: "Journeys resolved at first contact, % of journeys",
                    ..TOTAL
                },
                targets: TargetScope::Period,
                title: "Resolved at first contact",
                plain_english: "Of the customers' requests that started in the period, the share where the customer did not have to contact us again about the same request within a week (or the council's chosen window). Contacts the source systems could not link to a request are counted separately, never as resolved.",
                needs_baseline: false,
                shows_interval: true,
                has_total: true,
            },
            Kpi::FirstContactResolutionFlag => KpiSpec {
                unit: Unit::Percent,
                definition: "The source systems' own view: contacts with first_contact_resolved = true as a percentage of contacts where the flag was given. Not linked by journey; first-contact-resolution is the measured figure.",
                group_by: CONTACT_GROUPS,
                filters: CONTACT_FILTERS,
                polarity: Polarity::HigherIsBetter,
                scorecard: None,
                trend: TrendSpec {
                    measure: "Contacts recorded as resolved first time, % of contacts flagged",
                    ..TOTAL
                },
                targets: TargetScope::Period,
                title: "Resolved first time, as recorded by staff",
                plain_english: "Of the contacts where staff or systems recorded whether the need was met first time, the share recorded as met. This is the recording, not a measurement: the measured figure is the journey-based one.",
                needs_baseline: false,
                shows_interval: false,
                has_total: true,
            },
            Kpi::ResponseRate => KpiSpec {
                unit: Unit::Percent,
                definition: "Satisfaction survey responses (all instruments) as a percentage of contacts (all interactions and outcomes) of the same period and group. Wilson CI; above 100% (responses in a period rating contacts of an earlier one) it has no interval.",
                group_by: CONTACT_GROUPS,
                filters: CONTACT_FILTERS,
                polarity: Polarity::HigherIsBetter,
                scorecard: Some(Headline::First),
                trend: TrendSpec {
                    measure: "Survey responses, % of contacts",
                    ..TOTAL
                },
                targets: TargetScope::Period,
                title: "Survey response rate",
                plain_english: "Of all the contacts customers made with us, how many led to an answer to the satisfaction survey. A low rate means the satisfaction figures rest on the few customers who chose to answer.",
                needs_baseline: false,
                shows_interval: true,
                has_total: true,
            },
            Kpi::TelephoneWait => KpiSpec {
                unit: Unit::Seconds,
                definition: "Phone contacts where wait_seconds is given: the mean wait (measure mean: the waits' sum / n) and the median wait (measure median: the middle wait, or the mean of the two middle waits when n is even), in seconds; n is those contacts. Phone contacts without a wait are left out of both.",
                group_by: &[G::Service, G::CustomerType],
                filters: &[F::Service, F::CustomerType],
                polarity: Polarity::LowerIsBetter,
                scorecard: None,
                trend: TrendSpec {
                    measure: "Median wait on the phone, seconds",
                    group_by: None,
                    headline: Headline::Named("median"),
                },
                targets: TargetScope::Period,
                title: "Waiting on the phone",
                plain_english: "How long callers waited before speaking to someone: the typical (median) wait, which half of callers beat, and the average wait, which a few long waits pull up.",
                needs_baseline: false,
                shows_interval: false,
                has_total: true,
            },
            Kpi::TelephoneAbandonment => KpiSpec {
                unit: Unit::Percent,
                definition: "Phone contacts where wait_seconds is given whose outcome is abandoned, as a percentage of those contacts. Wilson CI.",
                group_by: &[G::Service, G::CustomerType],
                filters: &[F::Service, F::CustomerType],
                polarity: Polarity::LowerIsBetter,
                scorecard: None,
                trend: TrendSpec {
                    measure: "Calls abandoned, % of calls that waited",
                    ..TOTAL
                },
                targets: TargetScope::Period,
                title: "Calls abandoned",
                plain_english: "Of the callers who waited to be answered, the share who gave up before their call ended in a result.",
                needs_baseline: false,
                shows_interval: true,
                has_total: true,
            },
            Kpi::Hotspots => KpiSpec {
                unit: Unit::Percent,
                definition: "Per ward (or LSOA): digital take-up with n = completed transactions, all contacts, and rank (1 = lowest take-up, the hot spot of digital exclusion). Contacts without the area are left out.",
                group_by: &[G::Ward, G::Lsoa],
                filters: &[],
                polarity: Polarity::HigherIsBetter,
                scorecard: None,
                trend: TrendSpec {
                    measure: "Digital take-up in the lowest ward, %",
                    group_by: Some(G::Ward),
                    headline: Headline::LowestArea,
                },
                targets: TargetScope::None,
                title: "Digital exclusion hot spots",
                plain_english: "Digital take-up in each ward, lowest first: the wards where residents are least able or likely to use online services, where help to get online may do most good.",
                needs_baseline: false,
                shows_interval: false,
                has_total: false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn published_values_are_the_printed_ones() {
        assert_eq!(Unit::Percent.published(44.96), 45.0);
        assert_eq!(Unit::Percent.published(44.94), 44.9);
        // 87.25 is exact in binary: printed, and compared, as 87.2.
        assert_eq!(Unit::Percent.published(87.25), 87.2);
        assert_eq!(Unit::Gbp.published(2.504), 2.5);
        assert_eq!(Unit::Gbp.published(-151.456), -151.46);
    }

    use super::*;

    #[test]
    fn every_scorecard_headline_states_its_pick_and_no_other_kpi_does() {
        for kpi in Kpi::ALL {
            assert_eq!(
                SCORECARD.contains(kpi),
                kpi.spec().scorecard.is_some(),
                "{kpi}"
            );
        }
    }

    #[test]
    fn slugs_are_the_apis_paths() {
        assert_eq!(Kpi::DigitalTakeUp.as_str(), "digital-take-up");
        assert_eq!(
            "first-contact-resolution".parse::<Kpi>(),
            Ok(Kpi::FirstContactResolution)
        );
        assert!("digital-takeup".parse::<Kpi>().is_err());
    }

    #[test]
    fn every_slug_can_name_a_spreadsheet_sheet() {
        // Excel refuses sheet names over 31 characters; the workbook names a sheet per KPI.
        for kpi in Kpi::ALL {
            assert!(kpi.as_str().len() <= 31, "{kpi}");
        }
    }

    #[test]
    fn a_trend_picks_from_a_breakdown_the_kpi_accepts() {
        for kpi in Kpi::ALL {
            let spec = kpi.spec();
            if let Some(key) = spec.trend.group_by {
                assert!(spec.group_by.contains(&key), "{kpi}: {key}");
            }
            assert!(!spec.trend.measure.is_empty(), "{kpi}");
            assert!(!spec.title.is_empty() && !spec.plain_english.is_empty());
        }
    }
}
