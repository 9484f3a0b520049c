//! The generator: a seeded random walk through each council's period of
//! contacts, merged in time order, with satisfaction responses, repeat
//! contacts and the faults asked for.
//!
//! Each council draws from its own random stream (keyed by its code), and
//! injection from another, so neither the other councils nor the faults
//! change a council's valid messages.

use crate::inject::{Defect, Injector};
use crate::scenario::{is_self_service, Council, Scenario, Shaping, Shift};
use crate::timeline::{digital_at, local_month, Hour, Timeline};
use crate::truth::{ContactFacts, ResponseFacts, Truth};
use channelshift_contract::{Channel, CustomerType, Instrument, Interaction, Outcome, SurveyMode};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map, Value};
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// One message for one topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// For the satisfaction-responses topic (else contact-events).
    pub satisfaction: bool,
    /// The Kafka key: the message's `event_id` or `response_id`.
    pub key: String,
    pub payload: Vec<u8>,
    pub kind: MessageKind,
}

/// Whether a message counts in the truth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageKind {
    /// A valid, unique event: counted in the truth.
    Valid,
    /// A valid message sent again (same key, same bytes).
    Duplicate,
    /// A message the contract rejects, for the reason of its defect.
    Bad(Defect),
}

/// RFC 3339 in UTC to the second, as the simulator writes timestamps.
pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Produces a scenario's messages, one contact (with its response, bad
/// messages and duplicates) per [`Generator::next_batch`].
///
/// ```no_run
/// use channelshift_simulator::{Generator, Scenario};
/// let mut scenario = Scenario::district();
/// scenario.contacts = Some(5_000);
/// let mut generator = Generator::new(scenario);
/// while let Some(batch) = generator.next_batch() {
///     for message in batch { /* send message.payload keyed by message.key */ }
/// }
/// let truth = &generator.truth; // per council: truth.councils["E07000041"]
/// ```
pub struct Generator {
    streams: Vec<CouncilStream>,
    /// Live mode: picks the council of each contact; `None` in backfill.
    live: Option<LiveChooser>,
    injector: Injector,
    finished: bool,
    pub truth: Truth,
}

struct LiveChooser {
    rng: ChaCha8Rng,
    weights: Vec<(usize, f64)>,
}

impl Generator {
    /// Backfill: each council's contacts over the scenario's period, in time order.
    pub fn new(scenario: Scenario) -> Self {
        Self::build(scenario, false)
    }

    /// Live: an endless, seeded sequence of contacts stamped with the time
    /// they are made, mixed as at the end of the scenario's period.
    pub fn live(scenario: Scenario) -> Self {
        Self::build(scenario, true)
    }

    fn build(scenario: Scenario, live: bool) -> Self {
        let budgets = scenario.council_contacts();
        let first_day = scenario.start();
        let streams: Vec<CouncilStream> = scenario
            .councils
            .iter()
            .zip(budgets)
            .map(|(council, budget)| {
                let timeline = (!live).then(|| Timeline::new(council, first_day, scenario.end));
                CouncilStream::new(
                    council.clone(),
                    scenario.seed,
                    budget,
                    timeline,
                    scenario.shaping.clone(),
                )
            })
            .collect();
        let live = live.then(|| {
            let mut rng = ChaCha8Rng::seed_from_u64(scenario.seed);
            rng.set_stream(u64::MAX - 1);
            LiveChooser {
                rng,
                weights: scenario
                    .councils
                    .iter()
                    .enumerate()
                    .map(|(index, c)| (index, c.contacts_per_year as f64))
                    .collect(),
            }
        });
        let mut truth = Truth::default();
        for stream in &streams {
            truth
                .councils
                .entry(stream.council.code.clone())
                .or_default();
        }
        Self {
            streams,
            live,
            injector: Injector::new(
                scenario.seed,
                scenario.faults.bad_rate,
                scenario.faults.duplicate_rate,
            ),
            finished: false,
            truth,
        }
    }

    /// Valid contacts this backfill will produce, all councils together.
    pub fn planned_contacts(&self) -> u64 {
        self.streams.iter().map(|s| s.budget).sum()
    }

    pub fn is_live(&self) -> bool {
        self.live.is_some()
    }

    /// The next contact's messages; `None` when a backfill is done (live never is).
    pub fn next_batch(&mut self) -> Option<Vec<Message>> {
        self.next_batch_at(Utc::now())
    }

    /// As [`Self::next_batch`], stamping live messages with `now` (backfill ignores it).
    pub fn next_batch_at(&mut self, now: DateTime<Utc>) -> Option<Vec<Message>> {
        let (valid, live_now) = if let Some(chooser) = &mut self.live {
            let index = pick(&mut chooser.rng, &chooser.weights);
            (
                self.streams[index].produce_live(now, &mut self.truth),
                Some(now),
            )
        } else {
            let earliest = self
                .streams
                .iter()
                .enumerate()
                .filter_map(|(index, stream)| stream.next.map(|m| (m.at, index)))
                .min();
            match earliest {
                Some((_, index)) => (self.streams[index].produce_next(&mut self.truth), None),
                None => {
                    if self.finished {
                        return None;
                    }
                    self.finished = true;
                    let rest = self.injector.drain();
                    self.count_injected(&rest);
                    return (!rest.is_empty()).then_some(rest);
                }
            }
        };
        let batch = self.injector.inject(valid, live_now);
        self.count_injected(&batch);
        Some(batch)
    }

    fn count_injected(&mut self, batch: &[Message]) {
        for message in batch {
            match message.kind {
                MessageKind::Valid => {}
                MessageKind::Duplicate => self.truth.injected.duplicate_messages += 1,
                MessageKind::Bad(defect) => self
                    .truth
                    .injected
                    .record_bad(defect.as_str(), message.satisfaction),
            }
        }
    }
}

/// Picks an item by weight.
fn pick<T: Copy>(rng: &mut ChaCha8Rng, items: &[(T, f64)]) -> T {
    let total: f64 = items.iter().map(|(_, w)| w.max(0.0)).sum();
    let mut roll = rng.random::<f64>() * total;
    for (item, weight) in items {
        let weight = weight.max(0.0);
        if roll < weight {
            return *item;
        }
        roll -= weight;
    }
    // Rounding at the top end: the last item with any weight.
    items
        .iter()
        .rev()
        .find(|(_, w)| *w > 0.0)
        .or(items.last())
        .map(|(item, _)| *item)
        .expect("weight tables are validated non-empty")
}

/// Picks from a table whose weights may shift over the period.
fn pick_shifting<T: Copy>(
    rng: &mut ChaCha8Rng,
    items: impl IntoIterator<Item = (T, Shift)>,
    progress: f64,
) -> T {
    let items: Vec<(T, f64)> = items
        .into_iter()
        .map(|(item, weight)| (item, weight.at(progress)))
        .collect();
    pick(rng, &items)
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Subtracts the weighted mean, so offsets move shares around the mix, not the mix itself.
fn centred(values: &[(f64, f64)]) -> Vec<f64> {
    let total: f64 = values.iter().map(|(weight, _)| weight).sum();
    let mean = if total > 0.0 {
        values.iter().map(|(w, v)| w * v).sum::<f64>() / total
    } else {
        0.0
    };
    values.iter().map(|(_, value)| value - mean).collect()
}

struct ServiceModel {
    slug: String,
    digital: f64,
}

struct CustomerModel {
    customer_type: CustomerType,
    digital: f64,
    satisfaction: f64,
}

struct WardModel {
    code: String,
    digital: f64,
    lsoas: Vec<String>,
}

/// A repeat contact waiting for its time.
struct FollowUp {
    /// Unix seconds (backfill) or contact index (live).
    due: i64,
    seq: u64,
    journey_id: String,
    contacts_so_far: u32,
    customer_ref: Option<String>,
    service: usize,
    customer: usize,
    place: Place,
    last_outcome: Outcome,
}

impl PartialEq for FollowUp {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl Eq for FollowUp {}
impl PartialOrd for FollowUp {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for FollowUp {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}

/// Ward and LSOA indexes of a contact's address, when known.
#[derive(Clone, Copy)]
struct Place {
    ward: Option<usize>,
    lsoa: Option<usize>,
}

/// When a contact happens.
#[derive(Clone, Copy)]
struct When {
    at: DateTime<Utc>,
    progress: f64,
    /// The hour of the timeline (backfill); `None` live.
    hour: Option<Hour>,
}

/// The request a contact belongs to.
struct Request {
    service: usize,
    customer: usize,
    place: Place,
    customer_ref: Option<String>,
    journey_id: String,
    contacts_so_far: u32,
    interaction: Interaction,
    repeat: bool,
}

struct CouncilStream {
    council: Council,
    seed: u64,
    rng: ChaCha8Rng,
    budget: u64,
    index: u64,
    timeline: Option<Timeline>,
    /// Where the next backfill contact happens.
    next: Option<crate::timeline::Moment>,
    follow_ups: BinaryHeap<Reverse<FollowUp>>,
    follow_up_seq: u64,
    services: Vec<ServiceModel>,
    /// Service weights by local month, then over a whole year (live).
    service_weights: Vec<Vec<(usize, f64)>>,
    annual_service_weights: Vec<(usize, f64)>,
    customers: Vec<CustomerModel>,
    customer_weights: Vec<(usize, f64)>,
    interactions: Vec<(Interaction, f64)>,
    wards: Vec<WardModel>,
    ward_weights: Vec<(usize, f64)>,
    instruments: Vec<(Instrument, f64)>,
    customer_pool: u64,
    shaping: Shaping,
    /// Contacts sent per (service, local month), for `shaping.service_caps`.
    capped: std::collections::BTreeMap<(String, String), u64>,
}

/// A stable number for a council code: its random stream.
fn stream_of(code: &str) -> u64 {
    code.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl CouncilStream {
    fn new(
        council: Council,
        seed: u64,
        budget: u64,
        timeline: Option<Timeline>,
        shaping: Shaping,
    ) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(stream_of(&council.code));

        let service_list: Vec<(&String, &crate::scenario::ServiceProfile)> =
            council.services.iter().collect();
        let service_digital = centred(
            &service_list
                .iter()
                .map(|(_, p)| (p.weight, p.digital))
                .collect::<Vec<_>>(),
        );
        let services: Vec<ServiceModel> = service_list
            .iter()
            .zip(&service_digital)
            .map(|((slug, _), digital)| ServiceModel {
                slug: (*slug).clone(),
                digital: *digital,
            })
            .collect();
        let service_weights = (0..12)
            .map(|month0| {
                service_list
                    .iter()
                    .enumerate()
                    .map(|(i, (_, p))| (i, p.weight * p.seasonal_factor(month0)))
                    .collect()
            })
            .collect();
        let annual_service_weights = service_list
            .iter()
            .enumerate()
            .map(|(i, (_, p))| {
                let year: f64 = (0..12).map(|m| p.seasonal_factor(m)).sum::<f64>() / 12.0;
                (i, p.weight * year)
            })
            .collect();

        let customer_list: Vec<_> = council.customers.iter().collect();
        let customer_digital = centred(
            &customer_list
                .iter()
                .map(|(_, p)| (p.weight, p.digital))
                .collect::<Vec<_>>(),
        );
        let customers = customer_list
            .iter()
            .zip(&customer_digital)
            .map(|((customer_type, profile), digital)| CustomerModel {
                customer_type: **customer_type,
                digital: *digital,
                satisfaction: profile.satisfaction,
            })
            .collect();
        let customer_weights = customer_list
            .iter()
            .enumerate()
            .map(|(i, (_, p))| (i, p.weight))
            .collect();

        let gradient = council.geography.deprivation_gradient;
        let ward_digital = centred(
            &council
                .wards
                .iter()
                .map(|w| {
                    let position = f64::from(w.imd_decile - 1) / 9.0 - 0.5;
                    (w.population, gradient * position)
                })
                .collect::<Vec<_>>(),
        );
        let wards = council
            .wards
            .iter()
            .zip(&ward_digital)
            .map(|(ward, digital)| WardModel {
                code: ward.code.clone(),
                digital: *digital,
                lsoas: ward.lsoas.clone(),
            })
            .collect();
        let ward_weights = council
            .wards
            .iter()
            .enumerate()
            .map(|(i, w)| (i, w.population))
            .collect();

        let mut stream = Self {
            interactions: council.interactions.iter().map(|(i, w)| (*i, *w)).collect(),
            instruments: council
                .satisfaction
                .instruments
                .iter()
                .map(|(i, w)| (*i, *w))
                .collect(),
            customer_pool: (council.contacts_per_year / 2).max(1_000),
            shaping,
            capped: std::collections::BTreeMap::new(),
            council,
            seed,
            rng,
            budget,
            index: 0,
            timeline,
            next: None,
            follow_ups: BinaryHeap::new(),
            follow_up_seq: 0,
            services,
            service_weights,
            annual_service_weights,
            customers,
            customer_weights,
            wards,
            ward_weights,
        };
        stream.advance();
        stream
    }

    /// Places the next backfill contact, if any are left.
    fn advance(&mut self) {
        self.next = match &self.timeline {
            Some(timeline) if self.index < self.budget => {
                let jitter = self.rng.random::<f64>();
                Some(timeline.moment(self.index, self.budget, jitter))
            }
            _ => None,
        };
    }

    fn produce_next(&mut self, truth: &mut Truth) -> Vec<Message> {
        let Some(moment) = self.next else {
            return Vec::new();
        };
        let when = When {
            at: moment.at,
            progress: moment.progress,
            hour: Some(moment.hour),
        };
        let month = format!("{:04}-{:02}", moment.hour.year, moment.hour.month0 + 1);
        let messages = self.produce(when, &month, truth);
        self.advance();
        messages
    }

    fn produce_live(&mut self, now: DateTime<Utc>, truth: &mut Truth) -> Vec<Message> {
        let when = When {
            at: now,
            progress: 1.0,
            hour: None,
        };
        self.produce(when, &local_month(now), truth)
    }

    fn live(&self) -> bool {
        self.timeline.is_none()
    }

    /// One contact, and perhaps its satisfaction response.
    fn produce(&mut self, when: When, month: &str, truth: &mut Truth) -> Vec<Message> {
        let index = self.index;
        self.index += 1;
        let mode = if self.live() { "live" } else { "sim" };
        let event_id = format!("{mode}-{}-{}-{index:09}", self.council.code, self.seed);
        let due_now = if self.live() {
            index as i64
        } else {
            when.at.timestamp()
        };
        let request = match self.follow_ups.peek() {
            Some(Reverse(next)) if next.due <= due_now => {
                let Reverse(follow_up) = self.follow_ups.pop().expect("peeked");
                self.repeat_request(follow_up)
            }
            _ => self.fresh_request(when, &event_id),
        };
        if self.skipped(when, month, request.service) {
            return Vec::new();
        }

        // Channel: the shift, the address's deprivation, the service and the
        // customer move the digital share; the hour decides between staffed
        // and self-service channels (nobody answers the phone at 3am).
        let service = &self.services[request.service];
        let customer = &self.customers[request.customer];
        let ward_digital = request.place.ward.map_or(0.0, |w| self.wards[w].digital);
        let mut share = self.council.channels.digital_share.at(when.progress)
            + ward_digital
            + service.digital
            + customer.digital;
        if request.repeat {
            share *= self.council.journeys.repeat_digital_factor;
        }
        let digital = self
            .rng
            .random_bool(digital_at(share.clamp(0.01, 0.99), when.hour.as_ref()).clamp(0.0, 1.0));
        let channels = if digital {
            &self.council.channels.self_service
        } else {
            &self.council.channels.mediated
        };
        let channel = pick_shifting(
            &mut self.rng,
            channels.iter().map(|(c, w)| (*c, *w)),
            when.progress,
        );
        let digital = is_self_service(channel);
        let assisted = digital && self.rng.random_bool(self.council.assisted_digital_share);
        let outcome = pick_shifting(
            &mut self.rng,
            self.council
                .outcomes
                .get(channel)
                .iter()
                .map(|(o, w)| (*o, *w)),
            when.progress,
        );
        let (wait_seconds, handling_seconds) = self.timings(channel);

        // Journeys: a failed contact is often followed by another; a
        // completed one resolves the request with the channel's FCR rate.
        let journeys = &self.council.journeys;
        let contacts = request.contacts_so_far + 1;
        let another = contacts < journeys.max_contacts
            && if outcome.is_completed() {
                !self
                    .rng
                    .random_bool(*journeys.first_contact_resolution.get(channel))
            } else {
                self.rng.random_bool(journeys.repeat_after_failure)
            };
        let avoidable = request.repeat
            || request.interaction == Interaction::Chase
            || self.rng.random_bool(journeys.avoidable_share);
        let first_contact_resolved =
            (!request.repeat).then_some(outcome.is_completed() && !another);
        if another {
            let due = if self.live() {
                due_now + self.rng.random_range(1..=200)
            } else {
                let hours = -journeys.repeat_delay_hours * (1.0 - self.rng.random::<f64>()).ln();
                due_now + (hours * 3600.0) as i64 + 60
            };
            self.follow_up_seq += 1;
            self.follow_ups.push(Reverse(FollowUp {
                due,
                seq: self.follow_up_seq,
                journey_id: request.journey_id.clone(),
                contacts_so_far: contacts,
                customer_ref: request.customer_ref.clone(),
                service: request.service,
                customer: request.customer,
                place: request.place,
                last_outcome: outcome,
            }));
        }

        let service_slug = self.services[request.service].slug.clone();
        let customer_type = self.customers[request.customer].customer_type;
        let ward = request.place.ward.map(|w| self.wards[w].code.clone());
        let lsoa = request
            .place
            .ward
            .zip(request.place.lsoa)
            .map(|(w, l)| self.wards[w].lsoas[l].clone());

        let mut contact = Map::new();
        contact.insert("schema_version".into(), json!(1));
        contact.insert("event_id".into(), json!(event_id));
        contact.insert("council".into(), json!(self.council.code));
        contact.insert("occurred_at".into(), json!(rfc3339(when.at)));
        contact.insert("channel".into(), json!(channel.as_str()));
        if assisted {
            contact.insert("assisted".into(), json!(true));
        }
        contact.insert("service".into(), json!(service_slug));
        contact.insert("interaction".into(), json!(request.interaction.as_str()));
        contact.insert("outcome".into(), json!(outcome.as_str()));
        contact.insert("customer_type".into(), json!(customer_type.as_str()));
        if let Some(customer_ref) = &request.customer_ref {
            contact.insert("customer_ref".into(), json!(customer_ref));
        }
        // Chosen by the journey id's hash, not the random stream, so the
        // other messages stay as they are.
        let unlinked = (stream_of(&request.journey_id) % 10_000) as f64 / 10_000.0
            < self.shaping.unlinked_share;
        if !unlinked {
            contact.insert("journey_id".into(), json!(request.journey_id));
        }
        contact.insert("avoidable".into(), json!(avoidable));
        if let Some(resolved) = first_contact_resolved {
            contact.insert("first_contact_resolved".into(), json!(resolved));
        }
        if let Some(ward) = &ward {
            contact.insert("ward".into(), json!(ward));
        }
        if let Some(lsoa) = &lsoa {
            contact.insert("lsoa".into(), json!(lsoa));
        }
        if let Some(wait) = wait_seconds {
            contact.insert("wait_seconds".into(), json!(wait));
        }
        if let Some(handling) = handling_seconds {
            contact.insert("handling_seconds".into(), json!(handling));
        }
        contact.insert("source".into(), json!(source_of(channel)));

        truth.record_contact(&ContactFacts {
            council: &self.council.code,
            service: &service_slug,
            channel: channel.as_str(),
            customer_type: customer_type.as_str(),
            month,
            ward: ward.as_deref(),
            completed_transaction: request.interaction == Interaction::Transaction
                && outcome.is_completed(),
            digital,
            assisted,
            avoidable: Some(avoidable),
            first_contact_resolved,
        });
        let mut messages = vec![Message {
            satisfaction: false,
            key: event_id.clone(),
            payload: Value::Object(contact).to_string().into_bytes(),
            kind: MessageKind::Valid,
        }];

        if let Some(response) = self.response(
            when,
            &event_id,
            channel,
            &service_slug,
            request.customer,
            outcome,
            request.repeat,
            ward.as_deref(),
            lsoa.as_deref(),
            truth,
        ) {
            messages.push(response);
        }
        messages
    }

    /// Whether `shaping` cuts this contact out: a quiet day, or its
    /// service's cap for the month reached (else the contact is counted).
    fn skipped(&mut self, when: When, month: &str, service: usize) -> bool {
        let day = when
            .at
            .with_timezone(&chrono_tz::Europe::London)
            .date_naive();
        if let Some((from, to)) = self.shaping.quiet {
            if from <= day && day <= to {
                return true;
            }
        }
        let slug = &self.services[service].slug;
        if let Some(&cap) = self.shaping.service_caps.get(slug) {
            let sent = self
                .capped
                .entry((slug.clone(), month.to_string()))
                .or_default();
            if *sent >= cap {
                return true;
            }
            *sent += 1;
        }
        false
    }

    fn fresh_request(&mut self, when: When, event_id: &str) -> Request {
        let geography = &self.council.geography;
        let ward = self
            .rng
            .random_bool(geography.ward_known_share)
            .then(|| pick(&mut self.rng, &self.ward_weights));
        let lsoa = match ward {
            Some(w) if !self.wards[w].lsoas.is_empty() => self
                .rng
                .random_bool(geography.lsoa_known_share)
                .then(|| self.rng.random_range(0..self.wards[w].lsoas.len())),
            _ => None,
        };
        let weights = match when.hour {
            Some(hour) => &self.service_weights[hour.month0],
            None => &self.annual_service_weights,
        };
        let service = pick(&mut self.rng, weights);
        let customer = pick(&mut self.rng, &self.customer_weights);
        let interaction = pick(&mut self.rng, &self.interactions);
        let customer_ref = (self.customers[customer].customer_type != CustomerType::Unknown)
            .then(|| format!("CUST{:07}", self.rng.random_range(0..self.customer_pool)));
        Request {
            service,
            customer,
            place: Place { ward, lsoa },
            customer_ref,
            journey_id: format!("{event_id}-j"),
            contacts_so_far: 0,
            interaction,
            repeat: false,
        }
    }

    fn repeat_request(&mut self, follow_up: FollowUp) -> Request {
        // After a failed or abandoned attempt people try the transaction
        // again; otherwise they chase it.
        let interaction = match follow_up.last_outcome {
            Outcome::Abandoned | Outcome::Failed => Interaction::Transaction,
            _ => Interaction::Chase,
        };
        Request {
            service: follow_up.service,
            customer: follow_up.customer,
            place: follow_up.place,
            customer_ref: follow_up.customer_ref,
            journey_id: follow_up.journey_id,
            contacts_so_far: follow_up.contacts_so_far,
            interaction,
            repeat: true,
        }
    }

    fn timings(&mut self, channel: Channel) -> (Option<u32>, Option<u32>) {
        let Some(timing) = self.council.timings.get(&channel).copied() else {
            return (None, None);
        };
        let mut draw = |median: Option<u32>| {
            median.map(|median| {
                let value = f64::from(median) * (timing.spread * normal(&mut self.rng)).exp();
                value.round().clamp(0.0, 86_400.0) as u32
            })
        };
        let wait = draw(timing.wait);
        let handling = draw(timing.handling);
        (wait, handling)
    }

    #[allow(clippy::too_many_arguments)]
    fn response(
        &mut self,
        when: When,
        event_id: &str,
        channel: Channel,
        service: &str,
        customer: usize,
        outcome: Outcome,
        repeat: bool,
        ward: Option<&str>,
        lsoa: Option<&str>,
        truth: &mut Truth,
    ) -> Option<Message> {
        let satisfaction = &self.council.satisfaction;
        let mode = *satisfaction.survey_modes.get(&channel)?;
        let rate = satisfaction
            .response_rates
            .get(&mode)
            .copied()
            .unwrap_or(0.0);
        if !self.rng.random_bool(rate) {
            return None;
        }
        let instrument = pick(&mut self.rng, &self.instruments);
        let customer = &self.customers[customer];
        let mut chance =
            satisfaction.satisfied.get(channel).at(when.progress) + customer.satisfaction;
        if !outcome.is_completed() {
            chance -= satisfaction.failure_penalty;
        }
        if repeat {
            chance -= satisfaction.repeat_penalty;
        }
        let satisfied = self.rng.random_bool(chance.clamp(0.02, 0.98));
        let score = score(&mut self.rng, instrument, satisfied);
        let delay = response_delay(&mut self.rng, mode);
        let comment = self
            .rng
            .random_bool(satisfaction.comment_share)
            .then(|| comment(&mut self.rng, satisfied));
        let responded_at = if self.live() {
            when.at
        } else {
            let at = when.at + delay;
            // A response after the period would be a message from the future.
            if self.timeline.as_ref().is_some_and(|t| at >= t.end()) {
                return None;
            }
            at
        };

        let response_id = format!("{event_id}-r");
        let mut response = Map::new();
        response.insert("schema_version".into(), json!(1));
        response.insert("response_id".into(), json!(response_id));
        response.insert("council".into(), json!(self.council.code));
        response.insert("responded_at".into(), json!(rfc3339(responded_at)));
        response.insert("contact_event_id".into(), json!(event_id));
        response.insert("channel".into(), json!(channel.as_str()));
        response.insert("service".into(), json!(service));
        response.insert(
            "customer_type".into(),
            json!(customer.customer_type.as_str()),
        );
        response.insert("instrument".into(), json!(instrument.as_str()));
        response.insert("score".into(), json!(score));
        response.insert("survey_mode".into(), json!(mode.as_str()));
        if let Some(comment) = comment {
            response.insert("comment".into(), json!(comment));
        }
        if let Some(ward) = ward {
            response.insert("ward".into(), json!(ward));
        }
        if let Some(lsoa) = lsoa {
            response.insert("lsoa".into(), json!(lsoa));
        }
        truth.record_response(&ResponseFacts {
            council: &self.council.code,
            service,
            channel: channel.as_str(),
            customer_type: customer.customer_type.as_str(),
            instrument: instrument.as_str(),
            score,
        });
        Some(Message {
            satisfaction: true,
            key: response_id,
            payload: Value::Object(response).to_string().into_bytes(),
            kind: MessageKind::Valid,
        })
    }
}

/// The system that would have emitted a contact on this channel.
fn source_of(channel: Channel) -> &'static str {
    match channel {
        Channel::Web | Channel::App | Channel::Kiosk => "sim-forms",
        Channel::Phone | Channel::Ivr => "sim-telephony",
        Channel::Webchat => "sim-webchat",
        _ => "sim-crm",
    }
}

/// A score on the instrument's scale for a satisfied or dissatisfied respondent.
fn score(rng: &mut ChaCha8Rng, instrument: Instrument, satisfied: bool) -> u8 {
    let table: &[(u8, f64)] = match (instrument, satisfied) {
        (Instrument::Csat5, true) => &[(5, 0.55), (4, 0.45)],
        (Instrument::Csat5, false) => &[(3, 0.5), (2, 0.3), (1, 0.2)],
        (Instrument::Govmetric3, true) => &[(3, 1.0)],
        (Instrument::Govmetric3, false) => &[(2, 0.6), (1, 0.4)],
        (Instrument::Nps11, true) => &[(10, 0.35), (9, 0.35), (8, 0.2), (7, 0.1)],
        (Instrument::Nps11, false) => &[
            (6, 0.28),
            (5, 0.24),
            (4, 0.12),
            (3, 0.1),
            (2, 0.08),
            (1, 0.06),
            (0, 0.06),
            (7, 0.06),
        ],
        (Instrument::Ces7, true) => &[(7, 0.4), (6, 0.35), (5, 0.25)],
        (Instrument::Ces7, false) => &[(4, 0.35), (3, 0.3), (2, 0.2), (1, 0.15)],
    };
    pick(rng, table)
}

/// How long after the contact a survey is answered, by survey mode.
fn response_delay(rng: &mut ChaCha8Rng, mode: SurveyMode) -> Duration {
    let seconds = match mode {
        SurveyMode::Web | SurveyMode::Kiosk | SurveyMode::Agent => rng.random_range(10..600),
        SurveyMode::Ivr => rng.random_range(30..300),
        SurveyMode::Sms => rng.random_range(300..14_400),
        SurveyMode::Email => rng.random_range(3_600..259_200),
        SurveyMode::Paper => rng.random_range(172_800..1_209_600),
    };
    Duration::seconds(seconds)
}

const SATISFIED_COMMENTS: &[&str] = &[
    "Quick and easy, thank you.",
    "Found what I needed straight away.",
    "The adviser was really helpful.",
    "Much easier than phoning.",
    "Sorted first time.",
    "Clear instructions and a confirmation email.",
];
const DISSATISFIED_COMMENTS: &[&str] = &[
    "The form kept timing out.",
    "I was on hold for ages.",
    "Had to ring back twice.",
    "Couldn't find the right page.",
    "Nobody called me back as promised.",
    "The website would not accept my reference number.",
];
/// Comments with personal data, which ingest must scrub before storage.
const PERSONAL_COMMENTS: &[&str] = &[
    "Please call me back on 07700 900123.",
    "Email me at resident@example.com about this.",
    "The bin at EX1 1AA was missed again.",
];

fn comment(rng: &mut ChaCha8Rng, satisfied: bool) -> String {
    let list = if rng.random_bool(0.05) {
        PERSONAL_COMMENTS
    } else if satisfied {
        SATISFIED_COMMENTS
    } else {
        DISSATISFIED_COMMENTS
    };
    list[rng.random_range(0..list.len())].to_string()
}
