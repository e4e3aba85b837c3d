//! Turns the kernel's record of who connected (pid, uid, gid, comm, cgroup id) into what
//! an operator reads: user name, executable path, cgroup path.
//!
//! The kernel fields are authoritative (captured at connect(), not spoofable by the
//! client). The /proc lookups are best effort: a short-lived client may be gone by the
//! time we look, and its pid may even have been reused, so an exe path is only reported
//! when /proc still shows the comm the kernel captured for the connecting thread.
//!
//! /proc is read under the pid the agent's own PID namespace gives the caller (`ns_pid`):
//! inside a PID namespace (systemd in a container, a pod) the host pid names another
//! process or none. A caller the agent's namespace cannot see has no exe; its cgroup path
//! is found from the cgroup id the kernel recorded, by looking the id up in cgroupfs.
//!
//! Cgroup ids are never reused, so an id → path pair, once checked, is remembered: a new
//! connection from a cgroup seen before reads only a comm and the exe link, not
//! /proc/<pid>/cgroup (the costliest of the three to generate, one line per hierarchy on a
//! hybrid layout). The path is then the cgroup the caller connected from, even if it
//! moved since.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Mutex, OnceLock},
};

use gateway_common::ConnInfo;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProcessIdentity {
    pub pid: u32,
    pub tid: u32,
    pub uid: u32,
    pub gid: u32,
    pub comm: String,
    pub cgroup_id: u64,
    pub user: Option<String>,
    pub exe: Option<PathBuf>,
    pub cgroup: Option<String>,
    /// The systemd unit the process runs in (`ci-runner.service`, `session-3.scope`),
    /// derived from the cgroup path: what an operator names in a binding rule.
    pub unit: Option<String>,
    /// A container runtime's 64-hex container id, when the cgroup path carries one
    /// (docker, containerd/CRI, CRI-O, podman).
    pub container: Option<String>,
}

/// Resolves identities, caching uid → user name (NSS lookups can be slow: LDAP, sssd).
#[derive(Default)]
pub struct IdentityResolver {
    users: Mutex<HashMap<u32, Option<String>>>,
    /// Cgroup id → path, for ids whose path was found (a miss is never kept).
    cgroups: Mutex<HashMap<u64, String>>,
    /// The cgroup2 mount, found once: where a path read from /proc is checked against its
    /// id before it is remembered.
    cgroup_root: OnceLock<Option<PathBuf>>,
}

/// This agent's pid, asked of the kernel once: glibc does not cache `getpid`, and a
/// system call per new connection showed in `perf`.
pub fn own_pid() -> u32 {
    static PID: OnceLock<u32> = OnceLock::new();
    *PID.get_or_init(std::process::id)
}

/// The inode number of the initial PID namespace (`PROC_PID_INIT_INO` in the kernel).
const INIT_PID_NS_INO: u64 = 0xEFFF_FFFC;
/// Cached cgroup id → path lookups; beyond this the cache is cleared (ids of removed
/// cgroups are never reused, so stale entries are only wasted memory).
const MAX_CACHED_CGROUPS: usize = 4096;

impl IdentityResolver {
    /// Blocking (reads /proc, may call NSS): run it off the async runtime.
    pub fn resolve(&self, info: &ConnInfo) -> ProcessIdentity {
        self.resolve_with(info, true)
            .expect("a resolution allowed to block always completes")
    }

    /// [`IdentityResolver::resolve`] when it cannot block: the caller's user name is
    /// already cached (no NSS call) and its cgroup path comes from /proc or the cache (no
    /// cgroupfs walk); the /proc reads left are in-memory pseudo files. `None`: it would
    /// block, so run [`IdentityResolver::resolve`] off the runtime. A new connection
    /// skips a hand-off to the blocking pool and back (two thread wake-ups) this way.
    pub fn resolve_without_blocking(&self, info: &ConnInfo) -> Option<ProcessIdentity> {
        self.resolve_with(info, false)
    }

    fn resolve_with(&self, info: &ConnInfo, may_block: bool) -> Option<ProcessIdentity> {
        if !may_block && !self.knows_user(info.uid) {
            return None;
        }
        let comm = comm_string(&info.comm);
        let visible = visible_pid(info);
        let exe = visible
            .filter(|&pid| still_the_caller(info, pid, &comm))
            .and_then(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).ok());
        let cgroup = match self.cached_cgroup_path(info.cgroup_id).flatten() {
            Some(path) => Some(path),
            None => match visible
                .and_then(|pid| read_proc(pid, "cgroup"))
                .and_then(|text| unified_cgroup(&text))
            {
                Some(path) => {
                    self.remember_cgroup(info.cgroup_id, &path);
                    Some(path)
                }
                None if may_block => self.cgroup_path(info.cgroup_id),
                None => self.cached_cgroup_path(info.cgroup_id)?,
            },
        };
        let unit = cgroup.as_deref().and_then(systemd_unit);
        let container = cgroup.as_deref().and_then(container_id);
        Some(ProcessIdentity {
            pid: info.pid,
            tid: info.tid,
            uid: info.uid,
            gid: info.gid,
            comm,
            cgroup_id: info.cgroup_id,
            user: self.user_name(info.uid),
            exe,
            cgroup,
            unit,
            container,
        })
    }

    fn knows_user(&self, uid: u32) -> bool {
        self.users
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&uid)
    }

    /// A cached cgroup id → path lookup; `None` when it is not cached (it would walk
    /// cgroupfs).
    fn cached_cgroup_path(&self, id: u64) -> Option<Option<String>> {
        if id == 0 {
            return Some(None);
        }
        let cache = self.cgroups.lock().unwrap_or_else(|p| p.into_inner());
        cache.get(&id).cloned().map(Some)
    }

    /// Remembers that cgroup `id` is at `path` (read from /proc), once cgroupfs confirms
    /// it: the caller may have moved to another cgroup between its connect and our read,
    /// and a wrong pair would name every later caller from `id` wrongly.
    fn remember_cgroup(&self, id: u64, path: &str) {
        use std::os::unix::fs::MetadataExt as _;
        if id == 0 {
            return;
        }
        let root = self
            .cgroup_root
            .get_or_init(|| crate::cgroup::cgroup2_mount().ok());
        let Some(root) = root else {
            return;
        };
        let dir = root.join(path.trim_start_matches('/'));
        if !std::fs::metadata(dir).is_ok_and(|meta| meta.ino() == id) {
            return;
        }
        self.cache_cgroup(id, path.to_owned());
    }

    /// Adds a found cgroup to the id → path cache, cleared when full.
    fn cache_cgroup(&self, id: u64, path: String) {
        let mut cache = self.cgroups.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_CACHED_CGROUPS {
            cache.clear();
        }
        cache.insert(id, path);
    }

    fn user_name(&self, uid: u32) -> Option<String> {
        let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        users
            .entry(uid)
            .or_insert_with(|| {
                nix::unistd::User::from_uid(uid.into())
                    .ok()
                    .flatten()
                    .map(|user| user.name)
            })
            .clone()
    }

    /// The cgroup path (as /proc/<pid>/cgroup would show it) of the cgroup with this id.
    /// The walk runs without the cache's lock: data-path threads look up cached ids
    /// meanwhile.
    fn cgroup_path(&self, id: u64) -> Option<String> {
        if let Some(known) = self.cached_cgroup_path(id) {
            return known;
        }
        let path = crate::cgroup::path_of_id(id);
        // A miss is not cached: the cgroup may just have been created.
        if let Some(path) = &path {
            self.cache_cgroup(id, path.clone());
        }
        path
    }
}

/// The caller's pid in our /proc: the kernel's `ns_pid` when it reported one, else the host
/// pid, but only when we are in the initial PID namespace where host pids are ours.
fn visible_pid(info: &ConnInfo) -> Option<u32> {
    if info.ns_pid != 0 {
        return Some(info.ns_pid);
    }
    let in_init_ns =
        crate::intercept::own_pid_namespace().is_ok_and(|(_, ino)| ino == INIT_PID_NS_INO);
    in_init_ns.then_some(info.pid)
}

/// Whether `/proc/<pid>` (`pid` as our /proc numbers the caller) still shows the process
/// that connected, judged by comm: a caller gone by now shows none, a reused pid most
/// likely another name.
///
/// The kernel recorded the comm of the *thread* that called `connect()`, which is often
/// not its process's: a tokio worker (`tokio-runtime-w`), a JVM's `HttpClient` thread or
/// any thread that named itself. So that thread's own comm is compared
/// (`/proc/<pid>/task/<tid>/comm`) where our /proc numbers threads as the kernel recorded
/// them (the host's numbers: the agent is not in a PID namespace of its own), and the
/// process's comm where it does not or the thread has exited since.
fn still_the_caller(info: &ConnInfo, pid: u32, comm: &str) -> bool {
    let matches = |file: &str| read_proc_file(file).as_deref().map(str::trim_end) == Some(comm);
    let host_numbers = pid == info.pid && info.tid != 0;
    if host_numbers && matches(&format!("/proc/{pid}/task/{}/comm", info.tid)) {
        return true;
    }
    matches(&format!("/proc/{pid}/comm"))
}

/// Longest /proc file read: a process's `cgroup` on a hybrid layout is a few hundred bytes.
const PROC_FILE_LIMIT: usize = 64 * 1024;

/// Read per new connection, so in as few syscalls as possible: `read_to_string` asks
/// for the size first (0 for /proc files) and then probes with small reads.
fn read_proc(pid: u32, file: &str) -> Option<String> {
    read_proc_file(&format!("/proc/{pid}/{file}"))
}

/// [`read_proc`] by path.
fn read_proc_file(path: &str) -> Option<String> {
    use std::io::Read as _;
    let mut handle = std::fs::File::open(path).ok()?;
    let mut buf = vec![0; 1024];
    let mut len = 0;
    loop {
        if len == buf.len() {
            if len >= PROC_FILE_LIMIT {
                return None;
            }
            buf.resize(len * 2, 0);
        }
        match handle.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(read) => len += read,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    buf.truncate(len);
    String::from_utf8(buf).ok()
}

/// The cgroup v2 path from /proc/<pid>/cgroup (the `0::` line).
fn unified_cgroup(text: &str) -> Option<String> {
    text.lines()
        .find_map(|line| line.strip_prefix("0::"))
        .map(str::to_owned)
}

/// The innermost systemd unit in a cgroup path: slices only group units, so the deepest
/// `.service` or `.scope` is the unit the process belongs to (a user service under
/// `user@1000.service/app.slice/` is its own unit, not the user manager).
pub fn systemd_unit(cgroup: &str) -> Option<String> {
    cgroup
        .rsplit('/')
        .find(|part| part.ends_with(".service") || part.ends_with(".scope"))
        .map(str::to_owned)
}

/// The container id in a cgroup path: runtimes name the container's cgroup after its
/// 64-hex id, with a runtime prefix under systemd (`docker-ID.scope`,
/// `cri-containerd-ID.scope`, `crio-ID.scope`, `libpod-ID.scope`) or bare (`/docker/ID`,
/// kubepods cgroupfs layouts).
pub fn container_id(cgroup: &str) -> Option<String> {
    const PREFIXES: [&str; 5] = [
        "docker-",
        "cri-containerd-",
        "crio-",
        "libpod-",
        "containerd-",
    ];
    cgroup.rsplit('/').find_map(|part| {
        let part = part.strip_suffix(".scope").unwrap_or(part);
        let id = PREFIXES
            .iter()
            .find_map(|prefix| part.strip_prefix(prefix))
            .unwrap_or(part);
        (id.len() == 64
            && id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .then(|| id.to_owned())
    })
}

fn comm_string(comm: &[u8; 16]) -> String {
    let len = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
    String::from_utf8_lossy(&comm[..len]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comm_stops_at_nul() {
        let mut comm = [0u8; 16];
        comm[..4].copy_from_slice(b"curl");
        assert_eq!(comm_string(&comm), "curl");
        assert_eq!(comm_string(&[b'x'; 16]), "x".repeat(16));
    }

    #[test]
    fn reads_proc_files_whole() {
        let me = std::process::id();
        assert_eq!(
            read_proc(me, "cgroup"),
            std::fs::read_to_string(format!("/proc/{me}/cgroup")).ok()
        );
        // Larger than the first buffer: /proc/self/maps of a test binary spans pages.
        assert_eq!(
            read_proc(me, "maps").map(|maps| maps.lines().next().map(str::to_owned)),
            std::fs::read_to_string(format!("/proc/{me}/maps"))
                .ok()
                .map(|maps| maps.lines().next().map(str::to_owned))
        );
        assert!(read_proc(me, "maps").unwrap().len() > 1024);
        assert_eq!(read_proc(me, "no-such-file"), None);
    }

    #[test]
    fn picks_the_unified_line() {
        let text = "12:pids:/user.slice\n0::/user.slice/session-3.scope\n";
        assert_eq!(
            unified_cgroup(text).as_deref(),
            Some("/user.slice/session-3.scope")
        );
    }

    #[test]
    fn finds_the_innermost_unit() {
        assert_eq!(
            systemd_unit("/system.slice/ci-runner.service").as_deref(),
            Some("ci-runner.service")
        );
        assert_eq!(
            systemd_unit("/user.slice/user-1000.slice/user@1000.service/app.slice/agent.service")
                .as_deref(),
            Some("agent.service")
        );
        assert_eq!(
            systemd_unit("/user.slice/user-1000.slice/session-3.scope").as_deref(),
            Some("session-3.scope")
        );
        assert_eq!(systemd_unit("/"), None);
        assert_eq!(systemd_unit("/gateway-test-1234"), None);
    }

    #[test]
    fn finds_container_ids() {
        let id = "0123456789abcdef".repeat(4);
        for path in [
            format!("/system.slice/docker-{id}.scope"),
            format!("/kubepods.slice/kubepods-pod1.slice/cri-containerd-{id}.scope"),
            format!("/machine.slice/libpod-{id}.scope/container"),
            format!("/docker/{id}"),
        ] {
            assert_eq!(container_id(&path).as_deref(), Some(id.as_str()), "{path}");
        }
        assert_eq!(container_id("/system.slice/ci-runner.service"), None);
        // Not hex, or not 64 long: not an id.
        assert_eq!(container_id(&format!("/docker/{}", "g".repeat(64))), None);
        assert_eq!(container_id(&format!("/docker/{}", &id[..63])), None);
    }

    /// What the kernel would record for a connect() by this test process (as root).
    fn own_connection() -> ConnInfo {
        let me = std::process::id();
        let own_comm = read_proc(me, "comm").unwrap();
        let mut comm = [0u8; 16];
        comm[..own_comm.trim_end().len()].copy_from_slice(own_comm.trim_end().as_bytes());
        ConnInfo {
            pid: me,
            ns_pid: me,
            uid: 0,
            comm,
            ..Default::default()
        }
    }

    /// A caller in cgroup `cgroup_id` under a host pid our namespace cannot see (ns_pid 0)
    /// and that is no process here.
    fn invisible_caller(cgroup_id: u64) -> ConnInfo {
        ConnInfo {
            pid: u32::MAX,
            uid: 0,
            cgroup_id,
            comm: *b"elsewhere\0\0\0\0\0\0\0",
            ..Default::default()
        }
    }

    /// A child cgroup no process is in, removed on drop (also when the test fails).
    struct EmptyCgroup {
        dir: std::path::PathBuf,
        id: u64,
    }

    impl EmptyCgroup {
        fn new() -> Self {
            let dir = crate::cgroup::cgroup2_mount()
                .unwrap()
                .join(format!("gateway-process-test-{}", std::process::id()));
            std::fs::create_dir(&dir).unwrap();
            let id = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&dir).unwrap());
            Self { dir, id }
        }
    }

    impl Drop for EmptyCgroup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir(&self.dir);
        }
    }

    /// The cgroup v2 path of this process and its cgroup id.
    fn own_cgroup() -> (String, u64) {
        let own = unified_cgroup(&read_proc(std::process::id(), "cgroup").unwrap()).unwrap();
        let dir = crate::cgroup::cgroup2_mount()
            .unwrap()
            .join(own.trim_start_matches('/'));
        let id = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(dir).unwrap());
        (own, id)
    }

    #[test]
    fn resolves_this_process() {
        let id = IdentityResolver::default().resolve(&own_connection());
        assert_eq!(id.exe, std::env::current_exe().ok());
        assert_eq!(id.user.as_deref(), Some("root"));
    }

    #[test]
    fn invisible_caller_gets_its_cgroup_from_the_id() {
        let (own, id) = own_cgroup();
        let identity = IdentityResolver::default().resolve(&invisible_caller(id));
        assert_eq!(identity.cgroup.as_deref(), Some(own.as_str()));
        assert_eq!(identity.exe, None);
    }

    /// A connect from a thread named otherwise than its process (a client's worker
    /// thread) still reports the executable: its own comm is what the kernel recorded.
    #[test]
    fn a_named_threads_connect_reports_the_exe() {
        let (ready, done) = (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
        let worker = std::thread::Builder::new()
            .name("mcp-worker".into())
            .spawn(move || {
                ready.0.send(nix::unistd::gettid().as_raw() as u32).unwrap();
                done.1.recv().ok();
            })
            .unwrap();
        let mut info = own_connection();
        info.tid = ready.1.recv().unwrap();
        info.comm = *b"mcp-worker\0\0\0\0\0\0";
        let while_running = IdentityResolver::default().resolve(&info).exe;
        done.0.send(()).unwrap();
        worker.join().unwrap();
        assert_eq!(while_running, std::env::current_exe().ok());
        // Once the thread has exited only the process's comm is left, and it differs.
        assert_eq!(IdentityResolver::default().resolve(&info).exe, None);
    }

    #[test]
    fn pid_reuse_hides_exe() {
        let info = ConnInfo {
            pid: std::process::id(),
            ns_pid: std::process::id(),
            comm: *b"not-this-comm\0\0\0",
            ..Default::default()
        };
        assert_eq!(IdentityResolver::default().resolve(&info).exe, None);
    }

    #[test]
    fn remembers_a_cgroup_read_from_proc_once_its_id_matches() {
        let (own, cgroup_id) = own_cgroup();
        let resolver = IdentityResolver::default();
        let invisible = invisible_caller(cgroup_id);
        resolver.resolve(&own_connection());
        // Not learnt from a connection that carried no cgroup id.
        assert_eq!(resolver.resolve_without_blocking(&invisible), None);
        // A pair cgroupfs contradicts is not kept: a caller recorded in an empty child
        // cgroup whose /proc entry names ours (it moved, as far as we can tell).
        let other = EmptyCgroup::new();
        let moved = ConnInfo {
            cgroup_id: other.id,
            ..own_connection()
        };
        assert_eq!(
            resolver.resolve(&moved).cgroup.as_deref(),
            Some(own.as_str())
        );
        let from_other = ConnInfo {
            cgroup_id: other.id,
            ..invisible
        };
        assert_eq!(resolver.resolve_without_blocking(&from_other), None);
        // The true pair is kept: the next caller from that cgroup needs no /proc read.
        let visible = ConnInfo {
            cgroup_id,
            ..own_connection()
        };
        assert_eq!(
            resolver.resolve(&visible).cgroup.as_deref(),
            Some(own.as_str())
        );
        let learnt = resolver.resolve_without_blocking(&invisible).unwrap();
        assert_eq!(learnt.cgroup.as_deref(), Some(own.as_str()));
    }

    #[test]
    fn resolves_without_blocking_only_what_needs_no_nss_or_cgroupfs_walk() {
        let visible = own_connection();
        let resolver = IdentityResolver::default();
        // The user name is not cached yet: that would be an NSS call.
        assert_eq!(resolver.resolve_without_blocking(&visible), None);
        let blocking = resolver.resolve(&visible);
        assert_eq!(resolver.resolve_without_blocking(&visible), Some(blocking));
        // A caller /proc cannot show needs the cgroupfs walk until its cgroup is cached.
        let (own, cgroup_id) = own_cgroup();
        let invisible = invisible_caller(cgroup_id);
        assert_eq!(resolver.resolve_without_blocking(&invisible), None);
        let blocking = resolver.resolve(&invisible);
        assert_eq!(blocking.cgroup.as_deref(), Some(own.as_str()));
        assert_eq!(
            resolver.resolve_without_blocking(&invisible),
            Some(blocking)
        );
    }
}
