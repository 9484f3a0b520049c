//! What to simulate: one or more councils, each with its size, services,
//! channel mix and how it shifts, calendar, outcomes, satisfaction and
//! geography, read from a TOML scenario file (see `scenarios/`).
//!
//! A council may leave out any setting except `code`, `contacts_per_year`
//! and `wards`: a setting left out is taken whole from the built-in district
//! council (`scenarios/district.toml`). Unknown keys are errors, so a typo in
//! a knob cannot pass unnoticed.

use channelshift_contract::{
    Channel, CouncilCode, CustomerType, Instrument, Interaction, LsoaCode, Outcome, ServiceSlug,
    SurveyMode, WardCode,
};
use chrono::NaiveDate;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The built-in district council, shaped on the councils in `shared/seeds/`.
pub const DISTRICT_TOML: &str = include_str!("../scenarios/district.toml");
/// A larger unitary council with a different mix.
pub const UNITARY_TOML: &str = include_str!("../scenarios/unitary.toml");

/// Council settings that are never inherited from the district council.
const OWN_SETTINGS: &[&str] = &["code", "name", "contacts_per_year", "wards"];

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parsing the scenario: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("invalid scenario: {0}")]
    Invalid(String),
}

fn invalid(message: impl Into<String>) -> ScenarioError {
    ScenarioError::Invalid(message.into())
}

/// A whole simulation: the period, the seed, the councils and the faults to inject.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub name: String,
    pub seed: u64,
    /// The last local (Europe/London) day simulated.
    pub end: NaiveDate,
    /// Months simulated, ending with `end`.
    pub months: u32,
    /// Contacts over the whole period, all councils together, shared in
    /// proportion to `contacts_per_year`. `None`: each council's
    /// `contacts_per_year`, pro rata to the period's length.
    pub contacts: Option<u64>,
    pub faults: Faults,
    pub councils: Vec<Council>,
    /// Data the scenario would not make by itself, for testing definitions
    /// (set from the command line).
    pub shaping: Shaping,
}

/// Gaps and small cells cut out of a scenario's contacts: a skipped contact
/// is never sent and never counted in the truth (its journey ends there).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Shaping {
    /// Local days (both inclusive) with no contacts at all.
    pub quiet: Option<(NaiveDate, NaiveDate)>,
    /// At most this many contacts of a service (by slug) in each local month.
    pub service_caps: std::collections::BTreeMap<String, u64>,
    /// The share (0-1) of journeys whose contacts carry no `journey_id`,
    /// as from a source system that does not link them.
    pub unlinked_share: f64,
}

/// Extra messages that are not valid unique events (see `inject`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// Extra bad messages, as a fraction of the valid ones (0–1).
    #[serde(default)]
    pub bad_rate: f64,
    /// Share of valid messages sent a second time, a little later, with the same id (0–1).
    #[serde(default)]
    pub duplicate_rate: f64,
}

/// A value that may move in a straight line from the start of the period to
/// its end: `0.4` or `[0.4, 0.55]` in a scenario file.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Shift {
    Fixed(f64),
    Range([f64; 2]),
}

impl Shift {
    /// The value at `progress` (0 = start of the period, 1 = its end).
    pub fn at(self, progress: f64) -> f64 {
        match self {
            Shift::Fixed(value) => value,
            Shift::Range([start, end]) => start + (end - start) * progress.clamp(0.0, 1.0),
        }
    }

    fn ends(self) -> [f64; 2] {
        [self.at(0.0), self.at(1.0)]
    }
}

/// One council and everything that shapes its contacts.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Council {
    /// GSS code of the authority, e.g. `E07000041`.
    pub code: String,
    #[serde(default)]
    pub name: Option<String>,
    pub contacts_per_year: u64,
    /// Share of digital self-service contacts made with a helper (assisted digital).
    pub assisted_digital_share: f64,
    pub channels: Channels,
    pub customers: BTreeMap<CustomerType, CustomerProfile>,
    pub services: BTreeMap<String, ServiceProfile>,
    pub interactions: BTreeMap<Interaction, f64>,
    pub calendar: Calendar,
    pub outcomes: ByChannel<BTreeMap<Outcome, Shift>>,
    /// Median wait and handling seconds by channel; a channel left out sends neither.
    pub timings: BTreeMap<Channel, Timing>,
    pub journeys: Journeys,
    pub satisfaction: Satisfaction,
    pub geography: Geography,
    pub wards: Vec<Ward>,
}

/// The channel mix and how it shifts.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Channels {
    /// Share of contacts through digital self-service (web, app, kiosk), start → end.
    pub digital_share: Shift,
    /// Weights among the self-service channels (web, app, kiosk).
    pub self_service: BTreeMap<Channel, Shift>,
    /// Weights among the channels where staff handle the contact.
    pub mediated: BTreeMap<Channel, Shift>,
}

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerProfile {
    pub weight: f64,
    /// Added to the digital share (the generator centres these on the mix).
    #[serde(default)]
    pub digital: f64,
    /// Added to the probability that a respondent is satisfied.
    #[serde(default)]
    pub satisfaction: f64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceProfile {
    pub weight: f64,
    /// Added to the digital share (centred on the service mix).
    #[serde(default)]
    pub digital: f64,
    /// Volume multipliers by month (`jan` … `dec`); months left out are 1.
    #[serde(default)]
    pub seasonal: BTreeMap<Month, f64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Month {
    Jan,
    Feb,
    Mar,
    Apr,
    May,
    Jun,
    Jul,
    Aug,
    Sep,
    Oct,
    Nov,
    Dec,
}

impl Month {
    pub const ALL: [Month; 12] = [
        Month::Jan,
        Month::Feb,
        Month::Mar,
        Month::Apr,
        Month::May,
        Month::Jun,
        Month::Jul,
        Month::Aug,
        Month::Sep,
        Month::Oct,
        Month::Nov,
        Month::Dec,
    ];
}

impl ServiceProfile {
    /// The volume multiplier of month `month0` (0 = January).
    pub fn seasonal_factor(&self, month0: usize) -> f64 {
        Month::ALL
            .get(month0)
            .and_then(|month| self.seasonal.get(month))
            .copied()
            .unwrap_or(1.0)
    }
}

/// When contacts happen, in local (Europe/London) time. Self-service
/// contacts follow the `digital_*` pattern, staffed ones the `mediated_*`
/// pattern; each is relative (normalised over the week).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calendar {
    /// Monday first.
    pub mediated_weekdays: [f64; 7],
    pub mediated_hours: [f64; 24],
    pub digital_weekdays: [f64; 7],
    pub digital_hours: [f64; 24],
    /// Days the offices and phone lines are closed (bank holidays).
    #[serde(default)]
    pub closed_dates: Vec<LocalDate>,
}

/// A TOML local date (`2025-12-25`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalDate(pub NaiveDate);

impl<'de> Deserialize<'de> for LocalDate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // A TOML date literal; it reaches us as a string once the scenario
        // has been through `toml::Value` (for inheritance).
        let text = match toml::Value::deserialize(deserializer)? {
            toml::Value::Datetime(value) => value.to_string(),
            toml::Value::String(value) => value,
            other => return Err(D::Error::custom(format!("{other}: expected a date"))),
        };
        NaiveDate::parse_from_str(&text, "%Y-%m-%d")
            .map(LocalDate)
            .map_err(|_| D::Error::custom(format!("{text}: expected a date such as 2025-12-25")))
    }
}

/// A setting per channel with a `default` for the channels left out.
#[derive(Clone, Debug, PartialEq)]
pub struct ByChannel<T> {
    pub default: T,
    pub channels: BTreeMap<Channel, T>,
}

impl<T> ByChannel<T> {
    pub fn get(&self, channel: Channel) -> &T {
        self.channels.get(&channel).unwrap_or(&self.default)
    }

    fn all(&self) -> impl Iterator<Item = (String, &T)> {
        std::iter::once(("default".to_string(), &self.default)).chain(
            self.channels
                .iter()
                .map(|(channel, value)| (channel.to_string(), value)),
        )
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ByChannel<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut table = BTreeMap::<String, T>::deserialize(deserializer)?;
        let default = table
            .remove("default")
            .ok_or_else(|| D::Error::missing_field("default"))?;
        let channels = table
            .into_iter()
            .map(|(key, value)| {
                key.parse::<Channel>()
                    .map(|channel| (channel, value))
                    .map_err(|error| D::Error::custom(format!("{error}, or default")))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { default, channels })
    }
}

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timing {
    /// Median seconds in the queue before the contact was answered.
    #[serde(default)]
    pub wait: Option<u32>,
    /// Median seconds the contact took once answered (or on the form).
    #[serde(default)]
    pub handling: Option<u32>,
    /// Log-normal spread around the medians.
    #[serde(default = "default_spread")]
    pub spread: f64,
}

fn default_spread() -> f64 {
    0.6
}

/// Repeat contacts: first-contact resolution and failure demand.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Journeys {
    /// Chance that a completed first contact resolves the request.
    pub first_contact_resolution: ByChannel<f64>,
    /// Chance that an abandoned, failed or transferred contact is followed by another.
    pub repeat_after_failure: f64,
    /// Mean hours until the repeat contact.
    pub repeat_delay_hours: f64,
    /// Multiplies the digital share of repeat contacts (people who failed online phone).
    pub repeat_digital_factor: f64,
    /// Share of first contacts flagged avoidable (progress chasing always is).
    pub avoidable_share: f64,
    /// Longest journey, in contacts.
    pub max_contacts: u32,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Satisfaction {
    /// Probability that a respondent is satisfied, by channel, start → end.
    pub satisfied: ByChannel<Shift>,
    /// Subtracted when the contact was abandoned, failed or transferred.
    pub failure_penalty: f64,
    /// Subtracted for a repeat contact.
    pub repeat_penalty: f64,
    /// Weights of the survey instruments.
    pub instruments: BTreeMap<Instrument, f64>,
    /// How each channel's customers are surveyed; a channel left out is not surveyed.
    pub survey_modes: BTreeMap<Channel, SurveyMode>,
    /// Share of surveyed contacts that respond, by survey mode.
    pub response_rates: BTreeMap<SurveyMode, f64>,
    /// Share of responses with a comment.
    pub comment_share: f64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Geography {
    /// Share of contacts whose address resolves to a ward.
    pub ward_known_share: f64,
    /// Of those, share that also resolve to an LSOA.
    pub lsoa_known_share: f64,
    /// Digital share in the least deprived wards (IMD decile 10) minus the
    /// most deprived (decile 1); centred on the population.
    pub deprivation_gradient: f64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ward {
    /// GSS ward code, `E05……`.
    pub code: String,
    #[serde(default)]
    pub name: Option<String>,
    pub population: f64,
    /// Index of Multiple Deprivation decile, 1 = most deprived.
    pub imd_decile: u8,
    /// GSS LSOA codes, `E01……`.
    #[serde(default)]
    pub lsoas: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    #[serde(default)]
    name: Option<String>,
    #[serde(default = "default_seed")]
    seed: u64,
    #[serde(default = "default_months")]
    months: u32,
    #[serde(default)]
    end: Option<LocalDate>,
    #[serde(default)]
    contacts: Option<u64>,
    #[serde(default)]
    faults: Faults,
    councils: Vec<Council>,
}

fn default_seed() -> u64 {
    42
}

fn default_months() -> u32 {
    13
}

impl Scenario {
    /// The built-in district council (`scenarios/district.toml`).
    pub fn district() -> Self {
        Self::from_toml(DISTRICT_TOML).expect("the built-in district scenario is valid")
    }

    /// The built-in unitary council (`scenarios/unitary.toml`).
    pub fn unitary() -> Self {
        Self::from_toml(UNITARY_TOML).expect("the built-in unitary scenario is valid")
    }

    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ScenarioError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text)
    }

    /// Parses and checks a scenario. Without `end`, the period ends yesterday (London).
    pub fn from_toml(text: &str) -> Result<Self, ScenarioError> {
        let mut table: toml::Table = text.parse()?;
        inherit_district_settings(&mut table)?;
        let file: ScenarioFile = toml::Value::Table(table).try_into()?;
        let scenario = Self {
            name: file.name.unwrap_or_else(|| "scenario".into()),
            seed: file.seed,
            end: file.end.map_or_else(yesterday, |date| date.0),
            months: file.months,
            contacts: file.contacts,
            faults: file.faults,
            councils: file.councils,
            shaping: Shaping::default(),
        };
        scenario.validate()?;
        Ok(scenario)
    }

    /// The first local day simulated.
    pub fn start(&self) -> NaiveDate {
        let after = self.end + chrono::Duration::days(1);
        after
            .checked_sub_months(chrono::Months::new(self.months))
            .unwrap_or(self.end)
    }

    /// Keeps only council `code`; when the scenario has no such council, the
    /// first one is kept under that code (the `--council` override).
    pub fn select_council(&mut self, code: &str) -> Result<(), ScenarioError> {
        if CouncilCode::parse(code).is_none() {
            return Err(invalid(format!(
                "council {code:?} is not {}",
                CouncilCode::RULE
            )));
        }
        let keep = self
            .councils
            .iter()
            .position(|council| council.code == code)
            .unwrap_or(0);
        let mut council = self.councils.swap_remove(keep);
        council.code = code.to_string();
        self.councils = vec![council];
        Ok(())
    }

    /// Contacts per council over the period, in the order of `councils`;
    /// the shares of `contacts` are rounded so that they add up exactly.
    pub fn council_contacts(&self) -> Vec<u64> {
        let total_weight: f64 = self
            .councils
            .iter()
            .map(|c| c.contacts_per_year as f64)
            .sum();
        let total = self.contacts.unwrap_or_else(|| {
            let days = (self.end - self.start()).num_days() + 1;
            (total_weight * days as f64 / 365.25).round() as u64
        });
        let exact: Vec<f64> = self
            .councils
            .iter()
            .map(|c| total as f64 * c.contacts_per_year as f64 / total_weight.max(1.0))
            .collect();
        let mut shares: Vec<u64> = exact.iter().map(|x| x.floor() as u64).collect();
        let mut left = total.saturating_sub(shares.iter().sum());
        // Largest remainders first; ties go to the earlier council.
        let mut order: Vec<usize> = (0..exact.len()).collect();
        order.sort_by(|&a, &b| {
            (exact[b] - exact[b].floor())
                .total_cmp(&(exact[a] - exact[a].floor()))
                .then(a.cmp(&b))
        });
        for index in order {
            if left == 0 {
                break;
            }
            shares[index] += 1;
            left -= 1;
        }
        shares
    }

    /// Checks everything the generator relies on, naming the setting at fault.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        if self.months == 0 {
            return Err(invalid("months must be at least 1"));
        }
        if self.councils.is_empty() {
            return Err(invalid("a scenario needs at least one [[councils]]"));
        }
        check_share("faults.bad_rate", self.faults.bad_rate).map_err(invalid)?;
        check_share("faults.duplicate_rate", self.faults.duplicate_rate).map_err(invalid)?;
        let mut codes = BTreeSet::new();
        let mut wards = BTreeSet::new();
        for council in &self.councils {
            if !codes.insert(council.code.as_str()) {
                return Err(invalid(format!("council {} appears twice", council.code)));
            }
            council
                .validate()
                .map_err(|error| invalid(format!("council {}: {error}", council.code)))?;
            for ward in &council.wards {
                if !wards.insert(ward.code.as_str()) {
                    return Err(invalid(format!("ward {} appears twice", ward.code)));
                }
            }
        }
        Ok(())
    }
}

/// Yesterday in London: the history runs up to the last complete local day.
fn yesterday() -> NaiveDate {
    chrono::Utc::now()
        .with_timezone(&chrono_tz::Europe::London)
        .date_naive()
        - chrono::Duration::days(1)
}

/// Fills each council's missing settings from the built-in district council.
fn inherit_district_settings(table: &mut toml::Table) -> Result<(), ScenarioError> {
    let base: toml::Table = DISTRICT_TOML.parse()?;
    let base = base
        .get("councils")
        .and_then(|councils| councils.as_array())
        .and_then(|councils| councils.first())
        .and_then(|council| council.as_table())
        .ok_or_else(|| invalid("the built-in district scenario has no council"))?;
    let Some(councils) = table.get_mut("councils").and_then(|c| c.as_array_mut()) else {
        return Ok(()); // the missing field is reported by the parser
    };
    for council in councils.iter_mut().filter_map(|c| c.as_table_mut()) {
        for (key, value) in base {
            if !OWN_SETTINGS.contains(&key.as_str()) && !council.contains_key(key) {
                council.insert(key.clone(), value.clone());
            }
        }
    }
    Ok(())
}

fn check_share(name: &str, value: f64) -> Result<(), String> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(format!("{name} must be between 0 and 1, not {value}"))
    }
}

fn check_shift_share(name: &str, value: Shift) -> Result<(), String> {
    value
        .ends()
        .into_iter()
        .try_for_each(|end| check_share(name, end))
}

fn check_offset(name: &str, value: f64) -> Result<(), String> {
    if (-1.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(format!("{name} must be between -1 and 1, not {value}"))
    }
}

/// Weights must be finite and non-negative, adding up to more than zero
/// (at both ends of the period, for shifting weights).
fn check_weights<K: std::fmt::Display>(
    name: &str,
    weights: impl IntoIterator<Item = (K, Shift)>,
) -> Result<(), String> {
    let mut totals = [0.0, 0.0];
    for (key, weight) in weights {
        for (total, value) in totals.iter_mut().zip(weight.ends()) {
            if !value.is_finite() || value < 0.0 {
                return Err(format!("{name}.{key} must be a weight of 0 or more"));
            }
            *total += value;
        }
    }
    if totals.iter().any(|total| *total <= 0.0) {
        return Err(format!("{name} needs at least one positive weight"));
    }
    Ok(())
}

fn check_pattern(name: &str, values: &[f64]) -> Result<(), String> {
    check_weights(
        name,
        values
            .iter()
            .enumerate()
            .map(|(index, value)| (index, Shift::Fixed(*value))),
    )
}

impl Council {
    fn validate(&self) -> Result<(), String> {
        if CouncilCode::parse(&self.code).is_none() {
            return Err(format!("code must be {}", CouncilCode::RULE));
        }
        if self.contacts_per_year == 0 {
            return Err("contacts_per_year must be positive".into());
        }
        check_share("assisted_digital_share", self.assisted_digital_share)?;

        check_shift_share("channels.digital_share", self.channels.digital_share)?;
        check_weights(
            "channels.self_service",
            self.channels.self_service.iter().map(|(c, w)| (c, *w)),
        )?;
        check_weights(
            "channels.mediated",
            self.channels.mediated.iter().map(|(c, w)| (c, *w)),
        )?;
        for channel in self.channels.self_service.keys() {
            if !is_self_service(*channel) {
                return Err(format!(
                    "channels.self_service.{channel}: only web, app and kiosk are self-service"
                ));
            }
        }
        for channel in self.channels.mediated.keys() {
            if is_self_service(*channel) {
                return Err(format!(
                    "channels.mediated.{channel}: web, app and kiosk belong in self_service"
                ));
            }
        }

        check_weights(
            "customers",
            self.customers
                .iter()
                .map(|(c, p)| (c, Shift::Fixed(p.weight))),
        )?;
        for (customer, profile) in &self.customers {
            check_offset(&format!("customers.{customer}.digital"), profile.digital)?;
            check_offset(
                &format!("customers.{customer}.satisfaction"),
                profile.satisfaction,
            )?;
        }

        check_weights(
            "services",
            self.services
                .iter()
                .map(|(s, p)| (s, Shift::Fixed(p.weight))),
        )?;
        for (service, profile) in &self.services {
            if ServiceSlug::parse(service).is_none() {
                return Err(format!("services.{service}: {}", ServiceSlug::RULE));
            }
            check_offset(&format!("services.{service}.digital"), profile.digital)?;
            check_weights(
                &format!("services.{service}.seasonal"),
                profile
                    .seasonal
                    .iter()
                    .map(|(m, f)| (format!("{m:?}").to_lowercase(), Shift::Fixed(*f)))
                    .chain([("(any month)".to_string(), Shift::Fixed(1.0))]),
            )?;
        }
        // Every month must have some contacts, or the calendar has a hole.
        for month0 in 0..12 {
            let volume: f64 = self
                .services
                .values()
                .map(|p| p.weight * p.seasonal_factor(month0))
                .sum();
            if volume <= 0.0 {
                return Err(format!("services: month {} has no contacts", month0 + 1));
            }
        }

        check_weights(
            "interactions",
            self.interactions.iter().map(|(i, w)| (i, Shift::Fixed(*w))),
        )?;

        check_pattern(
            "calendar.mediated_weekdays",
            &self.calendar.mediated_weekdays,
        )?;
        check_pattern("calendar.mediated_hours", &self.calendar.mediated_hours)?;
        check_pattern("calendar.digital_weekdays", &self.calendar.digital_weekdays)?;
        check_pattern("calendar.digital_hours", &self.calendar.digital_hours)?;

        for (channel, table) in self.outcomes.all() {
            check_weights(
                &format!("outcomes.{channel}"),
                table.iter().map(|(o, w)| (o, *w)),
            )?;
        }
        for (channel, timing) in &self.timings {
            for (what, value) in [("wait", timing.wait), ("handling", timing.handling)] {
                if value.is_some_and(|v| v > channelshift_contract::MAX_DURATION_SECONDS) {
                    return Err(format!("timings.{channel}.{what} is more than a day"));
                }
            }
            if !(0.0..=3.0).contains(&timing.spread) {
                return Err(format!("timings.{channel}.spread must be 0–3"));
            }
        }

        let journeys = &self.journeys;
        for (channel, share) in journeys.first_contact_resolution.all() {
            check_share(
                &format!("journeys.first_contact_resolution.{channel}"),
                *share,
            )?;
        }
        check_share(
            "journeys.repeat_after_failure",
            journeys.repeat_after_failure,
        )?;
        check_share(
            "journeys.repeat_digital_factor",
            journeys.repeat_digital_factor,
        )?;
        check_share("journeys.avoidable_share", journeys.avoidable_share)?;
        if !(journeys.repeat_delay_hours.is_finite() && journeys.repeat_delay_hours > 0.0) {
            return Err("journeys.repeat_delay_hours must be positive".into());
        }
        if journeys.max_contacts == 0 {
            return Err("journeys.max_contacts must be at least 1".into());
        }

        let satisfaction = &self.satisfaction;
        for (channel, share) in satisfaction.satisfied.all() {
            check_shift_share(&format!("satisfaction.satisfied.{channel}"), *share)?;
        }
        check_share("satisfaction.failure_penalty", satisfaction.failure_penalty)?;
        check_share("satisfaction.repeat_penalty", satisfaction.repeat_penalty)?;
        check_share("satisfaction.comment_share", satisfaction.comment_share)?;
        check_weights(
            "satisfaction.instruments",
            satisfaction
                .instruments
                .iter()
                .map(|(i, w)| (i, Shift::Fixed(*w))),
        )?;
        for (mode, rate) in &satisfaction.response_rates {
            check_share(&format!("satisfaction.response_rates.{mode}"), *rate)?;
        }

        let geography = &self.geography;
        check_share("geography.ward_known_share", geography.ward_known_share)?;
        check_share("geography.lsoa_known_share", geography.lsoa_known_share)?;
        check_offset(
            "geography.deprivation_gradient",
            geography.deprivation_gradient,
        )?;
        if self.wards.is_empty() {
            return Err("needs at least one [[councils.wards]]".into());
        }
        let mut lsoas = BTreeSet::new();
        for ward in &self.wards {
            if WardCode::parse(&ward.code).is_none() {
                return Err(format!("ward {:?}: {}", ward.code, WardCode::RULE));
            }
            if !(1..=10).contains(&ward.imd_decile) {
                return Err(format!("ward {}: imd_decile must be 1–10", ward.code));
            }
            if !(ward.population.is_finite() && ward.population > 0.0) {
                return Err(format!("ward {}: population must be positive", ward.code));
            }
            for lsoa in &ward.lsoas {
                if LsoaCode::parse(lsoa).is_none() {
                    return Err(format!(
                        "ward {}: LSOA {lsoa:?}: {}",
                        ward.code,
                        LsoaCode::RULE
                    ));
                }
                if !lsoas.insert(lsoa.as_str()) {
                    return Err(format!("LSOA {lsoa} appears twice"));
                }
            }
        }
        Ok(())
    }

    /// Every channel this council's contacts can come through.
    pub fn channels_in_use(&self) -> impl Iterator<Item = Channel> + '_ {
        self.channels
            .self_service
            .keys()
            .chain(self.channels.mediated.keys())
            .copied()
    }
}

/// Web, app and kiosk: the channels counted as digital take-up.
pub fn is_self_service(channel: Channel) -> bool {
    matches!(channel, Channel::Web | Channel::App | Channel::Kiosk)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenarios_folder() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
    }

    #[test]
    fn every_scenario_file_in_the_folder_parses_and_validates() {
        let mut parsed = 0;
        for entry in std::fs::read_dir(scenarios_folder()).expect("the scenarios folder") {
            let path = entry.expect("a folder entry").path();
            if path.extension().is_some_and(|e| e == "toml") {
                let scenario = Scenario::from_file(&path)
                    .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
                assert!(!scenario.councils.is_empty());
                parsed += 1;
            }
        }
        assert!(parsed >= 3, "only {parsed} scenario files");
    }

    #[test]
    fn the_built_in_scenarios_are_the_files() {
        let district = Scenario::district();
        assert_eq!(district.councils[0].code, "E07000041");
        assert_eq!(district.councils[0].contacts_per_year, 100_000);
        assert_eq!(district.seed, 42);
        let unitary = Scenario::unitary();
        assert_eq!(unitary.councils[0].code, "E06000023");
        assert!(unitary.councils[0].contacts_per_year > 100_000);
        assert!(unitary.councils[0].services.contains_key("social_care"));
    }

    #[test]
    fn a_council_inherits_the_settings_it_leaves_out_from_the_district() {
        let region = Scenario::from_file(scenarios_folder().join("region.toml")).expect("valid");
        let district = Scenario::district();
        let rural = &region.councils[1];
        assert_eq!(rural.code, "E07000042");
        // Set in the file:
        assert_eq!(rural.channels.digital_share, Shift::Range([0.48, 0.56]));
        // Left out, so the district's:
        let services: Vec<_> = rural.services.keys().collect();
        assert_eq!(
            services,
            district.councils[0].services.keys().collect::<Vec<_>>()
        );
        assert_eq!(rural.geography.deprivation_gradient, 0.24);
        // Never inherited:
        assert_ne!(rural.wards[0].code, district.councils[0].wards[0].code);
    }

    #[test]
    fn a_minimal_council_needs_only_code_size_and_wards() {
        let scenario = Scenario::from_toml(
            r#"
            end = 2025-03-31
            months = 2
            [[councils]]
            code = "W06000015"
            contacts_per_year = 5000
            [[councils.wards]]
            code = "W05000001"
            population = 1
            imd_decile = 5
            "#,
        )
        .expect("valid");
        assert_eq!(scenario.start().to_string(), "2025-02-01");
        assert_eq!(scenario.councils[0].code, "W06000015");
        assert_eq!(scenario.councils[0].interactions.len(), 4);
    }

    fn refusal(text: &str) -> String {
        match Scenario::from_toml(text) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn mistakes_in_a_scenario_are_named() {
        let base = r#"
            [[councils]]
            code = "E07000041"
            contacts_per_year = 100
            [[councils.wards]]
            code = "E05000001"
            population = 1
            imd_decile = 5
            "#;
        assert!(Scenario::from_toml(base).is_ok());
        let typo = base.replace("contacts_per_year", "contacts_per_yaer");
        assert!(refusal(&typo).contains("contacts_per_yaer"));
        let council = base.replace("E07000041", "E0700041");
        assert!(refusal(&council).contains("code"));
        let ward = base.replace("E05000001", "E01000001");
        assert!(refusal(&ward).contains("E01000001"));
        let channel = format!(
            "{base}\n[councils.channels]\ndigital_share = 0.5\nself_service = {{ web = 1, fax = 1 }}\nmediated = {{ phone = 1 }}"
        );
        assert!(refusal(&channel).contains("fax"));
        let misplaced = format!(
            "{base}\n[councils.channels]\ndigital_share = 0.5\nself_service = {{ web = 1 }}\nmediated = {{ web = 1 }}"
        );
        assert!(refusal(&misplaced).contains("mediated.web"));
        let share = format!(
            "{base}\n[councils.channels]\ndigital_share = [0.4, 1.2]\nself_service = {{ web = 1 }}\nmediated = {{ phone = 1 }}"
        );
        assert!(refusal(&share).contains("digital_share"));
        let month =
            format!("{base}\n[councils.services.waste]\nweight = 1\nseasonal = {{ mrach = 2 }}");
        assert!(refusal(&month).contains("mrach"));
        let rate = format!("[faults]\nbad_rate = 2\n{base}");
        assert!(refusal(&rate).contains("bad_rate"));
    }

    #[test]
    fn contacts_are_shared_among_councils_and_add_up_exactly() {
        let mut region =
            Scenario::from_file(scenarios_folder().join("region.toml")).expect("valid");
        region.contacts = Some(10_001);
        let shares = region.council_contacts();
        assert_eq!(shares.iter().sum::<u64>(), 10_001);
        // 80,000 and 60,000 a year: 4 to 3.
        assert_eq!(shares, vec![5_715, 4_286]);
        region.contacts = None;
        region.months = 12;
        let year = region.council_contacts();
        assert!((79_500..=80_500).contains(&year[0]), "{year:?}");
    }

    #[test]
    fn selecting_a_council_keeps_it_or_renames_the_first() {
        let mut region =
            Scenario::from_file(scenarios_folder().join("region.toml")).expect("valid");
        region.select_council("E07000042").expect("valid code");
        assert_eq!(region.councils.len(), 1);
        assert_eq!(region.councils[0].contacts_per_year, 60_000);
        let mut district = Scenario::district();
        district.select_council("E07000045").expect("valid code");
        assert_eq!(district.councils[0].code, "E07000045");
        assert!(district.select_council("nonsense").is_err());
    }

    #[test]
    fn shifts_move_in_a_straight_line() {
        let shift = Shift::Range([0.4, 0.6]);
        assert_eq!(shift.at(0.0), 0.4);
        assert!((shift.at(0.5) - 0.5).abs() < 1e-12);
        assert_eq!(shift.at(2.0), 0.6);
        assert_eq!(Shift::Fixed(3.0).at(0.7), 3.0);
    }
}
