//! Readiness as a registry: each dependency or loop has a named check that
//! is either a flag it sets, or a heartbeat that must be recent. One stalled
//! loop makes the whole service not ready.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
enum Check {
    Flag(bool),
    Heartbeat {
        last: Instant,
        stall_after: Duration,
    },
}

#[derive(Clone, Default)]
pub struct Health {
    checks: Arc<Mutex<BTreeMap<String, Check>>>,
}

impl Health {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a yes/no condition, e.g. "clickhouse" reachable.
    pub fn set(&self, name: &str, ok: bool) {
        self.lock().insert(name.into(), Check::Flag(ok));
    }

    /// Records that loop `name` is alive; it is stalled if it does not beat
    /// again within `stall_after`.
    pub fn beat(&self, name: &str, stall_after: Duration) {
        self.lock().insert(
            name.into(),
            Check::Heartbeat {
                last: Instant::now(),
                stall_after,
            },
        );
    }

    /// Every check with whether it passes now.
    pub fn report(&self) -> Vec<(String, bool)> {
        self.lock()
            .iter()
            .map(|(name, check)| {
                let ok = match check {
                    Check::Flag(ok) => *ok,
                    Check::Heartbeat { last, stall_after } => last.elapsed() <= *stall_after,
                };
                (name.clone(), ok)
            })
            .collect()
    }

    /// Ready when at least one check is registered and all pass.
    pub fn is_ready(&self) -> bool {
        let report = self.report();
        !report.is_empty() && report.iter().all(|(_, ok)| *ok)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Check>> {
        // A panic while holding this lock cannot leave the map inconsistent.
        self.checks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stalled_loop_makes_the_service_not_ready() {
        let health = Health::new();
        assert!(!health.is_ready(), "nothing registered yet");
        health.set("clickhouse", true);
        health.beat("consumer", Duration::from_millis(20));
        assert!(health.is_ready());
        std::thread::sleep(Duration::from_millis(40));
        assert!(!health.is_ready());
        health.beat("consumer", Duration::from_secs(10));
        assert!(health.is_ready());
        health.set("clickhouse", false);
        assert!(!health.is_ready());
    }
}
