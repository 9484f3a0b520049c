//! The KPIs as pure functions from store cells to report rows, so the KPI
//! endpoint and the scorecard compute each figure the same way. The maths is
//! the `kpi` crate's; this module only groups cells and applies suppression.

use crate::policy::Policy;
use crate::request::{Grouping, KpiRequest};
use channelshift_contract::ServiceSlug;
use channelshift_kpi::catalogue::GroupKey;
use channelshift_kpi::channel::{
    Channel, ChannelClass, ContactsByChannel, CustomerType, Instrument, Outcome,
};
use channelshift_kpi::completion::{completion_rate, OutcomeCounts};
use channelshift_kpi::cost::{cost_per_transaction_dated, CostError, Pence};
use channelshift_kpi::demand::{avoidable_contact, first_contact_resolution};
use channelshift_kpi::interval::Rate;
use channelshift_kpi::satisfaction::{
    response_rate, satisfaction, NetScore, Satisfaction, ScoreCount,
};
use channelshift_kpi::savings::{channel_shift_savings_dated, DatedServiceContacts};
use channelshift_kpi::suppression::Published;
use channelshift_kpi::take_up::{digital_take_up, CompletedTransactions};
use channelshift_kpi::telephone::{abandonment_rate, mean_wait};
use channelshift_store::{AreaCell, ContactCell, JourneyCell, SatisfactionCell, WaitCell};
use chrono::NaiveDate;
use serde::Serialize;
use std::collections::BTreeMap;

/// A row's group keys, in [`GroupKey`] order.
pub type Keys = Vec<(&'static str, String)>;

/// One row of a KPI report. The row's group keys (`channel`, `channel_class`,
/// `service`, `customer_type`, `ward`, `lsoa`, `instrument`, `measure`) appear
/// as extra string fields; `contacts`, `baseline_contacts` and `rank` as extra
/// numbers on the KPIs that have them.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct KpiRow {
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    #[serde(flatten)]
    #[schema(ignore)]
    pub keys: BTreeMap<&'static str, String>,
    pub value: Option<f64>,
    pub numerator: Option<i64>,
    pub denominator: Option<u64>,
    pub n: Option<u64>,
    pub ci95_low: Option<f64>,
    pub ci95_high: Option<f64>,
    pub suppressed: bool,
    #[serde(flatten)]
    #[schema(ignore)]
    pub extra: BTreeMap<&'static str, serde_json::Value>,
}

impl KpiRow {
    fn new(period: (NaiveDate, NaiveDate), keys: &Keys) -> Self {
        Self {
            period_start: period.0,
            period_end: period.1,
            keys: keys.iter().cloned().collect(),
            value: None,
            numerator: None,
            denominator: None,
            n: None,
            ci95_low: None,
            ci95_high: None,
            suppressed: false,
            extra: BTreeMap::new(),
        }
    }

    /// Withholds every figure when `n` is below the threshold.
    fn suppress_below(self, n: u64, policy: &Policy) -> Self {
        if policy.suppression.count(n).is_suppressed() {
            self.withheld()
        } else {
            self
        }
    }

    /// The row with every figure withheld and marked.
    pub fn withheld(mut self) -> Self {
        self.value = None;
        self.numerator = None;
        self.denominator = None;
        self.n = None;
        self.ci95_low = None;
        self.ci95_high = None;
        self.suppressed = true;
        self
    }

    fn rate(period: (NaiveDate, NaiveDate), keys: &Keys, rate: Rate, policy: &Policy) -> Self {
        let mut row = Self::new(period, keys);
        match policy.suppression.rate(rate) {
            Published::Shown(rate) => {
                row.value = rate.percent();
                row.numerator = i64::try_from(rate.numerator()).ok();
                row.denominator = Some(rate.denominator());
                row.n = Some(rate.denominator());
                row.ci95_low = rate.interval().map(|interval| interval.low);
                row.ci95_high = rate.interval().map(|interval| interval.high);
            }
            Published::Suppressed => row.suppressed = true,
        }
        row
    }

    fn net(period: (NaiveDate, NaiveDate), keys: &Keys, score: NetScore, policy: &Policy) -> Self {
        let mut row = Self::new(period, keys);
        match policy.suppression.net_score(score) {
            Published::Shown(score) => {
                row.value = score.value();
                row.n = Some(score.n());
                row.ci95_low = score.interval().map(|interval| interval.low);
                row.ci95_high = score.interval().map(|interval| interval.high);
            }
            Published::Suppressed => row.suppressed = true,
        }
        // A net score is in points, not the KPI's percent.
        row.extra.insert("unit", "points".into());
        row
    }

    pub fn key(&self, name: &str) -> Option<&str> {
        self.keys.get(name).map(String::as_str)
    }
}

/// A KPI's rows plus notes for the reader (e.g. a missing unit cost).
#[derive(Default)]
pub struct Report {
    pub rows: Vec<KpiRow>,
    pub notes: Vec<String>,
}

impl Report {
    /// Adds a note once, however many rows it concerns.
    fn note(&mut self, note: String) {
        if !self.notes.contains(&note) {
            self.notes.push(note);
        }
    }
}

type Period = (NaiveDate, NaiveDate);

fn class(policy: &Policy, channel: Channel) -> ChannelClass {
    policy.channel_classes.class_of(channel)
}

/// The group keys `request` asks for, from a cell's channel, service and
/// customer type (the channel's class is derived from the channel). Keys are
/// text, so rows sort by their published names.
fn group_keys(
    request: &KpiRequest,
    policy: &Policy,
    channel: Option<Channel>,
    service: Option<&ServiceSlug>,
    customer_type: Option<CustomerType>,
) -> Keys {
    let mut keys = Vec::new();
    if request.groups(GroupKey::Channel) {
        keys.push(("channel", channel.map_or("", Channel::as_str).to_string()));
    }
    if request.groups(GroupKey::ChannelClass) {
        let class = channel.map_or(ChannelClass::Other, |channel| class(policy, channel));
        keys.push(("channel_class", class.as_str().to_string()));
    }
    if request.groups(GroupKey::Service) {
        keys.push((
            "service",
            service.map_or("", ServiceSlug::as_str).to_string(),
        ));
    }
    if request.groups(GroupKey::CustomerType) {
        keys.push((
            "customer_type",
            customer_type.map_or("", CustomerType::as_str).to_string(),
        ));
    }
    keys
}

fn contact_keys(request: &KpiRequest, policy: &Policy, cell: &ContactCell) -> Keys {
    group_keys(
        request,
        policy,
        Some(cell.channel),
        cell.service.as_ref(),
        cell.customer_type,
    )
}

fn satisfaction_keys(request: &KpiRequest, policy: &Policy, cell: &SatisfactionCell) -> Keys {
    group_keys(
        request,
        policy,
        cell.channel,
        cell.service.as_ref(),
        cell.customer_type,
    )
}

/// Groups contact cells by period and keys, starting every period off empty
/// when the request has no group keys (so each period gets its row).
fn group_contacts<'a, A: Default>(
    request: &KpiRequest,
    policy: &Policy,
    cells: &'a [ContactCell],
    mut add: impl FnMut(&mut A, &'a ContactCell),
) -> BTreeMap<(Period, Keys), A> {
    let mut groups: BTreeMap<(Period, Keys), A> = seeded(request);
    for cell in cells {
        let Some(period) = request.period_of(cell.period) else {
            continue;
        };
        let keys = contact_keys(request, policy, cell);
        add(groups.entry((period, keys)).or_default(), cell);
    }
    groups
}

pub fn digital_take_up_rows(
    request: &KpiRequest,
    policy: &Policy,
    cells: &[ContactCell],
) -> Report {
    let groups = group_contacts(
        request,
        policy,
        cells,
        |completed: &mut Vec<CompletedTransactions>, cell| {
            completed.push(CompletedTransactions {
                class: class(policy, cell.channel),
                assisted: cell.assisted,
                count: cell.completed_transactions(),
            });
        },
    );
    Report {
        rows: groups
            .into_iter()
            .map(|((period, keys), completed)| {
                KpiRow::rate(
                    period,
                    &keys,
                    digital_take_up(&completed, policy.take_up_definition),
                    policy,
                )
            })
            .collect(),
        notes: Vec::new(),
    }
}

pub fn channel_mix_rows(request: &KpiRequest, policy: &Policy, cells: &[ContactCell]) -> Report {
    let by_class = request.groups(GroupKey::ChannelClass);
    // Totals per period × other keys, then each channel's (class's) share of them.
    let mut totals: BTreeMap<(Period, Keys), u64> = BTreeMap::new();
    let mut parts: BTreeMap<(Period, Keys), BTreeMap<String, u64>> = BTreeMap::new();
    for cell in cells {
        let Some(period) = request.period_of(cell.period) else {
            continue;
        };
        let mut keys = contact_keys(request, policy, cell);
        keys.retain(|(name, _)| *name != "channel" && *name != "channel_class");
        let part = if by_class {
            class(policy, cell.channel).as_str()
        } else {
            cell.channel.as_str()
        }
        .to_string();
        *totals.entry((period, keys.clone())).or_default() += cell.all_contacts;
        *parts
            .entry((period, keys))
            .or_default()
            .entry(part)
            .or_default() += cell.all_contacts;
    }
    let name = if by_class { "channel_class" } else { "channel" };
    let mut rows = Vec::new();
    for ((period, keys), counts) in parts {
        let total = totals.get(&(period, keys.clone())).copied().unwrap_or(0);
        for (part, count) in counts.into_iter().filter(|(_, count)| *count > 0) {
            let mut row_keys = vec![(name, part)];
            row_keys.extend(keys.iter().cloned());
            rows.push(KpiRow::rate(
                period,
                &row_keys,
                Rate::new(count, total),
                policy,
            ));
        }
    }
    Report {
        rows,
        notes: Vec::new(),
    }
}

pub fn completion_rate_rows(
    request: &KpiRequest,
    policy: &Policy,
    cells: &[ContactCell],
) -> Report {
    let groups = group_contacts(
        request,
        policy,
        cells,
        |started: &mut OutcomeCounts, cell| {
            if class(policy, cell.channel) == ChannelClass::DigitalSelfService {
                started.add(Outcome::Completed, cell.tx_completed);
                started.add(Outcome::Ineligible, cell.tx_ineligible);
                started.add(Outcome::Abandoned, cell.tx_abandoned);
                started.add(Outcome::Failed, cell.tx_failed);
                started.add(Outcome::Transferred, cell.tx_transferred);
            }
        },
    );
    Report {
        rows: groups
            .into_iter()
            // A channel group outside digital self-service has no transactions to complete.
            .filter(|((_, keys), started)| {
                keys.iter().all(|(name, _)| *name != "channel") || total_started(started) > 0
            })
            .map(|((period, keys), started)| {
                KpiRow::rate(period, &keys, completion_rate(&started), policy)
            })
            .collect(),
        notes: Vec::new(),
    }
}

fn total_started(started: &OutcomeCounts) -> u64 {
    started.completed
        + started.ineligible
        + started.abandoned
        + started.failed
        + started.transferred
}

#[derive(Default)]
struct Flags {
    yes: u64,
    flagged: u64,
}

/// A rate over contacts that carry a yes/no flag: `pick` gives a cell's
/// (yes, flagged) counts, `rate` the KPI's rate of them.
fn flag_rate_rows(
    request: &KpiRequest,
    policy: &Policy,
    cells: &[ContactCell],
    pick: fn(&ContactCell) -> (u64, u64),
    rate: fn(u64, u64) -> Rate,
) -> Report {
    let groups = group_contacts(request, policy, cells, |flags: &mut Flags, cell| {
        let (yes, flagged) = pick(cell);
        flags.yes += yes;
        flags.flagged += flagged;
    });
    Report {
        rows: groups
            .into_iter()
            .map(|((period, keys), flags)| {
                KpiRow::rate(period, &keys, rate(flags.yes, flags.flagged), policy)
            })
            .collect(),
        notes: Vec::new(),
    }
}

pub fn avoidable_contact_rows(
    request: &KpiRequest,
    policy: &Policy,
    cells: &[ContactCell],
) -> Report {
    flag_rate_rows(
        request,
        policy,
        cells,
        |cell| (cell.avoidable_contacts, cell.avoidable_flagged),
        avoidable_contact,
    )
}

/// The source's own view: the wire flag `first_contact_resolved`.
pub fn first_contact_resolution_flag_rows(
    request: &KpiRequest,
    policy: &Policy,
    cells: &[ContactCell],
) -> Report {
    flag_rate_rows(
        request,
        policy,
        cells,
        |cell| (cell.resolved_first, cell.resolution_flagged),
        first_contact_resolution,
    )
}

#[derive(Default)]
struct JourneyCounts {
    journeys: u64,
    resolved: u64,
    open: u64,
    unlinked: u64,
}

/// A count as published beside a figure: withheld (null) when small.
fn published_count(policy: &Policy, count: u64) -> serde_json::Value {
    policy
        .suppression
        .count(count)
        .shown()
        .map_or(serde_json::Value::Null, serde_json::Value::from)
}

/// Every period of the request starts off empty when it has no group keys,
/// so each period gets its row.
fn seeded<A: Default>(request: &KpiRequest) -> BTreeMap<(Period, Keys), A> {
    let mut groups = BTreeMap::new();
    if request.group_by.is_empty() {
        for period in &request.periods {
            groups.insert((*period, Vec::new()), A::default());
        }
    }
    groups
}

/// First-contact resolution measured on journeys ([`JourneyCell`]): the
/// rate over journeys whose window has closed, with `open_journeys` and
/// `not_measurable` (contacts without a journey id) beside it.
pub fn first_contact_resolution_rows(
    request: &KpiRequest,
    policy: &Policy,
    cells: &[JourneyCell],
) -> Report {
    let mut groups: BTreeMap<(Period, Keys), JourneyCounts> = seeded(request);
    for cell in cells {
        let Some(period) = request.period_of(cell.period) else {
            continue;
        };
        let keys = group_keys(
            request,
            policy,
            Some(cell.channel),
            cell.service.as_ref(),
            cell.customer_type,
        );
        let counts = groups.entry((period, keys)).or_default();
        counts.journeys += cell.journeys;
        counts.resolved += cell.resolved;
        counts.open += cell.open;
        counts.unlinked += cell.unlinked;
    }
    Report {
        rows: groups
            .into_iter()
            .map(|((period, keys), counts)| {
                let mut row = KpiRow::rate(
                    period,
                    &keys,
                    first_contact_resolution(counts.resolved, counts.journeys),
                    policy,
                );
                row.extra
                    .insert("open_journeys", published_count(policy, counts.open));
                row.extra
                    .insert("not_measurable", published_count(policy, counts.unlinked));
                row
            })
            .collect(),
        notes: Vec::new(),
    }
}

/// A wait cell's group keys (its channel is the phone's, never a key).
fn wait_keys(request: &KpiRequest, policy: &Policy, cell: &WaitCell) -> Keys {
    group_keys(
        request,
        policy,
        None,
        cell.service.as_ref(),
        cell.customer_type,
    )
}

/// Telephone waits: per group, a `mean` and a `median` row (seconds), n
/// the calls with a wait.
pub fn telephone_wait_rows(request: &KpiRequest, policy: &Policy, cells: &[WaitCell]) -> Report {
    let mut groups: BTreeMap<(Period, Keys), Option<&WaitCell>> = seeded(request);
    for cell in cells {
        let Some(period) = request.period_of(cell.period) else {
            continue;
        };
        let keys = wait_keys(request, policy, cell);
        // Cells come grouped exactly as the request asks: one per group.
        groups.insert((period, keys), Some(cell));
    }
    let mut rows = Vec::new();
    for ((period, keys), cell) in groups {
        let waited = cell.map_or(0, |cell| cell.waited);
        for measure in ["mean", "median"] {
            let mut row_keys = keys.clone();
            row_keys.push(("measure", measure.to_string()));
            let mut row = KpiRow::new(period, &row_keys);
            row.n = Some(waited);
            row.value = cell.and_then(|cell| match measure {
                "mean" => mean_wait(cell.wait_total, cell.waited),
                _ => (cell.waited > 0).then_some(cell.median),
            });
            rows.push(row.suppress_below(waited, policy));
        }
    }
    Report {
        rows,
        notes: Vec::new(),
    }
}

/// Calls abandoned ÷ calls with a wait.
pub fn telephone_abandonment_rows(
    request: &KpiRequest,
    policy: &Policy,
    cells: &[WaitCell],
) -> Report {
    let mut groups: BTreeMap<(Period, Keys), (u64, u64)> = seeded(request);
    for cell in cells {
        let Some(period) = request.period_of(cell.period) else {
            continue;
        };
        let keys = wait_keys(request, policy, cell);
        let counts = groups.entry((period, keys)).or_default();
        counts.0 += cell.abandoned;
        counts.1 += cell.waited;
    }
    Report {
        rows: groups
            .into_iter()
            .map(|((period, keys), (abandoned, waited))| {
                KpiRow::rate(period, &keys, abandonment_rate(abandoned, waited), policy)
            })
            .collect(),
        notes: Vec::new(),
    }
}

#[derive(Default)]
struct Spend {
    /// Contacts by the day of their cell (`None`: the whole period) and channel.
    contacts: BTreeMap<Option<NaiveDate>, ContactsByChannel>,
    completed: u64,
}

/// The day each cell's contacts are priced on: its own day when `dated`
/// (cells by day, because a unit cost changes inside the range), else the
/// period's last day (every cost is the same throughout).
fn priced(
    contacts: &BTreeMap<Option<NaiveDate>, ContactsByChannel>,
    period: Period,
    dated: bool,
) -> BTreeMap<NaiveDate, ContactsByChannel> {
    let mut by_day: BTreeMap<NaiveDate, ContactsByChannel> = BTreeMap::new();
    for (day, channels) in contacts {
        let on = match day {
            Some(day) if dated => *day,
            _ => period.1,
        };
        let priced = by_day.entry(on).or_default();
        for (&channel, &count) in channels {
            *priced.entry(channel).or_default() += count;
        }
    }
    by_day
}

/// Pounds with two decimals from pence.
fn pounds(pence: Pence) -> f64 {
    pence.0 as f64 / 100.0
}

fn cost_note(error: &CostError) -> String {
    format!("{error}: the figure needs it and a channel is never treated as free; load the council's unit costs (kpi.unit_costs)")
}

/// Cost per transaction; with `dated`, `cells` are by day and each day is
/// priced at the unit costs in force that day.
pub fn cost_per_transaction_rows(
    request: &KpiRequest,
    policy: &Policy,
    cells: &[ContactCell],
    dated: bool,
) -> Report {
    let groups = group_contacts(request, policy, cells, |spend: &mut Spend, cell| {
        *spend
            .contacts
            .entry(cell.period)
            .or_default()
            .entry(cell.channel)
            .or_default() += cell.all_contacts;
        spend.completed += cell.completed_transactions();
    });
    let mut report = Report::default();
    for ((period, keys), spend) in groups {
        let mut row = KpiRow::new(period, &keys);
        match cost_per_transaction_dated(
            &priced(&spend.contacts, period, dated),
            spend.completed,
            &policy.unit_costs,
        ) {
            Ok(cost) => {
                row.value = cost.per_transaction.map(pounds);
                row.numerator = Some(cost.total_cost.0);
                row.denominator = Some(cost.completed_transactions);
                row.n = Some(cost.completed_transactions);
            }
            Err(error) => {
                report.note(cost_note(&error));
                row.denominator = Some(spend.completed);
                row.n = Some(spend.completed);
            }
        }
        report
            .rows
            .push(row.suppress_below(spend.completed, policy));
    }
    report
}

/// Contacts per service and channel: the input of savings.
pub fn contacts_by_service(cells: &[ContactCell]) -> BTreeMap<String, ContactsByChannel> {
    let mut services: BTreeMap<String, ContactsByChannel> = BTreeMap::new();
    for cell in cells {
        let service = cell.service.as_ref().map_or("", ServiceSlug::as_str);
        *services
            .entry(service.to_string())
            .or_default()
            .entry(cell.channel)
            .or_default() += cell.all_contacts;
    }
    services
}

/// Savings per period against `baseline` (contacts per service and channel
/// of the baseline period). `cells` must be keyed by service; with `dated`
/// they are by day and each day is priced at the unit costs in force that day.
pub fn efficiency_savings_rows(
    request: &KpiRequest,
    policy: &Policy,
    cells: &[ContactCell],
    baseline: &BTreeMap<String, ContactsByChannel>,
    dated: bool,
) -> Report {
    let mut by_period: BTreeMap<Period, Vec<ContactCell>> = BTreeMap::new();
    if request.grouping == Grouping::Total || request.group_by.is_empty() {
        for period in &request.periods {
            by_period.insert(*period, Vec::new());
        }
    }
    for cell in cells {
        if let Some(period) = request.period_of(cell.period) {
            by_period.entry(period).or_default().push(cell.clone());
        }
    }
    let by_service = request.groups(GroupKey::Service);
    let mut report = Report::default();
    for (period, cells) in by_period {
        // Per service: contacts by the day of their cell and channel.
        let mut current: BTreeMap<String, BTreeMap<Option<NaiveDate>, ContactsByChannel>> =
            BTreeMap::new();
        for cell in &cells {
            let service = cell.service.as_ref().map_or("", ServiceSlug::as_str);
            *current
                .entry(service.to_string())
                .or_default()
                .entry(cell.period)
                .or_default()
                .entry(cell.channel)
                .or_default() += cell.all_contacts;
        }
        let services: Vec<DatedServiceContacts> = current
            .iter()
            .map(|(service, contacts)| DatedServiceContacts {
                service: service.clone(),
                baseline: baseline.get(service).cloned().unwrap_or_default(),
                current: priced(contacts, period, dated),
            })
            .collect();
        let contacts: u64 = cells.iter().map(|cell| cell.all_contacts).sum();
        match channel_shift_savings_dated(&services, &policy.unit_costs) {
            Ok(savings) => {
                for service in &savings.no_baseline {
                    report.note(format!(
                        "{service}: no baseline contacts, so it contributes nothing"
                    ));
                }
                if by_service {
                    for saving in savings.services {
                        let mut row =
                            KpiRow::new(period, &vec![("service", saving.service.clone())]);
                        row.value = Some(pounds(saving.saving));
                        row.n = Some(saving.current_contacts);
                        // A small baseline count is withheld like any other count.
                        let baseline = policy.suppression.count(saving.baseline_contacts).shown();
                        row.extra.insert("baseline_contacts", baseline.into());
                        report
                            .rows
                            .push(row.suppress_below(saving.current_contacts, policy));
                    }
                } else {
                    let mut row = KpiRow::new(period, &Vec::new());
                    row.value = Some(pounds(savings.total));
                    row.n = Some(contacts);
                    report.rows.push(row.suppress_below(contacts, policy));
                }
            }
            Err(error) => {
                report.note(cost_note(&error));
                let mut row = KpiRow::new(period, &Vec::new());
                row.n = Some(contacts);
                report.rows.push(row.suppress_below(contacts, policy));
            }
        }
    }
    report
}

pub fn satisfaction_rows(
    request: &KpiRequest,
    policy: &Policy,
    cells: &[SatisfactionCell],
) -> Report {
    // Keyed by the instrument's name: rows sort by their published names.
    let mut groups: BTreeMap<(Period, Keys, &'static str), (Instrument, Vec<ScoreCount>)> =
        BTreeMap::new();
    for cell in cells {
        let Some(period) = request.period_of(cell.period) else {
            continue;
        };
        let keys = satisfaction_keys(request, policy, cell);
        let (_, scores) = groups
            .entry((period, keys, cell.instrument.as_str()))
            .or_insert_with(|| (cell.instrument, Vec::new()));
        match scores.iter_mut().find(|count| count.score == cell.score) {
            Some(count) => count.responses += cell.responses,
            None => scores.push(ScoreCount {
                score: cell.score,
                responses: cell.responses,
            }),
        }
    }
    let mut report = Report::default();
    for ((period, keys, _), (instrument, scores)) in groups {
        let Ok(result) = satisfaction(instrument, &scores) else {
            continue;
        };
        let with = |measure: &str| {
            let mut row_keys = keys.clone();
            row_keys.push(("instrument", instrument.as_str().to_string()));
            row_keys.push(("measure", measure.to_string()));
            row_keys
        };
        match result {
            Satisfaction::Csat5 { satisfied } => {
                report
                    .rows
                    .push(KpiRow::rate(period, &with("satisfied"), satisfied, policy));
            }
            Satisfaction::Govmetric3 { good, net, .. } => {
                report
                    .rows
                    .push(KpiRow::rate(period, &with("good"), good, policy));
                report
                    .rows
                    .push(KpiRow::net(period, &with("net"), net, policy));
            }
            Satisfaction::Nps11 { nps, .. } => {
                report
                    .rows
                    .push(KpiRow::net(period, &with("nps"), nps, policy));
            }
            Satisfaction::Ces7 { easy } => {
                report
                    .rows
                    .push(KpiRow::rate(period, &with("easy"), easy, policy));
            }
        }
    }
    report
}

/// Survey responses ÷ contacts of the same period and group keys.
pub fn response_rate_rows(
    request: &KpiRequest,
    policy: &Policy,
    contacts: &[ContactCell],
    responses: &[SatisfactionCell],
) -> Report {
    // (responses, contacts) per period and keys.
    let mut groups: BTreeMap<(Period, Keys), (u64, u64)> = seeded(request);
    for cell in contacts {
        let Some(period) = request.period_of(cell.period) else {
            continue;
        };
        let keys = contact_keys(request, policy, cell);
        groups.entry((period, keys)).or_default().1 += cell.all_contacts;
    }
    for cell in responses {
        let Some(period) = request.period_of(cell.period) else {
            continue;
        };
        let keys = satisfaction_keys(request, policy, cell);
        groups.entry((period, keys)).or_default().0 += cell.responses;
    }
    Report {
        rows: groups
            .into_iter()
            .map(|((period, keys), (responses, contacts))| {
                KpiRow::rate(period, &keys, response_rate(responses, contacts), policy)
            })
            .collect(),
        notes: Vec::new(),
    }
}

#[derive(Default)]
struct AreaTotals {
    completed: Vec<CompletedTransactions>,
    contacts: u64,
}

/// Hot spots by `area`; by LSOA, each row carries `imd_decile` from
/// `deciles` (the council's IMD lookup; null for an LSOA it lacks).
pub fn hotspot_rows(
    request: &KpiRequest,
    policy: &Policy,
    cells: &[AreaCell],
    area: &'static str,
    deciles: &BTreeMap<String, u8>,
) -> Report {
    let mut groups: BTreeMap<(Period, String), AreaTotals> = BTreeMap::new();
    for cell in cells.iter().filter(|cell| !cell.area.is_empty()) {
        let Some(period) = request.period_of(cell.period) else {
            continue;
        };
        let totals = groups.entry((period, cell.area.clone())).or_default();
        totals.contacts += cell.all_contacts;
        totals.completed.push(CompletedTransactions {
            class: class(policy, cell.channel),
            assisted: cell.assisted,
            count: cell.completed,
        });
    }
    let mut by_period: BTreeMap<Period, Vec<KpiRow>> = BTreeMap::new();
    for ((period, code), totals) in groups {
        let mut row = KpiRow::rate(
            period,
            &vec![(area, code)],
            digital_take_up(&totals.completed, policy.take_up_definition),
            policy,
        );
        let contacts = policy.suppression.count(totals.contacts).shown();
        row.extra.insert("contacts", contacts.into());
        if area == "lsoa" {
            let decile = row.key("lsoa").and_then(|lsoa| deciles.get(lsoa)).copied();
            row.extra.insert("imd_decile", decile.into());
        }
        by_period.entry(period).or_default().push(row);
    }
    let mut rows = Vec::new();
    for (_, mut period_rows) in by_period {
        // Lowest take-up first: the hot spots of digital exclusion.
        period_rows.sort_by(|a, b| match (a.value, b.value) {
            (Some(x), Some(y)) => x.total_cmp(&y).then_with(|| a.keys.cmp(&b.keys)),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.keys.cmp(&b.keys),
        });
        let mut rank = 0u64;
        for mut row in period_rows {
            let value = if row.value.is_some() {
                rank += 1;
                serde_json::Value::from(rank)
            } else {
                serde_json::Value::Null
            };
            row.extra.insert("rank", value);
            rows.push(row);
        }
    }
    Report {
        rows,
        notes: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::KpiSettings;
    use channelshift_contract::CouncilCode;
    use channelshift_kpi::catalogue::GroupKey;
    use channelshift_store::CellFilter;

    fn day(text: &str) -> NaiveDate {
        text.parse().expect("a test date")
    }

    fn request(group_by: Vec<GroupKey>) -> KpiRequest {
        let (from, to) = (day("2026-04-01"), day("2026-06-30"));
        KpiRequest {
            filter: CellFilter::new(CouncilCode::parse("E07000041").expect("GSS"), from, to),
            grouping: Grouping::Total,
            group_by,
            periods: vec![(from, to)],
        }
    }

    fn cell(channel: Channel, completed: u64, contacts: u64) -> ContactCell {
        ContactCell {
            all_contacts: contacts,
            tx_completed: completed,
            ..ContactCell::empty(channel, false)
        }
    }

    fn policy(settings: KpiSettings) -> Policy {
        Policy::new(&settings).expect("valid settings")
    }

    #[test]
    fn take_up_follows_the_councils_channel_classes() {
        let cells = [
            cell(Channel::Web, 30, 30),
            cell(Channel::Webchat, 20, 20),
            cell(Channel::Phone, 50, 50),
        ];
        let default = digital_take_up_rows(
            &request(Vec::new()),
            &policy(KpiSettings::default()),
            &cells,
        );
        assert_eq!(default.rows[0].value, Some(30.0));
        let mut settings = KpiSettings::default();
        settings
            .channel_classes
            .insert("webchat".into(), "digital_self_service".into());
        let moved = digital_take_up_rows(&request(Vec::new()), &policy(settings), &cells);
        assert_eq!(moved.rows[0].value, Some(50.0));
    }

    #[test]
    fn channel_mix_rows_are_in_the_order_of_their_published_names() {
        let cells = [
            cell(Channel::Web, 0, 60),
            cell(Channel::Phone, 0, 30),
            cell(Channel::App, 0, 10),
        ];
        let report = channel_mix_rows(
            &request(vec![GroupKey::Channel]),
            &policy(KpiSettings::default()),
            &cells,
        );
        let shares: Vec<(&str, Option<f64>)> = report
            .rows
            .iter()
            .map(|row| (row.key("channel").unwrap_or_default(), row.value))
            .collect();
        assert_eq!(
            shares,
            [
                ("app", Some(10.0)),
                ("phone", Some(30.0)),
                ("web", Some(60.0))
            ]
        );
    }

    #[test]
    fn a_share_over_too_few_contacts_is_withheld_not_zero() {
        let cells = [cell(Channel::Web, 3, 3), cell(Channel::Phone, 2, 2)];
        let report = digital_take_up_rows(
            &request(Vec::new()),
            &policy(KpiSettings::default()),
            &cells,
        );
        assert!(report.rows[0].suppressed);
        assert_eq!(report.rows[0].value, None);
    }
}
