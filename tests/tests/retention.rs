//! Raw retention end to end on the local stack: events of twelve months
//! stored through Kafka and ingest, the six oldest raw months purged. The
//! rollups keep every event, the reconciliation stays exact (the purged
//! messages' ids are still indexed), and a rollup rebuild leaves the purged
//! months alone.

use anyhow::Result;
use channelshift_ingest::reconcile::{reconcile, ReconcileConfig, Span};
use channelshift_ingest::retention::purge_raw;
use channelshift_store::Record;
use channelshift_tests::checks::contact_totals;
use channelshift_tests::clickhouse::migrated_store;
use channelshift_tests::kafka::produce_all;
use channelshift_tests::process::IngestProcess;
use channelshift_tests::{contact_events, create_topics, eventually, producer, Scope};
use chrono::NaiveDate;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purged_raw_months_keep_the_figures_and_the_reconciliation_exact() -> Result<()> {
    let scope = Scope::new("retention");
    create_topics(&scope).await?;
    // 50 contacts in each month of 2025.
    let events = contact_events("kept", 0..600);
    produce_all(&producer(&scope)?, &scope.contact_topic, &events).await?;
    let config = scope.ingest_config();
    let settings = ReconcileConfig::from(&config);
    let ingest = IngestProcess::ingest("retention", config.clone()).await?;
    let store = migrated_store(&config.clickhouse).await?;
    eventually(
        "600 events stored and checkpointed",
        Duration::from_secs(90),
        || {
            let settings = settings.clone();
            async move {
                let report = reconcile(&settings, Span::FromBeginning).await?;
                Ok(report.is_exact().then_some(()))
            }
        },
    )
    .await
    .map_err(|error| error.context(ingest.log_tail()))?;
    drop(ingest);
    let rollup_before = store.retained_totals(Record::Contact, None).await?.1;
    assert_eq!(rollup_before, 600);

    // On 15 January 2026, six whole months kept: July 2025 on.
    let today = NaiveDate::from_ymd_opt(2026, 1, 15).expect("a date");
    let dropped = purge_raw(&store, 6, today).await?;
    let months: Vec<u32> = dropped.iter().map(|(_, month)| *month).collect();
    assert_eq!(months, [202501, 202502, 202503, 202504, 202505, 202506]);
    assert_eq!(contact_totals(&store).await?.rows, 300);
    assert_eq!(
        store.retained_totals(Record::Contact, None).await?.1,
        600,
        "the rollup keeps the purged months"
    );

    let report = reconcile(&settings, Span::FromBeginning).await?;
    assert!(report.is_exact(), "{report}");
    assert_eq!(report.topics[0].total().purged, 300, "{report}");
    assert_eq!(report.topics[0].total().missing, 0, "{report}");

    store.rebuild_rollups(|_| ()).await?;
    assert_eq!(
        store.retained_totals(Record::Contact, None).await?.1,
        600,
        "the rebuild left the purged months alone"
    );
    assert!(
        purge_raw(&store, 6, today).await?.is_empty(),
        "a second purge finds nothing"
    );
    scope.drop_database().await
}
