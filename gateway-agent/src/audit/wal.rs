//! The audit write-ahead log: rows are durable here (written and fsynced) before the
//! request they record goes on, and before the slower Parquet encoding sees them.
//!
//! Layout: `DIR/wal/wal-<first_seq>.log` (20-digit zero-padded, so names sort by
//! sequence). A segment starts with the 8 bytes `GWWAL001`, then frames:
//!
//! | bytes | field                                                              |
//! |-------|--------------------------------------------------------------------|
//! | 4     | `len`, u32 LE: length of `body`                                    |
//! | 4     | CRC-32 (IEEE) of the 4 `len` bytes followed by `body`              |
//! | len   | `body`: u64 LE sequence number, then the row (see `codec`)         |
//!
//! Sequence numbers start at 1 and increase by one per row across segments and restarts.
//! A frame that is short, over [`MAX_BODY`], or fails its CRC ends the readable log: after
//! a crash that is a torn write at the tail of the newest segment, which recovery cuts
//! off (nothing after it was ever fsynced, so no caller was told it was recorded). The
//! same in an older segment is damage, reported as [`WalError::Corrupt`], never skipped.
//! A segment is deleted only once every row in it is in a closed Parquet file.
//!
//! Preallocation: the writer keeps up to [`PREALLOC_BYTES`] of written zeros (with a
//! durable file size) ahead of the last frame, so a commit overwrites blocks that already
//! exist and its `fdatasync` has data only to flush: no size or extent change for the
//! filesystem journal to commit. Zeros cannot start a frame (`len` is at least 8), so a
//! segment whose bytes after the last good frame are all zero ends cleanly there, in any
//! segment; anything else after it is a torn tail as before.

mod codec;

use std::{
    fs::{self, File},
    io::Read,
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
};

use super::record::AuditRecord;

pub const MAGIC: &[u8; 8] = b"GWWAL001";
const FRAME_HEAD: usize = 8;
/// Larger than any row the pipeline makes (bodies are capped well below this); a larger
/// `len` can only be a torn or damaged frame.
pub const MAX_BODY: u32 = 256 << 20;
/// Zero-filled room kept ahead of the last frame (capped at the segment size). Topping it
/// up costs one write of this size and a metadata flush, once per this many bytes of rows
/// (about 3 000 rows of a typical tools/call); every other commit is data-only.
pub const PREALLOC_BYTES: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("audit write-ahead log {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "audit write-ahead log {path} is damaged at byte {offset} ({problem}), before later \
         segments; move the wal/ directory aside to start anyway (its rows are then not in \
         the trail)"
    )]
    Corrupt {
        path: PathBuf,
        offset: u64,
        problem: &'static str,
    },
    #[error("audit write-ahead log {path}: sequence {seq} follows {previous} (rows missing)")]
    Gap {
        path: PathBuf,
        seq: u64,
        previous: u64,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> WalError + '_ {
    move |source| WalError::Io {
        path: path.to_owned(),
        source,
    }
}

/// One segment file and the sequence number of its first row.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Segment {
    pub first_seq: u64,
    pub path: PathBuf,
}

/// `DIR/wal`.
pub fn wal_dir(audit_dir: &Path) -> PathBuf {
    audit_dir.join("wal")
}

/// The segments in `wal_dir`, oldest first.
pub fn segments(wal_dir: &Path) -> Result<Vec<Segment>, WalError> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(wal_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io(wal_dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io(wal_dir))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let seq = name
            .strip_prefix("wal-")
            .and_then(|n| n.strip_suffix(".log"))
            .and_then(|n| n.parse().ok());
        if let Some(first_seq) = seq {
            out.push(Segment {
                first_seq,
                path: entry.path(),
            });
        }
    }
    out.sort();
    Ok(out)
}

/// Appends one frame for `record` under `seq` to `buf`.
pub fn encode_frame(buf: &mut Vec<u8>, seq: u64, record: &AuditRecord) {
    let start = buf.len();
    buf.extend_from_slice(&[0; FRAME_HEAD]);
    buf.extend_from_slice(&seq.to_le_bytes());
    codec::encode(buf, record);
    let len = u32::try_from(buf.len() - start - FRAME_HEAD).unwrap_or(u32::MAX);
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&len.to_le_bytes());
    crc.update(&buf[start + FRAME_HEAD..]);
    buf[start + 4..start + 8].copy_from_slice(&crc.finalize().to_le_bytes());
}

/// How a segment's readable part ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentEnd {
    /// Bytes up to the end of the last good frame.
    pub valid_len: u64,
    /// Bytes followed that are not a good frame.
    pub torn: Option<&'static str>,
    /// Sequence number of the last good frame, if any.
    pub last_seq: Option<u64>,
}

/// Reads `path`'s frames in order, handing each good one to `visit`, and stops at the
/// first bad one. `visit` may stop the scan early by returning `false`.
pub fn read_segment(
    path: &Path,
    visit: impl FnMut(u64, AuditRecord) -> bool,
) -> Result<SegmentEnd, WalError> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(io(path))?;
    Ok(scan_segment(&bytes, visit))
}

/// [`read_segment`] over a segment's bytes already in memory (the fuzz targets feed it
/// arbitrary ones: it must never panic or read past a bad frame).
pub fn scan_segment(bytes: &[u8], mut visit: impl FnMut(u64, AuditRecord) -> bool) -> SegmentEnd {
    let mut end = SegmentEnd {
        valid_len: 0,
        torn: None,
        last_seq: None,
    };
    if bytes.len() < MAGIC.len() {
        // Created, header not yet (fully) written: an empty segment.
        end.torn = (!bytes.is_empty()).then_some("short header");
        return end;
    }
    if &bytes[..MAGIC.len()] != MAGIC {
        end.torn = Some("not a WAL segment (bad magic)");
        return end;
    }
    let mut pos = MAGIC.len();
    end.valid_len = pos as u64;
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        if rest.iter().all(|&b| b == 0) {
            // Preallocated space never written: the clean end of the log.
            break;
        }
        if rest.len() < FRAME_HEAD + 8 {
            end.torn = Some("short frame header");
            break;
        }
        let len = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes"));
        let crc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
        if !(8..=MAX_BODY).contains(&len) {
            end.torn = Some("impossible frame length");
            break;
        }
        let Some(body) = rest.get(FRAME_HEAD..FRAME_HEAD + len as usize) else {
            end.torn = Some("short frame");
            break;
        };
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&len.to_le_bytes());
        hasher.update(body);
        if hasher.finalize() != crc {
            end.torn = Some("CRC mismatch");
            break;
        }
        let seq = u64::from_le_bytes(body[..8].try_into().expect("8 bytes"));
        let Some(record) = codec::decode(&body[8..]) else {
            end.torn = Some("row does not decode");
            break;
        };
        pos += FRAME_HEAD + len as usize;
        end.valid_len = pos as u64;
        end.last_seq = Some(seq);
        if !visit(seq, record) {
            break;
        }
    }
    end
}

/// Visits every logged row with `from <= seq <= to`, in order, across segments. A bad frame
/// before `to` is reached is an error: the rows it hides are durable, somebody was told so.
pub fn read_range(
    wal_dir: &Path,
    from: u64,
    to: u64,
    mut visit: impl FnMut(u64, AuditRecord) -> Result<(), WalError>,
) -> Result<(), WalError> {
    let segs = segments(wal_dir)?;
    let mut expected = from;
    for (i, seg) in segs.iter().enumerate() {
        let next_first = segs.get(i + 1).map(|s| s.first_seq);
        if next_first.is_some_and(|n| n <= from) || seg.first_seq > to {
            continue;
        }
        let mut failed = None;
        let end = read_segment(&seg.path, |seq, record| {
            if seq < expected {
                return true;
            }
            if seq > to {
                return false;
            }
            if seq != expected {
                failed = Some(WalError::Gap {
                    path: seg.path.clone(),
                    seq,
                    previous: expected.saturating_sub(1),
                });
                return false;
            }
            expected = seq + 1;
            match visit(seq, record) {
                Ok(()) => true,
                Err(e) => {
                    failed = Some(e);
                    false
                }
            }
        });
        let end = match end {
            // Retired under us: every row in it was already in a closed file.
            Err(WalError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                continue;
            }
            other => other?,
        };
        if let Some(e) = failed {
            return Err(e);
        }
        if expected > to {
            return Ok(());
        }
        if let Some(problem) = end.torn {
            return Err(WalError::Corrupt {
                path: seg.path.clone(),
                offset: end.valid_len,
                problem,
            });
        }
    }
    if expected <= to {
        return Err(WalError::Gap {
            path: wal_dir.to_owned(),
            seq: to,
            previous: expected.saturating_sub(1),
        });
    }
    Ok(())
}

/// The segment being appended to, and the older ones not yet retired.
pub struct WalWriter {
    dir: PathBuf,
    segment_bytes: u64,
    file: File,
    current: Segment,
    /// Bytes of `current` known good (written and fsynced): a failed write is cut back
    /// to here.
    len: u64,
    /// Size of `current`: zeros from `len` up to here (written and fsynced, so a commit
    /// that fits changes neither the size nor the block map).
    allocated: u64,
    older: Vec<Segment>,
}

impl WalWriter {
    /// Starts a new segment whose first row will be `next_seq`, keeping `older` (segments
    /// still holding rows not in closed Parquet files) for [`retire`](Self::retire).
    pub fn create(
        wal_dir: &Path,
        next_seq: u64,
        segment_bytes: u64,
        older: Vec<Segment>,
    ) -> Result<Self, WalError> {
        if let Some(parent) = wal_dir.parent() {
            fs::create_dir_all(parent).map_err(io(parent))?;
        }
        super::access::create_dir(wal_dir).map_err(io(wal_dir))?;
        let segment_bytes = segment_bytes.max(4096);
        let (file, current, allocated) = new_segment(wal_dir, next_seq, segment_bytes)?;
        Ok(Self {
            dir: wal_dir.to_owned(),
            segment_bytes,
            file,
            current,
            len: MAGIC.len() as u64,
            allocated,
            older,
        })
    }

    /// Writes `frames` (whole frames, first row `first_seq`) and makes them durable with
    /// one `fdatasync`: data-only while they fit the preallocated room; when they do not,
    /// the same flush also carries the new size and the next stretch of zeros. On failure
    /// the segment is cut back to its last good length, so a retry or a crash never finds
    /// a half group, and the error is returned.
    pub fn write_group(&mut self, frames: &[u8], first_seq: u64) -> Result<(), WalError> {
        if self.len >= self.segment_bytes {
            let (file, current, allocated) = new_segment(&self.dir, first_seq, self.segment_bytes)?;
            let old = std::mem::replace(&mut self.current, current);
            self.older.push(old);
            self.file = file;
            self.len = MAGIC.len() as u64;
            self.allocated = allocated;
        }
        let end = self.len + frames.len() as u64;
        let result = self.file.write_all_at(frames, self.len).and_then(|()| {
            if end > self.allocated {
                let target = (end + PREALLOC_BYTES).min(self.segment_bytes).max(end);
                self.allocated = zero_fill(&self.file, end, target);
            }
            self.file.sync_data()
        });
        match result {
            Ok(()) => {
                self.len = end;
                Ok(())
            }
            Err(e) => {
                // Truncating frees the blocks the partial write took, so the next group
                // has room again once space is freed; the fsync makes the cut durable
                // before anything else is written after it. The preallocated room goes
                // with it; the next commit that grows the file tops it up again.
                let cut = self
                    .file
                    .set_len(self.len)
                    .and_then(|()| self.file.sync_data());
                if let Err(cut) = cut {
                    tracing::error!(path = %self.current.path.display(), error = %cut,
                        "cutting a failed audit WAL write back failed; will retry");
                }
                self.allocated = self.len;
                Err(io(&self.current.path)(e))
            }
        }
    }

    /// Deletes older segments whose every row has `seq <= closed_seq` (is in a closed
    /// Parquet file).
    pub fn retire(&mut self, closed_seq: u64) {
        let mut keep = Vec::new();
        let firsts: Vec<u64> = self
            .older
            .iter()
            .skip(1)
            .map(|s| s.first_seq)
            .chain([self.current.first_seq])
            .collect();
        let mut removed = false;
        for (seg, next_first) in std::mem::take(&mut self.older).into_iter().zip(firsts) {
            if next_first.saturating_sub(1) <= closed_seq {
                match fs::remove_file(&seg.path) {
                    Ok(()) => removed = true,
                    Err(error) => {
                        tracing::warn!(path = %seg.path.display(), %error,
                            "could not delete a retired audit WAL segment");
                        keep.push(seg);
                    }
                }
            } else {
                keep.push(seg);
            }
        }
        self.older = keep;
        if removed {
            let _ = File::open(&self.dir).and_then(|d| d.sync_all());
        }
    }

    /// Deletes every segment, the current one included: at shutdown, once all rows are in
    /// closed Parquet files.
    pub fn retire_all(self) -> Result<(), WalError> {
        for seg in self.older.iter().chain([&self.current]) {
            fs::remove_file(&seg.path).map_err(io(&seg.path))?;
        }
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&self.dir))
    }
}

/// Creates a segment with its header and the first stretch of preallocated zeros, all
/// durable (the directory entry too). Returns the file, the segment and its size.
fn new_segment(
    wal_dir: &Path,
    first_seq: u64,
    segment_bytes: u64,
) -> Result<(File, Segment, u64), WalError> {
    let path = wal_dir.join(format!("wal-{first_seq:020}.log"));
    let file = super::access::create_file(&path, false).map_err(io(&path))?;
    let header = MAGIC.len() as u64;
    let mut allocated = header;
    file.write_all_at(MAGIC, 0)
        .and_then(|()| {
            allocated = zero_fill(&file, header, PREALLOC_BYTES.min(segment_bytes));
            file.sync_data()
        })
        .and_then(|()| File::open(wal_dir)?.sync_all())
        .map_err(|e| {
            let _ = fs::remove_file(&path);
            io(&path)(e)
        })?;
    Ok((file, Segment { first_seq, path }, allocated))
}

/// Writes zeros over `from..to` of `file` (real blocks, not unwritten extents: writing
/// into those would change the extent map, which a data-only flush must not need).
/// Best effort: room is an optimisation, so on an error (a full disk) the file is cut
/// back to `from` and that is returned; the caller's fsync makes either size durable.
fn zero_fill(file: &File, from: u64, to: u64) -> u64 {
    static ZEROS: [u8; 64 << 10] = [0; 64 << 10];
    let mut at = from;
    while at < to {
        let n = (to - at).min(ZEROS.len() as u64);
        if let Err(error) = file.write_all_at(&ZEROS[..n as usize], at) {
            tracing::debug!(%error, "could not preallocate audit WAL space; growing per write");
            let _ = file.set_len(from);
            return from;
        }
        at += n;
    }
    to
}

/// Cuts a torn tail off `path` at `len` and makes the cut durable.
pub fn truncate(path: &Path, len: u64) -> Result<(), WalError> {
    File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_len(len).and_then(|()| f.sync_all()))
        .map_err(io(path))
}

#[cfg(test)]
mod tests;
