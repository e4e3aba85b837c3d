//! What the pipeline calls to record audit rows: durable first (WAL, group-committed
//! fsync), Parquet later (a second thread), nothing lost by a crash in between.
//!
//! Two dedicated threads, so no file I/O or fsync ever runs on the runtime:
//! - the WAL thread takes every request queued since its last fsync, writes them as one
//!   group and fsyncs once (concurrent callers share that fsync), then answers them;
//! - the Parquet thread is fed the rows once they are durable, seals them into the hash
//!   chain in WAL order ([`AuditWriter::append_logged`]), rotates on a timer and applies
//!   retention. When it falls behind or a write fails, it reads the rows back from the WAL
//!   on disk, so its channel can drop a group without losing it.
//!
//! Queues are bounded: at most [`QUEUE_REQUESTS`] requests wait for the WAL thread
//! (callers then wait for a slot) and [`PARQUET_GROUPS`] groups for the Parquet thread.
//!
//! In `interval` mode rows that arrive while a flush is pending wait in the channel
//! without waking the WAL thread, which sleeps until the flush is due (or the queue is
//! half full) and takes them all at once: waking it for every row cost a thread switch
//! per row, about as much CPU again as the rest of the call (`xtask bench`: 6.8 scheduler
//! runs per call at c=1 against 2.0 with auditing off).

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
        mpsc,
    },
    thread,
    time::{Duration, Instant, SystemTime},
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use self::parquet_thread::ParquetThread;
use super::{
    AuditConfig, Durability,
    record::AuditRecord,
    wal::{self, WalError, WalWriter},
    writer::{self, AuditWriter, WriterError},
};

/// Requests waiting for the WAL thread.
pub const QUEUE_REQUESTS: usize = 4096;
/// Durable groups waiting for the Parquet thread.
const PARQUET_GROUPS: usize = 256;
/// Bytes the WAL thread gathers into one write before it fsyncs.
const GROUP_BYTES: usize = 8 << 20;
/// How long `record` waits for durability before it gives up on this request.
const RECORD_TIMEOUT: Duration = Duration::from_secs(30);
/// Timer of both threads: segment retirement, rotation by age, catching up.
const TICK: Duration = Duration::from_millis(500);
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, thiserror::Error)]
pub enum SinkError {
    #[error(
        "audit rows could not be made durable in {dir}: {source} (free space or repair the \
         disk; MCP requests are refused until audit rows can be recorded)"
    )]
    Durability { dir: PathBuf, source: Arc<WalError> },
    #[error("audit Parquet: {0}")]
    Writer(Arc<WriterError>),
    #[error("audit write-ahead log: {0}")]
    Wal(Arc<WalError>),
    #[error("audit rows for {dir} were not durable within {secs} s (is the disk hung?)")]
    Timeout { dir: PathBuf, secs: u64 },
    #[error("the audit sink for {dir} is closed")]
    Closed { dir: PathBuf },
}

impl From<WriterError> for SinkError {
    fn from(e: WriterError) -> Self {
        Self::Writer(Arc::new(e))
    }
}

impl From<WalError> for SinkError {
    fn from(e: WalError) -> Self {
        Self::Wal(Arc::new(e))
    }
}

/// Cheap to clone; shared by every connection task.
#[derive(Clone)]
pub struct AuditSink {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    durability: Durability,
    permits: Arc<Semaphore>,
    tx: mpsc::Sender<WalMsg>,
    /// Interval mode: the last group failed; requests are refused until one succeeds.
    failing: Mutex<Option<SinkError>>,
    threads: Mutex<Option<(thread::JoinHandle<()>, thread::JoinHandle<()>)>>,
    /// The WAL thread, to wake early (interval mode): a half-full queue, or close.
    wal_thread: std::sync::OnceLock<thread::Thread>,
}

enum WalMsg {
    Rows {
        rows: Vec<AuditRecord>,
        reply: Option<oneshot::Sender<Result<(), SinkError>>>,
        _permit: OwnedSemaphorePermit,
    },
    Close(mpsc::Sender<Result<(), SinkError>>),
}

enum PqMsg {
    Rows(Vec<(u64, AuditRecord)>),
    Close {
        last_seq: u64,
        reply: mpsc::Sender<Result<(), SinkError>>,
    },
}

/// Sequence numbers the two threads publish to each other.
struct Progress {
    /// Newest row written and fsynced in the WAL.
    durable: AtomicU64,
    /// Newest row in a closed Parquet file: segments up to it may go.
    closed: AtomicU64,
    /// The WAL thread dropped a group (the Parquet channel was full): the Parquet thread
    /// reads up to `durable` back from the WAL on its next tick.
    dropped: AtomicBool,
}

impl AuditSink {
    /// Opens the dir (takes the writer's lock), recovers any WAL a crash left into Parquet
    /// (rows already in closed Parquet files are not duplicated; the chain stays intact,
    /// `verify` passes), then starts the background threads. Returns how many rows were
    /// recovered.
    pub fn open(config: &AuditConfig) -> Result<(AuditSink, u64), SinkError> {
        let (writer, recovered, last_seq) = recover(config)?;
        // Everything up to `last_seq` is in closed files now; a fresh segment follows.
        let wal_dir = wal::wal_dir(&config.dir);
        for seg in wal::segments(&wal_dir)? {
            std::fs::remove_file(&seg.path).map_err(|source| WalError::Io {
                path: seg.path.clone(),
                source,
            })?;
        }
        let wal = WalWriter::create(&wal_dir, last_seq + 1, config.wal_segment_bytes, vec![])?;

        let progress = Arc::new(Progress {
            durable: AtomicU64::new(last_seq),
            closed: AtomicU64::new(last_seq),
            dropped: AtomicBool::new(false),
        });
        let (tx, rx) = mpsc::channel();
        let (pq_tx, pq_rx) = mpsc::sync_channel(PARQUET_GROUPS);
        let inner = Arc::new(Inner {
            dir: config.dir.clone(),
            durability: config.durability,
            permits: Arc::new(Semaphore::new(QUEUE_REQUESTS)),
            tx,
            failing: Mutex::new(None),
            threads: Mutex::new(None),
            wal_thread: std::sync::OnceLock::new(),
        });
        let wal_thread = WalThread {
            inner: Arc::downgrade(&inner),
            dir: config.dir.clone(),
            wal,
            rx,
            pq_tx,
            progress: progress.clone(),
            next_seq: last_seq + 1,
            interval: match config.durability {
                Durability::Sync => None,
                Durability::Interval => Some(Duration::from_millis(config.interval_ms.max(1))),
            },
        };
        let pq_thread = ParquetThread {
            config: config.clone(),
            writer: Some(writer),
            next: last_seq + 1,
            rx: pq_rx,
            progress,
            last_retention: None,
            behind: false,
        };
        let spawn = |name: &str| thread::Builder::new().name(name.into());
        let pq = spawn("audit-parquet")
            .spawn(move || pq_thread.run())
            .map_err(|source| WalError::Io {
                path: config.dir.clone(),
                source,
            })?;
        let w = spawn("audit-wal")
            .spawn(move || wal_thread.run())
            .map_err(|source| WalError::Io {
                path: config.dir.clone(),
                source,
            })?;
        let _ = inner.wal_thread.set(w.thread().clone());
        *inner.threads.lock().expect("not poisoned") = Some((w, pq));
        Ok((AuditSink { inner }, recovered))
    }

    /// sync: resolves once these rows are in the WAL and fsynced (group commit: concurrent
    /// callers share one fsync). interval: resolves once queued (fsync within
    /// `interval_ms`). Err when they could not be made durable: the caller then refuses
    /// the MCP request — nothing is dropped silently.
    pub async fn record(&self, rows: Vec<AuditRecord>) -> Result<(), SinkError> {
        self.submit(rows, true).await
    }

    /// Queues `rows` without waiting for their flush. The WAL thread numbers, writes and
    /// flushes rows in queue order, one group after another, so any `record` called after
    /// this returns resolves only once these are durable too (in its group or an earlier
    /// one), unless their own group failed, which the WAL thread logs. For a row that gates
    /// nothing and is always followed by one that does (a connection's `open` row before
    /// its first request): it then costs no flush of its own on the request path.
    pub async fn enqueue(&self, rows: Vec<AuditRecord>) -> Result<(), SinkError> {
        self.submit(rows, false).await
    }

    async fn submit(&self, rows: Vec<AuditRecord>, wait: bool) -> Result<(), SinkError> {
        if rows.is_empty() {
            return Ok(());
        }
        let inner = &self.inner;
        if let Some(error) = inner.failing.lock().expect("not poisoned").clone() {
            return Err(error);
        }
        let closed = || SinkError::Closed {
            dir: inner.dir.clone(),
        };
        let wait = async {
            let permit = inner
                .permits
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| closed())?;
            let (reply, answer) = match inner.durability {
                Durability::Sync if wait => {
                    let (tx, rx) = oneshot::channel();
                    (Some(tx), Some(rx))
                }
                Durability::Sync | Durability::Interval => (None, None),
            };
            inner
                .tx
                .send(WalMsg::Rows {
                    rows,
                    reply,
                    _permit: permit,
                })
                .map_err(|_| closed())?;
            if inner.durability == Durability::Interval
                && inner.permits.available_permits() < QUEUE_REQUESTS / 2
            {
                inner.wake_wal_thread();
            }
            match answer {
                Some(rx) => rx.await.map_err(|_| closed())?,
                None => Ok(()),
            }
        };
        tokio::time::timeout(RECORD_TIMEOUT, wait)
            .await
            .unwrap_or_else(|_| {
                Err(SinkError::Timeout {
                    dir: inner.dir.clone(),
                    secs: RECORD_TIMEOUT.as_secs(),
                })
            })
    }

    /// The audit directory this sink writes.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Drains, fsyncs, closes the open Parquet file and retires the WAL. Blocking; call at
    /// shutdown. Other clones' `record` fail with [`SinkError::Closed`] afterwards.
    pub fn close(self) -> Result<(), SinkError> {
        let (tx, rx) = mpsc::channel();
        let inner = &self.inner;
        inner.permits.close();
        let closed = || SinkError::Closed {
            dir: inner.dir.clone(),
        };
        inner.tx.send(WalMsg::Close(tx)).map_err(|_| closed())?;
        inner.wake_wal_thread();
        let result = rx.recv().map_err(|_| closed())?;
        if let Some((w, pq)) = inner.threads.lock().expect("not poisoned").take() {
            let _ = w.join();
            let _ = pq.join();
        }
        result
    }
}

impl Inner {
    fn wake_wal_thread(&self) {
        if let Some(thread) = self.wal_thread.get() {
            thread.unpark();
        }
    }
}

/// Opens the writer and puts every logged row that is not in a closed Parquet file into
/// one: orphaned `.tmp` files go (their rows are in the WAL), a torn tail is cut. Returns
/// the writer, how many rows it recovered, and the newest sequence number in use.
fn recover(config: &AuditConfig) -> Result<(AuditWriter, u64, u64), SinkError> {
    let mut writer = AuditWriter::open(config)?;
    for path in writer::remove_orphan_tmp(&config.dir)? {
        tracing::warn!(path = %path.display(), "removed an audit file a crash left open; its rows come back from the WAL");
    }
    let closed = writer::closed_wal_seq(&config.dir)?;
    let segs = wal::segments(&wal::wal_dir(&config.dir))?;
    let mut recovered = 0;
    let mut last_seq = closed;
    for (i, seg) in segs.iter().enumerate() {
        let mut failed = None;
        let end = wal::read_segment(&seg.path, |seq, record| {
            if seq <= closed {
                return true;
            }
            if seq != last_seq + 1 && last_seq != closed {
                failed = Some(WalError::Gap {
                    path: seg.path.clone(),
                    seq,
                    previous: last_seq,
                });
                return false;
            }
            last_seq = seq;
            match writer.append_logged(record, seq) {
                Ok(_) => {
                    recovered += 1;
                    true
                }
                Err(e) => {
                    failed = Some(WalError::Io {
                        path: config.dir.clone(),
                        source: std::io::Error::other(e.to_string()),
                    });
                    false
                }
            }
        })?;
        if let Some(e) = failed {
            writer.abandon();
            return Err(e.into());
        }
        if let Some(problem) = end.torn {
            if i + 1 < segs.len() {
                writer.abandon();
                return Err(WalError::Corrupt {
                    path: seg.path.clone(),
                    offset: end.valid_len,
                    problem,
                }
                .into());
            }
            tracing::warn!(path = %seg.path.display(), offset = end.valid_len, problem,
                "cut the torn tail of the audit WAL (a write the crash interrupted; never acknowledged)");
            wal::truncate(&seg.path, end.valid_len)?;
        }
    }
    // Published before the WAL segments go: they are the only other copy.
    if let Err(e) = writer.finish_file() {
        writer.abandon();
        return Err(e.into());
    }
    Ok((writer, recovered, last_seq))
}

struct WalThread {
    inner: std::sync::Weak<Inner>,
    dir: PathBuf,
    wal: WalWriter,
    rx: mpsc::Receiver<WalMsg>,
    pq_tx: mpsc::SyncSender<PqMsg>,
    progress: Arc<Progress>,
    next_seq: u64,
    /// `None`: sync mode.
    interval: Option<Duration>,
}

/// Rows encoded and waiting for their write + fsync.
#[derive(Default)]
struct Group {
    frames: Vec<u8>,
    rows: Vec<(u64, AuditRecord)>,
    replies: Vec<oneshot::Sender<Result<(), SinkError>>>,
}

impl WalThread {
    fn run(mut self) {
        let mut group = Group::default();
        let mut last_flush = Instant::now();
        loop {
            let mut close = None;
            let next = match self.interval {
                // A flush is pending: what arrives meanwhile waits in the channel (a
                // sender wakes nobody) until the flush is due or a sender wakes us.
                Some(every) if !group.rows.is_empty() => {
                    let remaining = every.saturating_sub(last_flush.elapsed());
                    if !remaining.is_zero() {
                        thread::park_timeout(remaining);
                    }
                    self.rx.try_recv().map_err(|err| match err {
                        mpsc::TryRecvError::Empty => mpsc::RecvTimeoutError::Timeout,
                        mpsc::TryRecvError::Disconnected => mpsc::RecvTimeoutError::Disconnected,
                    })
                }
                _ => self.rx.recv_timeout(TICK),
            };
            match next {
                Ok(msg) => {
                    let mut msg = Some(msg);
                    // Group commit: everything that queued up while the last fsync ran.
                    while let Some(m) = msg.take() {
                        match m {
                            WalMsg::Rows { rows, reply, .. } => {
                                self.add(&mut group, rows, reply);
                            }
                            WalMsg::Close(reply) => {
                                close = Some(reply);
                                break;
                            }
                        }
                        if group.frames.len() < GROUP_BYTES {
                            msg = self.rx.try_recv().ok();
                        }
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let (tx, _rx) = mpsc::channel();
                    close = Some(tx);
                }
            }
            let due = match self.interval {
                None => true,
                Some(every) => {
                    close.is_some()
                        || last_flush.elapsed() >= every
                        || group.frames.len() >= GROUP_BYTES
                }
            };
            if due && !group.rows.is_empty() {
                // A failure has been answered (sync) or is retried (interval).
                let _ = self.flush(&mut group);
                last_flush = Instant::now();
            }
            self.wal
                .retire(self.progress.closed.load(Ordering::Acquire));
            crate::metrics::get().audit_progress(&self.progress.durable, &self.progress.closed);
            if let Some(reply) = close {
                let _ = reply.send(self.close(group));
                return;
            }
        }
    }

    fn add(
        &mut self,
        group: &mut Group,
        rows: Vec<AuditRecord>,
        reply: Option<oneshot::Sender<Result<(), SinkError>>>,
    ) {
        for row in rows {
            let seq = self.next_seq;
            self.next_seq += 1;
            wal::encode_frame(&mut group.frames, seq, &row);
            group.rows.push((seq, row));
        }
        group.replies.extend(reply);
    }

    fn flush(&mut self, group: &mut Group) -> Result<(), SinkError> {
        let first = group.rows[0].0;
        let last = group.rows[group.rows.len() - 1].0;
        match crate::metrics::get().timed_fsync(|| self.wal.write_group(&group.frames, first)) {
            Ok(()) => {
                self.progress.durable.store(last, Ordering::Release);
                let rows = std::mem::take(&mut group.rows);
                // Full: the Parquet thread is behind and reads these back from the WAL.
                if self.pq_tx.try_send(PqMsg::Rows(rows)).is_err() {
                    self.progress.dropped.store(true, Ordering::Release);
                }
                for reply in group.replies.drain(..) {
                    let _ = reply.send(Ok(()));
                }
                group.frames.clear();
                if let Some(inner) = self.inner.upgrade() {
                    inner.failing.lock().expect("not poisoned").take();
                }
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, rows = group.rows.len(), "audit WAL write failed");
                let error = SinkError::Durability {
                    dir: self.dir.clone(),
                    source: Arc::new(e),
                };
                if self.interval.is_some() {
                    // Already acknowledged: keep them and retry on the next tick; refuse
                    // new requests meanwhile.
                    if let Some(inner) = self.inner.upgrade() {
                        *inner.failing.lock().expect("not poisoned") = Some(error.clone());
                    }
                    return Err(error);
                }
                for reply in group.replies.drain(..) {
                    let _ = reply.send(Err(error.clone()));
                }
                self.next_seq = first;
                group.rows.clear();
                group.frames.clear();
                Err(error)
            }
        }
    }

    fn close(mut self, mut group: Group) -> Result<(), SinkError> {
        // Requests that raced with close: answer them.
        while let Ok(WalMsg::Rows { rows, reply, .. }) = self.rx.try_recv() {
            self.add(&mut group, rows, reply);
        }
        if !group.rows.is_empty() {
            self.flush(&mut group)?;
        }
        let (tx, rx) = mpsc::channel();
        let last_seq = self.progress.durable.load(Ordering::Acquire);
        self.pq_tx
            .send(PqMsg::Close {
                last_seq,
                reply: tx,
            })
            .map_err(|_| self.failing_or_closed())?;
        rx.recv().map_err(|_| self.failing_or_closed())??;
        self.wal.retire_all()?;
        Ok(())
    }

    fn failing_or_closed(&self) -> SinkError {
        self.inner
            .upgrade()
            .and_then(|i| i.failing.lock().expect("not poisoned").clone())
            .unwrap_or(SinkError::Closed {
                dir: self.dir.clone(),
            })
    }
}

mod parquet_thread;
#[cfg(test)]
mod tests;
