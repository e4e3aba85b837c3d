//! The audit trail: one hash-chained row per MCP message or decision, written as
//! immutable, date-partitioned Parquet files that anyone can query with DuckDB, and a
//! verifier that names the first row someone changed, removed or reordered.
//!
//! - [`record`]: the row, its Arrow schema, and conversions.
//! - [`access`]: owner-only modes (or a reader group) for everything under the audit
//!   directory, whatever the umask.
//! - [`chain`]: the SHA-256 chain and its canonical row encoding (documented for
//!   independent verifiers).
//! - [`writer`]: rotation, `.tmp` + rename on close, chain continuity across restarts,
//!   retention.
//! - [`sign`]: Ed25519 signature of each closed file's chain ends.
//! - [`checkpoint`]: signed statements of the trail's head, logged at every rotation and
//!   periodically, that catch a cut-and-re-signed tail.
//! - [`mod@verify`]: recomputes every hash and link across all closed files, checks
//!   signatures.
//! - [`wal`]: the write-ahead log (CRC-framed segments) that makes a row durable before
//!   the MCP message it records is forwarded.
//! - [`sink`]: what the pipeline calls: group-committed fsync on a WAL thread, Parquet
//!   encoding on another, crash recovery on open.
//! - [`replay`]: `audit sessions` and `audit replay`, over closed files and
//!   ([`tail`]) the rows still only in the write-ahead log.
//!
//! The rows themselves are built in `http::audit_rows`, where the exchange knows what
//! each message is.

pub mod access;
pub mod chain;
pub mod checkpoint;
pub mod record;
pub mod replay;
pub mod sign;
pub mod sink;
pub mod tail;
pub mod verify;
pub mod wal;
pub mod writer;

use std::path::PathBuf;

use serde::Deserialize;

pub use record::{AuditRecord, Direction, Kind, PrincipalColumns};
pub use sink::{AuditSink, SinkError};
pub use verify::{VerifyError, VerifyReport, verify};
pub use writer::{AuditWriter, WriterError};

/// `[audit]` in the agent's config.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Where the Parquet files go (`dt=YYYY-MM-DD/audit-….parquet` below it). Default
    /// `/var/lib/gateway-agent/audit` (systemd's `StateDirectory=gateway-agent`).
    pub dir: PathBuf,
    /// A group allowed to read the trail (directories 2750, files 0640, of this group);
    /// `None` (the default): the agent's user only (directories 0700, files 0600).
    pub reader_group: Option<String>,
    /// The Ed25519 key that signs each closed file; never inside `dir`. Default: the
    /// systemd credential `audit-signing-key` when the unit passes one, else
    /// `<parent of dir>/keys/audit-signing.key` (see `sign`).
    pub signing_key: Option<PathBuf>,
    /// Minutes between restated signed checkpoints in the log (one is also logged each
    /// time a file is closed); 0: only at rotation. Default 15.
    pub checkpoint_minutes: u64,
    /// Auditing is on unless switched off here. Default `true`.
    pub enabled: bool,
    /// When the open file is closed and a new one started.
    pub rotation: RotationConfig,
    /// Closed files whose last write is older than this many days are deleted (by
    /// [`writer::delete_older_than`], which the agent runs periodically); `None` (the
    /// default) keeps everything.
    pub retention_days: Option<u32>,
    /// When `record` reports a row as recorded: `sync` (the default) once it is in the
    /// write-ahead log and fsynced, so a crash or power loss loses nothing that was
    /// answered; `interval` once it is queued, fsynced within `interval_ms` (a crash can
    /// lose up to that window of rows, for far fewer fsyncs).
    pub durability: Durability,
    /// `interval` mode's fsync period in milliseconds, which is also its documented loss
    /// window. Default 50.
    pub interval_ms: u64,
    /// Bytes after which the write-ahead log starts a new segment; a segment is deleted
    /// once all its rows are in closed Parquet files. Default 64 MiB.
    pub wal_segment_bytes: u64,
    /// `[audit.ship]`: upload every closed file to S3-compatible storage (see `ship`).
    pub ship: Option<crate::ship::ShipConfig>,
}

/// See [`AuditConfig::durability`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    #[default]
    Sync,
    Interval,
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
            reader_group: None,
            signing_key: None,
            checkpoint_minutes: 15,
            enabled: true,
            rotation: RotationConfig::default(),
            retention_days: None,
            durability: Durability::Sync,
            interval_ms: 50,
            wal_segment_bytes: 64 << 20,
            ship: None,
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
