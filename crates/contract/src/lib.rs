//! The wire contract of Channelshift (see `shared/domain.md`, "Wire contract"):
//! contact events and satisfaction responses as JSON on Kafka, turned into
//! domain types that can only exist valid. Anything else is a [`Rejection`]
//! that names the field and the reason.
//!
//! ## Published JSON Schema
//!
//! [`schema`] states the same contract as JSON Schema (draft 2020-12), built
//! from the patterns and limits the parser checks, for producers to validate
//! against and generate code from. The documents are committed as
//! `crates/contract/schema/contact-event.v1.json` and
//! `crates/contract/schema/satisfaction-response.v1.json`. The test
//! `committed_schemas_match_the_code` fails when they differ from the code;
//! after changing the contract, regenerate them, review the diff and commit it:
//!
//! ```text
//! CHANNELSHIFT_UPDATE_SCHEMA=1 cargo test -p channelshift-contract committed_schemas_match_the_code
//! ```
//!
//! A message the schema accepts can still be rejected: each document's
//! description lists what JSON Schema cannot express (the future-timestamp
//! limit, the message size limit, duplicate keys, integers written as `4.0`).

mod codes;
mod contact;
mod rejection;
mod satisfaction;
pub mod schema;
mod vocabulary;
mod wire;

pub use codes::{CouncilCode, EventId, LsoaCode, ServiceSlug, WardCode};
pub use contact::ContactEvent;
pub use rejection::{Rejection, RejectionReason};
pub use satisfaction::{SatisfactionResponse, Score};
#[doc(hidden)]
pub use utoipa as __utoipa;
#[doc(hidden)]
pub use vocabulary::vocabulary_schema;
pub use vocabulary::{
    Channel, ChannelClass, CustomerType, Instrument, Interaction, Outcome, SurveyMode, UnknownName,
};

/// The only `schema_version` this build understands.
pub const SCHEMA_VERSION: u32 = 1;

/// How far ahead of the receiver's clock a timestamp may be before it is rejected.
pub const MAX_FUTURE_SKEW: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

// The limits below are named once so that the parser enforcing them and the
// published JSON Schema (see [`schema`]) cannot disagree. Lengths count
// Unicode scalar values, as JSON Schema's `maxLength` does.

/// Longest `customer_ref` of a contact event, in characters.
pub const CUSTOMER_REF_MAX_CHARS: usize = 128;

/// Longest `journey_id` of a contact event, in characters.
pub const JOURNEY_ID_MAX_CHARS: usize = 64;

/// Longest `source` of a contact event, in characters.
pub const SOURCE_MAX_CHARS: usize = 64;

/// Longest `comment` of a satisfaction response, in characters.
pub const COMMENT_MAX_CHARS: usize = 2_000;

/// Largest `wait_seconds` or `handling_seconds`: one day.
pub const MAX_DURATION_SECONDS: u32 = 86_400;

/// Ingest's default limit on one message's size. The limit is ingest's to
/// enforce and configure; it is named here because the contract documents it.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 * 1024;
