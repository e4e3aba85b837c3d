//! Checks an audit directory end to end and names the first place the trail was broken.
//!
//! Closed files are walked in chain order (by name). For every row: its `prev_hash` must
//! be the previous row's `hash` (across files too), and its `hash` must be the recomputed
//! [`chain::row_hash`]. Each file's footer metadata must agree with its rows. What each
//! failure means:
//! - [`VerifyError::RowHash`]: the row's content was changed.
//! - [`VerifyError::Link`] inside a file: a row before it was removed, or rows reordered.
//! - [`VerifyError::FileLink`]: a file between this one and the previous was removed, or
//!   files were renamed out of order.
//! - [`VerifyError::Metadata`]: rows removed from the end, or the footer rewritten.
//! - [`VerifyError::Unreadable`]: truncated or corrupt file.
//! - [`VerifyError::Signature`]: with `audit-signing.pub` in the directory, a file whose
//!   footer was rewritten to match cut-off rows (see `sign`).
//!
//! Limits: the first file may start after genesis (retention deleted older files), so
//! removing the oldest whole files, or the newest, is not detectable from the directory
//! alone; keeping the newest hash (and the public key) off the host closes that gap.

use std::{
    fs::File,
    path::{Path, PathBuf},
};

use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::{
    chain::{self, GENESIS},
    record, sign,
    writer::{self, META_FIRST_PREV, META_LAST_HASH, META_ROWS, META_SIGNATURE},
};

/// What a successful verification covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub files: usize,
    pub rows: u64,
    /// `prev_hash` of the oldest row present: [`GENESIS`] unless retention removed files.
    pub first_prev_hash: [u8; 32],
    /// Hash of the newest row (what the next row will link to).
    pub last_hash: [u8; 32],
    /// Every file's signature was checked against the directory's `audit-signing.pub`
    /// (false: the directory has no public key, so none were).
    pub signed: bool,
}

impl VerifyReport {
    /// The trail starts at the very first row ever written.
    pub fn from_genesis(&self) -> bool {
        self.first_prev_hash == GENESIS
    }
}

impl std::fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "audit trail intact: {} files, {} rows, last hash {}",
            self.files,
            self.rows,
            chain::to_hex(&self.last_hash)
        )?;
        if !self.from_genesis() {
            write!(
                f,
                " (starts after older files were removed, at prev_hash {})",
                chain::to_hex(&self.first_prev_hash)
            )?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("cannot read audit directory {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}: unreadable (truncated or corrupt): {problem}")]
    Unreadable { file: PathBuf, problem: String },
    #[error("{file}: row {row}: {problem}")]
    BadRow {
        file: PathBuf,
        row: u64,
        problem: String,
    },
    #[error("{file}: row {row}: content does not match its hash (the row was modified)")]
    RowHash { file: PathBuf, row: u64 },
    #[error(
        "{file}: row {row}: prev_hash does not link to row {} (a row was removed or rows \
         were reordered)", row - 1
    )]
    Link { file: PathBuf, row: u64 },
    #[error(
        "{file}: first row does not continue {} (a file is missing from the chain or files \
         are out of order)", previous.display()
    )]
    FileLink { file: PathBuf, previous: PathBuf },
    #[error("{file}: metadata {key}: {problem}")]
    Metadata {
        file: PathBuf,
        key: &'static str,
        problem: String,
    },
    #[error("{file}: signature of the chain ends {problem} (footer rewritten or rows cut off)")]
    Signature {
        file: PathBuf,
        problem: &'static str,
    },
    #[error("{path}: {problem}")]
    Key { path: PathBuf, problem: String },
    #[error("{dir}: no closed audit files")]
    Empty { dir: PathBuf },
}

impl VerifyError {
    /// The file named by the error, if it is about one.
    pub fn file(&self) -> Option<&Path> {
        match self {
            Self::Unreadable { file, .. }
            | Self::BadRow { file, .. }
            | Self::RowHash { file, .. }
            | Self::Link { file, .. }
            | Self::FileLink { file, .. }
            | Self::Metadata { file, .. }
            | Self::Signature { file, .. } => Some(file),
            Self::Io { .. } | Self::Key { .. } | Self::Empty { .. } => None,
        }
    }
}

/// Verifies every closed file under `dir`. `.tmp` files (still open, or left by a crash)
/// are not part of the trail and are ignored.
pub fn verify(dir: &Path) -> Result<VerifyReport, VerifyError> {
    verify_pinned(dir, None)
}

/// [`verify`] against `pinned`, a public key kept away from the trail (`audit verify
/// --pubkey`), instead of the directory's own `audit-signing.pub`: a file signed by any
/// other key fails, named.
pub fn verify_pinned(
    dir: &Path,
    pinned: Option<ed25519_dalek::VerifyingKey>,
) -> Result<VerifyReport, VerifyError> {
    let key = match pinned {
        Some(key) => Some(key),
        None => sign::pinned_key(dir).map_err(|problem| VerifyError::Key {
            path: dir.join(sign::PUB_FILE),
            problem,
        })?,
    };
    verify_with_key(dir, key)
}

/// [`verify`] with signatures checked against `key` (none: not checked), e.g. a fleet's
/// pinned keyring for copies shipped off the host.
pub fn verify_with_key(
    dir: &Path,
    key: Option<ed25519_dalek::VerifyingKey>,
) -> Result<VerifyReport, VerifyError> {
    let files = writer::closed_files(dir).map_err(|source| VerifyError::Io {
        path: dir.to_owned(),
        source,
    })?;
    if files.is_empty() {
        return Err(VerifyError::Empty {
            dir: dir.to_owned(),
        });
    }
    let mut report = VerifyReport {
        files: files.len(),
        rows: 0,
        first_prev_hash: GENESIS,
        last_hash: GENESIS,
        signed: key.is_some(),
    };
    let mut previous: Option<&Path> = None;
    for file in &files {
        let expected = previous.map(|_| report.last_hash);
        let (first_prev, last, rows) = guarded(&file.path, || {
            verify_file(&file.path, expected, previous, key.as_ref())
        })?;
        if previous.is_none() {
            report.first_prev_hash = first_prev;
        }
        report.last_hash = last;
        report.rows += rows;
        previous = Some(&file.path);
    }
    Ok(report)
}

/// The Parquet and Arrow readers can panic on some corrupt inputs (an out-of-bounds
/// offset in a damaged page) instead of returning an error; a damaged file must be
/// reported as damaged, not abort the verifier.
fn guarded<T>(
    path: &Path,
    check: impl FnOnce() -> Result<T, VerifyError>,
) -> Result<T, VerifyError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(check)).unwrap_or_else(|panic| {
        let problem = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "reader panicked".into());
        Err(VerifyError::Unreadable {
            file: path.to_owned(),
            problem,
        })
    })
}

/// One file: returns (first prev_hash, last hash, rows). `expected` is the hash its first
/// row must link to (`None` for the oldest file, which anchors the chain).
fn verify_file(
    path: &Path,
    expected: Option<[u8; 32]>,
    previous: Option<&Path>,
    key: Option<&ed25519_dalek::VerifyingKey>,
) -> Result<([u8; 32], [u8; 32], u64), VerifyError> {
    let unreadable = |problem: String| VerifyError::Unreadable {
        file: path.to_owned(),
        problem,
    };
    let file = File::open(path).map_err(|e| unreadable(e.to_string()))?;
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| unreadable(e.to_string()))?;
    let metadata: Vec<(String, Option<String>)> = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .map(|kv| {
            kv.iter()
                .map(|kv| (kv.key.clone(), kv.value.clone()))
                .collect()
        })
        .unwrap_or_default();
    let reader = builder.build().map_err(|e| unreadable(e.to_string()))?;

    let mut first_prev = None;
    let mut prev = expected;
    let mut row: u64 = 0;
    for batch in reader {
        let batch = batch.map_err(|e| unreadable(e.to_string()))?;
        let rows = record::from_batch(&batch).map_err(|e| VerifyError::BadRow {
            file: path.to_owned(),
            row,
            problem: e.to_string(),
        })?;
        for r in rows {
            if let Some(prev) = prev
                && r.prev_hash != prev
            {
                return Err(match (row, previous) {
                    (0, Some(previous)) => VerifyError::FileLink {
                        file: path.to_owned(),
                        previous: previous.to_owned(),
                    },
                    _ => VerifyError::Link {
                        file: path.to_owned(),
                        row,
                    },
                });
            }
            if chain::row_hash(&r) != r.hash {
                return Err(VerifyError::RowHash {
                    file: path.to_owned(),
                    row,
                });
            }
            first_prev.get_or_insert(r.prev_hash);
            prev = Some(r.hash);
            row += 1;
        }
    }
    let (Some(first_prev), Some(last)) = (first_prev, prev.filter(|_| row > 0)) else {
        return Err(unreadable(
            "no rows (closed audit files are never empty)".into(),
        ));
    };

    let meta = |key: &'static str| {
        metadata
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.clone())
            .ok_or_else(|| VerifyError::Metadata {
                file: path.to_owned(),
                key,
                problem: "missing".into(),
            })
    };
    let mismatch = |key: &'static str, what: &str| VerifyError::Metadata {
        file: path.to_owned(),
        key,
        problem: format!("does not match the rows ({what})"),
    };
    if chain::from_hex(&meta(META_FIRST_PREV)?) != Some(first_prev) {
        return Err(mismatch(META_FIRST_PREV, "rows removed from the start?"));
    }
    if chain::from_hex(&meta(META_LAST_HASH)?) != Some(last) {
        return Err(mismatch(META_LAST_HASH, "rows removed from the end?"));
    }
    if meta(META_ROWS)?.parse::<u64>().ok() != Some(row) {
        return Err(mismatch(META_ROWS, "rows added or removed"));
    }
    if let Some(key) = key {
        let signature = |problem| VerifyError::Signature {
            file: path.to_owned(),
            problem,
        };
        let sig = meta(META_SIGNATURE).map_err(|_| signature("is missing"))?;
        if !sign::check(key, &first_prev, &last, row, &sig) {
            return Err(signature("does not verify with the pinned key"));
        }
    }
    Ok((first_prev, last, row))
}
