//! The scorecard: every headline KPI for one period, with its target and RAG
//! status, direction of travel against the previous period and the same
//! period last year, and how much of the period the data covers.

use crate::as_of;
use crate::compute::{baseline_contacts, judged_at};
use crate::error::ReportError;
use crate::forecast::{self, YearEndForecast, FORECAST_KPIS};
use crate::policy::Policy;
use crate::request::{Grouping, KpiRequest};
use crate::rows::{self, Report};
use channelshift_contract::CouncilCode;
use channelshift_kpi::catalogue::{Headline as Pick, Kpi, TargetScope, Unit, SCORECARD};
use channelshift_kpi::channel::ContactsByChannel;
use channelshift_kpi::period::{local_date, Period, PeriodKind};
use channelshift_kpi::rag::{direction_with_significance, Direction, Polarity, Rag, Target};
use channelshift_store::{
    Bucket, CellFilter, ContactCell, JourneyDays, Keys, SatisfactionCell, Source, Store,
};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Every headline KPI for one period.
#[derive(Debug, Serialize, ToSchema)]
pub struct Scorecard {
    council: String,
    /// The council's display name with its code, "Exeter City Council (E07000041)";
    /// the code alone when the platform configures no name.
    council_name: String,
    period: PeriodInfo,
    /// When ingest last stored a batch: the figures include everything ingested up to then.
    #[schema(format = DateTime)]
    as_of: Option<String>,
    coverage: Coverage,
    kpis: Vec<Headline>,
}

#[derive(Debug, Serialize, ToSchema)]
struct PeriodInfo {
    kind: &'static str,
    label: String,
    start: NaiveDate,
    end: NaiveDate,
}

#[derive(Debug, Serialize, ToSchema)]
struct Coverage {
    /// Days of the period up to its end or to the as-of day, whichever is earlier.
    days: u64,
    days_with_data: u64,
    percent: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
struct Headline {
    kpi: Kpi,
    measure: Option<String>,
    unit: Unit,
    value: Option<f64>,
    n: Option<u64>,
    ci95_low: Option<f64>,
    ci95_high: Option<f64>,
    suppressed: bool,
    /// For savings (year to date), the annual target profiled pro rata to the
    /// period's end; otherwise the configured target.
    target: Option<f64>,
    tolerance: Option<f64>,
    /// For savings, the year's whole target.
    annual_target: Option<f64>,
    polarity: Polarity,
    rag: Option<Rag>,
    previous: Comparison,
    vs_previous: Option<Direction>,
    same_period_last_year: Comparison,
    vs_last_year: Option<Direction>,
    /// Where the KPI is forecast to stand at the financial year's end (see
    /// `channelshift-api forecast`); `null` when there is none, and then
    /// `forecast_note` says why.
    forecast: Option<YearEndForecast>,
    forecast_note: Option<String>,
    notes: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
struct Comparison {
    period_start: NaiveDate,
    period_end: NaiveDate,
    value: Option<f64>,
}

/// One council's headline figure of one KPI, as its scorecard publishes it:
/// `None` when withheld or without data.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HeadlineFigure {
    pub kpi: Kpi,
    pub unit: Unit,
    pub polarity: Polarity,
    pub value: Option<f64>,
}

impl Scorecard {
    /// Each headline KPI's figure, in scorecard order.
    pub fn figures(&self) -> Vec<HeadlineFigure> {
        self.kpis
            .iter()
            .map(|headline| HeadlineFigure {
                kpi: headline.kpi,
                unit: headline.unit,
                polarity: headline.polarity,
                value: if headline.suppressed {
                    None
                } else {
                    headline.value
                },
            })
            .collect()
    }

    /// The period's label, "2025-26 Q1".
    pub fn period_label(&self) -> &str {
        &self.period.label
    }

    /// The period's first and last day.
    pub fn period_range(&self) -> (NaiveDate, NaiveDate) {
        (self.period.start, self.period.end)
    }
}

/// A headline's note when no forecast of the period's year is stored.
const NO_FORECAST_STORED: &str = "none is stored for this year from history to the period's end (channelshift-api forecast makes them; the year may have ended)";

/// One headline figure: the first row of a total-period report (for
/// satisfaction, the csat5 % satisfied row).
#[derive(Default)]
struct Figure {
    value: Option<f64>,
    n: Option<u64>,
    ci: (Option<f64>, Option<f64>),
    suppressed: bool,
    notes: Vec<String>,
}

/// Whether `row` is the one `pick` names (the first such of a period).
pub(crate) fn picked(row: &rows::KpiRow, pick: Pick) -> bool {
    match pick {
        Pick::Measure {
            instrument,
            measure,
        } => row.key("instrument") == Some(instrument) && row.key("measure") == Some(measure),
        Pick::Named(measure) => row.key("measure") == Some(measure),
        Pick::First | Pick::DigitalSelfServiceShare | Pick::LowestArea => true,
    }
}

fn figure(report: Report, pick: Pick) -> Figure {
    let row = report.rows.into_iter().find(|row| picked(row, pick));
    match row {
        Some(row) => Figure {
            value: row.value,
            n: row.n,
            ci: (row.ci95_low, row.ci95_high),
            suppressed: row.suppressed,
            notes: report.notes,
        },
        None => Figure {
            notes: report.notes,
            ..Figure::default()
        },
    }
}

channelshift_contract::vocabulary! {
    /// The kind of period a scorecard or a pack reports; quarters and years are financial (April).
    ReportPeriod, "report period" {
        Month = "month",
        Quarter = "quarter",
        FinancialYear = "financial_year",
    }
}

impl ReportPeriod {
    pub fn kind(self) -> PeriodKind {
        match self {
            ReportPeriod::Month => PeriodKind::Month,
            ReportPeriod::Quarter => PeriodKind::FinancialQuarter,
            ReportPeriod::FinancialYear => PeriodKind::FinancialYear,
        }
    }
}

/// The kinds of period a scorecard or a pack reports, by name.
pub const REPORT_PERIODS: &str = "one of month, quarter, financial_year";

/// A report period by name: `month`, `quarter` or `financial_year`.
pub fn report_period(name: &str) -> Option<PeriodKind> {
    name.parse().ok().map(ReportPeriod::kind)
}

/// The savings baseline's contacts by service (`None` without a baseline
/// period), read once for every period of a scorecard.
type Baseline = Option<BTreeMap<String, ContactsByChannel>>;

/// The contacts and responses of a scorecard's three periods, read in one
/// query each: contacts by month and service, from which each period's
/// contacts, each period's savings year to date and a baseline of whole
/// months are summed; responses by period.
struct Periods {
    /// By month and service, over whole months.
    months: Vec<ContactCell>,
    responses: Vec<SatisfactionCell>,
}

impl Periods {
    /// Contacts by month and service over the whole months `months`, and
    /// responses by every `kind` of period over `span` (whole periods).
    async fn read(
        store: &Store,
        council: &CouncilCode,
        kind: PeriodKind,
        (span, months): ((NaiveDate, NaiveDate), (NaiveDate, NaiveDate)),
        source: Source,
    ) -> Result<Self, ReportError> {
        let by_service = Keys {
            service: true,
            ..Keys::default()
        };
        let months = CellFilter::new(council.clone(), months.0, months.1);
        let span = CellFilter::new(council.clone(), span.0, span.1);
        let (months, responses) = tokio::try_join!(
            store.contact_cells(&months, Bucket::Month, by_service, source),
            store.satisfaction_cells(&span, Grouping::By(kind).bucket(), Keys::default(), source),
        )?;
        Ok(Self { months, responses })
    }

    /// The month cells of `from` to `to` (the edges of whole months).
    fn months_of(&self, from: NaiveDate, to: NaiveDate) -> impl Iterator<Item = &ContactCell> {
        self.months.iter().filter(move |cell| {
            cell.period
                .is_some_and(|month| month >= from && month <= to)
        })
    }

    /// The savings' cells of the year to `to` from `year_start` (both the
    /// edges of whole months), as one query over that span alone by service
    /// (`Bucket::Total`) would give them: each month's cells, unperiodised
    /// (savings sum them by service and channel).
    fn year_to_date(&self, year_start: NaiveDate, to: NaiveDate) -> Vec<ContactCell> {
        self.months_of(year_start, to)
            .map(|cell| ContactCell {
                period: None,
                ..cell.clone()
            })
            .collect()
    }

    /// The baseline's contacts by service and channel, over whole months.
    fn baseline(&self, from: NaiveDate, to: NaiveDate) -> BTreeMap<String, ContactsByChannel> {
        rows::contacts_by_service(&self.year_to_date(from, to))
    }

    /// The cells of the period `from`..=`to`, as a query over that period
    /// alone (`Bucket::Total`, no keys) gives them: its months summed by
    /// channel and assisted flag, in the SQL's order (the channel's wire
    /// name, then unassisted first), and its responses without a period.
    fn of(&self, from: NaiveDate, to: NaiveDate) -> (Vec<ContactCell>, Vec<SatisfactionCell>) {
        let mut cells: BTreeMap<(&str, bool), ContactCell> = BTreeMap::new();
        for month in self.months_of(from, to) {
            let cell = cells
                .entry((month.channel.as_str(), month.assisted))
                .or_insert_with(|| ContactCell::empty(month.channel, month.assisted));
            cell.add(month);
        }
        let responses = self
            .responses
            .iter()
            .filter(|cell| cell.period == Some(from))
            .map(|cell| SatisfactionCell {
                period: None,
                ..cell.clone()
            })
            .collect();
        (cells.into_values().collect(), responses)
    }
}

/// Whether `from`..=`to` is whole months: from a month's first day to a
/// month's last.
fn whole_months(from: NaiveDate, to: NaiveDate) -> bool {
    from.day() == 1 && to.succ_opt().is_some_and(|next| next.day() == 1)
}

/// Every headline figure over `from`..=`to` (one period of `periods`), read
/// in a few queries, with the savings baseline as read once for the
/// scorecard.
async fn figures(
    store: &Store,
    policy: &Policy,
    council: &CouncilCode,
    (from, to): (NaiveDate, NaiveDate),
    source: Source,
    (periods, baseline, counted): (&Periods, &Baseline, &JourneyDays),
) -> Result<Vec<Figure>, ReportError> {
    let filter = CellFilter::new(council.clone(), from, to);
    let request = KpiRequest {
        filter: filter.clone(),
        grouping: Grouping::Total,
        group_by: Vec::new(),
        periods: vec![(from, to)],
    };
    // A unit cost changing inside the period: contacts by day, each priced
    // at its own day's cost (every other figure sums the days alike).
    let dated = policy.unit_costs.changes_within(from, to);
    let (mut contacts, responses) = periods.of(from, to);
    if dated {
        contacts = store
            .contact_cells(&filter, Bucket::Day, Keys::default(), source)
            .await?;
    }
    let journeys = store
        .journey_cells_counted(
            &filter,
            Bucket::Total,
            Keys::default(),
            source,
            judged_at(source),
            counted,
        )
        .await?;
    // Savings accumulate through the financial year to the period's end.
    let year_start = Period::containing(PeriodKind::FinancialYear, from)
        .map_err(|error| ReportError::bad("date", error.to_string()))?
        .first_day();
    let savings = match baseline {
        Some(baseline) => {
            let year = KpiRequest {
                filter: CellFilter {
                    from: year_start,
                    ..filter.clone()
                },
                periods: vec![(year_start, to)],
                ..request.clone()
            };
            let by_service = Keys {
                service: true,
                ..Keys::default()
            };
            // A unit cost changing inside the year: each day at its own cost.
            let dated = policy.unit_costs.changes_within(year_start, to);
            let cells = if dated {
                store
                    .contact_cells(&year.filter, Bucket::Day, by_service, source)
                    .await?
            } else {
                periods.year_to_date(year_start, to)
            };
            rows::efficiency_savings_rows(&year, policy, &cells, baseline, dated)
        }
        None => Report {
            rows: Vec::new(),
            notes: vec!["no baseline period is configured (kpi.baseline)".into()],
        },
    };
    let mut savings = Some(savings);
    Ok(SCORECARD
        .into_iter()
        .map(|kpi| {
            let report = match kpi {
                Kpi::DigitalTakeUp => rows::digital_take_up_rows(&request, policy, &contacts),
                Kpi::CompletionRate => rows::completion_rate_rows(&request, policy, &contacts),
                Kpi::Satisfaction => rows::satisfaction_rows(&request, policy, &responses),
                Kpi::CostPerTransaction => {
                    rows::cost_per_transaction_rows(&request, policy, &contacts, dated)
                }
                Kpi::EfficiencySavings => savings.take().unwrap_or_default(),
                Kpi::AvoidableContact => rows::avoidable_contact_rows(&request, policy, &contacts),
                Kpi::FirstContactResolution => {
                    rows::first_contact_resolution_rows(&request, policy, &journeys)
                }
                Kpi::ChannelMix => rows::channel_mix_rows(&request, policy, &contacts),
                Kpi::ResponseRate => {
                    rows::response_rate_rows(&request, policy, &contacts, &responses)
                }
                // Not headlines: no scorecard figure.
                Kpi::Hotspots
                | Kpi::FirstContactResolutionFlag
                | Kpi::TelephoneWait
                | Kpi::TelephoneAbandonment => Report::default(),
            };
            figure(report, policy.headline(kpi).unwrap_or(Pick::First))
        })
        .collect())
}

/// The scorecard of `council` for the `kind` of period containing `date`,
/// read from `source` (the rollups; the raw tables for benchmarks).
pub async fn scorecard(
    store: &Store,
    policy: &Policy,
    council: &CouncilCode,
    kind: PeriodKind,
    date: NaiveDate,
    source: Source,
) -> Result<Scorecard, ReportError> {
    let bad_date =
        |error: channelshift_kpi::period::PeriodError| ReportError::bad("date", error.to_string());
    let period = Period::containing(kind, date).map_err(bad_date)?;
    let previous = period.previous().map_err(bad_date)?;
    let last_year = period.same_period_last_year().map_err(bad_date)?;
    // Read before the figures: they then include at least everything up to it.
    let latest = store.latest_ingest().await?;
    let covered_to = latest
        .and_then(|at| DateTime::<Utc>::from_timestamp(at.0, 0))
        .map(local_date)
        // Nothing ingested yet: no day of the period is covered.
        .map_or(
            period.first_day().pred_opt().unwrap_or(period.first_day()),
            |day| day.min(period.last_day()),
        );
    let days = if covered_to < period.first_day() {
        0
    } else {
        (covered_to - period.first_day()).num_days() as u64 + 1
    };
    let span = (last_year.first_day(), period.last_day());
    // Contacts by month and service over whole months: the three periods'
    // contacts and, with a baseline, their savings years to date (from the
    // start of last year's period's financial year) and a baseline of
    // whole months, summed from one query (18.16 has a fixed cost per
    // query, and each of these reads the same months).
    let year_start = Period::containing(PeriodKind::FinancialYear, last_year.first_day())
        .map_err(bad_date)?
        .first_day();
    let whole_baseline = policy
        .baseline
        .filter(|baseline| whole_months(baseline.from, baseline.to));
    let months = match (policy.baseline, whole_baseline) {
        (_, Some(baseline)) => (
            baseline.from.min(year_start),
            baseline.to.max(period.last_day()),
        ),
        (Some(_), None) => (year_start, period.last_day()),
        (None, _) => span,
    };
    // A baseline not of whole months: by itself, by day at its edges.
    let baseline_apart = async {
        match policy.baseline {
            Some(_) if whole_baseline.is_none() => {
                let filter =
                    CellFilter::new(council.clone(), period.first_day(), period.last_day());
                Ok(Some(
                    baseline_contacts(store, policy, &filter, source).await?,
                ))
            }
            _ => Ok::<_, ReportError>(None),
        }
    };
    let days_with_data = async {
        if days == 0 {
            Ok(0)
        } else {
            Ok(store
                .days_with_contacts(council, period.first_day(), covered_to)
                .await?)
        }
    };
    // Everything the figures share, asked for at once: the periods' cells,
    // the contacts per day the journeys' kept days are checked against, the
    // year-end forecasts and the days with data.
    let (periods, apart, counted, stored, days_with_data) = tokio::try_join!(
        Periods::read(store, council, kind, (span, months), source),
        baseline_apart,
        async {
            Ok(store
                .journey_days(council, span, policy.repeat_window_days)
                .await?)
        },
        forecast::for_period(store, council, &period, covered_to, Utc::now().timestamp()),
        days_with_data,
    )?;
    let baseline = match whole_baseline {
        Some(whole) => Some(periods.baseline(whole.from, whole.to)),
        None => apart,
    };
    let days_of = |period: &Period| (period.first_day(), period.last_day());
    let shared = (&periods, &baseline, &counted);
    // The three periods are otherwise independent: asked for at once.
    let (current, before, year_ago) = tokio::try_join!(
        figures(store, policy, council, days_of(&period), source, shared),
        figures(store, policy, council, days_of(&previous), source, shared),
        figures(store, policy, council, days_of(&last_year), source, shared),
    )?;

    let kpis = SCORECARD
        .into_iter()
        .zip(current)
        .zip(before.into_iter().zip(year_ago))
        .map(|((kpi, figure), (before, year_ago))| {
            let spec = kpi.spec();
            let (forecast, forecast_note) = if FORECAST_KPIS.contains(&kpi) {
                match stored.as_ref().map(|stored| forecast::of_kpi(stored, kpi)) {
                    Some(Ok(forecast)) => (Some(forecast), None),
                    Some(Err(why)) => (None, Some(why)),
                    None => (None, Some(NO_FORECAST_STORED.into())),
                }
            } else {
                (None, None)
            };
            let target = policy.target_on(kpi, period.last_day());
            let polarity = target.map_or(spec.polarity, |target| target.polarity());
            let unit = kpi.unit_of(policy.headline(kpi).and_then(Pick::measure));
            // Compared as published (printed), never beyond it.
            let published = |value: f64| unit.published(value);
            let interval = figure
                .ci
                .0
                .zip(figure.ci.1)
                .filter(|_| policy.settings.direction_significance);
            let travel = |earlier: Option<f64>| match (figure.value, earlier) {
                (Some(now), Some(then)) => Some(direction_with_significance(
                    published(now),
                    published(then),
                    polarity,
                    interval,
                )),
                _ => None,
            };
            Headline {
                kpi,
                measure: match policy.headline(kpi) {
                    Some(Pick::Measure {
                        instrument,
                        measure,
                    }) => Some(format!("{instrument}/{measure}")),
                    _ => None,
                },
                unit,
                value: figure.value,
                n: figure.n,
                ci95_low: figure.ci.0,
                ci95_high: figure.ci.1,
                suppressed: figure.suppressed,
                target: target.map(|target| target.target()),
                tolerance: target.map(|target| target.tolerance()),
                annual_target: (spec.targets == TargetScope::FinancialYearToDate)
                    .then(|| policy.targets.get(&kpi).map(Target::target))
                    .flatten(),
                polarity,
                rag: target
                    .zip(figure.value)
                    .map(|(target, value)| target.rag(published(value))),
                previous: Comparison {
                    period_start: previous.first_day(),
                    period_end: previous.last_day(),
                    value: before.value,
                },
                // Savings accumulate through the year: this period's year to
                // date is not comparable with the previous period's.
                vs_previous: match spec.targets {
                    TargetScope::FinancialYearToDate => None,
                    TargetScope::Period | TargetScope::None => travel(before.value),
                },
                same_period_last_year: Comparison {
                    period_start: last_year.first_day(),
                    period_end: last_year.last_day(),
                    value: year_ago.value,
                },
                vs_last_year: travel(year_ago.value),
                forecast,
                forecast_note,
                notes: figure.notes,
            }
        })
        .collect();
    Ok(Scorecard {
        council: council.to_string(),
        council_name: policy.label(council.as_str()),
        period: PeriodInfo {
            kind: match kind {
                PeriodKind::Month => "month",
                PeriodKind::FinancialYear => "financial_year",
                _ => "quarter",
            },
            label: period.label(),
            start: period.first_day(),
            end: period.last_day(),
        },
        as_of: as_of(latest),
        coverage: Coverage {
            days,
            days_with_data,
            percent: (days > 0).then(|| days_with_data as f64 * 100.0 / days as f64),
        },
        kpis,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use channelshift_contract::{Channel, ServiceSlug};

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("a date")
    }

    fn month(
        first: NaiveDate,
        channel: Channel,
        assisted: bool,
        service: &str,
        n: u64,
    ) -> ContactCell {
        ContactCell {
            period: Some(first),
            service: ServiceSlug::parse(service),
            all_contacts: n,
            tx_completed: n / 2,
            timed: 1,
            ..ContactCell::empty(channel, assisted)
        }
    }

    #[test]
    fn a_periods_contacts_are_its_months_summed_by_channel_and_assisted_flag_in_the_sqls_order() {
        let periods = Periods {
            months: vec![
                month(day(2026, 6, 1), Channel::Web, false, "waste", 100),
                month(day(2026, 7, 1), Channel::Web, false, "waste", 10),
                month(day(2026, 7, 1), Channel::Web, false, "council_tax", 20),
                month(day(2026, 8, 1), Channel::Phone, true, "waste", 4),
                month(day(2026, 9, 1), Channel::Phone, false, "waste", 6),
                month(day(2026, 9, 1), Channel::Web, false, "waste", 30),
                month(day(2026, 10, 1), Channel::Web, false, "waste", 1000),
            ],
            responses: Vec::new(),
        };
        let (cells, _) = periods.of(day(2026, 7, 1), day(2026, 9, 30));
        let got: Vec<_> = cells
            .iter()
            .map(|cell| {
                (
                    cell.channel.as_str(),
                    cell.assisted,
                    cell.period,
                    cell.service.as_ref(),
                    cell.all_contacts,
                    cell.tx_completed,
                    cell.timed,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("phone", false, None, None, 6, 3, 1),
                ("phone", true, None, None, 4, 2, 1),
                ("web", false, None, None, 60, 5 + 10 + 15, 3),
            ]
        );
        // The savings' year to date keeps each month and service.
        let year = periods.year_to_date(day(2026, 4, 1), day(2026, 7, 31));
        assert_eq!(year.len(), 3);
        assert!(year.iter().all(|cell| cell.period.is_none()));
        let baseline = periods.baseline(day(2026, 7, 1), day(2026, 8, 31));
        assert_eq!(baseline["waste"][&Channel::Web], 10);
        assert_eq!(baseline["waste"][&Channel::Phone], 4);
        assert_eq!(baseline["council_tax"][&Channel::Web], 20);
    }

    #[test]
    fn a_baseline_is_whole_months_from_a_first_day_to_a_last_day() {
        assert!(whole_months(day(2025, 11, 1), day(2026, 1, 31)));
        assert!(whole_months(day(2024, 2, 1), day(2024, 2, 29)));
        assert!(!whole_months(day(2025, 11, 15), day(2026, 1, 31)));
        assert!(!whole_months(day(2025, 11, 1), day(2026, 1, 30)));
    }
}
