//! Who may read the audit trail: its owner only, whatever the umask or the unit says.
//!
//! The trail holds who called which tool with which arguments, so the agent sets the modes
//! of what it creates itself instead of trusting the umask (`cargo xtask run` and a shell
//! typically have 0022, which made the directory 0755 and the Parquet files 0644):
//!
//! - the audit directory and every directory below it are 0700, every file 0600;
//! - with `reader_group` configured: directories 2750 (setgid, so files and directories
//!   created below inherit the group) and files 0640, all of that group;
//! - on start, [`prepare`] creates the directory or fixes its modes and those of
//!   everything already in it (logging what it changed), and refuses a directory that is
//!   world-writable or owned by another user: whoever can write there can replace the
//!   trail.
//!
//! New files and directories are made through [`create_file`] and [`create_dir`], which
//! take their mode from the directory they are created in, so no caller has to carry the
//! configuration around.

use std::{
    fs::{self, DirBuilder, File, OpenOptions, Permissions},
    io,
    os::unix::fs::{
        DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _,
    },
    path::{Path, PathBuf},
};

use nix::unistd::{Gid, Group, Uid};

const DIR_PRIVATE: u32 = 0o700;
const DIR_GROUP: u32 = 0o2750;
const FILE_PRIVATE: u32 = 0o600;
const FILE_GROUP: u32 = 0o640;
/// Levels below the audit directory that are walked when fixing modes (`dt=…/file`,
/// `wal/segment`): nothing the agent makes is deeper.
const FIX_DEPTH: usize = 2;

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "{path} is world-writable (mode {mode:o}): anyone could replace the audit trail or \
         its key; refusing to start (check its contents, then `chmod 0700 {path}`)"
    )]
    WorldWritable { path: PathBuf, mode: u32 },
    #[error(
        "{path} is owned by uid {owner}, not by the agent (uid {me}): that user could \
         replace the audit trail or its key; refusing to start (chown it to the agent's user)"
    )]
    NotOwner { path: PathBuf, owner: u32, me: u32 },
    #[error("{path} is not a directory")]
    NotDir { path: PathBuf },
    #[error("audit reader_group {name:?}: {problem}")]
    Group { name: String, problem: String },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> AccessError + '_ {
    move |source| AccessError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Creates `dir` (0700, or 2750 with `reader_group`) or checks and fixes it and what is
/// in it. Returns how many existing entries had their mode or group changed.
pub fn prepare(dir: &Path, reader_group: Option<&str>) -> Result<usize, AccessError> {
    let gid = reader_group.map(resolve_group).transpose()?;
    let (dir_mode, file_mode) = match gid {
        Some(_) => (DIR_GROUP, FILE_GROUP),
        None => (DIR_PRIVATE, FILE_PRIVATE),
    };
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    match DirBuilder::new().mode(DIR_PRIVATE).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_err(dir)(e)),
    }
    refuse_shared(dir)?;
    let mut fixed = 0;
    fix(dir, dir_mode, gid, &mut fixed)?;
    fix_below(dir, FIX_DEPTH, dir_mode, file_mode, gid, &mut fixed)?;
    Ok(fixed)
}

/// Refuses `dir` unless it is a directory owned by the agent's user that others cannot
/// write to: a trail (or key) there could be replaced under the agent.
fn refuse_shared(dir: &Path) -> Result<(), AccessError> {
    let meta = fs::metadata(dir).map_err(io_err(dir))?;
    if !meta.is_dir() {
        return Err(AccessError::NotDir {
            path: dir.to_owned(),
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o002 != 0 {
        return Err(AccessError::WorldWritable {
            path: dir.to_owned(),
            mode,
        });
    }
    let me = Uid::effective().as_raw();
    if meta.uid() != me {
        return Err(AccessError::NotOwner {
            path: dir.to_owned(),
            owner: meta.uid(),
            me,
        });
    }
    Ok(())
}

/// For a directory that is not the agent's alone (where the signing key is configured,
/// say `/etc/gateway-agent`): creates it 0700 when missing; an existing one is refused
/// when world-writable or owned by another user, and otherwise left exactly as it is
/// (nothing in it is re-moded).
pub fn check_dir(dir: &Path) -> Result<(), AccessError> {
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    match DirBuilder::new().mode(DIR_PRIVATE).create(dir) {
        Ok(()) => {
            return fs::set_permissions(dir, Permissions::from_mode(DIR_PRIVATE))
                .map_err(io_err(dir));
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_err(dir)(e)),
    }
    refuse_shared(dir)?;
    Ok(())
}

/// Sets an existing file to 0600 (owner only) when it allows more; a missing file is
/// fine. Returns whether it changed.
pub fn restrict_file(path: &Path) -> Result<bool, AccessError> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_file() && meta.mode() & 0o077 != 0 => {
            fs::set_permissions(path, Permissions::from_mode(FILE_PRIVATE))
                .map_err(io_err(path))?;
            Ok(true)
        }
        Ok(_) => Ok(false),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err(path)(e)),
    }
}

fn resolve_group(name: &str) -> Result<Gid, AccessError> {
    match Group::from_name(name) {
        Ok(Some(group)) => Ok(group.gid),
        Ok(None) => Err(AccessError::Group {
            name: name.to_owned(),
            problem: "no such group".into(),
        }),
        Err(e) => Err(AccessError::Group {
            name: name.to_owned(),
            problem: e.to_string(),
        }),
    }
}

fn fix_below(
    dir: &Path,
    depth: usize,
    dir_mode: u32,
    file_mode: u32,
    gid: Option<Gid>,
    fixed: &mut usize,
) -> Result<(), AccessError> {
    if depth == 0 {
        return Ok(());
    }
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let path = entry.map_err(io_err(dir))?.path();
        // Not followed: a link's target is not ours to change.
        let meta = fs::symlink_metadata(&path).map_err(io_err(&path))?;
        if meta.is_dir() {
            fix(&path, dir_mode, gid, fixed)?;
            fix_below(&path, depth - 1, dir_mode, file_mode, gid, fixed)?;
        } else if meta.is_file() {
            fix(&path, file_mode, gid, fixed)?;
        }
    }
    Ok(())
}

/// Sets `path`'s mode (and group) when they differ.
fn fix(path: &Path, mode: u32, gid: Option<Gid>, fixed: &mut usize) -> Result<(), AccessError> {
    let meta = fs::symlink_metadata(path).map_err(io_err(path))?;
    let mut changed = false;
    if let Some(gid) = gid
        && meta.gid() != gid.as_raw()
    {
        nix::unistd::chown(path, None, Some(gid)).map_err(|e| io_err(path)(io::Error::from(e)))?;
        changed = true;
    }
    // chown clears setgid on some filesystems, so the mode is set after it.
    if changed || meta.mode() & 0o7777 != mode {
        fs::set_permissions(path, Permissions::from_mode(mode)).map_err(io_err(path))?;
        changed = true;
    }
    if changed {
        *fixed += 1;
    }
    Ok(())
}

/// The mode a new file in `dir` gets: group-readable only when `dir` is (a configured
/// reader group), never more.
fn file_mode_in(dir: &Path) -> io::Result<u32> {
    let mode = fs::metadata(dir)?.mode();
    Ok(if mode & 0o040 != 0 {
        FILE_GROUP
    } else {
        FILE_PRIVATE
    })
}

/// Opens `path` for writing with the mode its directory calls for (0600, or 0640 in a
/// group-readable directory), exact whatever the umask. `create_new` fails on an existing
/// file; otherwise an existing file is truncated and its mode corrected.
pub fn create_file(path: &Path, create_new: bool) -> io::Result<File> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mode = file_mode_in(dir)?;
    let mut options = OpenOptions::new();
    options.write(true).mode(mode);
    if create_new {
        options.create_new(true);
    } else {
        options.create(true).truncate(true);
    }
    let file = options.open(path)?;
    file.set_permissions(Permissions::from_mode(mode))?;
    Ok(file)
}

/// A secret's file (the signing key): 0600 whatever its directory allows, truncated if
/// it exists.
pub fn create_secret_file(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_PRIVATE)
        .open(path)?;
    file.set_permissions(Permissions::from_mode(FILE_PRIVATE))?;
    Ok(file)
}

/// [`create_file`] for a file opened for reading and writing, never truncated (a lock
/// file).
pub fn open_rw(path: &Path) -> io::Result<File> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mode = file_mode_in(dir)?;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(mode)
        .open(path)?;
    file.set_permissions(Permissions::from_mode(mode))?;
    Ok(file)
}

/// Creates `path` (one level) with its parent's mode (0700, or 2750 in a group
/// directory); an existing directory is left as it is ([`prepare`] fixed it).
pub fn create_dir(path: &Path) -> io::Result<()> {
    let parent = path.parent().unwrap_or(Path::new("."));
    let mode = fs::metadata(parent)?.mode() & 0o2750;
    match DirBuilder::new().mode(DIR_PRIVATE).create(path) {
        Ok(()) => fs::set_permissions(path, Permissions::from_mode(mode)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests;
