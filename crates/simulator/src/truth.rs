//! What the simulator produced, counted as the KPI definitions count it, so
//! a test or the demo can compare the pipeline's figures with the truth.
//! Only valid, unique messages are counted here; injected bad messages and
//! duplicates are counted apart, in [`Injected`].

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// All councils together, then each council (`councils`), each council's
/// services, local months (`YYYY-MM`, Europe/London) and wards.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Truth {
    pub contact_events: u64,
    pub satisfaction_responses: u64,
    /// Contacts by channel.
    pub contacts_by_channel: BTreeMap<String, u64>,
    /// Completed transactions (completed or ineligible), all channels.
    pub completed_transactions: u64,
    /// Of those, through web, app or kiosk (assisted included).
    pub digital_completed_transactions: u64,
    /// Of the digital ones, assisted digital (for the 2014 definition).
    pub assisted_digital_completed_transactions: u64,
    pub contacts_by_service: BTreeMap<String, u64>,
    pub councils: BTreeMap<String, CouncilTruth>,
    /// Messages sent that are not valid unique events.
    pub injected: Injected,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct CouncilTruth {
    pub contact_events: u64,
    pub satisfaction_responses: u64,
    pub contacts_by_channel: BTreeMap<String, u64>,
    pub contacts_by_service: BTreeMap<String, u64>,
    pub contacts_by_customer_type: BTreeMap<String, u64>,
    pub completed_transactions: u64,
    pub digital_completed_transactions: u64,
    pub assisted_digital_completed_transactions: u64,
    /// Contacts flagged avoidable, of `avoidable_flagged` carrying the flag.
    pub avoidable_contacts: u64,
    pub avoidable_flagged: u64,
    /// First contacts of a journey (they carry `first_contact_resolved`).
    pub journeys: u64,
    pub journeys_resolved_first: u64,
    pub services: BTreeMap<String, ServiceTruth>,
    /// By local month, `YYYY-MM`.
    pub months: BTreeMap<String, SliceTruth>,
    /// By ward code (contacts without a ward are left out).
    pub wards: BTreeMap<String, SliceTruth>,
    /// By instrument.
    pub satisfaction: BTreeMap<String, SatisfactionTruth>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ServiceTruth {
    pub contact_events: u64,
    pub satisfaction_responses: u64,
    pub contacts_by_channel: BTreeMap<String, u64>,
    pub completed_transactions: u64,
    pub digital_completed_transactions: u64,
}

/// One month's or one ward's contacts.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SliceTruth {
    pub contact_events: u64,
    pub completed_transactions: u64,
    pub digital_completed_transactions: u64,
    pub contacts_by_service: BTreeMap<String, u64>,
}

/// One instrument's responses: score histograms by channel and customer type.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SatisfactionTruth {
    pub responses: u64,
    pub by_channel: BTreeMap<String, Scores>,
    pub by_customer_type: BTreeMap<String, Scores>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Scores {
    pub responses: u64,
    /// Responses by score.
    pub scores: BTreeMap<u8, u64>,
}

impl Scores {
    /// Share of responses, %, whose score satisfies `favourable` (for
    /// `csat5`, scores 4–5), or `None` without responses.
    pub fn share(&self, favourable: impl Fn(u8) -> bool) -> Option<f64> {
        let hits: u64 = self
            .scores
            .iter()
            .filter(|(score, _)| favourable(**score))
            .map(|(_, n)| n)
            .sum();
        percentage(hits, self.responses)
    }
}

/// Messages that are not valid unique events: never in the counts above.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Injected {
    pub bad_messages: u64,
    /// By kind of defect (see `inject::Defect`).
    pub bad_by_kind: BTreeMap<String, u64>,
    pub bad_contact_messages: u64,
    pub bad_satisfaction_messages: u64,
    /// Valid messages sent a second time with the same id and bytes.
    pub duplicate_messages: u64,
}

/// What the generator knows about one valid contact, for counting.
pub(crate) struct ContactFacts<'a> {
    pub council: &'a str,
    pub service: &'a str,
    pub channel: &'a str,
    pub customer_type: &'a str,
    /// `YYYY-MM`, local.
    pub month: &'a str,
    pub ward: Option<&'a str>,
    pub completed_transaction: bool,
    pub digital: bool,
    pub assisted: bool,
    pub avoidable: Option<bool>,
    pub first_contact_resolved: Option<bool>,
}

/// What the generator knows about one valid satisfaction response.
pub(crate) struct ResponseFacts<'a> {
    pub council: &'a str,
    pub service: &'a str,
    pub channel: &'a str,
    pub customer_type: &'a str,
    pub instrument: &'a str,
    pub score: u8,
}

fn percentage(numerator: u64, denominator: u64) -> Option<f64> {
    (denominator > 0).then(|| 100.0 * numerator as f64 / denominator as f64)
}

fn bump(map: &mut BTreeMap<String, u64>, key: &str) {
    *map.entry(key.to_string()).or_default() += 1;
}

impl Truth {
    /// Digital take-up, %, under the default definition.
    pub fn digital_take_up(&self) -> Option<f64> {
        percentage(
            self.digital_completed_transactions,
            self.completed_transactions,
        )
    }

    /// The truth of one council.
    pub fn council(&self, code: &str) -> Option<&CouncilTruth> {
        self.councils.get(code)
    }

    /// The truth without the month, ward and satisfaction breakdowns: what
    /// the command line prints (`--truth FILE` writes everything).
    pub fn summary(&self) -> Self {
        let mut summary = self.clone();
        for council in summary.councils.values_mut() {
            council.months.clear();
            council.wards.clear();
            council.satisfaction.clear();
        }
        summary
    }

    pub(crate) fn record_contact(&mut self, facts: &ContactFacts<'_>) {
        self.contact_events += 1;
        bump(&mut self.contacts_by_channel, facts.channel);
        bump(&mut self.contacts_by_service, facts.service);
        if facts.completed_transaction {
            self.completed_transactions += 1;
            if facts.digital {
                self.digital_completed_transactions += 1;
                if facts.assisted {
                    self.assisted_digital_completed_transactions += 1;
                }
            }
        }
        let council = self.councils.entry(facts.council.to_string()).or_default();
        council.record_contact(facts);
    }

    pub(crate) fn record_response(&mut self, facts: &ResponseFacts<'_>) {
        self.satisfaction_responses += 1;
        let council = self.councils.entry(facts.council.to_string()).or_default();
        council.satisfaction_responses += 1;
        council
            .services
            .entry(facts.service.to_string())
            .or_default()
            .satisfaction_responses += 1;
        let instrument = council
            .satisfaction
            .entry(facts.instrument.to_string())
            .or_default();
        instrument.responses += 1;
        for scores in [
            instrument
                .by_channel
                .entry(facts.channel.to_string())
                .or_default(),
            instrument
                .by_customer_type
                .entry(facts.customer_type.to_string())
                .or_default(),
        ] {
            scores.responses += 1;
            *scores.scores.entry(facts.score).or_default() += 1;
        }
    }
}

impl CouncilTruth {
    pub fn digital_take_up(&self) -> Option<f64> {
        percentage(
            self.digital_completed_transactions,
            self.completed_transactions,
        )
    }

    /// Share of contacts, %, from this customer type.
    pub fn customer_share(&self, customer_type: &str) -> Option<f64> {
        percentage(
            self.contacts_by_customer_type
                .get(customer_type)
                .copied()
                .unwrap_or(0),
            self.contact_events,
        )
    }

    /// First-contact resolution, %: journeys resolved at their first contact ÷ journeys.
    pub fn first_contact_resolution(&self) -> Option<f64> {
        percentage(self.journeys_resolved_first, self.journeys)
    }

    /// Avoidable contact, %: avoidable ÷ contacts where flagged.
    pub fn avoidable_contact(&self) -> Option<f64> {
        percentage(self.avoidable_contacts, self.avoidable_flagged)
    }

    fn record_contact(&mut self, facts: &ContactFacts<'_>) {
        self.contact_events += 1;
        bump(&mut self.contacts_by_channel, facts.channel);
        bump(&mut self.contacts_by_service, facts.service);
        bump(&mut self.contacts_by_customer_type, facts.customer_type);
        if let Some(avoidable) = facts.avoidable {
            self.avoidable_flagged += 1;
            self.avoidable_contacts += u64::from(avoidable);
        }
        if let Some(resolved) = facts.first_contact_resolved {
            self.journeys += 1;
            self.journeys_resolved_first += u64::from(resolved);
        }
        let completed = facts.completed_transaction;
        let digital = completed && facts.digital;
        if completed {
            self.completed_transactions += 1;
            if digital {
                self.digital_completed_transactions += 1;
                if facts.assisted {
                    self.assisted_digital_completed_transactions += 1;
                }
            }
        }
        let service = self.services.entry(facts.service.to_string()).or_default();
        service.contact_events += 1;
        bump(&mut service.contacts_by_channel, facts.channel);
        service.completed_transactions += u64::from(completed);
        service.digital_completed_transactions += u64::from(digital);

        let slices = [
            Some(self.months.entry(facts.month.to_string()).or_default()),
            facts
                .ward
                .map(|ward| self.wards.entry(ward.to_string()).or_default()),
        ];
        for slice in slices.into_iter().flatten() {
            slice.contact_events += 1;
            slice.completed_transactions += u64::from(completed);
            slice.digital_completed_transactions += u64::from(digital);
            bump(&mut slice.contacts_by_service, facts.service);
        }
    }
}

impl SliceTruth {
    pub fn digital_take_up(&self) -> Option<f64> {
        percentage(
            self.digital_completed_transactions,
            self.completed_transactions,
        )
    }
}

impl Injected {
    pub(crate) fn record_bad(&mut self, kind: &str, satisfaction: bool) {
        self.bad_messages += 1;
        bump(&mut self.bad_by_kind, kind);
        if satisfaction {
            self.bad_satisfaction_messages += 1;
        } else {
            self.bad_contact_messages += 1;
        }
    }
}
