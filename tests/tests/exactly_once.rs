//! Exactly-once effect: after re-sent ids, a replayed partition, SIGKILL in
//! the middle of batches and replicas rebalancing under load, every raw count
//! and the rollup equal one clean delivery of each unique event.

use anyhow::Result;
use channelshift_tests::checks::{
    await_stored, contact_totals, satisfaction_totals, ContactTotals,
};
use channelshift_tests::kafka::{
    await_committed, await_consumed, committed_offsets, produce_all, read_topic,
    reset_offsets_to_start,
};
use channelshift_tests::process::IngestProcess;
use channelshift_tests::{
    contact_events, create_topics, eventually, producer, satisfaction_responses, Scope,
};
use std::time::Duration;

const CONSUMED: &str = "channelshift_ingest_messages_consumed_total";
const DUPLICATES: &str = "channelshift_ingest_duplicates_skipped_total";
const INSERTED: &str = "channelshift_ingest_rows_inserted_total";
const LOOKED_AHEAD: &str = "channelshift_ingest_looked_ahead_batches_total";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_id_sent_again_later_is_counted_once() -> Result<()> {
    let scope = Scope::new("resend");
    create_topics(&scope).await?;
    let ingest = IngestProcess::ingest("resend", scope.ingest_config()).await?;
    let producer = producer(&scope)?;
    let store = scope.store().await?;

    let first = contact_events("ev", 0..200);
    produce_all(&producer, &scope.contact_topic, &first).await?;
    await_stored(&store, 200, Duration::from_secs(60), &[&ingest]).await?;

    // Later, in another batch: all 200 again, 50 new ones, and 20 of the new
    // ones twice within the same batch.
    let mut second = first.clone();
    let new = contact_events("ev", 200..250);
    second.extend(new.iter().cloned());
    second.extend(new[..20].iter().cloned());
    produce_all(&producer, &scope.contact_topic, &second).await?;
    eventually(
        "every re-sent copy read and skipped",
        Duration::from_secs(60),
        || async { Ok((ingest.metric(DUPLICATES, &[]).await? >= 220.0).then_some(())) },
    )
    .await?;
    await_stored(&store, 250, Duration::from_secs(30), &[&ingest]).await?;
    assert_eq!(contact_totals(&store).await?, ContactTotals::exactly(250));
    assert_eq!(ingest.metric(DUPLICATES, &[]).await?, 220.0);
    // Every inserted row's age was observed once.
    let ages = ingest
        .metric(
            "channelshift_ingest_event_age_seconds_count",
            &[("table", "contact_events")],
        )
        .await?;
    assert_eq!(ages, 250.0);
    drop(ingest);
    scope.drop_database().await
}

/// A backlog read in small batches, so each batch is looked up and staged
/// while the one before it is written; half of every block of 100 messages
/// re-sends the block before, so most repeats fall in the batch written
/// beside the look-ahead. Each id is stored once, and the look-ahead was
/// used (not only discarded).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_repeated_in_the_batch_written_beside_a_look_ahead_are_counted_once() -> Result<()> {
    let scope = Scope::new("lookahead");
    create_topics(&scope).await?;
    let producer = producer(&scope)?;
    let store = scope.store().await?;
    let (mut contacts, mut responses) = (Vec::new(), Vec::new());
    for block in 0..20 {
        contacts.extend(contact_events("ev", block * 50..(block + 1) * 50));
        responses.extend(satisfaction_responses("sr", block * 10..(block + 1) * 10));
        if block > 0 {
            contacts.extend(contact_events("ev", (block - 1) * 50..block * 50));
            responses.extend(satisfaction_responses("sr", (block - 1) * 10..block * 10));
        }
    }
    produce_all(&producer, &scope.contact_topic, &contacts).await?;
    produce_all(&producer, &scope.satisfaction_topic, &responses).await?;
    let mut config = scope.ingest_config();
    config.batch.max_rows = 100;
    let ingest = IngestProcess::ingest("lookahead", config).await?;
    await_stored(&store, 1_000, Duration::from_secs(120), &[&ingest]).await?;
    let messages = (contacts.len() + responses.len()) as f64;
    eventually(
        "every message stored or skipped",
        Duration::from_secs(60),
        || async {
            let inserted = ingest.metric(INSERTED, &[]).await?;
            let duplicates = ingest.metric(DUPLICATES, &[]).await?;
            Ok((inserted + duplicates >= messages).then_some(()))
        },
    )
    .await?;
    assert_eq!(contact_totals(&store).await?, ContactTotals::exactly(1_000));
    assert_eq!(satisfaction_totals(&store).await?, (200, 200));
    assert_eq!(ingest.metric(DUPLICATES, &[]).await?, 950.0 + 190.0);
    let used = ingest.metric(LOOKED_AHEAD, &[("outcome", "used")]).await?;
    assert!(used > 0.0, "no batch was written with its look-ahead");
    drop(ingest);
    scope.drop_database().await
}

/// A previous owner that stopped between its rows and their index leaves
/// raw rows the index lacks, past its checkpoint. A new replica claims the
/// partitions, bounds what it must look for by the last offset stored of
/// each, finds those rows in the raw table, and stores the rest: each
/// event once, the rows found counted as half written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_a_previous_owner_stored_without_their_index_are_not_stored_again() -> Result<()> {
    use channelshift_store::Fencing;
    use rdkafka::Message;
    let scope = Scope::new("unindexed");
    create_topics(&scope).await?;
    let producer = producer(&scope)?;
    let store = scope.store().await?;
    store.migrate().await?;
    produce_all(
        &producer,
        &scope.contact_topic,
        &contact_events("ev", 0..300),
    )
    .await?;
    let messages = read_topic(
        &scope.stack.kafka_brokers,
        &scope.contact_topic,
        300,
        Duration::from_secs(30),
    )?;
    // On every partition, the messages at offsets 20 to 29, stored as the
    // previous owner did (the same id, instant and position), then their
    // index rows lost.
    let mut planted = Vec::new();
    for message in &messages {
        if !(20..30).contains(&message.offset()) {
            continue;
        }
        let id = String::from_utf8(message.key().unwrap_or_default().to_vec())?;
        let i: usize = id.trim_start_matches("ev-").parse()?;
        let at = format!(
            "2025-{:02}-{:02}T10:{:02}:00Z",
            1 + i % 12,
            1 + i % 28,
            i % 60
        );
        let mut row = channelshift_tests::rollups::contact(i, at.parse()?);
        row.kafka_partition = message.partition();
        row.kafka_offset = message.offset();
        planted.push(row);
    }
    assert_eq!(planted.len(), 30, "ten on each of the three partitions");
    store.insert_contacts(&mut planted, Fencing::Off).await?;
    store
        .client()
        .query("TRUNCATE TABLE contact_event_ids")
        .execute()
        .await?;

    let ingest = IngestProcess::ingest("unindexed", scope.ingest_config()).await?;
    await_stored(&store, 300, Duration::from_secs(60), &[&ingest]).await?;
    assert_eq!(
        contact_totals(&store).await?,
        ContactTotals::exactly(300),
        "{}",
        ingest.log_tail()
    );
    assert_eq!(
        ingest
            .metric(channelshift_ingest::metrics::HALF_WRITTEN, &[])
            .await?,
        30.0
    );
    drop(ingest);
    scope.drop_database().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_replayed_from_the_start_is_neither_recounted_nor_dead_lettered_again(
) -> Result<()> {
    let scope = Scope::new("replay");
    create_topics(&scope).await?;
    let brokers = scope.stack.kafka_brokers.clone();
    let producer = producer(&scope)?;
    let store = scope.store().await?;

    let mut first = contact_events("ev", 0..300);
    for i in 0..5 {
        first.push((format!("bad-{i}"), format!("{{\"bad\": {i}}}").into_bytes()));
    }
    produce_all(&producer, &scope.contact_topic, &first).await?;
    let mut ingest = IngestProcess::ingest("replay-a", scope.ingest_config()).await?;
    await_stored(&store, 300, Duration::from_secs(60), &[&ingest]).await?;
    await_committed(
        &brokers,
        &scope.group_id,
        &scope.contact_topic,
        Duration::from_secs(30),
    )
    .await?;
    ingest.signal("TERM")?;
    assert!(
        ingest.wait(Duration::from_secs(30)).await?.is_some(),
        "replica A stops"
    );

    // An operator resets the group to the start of the topic.
    reset_offsets_to_start(&brokers, &scope.group_id, &scope.contact_topic)?;
    assert!(
        committed_offsets(&brokers, &scope.group_id, &scope.contact_topic)?
            .values()
            .all(|offset| *offset == 0)
    );
    let ingest = IngestProcess::ingest("replay-b", scope.ingest_config()).await?;
    produce_all(
        &producer,
        &scope.contact_topic,
        &contact_events("ev", 300..400),
    )
    .await?;
    await_stored(&store, 400, Duration::from_secs(60), &[&ingest]).await?;

    assert_eq!(contact_totals(&store).await?, ContactTotals::exactly(400));
    // It started at the checkpoints kept in ClickHouse: the 305 old messages
    // were not read again, so not skipped as duplicates and not dead-lettered twice.
    assert_eq!(
        ingest.metric(CONSUMED, &[]).await?,
        100.0,
        "{}",
        ingest.log_tail()
    );
    assert_eq!(ingest.metric(DUPLICATES, &[]).await?, 0.0);
    let dead = read_topic(
        &brokers,
        &format!("{}.dlq", scope.contact_topic),
        5,
        Duration::from_secs(20),
    )?;
    assert_eq!(dead.len(), 5, "each bad message dead-lettered once");
    drop(ingest);
    scope.drop_database().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_killed_in_the_middle_of_batches_loses_nothing_and_counts_nothing_twice(
) -> Result<()> {
    let scope = Scope::new("sigkill");
    create_topics(&scope).await?;
    let producer = producer(&scope)?;
    let store = scope.store().await?;

    // 1. A batch that is read but not yet written when the process dies.
    let mut slow = scope.ingest_config();
    slow.batch.max_wait_ms = 120_000;
    slow.batch.max_rows = 1_000_000;
    let ingest = IngestProcess::ingest("sigkill-1", slow).await?;
    produce_all(
        &producer,
        &scope.contact_topic,
        &contact_events("ev", 0..3_000),
    )
    .await?;
    eventually(
        "the open batch holds all 3,000",
        Duration::from_secs(60),
        || async { Ok((ingest.metric(CONSUMED, &[]).await? >= 3_000.0).then_some(())) },
    )
    .await?;
    assert_eq!(
        contact_totals(&store).await?.rows,
        0,
        "nothing written before the kill"
    );
    ingest.kill()?;

    // 2. Small batches under a steady flow, killed twice at arbitrary moments;
    // the flow re-sends, in five runs of 125, 625 messages of 525 ids that
    // were already sent (2,500 to 3,024).
    let mut fast = scope.ingest_config();
    fast.batch.max_rows = 500;
    fast.batch.max_wait_ms = 100;
    // The last chunk waits until after the last kill, so both kills fall
    // while events still flow.
    let last_chunk = std::sync::Arc::new(tokio::sync::Notify::new());
    let flow = {
        let producer = producer.clone();
        let topic = scope.contact_topic.clone();
        let last_chunk = last_chunk.clone();
        tokio::spawn(async move {
            for chunk in 0..20 {
                if chunk == 19 {
                    last_chunk.notified().await;
                }
                let start = 3_000 + chunk * 1_000;
                produce_all(
                    &producer,
                    &topic,
                    &contact_events("ev", start..start + 1_000),
                )
                .await?;
                if chunk % 4 == 0 {
                    let again = 2_500 + chunk * 25;
                    produce_all(&producer, &topic, &contact_events("ev", again..again + 125))
                        .await?;
                }
                tokio::time::sleep(Duration::from_millis(400)).await;
            }
            anyhow::Ok(())
        })
    };
    let mut stored_at_kills = Vec::new();
    for (replica, kill_after) in [("sigkill-2", 6_000), ("sigkill-3", 10_000)] {
        let ingest = IngestProcess::ingest(replica, fast.clone()).await?;
        await_stored(&store, kill_after, Duration::from_secs(60), &[&ingest]).await?;
        stored_at_kills.push(contact_totals(&store).await?.rows);
        ingest.kill()?;
    }
    let flowing_at_last_kill = !flow.is_finished();
    last_chunk.notify_one();
    flow.await??;
    assert!(
        flowing_at_last_kill,
        "the events stopped before the last kill"
    );
    assert!(
        stored_at_kills.iter().all(|&rows| rows < 23_000),
        "a kill came after everything was stored: {stored_at_kills:?}"
    );
    let ingest = IngestProcess::ingest("sigkill-4", fast).await?;
    await_stored(&store, 23_000, Duration::from_secs(120), &[&ingest]).await?;
    await_consumed(
        &scope.stack.kafka_brokers,
        &scope.group_id,
        &[&scope.contact_topic],
        Duration::from_secs(60),
    )
    .await?;
    assert_eq!(
        contact_totals(&store).await?,
        ContactTotals::exactly(23_000)
    );
    eprintln!(
        "sigkill: rows stored at the kills: {stored_at_kills:?}; events still flowing at the last kill: {flowing_at_last_kill}"
    );
    drop(ingest);
    scope.drop_database().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_rebalancing_while_events_flow_count_each_event_once() -> Result<()> {
    let scope = Scope::new("rebalance");
    create_topics(&scope).await?;
    let producer = producer(&scope)?;
    let store = scope.store().await?;
    // Replica A never closes a batch on its own: everything it reads is still
    // unwritten when replica B joins and takes partitions away from it, and
    // the rest is written only when A is stopped, while B is writing too.
    let mut holding = scope.ingest_config();
    holding.batch.max_rows = 1_000_000;
    holding.batch.max_wait_ms = 600_000;
    let mut config = scope.ingest_config();
    config.batch.max_rows = 2_000;
    config.batch.max_wait_ms = 300;

    let flow = {
        let producer = producer.clone();
        let topic = scope.contact_topic.clone();
        let responses_topic = scope.satisfaction_topic.clone();
        // Both topics flow, so whichever partitions move, they carry messages.
        tokio::spawn(async move {
            for chunk in 0..40 {
                let start = chunk * 750;
                produce_all(&producer, &topic, &contact_events("ev", start..start + 750)).await?;
                let start = chunk * 250;
                produce_all(
                    &producer,
                    &responses_topic,
                    &satisfaction_responses("r", start..start + 250),
                )
                .await?;
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            anyhow::Ok(())
        })
    };
    let mut first = IngestProcess::ingest("rebalance-a", holding).await?;
    // A holds messages it has not written when B joins.
    eventually(
        "replica A holds unwritten messages",
        Duration::from_secs(60),
        || async { Ok((first.metric(CONSUMED, &[]).await? > 0.0).then_some(())) },
    )
    .await
    .map_err(|error| error.context(first.log_tail()))?;
    let second = IngestProcess::ingest("rebalance-b", config.clone()).await?;
    // Released once the revoke's `recv` returns, which may be a moment after the callback.
    let first_released = eventually(
        "replica A releases the unwritten messages of the partitions it gave up",
        Duration::from_secs(60),
        || async {
            let released = first
                .metric("channelshift_ingest_messages_released_total", &[])
                .await?;
            Ok((released > 0.0).then_some(released))
        },
    )
    .await
    .map_err(|error| error.context(format!("{}\n{}", first.log_tail(), second.log_tail())))?;
    // Replica B writes the partitions it was given while A still holds its
    // unwritten copies of their messages.
    eventually("replica B writes rows", Duration::from_secs(60), || async {
        let inserted = second
            .metric("channelshift_ingest_rows_inserted_total", &[])
            .await?;
        Ok((inserted > 0.0).then_some(()))
    })
    .await
    .map_err(|error| error.context(format!("{}\n{}", first.log_tail(), second.log_tail())))?;
    // The first replica leaves while events still flow; the second takes all.
    assert!(
        !flow.is_finished(),
        "the events stopped before replica A left"
    );
    first.signal("TERM")?;
    assert!(
        first.wait(Duration::from_secs(30)).await?.is_some(),
        "replica A stops"
    );
    flow.await??;
    await_stored(&store, 30_000, Duration::from_secs(120), &[&second]).await?;
    await_consumed(
        &scope.stack.kafka_brokers,
        &scope.group_id,
        &[&scope.contact_topic, &scope.satisfaction_topic],
        Duration::from_secs(60),
    )
    .await
    .map_err(|error| error.context(second.log_tail()))?;
    assert_eq!(
        contact_totals(&store).await?,
        ContactTotals::exactly(30_000)
    );
    assert_eq!(satisfaction_totals(&store).await?, (10_000, 10_000));
    let second_inserted = second
        .metric("channelshift_ingest_rows_inserted_total", &[])
        .await?;
    let first_inserted = 40_000.0 - second_inserted;
    assert!(
        second_inserted > 0.0 && first_inserted > 0.0,
        "both replicas wrote rows (A {first_inserted}, B {second_inserted})"
    );
    eprintln!(
        "rebalance: A released {first_released} buffered messages to B; A inserted \
         {first_inserted} rows when stopped, B {second_inserted}"
    );
    drop(second);
    scope.drop_database().await
}
