//! Shared fixtures for the end-to-end tests: a child cgroup, a bpffs pin directory, the
//! agent process with its JSON log, a tiny HTTP server, and clients placed in the cgroup.
//!
//! Every fixture cleans up in `Drop`, so a failing (panicking) test still kills what it
//! started by PID, detaches its programs (by unlinking the pins) and removes its cgroup.
//! Nothing is ever attached to the root cgroup: the agent is always given a child one.
#![allow(dead_code)] // each test binary uses a different subset

pub mod oidc;
pub mod stall;
pub mod tls;

use std::{
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::{
        Arc, Condvar, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

pub const AGENT: &str = env!("CARGO_BIN_EXE_gateway-agent");
/// Upper bound for any single wait in these tests.
pub const WAIT: Duration = Duration::from_secs(20);

static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

/// Privileged tests need root (CAP_BPF, CAP_NET_ADMIN, cgroup writes). Elsewhere they are
/// skipped with a printed reason, like aya's own integration tests.
pub fn require_root(test: &str) -> bool {
    if effective_uid() == 0 {
        mount_bpffs_once();
        sweep_stale();
        true
    } else {
        eprintln!("skipping {test}: needs root for eBPF and cgroups");
        false
    }
}

fn effective_uid() -> u32 {
    // /proc/self/status avoids a libc dependency just for geteuid.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(u32::MAX)
}

fn unique_name() -> String {
    format!(
        "gateway-e2e-{}-{}",
        std::process::id(),
        NEXT_ID.fetch_add(1, Ordering::SeqCst)
    )
}

pub fn cgroup2_root() -> PathBuf {
    let mounts = std::fs::read_to_string("/proc/mounts").expect("read /proc/mounts");
    mounts
        .lines()
        .find_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            (f.get(2) == Some(&"cgroup2")).then(|| PathBuf::from(f[1]))
        })
        .expect("no cgroup2 mount in /proc/mounts")
}

const PIN_ROOT: &str = "/sys/fs/bpf";

/// Agents mount bpffs on /sys/fs/bpf when it is missing (a fresh machine). Tests start
/// agents in parallel, and two concurrent mounts would stack, hiding one agent's pins
/// from the next; so the suite mounts it once, up front.
fn mount_bpffs_once() {
    static DONE: std::sync::Once = std::sync::Once::new();
    DONE.call_once(|| {
        let mounts = std::fs::read_to_string("/proc/mounts").expect("read /proc/mounts");
        let mounted = mounts.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.get(1) == Some(&PIN_ROOT) && f.get(2) == Some(&"bpf")
        });
        if !mounted {
            let status = Command::new("mount")
                .args(["-t", "bpf", "bpf", PIN_ROOT])
                .status()
                .expect("run mount");
            assert!(status.success(), "mounting bpffs on {PIN_ROOT} failed");
        }
    });
}

/// Removes fixtures left by test processes that were killed before their guards ran.
fn sweep_stale() {
    static DONE: std::sync::Once = std::sync::Once::new();
    DONE.call_once(|| {
        for parent in [cgroup2_root(), PathBuf::from(PIN_ROOT)] {
            let Ok(entries) = std::fs::read_dir(&parent) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let Some(pid) = name
                    .strip_prefix("gateway-e2e-")
                    .and_then(|rest| rest.split('-').next())
                else {
                    continue;
                };
                if !Path::new("/proc").join(pid).exists() {
                    remove_pins(&entry.path());
                    let _ = std::fs::remove_dir(entry.path());
                }
            }
        }
    });
}

/// A fresh child cgroup; removed on drop after moving any process left in it out.
pub struct TestCgroup {
    pub path: PathBuf,
}

impl TestCgroup {
    pub fn new() -> Self {
        let path = cgroup2_root().join(unique_name());
        std::fs::create_dir(&path).expect("create child cgroup");
        Self { path }
    }

    pub fn procs(&self) -> PathBuf {
        self.path.join("cgroup.procs")
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let parent = self
            .path
            .parent()
            .expect("cgroup parent")
            .join("cgroup.procs");
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(pids) = std::fs::read_to_string(self.procs()) {
                for pid in pids.lines() {
                    let _ = std::fs::write(&parent, pid);
                }
            }
            match std::fs::remove_dir(&self.path) {
                Ok(()) => return,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => return,
                // EBUSY while an exiting task is still being reaped.
                Err(err) if Instant::now() > deadline => {
                    eprintln!("cannot remove {}: {err}", self.path.display());
                    return;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
}

/// A pin directory on bpffs; on drop every pin under it is unlinked, which detaches the
/// agent's links even if the agent was killed.
pub struct PinDir {
    pub path: PathBuf,
}

impl PinDir {
    pub fn new() -> Self {
        Self {
            path: Path::new(PIN_ROOT).join(unique_name()),
        }
    }
}

impl Drop for PinDir {
    fn drop(&mut self) {
        remove_pins(&self.path);
    }
}

fn remove_pins(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            remove_pins(&path);
        } else {
            let _ = std::fs::remove_file(&path);
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// A port nothing is bound to right now, for a server or agent the test starts next.
///
/// Taken from *below* the kernel's ephemeral range: a port the kernel handed out for
/// `bind(0)` and then released could be handed out again to another test's listener or
/// outgoing connection before our process binds it (CI saw an agent fail with "address
/// in use" that way). Below the range only explicit binds compete, and within this test
/// binary a counter keeps every port distinct; the start is spread by PID and time so
/// successive binaries do not walk the same ports while old connections linger.
pub fn free_port(ip: &str) -> u16 {
    static NEXT: AtomicUsize = AtomicUsize::new(usize::MAX);
    const LOW: usize = 10_000;
    let high = ephemeral_range_start().max(LOW + 1_000);
    let span = high - LOW;
    let seed = std::process::id() as usize * 7_919
        + std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() as usize);
    let _ = NEXT.compare_exchange(usize::MAX, seed % span, Ordering::SeqCst, Ordering::SeqCst);
    for _ in 0..span {
        let port = (LOW + NEXT.fetch_add(1, Ordering::SeqCst) % span) as u16;
        if TcpListener::bind((ip, port)).is_ok() {
            return port;
        }
    }
    panic!("no free port on {ip} in {LOW}..{high}");
}

/// The first port the kernel may pick for `bind(0)` or `connect`.
fn ephemeral_range_start() -> usize {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

/// What an agent test needs: its cgroup, pins, a config file and the agent's ports.
pub struct Scenario {
    pub cgroup: TestCgroup,
    pub pins: PinDir,
    pub dir: tempfile::TempDir,
    pub listen_port: u16,
}

impl Scenario {
    pub fn new() -> Self {
        Self {
            cgroup: TestCgroup::new(),
            pins: PinDir::new(),
            dir: tempfile::tempdir().expect("tempdir"),
            listen_port: free_port("127.0.0.1"),
        }
    }

    /// Writes a config intercepting `ports` for this scenario's cgroup.
    pub fn config(&self, ports: &[u16]) -> PathBuf {
        self.config_with(ports, "")
    }

    /// A config intercepting `ports` whose policy directory holds one file, `policy`.
    pub fn config_with_policy(&self, ports: &[u16], policy: &str) -> PathBuf {
        let policies = self.dir.path().join("policies");
        std::fs::create_dir_all(&policies).expect("create policy dir");
        std::fs::write(policies.join("10-test.toml"), policy).expect("write policy");
        self.config_with(
            ports,
            &format!("\n[policy]\ndir = \"{}\"\n", policies.display()),
        )
    }

    /// Where this scenario's agent writes its audit trail (unless `extra` configures
    /// `[audit]` itself).
    pub fn audit_dir(&self) -> PathBuf {
        self.dir.path().join("audit")
    }

    /// Like [`Scenario::config`], with `extra` TOML (more sections) appended.
    pub fn config_with(&self, ports: &[u16], extra: &str) -> PathBuf {
        let path = self.dir.path().join("agent.toml");
        let audit = if extra.contains("[audit]") {
            String::new()
        } else {
            format!("\n[audit]\ndir = \"{}\"\n", self.audit_dir().display())
        };
        let text = format!(
            "[intercept]\nports = {ports:?}\nlisten = \"127.0.0.1:{port}\"\nlisten6 = \"[::1]:{port}\"\n\
             cgroup = \"{cgroup}\"\npin_dir = \"{pins}\"\n\n[proxy]\nconnect_timeout_ms = 2000\n{extra}{audit}",
            port = self.listen_port,
            cgroup = self.cgroup.path.display(),
            pins = self.pins.path.display(),
        );
        std::fs::write(&path, text).expect("write config");
        path
    }

    /// Starts the agent (outside the test cgroup) and waits until interception is active.
    pub fn start_agent(&self, config: &Path) -> Agent {
        Agent::spawn(Command::new(AGENT), config, &[])
    }

    /// Starts the agent *inside* the test cgroup, where its own connects would be
    /// redirected if it did not exempt itself.
    pub fn start_agent_in_cgroup(&self, config: &Path) -> Agent {
        let mut cmd = self.in_cgroup();
        cmd.arg(AGENT);
        Agent::spawn(cmd, config, &[])
    }

    /// Starts the agent inside the test cgroup *and* as PID 1 of a new PID namespace with
    /// its own /proc (as under systemd in a container): the kernel's tgids are not the
    /// agent's. `--kill-child` takes the agent down with `unshare` when the test drops it.
    pub fn start_agent_in_cgroup_and_pidns(&self, config: &Path) -> Agent {
        let mut cmd = self.in_cgroup();
        cmd.args([
            "unshare",
            "--pid",
            "--fork",
            "--mount-proc",
            "--kill-child=SIGTERM",
            AGENT,
        ]);
        Agent::spawn(cmd, config, &[])
    }

    /// `sh` moving itself into the test cgroup, then exec'ing what the caller appends
    /// (so the pid the caller sees is the pid the kernel records).
    fn in_cgroup(&self) -> Command {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg("set -e; echo $$ > \"$0\"; exec \"$@\"")
            .arg(self.cgroup.procs());
        cmd
    }

    /// Runs `argv` in the test cgroup and waits for it (callers bound it themselves).
    pub fn run_in_cgroup(&self, argv: &[&str]) -> std::process::ExitStatus {
        self.in_cgroup()
            .args(argv)
            .status()
            .expect("spawn process in cgroup")
    }

    /// Starts `argv` in the test cgroup with stdout piped, for a test that reads its
    /// progress while it runs (the caller kills it by PID when done).
    pub fn spawn_in_cgroup(&self, argv: &[&str]) -> Child {
        self.in_cgroup()
            .args(argv)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn process in cgroup")
    }

    /// Like [`Scenario::run_in_cgroup`], capturing stdout and stderr.
    pub fn output_in_cgroup(&self, argv: &[&str]) -> Output {
        self.in_cgroup()
            .args(argv)
            .stdin(Stdio::null())
            .output()
            .expect("spawn process in cgroup")
    }

    /// curl in the test cgroup with the suite's bounds (`--max-time`, no proxies, errors
    /// shown), then `args`.
    pub fn curl_output(&self, args: &[&str]) -> Output {
        let mut argv = vec!["curl", "-sS", "--max-time", "20", "--noproxy", "*"];
        argv.extend_from_slice(args);
        self.output_in_cgroup(&argv)
    }

    /// Runs curl in the test cgroup (optionally as another uid) and returns its pid and
    /// what it printed.
    pub fn curl_in_cgroup(&self, url: &str, as_uid: Option<u32>) -> Curl {
        let mut cmd = self.in_cgroup();
        if let Some(uid) = as_uid {
            cmd.args([
                "setpriv",
                &format!("--reuid={uid}"),
                &format!("--regid={uid}"),
                "--clear-groups",
            ]);
        }
        cmd.arg("curl");
        curl(cmd, url)
    }
}

/// curl outside any test cgroup.
pub fn curl_direct(url: &str) -> Curl {
    curl(Command::new("curl"), url)
}

pub struct Curl {
    pub pid: u32,
    pub output: Output,
    pub elapsed: Duration,
}

impl Curl {
    pub fn exit_code(&self) -> i32 {
        self.output.status.code().unwrap_or(-1)
    }

    pub fn body(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    #[track_caller]
    pub fn assert_ok(&self) -> String {
        assert!(
            self.output.status.success(),
            "curl failed ({}): {}",
            self.exit_code(),
            String::from_utf8_lossy(&self.output.stderr)
        );
        self.body()
    }
}

fn curl(mut cmd: Command, url: &str) -> Curl {
    // --max-time bounds every client; --noproxy keeps environment proxies out of the way.
    cmd.args(["-sS", "--max-time", "10", "--noproxy", "*", url])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let child = cmd.spawn().expect("spawn curl");
    let pid = child.id();
    let output = child.wait_with_output().expect("wait for curl");
    Curl {
        pid,
        output,
        elapsed: started.elapsed(),
    }
}

/// The agent process, with its JSON log lines collected as they arrive. Killed (SIGKILL,
/// by PID) on drop if still running.
pub struct Agent {
    child: Child,
    log: Arc<(Mutex<Vec<serde_json::Value>>, Condvar)>,
    reader: Option<JoinHandle<()>>,
}

impl Agent {
    /// Starts the agent outside any test cgroup with extra `run` flags.
    pub fn spawn_with(config: &Path, run_flags: &[&str]) -> Self {
        Self::spawn(Command::new(AGENT), config, run_flags)
    }

    /// Starts `cmd` (a wrapper such as `setpriv …` ending in the agent binary, or the agent
    /// with extra environment) with `run --config config`.
    pub fn spawn_command(cmd: Command, config: &Path) -> Self {
        Self::spawn(cmd, config, &[])
    }

    fn spawn(mut cmd: Command, config: &Path, run_flags: &[&str]) -> Self {
        cmd.args(["--log-format", "json", "run", "--config"])
            .arg(config)
            .args(run_flags)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("spawn gateway-agent");
        let stdout = child.stdout.take().expect("agent stdout");
        let log = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let sink = Arc::clone(&log);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let value = serde_json::from_str(&line)
                    .unwrap_or_else(|_| serde_json::json!({ "message": line }));
                let (lines, cond) = &*sink;
                lines.lock().unwrap().push(value);
                cond.notify_all();
            }
        });
        let agent = Self {
            child,
            log,
            reader: Some(reader),
        };
        agent.wait_for("interception active", |_| true);
        agent
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits (bounded) for a log line with `message` that satisfies `pred`; panics with
    /// the whole log on timeout.
    #[track_caller]
    pub fn wait_for(
        &self,
        message: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        self.wait_until(
            |log| {
                log.iter()
                    .find(|l| l["message"] == message && pred(l))
                    .cloned()
            },
            |_| format!("agent never logged {message:?}"),
        )
    }

    /// Waits (bounded) until `count` log lines satisfy `pred`, then checks there are no
    /// more. The agent writes its log in batches (up to 20 ms after the event), so a
    /// client can see its answer before the agent's line about it is readable.
    #[track_caller]
    pub fn wait_for_count(&self, count: usize, pred: impl Fn(&serde_json::Value) -> bool) {
        let seen_count = |log: &[serde_json::Value]| log.iter().filter(|l| pred(l)).count();
        let seen = self.wait_until(
            |log| Some(seen_count(log)).filter(|&seen| seen >= count),
            |log| format!("{} of {count} log lines seen", seen_count(log)),
        );
        assert_eq!(seen, count, "more log lines than expected");
    }

    /// Waits (bounded) on the log until `found` answers; on timeout panics with what
    /// `missing` says and the whole log.
    #[track_caller]
    fn wait_until<T>(
        &self,
        found: impl Fn(&[serde_json::Value]) -> Option<T>,
        missing: impl Fn(&[serde_json::Value]) -> String,
    ) -> T {
        let (lines, cond) = &*self.log;
        let deadline = Instant::now() + WAIT;
        let mut guard = lines.lock().unwrap();
        loop {
            if let Some(answer) = found(&guard) {
                return answer;
            }
            let now = Instant::now();
            assert!(
                now < deadline,
                "{}; log so far:\n{}",
                missing(&guard),
                render(&guard)
            );
            guard = cond.wait_timeout(guard, deadline - now).unwrap().0;
        }
    }

    /// Every log line seen so far.
    pub fn all_lines(&self) -> Vec<serde_json::Value> {
        self.log.0.lock().unwrap().clone()
    }

    /// The log lines with `message` seen so far.
    pub fn lines(&self, message: &str) -> Vec<serde_json::Value> {
        let (lines, _) = &*self.log;
        lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l["message"] == message)
            .cloned()
            .collect()
    }

    /// Sends `signal` and waits (bounded) for the agent to exit.
    pub fn stop(mut self, signal: i32) -> std::process::ExitStatus {
        // SAFETY: plain kill(2) on the PID of a child we have not yet reaped.
        unsafe { libc::kill(self.child.id() as i32, signal) };
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for agent") {
                if let Some(reader) = self.reader.take() {
                    let _ = reader.join();
                }
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "agent did not exit after signal {signal}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn render(lines: &[serde_json::Value]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

impl Drop for Agent {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// A minimal HTTP/1.1 server on std threads that answers every request with a body naming
/// the peer it saw, so a test can tell whether a connection came through the agent.
pub struct HttpServer {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HttpServer {
    pub fn start(ip: &str) -> Self {
        let listener = TcpListener::bind((ip, 0)).expect("bind test server");
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    std::thread::spawn(move || answer(conn));
                }
            }
        });
        Self {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The URL of this server, with IPv6 literals bracketed.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

/// Reads an HTTP request head (bounded in size and, through the read timeout, in time);
/// `None` if the peer closed or stalled first.
pub fn read_request_head(conn: &mut TcpStream) -> Option<String> {
    conn.set_read_timeout(Some(WAIT)).ok()?;
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        if request.len() > 65_536 {
            return None;
        }
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    Some(String::from_utf8_lossy(&request).into_owned())
}

/// Reads a request head and drains its Content-Length body (at most 1 MiB; bounded by the
/// read timeout), so closing afterwards does not reset the connection. Returns the head
/// (with whatever body bytes arrived with it).
pub fn read_request(conn: &mut TcpStream) -> Option<String> {
    let head = read_request_head(conn)?;
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    let already = head
        .split_once("\r\n\r\n")
        .map_or(0, |(_, rest)| rest.len());
    let mut rest = vec![0u8; length.saturating_sub(already).min(1 << 20)];
    let _ = conn.read_exact(&mut rest);
    Some(head)
}

fn answer(mut conn: TcpStream) {
    if read_request_head(&mut conn).is_none() {
        return;
    }
    let body = format!(
        "hello from the real server; peer={}\n",
        conn.peer_addr().unwrap()
    );
    let _ = write!(
        conn,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The workspace root (the tests are declared in gateway-agent/Cargo.toml).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

/// The virtualenv `cargo xtask setup` makes, with the Python MCP SDK.
pub fn python() -> PathBuf {
    let python = workspace().join("target/e2e/venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `cargo xtask setup` (or `cargo xtask test`)",
        python.display()
    );
    python
}

/// A real MCP server on a free loopback port, killed by PID on drop: the Python SDK's
/// MCPServer (tests/mcp/server.py) or the reference `server-everything` (TypeScript SDK).
pub struct McpServer {
    child: Child,
    pub port: u16,
    path: &'static str,
    /// Which client speaks to it: tests/mcp/client.py or tests/mcp/node/client.mjs.
    node: bool,
}

/// The fake credentials tests/mcp/server.py's tools return (keep in step with it).
pub const AWS_KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
pub const GITHUB_TOKEN: &str = "ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8";
pub const DB_PASSWORD: &str = "hunter2-correct-horse-battery";
pub const SERVER_SECRETS: [&str; 3] = [AWS_KEY_ID, GITHUB_TOKEN, DB_PASSWORD];

/// A policy denying tests/mcp/server.py's `shell_exec` (any `shell_*` tool) to everyone;
/// everything else is allowed and masked.
pub const DENY_SHELL_POLICY: &str = r#"
[[rule]]
id = "deny-shell"
description = "no shell access through MCP"
action = "deny"
reason = "shell tools are not allowed"
[rule.match]
method = ["tools/call"]
tool = ["shell_*"]
"#;

/// Fake credentials planted in server-everything's environment (its `get-env` tool
/// returns the whole environment, a realistic leak).
pub const PLANTED_ENV: [(&str, &str); 3] = [
    ("GITHUB_TOKEN", "ghp_Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4J3i2"),
    ("DB_PASSWORD", "correct-horse-battery-staple"),
    (
        "AWS_SECRET_ACCESS_KEY",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ),
];

impl McpServer {
    /// tests/mcp/server.py. `state`: stateful | stateless | legacy-sse (the deprecated
    /// HTTP+SSE transport); `response`: sse | json.
    pub fn start(state: &str, response: &str) -> Self {
        let port = free_port("127.0.0.1");
        let mut cmd = Command::new(python());
        cmd.arg(workspace().join("tests/mcp/server.py"))
            .args([&port.to_string(), state, response]);
        let path = if state == "legacy-sse" { "sse" } else { "mcp" };
        Self::spawn(cmd, port, path, false)
    }

    /// tests/mcp/server.py's server with every request (method, path, body) appended to
    /// `log` (tests/mcp/logged_server.py).
    pub fn logged(log: &Path) -> Self {
        let port = free_port("127.0.0.1");
        let mut cmd = Command::new(python());
        cmd.arg(workspace().join("tests/mcp/logged_server.py"))
            .arg(port.to_string())
            .arg(log);
        Self::spawn(cmd, port, "mcp", false)
    }

    /// server-everything (Streamable HTTP) with every request appended to `log`
    /// (tests/mcp/node/request-log.cjs, preloaded).
    pub fn everything_logged(log: &Path) -> Self {
        let port = free_port("127.0.0.1");
        let entry = everything_entry();
        let mut cmd = Command::new("node");
        cmd.arg("--require")
            .arg(workspace().join("tests/mcp/node/request-log.cjs"))
            .arg(entry)
            .arg("streamableHttp")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("PORT", port.to_string())
            .env("REQUEST_LOG", log);
        Self::spawn(cmd, port, "mcp", true)
    }

    /// tests/mcp/pins_server.py on `port` (a restart reuses it), its `forecast` tool
    /// described by `description`; tests/mcp/pins_client.py speaks to it.
    pub fn pins(port: u16, description: &str, dir: &Path) -> Self {
        let file = dir.join(format!("description-{port}.txt"));
        std::fs::write(&file, description).expect("write tool description");
        let mut cmd = Command::new(python());
        cmd.arg(workspace().join("tests/mcp/pins_server.py"))
            .arg(port.to_string())
            .arg(&file);
        Self::spawn(cmd, port, "mcp", false)
    }

    /// tests/mcp/pins_client.py through the scenario's agent.
    pub fn pins_client_in(&self, scenario: &Scenario) -> serde_json::Value {
        self.python_client_in(scenario, "pins_client.py", &[])
    }

    /// `@modelcontextprotocol/server-everything`; `transport`: streamableHttp | sse.
    pub fn everything(transport: &str) -> Self {
        let port = free_port("127.0.0.1");
        let entry = everything_entry();
        let mut cmd = Command::new("node");
        cmd.arg(entry)
            .arg(transport)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("PORT", port.to_string())
            .envs(PLANTED_ENV);
        let path = if transport == "sse" { "sse" } else { "mcp" };
        Self::spawn(cmd, port, path, true)
    }

    /// tests/mcp/node/conformance-server.mjs: the TypeScript SDK serving every tool,
    /// resource and prompt the official conformance suite asks for (Streamable HTTP).
    pub fn conformance_fixture() -> Self {
        let port = free_port("127.0.0.1");
        let node_dir = workspace().join("tests/mcp/node");
        let node = node_dir.join("node_modules/.bin/node");
        assert!(
            node.exists(),
            "{} is missing: run `cargo xtask setup`",
            node.display()
        );
        let mut cmd = Command::new(node);
        cmd.arg(node_dir.join("conformance-server.mjs"))
            .arg(port.to_string());
        Self::spawn(cmd, port, "mcp", true)
    }

    /// tests/mcp/split_server.py: tools that report progress (a token cut across two
    /// messages; a step the client must see before the tool can finish).
    pub fn split() -> Self {
        let port = free_port("127.0.0.1");
        let mut cmd = Command::new(python());
        cmd.arg(workspace().join("tests/mcp/split_server.py"))
            .arg(port.to_string());
        Self::spawn(cmd, port, "mcp", false)
    }

    /// A Python client script of tests/mcp/ run through the scenario's agent against this
    /// server (URL first, then `args`); what it printed as JSON.
    pub fn python_client_in(
        &self,
        scenario: &Scenario,
        script: &str,
        args: &[&str],
    ) -> serde_json::Value {
        let python = python();
        let script = workspace().join("tests/mcp").join(script);
        let url = self.url();
        let mut argv = vec![python.to_str().unwrap(), script.to_str().unwrap(), &url];
        argv.extend_from_slice(args);
        client_report(scenario.output_in_cgroup(&argv))
    }

    fn spawn(mut cmd: Command, port: u16, path: &'static str, node: bool) -> Self {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn MCP test server");
        let mut server = Self {
            child,
            port,
            path,
            node,
        };
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = server.child.try_wait().expect("poll MCP server") {
                panic!("MCP test server exited early: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "MCP test server never listened on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/{}", self.port, self.path)
    }

    /// `mode`: for the Python client legacy | sse | a modern protocol version; for the
    /// TypeScript client streamable | sse.
    fn client_args(&self, mode: &str) -> Vec<String> {
        let (program, script) = if self.node {
            ("node".into(), workspace().join("tests/mcp/node/client.mjs"))
        } else {
            (
                python().display().to_string(),
                workspace().join("tests/mcp/client.py"),
            )
        };
        vec![
            program,
            script.display().to_string(),
            self.url(),
            mode.to_owned(),
        ]
    }

    /// The test client run directly (not intercepted): what the server really says.
    pub fn client_direct(&self, mode: &str) -> serde_json::Value {
        let args = self.client_args(mode);
        let out = Command::new(&args[0])
            .args(&args[1..])
            .stdin(Stdio::null())
            .output()
            .expect("run MCP client");
        client_report(out)
    }

    /// The test client run inside the scenario's cgroup, so through the agent.
    pub fn client_in(&self, scenario: &Scenario, mode: &str) -> serde_json::Value {
        let args = self.client_args(mode);
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        client_report(scenario.output_in_cgroup(&argv))
    }
}

fn client_report(out: Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "MCP client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|err| {
        panic!(
            "MCP client printed no JSON ({err}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

impl Drop for McpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// POSTs the JSON-RPC `body` to `127.0.0.1:port/mcp` with curl from inside the cgroup
/// (so through the agent); returns (HTTP status, response body).
pub fn post_json_rpc(scenario: &Scenario, port: u16, body: &str) -> (u16, String) {
    let url = format!("http://127.0.0.1:{port}/mcp");
    let out = scenario.curl_output(&[
        "-o",
        "-",
        "-w",
        "\n%{http_code}",
        "-H",
        "content-type: application/json",
        "-H",
        "accept: application/json, text/event-stream",
        "--data-binary",
        body,
        &url,
    ]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (status.trim().parse().unwrap_or(0), body.to_owned())
}

/// The audit row answering the request row `call`: same session, same request id.
#[track_caller]
pub fn answer_row<'a>(
    rows: &'a [serde_json::Value],
    call: &serde_json::Value,
) -> &'a serde_json::Value {
    rows.iter()
        .find(|r| {
            r["kind"] == "response"
                && r["session"] == call["session"]
                && r["request_id"] == call["request_id"]
        })
        .unwrap_or_else(|| panic!("no response row for {call}"))
}

/// Every audit row under `dir`, read with real DuckDB (tests/audit/rows.py), in time order.
pub fn audit_rows(dir: &Path) -> Vec<serde_json::Value> {
    let out = Command::new(python())
        .arg(workspace().join("tests/audit/rows.py"))
        .arg(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run tests/audit/rows.py");
    assert!(
        out.status.success(),
        "reading the audit trail with DuckDB failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("rows.py prints JSON lines"))
        .collect()
}

/// `gateway-agent audit verify --dir DIR`.
pub fn audit_verify(dir: &Path) -> Output {
    Command::new(AGENT)
        .args(["audit", "verify", "--dir"])
        .arg(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run gateway-agent audit verify")
}

/// An upstream that answers every POST with a JSON-RPC result quoting the Authorization
/// header it received (a server that echoes its credential), and remembers each one: what
/// the upstream saw, for asserting the caller's token never arrives.
pub struct EchoAuthServer {
    pub port: u16,
    seen: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EchoAuthServer {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind echo-auth server");
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (record, stopping) = (Arc::clone(&seen), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                let Some(head) = read_request_head(&mut conn) else {
                    continue;
                };
                let auth = head
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("authorization")
                            .then(|| value.trim().to_owned())
                    })
                    .unwrap_or_default();
                record.lock().unwrap().push(auth.clone());
                let body = format!(
                    "{{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{{\"content\":[{{\"type\":\"text\",\"text\":\"you sent {auth}\"}}]}}}}"
                );
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Self {
            port,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    /// The Authorization headers received so far, in order ("" for none).
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }
}

impl Drop for EchoAuthServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(
            &SocketAddr::from(([127, 0, 0, 1], self.port)),
            Duration::from_secs(1),
        );
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Builds the .deb from the test's own agent binary (`cargo xtask package`, gzip: fast)
/// into `out`, and returns its path.
pub fn build_package(out: &Path) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["run", "--quiet", "--package", "xtask", "--", "package"])
        .args(["--no-setup", "--compression", "gzip", "--binary", AGENT])
        .arg("--out-dir")
        .arg(out)
        .current_dir(workspace())
        .status()
        .expect("run cargo xtask package");
    assert!(status.success(), "cargo xtask package failed");
    let debs: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "deb"))
        .collect();
    assert_eq!(debs.len(), 1, "{debs:?}");
    debs.into_iter().next().unwrap()
}

/// server-everything's entry point, installed by `cargo xtask setup`.
fn everything_entry() -> PathBuf {
    let entry = workspace()
        .join("tests/mcp/node/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    assert!(
        entry.exists(),
        "{} is missing: run `cargo xtask setup`",
        entry.display()
    );
    entry
}
