//! `gateway-agent audit verify` over a fleet: a bucket (`--s3 s3://BUCKET/PREFIX`) or a
//! synced copy of it (`--dir`), laid out `host=<host>/dt=<day>/<file>`.
//!
//! Each host's files are one chain, verified like a local directory (every row hash and
//! link, footers), with signatures checked against that host's key from a pinned keyring
//! (`--keyring`: lines `<host> <hex Ed25519 public key>`, `#` comments), never a key found
//! next to the files: whoever can replace objects can replace a key beside them. Reported
//! per host: files, rows, first/last row time, gaps (sequence numbers missing between
//! files, or a chain that does not link), and files signed by an unexpected key.

use std::{
    collections::BTreeMap,
    fmt,
    fs::{self, File},
    path::{Path, PathBuf},
};

use ed25519_dalek::VerifyingKey;
use parquet::file::{
    reader::FileReader as _, serialized_reader::SerializedFileReader, statistics::Statistics,
};

use crate::audit::{VerifyError, verify::verify_with_key, writer::closed_files};

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("keyring {path} line {line}: {problem}")]
    Keyring {
        path: PathBuf,
        line: usize,
        problem: String,
    },
    #[error("{0}: no host=<name> directories (not a fleet copy)")]
    NoHosts(PathBuf),
    #[error("{0}")]
    S3(String),
}

/// Each host's pinned public key.
#[derive(Debug, Default)]
pub struct Keyring(BTreeMap<String, VerifyingKey>);

impl Keyring {
    pub fn load(path: &Path) -> Result<Self, FleetError> {
        let text = fs::read_to_string(path).map_err(|source| FleetError::Io {
            path: path.to_owned(),
            source,
        })?;
        let mut keys = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |problem: &str| FleetError::Keyring {
                path: path.to_owned(),
                line: i + 1,
                problem: problem.to_owned(),
            };
            let (host, key) = line
                .split_once(char::is_whitespace)
                .ok_or_else(|| bad("expected `<host> <hex public key>`"))?;
            let bytes: [u8; 32] = crate::audit::chain::from_hex(key.trim())
                .ok_or_else(|| bad("not a 32-byte hex Ed25519 public key"))?;
            let key = VerifyingKey::from_bytes(&bytes).map_err(|e| bad(&e.to_string()))?;
            if keys.insert(host.to_owned(), key).is_some() {
                return Err(bad("host listed twice"));
            }
        }
        Ok(Self(keys))
    }
}

/// One host's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostReport {
    pub host: String,
    pub files: usize,
    pub rows: u64,
    /// Microseconds since the epoch of the oldest and newest row.
    pub first_us: Option<i64>,
    pub last_us: Option<i64>,
    /// What is wrong, each naming the file; empty when the host's trail is intact.
    pub problems: Vec<String>,
}

impl fmt::Display for HostReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let time =
            |us: Option<i64>| us.map_or("-".into(), |us| super::rfc3339(us.div_euclid(1_000_000)));
        write!(
            f,
            "host={}: {} files, {} rows, {} .. {}: ",
            self.host,
            self.files,
            self.rows,
            time(self.first_us),
            time(self.last_us)
        )?;
        if self.problems.is_empty() {
            write!(f, "intact")
        } else {
            write!(f, "FAILED: {}", self.problems.join("; "))
        }
    }
}

/// Verifies every `host=*` directory under `root`.
pub fn verify_dir(root: &Path, keyring: Option<&Keyring>) -> Result<Vec<HostReport>, FleetError> {
    let io = |source| FleetError::Io {
        path: root.to_owned(),
        source,
    };
    let mut hosts = Vec::new();
    for entry in fs::read_dir(root).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(host) = name.strip_prefix("host=")
            && entry.file_type().map_err(io)?.is_dir()
        {
            hosts.push((host.to_owned(), entry.path()));
        }
    }
    if hosts.is_empty() {
        return Err(FleetError::NoHosts(root.to_owned()));
    }
    hosts.sort();
    hosts
        .into_iter()
        .map(|(host, dir)| verify_host(&host, &dir, keyring))
        .collect()
}

fn verify_host(
    host: &str,
    dir: &Path,
    keyring: Option<&Keyring>,
) -> Result<HostReport, FleetError> {
    let files = closed_files(dir).map_err(|source| FleetError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let mut report = HostReport {
        host: host.to_owned(),
        files: files.len(),
        rows: 0,
        first_us: None,
        last_us: None,
        problems: Vec::new(),
    };
    // A sequence number missing between two files is a file missing from the chain
    // (numbers continue across restarts; retention only removes the oldest).
    for pair in files.windows(2) {
        if pair[1].seq != pair[0].seq + 1 {
            report.problems.push(format!(
                "gap: {} missing file(s) (seq {}..{}) before {}",
                pair[1].seq.saturating_sub(pair[0].seq + 1),
                pair[0].seq + 1,
                pair[1].seq.saturating_sub(1),
                pair[1].path.display()
            ));
        }
    }
    for file in &files {
        if let Some((first, last)) = time_range(&file.path) {
            report.first_us = Some(report.first_us.map_or(first, |t| t.min(first)));
            report.last_us = Some(report.last_us.map_or(last, |t| t.max(last)));
        }
    }
    let key = match keyring {
        None => None,
        Some(keyring) => match keyring.0.get(host) {
            Some(key) => Some(*key),
            None => {
                report.problems.push(format!(
                    "host {host} is not in the keyring: its signatures cannot be checked"
                ));
                None
            }
        },
    };
    match verify_with_key(dir, key) {
        Ok(verified) => report.rows = verified.rows,
        Err(VerifyError::Signature { file, .. }) => report.problems.push(format!(
            "{}: signed by an unexpected key (not host {host}'s pinned key), or its footer was rewritten",
            file.display()
        )),
        Err(err) => report.problems.push(err.to_string()),
    }
    if report.rows == 0 {
        report.rows = files.iter().map(|f| footer_rows(&f.path)).sum();
    }
    Ok(report)
}

/// Min and max of the `time` column from the footer's statistics (no row is read).
fn time_range(path: &Path) -> Option<(i64, i64)> {
    let reader =
        std::panic::catch_unwind(|| SerializedFileReader::new(File::open(path).ok()?).ok())
            .ok()
            .flatten()?;
    let mut range: Option<(i64, i64)> = None;
    for group in reader.metadata().row_groups() {
        if let Some(Statistics::Int64(stats)) = group.column(0).statistics() {
            let (Some(&min), Some(&max)) = (stats.min_opt(), stats.max_opt()) else {
                continue;
            };
            range = Some(range.map_or((min, max), |(a, b)| (a.min(min), b.max(max))));
        }
    }
    range
}

/// Rows a file's footer claims (for the report when verification stopped early).
fn footer_rows(path: &Path) -> u64 {
    std::panic::catch_unwind(|| {
        SerializedFileReader::new(File::open(path).ok()?)
            .ok()
            .map(|r| r.metadata().file_metadata().num_rows() as u64)
    })
    .ok()
    .flatten()
    .unwrap_or(0)
}
