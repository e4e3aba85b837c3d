//! Signed checkpoints: the trail's state (newest closed row's hash, rows up to it, time)
//! logged where an intruder on the host cannot take it back (the journal, shipped off the
//! host), so a trail whose tail was cut and whose last file was re-signed is caught by
//! comparing it with the last checkpoint seen elsewhere.
//!
//! Per-file signatures cannot catch that when the intruder holds the key; a checkpoint
//! that already left the host can: its head hash must still be in the trail, as the row
//! numbered `rows`. One is logged each time a file is closed and every
//! `[audit] checkpoint_minutes` (the same state restated, with a fresh time, so a silence
//! is visible too), as the `audit checkpoint` line with a `checkpoint` field:
//!
//! `gwcp1:<rows>:<head hash hex>:<unix seconds>:<Ed25519 signature hex>`
//!
//! signed over `"GWAUDIT1 checkpoint"` ‖ head (32 bytes) ‖ rows (u64 LE) ‖ seconds (u64 LE)
//! by the trail's signing key. `audit verify --checkpoint LINE_OR_FILE` takes a log line
//! or a file of them (the newest checkpoint found counts).

use std::{
    fs::File,
    io::Read as _,
    path::Path,
    sync::LazyLock,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use parquet::file::reader::{FileReader as _, SerializedFileReader};

use super::{
    chain,
    sign::{hex, unhex},
    writer::{self, META_ROWS},
};

const PREFIX: &str = "gwcp1";
/// What `--checkpoint FILE` reads at most (a journal export can be long; only the newest
/// checkpoint in it counts).
const MAX_FILE: u64 = 256 << 20;

static TOKEN: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"gwcp1:[0-9]{1,20}:[0-9a-f]{64}:[0-9]{1,20}:[0-9a-f]{128}")
        .expect("valid regex")
});

/// One checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Rows in closed files up to and including `head`.
    pub rows: u64,
    pub head: [u8; 32],
    /// Unix seconds when it was taken.
    pub time: u64,
    pub signature: [u8; 64],
}

fn message(head: &[u8; 32], rows: u64, time: u64) -> Vec<u8> {
    let mut message = b"GWAUDIT1 checkpoint".to_vec();
    message.extend_from_slice(head);
    message.extend_from_slice(&rows.to_le_bytes());
    message.extend_from_slice(&time.to_le_bytes());
    message
}

impl Checkpoint {
    pub fn sign(key: &SigningKey, head: [u8; 32], rows: u64, time: u64) -> Self {
        let signature = key.sign(&message(&head, rows, time)).to_bytes();
        Self {
            rows,
            head,
            time,
            signature,
        }
    }

    /// The newest checkpoint token in `text`, if any.
    pub fn find_last(text: &str) -> Option<Result<Self, String>> {
        TOKEN.find_iter(text).last().map(|m| m.as_str().parse())
    }

    pub fn verifies_with(&self, key: &VerifyingKey) -> bool {
        key.verify_strict(
            &message(&self.head, self.rows, self.time),
            &Signature::from_bytes(&self.signature),
        )
        .is_ok()
    }
}

impl std::fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{PREFIX}:{}:{}:{}:{}",
            self.rows,
            chain::to_hex(&self.head),
            self.time,
            hex(&self.signature)
        )
    }
}

impl std::str::FromStr for Checkpoint {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.trim().split(':').collect();
        let [PREFIX, rows, head, time, signature] = parts[..] else {
            return Err(format!("not a {PREFIX} checkpoint"));
        };
        Ok(Self {
            rows: rows.parse().map_err(|_| "bad row count")?,
            head: chain::from_hex(head).ok_or("bad head hash")?,
            time: time.parse().map_err(|_| "bad time")?,
            signature: unhex(signature)
                .and_then(|b| b.try_into().ok())
                .ok_or("bad signature")?,
        })
    }
}

/// When the writer logs checkpoints, and the closed state they describe.
pub struct Schedule {
    every: Option<Duration>,
    last: Instant,
    rows: u64,
    head: [u8; 32],
}

impl Schedule {
    /// `rows` and `head`: the closed files' state when the writer opened.
    pub fn new(minutes: u64, rows: u64, head: [u8; 32]) -> Self {
        Self {
            every: (minutes > 0).then(|| Duration::from_secs(minutes * 60)),
            last: Instant::now(),
            rows,
            head,
        }
    }

    /// A file with `rows` rows ending at `head` was closed: log the new state.
    pub fn closed(&mut self, key: &SigningKey, rows: u64, head: [u8; 32]) {
        self.rows += rows;
        self.head = head;
        self.emit(key);
    }

    /// Restates the state when the period has passed.
    pub fn tick(&mut self, key: &SigningKey) {
        if self.every.is_some_and(|every| self.last.elapsed() >= every) {
            self.emit(key);
        }
    }

    fn emit(&mut self, key: &SigningKey) {
        self.last = Instant::now();
        if self.rows == 0 {
            return;
        }
        let time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let checkpoint = Checkpoint::sign(key, self.head, self.rows, time);
        tracing::info!(
            checkpoint = %checkpoint,
            rows = self.rows,
            head = %chain::to_hex(&self.head),
            "audit checkpoint"
        );
    }
}

/// Rows in closed files under `dir`, from their footers.
pub fn closed_rows(dir: &Path) -> Result<u64, String> {
    let mut rows = 0u64;
    for file in writer::closed_files(dir).map_err(|e| e.to_string())? {
        let path = &file.path;
        let count = std::panic::catch_unwind(|| -> Result<u64, String> {
            let reader = SerializedFileReader::new(File::open(path).map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?;
            reader
                .metadata()
                .file_metadata()
                .key_value_metadata()
                .and_then(|kv| kv.iter().find(|kv| kv.key == META_ROWS))
                .and_then(|kv| kv.value.as_deref()?.parse().ok())
                .ok_or_else(|| format!("no {META_ROWS}"))
        })
        .unwrap_or_else(|_| Err("the Parquet reader panicked".into()))
        .map_err(|problem| format!("{}: {problem}", path.display()))?;
        rows += count;
    }
    Ok(rows)
}

/// The checkpoint `arg` names: a file holding log lines (the newest checkpoint in it), or
/// a line itself.
pub fn load(arg: &str) -> Result<Checkpoint, String> {
    let path = Path::new(arg);
    let text = if !arg.contains(PREFIX) && path.is_file() {
        let mut text = String::new();
        File::open(path)
            .and_then(|f| f.take(MAX_FILE).read_to_string(&mut text))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        text
    } else {
        arg.to_owned()
    };
    Checkpoint::find_last(&text).unwrap_or_else(|| Err(format!("no {PREFIX} checkpoint in {arg}")))
}

/// What [`check`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The row number of the checkpoint's head in the trail now (1-based).
    pub position: u64,
    /// Rows in the trail after it.
    pub after: u64,
}

/// Whether the trail in `dir` still holds the checkpoint's head. `key`, when given, must
/// have signed the checkpoint. Call after `verify` passed (links and hashes are checked
/// there): a head that is still present then means nothing up to it was changed.
pub fn check(
    dir: &Path,
    checkpoint: &Checkpoint,
    key: Option<&VerifyingKey>,
) -> Result<Found, String> {
    if let Some(key) = key
        && !checkpoint.verifies_with(key)
    {
        return Err("the checkpoint's signature does not verify with the trail's key".into());
    }
    let mut position = 0u64;
    let mut found = None;
    for file in writer::closed_files(dir).map_err(|e| e.to_string())? {
        let hashes = std::panic::catch_unwind(|| writer::row_hashes(&file.path))
            .unwrap_or_else(|_| {
                Err(writer::WriterError::Chain {
                    path: file.path.clone(),
                    problem: "the Parquet reader panicked".into(),
                })
            })
            .map_err(|e| e.to_string())?;
        for hash in hashes {
            position += 1;
            if found.is_none() && hash == checkpoint.head {
                found = Some(position);
            }
        }
    }
    match found {
        Some(at) => Ok(Found {
            position: at,
            after: position - at,
        }),
        None => Err(format!(
            "the checkpoint's head {} (row {} at {}) is not in the trail ({position} rows): \
             rows up to it were removed or rewritten after the checkpoint was logged (a \
             truncated and re-signed tail)",
            chain::to_hex(&checkpoint.head),
            checkpoint.rows,
            checkpoint.time
        )),
    }
}

#[cfg(test)]
mod tests;
