//! The audit trail: one hash-chained row per MCP message or decision, written as
//! immutable, date-partitioned Parquet files that anyone can query with DuckDB, and a
//! verifier that names the first row someone changed, removed or reordered.
//!
//! - [`record`]: the row, its Arrow schema, and conversions.
//! - [`chain`]: the SHA-256 chain and its canonical row encoding (documented for
//!   independent verifiers).
//! - [`writer`]: rotation, `.tmp` + rename on close, chain continuity across restarts,
//!   retention.
//! - [`sign`]: Ed25519 signature of each closed file's chain ends.
//! - [`mod@verify`]: recomputes every hash and link across all closed files, checks
//!   signatures.
//!
//! Not here yet (issue 5): the write-ahead log with group commit and durability modes,
//! wiring into the HTTP pipeline, replay/sessions CLI.

pub mod chain;
pub mod record;
pub mod sign;
pub mod verify;
pub mod writer;

use std::path::PathBuf;

use serde::Deserialize;

pub use record::{AuditRecord, Direction, Kind, PrincipalColumns};
pub use verify::{VerifyError, VerifyReport, verify};
pub use writer::{AuditWriter, WriterError};

/// `[audit]` in the agent's config.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Where the Parquet files go (`dt=YYYY-MM-DD/audit-….parquet` below it). Default
    /// `/var/lib/gateway-agent/audit` (systemd's `StateDirectory=gateway-agent`).
    pub dir: PathBuf,
    /// Auditing is on unless switched off here. Default `true`.
    pub enabled: bool,
    /// When the open file is closed and a new one started.
    pub rotation: RotationConfig,
    /// Closed files whose last write is older than this many days are deleted (by
    /// [`writer::delete_older_than`], which the agent runs periodically); `None` (the
    /// default) keeps everything.
    pub retention_days: Option<u32>,
}

/// A file is closed when any limit is reached, so files stay small enough to copy and
/// query, and a quiet agent still publishes what it recorded within `max_age_secs`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RotationConfig {
    /// Rows per file. Default 1 000 000.
    pub max_rows: u64,
    /// Approximate bytes per file (compressed, as written). Default 128 MiB.
    pub max_bytes: u64,
    /// Seconds a file stays open. Default 3600.
    pub max_age_secs: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("/var/lib/gateway-agent/audit"),
            enabled: true,
            rotation: RotationConfig::default(),
            retention_days: None,
        }
    }
}

impl Default for RotationConfig {
    fn default() -> Self {
        Self {
            max_rows: 1_000_000,
            max_bytes: 128 << 20,
            max_age_secs: 3600,
        }
    }
}

#[cfg(test)]
mod tests;
