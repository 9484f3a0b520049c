//! Structured logs through `tracing`: `RUST_LOG` filters (default `info`),
//! `CHANNELSHIFT_LOG_FORMAT=json` gives one JSON object per line.

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("CHANNELSHIFT_LOG_FORMAT").is_ok_and(|format| format == "json");
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    // A second init (tests start several services in one process) keeps the first.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
