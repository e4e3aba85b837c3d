//! Connection-record map pressure: more redirected connections waiting for the agent than
//! the kernel's record maps hold (`[intercept] max_tracked_connections`). The LRU maps
//! evict the oldest records; a connection whose record is gone has no known destination.
//! Every outcome must be defined: served by the server it dialled, or refused (reset, with
//! a log line saying why); never proxied to another destination, never left hanging; and
//! the agent keeps serving afterwards. Needs root.

mod support;

use std::{
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::{TcpListener, TcpStream},
    process::{Command, Stdio},
};

use support::{Scenario, require_root};

/// Record-map size for these tests: small enough to overflow with a few hundred clients.
const TRACKED: u32 = 16;
const NO_RECORD: &str = "no interception record";

/// A TCP server that answers "who\n" with the port it listens on, so a client can tell
/// whether it reached the server it dialled.
struct WhoServer {
    port: u16,
}

impl WhoServer {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind who server");
        let port = listener.local_addr().unwrap().port();
        // Lives as long as the test process; each connection is bounded by its timeout.
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                std::thread::spawn(move || answer_who(conn, port));
            }
        });
        Self { port }
    }
}

fn answer_who(mut conn: TcpStream, port: u16) {
    let _ = conn.set_read_timeout(Some(support::WAIT));
    let mut buf = [0u8; 4];
    if conn.read_exact(&mut buf).is_ok() && &buf == b"who\n" {
        let _ = writeln!(conn, "port={port}");
    }
}

/// Opens N connections (round robin over the ports), sends "who" on each, says
/// "connected", waits for a line on stdin (unless told not to), then reads every answer
/// and prints the outcome counts as JSON. A connection that neither answers nor closes
/// within 10 s counts as "hung".
const CLIENT: &str = r#"
import json, socket, sys
ports = [int(p) for p in sys.argv[1].split(",")]
n, wait = int(sys.argv[2]), sys.argv[3] == "wait"
socks = []
for i in range(n):
    port = ports[i % len(ports)]
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
    except OSError as e:
        print("connect", i, "failed:", e, file=sys.stderr)
        raise
    s.sendall(b"who\n")
    socks.append((port, s))
print("connected", flush=True)
if wait:
    sys.stdin.readline()
counts = {"served": 0, "refused": 0, "misrouted": 0, "hung": 0}
for port, s in socks:
    data = b""
    try:
        while not data.endswith(b"\n") and len(data) < 64:
            chunk = s.recv(64)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        counts["hung"] += 1
        continue
    except ConnectionResetError:
        pass
    if data == f"port={port}\n".encode():
        counts["served"] += 1
    elif data == b"":
        counts["refused"] += 1
    else:
        counts["misrouted"] += 1
        print("misrouted:", port, data, file=sys.stderr)
    s.close()
print(json.dumps(counts), flush=True)
"#;

/// The client above in the scenario's cgroup, with stdin and stdout piped.
fn client(scenario: &Scenario, ports: &[u16], n: usize, wait: bool) -> std::process::Child {
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    Command::new("sh")
        .arg("-c")
        .arg("set -e; echo $$ > \"$0\"; exec \"$@\"")
        .arg(scenario.cgroup.procs())
        .args(["timeout", "120"])
        .arg(support::python())
        .args(["-c", CLIENT, &ports.join(","), &n.to_string()])
        .arg(if wait { "wait" } else { "go" })
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn client in cgroup")
}

/// The agent stopped (SIGSTOP) until dropped, then resumed (SIGCONT), also when the test
/// fails half-way.
struct Stopped(u32);

impl Stopped {
    fn new(pid: u32) -> Self {
        // SAFETY: kill(2) on the agent's PID, which the test started and has not reaped.
        unsafe { libc::kill(pid as i32, libc::SIGSTOP) };
        Self(pid)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        // SAFETY: as in `new`.
        unsafe { libc::kill(self.0 as i32, libc::SIGCONT) };
    }
}

fn counts(line: &str) -> (u64, u64, u64, u64) {
    let v: serde_json::Value =
        serde_json::from_str(line).unwrap_or_else(|err| panic!("{err}: {line:?}"));
    let get = |k: &str| {
        v[k].as_u64()
            .unwrap_or_else(|| panic!("{k} missing: {line}"))
    };
    (get("served"), get("refused"), get("misrouted"), get("hung"))
}

/// Reads the client's lines until its JSON summary (bounded by its own `timeout 120`).
fn summary(child: std::process::Child) -> (u64, u64, u64, u64) {
    let mut child = child;
    let stdout = child.stdout.take().unwrap();
    let last = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .filter(|l| l.starts_with('{'))
        .last()
        .expect("client printed no summary");
    let status = child.wait().unwrap();
    assert!(status.success(), "client failed: {status}");
    counts(&last)
}

#[test]
fn more_waiting_connections_than_records_are_served_or_refused_never_misrouted() {
    if !require_root("more_waiting_connections_than_records_are_served_or_refused_never_misrouted")
    {
        return;
    }
    let (a, b) = (WhoServer::start(), WhoServer::start());
    let scenario = Scenario::new();
    let config = scenario.config(&[a.port, b.port]);
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[intercept]\n",
        &format!("[intercept]\nmax_tracked_connections = {TRACKED}\n"),
    );
    std::fs::write(&config, text).unwrap();
    let agent = scenario.start_agent(&config);
    // The agent stopped: every connect completes in the kernel (into the listener's
    // backlog) and its record waits in BY_ADDR, which overflows.
    const CLIENTS: usize = 100;
    let stopped = Stopped::new(agent.pid());
    let mut pressure = client(&scenario, &[a.port, b.port], CLIENTS, true);
    let mut progress = BufReader::new(pressure.stdout.take().unwrap());
    let mut line = String::new();
    progress.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "connected", "client did not connect");
    drop(stopped);
    pressure.stdin.take().unwrap().write_all(b"go\n").unwrap();
    pressure.stdout = Some(progress.into_inner());
    let (served, refused, misrouted, hung) = summary(pressure);
    eprintln!("{CLIENTS} clients, {TRACKED} records: served {served}, refused {refused}");
    assert_eq!(
        misrouted, 0,
        "a connection reached a server it did not dial"
    );
    assert_eq!(hung, 0, "a connection was neither served nor refused");
    assert_eq!(served + refused, CLIENTS as u64);
    assert!(
        refused > 0,
        "the maps never overflowed: the test proves nothing"
    );
    assert!(served > 0, "no record survived at all");
    // Every refusal is logged, with the reason.
    agent.wait_for_count(refused as usize, is_no_record);

    // The agent keeps serving: batches that fit in the maps are served whole.
    for _ in 0..5 {
        let batch = summary(client(&scenario, &[a.port, b.port], 12, false));
        assert_eq!(batch, (12, 0, 0, 0), "(served, refused, misrouted, hung)");
    }
}

/// Leaves a connection to `port` from a fixed local port waiting in the stopped agent's
/// backlog; prints that local port, then holds the socket until stdin closes.
const STALE: &str = r#"
import socket, struct, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.bind(("127.0.0.1", 0))
s.settimeout(10)
s.connect(("127.0.0.1", int(sys.argv[1])))
print(s.getsockname()[1], flush=True)
sys.stdin.read()
s.close()
"#;

/// Against a stopped agent: fills its accept queue so new handshakes stall, starts the
/// victim's connect to `victim_port` from local port `local`, floods PENDING with `flood`
/// more connects (then abandons them) so the victim's record is evicted, says "ready",
/// waits for a line, then reports what the victim's "who" got.
const VICTIM: &str = r#"
import select, socket, struct, sys
victim_port, local, flood_port, flood = (int(a) for a in sys.argv[1:5])
fill = []
for _ in range(4096):
    s = socket.socket()
    s.settimeout(0.5)
    try:
        s.connect(("127.0.0.1", flood_port))
    except OSError:
        s.close()
        break
    fill.append(s)
v = socket.socket()
v.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
v.bind(("127.0.0.1", local))
v.setblocking(False)
v.connect_ex(("127.0.0.1", victim_port))
abandoned = []
for _ in range(flood):
    s = socket.socket()
    s.setblocking(False)
    s.connect_ex(("127.0.0.1", flood_port))
    abandoned.append(s)
for s in abandoned:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
# The victim's handshake must still be pending (its SYN dropped by the full queue), or
# its record was never at risk.
_, done, _ = select.select([], [v], [], 0)
print("ready" if not done else "victim connected too early", len(fill), flush=True)
sys.stdin.readline()
_, writable, _ = select.select([], [v], [], 20)
outcome = "hung"
if writable and v.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
    v.setblocking(True)
    v.settimeout(10)
    try:
        v.sendall(b"who\n")
        data = v.recv(64)
        outcome = "refused" if data == b"" else data.decode().strip()
    except (ConnectionResetError, BrokenPipeError):
        outcome = "refused"
    except socket.timeout:
        outcome = "hung"
elif writable:
    outcome = "refused"
print(outcome, flush=True)
"#;

fn in_cgroup(scenario: &Scenario, script: &str, args: &[String]) -> std::process::Child {
    Command::new("sh")
        .arg("-c")
        .arg("set -e; echo $$ > \"$0\"; exec \"$@\"")
        .arg(scenario.cgroup.procs())
        .args(["timeout", "120"])
        .arg(support::python())
        .args(["-c", script])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn script in cgroup")
}

/// A record left behind by a connection the agent never accepted (it crashed with the
/// connection in its backlog; the maps are pinned, so the record outlives it) must not be
/// taken for a later connection from the same local address whose own record the kernel
/// lost: that connection dialled server B, the stale record says server A.
#[test]
fn a_stale_record_is_never_used_for_a_connection_whose_own_was_evicted() {
    if !require_root("a_stale_record_is_never_used_for_a_connection_whose_own_was_evicted") {
        return;
    }
    let (a, b) = (WhoServer::start(), WhoServer::start());
    let scenario = Scenario::new();
    // A short accept queue, quick to fill (lands in [proxy]); one data-path thread, so
    // one queue: each thread has a listening socket of its own, and the kernel would hash
    // the victim to a queue the filling connects had not filled.
    let config = scenario.config_with(&[a.port, b.port], "listen_backlog = 128\nthreads = 1\n");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[intercept]\n",
        "[intercept]\nmax_tracked_connections = 256\n",
    );
    std::fs::write(&config, text).unwrap();

    // 1. A connection to A from local port P waits in a stopped agent's backlog; the
    //    agent crashes: the connection is reset, its record stays pinned.
    let first = scenario.start_agent(&config);
    let stopped = Stopped::new(first.pid());
    let mut stale = in_cgroup(&scenario, STALE, &[a.port.to_string()]);
    let mut out = BufReader::new(stale.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let local: u16 = line.trim().parse().expect("stale client's local port");
    first.stop(libc::SIGKILL);
    drop(stopped);
    drop(stale.stdin.take());
    assert!(stale.wait().unwrap().success());

    // 2. A new agent re-uses the pins (and so the stale record). From P, the victim dials
    //    B while the stopped agent's accept queue is full; 400 abandoned connects evict
    //    its PENDING record before its handshake completes.
    let second = scenario.start_agent(&config);
    second.wait_for("interception active", |l| l["reused"] == true);
    let stopped = Stopped::new(second.pid());
    let args = [b.port, local, a.port, 400].map(|n| n.to_string());
    let mut victim = in_cgroup(&scenario, VICTIM, &args);
    let mut out = BufReader::new(victim.stdout.take().unwrap());
    line.clear();
    out.read_line(&mut line).unwrap();
    assert!(line.starts_with("ready"), "{line:?}");
    drop(stopped);
    victim.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    line.clear();
    out.read_line(&mut line).unwrap();
    drop(victim.stdin.take());
    let _ = victim.wait();
    assert_eq!(
        line.trim(),
        "refused",
        "the victim (dialled B) got {line:?}"
    );
    let peer = format!("127.0.0.1:{local}");
    second.wait_for_count(1, |l| l["peer"] == peer && is_no_record(l));
}

fn is_no_record(line: &serde_json::Value) -> bool {
    line["message"]
        .as_str()
        .is_some_and(|m| m.starts_with(NO_RECORD))
}

/// A burst of connects while the agent is not accepting (busy, or stopped here) is queued
/// by the kernel and served once it accepts again: with tokio's default backlog of 128 the
/// 129th client's SYN was dropped and its connect stalled for seconds.
#[test]
fn a_burst_of_connects_while_the_agent_is_busy_is_queued_and_served() {
    if !require_root("a_burst_of_connects_while_the_agent_is_busy_is_queued_and_served") {
        return;
    }
    let (a, b) = (WhoServer::start(), WhoServer::start());
    let scenario = Scenario::new();
    let agent = scenario.start_agent(&scenario.config(&[a.port, b.port]));
    const CLIENTS: usize = 300;
    let stopped = Stopped::new(agent.pid());
    let mut burst = client(&scenario, &[a.port, b.port], CLIENTS, true);
    let mut progress = BufReader::new(burst.stdout.take().unwrap());
    let mut line = String::new();
    progress.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "connected", "the burst did not connect");
    drop(stopped);
    burst.stdin.take().unwrap().write_all(b"go\n").unwrap();
    burst.stdout = Some(progress.into_inner());
    assert_eq!(
        summary(burst),
        (CLIENTS as u64, 0, 0, 0),
        "(served, refused, misrouted, hung)"
    );
}
