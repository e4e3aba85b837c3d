//! `gateway-agent status`: is interception on, is an agent behind it, how far behind is
//! the audit trail. Two sources, because either may be missing:
//!
//! - the pins in bpffs (they outlive the agent: interception on with no agent means
//!   connections are refused), read by [`crate::intercept::inspect`];
//! - the running agent's status file (`[status] file`, in the runtime directory), written
//!   when interception is active and removed on a clean stop. It names the agent's pid and
//!   its kernel start time, so a file left by a crash (or a pid reused since) is not
//!   mistaken for a live agent.
//!
//! The audit backlog is read from the write-ahead log on disk, so it is known while the
//! agent is down too (the next start closes it into Parquet).

mod record;
mod render;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use record::{AgentRecord, remove, write};
pub use render::{Health, Report, exit_code};

/// `[status]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatusConfig {
    /// The running agent's status file (JSON), read by `gateway-agent status`.
    pub file: PathBuf,
}

impl Default for StatusConfig {
    fn default() -> Self {
        Self {
            file: PathBuf::from("/run/gateway-agent/status.json"),
        }
    }
}

/// Not-yet-closed audit rows, as the write-ahead log on disk holds them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AuditBacklog {
    pub wal_segments: usize,
    pub wal_bytes: u64,
}

/// The audit WAL under `audit_dir` (empty when there is none).
pub fn audit_backlog(audit_dir: &Path) -> AuditBacklog {
    let segments =
        crate::audit::wal::segments(&crate::audit::wal::wal_dir(audit_dir)).unwrap_or_default();
    AuditBacklog {
        wal_segments: segments.len(),
        wal_bytes: segments
            .iter()
            .filter_map(|s| std::fs::metadata(&s.path).ok())
            .map(|m| m.len())
            .sum(),
    }
}
