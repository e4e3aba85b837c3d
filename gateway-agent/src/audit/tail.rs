//! The trail's newest rows, read from the write-ahead log, so `audit sessions` and `audit
//! replay` see a session within moments of its messages instead of when the open Parquet
//! file is closed (rotation: up to `max_age_secs`, an hour by default).
//!
//! Why the WAL tail rather than closing small files often and compacting them later: every
//! row is already durable and fsynced there before the traffic it records moves on, so
//! reading it adds no write, no fsync, no second copy of the trail and no compaction step
//! that would have to re-sign and re-link files (and could itself be a way to rewrite
//! history). Closed Parquet files stay what they are: immutable, hash-chained, signed.
//! The cost: these rows are not chained or signed yet (their hashes are computed when
//! they reach Parquet), so `audit verify` still covers closed files only, and engines that
//! read Parquet directly (DuckDB) see them once their file is closed.
//!
//! Reading is a snapshot while the agent writes: a frame being written ends the read at
//! the last whole one (never misread), and a segment retired between listing and reading
//! is skipped (its rows are in a closed file by then).

use std::path::Path;

use super::{
    record::AuditRecord,
    wal::{self, WalError},
};

/// Rows in the write-ahead log under `dir` with a sequence number above `closed_seq` (the
/// newest one already in a closed file that was read), in log order.
pub fn wal_tail(dir: &Path, closed_seq: u64) -> Result<Vec<AuditRecord>, WalError> {
    let mut rows = Vec::new();
    for segment in wal::segments(&wal::wal_dir(dir))? {
        let read = wal::read_segment(&segment.path, |seq, row| {
            if seq > closed_seq {
                rows.push(row);
            }
            true
        });
        match read {
            Ok(_) => {}
            Err(WalError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(rows)
}
