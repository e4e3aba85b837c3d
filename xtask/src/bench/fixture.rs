//! What the benchmark sets up on the host, each piece owning its clean-up in `Drop`: a
//! child cgroup, a bpffs pin directory, the agent process, and bounded child processes.
//!
//! `Drop` runs on error returns and on panics alike, so a failed run still kills what it
//! started (by PID, through the `Child` it holds), detaches the programs and removes the
//! cgroup. Nothing is ever attached to the root cgroup: the agent gets a fresh child one.

use std::{
    collections::VecDeque,
    io::{BufRead as _, BufReader, Read as _},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};

const PIN_ROOT: &str = "/sys/fs/bpf";
/// Names of everything this benchmark creates start with this, then the xtask PID.
const PREFIX: &str = "gateway-bench-";
/// Bound on clean-up waits (cgroup removal, agent exit, `detach`).
const CLEANUP_WAIT: Duration = Duration::from_secs(10);
/// How many of the agent's last log lines an error message shows.
const LOG_TAIL: usize = 40;

/// Set once SIGINT or SIGTERM arrived; every wait checks it and fails, so the guards run.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Turns SIGINT/SIGTERM into an orderly failure instead of an exit that would skip the
/// guards and leave the cgroup and pins behind (Ctrl-C reaches the agent and clients as
/// well, being sent to the whole process group; they exit on their own).
pub fn catch_interrupts(runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let _entered = runtime.enter();
    let mut int = signal(SignalKind::interrupt()).context("installing a SIGINT handler")?;
    let mut term = signal(SignalKind::terminate()).context("installing a SIGTERM handler")?;
    runtime.spawn(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        eprintln!("xtask bench: interrupted; cleaning up");
        INTERRUPTED.store(true, Ordering::SeqCst);
    });
    Ok(())
}

pub fn check_interrupted() -> anyhow::Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        bail!("interrupted");
    }
    Ok(())
}

/// eBPF attach (CAP_BPF, CAP_NET_ADMIN) and cgroup creation need root.
pub fn require_root() -> anyhow::Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!(
            "cargo xtask bench must run as root: it attaches eBPF programs to a cgroup it \
             creates (try `sudo -E cargo xtask bench`)"
        );
    }
    Ok(())
}

fn mounts() -> anyhow::Result<Vec<Vec<String>>> {
    let text = std::fs::read_to_string("/proc/mounts").context("reading /proc/mounts")?;
    Ok(text
        .lines()
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect())
}

/// The cgroup v2 mount point (the benchmark's cgroup is created directly below it).
pub fn cgroup2_root() -> anyhow::Result<PathBuf> {
    mounts()?
        .iter()
        .find(|f| f.get(2).map(String::as_str) == Some("cgroup2"))
        .map(|f| PathBuf::from(&f[1]))
        .context("no cgroup2 filesystem in /proc/mounts (cgroup v2 is required)")
}

/// Mounts bpffs on /sys/fs/bpf if it is not there yet, so the pin directory (and its
/// clean-up) are on the filesystem the agent pins to.
pub fn ensure_bpffs() -> anyhow::Result<()> {
    let mounted = mounts()?.iter().any(|f| {
        f.get(1).map(String::as_str) == Some(PIN_ROOT)
            && f.get(2).map(String::as_str) == Some("bpf")
    });
    if !mounted {
        let status = Command::new("mount")
            .args(["-t", "bpf", "bpf", PIN_ROOT])
            .status()
            .context("running mount")?;
        if !status.success() {
            bail!("mounting bpffs on {PIN_ROOT} failed ({status})");
        }
    }
    Ok(())
}

fn own_name() -> String {
    format!("{PREFIX}{}", std::process::id())
}

/// Removes cgroups and pins of earlier runs whose xtask process is gone (killed before its
/// guards could run, e.g. by SIGKILL). Unlinking the pins detaches their programs.
pub fn sweep_stale() {
    let Ok(cgroup_root) = cgroup2_root() else {
        return;
    };
    for parent in [cgroup_root, PathBuf::from(PIN_ROOT)] {
        let Ok(entries) = std::fs::read_dir(&parent) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = name.strip_prefix(PREFIX) else {
                continue;
            };
            if !Path::new("/proc").join(pid).exists() {
                eprintln!("xtask bench: removing stale {}", entry.path().display());
                if parent == Path::new(PIN_ROOT) {
                    remove_pins(&entry.path());
                } else {
                    remove_cgroup(&entry.path());
                }
            }
        }
    }
}

/// A fresh child cgroup, `<cgroup2 mount>/gateway-bench-<pid>`.
pub struct Cgroup {
    pub path: PathBuf,
}

impl Cgroup {
    pub fn create() -> anyhow::Result<Self> {
        let path = cgroup2_root()?.join(own_name());
        std::fs::create_dir(&path)
            .with_context(|| format!("creating cgroup {}", path.display()))?;
        Ok(Self { path })
    }

    pub fn procs(&self) -> PathBuf {
        self.path.join("cgroup.procs")
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        remove_cgroup(&self.path);
    }
}

/// Moves any process still in `path` to the parent cgroup, then removes it; retried for a
/// while because rmdir fails with EBUSY until exiting tasks are fully reaped.
fn remove_cgroup(path: &Path) {
    let Some(parent) = path.parent().map(|p| p.join("cgroup.procs")) else {
        return;
    };
    let deadline = Instant::now() + CLEANUP_WAIT;
    loop {
        if let Ok(pids) = std::fs::read_to_string(path.join("cgroup.procs")) {
            for pid in pids.lines() {
                let _ = std::fs::write(&parent, pid);
            }
        }
        match std::fs::remove_dir(path) {
            Ok(()) => return,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return,
            Err(err) if Instant::now() > deadline => {
                eprintln!(
                    "xtask bench: cannot remove cgroup {}: {err}",
                    path.display()
                );
                return;
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// The agent's pin directory, `/sys/fs/bpf/gateway-bench-<pid>`. On drop the agent's own
/// `detach` removes interception the supported way; unlinking what is left catches the
/// case where `detach` could not run (no config yet, broken binary).
pub struct PinDir {
    pub path: PathBuf,
    agent: PathBuf,
    config: PathBuf,
}

impl PinDir {
    pub fn new(agent: &Path, config: &Path) -> Self {
        Self {
            path: Path::new(PIN_ROOT).join(own_name()),
            agent: agent.to_owned(),
            config: config.to_owned(),
        }
    }
}

impl Drop for PinDir {
    fn drop(&mut self) {
        if self.config.exists() {
            let detach = Command::new(&self.agent)
                .args(["detach", "--config"])
                .arg(&self.config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn();
            match detach {
                Ok(child) => {
                    if let Err(err) = BoundedChild::new(child).wait_cleanup(CLEANUP_WAIT) {
                        eprintln!("xtask bench: gateway-agent detach: {err:#}");
                    }
                }
                Err(err) => eprintln!("xtask bench: running gateway-agent detach: {err}"),
            }
        }
        remove_pins(&self.path);
    }
}

fn remove_pins(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_pins(&path);
        } else {
            let _ = std::fs::remove_file(&path);
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// A port nothing listens on right now (bound, then released) for the agent's listener.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))
        .context("binding an ephemeral port")?
        .local_addr()?
        .port())
}

/// A child process that is killed (SIGKILL, by PID) on drop unless it already exited,
/// and whose waits are bounded.
pub struct BoundedChild {
    child: Child,
    exited: Option<ExitStatus>,
}

impl BoundedChild {
    pub fn new(child: Child) -> Self {
        Self {
            child,
            exited: None,
        }
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `limit` for the process to exit; kills it and fails beyond that, or
    /// as soon as the benchmark is interrupted.
    pub fn wait(&mut self, limit: Duration) -> anyhow::Result<ExitStatus> {
        self.wait_until(limit, true)
    }

    /// Like [`BoundedChild::wait`], but an interrupt does not cut it short: for clean-up
    /// steps (the agent's shutdown, `detach`), which an interrupt must not skip.
    pub fn wait_cleanup(&mut self, limit: Duration) -> anyhow::Result<ExitStatus> {
        self.wait_until(limit, false)
    }

    fn wait_until(&mut self, limit: Duration, interruptible: bool) -> anyhow::Result<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                self.kill();
                bail!(
                    "process {} did not finish within {limit:?}; killed",
                    self.id()
                );
            }
            if interruptible && let Err(err) = check_interrupted() {
                self.kill();
                return Err(err);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn try_wait(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        if self.exited.is_none() {
            self.exited = self
                .child
                .try_wait()
                .context("waiting for a child process")?;
        }
        Ok(self.exited)
    }

    /// The exit status, if the process has exited (without waiting).
    pub fn exited(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        self.try_wait()
    }

    /// Sends `signal` (only while the child is unreaped, so the PID is still ours).
    pub fn signal(&mut self, signal: Signal) {
        if matches!(self.try_wait(), Ok(None)) {
            let _ = kill(Pid::from_raw(self.child.id() as i32), signal);
        }
    }

    fn kill(&mut self) {
        if matches!(self.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            self.exited = self.child.wait().ok();
        }
    }
}

impl Drop for BoundedChild {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `command` with stdout captured, bounded by `limit`; returns its PID and stdout.
/// Fails if it exits unsuccessfully.
pub fn run_captured(mut command: Command, limit: Duration) -> anyhow::Result<(u32, String)> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("spawning {:?}", command.get_program()))?;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut child = BoundedChild::new(child);
    // Read concurrently so a chatty child never blocks on a full pipe.
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        out
    });
    let status = child.wait(limit)?;
    let out = reader.join().unwrap_or_default();
    if !status.success() {
        bail!("{:?} failed ({status})", command.get_program());
    }
    Ok((child.id(), out))
}

/// What the agent's log says so far, filled by the thread draining its stdout.
#[derive(Default)]
struct AgentLog {
    /// PID of the client of every "intercepted connection" line.
    intercepted: Vec<u64>,
    /// The last lines, for error messages.
    tail: VecDeque<String>,
}

/// The running agent. Stopped on drop: SIGTERM (it then releases its hold on the pins
/// cleanly), SIGKILL if it does not exit in time.
pub struct Agent {
    child: BoundedChild,
    log: Arc<Mutex<AgentLog>>,
}

impl Agent {
    /// Starts `<agent> --log-format json run --config <config>` and waits (bounded by
    /// `ready_within`) for its "interception active" line.
    pub fn start(binary: &Path, config: &Path, ready_within: Duration) -> anyhow::Result<Self> {
        let mut child = Command::new(binary)
            .args(["--log-format", "json", "run", "--config"])
            .arg(config)
            // Readiness is an info line: an inherited RUST_LOG=warn would hide it.
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let agent = Self {
            child: BoundedChild::new(child),
            log: Arc::default(),
        };
        let (ready_tx, ready_rx) = mpsc::channel();
        let log = Arc::clone(&agent.log);
        // Never joined: it ends when the agent's stdout closes, and must keep draining
        // until then so the agent never blocks writing its per-connection lines.
        std::thread::spawn(move || drain(stdout, &log, &ready_tx));
        let deadline = Instant::now() + ready_within;
        loop {
            check_interrupted()?;
            match ready_rx.recv_timeout(Duration::from_millis(100)) {
                Ok(()) => return Ok(agent),
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {}
                Err(mpsc::RecvTimeoutError::Timeout) => bail!(
                    "the agent did not log \"interception active\" within {ready_within:?}; its log:\n{}",
                    agent.tail()
                ),
                Err(mpsc::RecvTimeoutError::Disconnected) => bail!(
                    "the agent exited before interception was active; its log:\n{}",
                    agent.tail()
                ),
            }
        }
    }

    /// How many connections the agent reported intercepting from process `pid`, waiting
    /// (up to `within`) for at least one: the log line may trail the client's exit.
    pub fn intercepted_from(&self, pid: u32, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        loop {
            let count = self
                .lock()
                .intercepted
                .iter()
                .filter(|&&p| p == u64::from(pid))
                .count();
            if count > 0 || Instant::now() >= deadline {
                return count;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn tail(&self) -> String {
        self.lock()
            .tail
            .iter()
            .map(|l| format!("  {l}\n"))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, AgentLog> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.child.signal(Signal::SIGTERM);
        if let Err(err) = self.child.wait_cleanup(CLEANUP_WAIT) {
            eprintln!("xtask bench: stopping the agent: {err:#}");
        }
    }
}

/// Reads the agent's JSON log line by line. Only the two messages the benchmark needs are
/// parsed; the substring test keeps the cost of everything else negligible.
fn drain(stdout: impl std::io::Read, log: &Mutex<AgentLog>, ready: &mpsc::Sender<()>) {
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        let message =
            if line.contains("interception active") || line.contains("intercepted connection") {
                serde_json::from_str::<serde_json::Value>(&line).ok()
            } else {
                None
            };
        let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(value) = message {
            match value["message"].as_str() {
                Some("interception active") => {
                    let _ = ready.send(());
                }
                Some("intercepted connection") => {
                    log.intercepted.push(value["pid"].as_u64().unwrap_or(0));
                }
                _ => {}
            }
        }
        if log.tail.len() == LOG_TAIL {
            log.tail.pop_front();
        }
        log.tail.push_back(line);
    }
}
