//! Synthetic council data: contact events and satisfaction responses that
//! follow the wire contract, shaped by a scenario file (`scenarios/`):
//! district and unitary councils whose digital take-up rises from about 40%,
//! with seasons, office hours, repeat contacts, satisfaction by channel and
//! customer type, and a deprivation gradient across wards. Deterministic:
//! the same scenario and seed give byte-identical messages.
//!
//! Driving it in-process (a test does this):
//!
//! ```no_run
//! use channelshift_simulator::{Generator, Scenario};
//!
//! let mut scenario = Scenario::from_file("crates/simulator/scenarios/unitary.toml")?;
//! scenario.seed = 7;
//! scenario.contacts = Some(20_000); // all councils, whole period
//! scenario.end = chrono::NaiveDate::from_ymd_opt(2025, 10, 31).expect("a date");
//! let mut generator = Generator::new(scenario); // or Generator::live(scenario)
//! while let Some(batch) = generator.next_batch() {
//!     for message in batch {
//!         // topic: message.satisfaction; key: message.key; value: message.payload
//!     }
//! }
//! let council = &generator.truth.councils["E06000023"];
//! println!("{:?}% digital take-up", council.digital_take_up());
//! # Ok::<(), channelshift_simulator::ScenarioError>(())
//! ```

pub mod generate;
pub mod inject;
pub mod scenario;
mod timeline;
pub mod truth;

#[cfg(test)]
mod tests;

pub use generate::{Generator, Message, MessageKind};
pub use inject::Defect;
pub use scenario::{Council, Faults, Scenario, ScenarioError, Shaping};
pub use truth::{CouncilTruth, Injected, Truth};
