//! Query parameters into domain values. Every parameter is checked here and
//! a bad one is a 400 that names it; only the parsed values reach the store,
//! where they are bound, never spliced.

use crate::error::ApiError;
use channelshift_contract::{Channel, CouncilCode, CustomerType, Instrument, ServiceSlug};
use channelshift_kpi::period::{Period, PeriodKind};
use channelshift_store::{Bucket, CellFilter};
use chrono::NaiveDate;
use std::collections::HashMap;

/// A grouping key a KPI may accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum GroupKey {
    Channel,
    ChannelClass,
    Service,
    CustomerType,
    Ward,
    Lsoa,
}

impl GroupKey {
    pub const ALL: [GroupKey; 6] = [
        GroupKey::Channel,
        GroupKey::ChannelClass,
        GroupKey::Service,
        GroupKey::CustomerType,
        GroupKey::Ward,
        GroupKey::Lsoa,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GroupKey::Channel => "channel",
            GroupKey::ChannelClass => "channel_class",
            GroupKey::Service => "service",
            GroupKey::CustomerType => "customer_type",
            GroupKey::Ward => "ward",
            GroupKey::Lsoa => "lsoa",
        }
    }
}

/// A filter parameter a KPI may accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterKey {
    Service,
    Channel,
    CustomerType,
    Instrument,
}

impl FilterKey {
    pub fn as_str(self) -> &'static str {
        match self {
            FilterKey::Service => "service",
            FilterKey::Channel => "channel",
            FilterKey::CustomerType => "customer_type",
            FilterKey::Instrument => "instrument",
        }
    }
}

/// How rows are grouped in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grouping {
    Total,
    By(PeriodKind),
}

impl Grouping {
    pub fn bucket(self) -> Bucket {
        match self {
            Grouping::Total => Bucket::Total,
            Grouping::By(PeriodKind::Day) => Bucket::Day,
            Grouping::By(PeriodKind::IsoWeek) => Bucket::IsoWeek,
            Grouping::By(PeriodKind::Month) => Bucket::Month,
            Grouping::By(PeriodKind::FinancialQuarter) => Bucket::FinancialQuarter,
            Grouping::By(PeriodKind::FinancialYear) => Bucket::FinancialYear,
        }
    }
}

/// What a KPI accepts besides the council, dates and period.
pub struct Accepts {
    pub group_by: &'static [GroupKey],
    pub filters: &'static [FilterKey],
}

/// A checked KPI request.
#[derive(Clone, Debug)]
pub struct KpiRequest {
    pub filter: CellFilter,
    pub grouping: Grouping,
    pub group_by: Vec<GroupKey>,
    /// The report's periods, each clamped to `from`/`to`.
    pub periods: Vec<(NaiveDate, NaiveDate)>,
}

impl KpiRequest {
    pub fn groups(&self, key: GroupKey) -> bool {
        self.group_by.contains(&key)
    }

    /// The (clamped) bounds of the period a store cell's `period` names.
    pub fn period_of(&self, period: &str) -> Option<(NaiveDate, NaiveDate)> {
        match self.grouping {
            Grouping::Total => self.periods.first().copied(),
            Grouping::By(kind) => {
                let first = NaiveDate::parse_from_str(period, "%Y-%m-%d").ok()?;
                let bounds = Period::containing(kind, first).ok()?;
                Some((
                    bounds.first_day().max(self.filter.from),
                    bounds.last_day().min(self.filter.to),
                ))
            }
        }
    }
}

const COMMON: [&str; 5] = ["council", "from", "to", "period", "group_by"];

pub fn council(value: Option<&String>) -> Result<CouncilCode, ApiError> {
    let value =
        value.ok_or_else(|| ApiError::bad("council", "required: the council's GSS code"))?;
    CouncilCode::parse(value).ok_or_else(|| ApiError::bad("council", CouncilCode::RULE))
}

/// The dates the store can hold (ClickHouse `Date` and `DateTime`).
const EARLIEST: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 2).expect("a valid date");
const LATEST: NaiveDate = NaiveDate::from_ymd_opt(2105, 12, 31).expect("a valid date");

/// The most periods one request may ask for (ten years of days).
const MAX_PERIODS: usize = 3_660;

pub fn date(value: Option<&String>, parameter: &str) -> Result<NaiveDate, ApiError> {
    let value = value.ok_or_else(|| ApiError::bad(parameter, "required: a date YYYY-MM-DD"))?;
    let date = NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map_err(|_| ApiError::bad(parameter, "expected a date YYYY-MM-DD"))?;
    if !(EARLIEST..=LATEST).contains(&date) {
        return Err(ApiError::bad(
            parameter,
            format!("must be between {EARLIEST} and {LATEST}"),
        ));
    }
    Ok(date)
}

fn grouping(value: Option<&String>) -> Result<Grouping, ApiError> {
    Ok(match value.map(String::as_str).unwrap_or("total") {
        "total" => Grouping::Total,
        "day" => Grouping::By(PeriodKind::Day),
        "week" => Grouping::By(PeriodKind::IsoWeek),
        "month" => Grouping::By(PeriodKind::Month),
        "quarter" => Grouping::By(PeriodKind::FinancialQuarter),
        "financial_year" => Grouping::By(PeriodKind::FinancialYear),
        _ => {
            return Err(ApiError::bad(
                "period",
                "one of day, week, month, quarter, financial_year, total",
            ))
        }
    })
}

fn group_by(value: Option<&String>, accepts: &Accepts) -> Result<Vec<GroupKey>, ApiError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let accepted: Vec<&str> = accepts.group_by.iter().map(|key| key.as_str()).collect();
    let mut keys = Vec::new();
    for name in value
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
    {
        let key = GroupKey::ALL
            .into_iter()
            .find(|key| key.as_str() == name)
            .ok_or_else(|| {
                ApiError::bad(
                    "group_by",
                    format!(
                        "unknown key {name:?}; this KPI accepts: {}",
                        accepted.join(", ")
                    ),
                )
            })?;
        if !accepts.group_by.contains(&key) {
            return Err(ApiError::bad(
                "group_by",
                format!(
                    "{name:?} is not available for this KPI; it accepts: {}",
                    accepted.join(", ")
                ),
            ));
        }
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys.sort();
    for (a, b) in [
        (GroupKey::Channel, GroupKey::ChannelClass),
        (GroupKey::Ward, GroupKey::Lsoa),
    ] {
        if keys.contains(&a) && keys.contains(&b) {
            return Err(ApiError::bad(
                "group_by",
                format!(
                    "{} and {} cannot be combined; choose one",
                    a.as_str(),
                    b.as_str()
                ),
            ));
        }
    }
    Ok(keys)
}

/// Parses a filter value with the contract's own rules.
fn filter_value(key: FilterKey, value: &str) -> Result<String, ApiError> {
    let parameter = key.as_str();
    let known = |ok: bool, allowed: String| {
        if ok {
            Ok(value.to_string())
        } else {
            Err(ApiError::bad(
                parameter,
                format!("{value:?} is not one of: {allowed}"),
            ))
        }
    };
    match key {
        FilterKey::Service => ServiceSlug::parse(value)
            .map(|slug| slug.to_string())
            .ok_or_else(|| ApiError::bad(parameter, ServiceSlug::RULE)),
        FilterKey::Channel => known(
            value.parse::<Channel>().is_ok(),
            Channel::ALL
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        ),
        FilterKey::CustomerType => known(
            value.parse::<CustomerType>().is_ok(),
            CustomerType::ALL
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        ),
        FilterKey::Instrument => known(
            value.parse::<Instrument>().is_ok(),
            Instrument::ALL
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        ),
    }
}

/// Checks every parameter of a KPI request against what the KPI `accepts`.
pub fn kpi_request(
    params: &HashMap<String, String>,
    accepts: &Accepts,
) -> Result<KpiRequest, ApiError> {
    let filter_names = [
        FilterKey::Service,
        FilterKey::Channel,
        FilterKey::CustomerType,
        FilterKey::Instrument,
    ];
    for name in params.keys() {
        let known =
            COMMON.contains(&name.as_str()) || filter_names.iter().any(|key| key.as_str() == name);
        if !known {
            return Err(ApiError::bad(name, "unknown parameter"));
        }
    }
    let council = council(params.get("council"))?;
    let from = date(params.get("from"), "from")?;
    let to = date(params.get("to"), "to")?;
    if from > to {
        return Err(ApiError::bad("from", "must not be after `to`"));
    }
    let grouping = grouping(params.get("period"))?;
    let group_by = group_by(params.get("group_by"), accepts)?;
    let mut filter = CellFilter {
        council: council.to_string(),
        from,
        to,
        ..CellFilter::default()
    };
    for key in filter_names {
        let Some(value) = params.get(key.as_str()) else {
            continue;
        };
        if !accepts.filters.contains(&key) {
            return Err(ApiError::bad(
                key.as_str(),
                "this filter is not available for this KPI",
            ));
        }
        let value = Some(filter_value(key, value)?);
        match key {
            FilterKey::Service => filter.service = value,
            FilterKey::Channel => filter.channel = value,
            FilterKey::CustomerType => filter.customer_type = value,
            FilterKey::Instrument => filter.instrument = value,
        }
    }
    if let Grouping::By(kind) = grouping {
        // Days are the finest periods: a range's day count bounds every kind's.
        let days = (to - from).num_days() as usize + 1;
        if kind == PeriodKind::Day && days > MAX_PERIODS {
            return Err(ApiError::bad(
                "period",
                format!("{days} daily rows is too many (at most {MAX_PERIODS}); use a longer period or a shorter range"),
            ));
        }
    }
    let periods = match grouping {
        Grouping::Total => vec![(from, to)],
        Grouping::By(kind) => Period::covering(kind, from, to)
            .map_err(|error| ApiError::bad("from", error.to_string()))?
            .into_iter()
            .map(|period| (period.first_day().max(from), period.last_day().min(to)))
            .collect(),
    };
    Ok(KpiRequest {
        filter,
        grouping,
        group_by,
        periods,
    })
}
