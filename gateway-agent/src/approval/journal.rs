//! The approvals' journal: one JSON line per change (the approval's whole new state),
//! appended and fsynced before the change takes effect, so a crash or restart loses no
//! decision. On open the last line per id wins; the file is then rewritten (temp file +
//! rename) with only the approvals still open, and again whenever closed entries dominate,
//! so it stays bounded by the open-approval cap.

use std::{
    collections::HashMap,
    fs::{File, OpenOptions},
    io::{BufRead as _, BufReader, Write as _},
    os::unix::fs::OpenOptionsExt as _,
    path::{Path, PathBuf},
};

use super::store::Approval;

/// A journal line longer than this is corrupt (arguments are truncated well below it).
const MAX_LINE: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("approval journal {}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
}

pub struct Journal {
    path: PathBuf,
    file: File,
    lines: usize,
}

impl Journal {
    /// Opens `path` (creating it and its directory, mode 0600) and returns the last state
    /// of every approval in it. Lines that do not parse (a torn last write) are skipped.
    pub fn open(path: &Path) -> Result<(Self, Vec<Approval>), JournalError> {
        let io = |error| JournalError::Io {
            path: path.to_owned(),
            error,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut last: HashMap<String, Approval> = HashMap::new();
        let mut order = Vec::new();
        match File::open(path) {
            Ok(file) => {
                for line in BufReader::new(file).split(b'\n') {
                    let line = line.map_err(io)?;
                    if line.len() > MAX_LINE {
                        continue;
                    }
                    if let Ok(approval) = serde_json::from_slice::<Approval>(&line) {
                        if !last.contains_key(&approval.id) {
                            order.push(approval.id.clone());
                        }
                        last.insert(approval.id.clone(), approval);
                    }
                }
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(io(err)),
        }
        let file = append(path).map_err(io)?;
        let snapshots = order.iter().filter_map(|id| last.remove(id)).collect();
        Ok((
            Self {
                path: path.to_owned(),
                file,
                lines: order.len(),
            },
            snapshots,
        ))
    }

    fn io(&self, error: std::io::Error) -> JournalError {
        JournalError::Io {
            path: self.path.clone(),
            error,
        }
    }

    /// Appends `approval`'s state and fsyncs.
    pub fn append(&mut self, approval: &Approval) -> Result<(), JournalError> {
        let mut line = serde_json::to_vec(approval).map_err(|e| self.io(e.into()))?;
        line.push(b'\n');
        self.file.write_all(&line).map_err(|e| self.io(e))?;
        self.file.sync_data().map_err(|e| self.io(e))?;
        self.lines += 1;
        Ok(())
    }

    pub fn needs_compaction(&self, open: usize) -> bool {
        self.lines > 1024 + 4 * open
    }

    /// Rewrites the journal with exactly `open`, atomically.
    pub fn compact(&mut self, open: &[Approval]) -> Result<(), JournalError> {
        let tmp = self.path.with_extension("jsonl.tmp");
        let write = || -> std::io::Result<()> {
            let mut file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            for approval in open {
                let mut line = serde_json::to_vec(approval)?;
                line.push(b'\n');
                file.write_all(&line)?;
            }
            file.sync_all()?;
            std::fs::rename(&tmp, &self.path)?;
            if let Some(dir) = self.path.parent() {
                File::open(dir)?.sync_all()?;
            }
            Ok(())
        };
        write().map_err(|e| self.io(e))?;
        self.file = append(&self.path).map_err(|e| self.io(e))?;
        self.lines = open.len();
        Ok(())
    }
}

fn append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
}
