//! The simulator's promises, checked on generated data without a broker:
//! every message follows the contract, runs repeat byte for byte, the
//! scenario's shapes show up, and faults never touch the truth.

use crate::generate::rfc3339;
use crate::timeline::local_midnight;
use crate::{Defect, Generator, Message, MessageKind, Scenario, Truth};
use channelshift_contract::{
    Channel, ContactEvent, CustomerType, Instrument, Interaction, SatisfactionResponse,
};
use chrono::{DateTime, Datelike, Duration, NaiveDate, Timelike, Utc};
use chrono_tz::Europe::London;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::OnceLock;

const END: (i32, u32, u32) = (2025, 10, 31);

fn end() -> NaiveDate {
    NaiveDate::from_ymd_opt(END.0, END.1, END.2).expect("a date")
}

/// The instant the period ends: local midnight after `end`.
fn period_end() -> DateTime<Utc> {
    local_midnight(end() + Duration::days(1))
}

fn scenario(base: Scenario, seed: u64, contacts: u64) -> Scenario {
    Scenario {
        seed,
        contacts: Some(contacts),
        end: end(),
        months: 13,
        ..base
    }
}

fn district(seed: u64, contacts: u64) -> Scenario {
    scenario(Scenario::district(), seed, contacts)
}

fn scenario_file(name: &str) -> Scenario {
    Scenario::from_file(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scenarios")
            .join(name),
    )
    .expect("a valid scenario file")
}

fn all(scenario: Scenario) -> (Vec<Message>, Truth) {
    let mut generator = Generator::new(scenario);
    let mut messages = Vec::new();
    while let Some(batch) = generator.next_batch() {
        messages.extend(batch);
    }
    (messages, generator.truth)
}

/// A parsed district run, shared by the tests that look at its shapes.
struct Run {
    contacts: Vec<ContactEvent>,
    responses: Vec<SatisfactionResponse>,
    truth: Truth,
}

fn parse_all(
    messages: &[Message],
    now: DateTime<Utc>,
) -> (Vec<ContactEvent>, Vec<SatisfactionResponse>) {
    let mut contacts = Vec::new();
    let mut responses = Vec::new();
    for message in messages {
        let text = String::from_utf8_lossy(&message.payload);
        if message.satisfaction {
            let response = SatisfactionResponse::from_json(&message.payload, now)
                .unwrap_or_else(|rejection| panic!("{rejection}: {text}"));
            assert_eq!(response.response_id.as_str(), message.key);
            responses.push(response);
        } else {
            let contact = ContactEvent::from_json(&message.payload, now)
                .unwrap_or_else(|rejection| panic!("{rejection}: {text}"));
            assert_eq!(contact.event_id.as_str(), message.key);
            contacts.push(contact);
        }
    }
    (contacts, responses)
}

fn district_run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let (messages, truth) = all(district(1, 80_000));
        let (contacts, responses) = parse_all(&messages, period_end());
        Run {
            contacts,
            responses,
            truth,
        }
    })
}

fn local(at: DateTime<Utc>) -> DateTime<chrono_tz::Tz> {
    at.with_timezone(&London)
}

fn is_completed_transaction(contact: &ContactEvent) -> bool {
    contact.interaction == Interaction::Transaction && contact.outcome.is_completed()
}

fn is_self_service(channel: Channel) -> bool {
    matches!(channel, Channel::Web | Channel::App | Channel::Kiosk)
}

/// Digital take-up, %, of some contacts.
fn take_up<'a>(contacts: impl IntoIterator<Item = &'a ContactEvent>) -> f64 {
    let (mut digital, mut all) = (0u64, 0u64);
    for contact in contacts {
        if is_completed_transaction(contact) {
            all += 1;
            digital += u64::from(is_self_service(contact.channel));
        }
    }
    100.0 * digital as f64 / all.max(1) as f64
}

fn csat_satisfied<'a>(responses: impl IntoIterator<Item = &'a SatisfactionResponse>) -> f64 {
    let (mut satisfied, mut all) = (0u64, 0u64);
    for response in responses {
        if response.score.instrument() == Instrument::Csat5 {
            all += 1;
            satisfied += u64::from(response.score.value() >= 4);
        }
    }
    100.0 * satisfied as f64 / all.max(1) as f64
}

#[test]
fn every_generated_message_parses_with_the_contract() {
    // The district run parses in `district_run`; these are the other files.
    district_run();
    for name in ["unitary.toml", "region.toml"] {
        let (messages, truth) = all(scenario(scenario_file(name), 3, 20_000));
        let (contacts, responses) = parse_all(&messages, period_end());
        assert_eq!(contacts.len() as u64, truth.contact_events);
        assert_eq!(responses.len() as u64, truth.satisfaction_responses);
    }
}

#[test]
fn every_contact_lies_inside_the_period_and_every_response_after_its_contact() {
    let run = district_run();
    let start = local_midnight(district(1, 1).start());
    let occurred: HashMap<&str, DateTime<Utc>> = run
        .contacts
        .iter()
        .map(|c| (c.event_id.as_str(), c.occurred_at))
        .collect();
    for contact in &run.contacts {
        assert!(contact.occurred_at >= start && contact.occurred_at < period_end());
    }
    for response in &run.responses {
        let contact = response.contact_event_id.as_ref().expect("linked");
        let at = occurred[contact.as_str()];
        assert!(response.responded_at >= at && response.responded_at < period_end());
    }
}

#[test]
fn the_same_seed_gives_byte_identical_messages() {
    assert_eq!(all(district(7, 3_000)), all(district(7, 3_000)));
    let region = || all(scenario(scenario_file("region.toml"), 7, 3_000)).0;
    assert_eq!(region(), region());
}

#[test]
fn different_seeds_give_different_messages() {
    let (seven, _) = all(district(7, 3_000));
    let (eight, _) = all(district(8, 3_000));
    assert!(seven.len().min(eight.len()) > 3_000);
    let same = seven
        .iter()
        .zip(&eight)
        .filter(|(a, b)| a.payload == b.payload)
        .count();
    assert_eq!(same, 0);
}

#[test]
fn a_council_gives_the_same_messages_alone_or_beside_another() {
    let region = scenario(scenario_file("region.toml"), 5, 7_000);
    let (together, _) = all(region.clone());
    let mut alone = region;
    alone.select_council("E07000042").expect("in the file");
    alone.contacts = Some(3_000); // its share of 7,000 (60,000 of 140,000 a year)
    let (alone, _) = all(alone);
    let from_together: Vec<&Message> = together
        .iter()
        .filter(|m| m.key.contains("E07000042"))
        .collect();
    assert_eq!(from_together, alone.iter().collect::<Vec<_>>());
}

#[test]
fn messages_are_keyed_by_their_ids_and_ids_are_unique() {
    let (messages, _) = all(scenario(scenario_file("region.toml"), 2, 5_000));
    let mut keys = HashSet::new();
    for message in &messages {
        let value: serde_json::Value = serde_json::from_slice(&message.payload).expect("JSON");
        let id = if message.satisfaction {
            &value["response_id"]
        } else {
            &value["event_id"]
        };
        assert_eq!(id.as_str(), Some(message.key.as_str()));
        assert!(keys.insert(message.key.clone()), "{} twice", message.key);
    }
}

#[test]
fn contacts_come_out_in_time_order_across_councils() {
    let (messages, truth) = all(scenario(scenario_file("region.toml"), 4, 6_000));
    let (contacts, _) = parse_all(&messages, period_end());
    assert!(contacts
        .windows(2)
        .all(|w| w[0].occurred_at <= w[1].occurred_at));
    assert_eq!(truth.councils.len(), 2);
    assert_eq!(truth.contact_events, 6_000);
}

#[test]
fn the_truth_matches_the_messages() {
    let run = district_run();
    let truth = &run.truth;
    assert_eq!(truth.contact_events, 80_000);
    assert_eq!(run.contacts.len() as u64, truth.contact_events);
    assert_eq!(run.responses.len() as u64, truth.satisfaction_responses);
    let mut by_channel: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_service: BTreeMap<String, u64> = BTreeMap::new();
    for contact in &run.contacts {
        *by_channel.entry(contact.channel.to_string()).or_default() += 1;
        *by_service.entry(contact.service.to_string()).or_default() += 1;
    }
    assert_eq!(by_channel, truth.contacts_by_channel);
    assert_eq!(by_service, truth.contacts_by_service);
    let completed = run.contacts.iter().filter(|c| is_completed_transaction(c));
    assert_eq!(
        completed.clone().count() as u64,
        truth.completed_transactions
    );
    assert_eq!(
        completed.filter(|c| is_self_service(c.channel)).count() as u64,
        truth.digital_completed_transactions
    );
    let council = &truth.councils["E07000041"];
    assert_eq!(council.contact_events, truth.contact_events);
    let by_services: u64 = council.services.values().map(|s| s.contact_events).sum();
    let by_months: u64 = council.months.values().map(|m| m.contact_events).sum();
    assert_eq!((by_services, by_months), (80_000, 80_000));
    let flagged = run
        .contacts
        .iter()
        .filter(|c| c.avoidable == Some(true))
        .count();
    assert_eq!(flagged as u64, council.avoidable_contacts);
    let first = run
        .contacts
        .iter()
        .filter(|c| c.first_contact_resolved.is_some())
        .count();
    assert_eq!(first as u64, council.journeys);
}

#[test]
fn take_up_rises_from_the_start_share_toward_the_end_share() {
    let run = district_run();
    let month = |contact: &&ContactEvent| {
        let at = local(contact.occurred_at);
        (at.year(), at.month())
    };
    // The first three full months and the last three.
    let first: Vec<_> = run
        .contacts
        .iter()
        .filter(|c| matches!(month(c), (2024, 10..=12)))
        .collect();
    let last: Vec<_> = run
        .contacts
        .iter()
        .filter(|c| matches!(month(c), (2025, 8..=10)))
        .collect();
    let (start, finish) = (take_up(first), take_up(last));
    assert!(
        (38.0..48.0).contains(&start),
        "take-up at the start {start:.1}%"
    );
    assert!(
        (50.0..60.0).contains(&finish),
        "take-up at the end {finish:.1}%"
    );
    assert!(finish > start + 8.0, "{start:.1}% → {finish:.1}%");
    let overall = run.truth.digital_take_up().expect("transactions");
    assert!(start < overall && overall < finish);
}

#[test]
fn council_tax_peaks_in_march_and_garden_waste_in_spring() {
    let months = &district_run().truth.councils["E07000041"].months;
    // Whole months only: the period starts on 1 October 2024.
    let count = |service: &str, month: &str| {
        months[month]
            .contacts_by_service
            .get(service)
            .copied()
            .unwrap_or(0) as f64
    };
    let others_mean = |service: &str, skip: &[&str]| {
        let others: Vec<f64> = months
            .keys()
            .filter(|m| !skip.contains(&m.as_str()))
            .map(|m| count(service, m))
            .collect();
        others.iter().sum::<f64>() / others.len() as f64
    };
    let march = count("council_tax", "2025-03");
    assert!(
        march > 1.8 * others_mean("council_tax", &["2025-03"]),
        "March {march}"
    );
    let spring = ["2025-03", "2025-04", "2025-05"];
    let spring_mean = spring.iter().map(|m| count("garden_waste", m)).sum::<f64>() / 3.0;
    assert!(spring_mean > 2.5 * others_mean("garden_waste", &spring));
    // And more contacts overall in March than in a quiet month.
    assert!(months["2025-03"].contact_events > months["2025-07"].contact_events);
}

#[test]
fn business_and_resident_shares_follow_the_scenario() {
    let council = &district_run().truth.councils["E07000041"];
    // Weights 84 : 12 : 1 : 1 : 2.
    let resident = council.customer_share("resident").expect("contacts");
    let business = council.customer_share("business").expect("contacts");
    assert!((82.0..86.0).contains(&resident), "resident {resident:.1}%");
    assert!((10.5..13.5).contains(&business), "business {business:.1}%");
    // The unitary has more businesses.
    let (_, unitary) = all(scenario(Scenario::unitary(), 1, 20_000));
    let unitary_business = unitary.councils["E06000023"]
        .customer_share("business")
        .expect("contacts");
    assert!(unitary_business > business + 2.0);
}

#[test]
fn take_up_is_lower_in_the_most_deprived_wards() {
    let run = district_run();
    let in_deciles = |range: std::ops::RangeInclusive<u8>| {
        let wards: Vec<String> = Scenario::district().councils[0]
            .wards
            .iter()
            .filter(|w| range.contains(&w.imd_decile))
            .map(|w| w.code.clone())
            .collect();
        take_up(run.contacts.iter().filter(|c| {
            c.ward
                .as_ref()
                .is_some_and(|w| wards.iter().any(|x| x == w.as_str()))
        }))
    };
    let deprived = in_deciles(1..=3);
    let affluent = in_deciles(8..=10);
    assert!(
        affluent > deprived + 8.0,
        "{deprived:.1}% vs {affluent:.1}%"
    );
    // The truth's hot spots agree: the lowest ward is a deprived one.
    let wards = &run.truth.councils["E07000041"].wards;
    let lowest = wards
        .iter()
        .min_by(|a, b| {
            a.1.digital_take_up()
                .unwrap_or(0.0)
                .total_cmp(&b.1.digital_take_up().unwrap_or(0.0))
        })
        .map(|(code, _)| code.as_str())
        .expect("wards");
    let decile = Scenario::district().councils[0]
        .wards
        .iter()
        .find(|w| w.code == lowest)
        .map(|w| w.imd_decile);
    assert!(decile.is_some_and(|d| d <= 3), "{lowest} decile {decile:?}");
    // LSOAs are GSS-shaped and belong to their ward.
    assert!(run.contacts.iter().any(|c| c.lsoa.is_some()));
}

#[test]
fn staffed_channels_keep_office_hours_and_self_service_never_closes() {
    let run = district_run();
    let staffed = |c: &&ContactEvent| matches!(c.channel, Channel::Phone | Channel::FaceToFace);
    for contact in run.contacts.iter().filter(staffed) {
        let at = local(contact.occurred_at);
        assert!((8..17).contains(&at.hour()), "{} at {at}", contact.channel);
        assert_ne!(at.weekday(), chrono::Weekday::Sun);
        assert_ne!((at.month(), at.day()), (12, 25), "open on Christmas Day");
    }
    let night_web = run
        .contacts
        .iter()
        .filter(|c| c.channel == Channel::Web && local(c.occurred_at).hour() < 6)
        .count();
    assert!(night_web > 100, "{night_web} web contacts before 6am");
    let weekday = |day: chrono::Weekday| {
        run.contacts
            .iter()
            .filter(|c| local(c.occurred_at).weekday() == day)
            .count()
    };
    assert!(weekday(chrono::Weekday::Mon) > 2 * weekday(chrono::Weekday::Sun));
}

#[test]
fn phone_and_face_to_face_are_rated_higher_and_digital_improves() {
    let run = district_run();
    let on = |channels: &[Channel]| {
        csat_satisfied(
            run.responses
                .iter()
                .filter(|r| channels.contains(&r.channel)),
        )
    };
    let digital = [Channel::Web, Channel::App, Channel::Kiosk];
    let (face, phone, online) = (
        on(&[Channel::FaceToFace]),
        on(&[Channel::Phone]),
        on(&digital),
    );
    assert!(
        face > online + 10.0 && phone > online + 5.0,
        "{face:.0} {phone:.0} {online:.0}"
    );
    let half = |first: bool| {
        csat_satisfied(run.responses.iter().filter(|r| {
            digital.contains(&r.channel)
                && (local(r.responded_at).year() == 2024 || local(r.responded_at).month() <= 2)
                    == first
        }))
    };
    assert!(
        half(false) > half(true) + 4.0,
        "{:.1} → {:.1}",
        half(true),
        half(false)
    );
    let by_type = |customer_type: CustomerType| {
        csat_satisfied(
            run.responses
                .iter()
                .filter(|r| r.customer_type == customer_type),
        )
    };
    assert!(by_type(CustomerType::Business) < by_type(CustomerType::Resident) - 3.0);
}

#[test]
fn csat_is_the_main_instrument_and_the_others_appear() {
    let satisfaction = &district_run().truth.councils["E07000041"].satisfaction;
    let responses = |instrument: &str| satisfaction.get(instrument).map_or(0, |s| s.responses);
    let total: u64 = satisfaction.values().map(|s| s.responses).sum();
    assert!(responses("csat5") as f64 > 0.75 * total as f64);
    for instrument in ["govmetric3", "nps11", "ces7"] {
        assert!(responses(instrument) > 0, "no {instrument}");
    }
    // Response rates follow the survey mode: agent surveys after
    // face-to-face contacts are answered far more often than web ones.
    let run = district_run();
    let rate = |channel: Channel| {
        let contacts = run.contacts.iter().filter(|c| c.channel == channel).count();
        let responses = run
            .responses
            .iter()
            .filter(|r| r.channel == channel)
            .count();
        responses as f64 / contacts as f64
    };
    assert!(rate(Channel::FaceToFace) > 2.5 * rate(Channel::Web));
}

#[test]
fn repeat_contacts_share_a_journey_and_only_first_contacts_carry_resolution() {
    let run = district_run();
    let mut journeys: HashMap<&str, Vec<&ContactEvent>> = HashMap::new();
    for contact in &run.contacts {
        let journey = contact
            .journey_id
            .as_deref()
            .expect("every contact has a journey");
        journeys.entry(journey).or_default().push(contact);
    }
    let mut repeated = 0;
    for contacts in journeys.values() {
        let (first, repeats) = contacts.split_first().expect("non-empty");
        assert!(first.first_contact_resolved.is_some());
        if repeats.is_empty() {
            continue;
        }
        repeated += 1;
        assert_eq!(first.first_contact_resolved, Some(false));
        assert!(repeats.len() < 3, "at most max_contacts = 3");
        for repeat in repeats {
            assert_eq!(repeat.first_contact_resolved, None);
            assert_eq!(repeat.avoidable, Some(true));
            assert_eq!(repeat.service, first.service);
            assert_eq!(repeat.customer_ref, first.customer_ref);
            assert!(repeat.occurred_at > first.occurred_at);
        }
    }
    assert!(repeated > 1_000, "{repeated} repeated journeys");
    let council = &run.truth.councils["E07000041"];
    let fcr = council.first_contact_resolution().expect("journeys");
    let avoidable = council.avoidable_contact().expect("flagged");
    assert!((60.0..90.0).contains(&fcr), "FCR {fcr:.1}%");
    assert!(
        (15.0..45.0).contains(&avoidable),
        "avoidable {avoidable:.1}%"
    );
}

fn parsed(scenario: Scenario) -> Vec<ContactEvent> {
    let (messages, _) = all(scenario);
    parse_all(&messages, period_end()).0
}

/// Of repeat contacts, the share more than a week after their journey's previous contact.
fn repeats_after_a_week(contacts: &[ContactEvent]) -> f64 {
    let mut last: HashMap<&str, DateTime<Utc>> = HashMap::new();
    let (mut repeats, mut late) = (0, 0);
    for contact in contacts {
        let Some(journey) = contact.journey_id.as_deref() else {
            continue;
        };
        if let Some(previous) = last.insert(journey, contact.occurred_at) {
            repeats += 1;
            if contact.occurred_at - previous > Duration::days(7) {
                late += 1;
            }
        }
    }
    assert!(repeats > 100, "{repeats} repeats");
    f64::from(late) / f64::from(repeats)
}

#[test]
fn shaping_makes_quiet_days_small_cells_late_repeats_and_unlinked_journeys() {
    let plain = parsed(district(5, 20_000));
    let mut shaped = district(5, 20_000);
    let (from, to) = (
        NaiveDate::from_ymd_opt(2025, 6, 1).expect("a date"),
        NaiveDate::from_ymd_opt(2025, 6, 14).expect("a date"),
    );
    shaped.shaping.quiet = Some((from, to));
    shaped.shaping.service_caps.insert("council_tax".into(), 4);
    shaped.shaping.unlinked_share = 0.25;
    for council in &mut shaped.councils {
        council.journeys.repeat_delay_hours = 24.0 * 14.0;
    }
    let contacts = parsed(shaped);
    let day = |contact: &ContactEvent| local(contact.occurred_at).date_naive();
    assert!(plain.iter().any(|c| (from..=to).contains(&day(c))));
    assert!(!contacts.iter().any(|c| (from..=to).contains(&day(c))));
    let mut council_tax: BTreeMap<(i32, u32), u64> = BTreeMap::new();
    for contact in contacts
        .iter()
        .filter(|c| c.service.as_str() == "council_tax")
    {
        *council_tax
            .entry((day(contact).year(), day(contact).month()))
            .or_default() += 1;
    }
    assert!(council_tax.values().all(|&n| n <= 4), "{council_tax:?}");
    assert!(council_tax.values().any(|&n| n == 4), "{council_tax:?}");
    let unlinked =
        contacts.iter().filter(|c| c.journey_id.is_none()).count() as f64 / contacts.len() as f64;
    assert!((0.15..0.35).contains(&unlinked), "unlinked {unlinked:.3}");
    assert!(plain.iter().all(|c| c.journey_id.is_some()));
    let (before, after) = (
        repeats_after_a_week(&plain),
        repeats_after_a_week(&contacts),
    );
    assert!(before < 0.1, "{before:.3} of repeats late by default");
    assert!(
        after > 0.4,
        "{after:.3} of repeats late with a 14-day mean delay"
    );
}

#[test]
fn waits_and_handling_times_follow_the_channel() {
    let run = district_run();
    let median = |channel: Channel| {
        let mut waits: Vec<u32> = run
            .contacts
            .iter()
            .filter(|c| c.channel == channel)
            .filter_map(|c| c.wait_seconds)
            .collect();
        waits.sort_unstable();
        waits.get(waits.len() / 2).copied()
    };
    let phone = median(Channel::Phone).expect("phone waits");
    let face = median(Channel::FaceToFace).expect("counter waits");
    assert!((100..220).contains(&phone), "phone wait {phone}");
    assert!(face > phone);
    assert_eq!(median(Channel::Web), None, "web has no queue");
    assert!(run.contacts.iter().any(|c| c.assisted));
}

fn with_faults(bad_rate: f64, duplicate_rate: f64) -> Scenario {
    let mut scenario = district(11, 6_000);
    scenario.faults.bad_rate = bad_rate;
    scenario.faults.duplicate_rate = duplicate_rate;
    scenario
}

#[test]
fn faults_leave_the_valid_messages_and_the_truth_unchanged() {
    let (clean, clean_truth) = all(with_faults(0.0, 0.0));
    let (faulty, faulty_truth) = all(with_faults(0.1, 0.05));
    let valid: Vec<&Message> = faulty
        .iter()
        .filter(|m| m.kind == MessageKind::Valid)
        .collect();
    assert_eq!(valid, clean.iter().collect::<Vec<_>>());
    let mut without_injected = faulty_truth.clone();
    without_injected.injected = Default::default();
    assert_eq!(without_injected, clean_truth);
    assert!(faulty_truth.injected.bad_messages > 0);
    assert!(faulty_truth.injected.duplicate_messages > 0);
}

#[test]
fn injection_rates_are_roughly_as_asked_and_counted_apart() {
    let (messages, truth) = all(with_faults(0.1, 0.05));
    let valid = messages
        .iter()
        .filter(|m| m.kind == MessageKind::Valid)
        .count() as f64;
    let bad = messages
        .iter()
        .filter(|m| matches!(m.kind, MessageKind::Bad(_)))
        .count() as f64;
    let duplicates = messages
        .iter()
        .filter(|m| m.kind == MessageKind::Duplicate)
        .count() as f64;
    assert!(
        (0.085..0.115).contains(&(bad / valid)),
        "bad {:.3}",
        bad / valid
    );
    assert!(
        (0.04..0.06).contains(&(duplicates / valid)),
        "duplicates {:.3}",
        duplicates / valid
    );
    assert_eq!(truth.injected.bad_messages as f64, bad);
    assert_eq!(truth.injected.duplicate_messages as f64, duplicates);
    assert_eq!(
        truth.injected.bad_contact_messages + truth.injected.bad_satisfaction_messages,
        truth.injected.bad_messages
    );
    // Every kind is used, about equally.
    assert_eq!(truth.injected.bad_by_kind.len(), Defect::ALL.len());
    assert_eq!(
        valid as u64,
        truth.contact_events + truth.satisfaction_responses
    );
}

#[test]
fn every_bad_message_is_rejected_for_the_reason_of_its_defect() {
    let (messages, _) = all(with_faults(0.5, 0.0));
    let mut seen = HashSet::new();
    for message in &messages {
        let MessageKind::Bad(defect) = message.kind else {
            continue;
        };
        // Read a day after the period: far-future timestamps are still future.
        let now = period_end() + Duration::days(1);
        let rejection = if message.satisfaction {
            SatisfactionResponse::from_json(&message.payload, now).err()
        } else {
            ContactEvent::from_json(&message.payload, now).err()
        };
        let rejection = rejection.unwrap_or_else(|| {
            panic!(
                "{defect:?} accepted: {}",
                String::from_utf8_lossy(&message.payload)
            )
        });
        assert_eq!(
            rejection.reason.as_str(),
            defect.expected_rejection(),
            "{defect:?}: {rejection}"
        );
        assert!(message.key.ends_with("-bad"));
        seen.insert((defect, message.satisfaction));
    }
    assert_eq!(
        seen.len(),
        2 * Defect::ALL.len(),
        "every kind on both topics"
    );
}

#[test]
fn duplicates_repeat_an_earlier_message_byte_for_byte_a_little_later() {
    let (messages, _) = all(with_faults(0.0, 0.05));
    let mut earlier: HashMap<&str, (usize, &Message)> = HashMap::new();
    for (position, message) in messages.iter().enumerate() {
        match message.kind {
            MessageKind::Valid => {
                earlier.insert(&message.key, (position, message));
            }
            MessageKind::Duplicate => {
                let (original_at, original) = earlier
                    .get(message.key.as_str())
                    .copied()
                    .expect("a duplicate follows its original");
                assert_eq!(original.payload, message.payload);
                assert!(position > original_at && position - original_at < 500);
            }
            MessageKind::Bad(_) => unreachable!("no bad messages asked for"),
        }
    }
}

#[test]
fn live_follows_the_seed_and_stamps_messages_with_the_current_time() {
    let live = |now: DateTime<Utc>| {
        let mut generator = Generator::live(scenario_file("region.toml"));
        let mut messages = Vec::new();
        for index in 0..2_000 {
            let at = now + Duration::milliseconds(index * 10);
            messages.extend(generator.next_batch_at(at).expect("live never ends"));
        }
        (messages, generator.truth)
    };
    let monday = DateTime::parse_from_rfc3339("2025-11-03T10:00:00Z")
        .expect("a time")
        .to_utc();
    let sunday_night = DateTime::parse_from_rfc3339("2025-11-09T03:00:00Z")
        .expect("a time")
        .to_utc();
    let (first, first_truth) = live(monday);
    let (second, second_truth) = live(sunday_night);
    assert_eq!(first_truth.contact_events, 2_000);
    assert_eq!(first_truth.councils.len(), 2);
    // Parsed at the end of the run, every message is valid and stamped with its time.
    let (contacts, responses) = parse_all(&first, monday + Duration::seconds(20));
    assert!(contacts
        .iter()
        .all(|c| c.occurred_at >= monday && c.occurred_at < monday + Duration::seconds(20)));
    assert!(responses.iter().all(|r| r.responded_at >= monday));
    // The same sequence at another time: only the timestamps differ.
    let strip = |messages: &[Message]| -> Vec<serde_json::Value> {
        messages
            .iter()
            .map(|m| {
                let mut value: serde_json::Value =
                    serde_json::from_slice(&m.payload).expect("JSON");
                for field in ["occurred_at", "responded_at"] {
                    if let Some(object) = value.as_object_mut() {
                        object.remove(field);
                    }
                }
                value
            })
            .collect()
    };
    assert_eq!(strip(&first), strip(&second));
    assert_eq!(
        first_truth.contacts_by_channel,
        second_truth.contacts_by_channel
    );
    assert!(first[0].key.starts_with("live-"));
    assert_eq!(
        rfc3339(monday),
        serde_json::from_slice::<serde_json::Value>(&first[0].payload).expect("JSON")
            ["occurred_at"]
    );
}

#[test]
fn the_truth_file_reads_back_as_the_truth() {
    let (_, truth) = all(with_faults(0.05, 0.02));
    let json = serde_json::to_string_pretty(&truth).expect("serialises");
    let back: Truth = serde_json::from_str(&json).expect("deserialises");
    assert_eq!(back, truth);
    // What the command line prints keeps the names the demo reads.
    let summary = serde_json::to_value(truth.summary()).expect("serialises");
    for field in [
        "contact_events",
        "satisfaction_responses",
        "contacts_by_channel",
        "completed_transactions",
        "digital_completed_transactions",
    ] {
        assert!(summary.get(field).is_some(), "{field}");
    }
    assert!(
        summary["councils"]["E07000041"]["services"]["council_tax"]["contacts_by_channel"]
            .is_object()
    );
}
