//! Answers kept for a short while. Dashboards and scorecards ask the same
//! questions at every refresh; while nothing has been written to the store,
//! the figures cannot have changed, except through time itself (a journey's
//! repeat window closing). So an answer is kept with the store's data
//! version (its tables' parts: any insert, rebuild, load, drop or merge
//! changes it), and given again to the same question while the version is
//! unchanged and for at most `server.answer_cache_seconds` (0 keeps
//! nothing). While ingest stores batches every few seconds, nearly every
//! question is computed afresh. Where the version cannot be read (a
//! ClickHouse user that may not read `system.parts`), nothing is kept.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use prometheus::{IntCounterVec, Opts, Registry};
use serde::Serialize;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const ANSWERS: &str = "channelshift_api_answers_total";

/// Answers kept at most; past it the cache starts afresh.
const MAX_ANSWERS: usize = 1_000;

/// One answer: its JSON body, when it was computed and the data version
/// read before.
struct Kept<V> {
    version: V,
    at: Instant,
    body: Bytes,
}

/// Answers by question (the route and its query string), each with the
/// data version `V` it was computed at (`channelshift_store::DataVersion`).
pub struct Answers<V> {
    keep_for: Duration,
    kept: Mutex<HashMap<String, Kept<V>>>,
    /// `channelshift_api_answers_total{outcome="kept"|"computed"}`.
    outcomes: IntCounterVec,
    /// Whether a data version that could not be read has been logged.
    unversioned_logged: AtomicBool,
}

impl<V: PartialEq> Answers<V> {
    pub fn new(keep_for: Duration) -> prometheus::Result<Self> {
        Ok(Self {
            keep_for,
            kept: Mutex::new(HashMap::new()),
            outcomes: IntCounterVec::new(
                Opts::new(
                    ANSWERS,
                    "KPI and scorecard answers, kept from earlier or computed",
                ),
                &["outcome"],
            )?,
            unversioned_logged: AtomicBool::new(false),
        })
    }

    /// The answer to `question`: the one kept, if the data version (as
    /// `read` before) is still the one it was computed at, else `compute`d
    /// now and kept at that version. When nothing is kept
    /// (`answer_cache_seconds = 0`) the version is not read at all.
    pub async fn ask<T, E, R, F, Fut>(
        &self,
        question: String,
        read: R,
        compute: F,
    ) -> Result<Response, ApiError>
    where
        T: Serialize,
        E: std::fmt::Display,
        R: Future<Output = Result<V, E>>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, ApiError>>,
    {
        let version = if self.keep_for.is_zero() {
            None
        } else {
            self.version(read.await)
        };
        if let Some(kept) = self.get(&question, version.as_ref()) {
            return Ok(kept);
        }
        let answer = compute().await?;
        self.answer(question, version, &answer)
    }

    /// The data version as read (`Err`: it could not be, so answers are
    /// computed and not kept; logged once).
    fn version<E: std::fmt::Display>(&self, read: Result<V, E>) -> Option<V> {
        match read {
            Ok(version) => Some(version),
            Err(error) => {
                if !self.unversioned_logged.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        %error,
                        "the store's data version (system.parts) cannot be read: every KPI \
                         and scorecard answer is computed afresh"
                    );
                }
                None
            }
        }
    }

    /// Counts answers in `registry`.
    pub fn register(&self, registry: &Registry) -> prometheus::Result<()> {
        registry.register(Box::new(self.outcomes.clone()))
    }

    /// The answer kept for `question`, if the data version is still the one
    /// it was computed at and it is not older than the time answers are kept.
    fn get(&self, question: &str, version: Option<&V>) -> Option<Response> {
        let version = version?;
        let kept = self
            .kept
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let answer = kept
            .get(question)
            .filter(|answer| answer.version == *version && answer.at.elapsed() < self.keep_for)
            .map(|answer| json(answer.body.clone()));
        if answer.is_some() {
            self.outcomes.with_label_values(&["kept"]).inc();
        }
        answer
    }

    /// `answer` as the response, kept for `question` with `version` (read
    /// before the answer was computed; not kept without one).
    fn answer<T: Serialize>(
        &self,
        question: String,
        version: Option<V>,
        answer: &T,
    ) -> Result<Response, ApiError> {
        let body =
            Bytes::from(serde_json::to_vec(answer).map_err(|error| {
                ApiError::Internal(format!("answer not serialisable: {error}"))
            })?);
        self.outcomes.with_label_values(&["computed"]).inc();
        if let Some(version) = version.filter(|_| !self.keep_for.is_zero()) {
            let mut kept = self
                .kept
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if kept.len() >= MAX_ANSWERS {
                kept.clear();
            }
            kept.insert(
                question,
                Kept {
                    version,
                    at: Instant::now(),
                    body: body.clone(),
                },
            );
        }
        Ok(json(body))
    }
}

fn json(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(response: Response) -> Vec<u8> {
        axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("an in-memory body")
            .to_vec()
    }

    #[tokio::test]
    async fn an_answer_is_given_again_until_the_data_version_changes_or_it_is_too_old() {
        let answers = Answers::new(Duration::from_millis(200)).expect("metric");
        let stored = 1_000;
        assert!(answers.get("q", Some(&stored)).is_none());
        let first = answers
            .answer("q".into(), Some(stored), &vec![1, 2])
            .expect("JSON");
        assert_eq!(body_of(first).await, b"[1,2]");
        let again = answers.get("q", Some(&stored)).expect("kept");
        assert_eq!(body_of(again).await, b"[1,2]");
        assert!(answers.get("another", Some(&stored)).is_none());
        assert!(
            answers.get("q", Some(&1_001)).is_none(),
            "ingest stored more"
        );
        std::thread::sleep(Duration::from_millis(250));
        assert!(answers.get("q", Some(&stored)).is_none(), "too old");
    }

    #[test]
    fn with_no_time_to_keep_nothing_is_kept() {
        let answers = Answers::new(Duration::ZERO).expect("metric");
        answers.answer("q".into(), Some(7), &1).expect("JSON");
        assert!(answers.get("q", Some(&7)).is_none());
    }

    #[tokio::test]
    async fn with_no_time_to_keep_the_data_version_is_not_read() {
        let read = std::sync::atomic::AtomicUsize::new(0);
        let version = || async {
            read.fetch_add(1, Ordering::Relaxed);
            Ok::<u64, String>(7)
        };
        for (keep, reads) in [(Duration::ZERO, 0), (Duration::from_secs(60), 2)] {
            read.store(0, Ordering::Relaxed);
            let answers = Answers::new(keep).expect("metric");
            for _ in 0..2 {
                let answer = answers
                    .ask("q".into(), version(), || async { Ok(vec![1]) })
                    .await
                    .expect("an answer");
                assert_eq!(body_of(answer).await, b"[1]");
            }
            assert_eq!(read.load(Ordering::Relaxed), reads, "kept for {keep:?}");
        }
    }

    #[test]
    fn without_a_data_version_nothing_is_kept() {
        let answers = Answers::new(Duration::from_secs(60)).expect("metric");
        let version = answers.version(Err::<u64, _>("no access to system.parts"));
        answers.answer("q".into(), version, &1).expect("JSON");
        assert!(answers.get("q", None).is_none());
        assert!(answers.get("q", Some(&0)).is_none());
    }
}
