//! Writes audit rows as Parquet files that are complete or invisible, never half.
//!
//! Layout: `DIR/dt=YYYY-MM-DD/audit-<start>-<seq>.parquet`, `<start>` the UTC open time
//! (`YYYYMMDDTHHMMSSffffffZ`) and `<seq>` a counter that keeps growing across restarts, so
//! file names sort in chain order and DuckDB prunes by `dt`. A file is written as
//! `….parquet.tmp` and renamed (after fsync of file and directory) when it is closed;
//! engines and `verify` only look at `*.parquet`, and a closed file is never opened for
//! writing again.
//!
//! The chain continues across files and restarts: `open` reads the hash of the newest
//! closed file's last row. Each file's key-value metadata repeats its ends
//! (`gateway.first_prev_hash`, `gateway.last_hash`, hex), its `gateway.rows`, and
//! `gateway.signature` (Ed25519 over those, see `sign`), so a verifier can link and
//! authenticate files from footers alone. `DIR/.lock` (flock) keeps a second writer, which
//! would fork the chain, out.
//!
//! The API is synchronous and does blocking file I/O and zstd work: call it from a
//! dedicated thread or `spawn_blocking`, never on the runtime. The agent drives it through
//! `sink`, which feeds it rows already durable in the write-ahead log (`wal`) via
//! [`AuditWriter::append_logged`]; each closed file then names the WAL sequence number of
//! its last row (`gateway.wal_last_seq`), which is how recovery knows which logged rows a
//! crash kept out of Parquet. Used alone, a crash loses the rows of the open `.tmp` file;
//! the chain stays valid either way, because the next `open` continues from the last
//! closed file.

use std::{
    fs::{self, File},
    path::{Path, PathBuf},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use parquet::{
    arrow::{ArrowWriter, ProjectionMask, arrow_reader::ParquetRecordBatchReaderBuilder},
    basic::{Compression, ZstdLevel},
    file::{metadata::KeyValue, properties::WriterProperties},
};

use super::{
    AuditConfig, RotationConfig, access,
    chain::{self, GENESIS},
    checkpoint,
    record::{self, AuditRecord},
    sign::FileSigner,
};

/// Rows buffered before they are handed to the Parquet encoder as one batch.
const BATCH_ROWS: usize = 1024;

/// A row group is written out once its estimated encoded size reaches this (or
/// [`ROW_GROUP_ROWS`]; the parquet crate's writer enforces both). The writer holds the open row group in memory, and the Parquet
/// default (a million rows) let a busy agent's memory grow with its open file, up to
/// `[audit.rotation] max_bytes`; this bounds it whatever the file size.
const ROW_GROUP_BYTES: usize = 4 << 20;
/// Rows per row group at most.
const ROW_GROUP_ROWS: usize = 64 * 1024;
const DAY_US: i64 = 86_400_000_000;
/// Metadata keys in every closed file.
pub const META_FIRST_PREV: &str = "gateway.first_prev_hash";
pub const META_LAST_HASH: &str = "gateway.last_hash";
pub const META_ROWS: &str = "gateway.rows";
pub const META_SIGNATURE: &str = "gateway.signature";
/// WAL sequence number of the file's last row, in files written through the sink.
pub const META_WAL_LAST_SEQ: &str = "gateway.wal_last_seq";
/// The row schema's version (README, "Schema contract"): bumped when a column changes
/// meaning or type; adding a column does not bump it (readers use `union_by_name`).
pub const META_SCHEMA_VERSION: &str = "gateway.schema_version";
pub const SCHEMA_VERSION: &str = "1";

#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    #[error("audit directory {path}: {source} (check that it exists and the agent may write it)")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("audit file {path}: {source}")]
    Parquet {
        path: PathBuf,
        source: parquet::errors::ParquetError,
    },
    #[error(
        "audit directory {path} is in use by another writer (process {holder}); one agent \
         per directory, or their chains would fork"
    )]
    Locked { path: PathBuf, holder: String },
    #[error(transparent)]
    Access(#[from] super::access::AccessError),
    #[error(transparent)]
    Key(#[from] super::sign::KeyError),
    #[error(
        "cannot continue the audit hash chain from {path}: {problem} \
         (run `gateway-agent audit verify` on the directory)"
    )]
    Chain { path: PathBuf, problem: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> WriterError + '_ {
    move |source| WriterError::Io {
        path: path.to_owned(),
        source,
    }
}

fn pq(path: &Path) -> impl FnOnce(parquet::errors::ParquetError) -> WriterError + '_ {
    move |source| WriterError::Parquet {
        path: path.to_owned(),
        source,
    }
}

/// A closed audit file and the position its name gives it in the chain.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ClosedFile {
    pub start: String,
    pub seq: u64,
    pub path: PathBuf,
}

/// Every closed audit file under `dir`, in chain order. `.tmp` files and anything not
/// named like an audit file are not part of the trail and are skipped.
pub fn closed_files(dir: &Path) -> std::io::Result<Vec<ClosedFile>> {
    let mut files = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(files),
        Err(e) => return Err(e),
    };
    for partition in entries {
        let partition = partition?;
        let name = partition.file_name();
        if !name.to_string_lossy().starts_with("dt=") || !partition.file_type()?.is_dir() {
            continue;
        }
        for entry in fs::read_dir(partition.path())? {
            let entry = entry?;
            if let Some((start, seq)) = parse_name(&entry.file_name().to_string_lossy()) {
                files.push(ClosedFile {
                    start,
                    seq,
                    path: entry.path(),
                });
            }
        }
    }
    files.sort();
    Ok(files)
}

/// `audit-<start>-<seq>.parquet` → (start, seq).
fn parse_name(name: &str) -> Option<(String, u64)> {
    let stem = name.strip_prefix("audit-")?.strip_suffix(".parquet")?;
    let (start, seq) = stem.rsplit_once('-')?;
    (start.len() == 22 && start.ends_with('Z')).then_some(())?;
    Some((start.to_owned(), seq.parse().ok()?))
}

/// Takes `DIR/.lock` (flock, released by the kernel if the agent dies) and records the
/// holder's pid in it for the error message of the next one.
fn lock(dir: &Path) -> Result<nix::fcntl::Flock<File>, WriterError> {
    use std::io::{Read, Seek, Write};
    let path = dir.join(".lock");
    let file = access::open_rw(&path).map_err(io(&path))?;
    match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(mut locked) => {
            let pid = std::process::id().to_string();
            locked
                .set_len(0)
                .and_then(|()| locked.rewind())
                .and_then(|()| locked.write_all(pid.as_bytes()))
                .map_err(io(&path))?;
            Ok(locked)
        }
        Err((mut file, _)) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            Err(WriterError::Locked { path, holder })
        }
    }
}

/// The chain's anchor for the next row: the newest closed file's last row hash.
fn last_hash_in(path: &Path) -> Result<[u8; 32], WriterError> {
    row_hashes(path)?
        .last()
        .copied()
        .ok_or_else(|| WriterError::Chain {
            path: path.to_owned(),
            problem: "file has no rows".into(),
        })
}

/// Every row's `hash` in `path`, in order (only that column is read).
pub fn row_hashes(path: &Path) -> Result<Vec<[u8; 32]>, WriterError> {
    let chain_err = |problem: String| WriterError::Chain {
        path: path.to_owned(),
        problem,
    };
    let file = File::open(path).map_err(io(path))?;
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| chain_err(e.to_string()))?;
    let hash_leaf = record::schema().fields().len() - 1;
    let mask = ProjectionMask::leaves(builder.parquet_schema(), [hash_leaf]);
    let reader = builder
        .with_projection(mask)
        .build()
        .map_err(|e| chain_err(e.to_string()))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| chain_err(e.to_string()))?;
        let hashes = batch
            .column(0)
            .as_any()
            .downcast_ref::<arrow_array::FixedSizeBinaryArray>()
            .ok_or_else(|| chain_err("hash column is not FixedSizeBinary(32)".into()))?;
        for i in 0..batch.num_rows() {
            out.push(
                hashes
                    .value(i)
                    .try_into()
                    .map_err(|_| chain_err("hash is not 32 bytes".into()))?,
            );
        }
    }
    Ok(out)
}

struct OpenFile {
    tmp: PathBuf,
    path: PathBuf,
    writer: ArrowWriter<File>,
    rows: u64,
    pending_bytes: u64,
    first_prev_hash: [u8; 32],
    opened: Instant,
    /// UTC day number of `dt=`: the file is closed at midnight so a `dt` filter in a
    /// query never misses rows written after it.
    day: i64,
    /// WAL sequence number of the newest row, when rows come from the WAL.
    wal_last_seq: Option<u64>,
}

/// Appends hash-chained rows to the current file, rotating by rows, bytes and age.
pub struct AuditWriter {
    dir: PathBuf,
    rotation: RotationConfig,
    last_hash: [u8; 32],
    next_seq: u64,
    /// The newest start time used: a clock stepping back must not sort a new file
    /// before an older one.
    last_start_us: i64,
    /// The wall clock (µs since the epoch) that names files and decides day rotation;
    /// a seam so tests can step it back (the machine's clock cannot be).
    clock: fn() -> i64,
    open: Option<OpenFile>,
    pending: Vec<AuditRecord>,
    /// WAL sequence number of the newest row in a file this writer closed.
    closed_wal_seq: Option<u64>,
    signer: FileSigner,
    checkpoints: checkpoint::Schedule,
    /// Held for the writer's life: two writers on one directory would each continue the
    /// chain from the same last hash and fork it.
    _lock: nix::fcntl::Flock<File>,
}

impl AuditWriter {
    /// Prepares `config.dir` and picks up the chain where the newest closed file left it.
    /// No file is created until the first row.
    pub fn open(config: &AuditConfig) -> Result<Self, WriterError> {
        let dir = config.dir.clone();
        let fixed = access::prepare(&dir, config.reader_group.as_deref())?;
        if fixed > 0 {
            tracing::warn!(dir = %dir.display(), fixed,
                "audit files or directories were readable or writable beyond the agent (and its reader group); their modes were corrected");
        }
        let lock = lock(&dir)?;
        let files = closed_files(&dir).map_err(io(&dir))?;
        let (last_hash, next_seq, last_start_us) = match files.last() {
            None => (GENESIS, 0, i64::MIN),
            Some(newest) => (
                // The reader can panic on a damaged file (see `verify::guarded`).
                std::panic::catch_unwind(|| last_hash_in(&newest.path)).unwrap_or_else(|_| {
                    Err(WriterError::Chain {
                        path: newest.path.clone(),
                        problem: "file is damaged (the Parquet reader panicked)".into(),
                    })
                })?,
                newest.seq + 1,
                parse_start(&newest.start).unwrap_or(i64::MIN),
            ),
        };
        let signer = FileSigner::open(config)?;
        let rows = checkpoint::closed_rows(&dir).map_err(|problem| WriterError::Chain {
            path: dir.clone(),
            problem,
        })?;
        Ok(Self {
            _lock: lock,
            signer,
            checkpoints: checkpoint::Schedule::new(config.checkpoint_minutes, rows, last_hash),
            dir,
            rotation: config.rotation.clone(),
            last_hash,
            next_seq,
            last_start_us,
            clock: now_us,
            open: None,
            pending: Vec::new(),
            closed_wal_seq: None,
        })
    }

    /// Replaces the wall clock (tests only: a clock that jumps).
    #[cfg(test)]
    pub(super) fn set_clock(&mut self, clock: fn() -> i64) {
        self.clock = clock;
    }

    /// The hash the next row will link to.
    pub fn last_hash(&self) -> [u8; 32] {
        self.last_hash
    }

    /// Chains `record` (sets `prev_hash` and `hash`) and buffers it; returns its hash.
    pub fn append(&mut self, record: AuditRecord) -> Result<[u8; 32], WriterError> {
        self.append_inner(record, None)
    }

    /// [`append`](Self::append) for a row that is durable in the WAL under `wal_seq`
    /// (increasing): the file that takes it records the newest such number on close.
    pub fn append_logged(
        &mut self,
        record: AuditRecord,
        wal_seq: u64,
    ) -> Result<[u8; 32], WriterError> {
        self.append_inner(record, Some(wal_seq))
    }

    /// WAL sequence number of the newest row in a file this writer has closed: every
    /// logged row up to it is in a closed Parquet file.
    pub fn closed_wal_seq(&self) -> Option<u64> {
        self.closed_wal_seq
    }

    /// Gives up the open file after a failed write without closing it: its `.tmp` stays
    /// behind for [`remove_orphan_tmp`], and its rows, durable in the WAL, are written again
    /// by the next writer. (Closing it instead could publish a half-written batch twice.)
    pub fn abandon(mut self) {
        self.open = None;
        self.pending.clear();
    }

    /// Bytes the open file holds in memory: its unwritten row group and pending rows.
    pub fn buffered_bytes(&self) -> usize {
        self.open.as_ref().map_or(0, |open| {
            open.writer.in_progress_size() + open.pending_bytes as usize
        })
    }

    /// Closes the open file now (if any), making its rows visible; the next row starts a
    /// new one.
    pub fn finish_file(&mut self) -> Result<(), WriterError> {
        self.close_file()
    }

    fn append_inner(
        &mut self,
        mut record: AuditRecord,
        wal_seq: Option<u64>,
    ) -> Result<[u8; 32], WriterError> {
        self.rotate_if_due()?;
        if self.open.is_none() {
            self.open = Some(self.start_file()?);
        }
        chain::seal(&mut record, self.last_hash);
        self.last_hash = record.hash;
        let open = self.open.as_mut().expect("opened above");
        open.rows += 1;
        open.pending_bytes += approx_size(&record);
        if wal_seq.is_some() {
            open.wal_last_seq = wal_seq;
        }
        self.pending.push(record);
        if self.pending.len() >= BATCH_ROWS {
            self.write_pending()?;
        }
        if self.limits_reached() {
            self.close_file()?;
        }
        Ok(self.last_hash)
    }

    /// Closes the open file if it is older than `max_age_secs` or was started on an
    /// earlier UTC day. Call it from a timer so a quiet agent still publishes what it
    /// recorded.
    pub fn rotate_if_due(&mut self) -> Result<(), WriterError> {
        let max_age = Duration::from_secs(self.rotation.max_age_secs);
        let today = (self.clock)().div_euclid(DAY_US);
        if self
            .open
            .as_ref()
            .is_some_and(|o| o.opened.elapsed() >= max_age || o.day < today)
        {
            self.close_file()?;
        }
        self.checkpoints.tick(self.signer.key());
        Ok(())
    }

    /// Closes the open file (if any), making its rows visible.
    pub fn close(mut self) -> Result<(), WriterError> {
        self.close_file()
    }

    fn limits_reached(&self) -> bool {
        let Some(open) = &self.open else { return false };
        let bytes = open.writer.bytes_written() as u64
            + open.writer.in_progress_size() as u64
            + open.pending_bytes;
        open.rows >= self.rotation.max_rows.max(1) || bytes >= self.rotation.max_bytes
    }

    fn start_file(&mut self) -> Result<OpenFile, WriterError> {
        let start_us = (self.clock)().max(self.last_start_us);
        self.last_start_us = start_us;
        let seq = self.next_seq;
        self.next_seq += 1;
        let partition = self.dir.join(format!("dt={}", date_of(start_us)));
        access::create_dir(&partition).map_err(io(&partition))?;
        let path = partition.join(format!("audit-{}-{seq:06}.parquet", format_start(start_us)));
        let tmp = path.with_extension("parquet.tmp");
        let file = access::create_file(&tmp, true).map_err(io(&tmp))?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_max_row_group_bytes(Some(ROW_GROUP_BYTES))
            .build();
        let writer = ArrowWriter::try_new(file, record::schema(), Some(props)).map_err(pq(&tmp))?;
        Ok(OpenFile {
            tmp,
            path,
            writer,
            rows: 0,
            pending_bytes: 0,
            first_prev_hash: self.last_hash,
            opened: Instant::now(),
            day: start_us.div_euclid(DAY_US),
            wal_last_seq: None,
        })
    }

    fn write_pending(&mut self) -> Result<(), WriterError> {
        let Some(open) = self.open.as_mut() else {
            return Ok(());
        };
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = record::to_batch(&self.pending).map_err(|e| pq(&open.tmp)(e.into()))?;
        open.writer.write(&batch).map_err(pq(&open.tmp))?;
        open.pending_bytes = 0;
        self.pending.clear();
        Ok(())
    }

    /// Footer with the chain ends, fsync, rename, fsync of the directory: after this the
    /// file is complete on disk under its final name, or was never visible.
    fn close_file(&mut self) -> Result<(), WriterError> {
        self.write_pending()?;
        let Some(mut open) = self.open.take() else {
            return Ok(());
        };
        if let Some(seq) = open.wal_last_seq {
            open.writer.append_key_value_metadata(KeyValue::new(
                META_WAL_LAST_SEQ.to_owned(),
                seq.to_string(),
            ));
        }
        for (key, value) in [
            (META_FIRST_PREV, chain::to_hex(&open.first_prev_hash)),
            (META_LAST_HASH, chain::to_hex(&self.last_hash)),
            (META_ROWS, open.rows.to_string()),
            (META_SCHEMA_VERSION, SCHEMA_VERSION.to_owned()),
            (
                META_SIGNATURE,
                self.signer
                    .sign(&open.first_prev_hash, &self.last_hash, open.rows),
            ),
        ] {
            open.writer
                .append_key_value_metadata(KeyValue::new(key.to_owned(), value));
        }
        let file = open.writer.into_inner().map_err(pq(&open.tmp))?;
        file.sync_all().map_err(io(&open.tmp))?;
        fs::rename(&open.tmp, &open.path).map_err(io(&open.path))?;
        let partition = open.path.parent().unwrap_or(&self.dir);
        File::open(partition)
            .and_then(|d| d.sync_all())
            .map_err(io(partition))?;
        if open.wal_last_seq.is_some() {
            self.closed_wal_seq = open.wal_last_seq;
        }
        crate::ship::file_closed();
        self.checkpoints
            .closed(self.signer.key(), open.rows, self.last_hash);
        Ok(())
    }
}

/// The newest `gateway.wal_last_seq` among the closed files (0: none has one), read from
/// footers, newest file first; normally the newest file has it.
pub fn closed_wal_seq(dir: &Path) -> Result<u64, WriterError> {
    for file in closed_files(dir).map_err(io(dir))?.iter().rev() {
        let seq = std::panic::catch_unwind(|| wal_seq_in(&file.path)).unwrap_or_else(|_| {
            Err(WriterError::Chain {
                path: file.path.clone(),
                problem: "file is damaged (the Parquet reader panicked)".into(),
            })
        })?;
        if let Some(seq) = seq {
            return Ok(seq);
        }
    }
    Ok(0)
}

/// `gateway.wal_last_seq` of one closed file (`None`: written without the WAL).
pub fn wal_seq_in(path: &Path) -> Result<Option<u64>, WriterError> {
    let file = File::open(path).map_err(io(path))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(pq(path))?;
    let value = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|kv| kv.key == META_WAL_LAST_SEQ))
        .and_then(|kv| kv.value.clone());
    match value {
        None => Ok(None),
        Some(text) => text.parse().map(Some).map_err(|_| WriterError::Chain {
            path: path.to_owned(),
            problem: format!("{META_WAL_LAST_SEQ} is not a number: {text:?}"),
        }),
    }
}

/// Deletes `*.parquet.tmp` files a crash left (their rows come back from the WAL). Call it
/// only while holding the directory: an open writer's own `.tmp` is one of them.
pub fn remove_orphan_tmp(dir: &Path) -> Result<Vec<PathBuf>, WriterError> {
    let mut removed = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(removed),
        Err(e) => return Err(io(dir)(e)),
    };
    for partition in entries {
        let partition = partition.map_err(io(dir))?;
        if !partition.file_name().to_string_lossy().starts_with("dt=") {
            continue;
        }
        let part = partition.path();
        for entry in fs::read_dir(&part).map_err(io(&part))? {
            let path = entry.map_err(io(&part))?.path();
            if path.to_string_lossy().ends_with(".parquet.tmp") {
                fs::remove_file(&path).map_err(io(&path))?;
                removed.push(path);
            }
        }
    }
    Ok(removed)
}

impl Drop for AuditWriter {
    /// A writer dropped without `close` still publishes its rows (best effort).
    fn drop(&mut self) {
        if let Err(error) = self.close_file() {
            tracing::error!(%error, "closing the audit file failed");
        }
    }
}

/// Deletes closed files last modified (closed) more than `days` days before `now`, and
/// partitions left empty. Open `.tmp` files are never touched. Returns what it deleted.
pub fn delete_older_than(
    dir: &Path,
    days: u32,
    now: SystemTime,
) -> Result<Vec<PathBuf>, WriterError> {
    let cutoff = now - Duration::from_secs(u64::from(days) * 86_400);
    let mut deleted = Vec::new();
    let deletable = crate::ship::manifest::Deletable::load(dir);
    for file in closed_files(dir).map_err(io(dir))? {
        let modified = fs::metadata(&file.path)
            .and_then(|m| m.modified())
            .map_err(io(&file.path))?;
        // Never before it is confirmed shipped, when shipping is on.
        if modified < cutoff && deletable.allows(&file.path) {
            fs::remove_file(&file.path).map_err(io(&file.path))?;
            if let Some(partition) = file.path.parent() {
                // Fails while the partition still holds files, as it should.
                let _ = fs::remove_dir(partition);
            }
            deleted.push(file.path);
        }
    }
    Ok(deleted)
}

/// What a row adds to the file before encoding, for the byte limit.
fn approx_size(record: &AuditRecord) -> u64 {
    let text = record.payload.as_ref().map_or(0, String::len)
        + record.session.len()
        + record.method.as_ref().map_or(0, String::len);
    (text + 128) as u64
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's civil_from_days).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

fn date_of(us: i64) -> String {
    let (y, m, d) = civil(us.div_euclid(DAY_US));
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYYMMDDTHHMMSSffffffZ`: fixed width, so names sort by time.
fn format_start(us: i64) -> String {
    let (y, m, d) = civil(us.div_euclid(DAY_US));
    let in_day = us.rem_euclid(DAY_US);
    let secs = in_day / 1_000_000;
    let (hh, mm, ss) = (secs / 3600, secs / 60 % 60, secs % 60);
    format!(
        "{y:04}{m:02}{d:02}T{hh:02}{mm:02}{ss:02}{:06}Z",
        in_day % 1_000_000
    )
}

/// Inverse of [`format_start`], enough to keep new names after old ones.
fn parse_start(text: &str) -> Option<i64> {
    let n = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
    let (y, m, d) = (n(0..4)?, n(4..6)?, n(6..8)?);
    let (hh, mm, ss, frac) = (n(9..11)?, n(11..13)?, n(13..15)?, n(15..21)?);
    // days_from_civil, the inverse of `civil`.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1_000_000) + frac)
}

#[cfg(test)]
pub(super) fn format_start_for_tests(us: i64) -> String {
    format_start(us)
}

#[cfg(test)]
pub(super) fn parse_start_for_tests(text: &str) -> Option<i64> {
    parse_start(text)
}
