//! What the simulator produced, counted as the KPI definitions count it, so
//! a test or the demo can compare the pipeline's figures with the truth.

use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Truth {
    pub contact_events: u64,
    pub satisfaction_responses: u64,
    /// Contacts by channel.
    pub contacts_by_channel: BTreeMap<String, u64>,
    /// Completed transactions (completed or ineligible), all channels.
    pub completed_transactions: u64,
    /// Of those, through web, app or kiosk (assisted included).
    pub digital_completed_transactions: u64,
}

impl Truth {
    /// Digital take-up, %, under the default definition.
    pub fn digital_take_up(&self) -> Option<f64> {
        (self.completed_transactions > 0).then(|| {
            100.0 * self.digital_completed_transactions as f64 / self.completed_transactions as f64
        })
    }
}
