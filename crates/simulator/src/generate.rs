//! The generator: a seeded random walk through a council's year of contacts.

use crate::truth::Truth;
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use rand::distr::weighted::WeightedIndex;
use rand::distr::Distribution;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

/// What to simulate. Scenario files arrive with the simulator issue; these
/// are the built-in defaults, shaped on the councils in `shared/seeds/`.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub council: String,
    pub seed: u64,
    /// Contact events to produce, spread over the period.
    pub contacts: u64,
    /// The last local day simulated (exclusive end is the next midnight UTC).
    pub end: NaiveDate,
    pub months: u32,
    /// Share of transactions done digitally at the start and at the end.
    pub digital_share_start: f64,
    pub digital_share_end: f64,
    /// Share of contacts that get a satisfaction response.
    pub response_rate: f64,
}

impl Scenario {
    pub fn start(&self) -> NaiveDate {
        self.end
            .checked_sub_months(chrono::Months::new(self.months))
            .unwrap_or(self.end)
    }
}

/// One message for one topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub satisfaction: bool,
    pub key: String,
    pub payload: Vec<u8>,
}

const SERVICES: &[(&str, u32)] = &[
    ("council_tax", 30),
    ("waste", 25),
    ("benefits", 12),
    ("parking", 8),
    ("planning", 6),
    ("housing", 6),
    ("highways", 5),
    ("licensing", 3),
    ("registrars", 3),
    ("environmental_health", 2),
];
const DIGITAL: &[(&str, u32)] = &[("web", 80), ("app", 15), ("kiosk", 5)];
const OFFLINE: &[(&str, u32)] = &[
    ("phone", 60),
    ("face_to_face", 18),
    ("email", 10),
    ("webchat", 6),
    ("post", 4),
    ("other", 2),
];
const CUSTOMERS: &[(&str, u32)] = &[("resident", 84), ("business", 12), ("unknown", 4)];
const INTERACTIONS: &[(&str, u32)] = &[
    ("transaction", 72),
    ("information", 16),
    ("chase", 9),
    ("complaint", 3),
];
/// Ten wards, the later ones more deprived: less digital there.
const WARDS: u32 = 10;

pub struct Generator {
    scenario: Scenario,
    rng: ChaCha8Rng,
    produced: u64,
    start: DateTime<Utc>,
    seconds: i64,
    services: WeightedIndex<u32>,
    digital: WeightedIndex<u32>,
    offline: WeightedIndex<u32>,
    customers: WeightedIndex<u32>,
    interactions: WeightedIndex<u32>,
    pub truth: Truth,
}

fn weights(table: &[(&str, u32)]) -> WeightedIndex<u32> {
    WeightedIndex::new(table.iter().map(|(_, weight)| *weight))
        .expect("weight tables are non-empty with positive weights")
}

impl Generator {
    pub fn new(scenario: Scenario) -> Self {
        let start = Utc.from_utc_datetime(
            &scenario
                .start()
                .and_hms_opt(0, 0, 0)
                .expect("midnight exists"),
        );
        let end = Utc.from_utc_datetime(
            &(scenario.end + Duration::days(1))
                .and_hms_opt(0, 0, 0)
                .expect("midnight exists"),
        );
        Self {
            rng: ChaCha8Rng::seed_from_u64(scenario.seed),
            produced: 0,
            start,
            seconds: (end - start).num_seconds().max(1),
            services: weights(SERVICES),
            digital: weights(DIGITAL),
            offline: weights(OFFLINE),
            customers: weights(CUSTOMERS),
            interactions: weights(INTERACTIONS),
            truth: Truth::default(),
            scenario,
        }
    }

    /// The next contact, and sometimes its satisfaction response; `None` when done.
    pub fn next_batch(&mut self) -> Option<Vec<Message>> {
        if self.produced >= self.scenario.contacts {
            return None;
        }
        let index = self.produced;
        self.produced += 1;
        // Evenly spread through the period, with jitter and office-hours weighting.
        let progress = (index as f64 + self.rng.random::<f64>()) / self.scenario.contacts as f64;
        let mut at = self.start + Duration::seconds((progress * self.seconds as f64) as i64);
        if self.rng.random_bool(0.7) {
            let hour = self.rng.random_range(9..17);
            at = at
                .date_naive()
                .and_hms_opt(
                    hour,
                    self.rng.random_range(0..60),
                    self.rng.random_range(0..60),
                )
                .map_or(at, |naive| Utc.from_utc_datetime(&naive));
        }
        let ward = self.rng.random_range(0..WARDS);
        let share = self.scenario.digital_share_start
            + (self.scenario.digital_share_end - self.scenario.digital_share_start) * progress
            - 0.02 * f64::from(ward);
        let digital = self.rng.random_bool(share.clamp(0.0, 1.0));
        let channel = if digital {
            DIGITAL[self.digital.sample(&mut self.rng)].0
        } else {
            OFFLINE[self.offline.sample(&mut self.rng)].0
        };
        let service = SERVICES[self.services.sample(&mut self.rng)].0;
        let customer_type = CUSTOMERS[self.customers.sample(&mut self.rng)].0;
        let interaction = INTERACTIONS[self.interactions.sample(&mut self.rng)].0;
        let outcome = self.outcome(digital);
        let assisted = digital && self.rng.random_bool(0.08);
        let event_id = format!(
            "sim-{}-{}-{index:09}",
            self.scenario.council, self.scenario.seed
        );

        let mut contact = json!({
            "schema_version": 1,
            "event_id": event_id,
            "council": self.scenario.council,
            "occurred_at": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "channel": channel,
            "service": service,
            "interaction": interaction,
            "outcome": outcome,
            "customer_type": customer_type,
            "customer_ref": format!("CUST{:07}", self.rng.random_range(0..400_000)),
            "ward": format!("E05{:06}", 10_000 + ward),
            "source": "channelshift-sim",
        });
        if assisted {
            contact["assisted"] = json!(true);
        }
        if !digital {
            contact["handling_seconds"] = json!(self.rng.random_range(60..900));
        }
        self.count(channel, interaction, outcome, digital);
        let mut messages = vec![Message {
            satisfaction: false,
            key: event_id.clone(),
            payload: contact.to_string().into_bytes(),
        }];

        if self.rng.random_bool(self.scenario.response_rate) {
            let score = self.csat5(channel, customer_type);
            let response = json!({
                "schema_version": 1,
                "response_id": format!("{event_id}-r"),
                "council": self.scenario.council,
                "responded_at": (at + Duration::minutes(5)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "contact_event_id": event_id,
                "channel": channel,
                "service": service,
                "customer_type": customer_type,
                "instrument": "csat5",
                "score": score,
                "survey_mode": if digital { "web" } else { "sms" },
            });
            self.truth.satisfaction_responses += 1;
            messages.push(Message {
                satisfaction: true,
                key: event_id,
                payload: response.to_string().into_bytes(),
            });
        }
        Some(messages)
    }

    fn outcome(&mut self, digital: bool) -> &'static str {
        let roll = self.rng.random::<f64>();
        let (completed, ineligible, abandoned, failed) = if digital {
            (0.82, 0.04, 0.09, 0.03)
        } else {
            (0.86, 0.04, 0.04, 0.01)
        };
        if roll < completed {
            "completed"
        } else if roll < completed + ineligible {
            "ineligible"
        } else if roll < completed + ineligible + abandoned {
            "abandoned"
        } else if roll < completed + ineligible + abandoned + failed {
            "failed"
        } else {
            "transferred"
        }
    }

    /// Phone and face-to-face are rated highly; digital lower; businesses a little lower.
    fn csat5(&mut self, channel: &str, customer_type: &str) -> u8 {
        let satisfied = match channel {
            "face_to_face" => 0.88,
            "phone" => 0.80,
            "web" | "app" | "kiosk" => 0.66,
            _ => 0.72,
        } - if customer_type == "business" {
            0.06
        } else {
            0.0
        };
        if self.rng.random_bool(satisfied) {
            self.rng.random_range(4..=5)
        } else {
            self.rng.random_range(1..=3)
        }
    }

    fn count(&mut self, channel: &str, interaction: &str, outcome: &str, digital: bool) {
        self.truth.contact_events += 1;
        *self
            .truth
            .contacts_by_channel
            .entry(channel.to_string())
            .or_default() += 1;
        if interaction == "transaction" && matches!(outcome, "completed" | "ineligible") {
            self.truth.completed_transactions += 1;
            if digital {
                self.truth.digital_completed_transactions += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(seed: u64) -> Scenario {
        Scenario {
            council: "E07000041".into(),
            seed,
            contacts: 2_000,
            end: NaiveDate::from_ymd_opt(2025, 10, 31).expect("valid date"),
            months: 13,
            digital_share_start: 0.40,
            digital_share_end: 0.55,
            response_rate: 0.1,
        }
    }

    fn all(seed: u64) -> (Vec<Message>, Truth) {
        let mut generator = Generator::new(scenario(seed));
        let mut messages = Vec::new();
        while let Some(batch) = generator.next_batch() {
            messages.extend(batch);
        }
        (messages, generator.truth)
    }

    #[test]
    fn same_seed_gives_byte_identical_messages() {
        assert_eq!(all(7).0, all(7).0);
        assert_ne!(all(7).0, all(8).0);
    }

    #[test]
    fn take_up_lands_between_the_start_and_end_shares() {
        let (_, truth) = all(1);
        assert_eq!(truth.contact_events, 2_000);
        let take_up = truth.digital_take_up().expect("some transactions");
        assert!((30.0..55.0).contains(&take_up), "take-up {take_up}");
    }
}
