//! The shipper: a tokio task that uploads closed audit files oldest first, records each
//! confirmed upload in the manifest, and backs off (doubling from 1 s to
//! `max_backoff_secs`) while the bucket is unreachable or refusing. Files wait where the
//! writer left them, so an outage queues nothing in memory; the backlog is the closed
//! files not yet in the manifest, logged at error level once it passes `backlog_alarm`
//! and published as a metric.

use std::{
    path::{Path, PathBuf},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use super::{
    ShipConfig,
    manifest::{self, Manifest},
    s3::{Bucket, S3Error, hex},
};
use crate::audit::writer::{ClosedFile, closed_files};

/// Largest object a single PUT may carry (S3's limit); larger files are not shipped.
const MAX_OBJECT: u64 = 5 << 30;

#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    #[error("[audit.ship]: {0}")]
    Config(String),
    #[error("{0}")]
    S3(#[from] S3Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is {size} bytes, over the 5 GiB a single upload may carry; lower \
         [audit.rotation] max_bytes"
    )]
    TooLarge { path: PathBuf, size: u64 },
    #[error(
        "{key} already exists in the bucket with different content (sha256 {found}, this \
         file {ours}); two hosts share a host name, or the object was replaced"
    )]
    Conflict {
        key: String,
        found: String,
        ours: String,
    },
}

impl ShipError {
    /// One word for the log's `kind` field: what class of problem stops shipping.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Config(_) => "config",
            Self::S3(err) => err.kind(),
            Self::Io { .. } => "local_io",
            Self::TooLarge { .. } => "too_large",
            Self::Conflict { .. } => "conflict",
        }
    }
}

/// Checks the config, creates the manifest (so retention keeps unshipped files from
/// now on) and starts the shipper for `dir`.
pub fn spawn(dir: PathBuf, config: ShipConfig) -> Result<JoinHandle<()>, ShipError> {
    config.validate().map_err(ShipError::Config)?;
    let host = config.host_name().map_err(ShipError::Config)?;
    let bucket = Bucket::new(&config)?;
    let manifest_path = dir.join(manifest::FILE);
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&manifest_path)
        .map_err(|source| ShipError::Io {
            path: manifest_path,
            source,
        })?;
    info!(bucket = %config.bucket, prefix = %config.prefix, %host, "audit shipping on");
    Ok(tokio::spawn(run(dir, config, host, bucket)))
}

async fn run(dir: PathBuf, config: ShipConfig, host: String, bucket: Bucket) {
    let mut failures: u32 = 0;
    let mut backlog = 0usize;
    loop {
        match pass(&dir, &config, &host, &bucket, &mut backlog).await {
            Ok(shipped) => {
                if failures > 0 {
                    info!(shipped, "audit shipping resumed");
                }
                failures = 0;
            }
            Err(err) => {
                failures = failures.saturating_add(1);
                crate::metrics::get().ship_failed();
                let retry_secs = backoff(failures, config.max_backoff_secs).as_secs();
                if backlog > config.backlog_alarm {
                    error!(error = %err, kind = err.kind(), backlog, retry_secs, alarm = config.backlog_alarm, "audit shipping backlog over its alarm: files are kept locally until shipped");
                } else {
                    warn!(error = %err, kind = err.kind(), backlog, retry_secs, "audit shipping failed; files stay queued locally and are retried");
                }
            }
        }
        let wait = if failures > 0 {
            backoff(failures, config.max_backoff_secs)
        } else {
            Duration::from_secs(config.scan_secs.max(1))
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            // A new file does not cut a backoff short: the endpoint is still down.
            () = super::closed(), if failures == 0 => {}
        }
    }
}

/// 1 s, 2 s, 4 s … up to `max_secs`.
pub(crate) fn backoff(failures: u32, max_secs: u64) -> Duration {
    let secs = 1u64 << failures.saturating_sub(1).min(20);
    Duration::from_secs(secs.min(max_secs.max(1)))
}

/// Ships every closed file not yet in the manifest, oldest first; stops at the first
/// failure so order is kept. Returns how many it shipped.
async fn pass(
    dir: &Path,
    config: &ShipConfig,
    host: &str,
    bucket: &Bucket,
    backlog: &mut usize,
) -> Result<usize, ShipError> {
    let (mut manifest, pending) = {
        let dir = dir.to_owned();
        tokio::task::spawn_blocking(move || -> Result<_, ShipError> {
            let io = |source| ShipError::Io {
                path: dir.clone(),
                source,
            };
            let manifest = Manifest::load(&dir).map_err(io)?;
            let files = closed_files(&dir).map_err(io)?;
            let pending: Vec<ClosedFile> = files
                .into_iter()
                .filter(|f| relative(&dir, &f.path).is_some_and(|r| !manifest.contains(&r)))
                .collect();
            Ok((manifest, pending))
        })
        .await
        .map_err(|e| ShipError::Config(format!("scan task: {e}")))??
    };
    *backlog = pending.len();
    crate::metrics::get().ship_backlog(*backlog);
    let mut shipped = 0;
    for file in pending {
        let Some(relative) = relative(dir, &file.path) else {
            continue;
        };
        let (key, sha) = ship_one(config, host, bucket, &file.path).await?;
        // The append is fsynced: blocking I/O, off the runtime's workers.
        let entry = (relative.clone(), key.clone());
        let (returned, recorded) = tokio::task::spawn_blocking(move || {
            let recorded = manifest.record(&entry.0, &sha, &entry.1);
            (manifest, recorded)
        })
        .await
        .map_err(|e| ShipError::Config(format!("manifest task: {e}")))?;
        manifest = returned;
        recorded.map_err(|source| ShipError::Io {
            path: dir.join(manifest::FILE),
            source,
        })?;
        shipped += 1;
        *backlog -= 1;
        crate::metrics::get().ship_backlog(*backlog);
        crate::metrics::get().ship_uploaded();
        info!(file = %relative, %key, "audit file shipped");
    }
    Ok(shipped)
}

/// Uploads one file unless the same bytes are already under its key (a crash between
/// upload and manifest); returns (key, sha256 hex).
async fn ship_one(
    config: &ShipConfig,
    host: &str,
    bucket: &Bucket,
    path: &Path,
) -> Result<(String, String), ShipError> {
    let io = |source| ShipError::Io {
        path: path.to_owned(),
        source,
    };
    let size = tokio::fs::metadata(path).await.map_err(io)?.len();
    if size > MAX_OBJECT {
        return Err(ShipError::TooLarge {
            path: path.to_owned(),
            size,
        });
    }
    let body = Bytes::from(tokio::fs::read(path).await.map_err(io)?);
    let sha: [u8; 32] = Sha256::digest(&body).into();
    let sha_hex = hex(&sha);
    let day = path
        .parent()
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("dt="))
        .unwrap_or("unknown");
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let key = config.key(host, day, name);
    match bucket.head_sha256(&key).await? {
        Some(found) if found == sha_hex => return Ok((key, sha_hex)),
        Some(found) => {
            return Err(ShipError::Conflict {
                key,
                found,
                ours: sha_hex,
            });
        }
        None => {}
    }
    let retain = config.retain_days.map(|days| {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        (
            config.lock_mode.as_header(),
            super::rfc3339(now + i64::from(days) * 86_400),
        )
    });
    bucket.put(&key, body, &sha, retain).await?;
    Ok((key, sha_hex))
}

fn relative(dir: &Path, path: &Path) -> Option<String> {
    path.strip_prefix(dir).ok()?.to_str().map(str::to_owned)
}
