//! Structured logs through `tracing`: `RUST_LOG` filters (default `info`),
//! `CHANNELSHIFT_LOG_FORMAT=json` gives one JSON object per line.

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("CHANNELSHIFT_LOG_FORMAT").is_ok_and(|format| format == "json");
    // Colour codes only for a person at a terminal, not in log files.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stdout().is_terminal());
    // A second init (tests start several services in one process) keeps the first.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
