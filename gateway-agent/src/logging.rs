//! tracing setup: human-readable text for a terminal, one JSON object per line for
//! journald/log shippers and for tests that read the agent's reports.

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, Default, ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// `RUST_LOG` overrides the default `info` level.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    match format {
        LogFormat::Text => builder.init(),
        // Event fields at the top level, so `orig_dst`, `pid`, … are plain keys.
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}
