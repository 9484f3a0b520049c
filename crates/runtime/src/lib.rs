//! Plumbing every Channelshift service shares: layered configuration,
//! logging, a health registry that long-running loops report into, the
//! operator endpoints (`/metrics`, `/healthz`, `/readyz`), shutdown, and
//! numbers written as people read them.

pub mod config;
pub mod health;
pub mod ops;
pub mod shutdown;
pub mod telemetry;
pub mod text;
