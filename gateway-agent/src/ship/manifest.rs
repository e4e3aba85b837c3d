//! `DIR/ship-manifest.tsv`: one line per file confirmed in the bucket,
//! `<path relative to DIR>\t<sha256 hex>\t<object key>`, appended and fsynced after the
//! upload succeeded. Restarts read it back, so no file is uploaded twice and an
//! interrupted backlog resumes where it stopped; retention reads it so a file is never
//! deleted locally before it is confirmed shipped. A torn last line (a crash mid-append)
//! is ignored: that file is checked against the bucket again and not re-uploaded if the
//! same bytes are there.

use std::{
    collections::HashSet,
    fs::{self, File, OpenOptions},
    io::Write,
    path::{Path, PathBuf},
};

pub const FILE: &str = "ship-manifest.tsv";

/// Shipped files, by path relative to the audit directory.
#[derive(Debug, Default)]
pub struct Manifest {
    path: PathBuf,
    shipped: HashSet<String>,
}

impl Manifest {
    /// Reads `dir`'s manifest (none yet: empty).
    pub fn load(dir: &Path) -> std::io::Result<Self> {
        let path = dir.join(FILE);
        let shipped = match fs::read_to_string(&path) {
            Ok(text) => parse(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => HashSet::new(),
            Err(e) => return Err(e),
        };
        Ok(Self { path, shipped })
    }

    pub fn contains(&self, relative: &str) -> bool {
        self.shipped.contains(relative)
    }

    pub fn len(&self) -> usize {
        self.shipped.len()
    }

    pub fn is_empty(&self) -> bool {
        self.shipped.is_empty()
    }

    /// Appends (and fsyncs) a confirmed upload.
    pub fn record(&mut self, relative: &str, sha256_hex: &str, key: &str) -> std::io::Result<()> {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        // A torn line from a crash would glue onto this one: start on a fresh line.
        let len = file.metadata()?.len();
        let mut line = String::new();
        if len > 0 && !ends_with_newline(&self.path)? {
            line.push('\n');
        }
        line.push_str(&format!("{relative}\t{sha256_hex}\t{key}\n"));
        file.write_all(line.as_bytes())?;
        file.sync_all()?;
        self.shipped.insert(relative.to_owned());
        Ok(())
    }
}

fn ends_with_newline(path: &Path) -> std::io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = File::open(path)?;
    file.seek(SeekFrom::End(-1))?;
    let mut last = [0u8];
    file.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

fn parse(text: &str) -> HashSet<String> {
    text.split_inclusive('\n')
        .filter(|line| line.ends_with('\n'))
        .filter_map(|line| {
            let mut fields = line.trim_end_matches('\n').split('\t');
            let relative = fields.next()?;
            let sha = fields.next()?;
            let key = fields.next()?;
            (sha.len() == 64 && !key.is_empty() && fields.next().is_none())
                .then(|| relative.to_owned())
        })
        .collect()
}

/// What retention may delete under one audit directory, read once per retention run.
pub enum Deletable {
    /// Shipping was never on here (no manifest): retention is unchanged.
    Any,
    /// Only files the manifest lists (an unreadable manifest lists none).
    Shipped(PathBuf, Manifest),
}

impl Deletable {
    pub fn load(dir: &Path) -> Self {
        if !dir.join(FILE).exists() {
            return Self::Any;
        }
        Self::Shipped(dir.to_owned(), Manifest::load(dir).unwrap_or_default())
    }

    pub fn allows(&self, file: &Path) -> bool {
        match self {
            Self::Any => true,
            Self::Shipped(dir, manifest) => file
                .strip_prefix(dir)
                .ok()
                .and_then(|r| r.to_str())
                .is_some_and(|r| manifest.contains(r)),
        }
    }
}

/// Whether retention may delete `file` under `dir` (see [`Deletable`]).
pub fn may_delete(dir: &Path, file: &Path) -> bool {
    Deletable::load(dir).allows(file)
}
