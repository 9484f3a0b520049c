//! Synthetic council data: contact events and satisfaction responses that
//! follow the wire contract, shaped like a district council's year (digital
//! take-up rising from about 40%, phone and face-to-face rated higher than
//! digital, a deprivation gradient across wards). Deterministic: the same
//! seed and end date give byte-identical messages.

pub mod generate;
pub mod truth;

pub use generate::{Generator, Message, Scenario};
pub use truth::Truth;
