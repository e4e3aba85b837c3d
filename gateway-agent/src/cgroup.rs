//! Locating the cgroup v2 hierarchy. Hosts differ (pure v2 at /sys/fs/cgroup, hybrid with
//! v2 at /sys/fs/cgroup/unified, containers with their own mounts), so the mount is read
//! from /proc/self/mounts rather than assumed. (Not /proc/mounts: that is a symlink outside
//! the per-process part of /proc, hidden under systemd's `ProcSubset=pid`.)

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cannot read /proc/self/mounts: {0}")]
    Mounts(std::io::Error),
    #[error(
        "no cgroup2 filesystem is mounted (checked /proc/self/mounts); mount one or set intercept.cgroup"
    )]
    NoCgroup2,
    #[error("intercept.cgroup {path} is not a directory on a cgroup2 filesystem")]
    NotCgroup2 { path: PathBuf },
}

/// The first cgroup2 mount point listed in `mounts` (the text of /proc/mounts).
pub fn cgroup2_mount_in(mounts: &str) -> Option<PathBuf> {
    mounts.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let (_source, target, fstype) = (fields.next()?, fields.next()?, fields.next()?);
        (fstype == "cgroup2").then(|| PathBuf::from(unescape_mount_path(target)))
    })
}

/// /proc/mounts escapes space, tab, newline and backslash as octal (`\040`).
fn unescape_mount_path(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && let Some(code) = std::str::from_utf8(&bytes[i + 1..i + 4])
                .ok()
                .and_then(|octal| u8::from_str_radix(octal, 8).ok())
        {
            out.push(code);
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn cgroup2_mount() -> Result<PathBuf, CgroupError> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").map_err(CgroupError::Mounts)?;
    cgroup2_mount_in(&mounts).ok_or(CgroupError::NoCgroup2)
}

/// The cgroup to attach to: the configured one (checked to be cgroup2) or the mount root.
pub fn resolve(configured: Option<&Path>) -> Result<PathBuf, CgroupError> {
    match configured {
        None => cgroup2_mount(),
        Some(path) => {
            if is_cgroup2_dir(path) {
                Ok(path.to_owned())
            } else {
                Err(CgroupError::NotCgroup2 {
                    path: path.to_owned(),
                })
            }
        }
    }
}

/// Directories looked at before giving up on a cgroup id: bounds the walk on hosts with
/// very many cgroups (each visit is one getdents and one stat per entry).
const MAX_CGROUPS_WALKED: usize = 65_536;

/// The path (relative to the cgroup2 mount, with a leading `/`, as /proc/<pid>/cgroup
/// writes it) of the cgroup whose id (directory inode) is `id`. For callers whose /proc
/// entry the agent cannot see, e.g. from inside a PID namespace.
pub fn path_of_id(id: u64) -> Option<String> {
    use std::os::unix::fs::MetadataExt as _;
    let root = cgroup2_mount().ok()?;
    let mut stack = vec![root.clone()];
    let mut walked = 0;
    while let Some(dir) = stack.pop() {
        walked += 1;
        if walked > MAX_CGROUPS_WALKED {
            return None;
        }
        if std::fs::metadata(&dir).is_ok_and(|meta| meta.ino() == id) {
            let rel = dir.strip_prefix(&root).ok()?;
            return Some(format!("/{}", rel.display()));
        }
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        stack.extend(
            entries
                .filter_map(Result::ok)
                .filter(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
                .map(|entry| entry.path()),
        );
    }
    None
}

fn is_cgroup2_dir(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .map(|fs| fs.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_cgroup2_in_hybrid_layout() {
        let mounts = "tmpfs /sys/fs/cgroup tmpfs rw 0 0\n\
                      cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n\
                      cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n";
        assert_eq!(
            cgroup2_mount_in(mounts),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
    }

    #[test]
    fn no_cgroup2_is_none() {
        assert_eq!(cgroup2_mount_in("proc /proc proc rw 0 0\n"), None);
    }

    #[test]
    fn unescapes_octal_spaces() {
        let mounts = "none /mnt/my\\040cgroups cgroup2 rw 0 0\n";
        assert_eq!(
            cgroup2_mount_in(mounts),
            Some(PathBuf::from("/mnt/my cgroups"))
        );
    }
}
