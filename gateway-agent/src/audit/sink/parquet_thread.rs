//! The sink's Parquet thread: durable rows into the hash chain and Parquet files, in WAL
//! order; rotation and retention on its timer; after a failed write, a fresh writer and
//! the missing rows read back from the WAL.

use super::*;

pub(super) struct ParquetThread {
    pub(super) config: AuditConfig,
    /// `None` after a failed write, until a reopen succeeds.
    pub(super) writer: Option<AuditWriter>,
    /// Sequence number of the next row the writer needs.
    pub(super) next: u64,
    pub(super) rx: mpsc::Receiver<PqMsg>,
    pub(super) progress: Arc<Progress>,
    pub(super) last_retention: Option<Instant>,
    /// Rows up to `durable` may be missing (reopened, or a group was dropped): read them
    /// from the WAL. Otherwise they are in the channel, and reading the segment would be
    /// wasted work.
    pub(super) behind: bool,
}

impl ParquetThread {
    pub(super) fn run(mut self) {
        loop {
            let result = match self.rx.recv_timeout(TICK) {
                Ok(PqMsg::Rows(rows)) => self.write(rows),
                Ok(PqMsg::Close { last_seq, reply }) => {
                    let _ = reply.send(self.close(last_seq));
                    return;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => self.tick(),
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            };
            if let Err(error) = result {
                tracing::error!(%error, dir = %self.config.dir.display(),
                    "writing audit Parquet failed; the rows stay in the WAL and are retried");
                if let Some(writer) = self.writer.take() {
                    writer.abandon();
                }
            }
        }
    }

    fn write(&mut self, rows: Vec<(u64, AuditRecord)>) -> Result<(), SinkError> {
        let Some(&(first, _)) = rows.first() else {
            return Ok(());
        };
        if self.writer.is_none() {
            return Ok(()); // Read back from the WAL once a reopen succeeds.
        }
        if first > self.next {
            self.catch_up(first - 1)?;
        }
        let writer = self.writer.as_mut().expect("checked above");
        for (seq, row) in rows {
            if seq >= self.next {
                writer.append_logged(row, seq)?;
                self.next = seq + 1;
            }
        }
        self.publish();
        Ok(())
    }

    /// Appends the rows `next..=to` from the WAL on disk.
    fn catch_up(&mut self, to: u64) -> Result<(), SinkError> {
        if to < self.next {
            return Ok(());
        }
        let writer = self.writer.as_mut().expect("caller checked");
        let next = &mut self.next;
        let wal_dir = wal::wal_dir(&self.config.dir);
        wal::read_range(&wal_dir, *next, to, |seq, row| {
            writer.append_logged(row, seq).map_err(|e| WalError::Io {
                path: wal_dir.clone(),
                source: std::io::Error::other(e.to_string()),
            })?;
            *next = seq + 1;
            Ok(())
        })?;
        Ok(())
    }

    fn publish(&self) {
        if let Some(seq) = self.writer.as_ref().and_then(AuditWriter::closed_wal_seq) {
            self.progress.closed.fetch_max(seq, Ordering::AcqRel);
        }
    }

    fn tick(&mut self) -> Result<(), SinkError> {
        if self.writer.is_none() {
            self.reopen()?;
        }
        if self.progress.dropped.swap(false, Ordering::AcqRel) {
            self.behind = true;
        }
        if self.behind {
            let durable = self.progress.durable.load(Ordering::Acquire);
            self.catch_up(durable)?;
            self.behind = false;
        }
        self.writer
            .as_mut()
            .expect("opened above")
            .rotate_if_due()?;
        self.publish();
        if let Some(days) = self.config.retention_days
            && self
                .last_retention
                .is_none_or(|t| t.elapsed() >= RETENTION_EVERY)
        {
            self.last_retention = Some(Instant::now());
            writer::delete_older_than(&self.config.dir, days, SystemTime::now())?;
        }
        Ok(())
    }

    /// A fresh writer after a failure: continues from the last closed file, and the rows
    /// after it come back from the WAL.
    fn reopen(&mut self) -> Result<(), SinkError> {
        let writer = AuditWriter::open(&self.config)?;
        writer::remove_orphan_tmp(&self.config.dir)?;
        self.next = writer::closed_wal_seq(&self.config.dir)? + 1;
        self.writer = Some(writer);
        self.behind = true;
        Ok(())
    }

    fn close(mut self, last_seq: u64) -> Result<(), SinkError> {
        // The WAL thread waits for this answer, so a failing disk gets a few tries.
        let mut last_error = None;
        for attempt in 0..3 {
            if attempt > 0 {
                thread::sleep(Duration::from_millis(200));
            }
            let result = (|| {
                if self.writer.is_none() {
                    self.reopen()?;
                }
                self.catch_up(last_seq)?;
                self.writer.as_mut().expect("opened above").finish_file()?;
                Ok(())
            })();
            match result {
                Ok(()) => {
                    if let Some(writer) = self.writer.take() {
                        writer.close()?;
                    }
                    return Ok(());
                }
                Err(e) => {
                    if let Some(writer) = self.writer.take() {
                        writer.abandon();
                    }
                    last_error = Some(e);
                }
            }
        }
        Err(last_error.expect("three attempts failed"))
    }
}
