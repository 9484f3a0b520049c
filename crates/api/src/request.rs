//! Query parameters into domain values. Every parameter is checked here and
//! a bad one is a 400 that names it; only the parsed values reach the store,
//! where they are bound, never spliced.

use crate::error::ApiError;
use crate::query::{Granularity, KpiQuery};
use channelshift_contract::{CouncilCode, ServiceSlug, UnknownName};
use channelshift_kpi::catalogue::{
    FilterKey, GroupKey, Kpi, KpiSpec, EXCLUSIVE_GROUPS, PHONE_ONLY,
};
use channelshift_kpi::period::{Period, PeriodKind};
pub use channelshift_reports::request::{Grouping, KpiRequest};
use channelshift_store::CellFilter;
use chrono::NaiveDate;

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
    let granularity = match value {
        None => Granularity::Total,
        Some(name) => name.parse().map_err(|_| {
            ApiError::bad(
                "period",
                "one of day, week, month, quarter, financial_year, total",
            )
        })?,
    };
    Ok(match granularity {
        Granularity::Total => Grouping::Total,
        Granularity::Day => Grouping::By(PeriodKind::Day),
        Granularity::Week => Grouping::By(PeriodKind::IsoWeek),
        Granularity::Month => Grouping::By(PeriodKind::Month),
        Granularity::Quarter => Grouping::By(PeriodKind::FinancialQuarter),
        Granularity::FinancialYear => Grouping::By(PeriodKind::FinancialYear),
    })
}

fn group_by(value: Option<&String>, accepts: &KpiSpec) -> Result<Vec<GroupKey>, ApiError> {
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
            .iter()
            .copied()
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
    for (a, b) in EXCLUSIVE_GROUPS {
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

/// A filter value from one of the contract's closed sets.
fn member<T: std::str::FromStr<Err = UnknownName>>(
    key: FilterKey,
    value: &str,
) -> Result<T, ApiError> {
    value.parse().map_err(|error: UnknownName| {
        ApiError::bad(
            key.as_str(),
            format!("{value:?} is not one of: {}", error.allowed.join(", ")),
        )
    })
}

/// The most rows (periods × groups) one KPI answer may hold: every answer a
/// committee or dashboard uses is far smaller (ten years of days by channel
/// is 29,280).
pub const MAX_ANSWER_ROWS: usize = 50_000;

/// Refuses an answer of more than [`MAX_ANSWER_ROWS`] rows over `periods`
/// periods, saying how to narrow the request.
pub fn bounded_answer(rows: usize, periods: usize) -> Result<(), ApiError> {
    if rows <= MAX_ANSWER_ROWS {
        return Ok(());
    }
    let groups = rows.div_ceil(periods.max(1));
    Err(ApiError::bad(
        "group_by",
        format!(
            "{periods} periods × about {groups} groups is {rows} rows, more than the \
             {MAX_ANSWER_ROWS} one answer may hold; use a longer period, a shorter range, \
             fewer group_by keys or a filter"
        ),
    ))
}

/// Checks every parameter of a KPI request against what `kpi` accepts.
pub fn kpi_request(params: &KpiQuery, kpi: Kpi) -> Result<KpiRequest, ApiError> {
    let accepts = &kpi.spec();
    let council = council(params.council.as_ref())?;
    let from = date(params.from.as_ref(), "from")?;
    let to = date(params.to.as_ref(), "to")?;
    if from > to {
        return Err(ApiError::bad("from", "must not be after `to`"));
    }
    let grouping = grouping(params.period.as_ref())?;
    let group_by = group_by(params.group_by.as_ref(), accepts)?;
    let mut filter = CellFilter::new(council, from, to);
    for &key in FilterKey::ALL {
        let Some(value) = params.filter(key) else {
            continue;
        };
        if !accepts.filters.contains(&key) {
            let why = if key == FilterKey::Channel && PHONE_ONLY.contains(&kpi) {
                "this KPI counts phone calls only: it takes no channel filter"
            } else if key == FilterKey::Channel {
                "this KPI is a share of channels (of completed transactions, of contacts, or of the baseline mix): filtered to one channel it would say nothing; use group_by=channel or channel_class where the KPI has it"
            } else {
                "this filter is not available for this KPI"
            };
            return Err(ApiError::bad(key.as_str(), why));
        }
        match key {
            FilterKey::Service => {
                filter.service = Some(
                    ServiceSlug::parse(value)
                        .ok_or_else(|| ApiError::bad(key.as_str(), ServiceSlug::RULE))?,
                );
            }
            FilterKey::Channel => filter.channel = Some(member(key, value)?),
            FilterKey::CustomerType => filter.customer_type = Some(member(key, value)?),
            FilterKey::Instrument => filter.instrument = Some(member(key, value)?),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_over_the_row_cap_is_refused_saying_how_to_narrow_it() {
        assert!(bounded_answer(MAX_ANSWER_ROWS, 3_660).is_ok());
        let refused = bounded_answer(MAX_ANSWER_ROWS + 1, 3_660).expect_err("over the cap");
        let text = format!("{refused:?}");
        assert!(text.contains("3660 periods"), "{text}");
        assert!(text.contains("about 14 groups"), "{text}");
        assert!(text.contains("fewer group_by keys"), "{text}");
    }
}
