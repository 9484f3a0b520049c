//! KPI reads: counts from the rollups grouped by period and by the keys a
//! KPI needs. The same query can run over the raw tables instead (for
//! benchmarks and cross-checks): the raw rows are shaped like rollup rows
//! with a count of one, so only the `FROM` differs.
//!
//! Grouping keys and period expressions come from enums in this module, never
//! from request text; every value (council, dates, filters) is bound.
//!
//! ClickHouse aliases are global: a sum is never aliased with the name of a
//! column another expression of the query reads (hence `all_contacts`).

use crate::connection::{Store, StoreError};
use crate::instants::{yyyymm, CutOff, IngestedUpTo, SettledMonths};
use channelshift_contract::{Channel, CouncilCode, CustomerType, Instrument, ServiceSlug};
use chrono::{Days, NaiveDate};
use clickhouse::Row;
use serde::{Deserialize, Serialize};

/// How days are grouped into periods (Europe/London local days throughout).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bucket {
    Day,
    /// ISO weeks, starting on Monday.
    IsoWeek,
    Month,
    /// April–June, July–September, …: calendar quarters, so `toStartOfQuarter`.
    FinancialQuarter,
    /// April to March.
    FinancialYear,
    /// The whole range as one period.
    Total,
}

impl Bucket {
    pub const ALL: [Bucket; 6] = [
        Bucket::Day,
        Bucket::IsoWeek,
        Bucket::Month,
        Bucket::FinancialQuarter,
        Bucket::FinancialYear,
        Bucket::Total,
    ];

    /// The first day of the period containing `day`, as text.
    fn sql(self) -> &'static str {
        match self {
            Bucket::Day => "toString(day)",
            Bucket::IsoWeek => "toString(toMonday(day))",
            Bucket::Month => "toString(toStartOfMonth(day))",
            Bucket::FinancialQuarter => "toString(toStartOfQuarter(day))",
            Bucket::FinancialYear => "toString(addMonths(toStartOfYear(addMonths(day, -3)), 3))",
            Bucket::Total => "'total'",
        }
    }
}

/// Where the counts are read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Rollup,
    /// The raw event tables, aggregated at query time.
    Raw,
    /// The raw tables as they stood at a cut-off: only rows ingested by
    /// then, so a report regenerated later gives the same figures.
    RawAsOf(CutOff),
    /// The same figures as `RawAsOf`, read from the rollups when every UTC
    /// month a query reads is settled (nothing ingested into it after the
    /// cut-off, nothing dropped by retention), else from the raw tables.
    AsOf(CutOff, SettledMonths),
}

/// What one query reads: a rollup, or the raw rows (all, or up to a cut-off).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Read {
    Rollup,
    Raw,
    RawAsOf(CutOff),
}

impl Source {
    /// What a query over `filter`'s days (with the margin of local days in
    /// UTC) reads: `AsOf` is the rollup when every month of them is settled.
    pub(crate) fn for_days(self, filter: &CellFilter) -> Read {
        match self {
            Source::Rollup => Read::Rollup,
            Source::Raw => Read::Raw,
            Source::RawAsOf(cut_off) => Read::RawAsOf(cut_off),
            Source::AsOf(cut_off, settled) => {
                let (start, end) = utc_days(filter);
                if settled.cover(yyyymm(start), yyyymm(end)) {
                    Read::Rollup
                } else {
                    Read::RawAsOf(cut_off)
                }
            }
        }
    }
}

/// The council, the local days (both inclusive) and optional filters.
#[derive(Clone, Debug)]
pub struct CellFilter {
    pub council: CouncilCode,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub service: Option<ServiceSlug>,
    pub channel: Option<Channel>,
    pub customer_type: Option<CustomerType>,
    pub instrument: Option<Instrument>,
}

impl CellFilter {
    /// Every contact or response of `council` from `from` to `to`, unfiltered.
    pub fn new(council: CouncilCode, from: NaiveDate, to: NaiveDate) -> Self {
        Self {
            council,
            from,
            to,
            service: None,
            channel: None,
            customer_type: None,
            instrument: None,
        }
    }
}

/// Optional grouping keys; a key not asked for comes back as `None`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Keys {
    pub service: bool,
    pub customer_type: bool,
    /// Satisfaction only: contact cells always carry the channel.
    pub channel: bool,
}

/// Contacts of one period × channel × assisted flag (× service × customer
/// type when asked), with the transaction outcomes every KPI needs summed in
/// SQL, so a year of days comes back as a few hundred cells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactCell {
    /// First day of the period; `None` for the whole range (`Bucket::Total`).
    pub period: Option<NaiveDate>,
    pub channel: Channel,
    pub assisted: bool,
    /// Set when [`Keys::service`] asks for it.
    pub service: Option<ServiceSlug>,
    /// Set when [`Keys::customer_type`] asks for it.
    pub customer_type: Option<CustomerType>,
    /// All contacts, whatever their interaction and outcome.
    pub all_contacts: u64,
    /// Transactions (interaction `transaction`) by outcome.
    pub tx_completed: u64,
    pub tx_ineligible: u64,
    pub tx_abandoned: u64,
    pub tx_failed: u64,
    pub tx_transferred: u64,
    pub avoidable_contacts: u64,
    pub avoidable_flagged: u64,
    pub resolved_first: u64,
    pub resolution_flagged: u64,
    pub handling_seconds_total: u64,
    pub timed: u64,
}

impl ContactCell {
    /// A cell of `channel` and `assisted`, without period or keys, with
    /// nothing counted.
    pub fn empty(channel: Channel, assisted: bool) -> Self {
        Self {
            period: None,
            channel,
            assisted,
            service: None,
            customer_type: None,
            all_contacts: 0,
            tx_completed: 0,
            tx_ineligible: 0,
            tx_abandoned: 0,
            tx_failed: 0,
            tx_transferred: 0,
            avoidable_contacts: 0,
            avoidable_flagged: 0,
            resolved_first: 0,
            resolution_flagged: 0,
            handling_seconds_total: 0,
            timed: 0,
        }
    }

    /// Adds `cell`'s counts to this cell's, whatever their period and keys
    /// (every count is named, so a count added to the cell does not
    /// compile until it is summed here).
    pub fn add(&mut self, cell: &ContactCell) {
        let ContactCell {
            period: _,
            channel: _,
            assisted: _,
            service: _,
            customer_type: _,
            all_contacts,
            tx_completed,
            tx_ineligible,
            tx_abandoned,
            tx_failed,
            tx_transferred,
            avoidable_contacts,
            avoidable_flagged,
            resolved_first,
            resolution_flagged,
            handling_seconds_total,
            timed,
        } = cell;
        self.all_contacts += all_contacts;
        self.tx_completed += tx_completed;
        self.tx_ineligible += tx_ineligible;
        self.tx_abandoned += tx_abandoned;
        self.tx_failed += tx_failed;
        self.tx_transferred += tx_transferred;
        self.avoidable_contacts += avoidable_contacts;
        self.avoidable_flagged += avoidable_flagged;
        self.resolved_first += resolved_first;
        self.resolution_flagged += resolution_flagged;
        self.handling_seconds_total += handling_seconds_total;
        self.timed += timed;
    }

    /// Completed transactions: completed or ineligible (the service did its job).
    pub fn completed_transactions(&self) -> u64 {
        self.tx_completed + self.tx_ineligible
    }
}

/// Responses of one period × instrument × score (× channel × service ×
/// customer type when asked).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SatisfactionCell {
    /// First day of the period; `None` for the whole range.
    pub period: Option<NaiveDate>,
    pub instrument: Instrument,
    pub score: u8,
    /// Set when [`Keys::channel`] asks for it.
    pub channel: Option<Channel>,
    pub service: Option<ServiceSlug>,
    pub customer_type: Option<CustomerType>,
    pub responses: u64,
}

/// Which area a hot-spot cell is keyed by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Area {
    Ward,
    Lsoa,
}

impl Area {
    pub const ALL: [Area; 2] = [Area::Ward, Area::Lsoa];
}

/// Contacts of one period × area × channel × assisted flag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AreaCell {
    /// First day of the period; `None` for the whole range.
    pub period: Option<NaiveDate>,
    /// The ward or LSOA code; empty for contacts without one.
    pub area: String,
    pub channel: Channel,
    pub assisted: bool,
    pub all_contacts: u64,
    /// Completed transactions (completed or ineligible).
    pub completed: u64,
}

/// Journeys whose first contact lies in one period, by the first contact's
/// channel (× service × customer type when asked), with the contacts of the
/// period that carry no journey id.
///
/// A contact starts a journey when no contact of the same `journey_id` came
/// within the repeat window before it; the journey is resolved at first
/// contact when no further contact of it comes within the window after.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JourneyCell {
    /// First day of the period; `None` for the whole range.
    pub period: Option<NaiveDate>,
    pub channel: Channel,
    pub service: Option<ServiceSlug>,
    pub customer_type: Option<CustomerType>,
    /// Journeys started whose repeat window had closed when judged.
    pub journeys: u64,
    /// Of those, the journeys with no further contact inside the window.
    pub resolved: u64,
    /// Journeys started whose window was still open: not yet judged.
    pub open: u64,
    /// Contacts without a journey id: not measurable.
    pub unlinked: u64,
}

/// Contacts with a wait (`wait_seconds`) of one period (× service × customer
/// type when asked, × channel when [`Keys::channel`] asks): the wait's total
/// and median are computed in SQL for exactly this group, since medians do
/// not add.
#[derive(Clone, Debug, PartialEq)]
pub struct WaitCell {
    pub period: Option<NaiveDate>,
    pub channel: Option<Channel>,
    pub service: Option<ServiceSlug>,
    pub customer_type: Option<CustomerType>,
    /// Contacts with a wait given.
    pub waited: u64,
    /// Of those, contacts whose outcome is `abandoned`.
    pub abandoned: u64,
    /// The waits' sum, seconds.
    pub wait_total: u64,
    /// The median wait, seconds: the middle wait, or the mean of the two
    /// middle waits of an even count.
    pub median: f64,
}

/// The rows as ClickHouse returns them: keys as text, `''` for a key not
/// asked for and `'total'` for the whole range. [`Store`] turns them into
/// cells, so a value outside the contract is an error, not a silent gap.
mod wire {
    use clickhouse::Row;
    use serde::Deserialize;

    #[derive(Row, Deserialize)]
    pub(super) struct ContactRow {
        pub period: String,
        pub channel: String,
        pub assisted: u8,
        pub k_service: String,
        pub k_customer_type: String,
        pub all_contacts: u64,
        pub tx_completed: u64,
        pub tx_ineligible: u64,
        pub tx_abandoned: u64,
        pub tx_failed: u64,
        pub tx_transferred: u64,
        pub avoidable_contacts: u64,
        pub avoidable_flagged: u64,
        pub resolved_first: u64,
        pub resolution_flagged: u64,
        pub handling_seconds_total: u64,
        pub timed: u64,
    }

    #[derive(Row, Deserialize)]
    pub(super) struct SatisfactionRow {
        pub period: String,
        pub instrument: String,
        pub score: u8,
        pub k_channel: String,
        pub k_service: String,
        pub k_customer_type: String,
        pub responses: u64,
    }

    #[derive(Row, Deserialize)]
    pub(super) struct JourneyRow {
        pub period: String,
        pub channel: String,
        pub k_service: String,
        pub k_customer_type: String,
        pub journeys: u64,
        pub resolved: u64,
        pub open: u64,
        pub unlinked: u64,
    }

    #[derive(Row, Deserialize)]
    pub(super) struct WaitRow {
        pub period: String,
        pub k_channel: String,
        pub k_service: String,
        pub k_customer_type: String,
        pub waited_contacts: u64,
        pub abandoned_contacts: u64,
        pub wait_total: u64,
        pub median_low: i64,
        pub median_high: i64,
    }

    #[derive(Row, Deserialize)]
    pub(super) struct AreaRow {
        pub period: String,
        pub area: String,
        pub channel: String,
        pub assisted: u8,
        pub all_contacts: u64,
        pub completed: u64,
    }
}

/// A stored value the contract does not allow.
fn unexpected(column: &str, value: &str) -> StoreError {
    StoreError::Unexpected {
        column: column.to_string(),
        value: value.to_string(),
    }
}

/// A period column: `total` or the period's first day.
fn period(text: &str) -> Result<Option<NaiveDate>, StoreError> {
    if text == "total" {
        return Ok(None);
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(Some)
        .map_err(|_| unexpected("period", text))
}

/// A closed-set column.
pub(crate) fn member<T: std::str::FromStr>(column: &str, text: &str) -> Result<T, StoreError> {
    text.parse().map_err(|_| unexpected(column, text))
}

/// A key column: `''` when not asked for.
pub(crate) fn asked<T>(
    column: &str,
    text: &str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<Option<T>, StoreError> {
    if text.is_empty() {
        return Ok(None);
    }
    parse(text)
        .map(Some)
        .ok_or_else(|| unexpected(column, text))
}

impl TryFrom<wire::ContactRow> for ContactCell {
    type Error = StoreError;
    fn try_from(row: wire::ContactRow) -> Result<Self, StoreError> {
        Ok(Self {
            period: period(&row.period)?,
            channel: member("channel", &row.channel)?,
            assisted: row.assisted == 1,
            service: asked("service", &row.k_service, ServiceSlug::parse)?,
            customer_type: asked("customer_type", &row.k_customer_type, |text| {
                text.parse().ok()
            })?,
            all_contacts: row.all_contacts,
            tx_completed: row.tx_completed,
            tx_ineligible: row.tx_ineligible,
            tx_abandoned: row.tx_abandoned,
            tx_failed: row.tx_failed,
            tx_transferred: row.tx_transferred,
            avoidable_contacts: row.avoidable_contacts,
            avoidable_flagged: row.avoidable_flagged,
            resolved_first: row.resolved_first,
            resolution_flagged: row.resolution_flagged,
            handling_seconds_total: row.handling_seconds_total,
            timed: row.timed,
        })
    }
}

impl TryFrom<wire::SatisfactionRow> for SatisfactionCell {
    type Error = StoreError;
    fn try_from(row: wire::SatisfactionRow) -> Result<Self, StoreError> {
        Ok(Self {
            period: period(&row.period)?,
            instrument: member("instrument", &row.instrument)?,
            score: row.score,
            channel: asked("channel", &row.k_channel, |text| text.parse().ok())?,
            service: asked("service", &row.k_service, ServiceSlug::parse)?,
            customer_type: asked("customer_type", &row.k_customer_type, |text| {
                text.parse().ok()
            })?,
            responses: row.responses,
        })
    }
}

impl TryFrom<wire::AreaRow> for AreaCell {
    type Error = StoreError;
    fn try_from(row: wire::AreaRow) -> Result<Self, StoreError> {
        Ok(Self {
            period: period(&row.period)?,
            area: row.area,
            channel: member("channel", &row.channel)?,
            assisted: row.assisted == 1,
            all_contacts: row.all_contacts,
            completed: row.completed,
        })
    }
}

impl TryFrom<wire::JourneyRow> for JourneyCell {
    type Error = StoreError;
    fn try_from(row: wire::JourneyRow) -> Result<Self, StoreError> {
        Ok(Self {
            period: period(&row.period)?,
            channel: member("channel", &row.channel)?,
            service: asked("service", &row.k_service, ServiceSlug::parse)?,
            customer_type: asked("customer_type", &row.k_customer_type, |text| {
                text.parse().ok()
            })?,
            journeys: row.journeys,
            resolved: row.resolved,
            open: row.open,
            unlinked: row.unlinked,
        })
    }
}

impl TryFrom<wire::WaitRow> for WaitCell {
    type Error = StoreError;
    fn try_from(row: wire::WaitRow) -> Result<Self, StoreError> {
        Ok(Self {
            period: period(&row.period)?,
            channel: asked("channel", &row.k_channel, |text| text.parse().ok())?,
            service: asked("service", &row.k_service, ServiceSlug::parse)?,
            customer_type: asked("customer_type", &row.k_customer_type, |text| {
                text.parse().ok()
            })?,
            waited: row.waited_contacts,
            abandoned: row.abandoned_contacts,
            wait_total: row.wait_total,
            median: (row.median_low as f64 + row.median_high as f64) / 2.0,
        })
    }
}

/// A bound value: every one is text, converted in SQL where needed.
#[derive(Serialize)]
#[serde(transparent)]
struct Bind(String);

/// SQL text and its bound values, in order.
struct Sql {
    text: String,
    binds: Vec<Bind>,
}

impl Sql {
    fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            binds: Vec::new(),
        }
    }

    fn push(&mut self, text: &str, values: impl IntoIterator<Item = String>) {
        self.text.push_str(text);
        self.binds.extend(values.into_iter().map(Bind));
    }
}

/// UTC bounds wide enough to hold every instant of the local days (London is
/// never more than a day away from UTC), for the raw tables' primary key.
fn utc_margin(filter: &CellFilter) -> (String, String) {
    let (start, end) = utc_days(filter);
    (format!("{start} 00:00:00"), format!("{end} 00:00:00"))
}

/// The UTC days whose instants `utc_margin` reads: a local day's contacts
/// lie within the UTC day before it, itself and the day after; the end is
/// exclusive (its midnight).
fn utc_days(filter: &CellFilter) -> (NaiveDate, NaiveDate) {
    let start = filter
        .from
        .checked_sub_days(Days::new(1))
        .unwrap_or(filter.from);
    let end = filter
        .to
        .checked_add_days(Days::new(2))
        .unwrap_or(filter.to);
    (start, end)
}

const CONTACT_RAW: &str = "(SELECT
        council,
        toDate(occurred_at, 'Europe/London') AS day,
        service, channel, customer_type, interaction, outcome, assisted,
        toUInt64(1) AS contacts,
        toUInt64(ifNull(avoidable, 0) = 1) AS avoidable_contacts,
        toUInt64(isNotNull(avoidable)) AS avoidable_flagged,
        toUInt64(ifNull(first_contact_resolved, 0) = 1) AS resolved_first,
        toUInt64(isNotNull(first_contact_resolved)) AS resolution_flagged,
        toUInt64(ifNull(handling_seconds, 0)) AS handling_seconds_total,
        toUInt64(isNotNull(handling_seconds)) AS timed
    FROM contact_events
    WHERE council = ? AND occurred_at >= toDateTime(?) AND occurred_at < toDateTime(?)";

const SATISFACTION_RAW: &str = "(SELECT
        council,
        toDate(responded_at, 'Europe/London') AS day,
        service, channel, customer_type, instrument, score,
        toUInt64(1) AS responses
    FROM satisfaction_responses
    WHERE council = ? AND responded_at >= toDateTime(?) AND responded_at < toDateTime(?)";

const AREA_RAW: &str = "(SELECT
        council,
        toDate(occurred_at, 'Europe/London') AS day,
        ward, lsoa, channel, assisted, interaction, outcome,
        toUInt64(1) AS contacts
    FROM contact_events
    WHERE council = ? AND occurred_at >= toDateTime(?) AND occurred_at < toDateTime(?)";

const JOURNEY_RAW: &str = "(SELECT
        council,
        toDate(occurred_at, 'Europe/London') AS day,
        if(journey_id = '', toUInt64(0), sipHash64(journey_id)) AS journey,
        if(journey_id = '', toDateTime(86400), occurred_at) AS contacted_at,
        service, channel, customer_type,
        toUInt64(1) AS contacts
    FROM contact_events
    WHERE council = ? AND occurred_at >= toDateTime(?) AND occurred_at < toDateTime(?)";

const WAIT_RAW: &str = "(SELECT
        council,
        toDate(occurred_at, 'Europe/London') AS day,
        service, channel, customer_type, outcome,
        toUInt8(isNotNull(wait_seconds)) AS waited,
        toUInt32(ifNull(wait_seconds, 0)) AS wait,
        toUInt64(1) AS contacts
    FROM contact_events
    WHERE council = ? AND occurred_at >= toDateTime(?) AND occurred_at < toDateTime(?)";

/// `FROM` with its bound values: the rollup table, or the raw subquery.
fn from(sql: &mut Sql, source: Source, rollup: &str, raw: &str, filter: &CellFilter) {
    match source.for_days(filter) {
        Read::Rollup => sql.push(&format!(" FROM {rollup}"), []),
        Read::Raw => {
            let (start, end) = utc_margin(filter);
            sql.push(
                &format!(" FROM {raw})"),
                [filter.council.to_string(), start, end],
            );
        }
        Read::RawAsOf(CutOff(at)) => {
            let (start, end) = utc_margin(filter);
            // Unix seconds, so the server's time zone plays no part.
            sql.push(
                &format!(" FROM {raw} AND ingested_at <= toDateTime(toUInt32(?)))"),
                [
                    filter.council.to_string(),
                    start,
                    end,
                    at.max(0).to_string(),
                ],
            );
        }
    }
}

/// The first day of the first whole month of `filter`'s range and the last
/// day of its last, where `bucket`'s periods are months or made of months
/// (so a month's rows may stand on its first day) and the range holds a
/// whole month.
fn whole_months(filter: &CellFilter, bucket: Bucket) -> Option<(NaiveDate, NaiveDate)> {
    use chrono::Datelike;
    if matches!(bucket, Bucket::Day | Bucket::IsoWeek) {
        return None;
    }
    let first = month_start_from(filter.from)?;
    // The day before the first of the month of the day after the range.
    let last = filter.to.succ_opt()?.with_day(1)?.pred_opt()?;
    (first < last).then_some((first, last))
}

/// The first day of a month on or after `day`.
fn month_start_from(day: NaiveDate) -> Option<NaiveDate> {
    use chrono::Datelike;
    if day.day() == 1 {
        Some(day)
    } else {
        day.checked_add_months(chrono::Months::new(1))?.with_day(1)
    }
}

/// `months` from the first month starting on or after `covered`.
fn from_month_of(
    (first, last): (NaiveDate, NaiveDate),
    covered: NaiveDate,
) -> Option<(NaiveDate, NaiveDate)> {
    let first = first.max(month_start_from(covered)?);
    (first < last).then_some((first, last))
}

/// How long the day from which a monthly rollup is whole is kept before it
/// is read again. It only ever moves earlier (`rebuild-rollups` fills the
/// months before it), so a day kept too long makes figures slower, never wrong.
const COVERAGE_KEPT_FOR: std::time::Duration = std::time::Duration::from_secs(60);

/// The monthly rollups, each read for the whole months of a range in place
/// of its daily rollup: (monthly, daily, the columns cells read of both).
const CONTACT_MONTHS: (&str, &str, &str) = ("contact_monthly", "contact_daily", CONTACT_COLUMNS);
const SATISFACTION_MONTHS: (&str, &str, &str) = (
    "satisfaction_monthly",
    "satisfaction_daily",
    SATISFACTION_COLUMNS,
);

/// The day from which each monthly rollup holds every row, as last read.
#[derive(Default)]
pub struct MonthlyCoverage {
    read: std::sync::Mutex<
        std::collections::HashMap<&'static str, (std::time::Instant, Option<NaiveDate>)>,
    >,
}

#[derive(Row, Deserialize)]
struct Coverage {
    day: u16,
    rows: u64,
}

/// The columns of `contact_daily` and `contact_monthly` that contact cells read.
const CONTACT_COLUMNS: &str = "council, day, service, channel, customer_type, interaction, \
    outcome, assisted, contacts, avoidable_contacts, avoidable_flagged, resolved_first, \
    resolution_flagged, handling_seconds_total, timed";

/// The columns of `satisfaction_daily` and `satisfaction_monthly` that
/// satisfaction cells read.
const SATISFACTION_COLUMNS: &str =
    "council, day, service, channel, customer_type, instrument, score, responses";

impl Store {
    /// The first local day from which the `monthly` rollup holds every row
    /// (`None`: no day is recorded, so it is not read).
    async fn monthly_from(&self, monthly: &'static str) -> Result<Option<NaiveDate>, StoreError> {
        let lock = || {
            self.monthly
                .read
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        };
        if let Some((at, day)) = lock().get(monthly) {
            if at.elapsed() < COVERAGE_KEPT_FOR {
                return Ok(*day);
            }
        }
        let coverage = self
            .query(&format!(
                "SELECT toUInt16(min(from_day)) AS day, count() AS rows FROM {}
                WHERE rollup = ?",
                self.rollup("rollup_coverage")
            ))
            .bind(monthly)
            .fetch_one::<Coverage>()
            .await?;
        let day = (coverage.rows > 0).then(|| crate::journeys::date(coverage.day));
        lock().insert(monthly, (std::time::Instant::now(), day));
        Ok(day)
    }

    /// The whole months of `filter`'s range that the `monthly` rollup may
    /// give, when `bucket` and `source` allow it and it holds them whole.
    async fn months_to_read(
        &self,
        monthly: &'static str,
        filter: &CellFilter,
        bucket: Bucket,
        source: Source,
    ) -> Result<Option<(NaiveDate, NaiveDate)>, StoreError> {
        Ok(match whole_months(filter, bucket) {
            Some(months) if source.for_days(filter) == Read::Rollup => {
                let covered = self.monthly_from(monthly).await?;
                covered.and_then(|covered| from_month_of(months, covered))
            }
            _ => None,
        })
    }

    /// `FROM` the rollups for a range holding whole months: their rows from
    /// the monthly rollup (one a month and key, on the month's first day)
    /// and the days either side from the daily one. Both hold the same
    /// rows, so the cells are the same as from the daily rollup alone.
    fn days_and_months(
        &self,
        sql: &mut Sql,
        (monthly, daily, columns): (&str, &str, &str),
        filter: &CellFilter,
        (first, last): (NaiveDate, NaiveDate),
    ) {
        let council = filter.council.to_string();
        // No day either side: the monthly rollup alone, filtered as the
        // daily one would be (a union with a branch that reads nothing
        // still costs 18.16 a few milliseconds).
        if filter.from == first && filter.to == last {
            sql.push(&format!(" FROM {}", self.rollup(monthly)), []);
            return;
        }
        sql.push(
            &format!(
                " FROM (SELECT {columns} FROM {daily}
                    WHERE council = ? AND ((day >= toDate(?) AND day < toDate(?))
                        OR (day > toDate(?) AND day <= toDate(?)))
                UNION ALL
                SELECT {columns} FROM {monthly}
                    WHERE council = ? AND day >= toDate(?) AND day <= toDate(?))",
                daily = self.rollup(daily),
                monthly = self.rollup(monthly),
            ),
            [
                council.clone(),
                filter.from.to_string(),
                first.to_string(),
                last.to_string(),
                filter.to.to_string(),
                council,
                first.to_string(),
                last.to_string(),
            ],
        );
    }
}

/// The council, the days, and each filter that is set.
fn filters(sql: &mut Sql, filter: &CellFilter, columns: &[(&str, Option<&str>)]) {
    sql.push(
        " WHERE council = ? AND day >= toDate(?) AND day <= toDate(?)",
        [
            filter.council.to_string(),
            filter.from.to_string(),
            filter.to.to_string(),
        ],
    );
    for (column, value) in columns {
        if let Some(value) = value {
            sql.push(&format!(" AND {column} = ?"), [value.to_string()]);
        }
    }
}

/// The service, channel and customer type filters, by their columns.
fn contact_filters(filter: &CellFilter) -> [(&'static str, Option<&str>); 3] {
    [
        ("service", filter.service.as_ref().map(ServiceSlug::as_str)),
        ("channel", filter.channel.map(Channel::as_str)),
        (
            "customer_type",
            filter.customer_type.map(CustomerType::as_str),
        ),
    ]
}

fn key(asked: bool, column: &str, alias: &str) -> String {
    if asked {
        format!("{column} AS {alias}")
    } else {
        format!("'' AS {alias}")
    }
}

impl Store {
    /// Runs `sql` and turns each row into a cell.
    async fn fetch<R, T>(&self, sql: Sql) -> Result<Vec<T>, StoreError>
    where
        R: clickhouse::RowOwned + clickhouse::RowRead,
        T: TryFrom<R, Error = StoreError>,
    {
        let mut query = self.query(&sql.text);
        for bind in sql.binds {
            query = query.bind(bind);
        }
        query
            .fetch_all::<R>()
            .await?
            .into_iter()
            .map(T::try_from)
            .collect()
    }

    /// Contact counts by period, channel, assisted flag, interaction and
    /// outcome, and by service and customer type when `keys` asks.
    pub async fn contact_cells(
        &self,
        filter: &CellFilter,
        bucket: Bucket,
        keys: Keys,
        source: Source,
    ) -> Result<Vec<ContactCell>, StoreError> {
        let mut sql = Sql::new(format!(
            "SELECT {} AS period, channel, assisted, {}, {},
                sum(contacts) AS all_contacts,
                sumIf(contacts, interaction = 'transaction' AND outcome = 'completed') AS tx_completed,
                sumIf(contacts, interaction = 'transaction' AND outcome = 'ineligible') AS tx_ineligible,
                sumIf(contacts, interaction = 'transaction' AND outcome = 'abandoned') AS tx_abandoned,
                sumIf(contacts, interaction = 'transaction' AND outcome = 'failed') AS tx_failed,
                sumIf(contacts, interaction = 'transaction' AND outcome = 'transferred') AS tx_transferred,
                sum(avoidable_contacts) AS avoidable_contacts,
                sum(avoidable_flagged) AS avoidable_flagged,
                sum(resolved_first) AS resolved_first,
                sum(resolution_flagged) AS resolution_flagged,
                sum(handling_seconds_total) AS handling_seconds_total,
                sum(timed) AS timed",
            bucket.sql(),
            key(keys.service, "service", "k_service"),
            key(keys.customer_type, "customer_type", "k_customer_type"),
        ));
        let months = self
            .months_to_read(CONTACT_MONTHS.0, filter, bucket, source)
            .await?;
        match months {
            Some(months) => self.days_and_months(&mut sql, CONTACT_MONTHS, filter, months),
            None => from(
                &mut sql,
                source,
                &self.rollup("contact_daily"),
                CONTACT_RAW,
                filter,
            ),
        }
        filters(&mut sql, filter, &contact_filters(filter));
        sql.push(
            " GROUP BY period, channel, assisted, k_service, k_customer_type
              ORDER BY period, channel, assisted, k_service, k_customer_type",
            [],
        );
        self.fetch::<wire::ContactRow, _>(sql).await
    }

    /// Survey responses by period, instrument and score, and by channel,
    /// service and customer type when `keys` asks.
    pub async fn satisfaction_cells(
        &self,
        filter: &CellFilter,
        bucket: Bucket,
        keys: Keys,
        source: Source,
    ) -> Result<Vec<SatisfactionCell>, StoreError> {
        let mut sql = Sql::new(format!(
            "SELECT {} AS period, instrument, score, {}, {}, {}, sum(responses) AS responses",
            bucket.sql(),
            key(keys.channel, "channel", "k_channel"),
            key(keys.service, "service", "k_service"),
            key(keys.customer_type, "customer_type", "k_customer_type"),
        ));
        let months = self
            .months_to_read(SATISFACTION_MONTHS.0, filter, bucket, source)
            .await?;
        match months {
            Some(months) => self.days_and_months(&mut sql, SATISFACTION_MONTHS, filter, months),
            None => from(
                &mut sql,
                source,
                &self.rollup("satisfaction_daily"),
                SATISFACTION_RAW,
                filter,
            ),
        }
        filters(
            &mut sql,
            filter,
            &[
                ("service", filter.service.as_ref().map(ServiceSlug::as_str)),
                ("channel", filter.channel.map(Channel::as_str)),
                (
                    "customer_type",
                    filter.customer_type.map(CustomerType::as_str),
                ),
                ("instrument", filter.instrument.map(Instrument::as_str)),
            ],
        );
        sql.push(
            " GROUP BY period, instrument, score, k_channel, k_service, k_customer_type
              ORDER BY period, instrument, score, k_channel, k_service, k_customer_type",
            [],
        );
        self.fetch::<wire::SatisfactionRow, _>(sql).await
    }

    /// Contacts by period and ward or LSOA, for hot spots. Contacts without
    /// the area come back with an empty `area`.
    pub async fn area_cells(
        &self,
        filter: &CellFilter,
        bucket: Bucket,
        area: Area,
        source: Source,
    ) -> Result<Vec<AreaCell>, StoreError> {
        let column = match area {
            Area::Ward => "ward",
            Area::Lsoa => "lsoa",
        };
        let mut sql = Sql::new(format!(
            "SELECT {} AS period, {column} AS area, channel, assisted,
                sum(contacts) AS all_contacts,
                sumIf(contacts, interaction = 'transaction' AND outcome IN ('completed', 'ineligible')) AS completed",
            bucket.sql(),
        ));
        from(
            &mut sql,
            source,
            &self.rollup("contact_area_daily"),
            AREA_RAW,
            filter,
        );
        filters(
            &mut sql,
            filter,
            &[("channel", filter.channel.map(Channel::as_str))],
        );
        sql.push(
            " GROUP BY period, area, channel, assisted
              ORDER BY period, area, channel, assisted",
            [],
        );
        self.fetch::<wire::AreaRow, _>(sql).await
    }
}

impl Store {
    /// First-contact resolution by journey, judged in SQL: journeys
    /// starting in the filter's days (see [`JourneyCell`]) with
    /// `window_days` as the repeat window, judged at `judged_at` (Unix
    /// seconds: a journey whose window ends later is open), by period and
    /// first contact's channel, and by service and customer type when
    /// `keys` asks. Filters apply to the first contact. The scan reaches a
    /// window (and a day, for clock changes) either side of the days, to
    /// see the contacts before and after each first one.
    /// [`Store::journey_cells`] keeps settled days (journeys.rs). Every
    /// journey's contacts are held at once, so past 256 MiB the grouping
    /// spills to disk rather than fail (a pack's trend reads a year of raw
    /// contacts this way).
    pub(crate) async fn judge_journeys(
        &self,
        filter: &CellFilter,
        bucket: Bucket,
        keys: Keys,
        source: Source,
        window_days: u32,
        judged_at: i64,
    ) -> Result<Vec<JourneyCell>, StoreError> {
        let reach = Days::new(u64::from(window_days) + 1);
        let scan = CellFilter {
            from: filter.from.checked_sub_days(reach).unwrap_or(filter.from),
            to: filter.to.checked_add_days(reach).unwrap_or(filter.to),
            ..filter.clone()
        };
        let window = (i64::from(window_days) * 86_400).to_string();
        let rollup = self.rollup("journey_contacts");
        let mut sql = Sql::new(format!(
            "SELECT period, channel, k_service, k_customer_type,
                sum(started_closed) AS journeys, sum(started_resolved) AS resolved,
                sum(started_open) AS open, sum(no_journey) AS unlinked
            FROM (
            SELECT {} AS period, first_channel AS channel, {}, {},
                toUInt64(closed) AS started_closed,
                toUInt64(closed AND resolved) AS started_resolved,
                toUInt64(NOT closed) AS started_open,
                toUInt64(0) AS no_journey
            FROM (
                SELECT
                    tupleElement(events[i], 1) AS at,
                    toDate(at, 'Europe/London') AS day,
                    tupleElement(events[i], 3) AS first_channel,
                    tupleElement(events[i], 4) AS first_service,
                    tupleElement(events[i], 5) AS first_customer_type,
                    (i = 1 OR at - tupleElement(events[i - 1], 1) > toInt64(?)) AS starts,
                    (tupleElement(events[i], 2) = 1
                        AND (i = length(events) OR tupleElement(events[i + 1], 1) - at > toInt64(?))) AS resolved,
                    (at + toInt64(?) <= toDateTime(toUInt32(?))) AS closed
                FROM (
                    SELECT journey,
                        arraySort(groupArray((contacted_at, contacts, channel, service, customer_type))) AS events",
            bucket.sql(),
            key(keys.service, "first_service", "k_service"),
            key(keys.customer_type, "first_customer_type", "k_customer_type"),
        ));
        sql.binds.extend(
            [
                window.clone(),
                window.clone(),
                window,
                judged_at.max(0).to_string(),
            ]
            .map(Bind),
        );
        from(&mut sql, source, &rollup, JOURNEY_RAW, &scan);
        filters(&mut sql, &scan, &[]);
        sql.push(
            " AND journey != 0
                    GROUP BY journey
                )
                ARRAY JOIN arrayEnumerate(events) AS i
            )
            WHERE starts AND day >= toDate(?) AND day <= toDate(?)",
            [filter.from.to_string(), filter.to.to_string()],
        );
        for (column, value) in [
            (
                "first_service",
                filter.service.as_ref().map(ServiceSlug::as_str),
            ),
            ("first_channel", filter.channel.map(Channel::as_str)),
            (
                "first_customer_type",
                filter.customer_type.map(CustomerType::as_str),
            ),
        ] {
            if let Some(value) = value {
                sql.push(&format!(" AND {column} = ?"), [value.to_string()]);
            }
        }
        sql.push(
            &format!(
                "
            UNION ALL
            SELECT {} AS period, channel, {}, {},
                toUInt64(0) AS started_closed, toUInt64(0) AS started_resolved,
                toUInt64(0) AS started_open, sum(contacts) AS no_journey",
                bucket.sql(),
                key(keys.service, "service", "k_service"),
                key(keys.customer_type, "customer_type", "k_customer_type"),
            ),
            [],
        );
        from(&mut sql, source, &rollup, JOURNEY_RAW, filter);
        filters(&mut sql, filter, &contact_filters(filter));
        sql.push(
            " AND journey = 0
            GROUP BY period, channel, k_service, k_customer_type
            )
            GROUP BY period, channel, k_service, k_customer_type
            ORDER BY period, channel, k_service, k_customer_type
            SETTINGS max_bytes_before_external_group_by = 268435456",
            [],
        );
        self.fetch::<wire::JourneyRow, _>(sql).await
    }

    /// Contacts with a wait, by period and by the keys asked (see
    /// [`WaitCell`]): their number, how many were abandoned, the waits'
    /// sum and median.
    pub async fn wait_cells(
        &self,
        filter: &CellFilter,
        bucket: Bucket,
        keys: Keys,
        source: Source,
    ) -> Result<Vec<WaitCell>, StoreError> {
        let mut sql = Sql::new(format!(
            "SELECT {} AS period, {}, {}, {},
                sum(contacts) AS waited_contacts,
                sumIf(contacts, outcome = 'abandoned') AS abandoned_contacts,
                sum(toUInt64(wait) * contacts) AS wait_total,
                toInt64(quantileExactWeighted(0.5)(wait, contacts)) AS median_low,
                -toInt64(quantileExactWeighted(0.5)(-toInt64(wait), contacts)) AS median_high",
            bucket.sql(),
            key(keys.channel, "channel", "k_channel"),
            key(keys.service, "service", "k_service"),
            key(keys.customer_type, "customer_type", "k_customer_type"),
        ));
        from(
            &mut sql,
            source,
            &self.rollup("contact_wait_daily"),
            WAIT_RAW,
            filter,
        );
        filters(&mut sql, filter, &contact_filters(filter));
        sql.push(
            " AND waited = 1
            GROUP BY period, k_channel, k_service, k_customer_type
            ORDER BY period, k_channel, k_service, k_customer_type",
            [],
        );
        self.fetch::<wire::WaitRow, _>(sql).await
    }
}

#[derive(Row, Deserialize)]
struct Latest {
    at: u32,
    rows: u64,
}

#[derive(Row, Deserialize)]
struct DayCount {
    days: u64,
}

/// The parts of the store's tables: how many, their rows, and when the
/// latest was written (see [`Store::data_version`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Row, Deserialize)]
pub struct DataVersion {
    parts: u64,
    rows: u64,
    modified: u32,
}

impl Store {
    /// When ingest last stored a batch (Unix seconds), from its checkpoints:
    /// every figure includes everything ingested up to then.
    pub async fn latest_ingest(&self) -> Result<Option<IngestedUpTo>, StoreError> {
        let latest = self
            .query(
                "SELECT toUInt32(max(written_at)) AS at, count() AS rows FROM ingest_checkpoints",
            )
            .fetch_one::<Latest>()
            .await?;
        Ok((latest.rows > 0).then_some(IngestedUpTo(i64::from(latest.at))))
    }

    /// What the store's two databases hold, as the server's parts describe
    /// it: any write (ingest's batches, a rollup rebuilt, a lookup loaded, a
    /// month dropped, a merge) changes it, so an answer computed at one
    /// version holds while the version is unchanged.
    pub async fn data_version(&self) -> Result<DataVersion, StoreError> {
        Ok(self
            .query(
                "SELECT count() AS parts, toUInt64(sum(rows)) AS rows, \
                 toUInt32(max(modification_time)) AS modified \
                 FROM system.parts WHERE active AND (database = ? OR database = ?)",
            )
            .bind(self.database())
            .bind(self.rollups_database())
            .fetch_one::<DataVersion>()
            .await?)
    }

    /// How many local days from `from` to `to` (inclusive) have any contact.
    pub async fn days_with_contacts(
        &self,
        council: &CouncilCode,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<u64, StoreError> {
        Ok(self
            .query(&format!(
                "SELECT uniqExact(day) AS days FROM {}
                WHERE council = ? AND day >= toDate(?) AND day <= toDate(?)",
                self.rollup("contact_daily")
            ))
            .bind(council.as_str())
            .bind(from.to_string())
            .bind(to.to_string())
            .fetch_one::<DayCount>()
            .await?
            .days)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(from: (i32, u32, u32), to: (i32, u32, u32)) -> CellFilter {
        let day = |(y, m, d)| NaiveDate::from_ymd_opt(y, m, d).expect("a date");
        CellFilter::new(
            CouncilCode::parse("E07000041").expect("a GSS code"),
            day(from),
            day(to),
        )
    }

    fn days(first: (i32, u32, u32), last: (i32, u32, u32)) -> Option<(NaiveDate, NaiveDate)> {
        let day = |(y, m, d)| NaiveDate::from_ymd_opt(y, m, d).expect("a date");
        Some((day(first), day(last)))
    }

    #[test]
    fn whole_months_are_those_the_range_holds_from_first_to_last_day() {
        let quarter = range((2026, 7, 1), (2026, 9, 30));
        assert_eq!(
            whole_months(&quarter, Bucket::Total),
            days((2026, 7, 1), (2026, 9, 30))
        );
        assert_eq!(
            whole_months(&range((2025, 12, 15), (2026, 3, 10)), Bucket::Month),
            days((2026, 1, 1), (2026, 2, 28))
        );
        assert_eq!(
            whole_months(&range((2024, 2, 1), (2024, 2, 29)), Bucket::FinancialYear),
            days((2024, 2, 1), (2024, 2, 29))
        );
        // Before the day the monthly rollup is whole from: those months by day.
        let months = days((2025, 4, 1), (2026, 3, 31));
        assert_eq!(
            from_month_of(
                months.expect("months"),
                NaiveDate::from_ymd_opt(2025, 9, 1).expect("a date")
            ),
            days((2025, 9, 1), (2026, 3, 31))
        );
        assert_eq!(
            from_month_of(
                months.expect("months"),
                NaiveDate::from_ymd_opt(2025, 9, 2).expect("a date")
            ),
            days((2025, 10, 1), (2026, 3, 31))
        );
        assert_eq!(
            from_month_of(
                months.expect("months"),
                NaiveDate::from_ymd_opt(1970, 1, 2).expect("a date")
            ),
            months
        );
        assert_eq!(
            from_month_of(
                months.expect("months"),
                NaiveDate::from_ymd_opt(2026, 4, 1).expect("a date")
            ),
            None
        );
        // No whole month inside.
        assert_eq!(
            whole_months(&range((2026, 7, 2), (2026, 8, 30)), Bucket::Total),
            None
        );
        assert_eq!(
            whole_months(&range((2026, 7, 1), (2026, 7, 30)), Bucket::Total),
            None
        );
        // Periods not made of months read the days.
        assert_eq!(whole_months(&quarter, Bucket::Day), None);
        assert_eq!(whole_months(&quarter, Bucket::IsoWeek), None);
    }
}
