//! A committee pack's figures: every KPI for a council and a period, in
//! total and by each breakdown it accepts, the trend of each headline, and
//! the restatements since the previous pack. How a pack is written out (CSV,
//! spreadsheets, HTML, PDF) is the caller's.
//!
//! Figures are those of the raw tables as they stood at the pack's as-of
//! instant, read from the rollups where nothing was ingested since (see
//! [`build`]), so a pack regenerated with the same as-of has the same
//! figures however much data arrived since. Packs are published: small
//! numerators are withheld as well as small denominators. A period reported
//! by the previous pack whose figure has changed since is flagged restated.

use crate::compute::compute;
use crate::error::ReportError;
use crate::forecast::{self, YearEndForecast};
use crate::opportunity::{opportunities, OpportunityReport};
use crate::policy::Policy;
use crate::request::{Grouping, KpiRequest};
use crate::rows::KpiRow;
use channelshift_contract::CouncilCode;
use channelshift_kpi::catalogue::{GroupKey, Headline, Kpi, TargetScope, Unit};
use channelshift_kpi::channel::Channel;
use channelshift_kpi::period::{local_date, Period, PeriodKind};
use channelshift_kpi::rag::{direction_with_significance, Direction, Polarity, Rag, Target};
use channelshift_store::{Bucket, CellFilter, CutOff, Keys, Source, Store};
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::BTreeMap;

/// How many periods a trend shows, the pack's own included.
pub const TREND_PERIODS: usize = 8;

/// One figure of the pack: a KPI row for the pack's period (or, for
/// efficiency savings' year-to-date row, the financial year to its end).
pub struct PackRow {
    pub kpi: Kpi,
    pub unit: Unit,
    /// `total`, `financial_year_to_date`, or the key the row is broken down by.
    pub breakdown: &'static str,
    pub row: KpiRow,
    /// The council's target and the RAG status against it (headline rows only).
    pub target: Option<Target>,
    pub rag: Option<Rag>,
}

impl PackRow {
    /// `instrument/measure` for satisfaction rows; empty otherwise.
    pub fn measure(&self) -> String {
        measure_of(&self.row)
    }

    pub fn breakdown_value(&self) -> &str {
        match self.breakdown {
            "total" | "financial_year_to_date" => "",
            key => self.row.key(key).unwrap_or_default(),
        }
    }
}

/// `instrument/measure` for a satisfaction row; empty for other KPIs.
pub fn measure_of(row: &KpiRow) -> String {
    match (row.key("instrument"), row.key("measure")) {
        (Some(instrument), Some(measure)) => format!("{instrument}/{measure}"),
        _ => String::new(),
    }
}

/// A published figure of an earlier pack, for restatement flags.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Published {
    pub value: Option<f64>,
    pub suppressed: bool,
}

/// One period of a headline's trend.
pub struct TrendPoint {
    pub period: Period,
    /// The row the headline was read from (None when there is no figure).
    pub row: Option<KpiRow>,
    pub value: Option<f64>,
    pub n: Option<u64>,
    pub suppressed: bool,
    /// What the previous pack published for this period, when it had the
    /// period complete and the figure has changed since: a restatement.
    pub restated_from: Option<Published>,
}

/// A KPI's headline measure over the last `TREND_PERIODS` periods.
pub struct Trend {
    pub kpi: Kpi,
    pub unit: Unit,
    /// The breakdown the headline row is picked from (`total`, `channel_class`, `ward`).
    pub breakdown: &'static str,
    /// What the trend plots, in plain English.
    pub measure: &'static str,
    pub points: Vec<TrendPoint>,
    pub polarity: Polarity,
    pub target: Option<Target>,
    /// Whether direction of travel may say "no significant change"
    /// (`kpi.direction_significance`).
    pub significance: bool,
}

impl Trend {
    pub fn current(&self) -> Option<&TrendPoint> {
        self.points.last()
    }

    pub fn previous(&self) -> Option<&TrendPoint> {
        self.points.iter().rev().nth(1)
    }

    /// This period against the previous one, read through the polarity.
    pub fn direction(&self) -> Option<Direction> {
        let current = self.current()?;
        let now = current.value?;
        let then = self.previous()?.value?;
        let interval = current
            .row
            .as_ref()
            .and_then(|row| row.ci95_low.zip(row.ci95_high))
            .filter(|_| self.significance);
        Some(direction_with_significance(
            self.unit.published(now),
            self.unit.published(then),
            self.polarity,
            interval,
        ))
    }
}

/// The index of the headline row among one period's `rows`.
fn pick(headline: Headline, rows: &[&KpiRow]) -> Option<usize> {
    match headline {
        Headline::First => (!rows.is_empty()).then_some(0),
        Headline::DigitalSelfServiceShare => rows
            .iter()
            .position(|row| row.key("channel_class") == Some("digital_self_service")),
        Headline::Measure {
            instrument,
            measure,
        } => rows.iter().position(|row| {
            row.key("instrument") == Some(instrument) && row.key("measure") == Some(measure)
        }),
        Headline::Named(measure) => rows
            .iter()
            .position(|row| row.key("measure") == Some(measure)),
        // The published area with the lowest take-up: the period's worst hot spot.
        Headline::LowestArea => rows
            .iter()
            .enumerate()
            .filter(|(_, row)| row.value.is_some())
            .min_by(|(_, a), (_, b)| {
                a.value
                    .unwrap_or_default()
                    .total_cmp(&b.value.unwrap_or_default())
            })
            .map(|(index, _)| index),
    }
}

/// How much of the period the data covers, up to the as-of day.
pub struct Coverage {
    pub days: u64,
    pub days_with_data: u64,
}

/// The unit cost of each channel in force at the period's end, in pence.
pub type UnitCostsUsed = Vec<(Channel, Option<i64>)>;

/// A committee pack: its scope, its figures, their trends and what they rest on.
pub struct Pack {
    pub council: String,
    /// "Exeter City Council (E07000041)", or the code without a configured name.
    pub council_name: String,
    /// The satisfaction measure the council headlines.
    pub satisfaction: Headline,
    pub period: Period,
    pub as_of: CutOff,
    /// The as-of of the pack this one is compared with for restatements.
    pub previous_as_of: Option<CutOff>,
    pub rows: Vec<PackRow>,
    pub trends: Vec<Trend>,
    pub notes: Vec<(Kpi, String)>,
    pub coverage: Coverage,
    pub unit_costs: UnitCostsUsed,
    pub settings: Settings,
    /// Where to shift next: every service's opportunity over the year to
    /// the period's end, as of the cut-off.
    pub opportunities: OpportunityReport,
    /// Each forecast KPI's year-end forecast, as stored by the as-of instant
    /// from history no later than the period's end (or the as-of day).
    pub forecasts: Vec<PackForecast>,
}

/// A headline's year-end forecast in a pack, or why it has none.
pub struct PackForecast {
    pub kpi: Kpi,
    pub unit: Unit,
    pub forecast: Result<YearEndForecast, String>,
    /// The year's target (savings: the annual one).
    pub target: Option<Target>,
}

/// The settings the figures were computed under, recorded in the pack.
pub struct Settings {
    pub take_up_definition: &'static str,
    pub suppression_threshold: u64,
    pub baseline: Option<(NaiveDate, NaiveDate)>,
    /// First-contact resolution's repeat window, days.
    pub repeat_window_days: u32,
    /// Whether the savings target follows the council's monthly profile
    /// (else it accrues pro rata by day).
    pub savings_profiled: bool,
}

impl Pack {
    pub fn as_of_text(&self) -> String {
        self.as_of.to_string()
    }

    pub fn file_stem(&self) -> String {
        file_stem(&self.council, &self.period)
    }

    pub fn trend(&self, kpi: Kpi) -> Option<&Trend> {
        self.trends.iter().find(|trend| trend.kpi == kpi)
    }

    /// The rows of one KPI, in pack order.
    pub fn rows_of(&self, kpi: Kpi) -> impl Iterator<Item = &PackRow> + '_ {
        self.rows.iter().filter(move |row| row.kpi == kpi)
    }

    pub fn restatements(&self) -> impl Iterator<Item = (&Trend, &TrendPoint)> {
        self.trends.iter().flat_map(|trend| {
            trend
                .points
                .iter()
                .filter(|point| point.restated_from.is_some())
                .map(move |point| (trend, point))
        })
    }
}

/// A pack's file name without its ending, e.g. `channelshift-E07000041-2025-26-Q1`.
pub fn file_stem(council: &str, period: &Period) -> String {
    format!(
        "channelshift-{council}-{}",
        period.label().replace(' ', "-")
    )
}

fn published(row: KpiRow, policy: &Policy) -> KpiRow {
    // Published outputs withhold small counts of cases, not only small bases:
    // a small numerator, or a small complement (98% of 200 tells 4 did not).
    let small = |count: i64| count > 0 && policy.suppression.count(count as u64).is_suppressed();
    let withheld = match (row.numerator, row.denominator) {
        (Some(numerator), Some(denominator)) => {
            let denominator = i64::try_from(denominator).unwrap_or(i64::MAX);
            small(numerator) || (numerator <= denominator && small(denominator - numerator))
        }
        _ => false,
    };
    if withheld {
        row.withheld()
    } else {
        row
    }
}

/// A breakdown's group for secondary suppression: breakdown, instrument,
/// measure and (for channels) channel class.
type GroupOf<'a> = (&'a str, Option<&'a str>, Option<&'a str>, Option<&'a str>);

/// How a pack protects small numbers, as its metadata states it.
pub const DISCLOSURE_CONTROL: &str = "Primary suppression: a figure whose cases, numerator or numerator's complement (those not counted) number from 1 to the threshold less one is withheld. Secondary suppression: wherever a breakdown (or the channels of one channel class) would have a single withheld row, the shown row with the fewest cases is withheld too, so no withheld count can be had by subtracting the shown rows from their total. Counts are not rounded.";

/// Secondary suppression over one KPI's published rows, so that no withheld
/// count can be had by subtraction: a total minus the other rows of a
/// breakdown, or a channel class minus its other channels. Wherever a
/// breakdown (per instrument and measure for satisfaction; per class for
/// channels) has exactly one row withheld, the shown row with the fewest
/// cases is withheld too, or, with none left to withhold, the row they add
/// up to (the class; the total is then itself a small count, withheld
/// already). Repeated until no breakdown has a lone withheld row.
pub fn protect(rows: &mut [PackRow], policy: &Policy) {
    // Each group: its members and the row they add up to, if any.
    let groups = |rows: &[PackRow]| -> Vec<(Vec<usize>, Option<usize>)> {
        // (breakdown, instrument, measure, channel class) → member rows.
        let mut groups: BTreeMap<GroupOf<'_>, Vec<usize>> = BTreeMap::new();
        for (index, pack_row) in rows.iter().enumerate() {
            let breakdown = pack_row.breakdown;
            if breakdown == "total" || breakdown == "financial_year_to_date" {
                continue;
            }
            let measure = (pack_row.row.key("instrument"), pack_row.row.key("measure"));
            groups
                .entry((breakdown, measure.0, measure.1, None))
                .or_default()
                .push(index);
            if breakdown == "channel" {
                let class = pack_row
                    .row
                    .key("channel")
                    .and_then(|channel| channel.parse().ok())
                    .map(|channel| policy.channel_classes.class_of(channel).as_str());
                groups
                    .entry((breakdown, measure.0, measure.1, class))
                    .or_default()
                    .push(index);
            }
        }
        groups
            .into_iter()
            .map(|((_, instrument, measure, class), members)| {
                let sum_row = rows.iter().position(|candidate| {
                    let same_measure = candidate.row.key("instrument") == instrument
                        && candidate.row.key("measure") == measure;
                    same_measure
                        && match class {
                            Some(class) => {
                                candidate.breakdown == "channel_class"
                                    && candidate.row.key("channel_class") == Some(class)
                            }
                            None => candidate.breakdown == "total",
                        }
                });
                (members, sum_row)
            })
            .collect()
    };
    // Cases before any withholding, to find the smallest shown row: a
    // share's own count (its numerator), else the row's n.
    let cases: Vec<u64> = rows
        .iter()
        .map(|pack_row| match (pack_row.unit, pack_row.row.numerator) {
            (Unit::Percent, Some(numerator)) => u64::try_from(numerator).unwrap_or(0),
            _ => pack_row.row.n.unwrap_or(0),
        })
        .collect();
    loop {
        let mut changed = false;
        for (members, sum_row) in groups(rows) {
            let withheld = members
                .iter()
                .filter(|&&index| rows[index].row.suppressed)
                .count();
            if withheld != 1 {
                continue;
            }
            let next = members
                .iter()
                .copied()
                .filter(|&index| !rows[index].row.suppressed && cases[index] > 0)
                .min_by_key(|&index| (cases[index], index));
            let target = next.or(sum_row.filter(|&index| !rows[index].row.suppressed));
            if let Some(index) = target {
                rows[index].row = rows[index].row.clone().withheld();
                rows[index].rag = None;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
}

fn request(
    council: &CouncilCode,
    from: NaiveDate,
    to: NaiveDate,
    grouping: Grouping,
    group_by: Option<GroupKey>,
    periods: Vec<(NaiveDate, NaiveDate)>,
) -> KpiRequest {
    KpiRequest {
        filter: CellFilter::new(council.clone(), from, to),
        grouping,
        group_by: group_by.into_iter().collect(),
        periods,
    }
}

/// Which pack of `council` this one is compared with for restatements.
pub struct Scope<'a> {
    pub council: &'a CouncilCode,
    pub period: Period,
    pub as_of: CutOff,
    pub previous_as_of: Option<CutOff>,
}

/// Where a pack reads: as of its cut-off, and as of the previous pack's.
#[derive(Clone, Copy)]
struct Reads {
    now: Source,
    previous: Option<(CutOff, Source)>,
}

/// Computes the pack: every KPI in total and by each breakdown it accepts,
/// the trend of each headline, and the restatements since the previous pack.
///
/// The figures are those of the raw tables as they stood at the cut-off. They
/// are read from the rollups for the months nothing was ingested into since
/// (see [`Store::settled_months`]), and from the raw tables for the rest. If
/// rows after the cut-off reach a month read from the rollups while the pack
/// is computed, the pack is computed again from the raw tables alone.
pub async fn build(store: &Store, policy: &Policy, scope: Scope<'_>) -> Result<Pack, ReportError> {
    // Journeys are judged up to 90 days (the longest repeat window) past
    // the period: the months to a hundred days after it are read.
    let last = scope
        .period
        .last_day()
        .checked_add_days(chrono::Days::new(100))
        .unwrap_or(NaiveDate::MAX);
    let council = scope.council.as_str();
    let settled = store.settled_months(council, scope.as_of, last).await?;
    let previous = match scope.previous_as_of {
        Some(previous) => Some((
            previous,
            Source::AsOf(
                previous,
                store.settled_months(council, previous, last).await?,
            ),
        )),
        None => None,
    };
    let reads = Reads {
        now: Source::AsOf(scope.as_of, settled),
        previous,
    };
    let pack = build_reading(store, policy, &scope, reads).await?;
    // A row ingested now is after both cut-offs, so it makes a month late
    // for the previous pack only if it makes it late for this one: asking
    // for this one's cut-off again is enough.
    if store.settled_months(council, scope.as_of, last).await? == settled {
        return Ok(pack);
    }
    tracing::info!(
        council,
        "rows stored after the cut-off reached months the pack read from the rollups: \
         computing it again from the raw tables"
    );
    build_from_raw(store, policy, scope).await
}

/// The pack from the raw tables alone, as they stood at the cut-off: what
/// [`build`] gives, the slow way.
pub async fn build_from_raw(
    store: &Store,
    policy: &Policy,
    scope: Scope<'_>,
) -> Result<Pack, ReportError> {
    let raw = Reads {
        now: Source::RawAsOf(scope.as_of),
        previous: scope
            .previous_as_of
            .map(|previous| (previous, Source::RawAsOf(previous))),
    };
    build_reading(store, policy, &scope, raw).await
}

async fn build_reading(
    store: &Store,
    policy: &Policy,
    scope: &Scope<'_>,
    reads: Reads,
) -> Result<Pack, ReportError> {
    let &Scope {
        council,
        period,
        as_of,
        previous_as_of,
    } = scope;
    let source = reads.now;
    let (from, to) = (period.first_day(), period.last_day());
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    for &kpi in Kpi::ALL {
        let spec = kpi.spec();
        if spec.needs_baseline && policy.baseline.is_none() {
            notes.push((
                kpi,
                "No baseline period is configured (kpi.baseline), so savings are not reported."
                    .to_string(),
            ));
            continue;
        }
        let breakdowns = std::iter::once(None)
            .filter(|_| spec.has_total)
            .chain(spec.group_by.iter().copied().map(Some));
        for breakdown in breakdowns {
            let request = request(
                council,
                from,
                to,
                Grouping::Total,
                breakdown,
                vec![(from, to)],
            );
            let report = compute(store, policy, kpi, &request, source).await?;
            for note in report.notes {
                if !notes.iter().any(|(of, text)| *of == kpi && *text == note) {
                    notes.push((kpi, note));
                }
            }
            for row in report.rows {
                let row = published(row, policy);
                // Targets apply to the headline figure only; savings' target
                // is for the financial year to date (its own row below).
                let headline = breakdown.is_none()
                    && spec.targets == TargetScope::Period
                    && match policy.headline(kpi) {
                        Some(Headline::Measure {
                            instrument,
                            measure,
                        }) => {
                            row.key("instrument") == Some(instrument)
                                && row.key("measure") == Some(measure)
                        }
                        Some(Headline::Named(measure)) => row.key("measure") == Some(measure),
                        _ => true,
                    };
                let target = headline
                    .then(|| policy.targets.get(&kpi).copied())
                    .flatten();
                let unit = kpi.unit_of(row.key("measure"));
                let rag = target
                    .zip(row.value)
                    .map(|(target, value)| target.rag(unit.published(value)));
                rows.push(PackRow {
                    kpi,
                    unit,
                    breakdown: breakdown.map_or("total", |key| key.as_str()),
                    row,
                    target,
                    rag,
                });
            }
        }
        let first = rows
            .iter()
            .position(|row: &PackRow| row.kpi == kpi)
            .unwrap_or(rows.len());
        protect(&mut rows[first..], policy);
        if spec.targets == TargetScope::FinancialYearToDate {
            rows.extend(year_to_date(store, policy, kpi, council, period, source).await?);
        }
    }

    let mut trends = Vec::new();
    for &kpi in Kpi::ALL {
        if kpi.spec().needs_baseline && policy.baseline.is_none() {
            continue;
        }
        trends.push(trend(store, policy, council, period, kpi, reads).await?);
    }

    let opportunities = opportunities(
        store,
        policy,
        council,
        opportunity_year_end(to, as_of),
        source,
    )
    .await?;
    let forecasts = pack_forecasts(store, policy, council, period, as_of).await?;
    Ok(Pack {
        opportunities,
        forecasts,
        council: council.to_string(),
        council_name: policy.label(council.as_str()),
        satisfaction: policy.satisfaction,
        period,
        as_of,
        previous_as_of,
        rows,
        trends,
        notes,
        coverage: coverage(store, council, period, as_of, source).await?,
        unit_costs: Channel::ALL
            .iter()
            .map(|&channel| {
                (
                    channel,
                    policy.unit_costs.cost_on(channel, to).map(|pence| pence.0),
                )
            })
            .collect(),
        settings: Settings {
            take_up_definition: policy.take_up_definition.as_str(),
            suppression_threshold: policy.suppression.threshold,
            baseline: policy.baseline.map(|baseline| (baseline.from, baseline.to)),
            repeat_window_days: policy.repeat_window_days,
            savings_profiled: policy.savings_profile.is_some(),
        },
    })
}

/// The year-end forecasts a pack shows (see [`Pack::forecasts`]).
async fn pack_forecasts(
    store: &Store,
    policy: &Policy,
    council: &CouncilCode,
    period: Period,
    as_of: CutOff,
) -> Result<Vec<PackForecast>, ReportError> {
    let as_of_day = as_of_day(as_of).unwrap_or(NaiveDate::MIN);
    let stored = forecast::for_period(store, council, &period, as_of_day, as_of.0).await?;
    let year_end = Period::containing(PeriodKind::FinancialYear, period.first_day())
        .map_err(|error| ReportError::bad("date", error.to_string()))?
        .last_day();
    Ok(forecast::FORECAST_KPIS
        .into_iter()
        .filter(|kpi| !(kpi.spec().needs_baseline && policy.baseline.is_none()))
        .map(|kpi| PackForecast {
            kpi,
            unit: kpi.unit_of(policy.headline(kpi).and_then(Headline::measure)),
            forecast: match &stored {
                Some(stored) => forecast::of_kpi(stored, kpi),
                None => Err(
                    "none was made from the months to the period's end by the pack's as-of time"
                        .into(),
                ),
            },
            target: match kpi.spec().targets {
                TargetScope::FinancialYearToDate => policy.targets.get(&kpi).copied(),
                _ => policy.target_on(kpi, year_end),
            },
        })
        .collect())
}

/// A KPI over the financial year to the period's end (savings), against the
/// council's annual target profiled pro rata to the period's end.
async fn year_to_date(
    store: &Store,
    policy: &Policy,
    kpi: Kpi,
    council: &CouncilCode,
    period: Period,
    source: Source,
) -> Result<Option<PackRow>, ReportError> {
    let year_start = Period::containing(PeriodKind::FinancialYear, period.first_day())
        .map_err(|error| ReportError::bad("date", error.to_string()))?
        .first_day();
    let to = period.last_day();
    let request = request(
        council,
        year_start,
        to,
        Grouping::Total,
        None,
        vec![(year_start, to)],
    );
    let report = compute(store, policy, kpi, &request, source).await?;
    Ok(report.rows.into_iter().next().map(|row| {
        let row = published(row, policy);
        let target = policy.target_on(kpi, to);
        PackRow {
            kpi,
            unit: kpi.spec().unit,
            breakdown: "financial_year_to_date",
            rag: target
                .zip(row.value)
                .map(|(target, value)| target.rag(kpi.spec().unit.published(value))),
            row,
            target,
        }
    }))
}

/// The periods of the trend, oldest first, ending with `period`.
fn trend_periods(period: Period) -> Vec<Period> {
    let mut periods = vec![period];
    while periods.len() < TREND_PERIODS {
        match periods.last().map(Period::previous) {
            Some(Ok(earlier)) => periods.push(earlier),
            _ => break,
        }
    }
    periods.reverse();
    periods
}

/// The headline measure per period, as published from `source` (as of a
/// cut-off).
async fn trend_values(
    store: &Store,
    policy: &Policy,
    council: &CouncilCode,
    periods: &[Period],
    kpi: Kpi,
    source: Source,
) -> Result<Vec<Option<KpiRow>>, ReportError> {
    let spec = kpi.spec().trend;
    let (Some(first), Some(last)) = (periods.first(), periods.last()) else {
        return Ok(Vec::new());
    };
    let request = request(
        council,
        first.first_day(),
        last.last_day(),
        Grouping::By(last.kind()),
        spec.group_by,
        periods
            .iter()
            .map(|p| (p.first_day(), p.last_day()))
            .collect(),
    );
    let report = compute(store, policy, kpi, &request, source).await?;
    let rows: Vec<KpiRow> = report
        .rows
        .into_iter()
        .map(|row| published(row, policy))
        .collect();
    Ok(periods
        .iter()
        .map(|period| {
            let of_period: Vec<&KpiRow> = rows
                .iter()
                .filter(|row| row.period_start == period.first_day())
                .collect();
            pick(policy.trend_headline(kpi), &of_period).map(|index| of_period[index].clone())
        })
        .collect())
}

async fn trend(
    store: &Store,
    policy: &Policy,
    council: &CouncilCode,
    period: Period,
    kpi: Kpi,
    reads: Reads,
) -> Result<Trend, ReportError> {
    let spec = kpi.spec();
    let periods = trend_periods(period);
    let now = trend_values(store, policy, council, &periods, kpi, reads.now).await?;
    // Periods the previous pack could have reported complete: those ended
    // before its as-of day.
    let then = match reads.previous {
        Some((previous, source)) => {
            let previous_day = DateTime::<Utc>::from_timestamp(previous.0, 0)
                .map(local_date)
                .unwrap_or(NaiveDate::MIN);
            let reported: Vec<Period> = periods
                .iter()
                .copied()
                .filter(|p| p.last_day() < previous_day)
                .collect();
            let values = trend_values(store, policy, council, &reported, kpi, source).await?;
            reported.into_iter().zip(values).collect()
        }
        None => Vec::new(),
    };
    let target = policy.targets.get(&kpi).copied();
    let points = periods
        .iter()
        .zip(now)
        .map(|(&period, row)| {
            let (value, n, suppressed) = row.as_ref().map_or((None, None, false), |row| {
                (row.value, row.n, row.suppressed)
            });
            let restated_from = then
                .iter()
                .find(|(reported, _)| *reported == period)
                .map(|(_, before)| Published {
                    value: before.as_ref().and_then(|row| row.value),
                    suppressed: before.as_ref().is_some_and(|row| row.suppressed),
                })
                .filter(|before| !same_figure(before, value, suppressed));
            TrendPoint {
                period,
                row,
                value,
                n,
                suppressed,
                restated_from,
            }
        })
        .collect();
    Ok(Trend {
        kpi,
        unit: kpi.unit_of(policy.trend_headline(kpi).measure()),
        breakdown: spec.trend.group_by.map_or("total", |key| key.as_str()),
        measure: policy.trend_measure(kpi),
        points,
        polarity: target.map_or(spec.polarity, |target| target.polarity()),
        // An annual target (savings) does not hold the period's trend.
        target: target.filter(|_| spec.targets == TargetScope::Period),
        significance: policy.settings.direction_significance,
    })
}

/// Figures are rounded for publication, so equal means equal to the
/// precision published.
fn same_figure(before: &Published, value: Option<f64>, suppressed: bool) -> bool {
    before.suppressed == suppressed
        && match (before.value, value) {
            (Some(a), Some(b)) => (a - b).abs() < 0.005,
            (None, None) => true,
            _ => false,
        }
}

/// Days of the period up to the as-of day, and how many of them have contacts.
async fn coverage(
    store: &Store,
    council: &CouncilCode,
    period: Period,
    as_of: CutOff,
    source: Source,
) -> Result<Coverage, ReportError> {
    let as_of_day = as_of_day(as_of).unwrap_or(NaiveDate::MIN);
    let covered_to = as_of_day.min(period.last_day());
    if covered_to < period.first_day() {
        return Ok(Coverage {
            days: 0,
            days_with_data: 0,
        });
    }
    let filter = CellFilter::new(council.clone(), period.first_day(), covered_to);
    let cells = store
        .contact_cells(&filter, Bucket::Day, Keys::default(), source)
        .await?;
    let mut days: Vec<NaiveDate> = cells
        .iter()
        .filter(|cell| cell.all_contacts > 0)
        .filter_map(|cell| cell.period)
        .collect();
    days.sort_unstable();
    days.dedup();
    Ok(Coverage {
        days: (covered_to - period.first_day()).num_days() as u64 + 1,
        days_with_data: days.len() as u64,
    })
}

/// The pack's cut-off: `at` (Unix seconds), or the latest settled instant.
/// An instant less than `settle` seconds ago is refused: rows stamped before
/// it may still be on their way, so the pack could not be reproduced.
pub fn settled_as_of(at: Option<i64>, settle: i64) -> Result<CutOff, ReportError> {
    let settled = Utc::now().timestamp() - settle;
    match at {
        Some(at) if at > settled => Err(ReportError::bad(
            "as_of",
            format!(
                "must be at least {settle} s ago, so that everything ingested by then is stored"
            ),
        )),
        Some(at) => Ok(CutOff(at)),
        None => Ok(CutOff(settled)),
    }
}

channelshift_contract::vocabulary! {
    /// The formats a pack comes in.
    Format, "pack format" {
        Csv = "csv",
        Csvw = "csvw",
        Xlsx = "xlsx",
        Ods = "ods",
        Html = "html",
        Pdf = "pdf",
    }
}

impl Format {
    /// The file name's ending after the pack's stem.
    pub fn suffix(self) -> &'static str {
        match self {
            Format::Csvw => ".csv-metadata.json",
            Format::Csv => ".csv",
            Format::Xlsx => ".xlsx",
            Format::Ods => ".ods",
            Format::Html => ".html",
            Format::Pdf => ".pdf",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8; header=present",
            Format::Csvw => "application/csvm+json",
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Format::Ods => "application/vnd.oasis.opendocument.spreadsheet",
            Format::Html => "text/html; charset=utf-8",
            Format::Pdf => "application/pdf",
        }
    }
}

/// The last day of the year a pack's "where to shift next" takes: the
/// period's last day, or the cut-off's local day when the period has not
/// ended by then (later days have no contacts yet, not none).
pub fn opportunity_year_end(period_end: NaiveDate, as_of: CutOff) -> NaiveDate {
    as_of_day(as_of).map_or(period_end, |day| day.min(period_end))
}

/// The cut-off's local (Europe/London) day; `None` for an instant chrono
/// cannot represent.
fn as_of_day(as_of: CutOff) -> Option<NaiveDate> {
    DateTime::<Utc>::from_timestamp(as_of.0, 0).map(local_date)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::KpiSettings;

    #[test]
    fn a_packs_opportunity_year_ends_at_the_period_or_the_cut_off_if_earlier() {
        let end = NaiveDate::from_ymd_opt(2025, 6, 30).expect("a day");
        // 23:30 UTC on 14 May 2025 is 00:30 on the 15th in London.
        let mid_period = CutOff(
            DateTime::parse_from_rfc3339("2025-05-14T23:30:00Z")
                .expect("an instant")
                .timestamp(),
        );
        assert_eq!(
            opportunity_year_end(end, mid_period),
            NaiveDate::from_ymd_opt(2025, 5, 15).expect("a day")
        );
        let after = CutOff(
            DateTime::parse_from_rfc3339("2025-08-01T09:00:00Z")
                .expect("an instant")
                .timestamp(),
        );
        assert_eq!(opportunity_year_end(end, after), end);
    }

    fn pack_row(
        breakdown: &'static str,
        key: Option<(&'static str, &str)>,
        numerator: u64,
        n: u64,
    ) -> PackRow {
        let period = (
            NaiveDate::from_ymd_opt(2025, 4, 1).expect("a day"),
            NaiveDate::from_ymd_opt(2025, 6, 30).expect("a day"),
        );
        let mut row = KpiRow {
            period_start: period.0,
            period_end: period.1,
            keys: key
                .map(|(name, value)| (name, value.to_string()))
                .into_iter()
                .collect(),
            value: Some(numerator as f64 * 100.0 / n as f64),
            numerator: Some(numerator as i64),
            denominator: Some(n),
            n: Some(n),
            ci95_low: None,
            ci95_high: None,
            suppressed: false,
            extra: BTreeMap::new(),
        };
        // The API's own rule first: a base below the threshold (10) is withheld.
        if n > 0 && n < 10 {
            row = row.withheld();
        }
        PackRow {
            kpi: Kpi::ChannelMix,
            unit: Unit::Percent,
            breakdown,
            row,
            target: None,
            rag: None,
        }
    }

    /// Every withheld count that subtraction reaches: for each set of rows
    /// adding up to a shown row, the withheld members' counts are known
    /// exactly only when one member is withheld.
    fn derivable(rows: &[PackRow], groups: &[(&[usize], usize)]) -> Vec<usize> {
        groups
            .iter()
            .filter(|(_, sum)| !rows[*sum].row.suppressed)
            .filter_map(|(members, _)| {
                let withheld: Vec<usize> = members
                    .iter()
                    .copied()
                    .filter(|&index| rows[index].row.suppressed)
                    .collect();
                (withheld.len() == 1).then(|| withheld[0])
            })
            .collect()
    }

    #[test]
    fn no_withheld_count_can_be_had_by_subtraction() {
        let policy = Policy::new(&KpiSettings::default()).expect("defaults");
        // Contacts 104: web 50, app 4, kiosk 20 (digital self-service 74), phone 30.
        let mut rows = vec![
            pack_row("total", None, 104, 104),
            pack_row("channel", Some(("channel", "web")), 50, 104),
            pack_row("channel", Some(("channel", "app")), 4, 104),
            pack_row("channel", Some(("channel", "kiosk")), 20, 104),
            pack_row("channel", Some(("channel", "phone")), 30, 104),
            pack_row(
                "channel_class",
                Some(("channel_class", "digital_self_service")),
                74,
                104,
            ),
            pack_row(
                "channel_class",
                Some(("channel_class", "telephone")),
                30,
                104,
            ),
        ];
        // Customer types: resident 95, business 3, organisation 12 of 110.
        rows.extend([
            pack_row("customer_type", Some(("customer_type", "resident")), 95, 95),
            pack_row("customer_type", Some(("customer_type", "business")), 3, 3),
            pack_row(
                "customer_type",
                Some(("customer_type", "organisation")),
                12,
                12,
            ),
        ]);
        for row in &mut rows {
            row.row = published(row.row.clone(), &policy);
        }
        // The small numerator (app's 4 contacts) is withheld, so is business's base.
        assert!(rows[2].row.suppressed && rows[8].row.suppressed);
        let groups: Vec<(&[usize], usize)> =
            vec![(&[1, 2, 3, 4], 0), (&[1, 2, 3], 5), (&[4], 6), (&[5, 6], 0)];
        // Before: app = 74 − 50 − 20 from its class, and customer types add up
        // to no row here, but the channel total does.
        assert_eq!(derivable(&rows, &groups), [2, 2]);
        protect(&mut rows, &policy);
        assert_eq!(derivable(&rows, &groups), Vec::<usize>::new());
        // Kiosk (the smallest shown channel of the class) and organisation
        // (the smallest shown customer type) are withheld with them.
        let withheld: Vec<usize> = (0..rows.len())
            .filter(|&i| rows[i].row.suppressed)
            .collect();
        assert_eq!(withheld, [2, 3, 8, 9]);
        // A rate's complement: 98 of 100 tells that 2 did not.
        let complement = published(pack_row("total", None, 98, 100).row, &policy);
        assert!(complement.suppressed);
        assert!(!published(pack_row("total", None, 80, 100).row, &policy).suppressed);
    }
}
