//! The wire contract of Channelshift (see `shared/domain.md`, "Wire contract"):
//! contact events and satisfaction responses as JSON on Kafka, turned into
//! domain types that can only exist valid. Anything else is a [`Rejection`]
//! that names the field and the reason.

mod codes;
mod contact;
mod rejection;
mod satisfaction;
mod vocabulary;
mod wire;

pub use codes::{CouncilCode, EventId, LsoaCode, ServiceSlug, WardCode};
pub use contact::ContactEvent;
pub use rejection::{Rejection, RejectionReason};
pub use satisfaction::{SatisfactionResponse, Score};
pub use vocabulary::{
    Channel, ChannelClass, CustomerType, Instrument, Interaction, Outcome, SurveyMode,
};

/// The only `schema_version` this build understands.
pub const SCHEMA_VERSION: u32 = 1;

/// How far ahead of the receiver's clock a timestamp may be before it is rejected.
pub const MAX_FUTURE_SKEW: chrono::TimeDelta = chrono::TimeDelta::minutes(5);
