//! tracing setup: human-readable text for a terminal, one JSON object per line for log
//! shippers and for tests that read the agent's reports, and the journal's native protocol
//! for the systemd service, so every event field is a journal field an operator can match
//! on (`journalctl -u gateway-agent COMM=curl`) instead of text inside `MESSAGE`.

mod batched;

use clap::ValueEnum;
use tracing_subscriber::{
    EnvFilter, fmt::writer::BoxMakeWriter, layer::SubscriberExt as _, util::SubscriberInitExt as _,
};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
    /// Native journald fields (upper-cased: `orig_dst` → `ORIG_DST`); JSON on stdout when
    /// the journal's socket is not there.
    Journald,
}

/// Where text and JSON lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// On the thread that logs, in order with whatever else the command prints.
    Direct,
    /// By a writer thread, in batches ([`batched`]): for `run`, whose data-path threads
    /// must not wait on stdout.
    Background,
}

/// Keeps the writer thread of [`Output::Background`]: dropping it writes out what is still
/// queued. Held by `main` until the process ends.
#[must_use]
pub struct Guard {
    _writer: Option<batched::WriterGuard>,
}

/// `RUST_LOG` overrides the default `info` level.
pub fn init(format: LogFormat, output: Output) -> Guard {
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    if format == LogFormat::Journald {
        match tracing_journald::layer() {
            // No prefix: the agent's field names (`comm`, `exe`, `server`, …) do not clash
            // with the journal's own (`MESSAGE`, `PRIORITY`, `CODE_*`, `_PID`, …).
            Ok(journald) => {
                tracing_subscriber::registry()
                    .with(filter())
                    .with(journald.with_field_prefix(None))
                    .init();
                return Guard { _writer: None };
            }
            Err(err) => {
                let guard = init(LogFormat::Json, output);
                tracing::warn!(error = %err, "journald is not reachable: logging JSON to stdout");
                return guard;
            }
        }
    }
    let (writer, guard) = match output {
        Output::Direct => (BoxMakeWriter::new(std::io::stdout), None),
        Output::Background => match batched::start(std::io::stdout()) {
            Ok((writer, guard)) => (BoxMakeWriter::new(writer), Some(guard)),
            // No thread to be had: write directly, as before.
            Err(_) => (BoxMakeWriter::new(std::io::stdout), None),
        },
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(writer);
    match format {
        // Event fields at the top level, so `orig_dst`, `pid`, … are plain keys.
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text | LogFormat::Journald => builder.init(),
    }
    Guard { _writer: guard }
}
