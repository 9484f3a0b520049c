//! First-contact resolution from the rollups, with each settled day's
//! journeys kept in memory.
//!
//! Judging journeys groups every journey of the period at query time
//! (`journey_cells` in cells.rs), which at millions of contacts takes
//! seconds. But a day's journeys depend only on the contacts of the days
//! a window either side of it, and once every window of the day has closed
//! they no longer depend on the time of judging. So the journeys of such a
//! *settled* day are kept, by day, channel, service and customer type,
//! with the number of contacts in those surrounding days (the day's
//! *basis*). A later request counts the contacts per day in `journey_days`
//! (a row per council and day, so one query of a few milliseconds) and
//! reuses every kept day whose basis is unchanged; a contact stored since,
//! in any day that could change the day's journeys, changes its basis, so
//! that day is judged again.
//!
//! A judged day's basis is counted in `journey_contacts` itself, before the
//! journeys are judged from it, never in `journey_days`: the two rollups'
//! views (and their months in `rebuild-rollups`) are written one after the
//! other, so `journey_days` may be a moment ahead of or behind the rows
//! judged. Counted first in the rows judged, a basis never claims rows the
//! journeys lack; where `journey_days` differs from it, for whatever
//! reason, the day is judged again, so a kept day is reused only while
//! `journey_days` agrees with the rows it was judged from. That holds
//! where the count and the judging read the same server; where reads are
//! spread over replicas that lag each other (deploy/SCALING.md), a count
//! from a replica ahead of the one judged could be kept against journeys
//! that lack its rows. Only contacts stored are counted, so a rebuild that
//! changes a day's rows but not their number leaves its kept journeys in
//! use until the API restarts (a changed rollup definition comes with an
//! upgrade, which restarts it).
//!
//! A day is kept and reused only
//! where it is settled at the instant judged at, so a report as of an
//! earlier cut-off judges afresh the days still open then. The rollup
//! source is kept, and `AsOf` where it reads the rollups; the raw sources
//! always judge afresh.
//!
//! Memory is per process, and a pack runs in a process of its own, so
//! settled days are also stored: `channelshift-api settle-journeys` (a
//! writer's job, run nightly) judges every settled day whose basis is not
//! yet stored, by the same query, into `journey_settled`, with its basis.
//! A day missing from memory is read from there before it is judged, on
//! the same terms: settled at the instant judged at, and its stored basis
//! equal to `journey_days`' count. `rebuild-rollups` drops every stored
//! day once it has rebuilt `journey_contacts`. Each row carries
//! [`JOURNEY_DEFINITION`], and only the current one's rows are read, so a
//! release that judges journeys differently never reads days judged the
//! old way.

use crate::cells::{asked, member, Bucket, CellFilter, JourneyCell, Keys, Read, Source};
use crate::connection::{Store, StoreError};
use channelshift_contract::{Channel, CouncilCode, CustomerType, ServiceSlug};
use chrono::{Datelike, Days, NaiveDate};
use clickhouse::Row;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

/// How journeys are judged (`judge_journeys` in cells.rs and the cells kept
/// per day): raise it with any change to either, so that days stored by an
/// earlier release are judged again, not read.
pub const JOURNEY_DEFINITION: u16 = 1;

/// Settled days kept at most, all councils and windows together; past it
/// the cache starts afresh.
const MAX_DAYS: usize = 50_000;

/// One settled day's journeys and the basis they were judged on.
#[derive(Clone)]
struct Day {
    basis: u64,
    /// Shared, so a request reads a kept day without copying it.
    cells: Arc<Vec<JourneyCell>>,
}

/// Settled days' journeys by (council, window in days) and day.
#[derive(Default)]
pub struct SettledJourneys {
    days: Mutex<HashMap<(String, u32), BTreeMap<NaiveDate, Day>>>,
}

impl SettledJourneys {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, u32), BTreeMap<NaiveDate, Day>>> {
        self.days
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A council's contacts per local day over a span, counted in
/// `journey_days` once for several [`Store::journey_cells_counted`] calls whose
/// days (with their windows either side) it covers.
pub struct JourneyDays {
    council: CouncilCode,
    window_days: u32,
    from: NaiveDate,
    to: NaiveDate,
    per_day: BTreeMap<NaiveDate, u64>,
}

impl JourneyDays {
    fn covers(
        &self,
        council: &CouncilCode,
        window_days: u32,
        from: NaiveDate,
        to: NaiveDate,
    ) -> bool {
        self.council == *council
            && self.window_days == window_days
            && self.from <= from
            && to <= self.to
    }
}

/// The days whose contacts judge the journeys of `from` to `to`: the
/// range and `window_days` + 1 either side (`None` past the calendar).
fn scan(from: NaiveDate, to: NaiveDate, window_days: u32) -> Option<(NaiveDate, NaiveDate)> {
    let reach = Days::new(u64::from(window_days) + 1);
    Some((from.checked_sub_days(reach)?, to.checked_add_days(reach)?))
}

#[derive(Row, Deserialize)]
struct DayContacts {
    day: u16,
    contacts: u64,
}

/// The date `days` after 1970-01-01, as ClickHouse sends a `Date`.
pub(crate) fn date(days: u16) -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default() + Days::new(u64::from(days))
}

/// Whether every journey starting on `day` has its window closed by
/// `judged_at` (Unix seconds): the day's last instant is before the next
/// day's end in UTC, and its window ends `window_days` later.
fn settled(day: NaiveDate, window_days: u32, judged_at: i64) -> bool {
    let end = day + Days::new(2) + Days::new(u64::from(window_days));
    end.and_hms_opt(0, 0, 0)
        .is_some_and(|end| end.and_utc().timestamp() <= judged_at)
}

/// The first day of `bucket`'s period containing `day`, as the SQL of
/// [`Bucket`] computes it; `None` for the whole range.
fn period_of(bucket: Bucket, day: NaiveDate) -> Option<NaiveDate> {
    use chrono::Datelike;
    let first = |year: i32, month: u32| NaiveDate::from_ymd_opt(year, month, 1);
    match bucket {
        Bucket::Day => Some(day),
        Bucket::IsoWeek => {
            day.checked_sub_days(Days::new(u64::from(day.weekday().num_days_from_monday())))
        }
        Bucket::Month => first(day.year(), day.month()),
        Bucket::FinancialQuarter => first(day.year(), (day.month() - 1) / 3 * 3 + 1),
        Bucket::FinancialYear if day.month() >= 4 => first(day.year(), 4),
        Bucket::FinancialYear => first(day.year() - 1, 4),
        Bucket::Total => None,
    }
}

impl Store {
    /// The council's contacts per local day from `from` to `to` and
    /// `window_days` + 1 either side, for [`Store::journey_cells_counted`]
    /// on ranges within `from` to `to` and that window.
    pub async fn journey_days(
        &self,
        council: &CouncilCode,
        (from, to): (NaiveDate, NaiveDate),
        window_days: u32,
    ) -> Result<JourneyDays, StoreError> {
        let (from, to) = scan(from, to, window_days).unwrap_or((from, to));
        Ok(JourneyDays {
            council: council.clone(),
            window_days,
            from,
            to,
            per_day: self
                .contacts_per_day("journey_days", council, from, to)
                .await?,
        })
    }

    /// First-contact resolution by journey (see [`JourneyCell`] and the
    /// SQL in cells.rs): from the rollups, every settled day whose basis
    /// is unchanged comes from memory and the rest is judged in one query
    /// per run of days; from the raw tables, always judged afresh.
    pub async fn journey_cells(
        &self,
        filter: &CellFilter,
        bucket: Bucket,
        keys: Keys,
        source: Source,
        window_days: u32,
        judged_at: i64,
    ) -> Result<Vec<JourneyCell>, StoreError> {
        self.journeys_of(filter, bucket, keys, source, (window_days, judged_at), None)
            .await
    }

    /// [`Store::journey_cells`] with the window of `counted`: the contacts
    /// per day that kept days' bases are checked against come from it
    /// where it covers the range's days and windows, else from one query.
    pub async fn journey_cells_counted(
        &self,
        filter: &CellFilter,
        bucket: Bucket,
        keys: Keys,
        source: Source,
        judged_at: i64,
        counted: &JourneyDays,
    ) -> Result<Vec<JourneyCell>, StoreError> {
        let window = (counted.window_days, judged_at);
        self.journeys_of(filter, bucket, keys, source, window, Some(counted))
            .await
    }

    async fn journeys_of(
        &self,
        filter: &CellFilter,
        bucket: Bucket,
        keys: Keys,
        source: Source,
        (window_days, judged_at): (u32, i64),
        counted: Option<&JourneyDays>,
    ) -> Result<Vec<JourneyCell>, StoreError> {
        let reach = Days::new(u64::from(window_days) + 1);
        let Some((scan_from, scan_to)) = scan(filter.from, filter.to, window_days) else {
            return self
                .judge_journeys(filter, bucket, keys, source, window_days, judged_at)
                .await;
        };
        let scan = CellFilter::new(filter.council.clone(), scan_from, scan_to);
        if source.for_days(&scan) != Read::Rollup {
            return self
                .judge_journeys(filter, bucket, keys, source, window_days, judged_at)
                .await;
        }
        let read;
        let per_day = match counted {
            Some(counted) if counted.covers(&filter.council, window_days, scan_from, scan_to) => {
                &counted.per_day
            }
            _ => {
                read = self
                    .contacts_per_day("journey_days", &filter.council, scan_from, scan_to)
                    .await?;
                &read
            }
        };
        let key = (filter.council.to_string(), window_days);
        let mut days: Vec<(NaiveDate, Arc<Vec<JourneyCell>>)> = Vec::new();
        let mut missing: Vec<NaiveDate> = Vec::new();
        {
            let kept = self.journeys.lock();
            let council = kept.get(&key);
            let mut day = filter.from;
            while day <= filter.to {
                match council.and_then(|council| council.get(&day)) {
                    Some(found)
                        if found.basis == basis(per_day, day, reach)
                            && settled(day, window_days, judged_at) =>
                    {
                        days.push((day, found.cells.clone()))
                    }
                    _ => missing.push(day),
                }
                let Some(next) = day.succ_opt() else { break };
                day = next;
            }
        }
        // Settled days missing from memory, from those stored, on the same
        // terms as memory's.
        let mut judged: Vec<(NaiveDate, u64, Arc<Vec<JourneyCell>>)> = Vec::new();
        let settled_missing: Vec<NaiveDate> = missing
            .iter()
            .copied()
            .filter(|day| settled(*day, window_days, judged_at))
            .collect();
        if let (Some(&first), Some(&last)) = (settled_missing.first(), settled_missing.last()) {
            let stored = self
                .stored_days(&filter.council, window_days, first, last)
                .await?;
            missing.retain(|day| match stored.get(day) {
                Some(found)
                    if found.basis == basis(per_day, *day, reach)
                        && settled(*day, window_days, judged_at) =>
                {
                    judged.push((*day, found.basis, found.cells.clone()));
                    false
                }
                _ => true,
            });
        }
        judged.extend(
            self.judge_days(&filter.council, &missing, window_days, judged_at)
                .await?
                .into_iter()
                .map(|(day, basis, cells)| (day, basis, Arc::new(cells))),
        );
        {
            let mut kept = self.journeys.lock();
            if kept.values().map(BTreeMap::len).sum::<usize>() > MAX_DAYS {
                kept.clear();
            }
            let council = kept.entry(key).or_default();
            for (day, day_basis, cells) in &judged {
                if settled(*day, window_days, judged_at) {
                    council.insert(
                        *day,
                        Day {
                            basis: *day_basis,
                            cells: cells.clone(),
                        },
                    );
                }
            }
        }
        days.extend(judged.into_iter().map(|(day, _, cells)| (day, cells)));
        Ok(regroup(&days, filter, bucket, keys))
    }
}

impl Store {
    /// Judges `days` (ascending) afresh from `journey_contacts`, each run of
    /// consecutive days in one query, by day and every key, so any
    /// request's grouping can be made from it. Returns each day with its
    /// basis, counted in `journey_contacts` before judging: the rows judged
    /// include every row counted.
    async fn judge_days(
        &self,
        council: &CouncilCode,
        days: &[NaiveDate],
        window_days: u32,
        judged_at: i64,
    ) -> Result<Vec<(NaiveDate, u64, Vec<JourneyCell>)>, StoreError> {
        let reach = Days::new(u64::from(window_days) + 1);
        let every = Keys {
            service: true,
            customer_type: true,
            channel: false,
        };
        let mut judged = Vec::with_capacity(days.len());
        let mut start = 0;
        while start < days.len() {
            let mut end = start;
            while end + 1 < days.len() && days[end].succ_opt() == Some(days[end + 1]) {
                end += 1;
            }
            let run = CellFilter::new(council.clone(), days[start], days[end]);
            let run_per_day = self
                .contacts_per_day(
                    "journey_contacts",
                    council,
                    run.from.checked_sub_days(reach).unwrap_or(run.from),
                    run.to.checked_add_days(reach).unwrap_or(run.to),
                )
                .await?;
            let cells = self
                .judge_journeys(
                    &run,
                    Bucket::Day,
                    every,
                    Source::Rollup,
                    window_days,
                    judged_at,
                )
                .await?;
            for &day in &days[start..=end] {
                let of_day = cells
                    .iter()
                    .filter(|cell| cell.period == Some(day))
                    .cloned()
                    .collect();
                judged.push((day, basis(&run_per_day, day, reach), of_day));
            }
            start = end + 1;
        }
        Ok(judged)
    }
}

/// A row of `journey_settled`, as written: a day's header (channel '') or
/// one of its cells.
#[derive(Row, Serialize)]
struct SettledRow<'a> {
    council: &'a str,
    window_days: u16,
    definition: u16,
    day: u16,
    judging: u64,
    basis: u64,
    channel: &'a str,
    service: &'a str,
    customer_type: &'a str,
    journeys: u64,
    resolved: u64,
    open: u64,
    unlinked: u64,
}

/// A row of `journey_settled`, as read for one council and window.
#[derive(Row, Deserialize)]
struct StoredRow {
    day: u16,
    judging: u64,
    basis: u64,
    channel: String,
    service: String,
    customer_type: String,
    journeys: u64,
    resolved: u64,
    open: u64,
    unlinked: u64,
}

/// What [`Store::settle_journeys`] found and did for one council.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SettledJourneysReport {
    /// Settled days with contacts within their reach.
    pub days: usize,
    /// Of those, the days judged and stored now (new, or their basis changed).
    pub judged: usize,
    /// The stored journeys of those days.
    pub journeys: u64,
}

/// `ServerError` code of a table that does not exist.
const UNKNOWN_TABLE: u32 = 60;

impl Store {
    /// Judges every settled day (at `judged_at`) of `council` with contacts
    /// within its reach whose basis is not stored yet, or has changed, and
    /// stores it in `journey_settled` (see the module's documentation), a
    /// month at a time; `progress` is called after each month with the
    /// month's first day and the days judged in it. Needs a ClickHouse user
    /// that may write the rollups' database.
    pub async fn settle_journeys(
        &self,
        council: &CouncilCode,
        window_days: u32,
        judged_at: i64,
        mut progress: impl FnMut(NaiveDate, usize),
    ) -> Result<SettledJourneysReport, StoreError> {
        let reach = Days::new(u64::from(window_days) + 1);
        let epoch = date(1);
        let judged_on =
            chrono::DateTime::from_timestamp(judged_at, 0).map_or(epoch, |at| at.date_naive());
        let per_day = self
            .contacts_per_day("journey_days", council, epoch, judged_on)
            .await?;
        let mut candidates: BTreeSet<NaiveDate> = BTreeSet::new();
        for &day in per_day.keys() {
            let first = day.checked_sub_days(reach).unwrap_or(day);
            let last = day.checked_add_days(reach).unwrap_or(day);
            for candidate in first.iter_days().take_while(|d| *d <= last) {
                if settled(candidate, window_days, judged_at) {
                    candidates.insert(candidate);
                }
            }
        }
        let mut report = SettledJourneysReport {
            days: candidates.len(),
            ..SettledJourneysReport::default()
        };
        let (Some(&first), Some(&last)) = (candidates.first(), candidates.last()) else {
            return Ok(report);
        };
        let stored = self.stored_days(council, window_days, first, last).await?;
        let mut by_month: BTreeMap<NaiveDate, Vec<NaiveDate>> = BTreeMap::new();
        for day in candidates {
            if stored.get(&day).map(|found| found.basis) != Some(basis(&per_day, day, reach)) {
                by_month
                    .entry(day.with_day(1).unwrap_or(day))
                    .or_default()
                    .push(day);
            }
        }
        let window = u16::try_from(window_days).unwrap_or(u16::MAX);
        let judging = self.next_number("journey_settled", "judging").await?;
        for (month, days) in by_month {
            let judged = self
                .judge_days(council, &days, window_days, judged_at)
                .await?;
            let mut insert = self
                .rollups_client()
                .insert::<SettledRow<'_>>("journey_settled")
                .await?;
            for (day, day_basis, cells) in &judged {
                let row = |cell| settled_row(council, window, *day, judging, *day_basis, cell);
                // The header last: a day is read only with it.
                for cell in cells {
                    insert.write(&row(Some(cell))).await?;
                    report.journeys += cell.journeys;
                }
                insert.write(&row(None)).await?;
            }
            insert.end().await?;
            report.judged += judged.len();
            progress(month, judged.len());
        }
        Ok(report)
    }

    /// The councils with contacts in `journey_days`.
    pub async fn councils_with_journeys(&self) -> Result<Vec<String>, StoreError> {
        Ok(self
            .query(&format!(
                "SELECT DISTINCT council FROM {} ORDER BY council",
                self.rollup("journey_days")
            ))
            .fetch_all::<String>()
            .await?)
    }

    /// The stored judged days of `council` and `window_days` from `from` to
    /// `to`: each day's latest judging. None where the table does not exist
    /// yet (a database not migrated to version 14).
    async fn stored_days(
        &self,
        council: &CouncilCode,
        window_days: u32,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<BTreeMap<NaiveDate, Day>, StoreError> {
        let rows = self
            .query(&format!(
                "SELECT day, judging, basis, channel, service, customer_type,
                    journeys, resolved, open, unlinked
                FROM {}
                WHERE council = ? AND window_days = ? AND definition = ?
                    AND day >= toDate(?) AND day <= toDate(?)",
                self.rollup("journey_settled")
            ))
            .bind(council.as_str())
            .bind(window_days)
            .bind(JOURNEY_DEFINITION)
            .bind(from.to_string())
            .bind(to.to_string())
            .fetch_all::<StoredRow>()
            .await;
        let rows = match rows.map_err(StoreError::from) {
            Ok(rows) => rows,
            Err(error) if error.code() == Some(UNKNOWN_TABLE) => Vec::new(),
            Err(error) => return Err(error),
        };
        let mut latest: BTreeMap<u16, u64> = BTreeMap::new();
        for row in rows.iter().filter(|row| row.channel.is_empty()) {
            let judging = latest.entry(row.day).or_default();
            *judging = (*judging).max(row.judging);
        }
        let mut days: BTreeMap<NaiveDate, (u64, Vec<JourneyCell>)> = BTreeMap::new();
        for row in rows {
            if latest.get(&row.day) != Some(&row.judging) {
                continue;
            }
            let (_, cells) = days.entry(date(row.day)).or_insert((row.basis, Vec::new()));
            if row.channel.is_empty() {
                continue;
            }
            cells.push(JourneyCell {
                period: Some(date(row.day)),
                channel: member("channel", &row.channel)?,
                service: asked("service", &row.service, ServiceSlug::parse)?,
                customer_type: asked("customer_type", &row.customer_type, |text| {
                    text.parse().ok()
                })?,
                journeys: row.journeys,
                resolved: row.resolved,
                open: row.open,
                unlinked: row.unlinked,
            });
        }
        Ok(days
            .into_iter()
            .map(|(day, (basis, cells))| {
                let cells = Arc::new(cells);
                (day, Day { basis, cells })
            })
            .collect())
    }
}

/// `journey_settled`'s row of a judged day: its header without `cell`.
fn settled_row<'a>(
    council: &'a CouncilCode,
    window_days: u16,
    day: NaiveDate,
    judging: u64,
    basis: u64,
    cell: Option<&'a JourneyCell>,
) -> SettledRow<'a> {
    SettledRow {
        council: council.as_str(),
        window_days,
        definition: JOURNEY_DEFINITION,
        day: days_since_epoch(day),
        judging,
        basis,
        channel: cell.map_or("", |cell| cell.channel.as_str()),
        service: cell
            .and_then(|cell| cell.service.as_ref())
            .map_or("", ServiceSlug::as_str),
        customer_type: cell
            .and_then(|cell| cell.customer_type)
            .map_or("", |customer_type| customer_type.as_str()),
        journeys: cell.map_or(0, |cell| cell.journeys),
        resolved: cell.map_or(0, |cell| cell.resolved),
        open: cell.map_or(0, |cell| cell.open),
        unlinked: cell.map_or(0, |cell| cell.unlinked),
    }
}

/// `day` as ClickHouse stores a `Date`: days since 1970-01-01.
pub(crate) fn days_since_epoch(day: NaiveDate) -> u16 {
    let days = day.signed_duration_since(date(0)).num_days();
    u16::try_from(days).unwrap_or(if days < 0 { 0 } else { u16::MAX })
}

/// The contacts of the days `reach` either side of `day`, and of `day`.
fn basis(per_day: &BTreeMap<NaiveDate, u64>, day: NaiveDate, reach: Days) -> u64 {
    let from = day.checked_sub_days(reach).unwrap_or(day);
    let to = day.checked_add_days(reach).unwrap_or(day);
    per_day.range(from..=to).map(|(_, contacts)| contacts).sum()
}

impl Store {
    /// The council's contacts per local day from `from` to `to` in `rollup`
    /// (`journey_days` or `journey_contacts`).
    async fn contacts_per_day(
        &self,
        rollup: &str,
        council: &CouncilCode,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<BTreeMap<NaiveDate, u64>, StoreError> {
        Ok(self
            .query(&format!(
                "SELECT day, sum(contacts) AS contacts FROM {}
                WHERE council = ? AND day >= toDate(?) AND day <= toDate(?)
                GROUP BY day",
                self.rollup(rollup)
            ))
            .bind(council.as_str())
            .bind(from.to_string())
            .bind(to.to_string())
            .fetch_all::<DayContacts>()
            .await?
            .into_iter()
            .map(|row| (date(row.day), row.contacts))
            .collect())
    }
}

/// Day cells filtered as `filter` asks (on the first contact's channel,
/// service and customer type) and summed into `bucket`'s periods and the
/// keys asked for, in the order the SQL gives them (by the period's first
/// day, then the channel's, service's and customer type's wire names).
fn regroup(
    days: &[(NaiveDate, Arc<Vec<JourneyCell>>)],
    filter: &CellFilter,
    bucket: Bucket,
    keys: Keys,
) -> Vec<JourneyCell> {
    type Group<'a> = (
        Option<NaiveDate>,
        Channel,
        Option<&'a ServiceSlug>,
        Option<CustomerType>,
    );
    let mut groups: HashMap<Group<'_>, JourneyCell> = HashMap::new();
    for (day, cells) in days {
        let period = period_of(bucket, *day);
        for cell in cells.iter() {
            if filter
                .channel
                .is_some_and(|channel| channel != cell.channel)
                || filter
                    .service
                    .as_ref()
                    .is_some_and(|service| Some(service) != cell.service.as_ref())
                || filter
                    .customer_type
                    .is_some_and(|customer_type| Some(customer_type) != cell.customer_type)
            {
                continue;
            }
            let service = cell.service.as_ref().filter(|_| keys.service);
            let customer_type = cell.customer_type.filter(|_| keys.customer_type);
            let group = groups
                .entry((period, cell.channel, service, customer_type))
                .or_insert_with(|| JourneyCell {
                    period,
                    channel: cell.channel,
                    service: service.cloned(),
                    customer_type,
                    journeys: 0,
                    resolved: 0,
                    open: 0,
                    unlinked: 0,
                });
            group.journeys += cell.journeys;
            group.resolved += cell.resolved;
            group.open += cell.open;
            group.unlinked += cell.unlinked;
        }
    }
    let mut cells: Vec<JourneyCell> = groups.into_values().collect();
    // One bucket gives every period or none, so a period's first day sorts
    // as its text does; a key not asked for is '' in SQL, before any name.
    cells.sort_by(|a, b| order(a).cmp(&order(b)));
    cells
}

/// A regrouped cell's place in the SQL's order.
fn order(cell: &JourneyCell) -> (Option<NaiveDate>, &'static str, &str, &'static str) {
    (
        cell.period,
        cell.channel.as_str(),
        cell.service.as_ref().map_or("", ServiceSlug::as_str),
        cell.customer_type.map_or("", CustomerType::as_str),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("a date")
    }

    #[test]
    fn periods_start_where_the_sql_starts_them() {
        let d = day(2025, 5, 14); // a Wednesday
        assert_eq!(period_of(Bucket::Day, d), Some(d));
        assert_eq!(period_of(Bucket::IsoWeek, d), Some(day(2025, 5, 12)));
        assert_eq!(period_of(Bucket::Month, d), Some(day(2025, 5, 1)));
        assert_eq!(
            period_of(Bucket::FinancialQuarter, d),
            Some(day(2025, 4, 1))
        );
        assert_eq!(period_of(Bucket::FinancialYear, d), Some(day(2025, 4, 1)));
        assert_eq!(
            period_of(Bucket::FinancialYear, day(2026, 3, 31)),
            Some(day(2025, 4, 1))
        );
        assert_eq!(
            period_of(Bucket::FinancialQuarter, day(2026, 3, 31)),
            Some(day(2026, 1, 1))
        );
        assert_eq!(period_of(Bucket::Total, d), None);
    }

    #[test]
    fn a_day_is_settled_once_its_last_window_has_closed() {
        let d = day(2025, 5, 14);
        // 16 May 00:00 UTC + 7 days = 23 May 00:00 UTC.
        let closed = day(2025, 5, 23)
            .and_hms_opt(0, 0, 0)
            .expect("a time")
            .and_utc()
            .timestamp();
        assert!(settled(d, 7, closed));
        assert!(!settled(d, 7, closed - 1));
    }
}
