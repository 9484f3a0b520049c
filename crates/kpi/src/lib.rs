//! The KPI arithmetic of Channelshift: digital take-up, channel mix, satisfaction with Wilson
//! intervals, completion, cost per transaction, channel-shift savings, first-contact resolution by
//! journey, telephone waits and abandonment, year-end forecasts, RAG, suppression and the Europe/London reporting
//! periods. Plain functions over plain data: no I/O, no async.
//!
//! The definitions are the product's contract (`shared/domain.md`, "KPI definitions" and
//! "Reporting rules"); each module names the definition it implements.

pub mod catalogue;
pub mod channel;
pub mod completion;
pub mod cost;
pub mod demand;
pub mod forecast;
pub mod interval;
pub mod mix;
pub mod opportunity;
pub mod period;
pub mod rag;
pub mod satisfaction;
pub mod savings;
pub mod suppression;
pub mod take_up;
pub mod telephone;

pub use catalogue::{Kpi, KpiSpec};
pub use channel::{
    Channel, ChannelClass, ChannelClasses, ContactsByChannel, CustomerType, Instrument,
    Interaction, Outcome, UnknownName,
};
pub use interval::{wilson_interval, Interval, Rate};
pub use period::{local_date, Period, PeriodKind, UtcRange};
