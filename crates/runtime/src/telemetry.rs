//! Structured logs through `tracing`: `RUST_LOG` filters (default `info`),
//! `CHANNELSHIFT_LOG_FORMAT=json` gives one JSON object per line.

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Logs for a service: to standard output.
pub fn init() {
    setup(false);
}

/// Logs for a command whose standard output is its result (e.g. the files
/// it wrote): to standard error.
pub fn init_to_stderr() {
    setup(true);
}

fn setup(to_stderr: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("CHANNELSHIFT_LOG_FORMAT").is_ok_and(|format| format == "json");
    // Colour codes only for a person at a terminal, not in log files.
    let terminal = if to_stderr {
        std::io::stderr().is_terminal()
    } else {
        std::io::stdout().is_terminal()
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(terminal)
        .with_writer(move || -> Box<dyn std::io::Write> {
            if to_stderr {
                Box::new(std::io::stderr())
            } else {
                Box::new(std::io::stdout())
            }
        });
    // A second init (tests start several services in one process) keeps the first.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
