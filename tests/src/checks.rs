//! What the tests assert about ClickHouse: raw rows, distinct ids, ids stored
//! more than once, and the rollup's totals.

use anyhow::Result;
use channelshift_store::Store;
use clickhouse::Row;
use serde::Deserialize;

#[derive(Row, Deserialize)]
struct Count {
    n: u64,
}

async fn count(store: &Store, sql: &str) -> Result<u64> {
    Ok(store.client().query(sql).fetch_one::<Count>().await?.n)
}

/// Totals of the contact tables, each computed independently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContactTotals {
    /// Rows in `contact_events`.
    pub rows: u64,
    /// Distinct event ids in `contact_events`.
    pub distinct_ids: u64,
    /// Rows in the id index (one per stored event).
    pub id_index_rows: u64,
    /// Σ contacts in the daily rollup.
    pub rollup_contacts: u64,
}

pub async fn contact_totals(store: &Store) -> Result<ContactTotals> {
    let (rows, id_index_rows, rollup_contacts) = contact_counts(store).await?;
    Ok(ContactTotals {
        rows,
        distinct_ids: count(
            store,
            "SELECT uniqExact(council, event_id) AS n FROM contact_events",
        )
        .await?,
        id_index_rows,
        rollup_contacts,
    })
}

/// The least of the contact counts that stay cheap while ingest writes:
/// raw rows, id index rows and the rollup's sum. Not the distinct ids,
/// which reads every id of the raw table (at 2 M rows, polled four times a
/// second, a fifth of two cores' CPU beside the ingest it waits for).
pub async fn contact_progress(store: &Store) -> Result<u64> {
    let (rows, id_index_rows, rollup_contacts) = contact_counts(store).await?;
    Ok(rows.min(id_index_rows).min(rollup_contacts))
}

/// Raw rows, id index rows and Σ contacts in the daily rollup.
async fn contact_counts(store: &Store) -> Result<(u64, u64, u64)> {
    Ok((
        count(store, "SELECT count() AS n FROM contact_events").await?,
        count(store, "SELECT count() AS n FROM contact_event_ids").await?,
        count(
            store,
            &format!(
                "SELECT toUInt64(sum(contacts)) AS n FROM {}",
                store.rollup("contact_daily")
            ),
        )
        .await?,
    ))
}

impl ContactTotals {
    /// The smallest of the counts: the rollup and the id index are written
    /// after the raw rows within one INSERT, so they are the last to show it.
    pub fn settled(&self) -> u64 {
        self.rows
            .min(self.distinct_ids)
            .min(self.id_index_rows)
            .min(self.rollup_contacts)
    }

    /// What one clean delivery of `unique` distinct events gives.
    pub fn exactly(unique: u64) -> Self {
        Self {
            rows: unique,
            distinct_ids: unique,
            id_index_rows: unique,
            rollup_contacts: unique,
        }
    }
}

/// Rows in `satisfaction_responses` and Σ responses in its rollup.
pub async fn satisfaction_totals(store: &Store) -> Result<(u64, u64)> {
    Ok((
        count(store, "SELECT count() AS n FROM satisfaction_responses").await?,
        count(
            store,
            &format!(
                "SELECT toUInt64(sum(responses)) AS n FROM {}",
                store.rollup("satisfaction_daily")
            ),
        )
        .await?,
    ))
}

/// When the last row so far was stored (Unix seconds): the latest
/// `ingested_at` over both raw tables; 0 when both are empty.
pub async fn last_ingested(store: &Store) -> Result<i64> {
    let mut latest = 0;
    for table in ["contact_events", "satisfaction_responses"] {
        let sql = format!("SELECT toUInt64(toUInt32(max(ingested_at))) AS n FROM {table}");
        latest = latest.max(count(store, &sql).await?);
    }
    Ok(i64::try_from(latest)?)
}

/// Waits until a pack may be as of `at`: the API refuses an as-of less than
/// `settle_seconds` old.
pub async fn await_settled(at: i64, settle_seconds: i64) {
    let ready = at + settle_seconds + 1;
    let wait = ready - chrono::Utc::now().timestamp();
    if let Ok(seconds) = u64::try_from(wait) {
        tokio::time::sleep(std::time::Duration::from_secs(seconds)).await;
    }
}

/// Waits until at least `expected` distinct contact events are stored
/// (raw, id index and rollup alike), with the `logs` of the replicas on failure.
pub async fn await_stored(
    store: &Store,
    expected: u64,
    timeout: std::time::Duration,
    logs: &[&crate::process::IngestProcess],
) -> Result<()> {
    crate::eventually(
        &format!("{expected} contact events stored"),
        timeout,
        || async { Ok((contact_totals(store).await?.settled() >= expected).then_some(())) },
    )
    .await
    .map_err(|error| {
        let logs: Vec<String> = logs.iter().map(|process| process.log_tail()).collect();
        error.context(logs.join("\n"))
    })
}

/// What a load should leave in ClickHouse, counted from the start: distinct
/// contact events and satisfaction responses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stored {
    pub contacts: u64,
    pub responses: u64,
}

impl From<&channelshift_simulator::CouncilTruth> for Stored {
    /// What the simulator says it produced for a council, counted once.
    fn from(truth: &channelshift_simulator::CouncilTruth) -> Self {
        Self {
            contacts: truth.contact_events,
            responses: truth.satisfaction_responses,
        }
    }
}

/// Produces `contacts` and `responses` on the scope's topics and waits until
/// every table the API reads holds exactly `stored`: the raw rows, the id
/// index, and the rollups the materialized views fill just after the raw rows
/// become visible. Ingest must be running; returns the store once it has
/// created the tables (every migration applied).
pub async fn load_and_wait(
    scope: &crate::Scope,
    contacts: &[(String, Vec<u8>)],
    responses: &[(String, Vec<u8>)],
    stored: Stored,
    timeout: std::time::Duration,
) -> Result<Store> {
    let producer = crate::producer(scope)?;
    crate::kafka::produce_all(&producer, &scope.contact_topic, contacts).await?;
    crate::kafka::produce_all(&producer, &scope.satisfaction_topic, responses).await?;
    let store = crate::eventually(
        "ingest connects and migrates",
        std::time::Duration::from_secs(60),
        || async {
            let Ok(store) = scope.store().await else {
                return Ok(None);
            };
            // Every migration applied: the last is recorded once it has run
            // (before, the table or the database may not exist yet).
            let latest = channelshift_store::MIGRATIONS
                .last()
                .map_or(0, |migration| migration.version);
            let recorded = crate::rollups::tsv(
                &store,
                &format!("SELECT count() FROM schema_migrations WHERE version = {latest}"),
            )
            .await;
            Ok(recorded
                .is_ok_and(|recorded| recorded.trim() != "0")
                .then_some(store))
        },
    )
    .await?;
    crate::eventually(
        &format!("{stored:?} stored and rolled up"),
        timeout,
        || async { holds(&store, stored).await },
    )
    .await?;
    Ok(store)
}

/// `Some` when every table holds `stored`; an error names the first that
/// does not, which `eventually` reports if it never does.
async fn holds(store: &Store, stored: Stored) -> Result<Option<()>> {
    let totals = contact_totals(store).await?;
    anyhow::ensure!(
        totals == ContactTotals::exactly(stored.contacts),
        "contacts {totals:?}, expected {}",
        stored.contacts
    );
    let by_area = count(
        store,
        &format!(
            "SELECT toUInt64(sum(contacts)) AS n FROM {}",
            store.rollup("contact_area_daily")
        ),
    )
    .await?;
    anyhow::ensure!(
        by_area == stored.contacts,
        "contact_area_daily holds {by_area} of {}",
        stored.contacts
    );
    let responses = satisfaction_totals(store).await?;
    anyhow::ensure!(
        responses == (stored.responses, stored.responses),
        "responses (rows, rollup) {responses:?}, expected {}",
        stored.responses
    );
    Ok(Some(()))
}
