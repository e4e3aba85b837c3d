//! The running agent's status file: who it is and what it serves.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

/// Larger status files are not ours: never read more.
const MAX_FILE: u64 = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRecord {
    pub pid: u32,
    /// The process's start time in clock ticks since boot (`/proc/PID/stat` field 22):
    /// together with `pid` it names one process, never a later one that reused the pid.
    pub start_ticks: u64,
    /// Seconds since the Unix epoch when interception became active.
    pub started_unix: u64,
    pub version: String,
    pub config: Option<PathBuf>,
    pub cgroup: PathBuf,
    pub pins: PathBuf,
    pub ports: Vec<u16>,
    pub listen: SocketAddr,
    pub listen6: SocketAddr,
    pub on_exit: String,
    pub audit_dir: Option<PathBuf>,
    pub metrics: Option<SocketAddr>,
}

impl AgentRecord {
    /// This process's identity; the rest is filled in by the caller.
    pub fn this_process() -> (u32, u64, u64) {
        let pid = std::process::id();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        (pid, start_ticks(pid).unwrap_or(0), now)
    }

    /// True while the process this record names is running.
    pub fn is_alive(&self) -> bool {
        start_ticks(self.pid).is_some_and(|ticks| ticks == self.start_ticks)
    }

    pub fn read(path: &Path) -> Option<Self> {
        use std::io::Read as _;
        let mut text = String::new();
        std::fs::File::open(path)
            .ok()?
            .take(MAX_FILE)
            .read_to_string(&mut text)
            .ok()?;
        serde_json::from_str(&text).ok()
    }
}

/// Writes `record` to `path` whole (a reader never sees half a file): a temporary file in
/// the same directory, then rename.
pub fn write(path: &Path, record: &AgentRecord) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(record).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// Removes the status file if it still names this process (another agent may have
/// started since and written its own).
pub fn remove(path: &Path) {
    if AgentRecord::read(path).is_some_and(|r| r.pid == std::process::id()) {
        let _ = std::fs::remove_file(path);
    }
}

/// Field 22 of `/proc/PID/stat`; the fields are counted after the `comm` in parentheses,
/// which may itself contain spaces and parentheses.
fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, after_comm) = stat.rsplit_once(')')?;
    // after_comm starts with field 3 (state).
    after_comm.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_reused_pid_is_not() {
        let (pid, start_ticks, started_unix) = AgentRecord::this_process();
        assert!(start_ticks > 0);
        let mut record = AgentRecord {
            pid,
            start_ticks,
            started_unix,
            version: "t".into(),
            config: None,
            cgroup: "/sys/fs/cgroup".into(),
            pins: "/sys/fs/bpf/x".into(),
            ports: vec![1],
            listen: "127.0.0.1:1".parse().unwrap(),
            listen6: "[::1]:1".parse().unwrap(),
            on_exit: "keep".into(),
            audit_dir: None,
            metrics: None,
        };
        assert!(record.is_alive());
        record.start_ticks += 1;
        assert!(
            !record.is_alive(),
            "same pid, another start: not this process"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/status.json");
        record.start_ticks -= 1;
        write(&path, &record).unwrap();
        assert_eq!(AgentRecord::read(&path), Some(record));
        remove(&path);
        assert!(!path.exists());
    }
}
