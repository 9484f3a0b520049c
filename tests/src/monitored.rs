//! Ingest (its real binary) and the KPI API running on a small known data
//! set, with every metric the dashboards and alerts read brought into being:
//! a dead letter, a duplicate, a failed write, rebalances, lag, requests that
//! succeed and fail. The dashboard, Prometheus and alert tests look at it.
//!
//! The figures the known data gives are in [`KnownData`]'s documentation.

use crate::kafka::produce_all;
use crate::process::IngestProcess;
use crate::{create_topics, eventually, producer, start_api, Running, Scope, API_TOKEN};
use anyhow::{Context, Result};
use serde_json::json;
use std::time::Duration;

pub const COUNCIL: &str = "E07000041";
/// A second council, whose one contact is stored while a write is failing.
pub const OTHER_COUNCIL: &str = "E07000099";

/// One contact event of the known data (council [`COUNCIL`], interaction
/// `transaction` unless said otherwise).
struct Contact {
    count: usize,
    occurred_at: &'static str,
    channel: &'static str,
    assisted: bool,
    service: &'static str,
    interaction: &'static str,
    outcome: &'static str,
    customer_type: &'static str,
    ward: Option<&'static str>,
}

const fn contacts(
    count: usize,
    occurred_at: &'static str,
    channel: &'static str,
    service: &'static str,
    outcome: &'static str,
    customer_type: &'static str,
    ward: Option<&'static str>,
) -> Contact {
    Contact {
        count,
        occurred_at,
        channel,
        assisted: false,
        service,
        interaction: "transaction",
        outcome,
        customer_type,
        ward,
    }
}

/// The known data. With all services, channels and customer types, the
/// current take-up definition and a suppression threshold of 10, over local
/// 1 April to 30 June 2025:
///
/// - Baseline (12 June 2024): council tax 10 phone and 10 web completed.
/// - April: council tax 15 web completed + 1 web assisted completed + 2 web
///   abandoned (ward E05000001), 5 phone completed (ward E05000002).
/// - May: waste, business: 6 web and 6 face-to-face completed (E05000002).
/// - June: one council-tax phone *information* contact at 23:30 UTC on
///   3 June, which is 4 June in London (ward E05000003).
///
/// So take-up is 16/21 in April (15/21 under gds_2014) and 6/12 in May;
/// completion of digital self-service 16/18 in April (May's 6 are too few);
/// savings (council tax only, waste has no baseline): 24 current contacts ×
/// £29.80/20 − £19.68 = £16.08.
///
/// Satisfaction (15 April, council tax): web residents csat5 scores
/// 5 5 4 2 1 4 5 3 4 5 (7 of 10 satisfied) and nps11 10 9 6 8 10 9 7 0 10 3
/// (NPS 50% − 30% = 20); libraries, phone, business: csat5 5 4 (withheld).
pub struct KnownData;

const CONTACTS: &[Contact] = &[
    contacts(
        10,
        "2024-06-12T10:00:00Z",
        "phone",
        "council_tax",
        "completed",
        "resident",
        Some("E05000001"),
    ),
    contacts(
        10,
        "2024-06-12T10:00:00Z",
        "web",
        "council_tax",
        "completed",
        "resident",
        Some("E05000001"),
    ),
    contacts(
        15,
        "2025-04-10T10:00:00Z",
        "web",
        "council_tax",
        "completed",
        "resident",
        Some("E05000001"),
    ),
    Contact {
        assisted: true,
        ..contacts(
            1,
            "2025-04-10T10:00:00Z",
            "web",
            "council_tax",
            "completed",
            "resident",
            Some("E05000001"),
        )
    },
    contacts(
        2,
        "2025-04-10T10:00:00Z",
        "web",
        "council_tax",
        "abandoned",
        "resident",
        Some("E05000001"),
    ),
    contacts(
        5,
        "2025-04-10T10:00:00Z",
        "phone",
        "council_tax",
        "completed",
        "resident",
        Some("E05000002"),
    ),
    contacts(
        6,
        "2025-05-12T10:00:00Z",
        "web",
        "waste",
        "completed",
        "business",
        Some("E05000002"),
    ),
    contacts(
        6,
        "2025-05-12T10:00:00Z",
        "face_to_face",
        "waste",
        "completed",
        "business",
        Some("E05000002"),
    ),
    Contact {
        interaction: "information",
        ..contacts(
            1,
            "2025-06-03T23:30:00Z",
            "phone",
            "council_tax",
            "completed",
            "resident",
            Some("E05000003"),
        )
    },
];

/// `(channel, service, customer type, instrument, scores)`, answered 15 April 2025.
const RESPONSES: &[(&str, &str, &str, &str, &[u8])] = &[
    (
        "web",
        "council_tax",
        "resident",
        "csat5",
        &[5, 5, 4, 2, 1, 4, 5, 3, 4, 5],
    ),
    (
        "web",
        "council_tax",
        "resident",
        "nps11",
        &[10, 9, 6, 8, 10, 9, 7, 0, 10, 3],
    ),
    ("phone", "libraries", "business", "csat5", &[5, 4]),
];

impl KnownData {
    pub fn contact_count() -> u64 {
        CONTACTS.iter().map(|contact| contact.count as u64).sum()
    }

    pub fn response_count() -> u64 {
        RESPONSES
            .iter()
            .map(|(_, _, _, _, scores)| scores.len() as u64)
            .sum()
    }

    fn contact_messages() -> Vec<(String, Vec<u8>)> {
        let mut messages = Vec::new();
        for (group, contact) in CONTACTS.iter().enumerate() {
            for i in 0..contact.count {
                let id = format!("known-{group}-{i}");
                let mut event = json!({
                    "schema_version": 1,
                    "event_id": id,
                    "council": COUNCIL,
                    "occurred_at": contact.occurred_at,
                    "channel": contact.channel,
                    "assisted": contact.assisted,
                    "service": contact.service,
                    "interaction": contact.interaction,
                    "outcome": contact.outcome,
                    "customer_type": contact.customer_type,
                });
                if let Some(ward) = contact.ward {
                    event["ward"] = json!(ward);
                }
                messages.push((id, event.to_string().into_bytes()));
            }
        }
        messages
    }

    fn response_messages() -> Vec<(String, Vec<u8>)> {
        let mut messages = Vec::new();
        for (group, (channel, service, customer_type, instrument, scores)) in
            RESPONSES.iter().enumerate()
        {
            for (i, score) in scores.iter().enumerate() {
                let id = format!("known-response-{group}-{i}");
                let response = json!({
                    "schema_version": 1,
                    "response_id": id,
                    "council": COUNCIL,
                    "responded_at": "2025-04-15T12:00:00Z",
                    "channel": channel,
                    "service": service,
                    "customer_type": customer_type,
                    "instrument": instrument,
                    "score": score,
                });
                messages.push((id, response.to_string().into_bytes()));
            }
        }
        messages
    }
}

/// Ingest and the API, running on the known data.
pub struct Monitored {
    pub scope: Scope,
    pub ingest: IngestProcess,
    /// The API's base URL; its `/metrics` is there too.
    pub api_url: String,
    api: Running,
}

impl Monitored {
    /// Starts ingest as a process, sends it the known data through Kafka, and
    /// waits until it is stored and every metric the dashboards read exists.
    pub async fn start(test: &str) -> Result<Self> {
        let scope = Scope::new(test);
        create_topics(&scope).await?;
        let ingest = IngestProcess::ingest("ingest", scope.ingest_config()).await?;
        let producer = producer(&scope)?;
        produce_all(
            &producer,
            &scope.contact_topic,
            &KnownData::contact_messages(),
        )
        .await?;
        produce_all(
            &producer,
            &scope.satisfaction_topic,
            &KnownData::response_messages(),
        )
        .await?;
        // A message that breaks the contract: a dead letter.
        produce_all(
            &producer,
            &scope.contact_topic,
            &[(
                "broken".into(),
                br#"{"schema_version": 1, "event_id": "broken"}"#.to_vec(),
            )],
        )
        .await?;

        let store = eventually("ingest migrates", Duration::from_secs(60), || async {
            Ok(scope.store().await.ok())
        })
        .await?;
        eventually(
            "the known data is stored",
            Duration::from_secs(90),
            || async {
                let contacts = crate::checks::contact_totals(&store).await?;
                let (responses, rolled_up) = crate::checks::satisfaction_totals(&store).await?;
                Ok((contacts.settled() == KnownData::contact_count()
                    && responses.min(rolled_up) == KnownData::response_count())
                .then_some(()))
            },
        )
        .await
        .with_context(|| ingest.log_tail())?;

        // The first contact again, once stored: a duplicate, skipped.
        let first = KnownData::contact_messages().swap_remove(0);
        produce_all(&producer, &scope.contact_topic, &[first]).await?;
        eventually(
            "the duplicate is skipped",
            Duration::from_secs(60),
            || async {
                Ok((ingest
                    .metric(channelshift_ingest::metrics::DUPLICATES, &[])
                    .await?
                    >= 1.0)
                    .then_some(()))
            },
        )
        .await?;

        // A failed write: the checkpoint table moved away while a contact of
        // another council arrives, then put back; ingest retries until it lands.
        let moved = "RENAME TABLE ingest_checkpoints TO ingest_checkpoints_moved";
        store.client().query(moved).execute().await?;
        let other = json!({
            "schema_version": 1, "event_id": "other-council", "council": OTHER_COUNCIL,
            "occurred_at": "2025-01-06T09:00:00Z", "channel": "web", "service": "waste",
            "outcome": "completed", "customer_type": "resident",
        });
        produce_all(
            &producer,
            &scope.contact_topic,
            &[("other-council".into(), other.to_string().into_bytes())],
        )
        .await?;
        let failed = eventually("a write fails", Duration::from_secs(60), || async {
            Ok((ingest
                .metric(channelshift_ingest::metrics::WRITE_ERRORS, &[])
                .await?
                >= 1.0)
                .then_some(()))
        })
        .await;
        let restored = "RENAME TABLE ingest_checkpoints_moved TO ingest_checkpoints";
        store.client().query(restored).execute().await?;
        failed?;
        eventually(
            "the retried write lands",
            Duration::from_secs(60),
            || async {
                let metrics = ingest.metrics().await?;
                let buffered = crate::process::metric_sum(
                    &metrics,
                    channelshift_ingest::metrics::BUFFERED,
                    &[],
                );
                let stored = crate::checks::contact_totals(&store).await?.settled();
                Ok((buffered == 0.0 && stored == KnownData::contact_count() + 1).then_some(()))
            },
        )
        .await
        .with_context(|| ingest.log_tail())?;
        // librdkafka reports lag every 5 s.
        eventually(
            "consumer lag is reported",
            Duration::from_secs(30),
            || async {
                Ok(ingest
                    .metrics()
                    .await?
                    .contains(channelshift_ingest::metrics::CONSUMER_LAG)
                    .then_some(()))
            },
        )
        .await?;

        let (api_url, api) = start_api(&scope, 10).await?;
        let client = reqwest::Client::new();
        let take_up = format!(
            "{api_url}/api/v1/kpi/digital-take-up?council={COUNCIL}&from=2025-04-01&to=2025-06-30"
        );
        let answered = client.get(&take_up).bearer_auth(API_TOKEN).send().await?;
        anyhow::ensure!(answered.status() == 200, "take-up: {}", answered.status());
        let anonymous = client.get(&take_up).send().await?;
        anyhow::ensure!(
            anonymous.status() == 401,
            "no token: {}",
            anonymous.status()
        );
        let bad = client
            .get(format!(
                "{api_url}/api/v1/kpi/digital-take-up?council=nowhere"
            ))
            .bearer_auth(API_TOKEN)
            .send()
            .await?;
        anyhow::ensure!(bad.status() == 400, "bad council: {}", bad.status());

        Ok(Self {
            scope,
            ingest,
            api_url,
            api,
        })
    }

    /// Both `/metrics` texts, ingest's first.
    pub async fn scrapes(&self) -> Result<(String, String)> {
        let api = reqwest::get(format!("{}/metrics", self.api_url))
            .await?
            .error_for_status()?
            .text()
            .await?;
        Ok((self.ingest.metrics().await?, api))
    }

    /// `host:port` of ingest's and the API's operator endpoints.
    pub fn targets(&self) -> (String, String) {
        let strip = |url: &str| url.trim_start_matches("http://").to_string();
        (strip(&self.ingest.base_url), strip(&self.api_url))
    }

    /// Stops the API and ingest and drops the test's database.
    pub async fn stop(self) -> Result<()> {
        self.api.stop().await?;
        self.ingest.kill()?;
        self.scope.drop_database().await
    }
}
