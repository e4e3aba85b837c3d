//! Fleet shipping of the audit trail to S3-compatible object storage (`[audit.ship]`).
//!
//! One host's Parquet files answer one host's questions; a fleet's security team queries
//! every host's trail in one place, and needs it to survive the host being wiped. Every
//! closed audit file is uploaded once, unchanged (its footer carries the chain ends and
//! the Ed25519 signature), to `PREFIX/host=<host>/dt=YYYY-MM-DD/<file>`, the hive layout
//! DuckDB, Athena and Trino prune by.
//!
//! - [`manifest`]: `DIR/ship-manifest.tsv`, what is confirmed shipped; survives restarts
//!   and keeps retention from deleting a file before it is in the bucket.
//! - [`s3`]: signed PUT (with `x-amz-checksum-sha256` and optional object-lock retention)
//!   and HEAD, over the Arrow project's `object_store` (credential chain, SigV4).
//! - [`task`]: the background loop: scan, upload oldest first, back off on failure.
//! - [`fleet`] and [`download`]: `audit verify` over a bucket or a synced copy of it,
//!   per host, against a pinned keyring.
//!
//! The request path never waits on shipping: the writer only calls [`file_closed`], which
//! wakes the shipper and returns.

pub mod download;
pub mod fleet;
pub mod manifest;
pub mod s3;
pub mod task;

use std::path::PathBuf;

use serde::Deserialize;
use tokio::sync::Notify;

pub use task::spawn;

/// Woken by the audit writer each time it closes a file.
static CLOSED: Notify = Notify::const_new();

/// The audit writer's hook at file close: wakes the shipper (if any) without waiting.
pub fn file_closed() {
    CLOSED.notify_one();
}

/// Resolves when a file was closed since the last call.
pub(crate) async fn closed() {
    CLOSED.notified().await;
}

/// `[audit.ship]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShipConfig {
    /// Bucket name.
    pub bucket: String,
    /// `http(s)://host:port` of an S3-compatible service (path-style requests); default
    /// AWS S3 in `region` (virtual-hosted style).
    pub endpoint: Option<String>,
    /// Default `us-east-1` (or `AWS_REGION`/`AWS_DEFAULT_REGION`).
    pub region: Option<String>,
    /// Key prefix before `host=`; default `gateway-audit`.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// This host's name in the bucket (`host=`); default the kernel's host name, which is
    /// also what the rows' `host` column holds.
    pub host: Option<String>,
    /// A TOML file with `access_key_id`, `secret_access_key` (and optional
    /// `session_token`). Re-read whenever it changes (rotated keys need no restart).
    /// Default: the standard AWS chain (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, web
    /// identity, instance metadata).
    pub credentials_file: Option<PathBuf>,
    /// The same TOML as a systemd credential (`LoadCredential=NAME:…`), read from
    /// `$CREDENTIALS_DIRECTORY/NAME`; instead of `credentials_file`.
    pub credentials_systemd: Option<String>,
    /// Object-lock retention in days for each uploaded object (the bucket must have
    /// object lock enabled); none by default.
    pub retain_days: Option<u32>,
    /// `governance` (default) or `compliance`.
    #[serde(default)]
    pub lock_mode: LockMode,
    /// Seconds between scans of the audit directory when nothing wakes the shipper.
    /// Default 30.
    #[serde(default = "default_scan_secs")]
    pub scan_secs: u64,
    /// Ceiling of the retry backoff (doubling from 1 s). Default 300.
    #[serde(default = "default_max_backoff")]
    pub max_backoff_secs: u64,
    /// Unshipped files above which every failed attempt logs at error level (the alarm).
    /// Default 24.
    #[serde(default = "default_backlog_alarm")]
    pub backlog_alarm: usize,
    /// Seconds one upload may take before it counts as failed. Default 120.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

/// S3 object-lock retention mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockMode {
    /// Users with `s3:BypassGovernanceRetention` may still delete.
    #[default]
    Governance,
    /// Nobody, root account included, can delete before the date.
    Compliance,
}

impl LockMode {
    pub fn as_header(self) -> &'static str {
        match self {
            Self::Governance => "GOVERNANCE",
            Self::Compliance => "COMPLIANCE",
        }
    }
}

fn default_prefix() -> String {
    "gateway-audit".into()
}
fn default_scan_secs() -> u64 {
    30
}
fn default_max_backoff() -> u64 {
    300
}
fn default_backlog_alarm() -> usize {
    24
}
fn default_timeout() -> u64 {
    120
}

impl ShipConfig {
    /// This host's partition name: configured, else the system host name. Only
    /// `[A-Za-z0-9._-]`, so it is one key segment and one hive partition value.
    pub fn host_name(&self) -> Result<String, String> {
        // The same name as the rows' `host` column, so partition and column agree.
        let host = match &self.host {
            Some(host) => host.clone(),
            None => crate::audit::record::local_host().to_owned(),
        };
        valid_segment(&host)
            .then_some(host.clone())
            .ok_or_else(|| format!("host {host:?}: use only letters, digits, '.', '_', '-'"))
    }

    /// The credentials file to sign with, if one is configured (a file, or a systemd
    /// credential resolved against `$CREDENTIALS_DIRECTORY`).
    pub fn credentials_path(&self) -> Result<Option<PathBuf>, String> {
        self.credentials_path_in(std::env::var_os("CREDENTIALS_DIRECTORY").as_deref())
    }

    fn credentials_path_in(
        &self,
        credentials_directory: Option<&std::ffi::OsStr>,
    ) -> Result<Option<PathBuf>, String> {
        match (&self.credentials_file, &self.credentials_systemd) {
            (Some(_), Some(_)) => {
                Err("set credentials_file or credentials_systemd, not both".into())
            }
            (Some(path), None) => Ok(Some(path.clone())),
            (None, Some(name)) => {
                if !valid_segment(name) {
                    return Err(format!(
                        "credentials_systemd {name:?} is not a credential name"
                    ));
                }
                let dir = credentials_directory.ok_or_else(|| {
                    format!(
                        "credentials_systemd {name:?}: $CREDENTIALS_DIRECTORY is not set (is \
                         LoadCredential= in the unit?)"
                    )
                })?;
                Ok(Some(PathBuf::from(dir).join(name)))
            }
            (None, None) => Ok(None),
        }
    }

    /// Problems `check` reports before the agent starts.
    pub fn validate(&self) -> Result<(), String> {
        if self.bucket.is_empty() {
            return Err("bucket is empty".into());
        }
        if self.credentials_file.is_some() && self.credentials_systemd.is_some() {
            return Err("set credentials_file or credentials_systemd, not both".into());
        }
        self.host_name()?;
        if !self
            .prefix
            .split('/')
            .all(|s| s.is_empty() || valid_segment(s))
        {
            return Err(format!(
                "prefix {:?}: use only letters, digits, '.', '_', '-', '/'",
                self.prefix
            ));
        }
        if let Some(endpoint) = &self.endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            return Err(format!(
                "endpoint {endpoint:?} must start with http:// or https://"
            ));
        }
        if self.retain_days == Some(0) {
            return Err("retain_days must be at least 1".into());
        }
        Ok(())
    }

    /// `PREFIX/host=<host>/dt=<day>/<file>`.
    pub fn key(&self, host: &str, day: &str, file: &str) -> String {
        let prefix = self.prefix.trim_matches('/');
        if prefix.is_empty() {
            format!("host={host}/dt={day}/{file}")
        } else {
            format!("{prefix}/host={host}/dt={day}/{file}")
        }
    }
}

fn valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// RFC 3339 UTC time of `secs` since the epoch (object-lock retain-until dates); the
/// epoch itself for a time the calendar cannot hold.
pub(crate) fn rfc3339(secs: i64) -> String {
    let t =
        time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests;
