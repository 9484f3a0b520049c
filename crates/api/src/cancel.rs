//! A request's ClickHouse queries are stopped when the request is dropped
//! before it answers (the server's `request_timeout_ms`, or a client that
//! went away). From 21.1 ClickHouse cancels a read-only HTTP query whose
//! client hangs up (`cancel_http_readonly_queries_on_client_close`, which
//! the store sets); 18.16 runs it on to its `max_execution_time`. So each
//! request's queries carry ids with a prefix of their own, and dropping the
//! request unanswered sends `KILL QUERY` for that prefix, on every server.

use channelshift_store::Store;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The start of every API query id.
pub const QUERY_ID_PREFIX: &str = "channelshift-api:";

/// A request's store, whose queries the request stops if it is dropped
/// before [`RequestQueries::answered`].
pub struct RequestQueries {
    pub store: Store,
    untagged: Store,
    prefix: String,
    answered: bool,
}

impl RequestQueries {
    pub fn new(store: &Store) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        static PROCESS: OnceLock<String> = OnceLock::new();
        let process = PROCESS.get_or_init(|| {
            let started = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |since| since.as_nanos());
            format!("{}-{started}", std::process::id())
        });
        let prefix = format!(
            "{QUERY_ID_PREFIX}{process}:{}:",
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        Self {
            store: store.tagged(prefix.clone()),
            untagged: store.clone(),
            prefix,
            answered: false,
        }
    }

    /// What the ids of the request's queries start with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The request has its answer: nothing of it is left running.
    pub fn answered(mut self) {
        self.answered = true;
    }
}

impl Drop for RequestQueries {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let store = self.untagged.clone();
        let prefix = std::mem::take(&mut self.prefix);
        runtime.spawn(async move {
            match store.kill_queries_starting(&prefix).await {
                Ok(()) => tracing::info!(
                    prefix,
                    "request dropped before its answer: its queries stopped"
                ),
                Err(error) => {
                    tracing::warn!(%error, prefix, "could not stop a dropped request's queries")
                }
            }
        });
    }
}
