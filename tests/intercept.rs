//! End-to-end interception: real eBPF programs attached to a child cgroup, the real agent
//! binary, curl as the client and a real HTTP server on loopback. Needs root.

mod support;

use std::net::SocketAddr;

use support::{AGENT, HttpServer, Scenario, curl_direct, require_root};

const INTERCEPTED: &str = "intercepted connection";

fn orig_dst_is(addr: SocketAddr) -> impl Fn(&serde_json::Value) -> bool {
    move |line| line["orig_dst"] == addr.to_string()
}

/// The server reports the peer it saw; through the agent that is not curl's own socket.
fn served_peer(body: &str) -> SocketAddr {
    body.trim()
        .rsplit_once("peer=")
        .and_then(|(_, peer)| peer.parse().ok())
        .unwrap_or_else(|| panic!("not the test server's answer: {body:?}"))
}

#[test]
fn ipv4_client_in_cgroup_is_proxied_and_attributed() {
    if !require_root("ipv4_client_in_cgroup_is_proxied_and_attributed") {
        return;
    }
    let server = HttpServer::start("127.0.0.1");
    let scenario = Scenario::new();
    let agent = scenario.start_agent(&scenario.config(&[server.port()]));

    // As nobody (uid 65534), so the reported uid cannot be the agent's own.
    let curl = scenario.curl_in_cgroup(&server.url(), Some(65534));
    let body = curl.assert_ok();
    assert!(body.starts_with("hello from the real server"), "{body}");

    let line = agent.wait_for(INTERCEPTED, orig_dst_is(server.addr));
    assert_eq!(line["pid"], curl.pid, "{line}");
    assert_eq!(line["uid"], 65534, "{line}");
    assert_eq!(line["gid"], 65534, "{line}");
    assert_eq!(line["comm"], "curl", "{line}");
    assert_eq!(line["user"], "nobody", "{line}");
    assert_eq!(line["level"], "INFO", "{line}");
    let cgroup_name = scenario.cgroup.path.file_name().unwrap().to_str().unwrap();
    assert!(
        line["cgroup"].as_str().unwrap().ends_with(cgroup_name),
        "{line}"
    );
    // The server's peer is the agent's upstream socket on loopback.
    assert!(served_peer(&body).ip().is_loopback());
}

/// A client that connects from a worker thread with a name of its own (a tokio worker,
/// a Java `HttpClient` thread) is still named by its executable: the kernel records the
/// connecting thread's comm, and the check that /proc still shows that caller compares it
/// with that thread's comm, not the main thread's.
#[test]
fn a_client_connecting_from_a_named_thread_is_attributed_to_its_executable() {
    if !require_root("a_client_connecting_from_a_named_thread_is_attributed_to_its_executable") {
        return;
    }
    let server = HttpServer::start("127.0.0.1");
    let scenario = Scenario::new();
    let agent = scenario.start_agent(&scenario.config(&[server.port()]));

    // The connecting thread renames itself (PR_SET_NAME); the main thread keeps the
    // interpreter's name. It prints its pid, then what the server answered.
    let client = format!(
        r#"
import ctypes, os, socket, threading
def call():
    ctypes.CDLL(None).prctl(15, b"mcp-worker", 0, 0, 0)
    with socket.create_connection(("127.0.0.1", {port}), timeout=20) as s:
        s.sendall(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n")
        print(os.getpid(), s.makefile("rb").read().decode(errors="replace"), flush=True)
worker = threading.Thread(target=call)
worker.start()
worker.join()
"#,
        port = server.port()
    );
    let out = scenario.output_in_cgroup(&["timeout", "30", "/usr/bin/python3", "-c", &client]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("hello from the real server"), "{stdout}");
    let pid: u32 = stdout.split_whitespace().next().unwrap().parse().unwrap();

    let line = agent.wait_for(INTERCEPTED, orig_dst_is(server.addr));
    assert_eq!(line["pid"], pid, "{line}");
    assert_ne!(
        line["tid"], pid,
        "not connected from the worker thread: {line}"
    );
    assert_eq!(line["comm"], "mcp-worker", "{line}");
    let python = std::fs::canonicalize("/usr/bin/python3").unwrap();
    assert_eq!(line["exe"], python.display().to_string(), "{line}");
}

#[test]
fn ipv6_client_in_cgroup_is_proxied() {
    if !require_root("ipv6_client_in_cgroup_is_proxied") {
        return;
    }
    let server = HttpServer::start("::1");
    let scenario = Scenario::new();
    let agent = scenario.start_agent(&scenario.config(&[server.port()]));

    let curl = scenario.curl_in_cgroup(&server.url(), None);
    let body = curl.assert_ok();
    assert!(served_peer(&body).is_ipv6(), "{body}");
    let line = agent.wait_for(INTERCEPTED, orig_dst_is(server.addr));
    assert_eq!(line["pid"], curl.pid, "{line}");
    assert_eq!(line["comm"], "curl", "{line}");
}

#[test]
fn v4_mapped_ipv6_connect_goes_through_the_ipv4_listener() {
    if !require_root("v4_mapped_ipv6_connect_goes_through_the_ipv4_listener") {
        return;
    }
    let server = HttpServer::start("127.0.0.1");
    let scenario = Scenario::new();
    let agent = scenario.start_agent(&scenario.config(&[server.port()]));

    // An AF_INET6 socket connecting to ::ffff:127.0.0.1.
    let url = format!("http://[::ffff:127.0.0.1]:{}/", server.port());
    let curl = scenario.curl_in_cgroup(&url, None);
    curl.assert_ok();
    let line = agent.wait_for(INTERCEPTED, orig_dst_is(server.addr));
    assert_eq!(line["pid"], curl.pid, "{line}");
}

#[test]
fn clients_outside_the_cgroup_and_other_ports_are_not_intercepted() {
    if !require_root("clients_outside_the_cgroup_and_other_ports_are_not_intercepted") {
        return;
    }
    let mcp = HttpServer::start("127.0.0.1");
    let other = HttpServer::start("127.0.0.1");
    let scenario = Scenario::new();
    let agent = scenario.start_agent(&scenario.config(&[mcp.port()]));

    // Outside the cgroup: the server sees curl's own socket.
    let outside = curl_direct(&mcp.url());
    assert!(
        outside
            .assert_ok()
            .starts_with("hello from the real server")
    );
    // Inside, but to a port that is not in the map.
    let other_port = scenario.curl_in_cgroup(&other.url(), None);
    other_port.assert_ok();
    // A control connection that must be intercepted. The agent handles connections in
    // accept order, so once the control is logged, any interception of the two earlier
    // (already completed) connections would have been logged too.
    let control = scenario.curl_in_cgroup(&mcp.url(), None);
    control.assert_ok();
    agent.wait_for(INTERCEPTED, |l| l["pid"] == control.pid);

    let intercepted = agent.lines(INTERCEPTED);
    assert_eq!(intercepted.len(), 1, "only the control: {intercepted:?}");
    assert!(orig_dst_is(mcp.addr)(&intercepted[0]));
}

#[test]
fn agent_inside_the_cgroup_does_not_redirect_its_own_upstream_connects() {
    if !require_root("agent_inside_the_cgroup_does_not_redirect_its_own_upstream_connects") {
        return;
    }
    let server = HttpServer::start("127.0.0.1");
    let scenario = Scenario::new();
    let agent = scenario.start_agent_in_cgroup(&scenario.config(&[server.port()]));

    let curl = scenario.curl_in_cgroup(&server.url(), None);
    let body = curl.assert_ok();
    assert!(body.starts_with("hello from the real server"), "{body}");
    agent.wait_for(INTERCEPTED, |l| l["pid"] == curl.pid);
    // Had the agent's upstream connect been redirected, it would have come back to the
    // agent as a second interception attributed to the agent itself (and looped).
    let second = scenario.curl_in_cgroup(&server.url(), None);
    second.assert_ok();
    agent.wait_for(INTERCEPTED, |l| l["pid"] == second.pid);
    let lines = agent.lines(INTERCEPTED);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines.iter().all(|l| l["pid"] != agent.pid()), "{lines:?}");
}

/// The agent in a PID namespace sees tgids the kernel does not (issue 14: one request
/// became ~10 000 self-connections). It must exempt itself anyway, and name a caller it
/// cannot see in its /proc by the cgroup the kernel recorded.
#[test]
fn agent_in_a_pid_namespace_serves_instead_of_looping() {
    if !require_root("agent_in_a_pid_namespace_serves_instead_of_looping") {
        return;
    }
    let server = HttpServer::start("127.0.0.1");
    let scenario = Scenario::new();
    let agent = scenario.start_agent_in_cgroup_and_pidns(&scenario.config(&[server.port()]));

    let curl = scenario.curl_in_cgroup(&server.url(), None);
    let body = curl.assert_ok();
    assert!(body.starts_with("hello from the real server"), "{body}");
    let line = agent.wait_for(INTERCEPTED, |l| l["pid"] == curl.pid);
    assert_eq!(line["comm"], "curl", "{line}");
    let cgroup_name = scenario.cgroup.path.file_name().unwrap().to_str().unwrap();
    assert!(
        line["cgroup"].as_str().unwrap().ends_with(cgroup_name),
        "cgroup resolved from the kernel's cgroup id: {line}"
    );
    let second = scenario.curl_in_cgroup(&server.url(), None);
    second.assert_ok();
    agent.wait_for(INTERCEPTED, |l| l["pid"] == second.pid);
    let lines = agent.lines(INTERCEPTED);
    assert_eq!(lines.len(), 2, "only the two clients: {lines:?}");
}

/// Issue 14: under systemd (PrivateTmp= gives the unit its own mount namespace) an agent
/// that mounted bpffs itself pinned into a mount that died with it, and failed open after
/// kill -9. It must refuse, say why, and leave nothing attached.
#[test]
fn refuses_to_pin_into_a_bpffs_it_would_mount_in_a_private_mount_namespace() {
    if !require_root("refuses_to_pin_into_a_bpffs_it_would_mount_in_a_private_mount_namespace") {
        return;
    }
    let server = HttpServer::start("127.0.0.1");
    let scenario = Scenario::new();
    let config = scenario.config(&[server.port()]);
    // A private mount namespace in which /sys/fs/bpf is not bpffs (the host's stays).
    let out = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(
            "for i in 1 2 3 4; do mountpoint -q /sys/fs/bpf || break; umount /sys/fs/bpf || exit 9; done; \
             mountpoint -q /sys/fs/bpf && exit 9; exec \"$0\" run --config \"$1\"",
        )
        .arg(AGENT)
        .arg(&config)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run unshare");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(
        out.status.code(),
        Some(9),
        "could not unmount bpffs: {stderr}"
    );
    assert!(!out.status.success(), "the agent started: {stderr}");
    assert!(stderr.contains("private mount namespace"), "{stderr}");
    assert!(stderr.contains("would die with the agent"), "{stderr}");
    // Nothing was attached: the server's port is not redirected.
    let direct = scenario.curl_in_cgroup(&server.url(), None);
    assert!(direct.assert_ok().starts_with("hello from the real server"));
    assert!(!scenario.pins.path.exists(), "no pins were made");
}

/// Each data-path thread listens on a socket of its own (`SO_REUSEPORT`); a second agent
/// started by mistake on the same listener must still stop before it attaches anything,
/// and the first keeps every connection.
#[test]
fn a_second_agent_on_the_same_listener_stops_and_the_first_keeps_serving() {
    if !require_root("a_second_agent_on_the_same_listener_stops_and_the_first_keeps_serving") {
        return;
    }
    let server = HttpServer::start("127.0.0.1");
    let scenario = Scenario::new();
    let config = scenario.config_with(&[server.port()], "threads = 4\n");
    let agent = scenario.start_agent(&config);

    let mut second = std::process::Command::new(AGENT)
        .args(["run", "--config"])
        .arg(&config)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn the second agent");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(status) = second.try_wait().expect("wait for the second agent") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = second.kill();
            let _ = second.wait();
            panic!("a second agent on the same listener kept running");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("binding intercept.listen"), "{stderr}");
    assert!(stderr.contains("in use"), "{stderr}");

    // Every new connection reaches the first agent, whichever of its four listening
    // sockets the kernel hashes it to.
    for _ in 0..12 {
        let curl = scenario.curl_in_cgroup(&server.url(), None);
        assert!(curl.assert_ok().starts_with("hello from the real server"));
        agent.wait_for(INTERCEPTED, |l| l["pid"] == curl.pid);
    }
}

#[test]
fn upstream_down_resets_the_client_promptly_and_others_are_still_served() {
    if !require_root("upstream_down_resets_the_client_promptly_and_others_are_still_served") {
        return;
    }
    let live = HttpServer::start("127.0.0.1");
    let dead_port = support::free_port("127.0.0.1");
    let scenario = Scenario::new();
    let agent = scenario.start_agent(&scenario.config(&[live.port(), dead_port]));

    let dead = scenario.curl_in_cgroup(&format!("http://127.0.0.1:{dead_port}/"), None);
    // The agent resets the client: curl reports 56 (recv failure) or 52 (empty reply), or
    // 7 when the reset lands before curl has read back its own non-blocking connect's
    // result. A hang would be 28 (curl's own --max-time).
    assert!(
        matches!(dead.exit_code(), 7 | 52 | 56),
        "expected a reset, got exit {} after {:?}: {}",
        dead.exit_code(),
        dead.elapsed,
        String::from_utf8_lossy(&dead.output.stderr)
    );
    let dead_addr: SocketAddr = format!("127.0.0.1:{dead_port}").parse().unwrap();
    // Proof that the agent (not a missing redirect) turned the client away.
    agent.wait_for(INTERCEPTED, orig_dst_is(dead_addr));
    agent.wait_for("upstream connect failed; resetting client", |l| {
        l["span"]["orig_dst"] == dead_addr.to_string()
    });

    let ok = scenario.curl_in_cgroup(&live.url(), None);
    assert!(ok.assert_ok().starts_with("hello from the real server"));
}

#[test]
fn agent_down_fails_closed_and_a_restart_resumes_without_setup() {
    if !require_root("agent_down_fails_closed_and_a_restart_resumes_without_setup") {
        return;
    }
    let server = HttpServer::start("127.0.0.1");
    let scenario = Scenario::new();
    let config = scenario.config(&[server.port()]);

    let agent = scenario.start_agent(&config);
    scenario.curl_in_cgroup(&server.url(), None).assert_ok();
    // A clean stop leaves the programs pinned.
    assert!(agent.stop(libc::SIGTERM).success());
    let refused = scenario.curl_in_cgroup(&server.url(), None);
    assert_eq!(
        refused.exit_code(),
        7,
        "connection must be refused while the agent is down"
    );
    // The server is up, and reachable for clients outside the intercepted cgroup.
    curl_direct(&server.url()).assert_ok();

    // Restart: the pinned attachment is re-used and interception resumes.
    let agent = scenario.start_agent(&config);
    agent.wait_for("interception active", |l| l["reused"] == true);
    let curl = scenario.curl_in_cgroup(&server.url(), None);
    curl.assert_ok();
    agent.wait_for(INTERCEPTED, |l| l["pid"] == curl.pid);

    // A crash (SIGKILL) must fail closed too, and the next start resumes again.
    agent.stop(libc::SIGKILL);
    let refused = scenario.curl_in_cgroup(&server.url(), None);
    assert_eq!(
        refused.exit_code(),
        7,
        "connection must be refused after a crash"
    );
    let agent = scenario.start_agent(&config);
    agent.wait_for("interception active", |l| l["reused"] == true);
    let curl = scenario.curl_in_cgroup(&server.url(), None);
    curl.assert_ok();
    agent.wait_for(INTERCEPTED, |l| l["pid"] == curl.pid);
}

#[test]
fn detach_restores_the_direct_path() {
    if !require_root("detach_restores_the_direct_path") {
        return;
    }
    let server = HttpServer::start("127.0.0.1");
    let scenario = Scenario::new();
    let config = scenario.config(&[server.port()]);
    let agent = scenario.start_agent(&config);
    agent.stop(libc::SIGTERM);

    let detach = std::process::Command::new(support::AGENT)
        .args(["detach", "--config"])
        .arg(&config)
        .output()
        .expect("run gateway-agent detach");
    assert!(detach.status.success(), "{detach:?}");
    assert!(String::from_utf8_lossy(&detach.stdout).contains("detached interception"));
    let curl = scenario.curl_in_cgroup(&server.url(), None);
    assert!(curl.assert_ok().starts_with("hello from the real server"));

    // --detach-on-exit: a stopped agent leaves nothing behind either.
    let agent = support::Agent::spawn_with(&config, &["--detach-on-exit"]);
    agent.stop(libc::SIGTERM);
    scenario.curl_in_cgroup(&server.url(), None).assert_ok();
    assert!(
        std::fs::read_dir(&scenario.pins.path)
            .unwrap()
            .next()
            .is_none(),
        "pins left behind"
    );
}

/// Sends 16 MiB while reading the echo concurrently, then half-closes and reads to EOF.
const HALF_CLOSE_CLIENT: &str = r#"
import hashlib, socket, sys, threading
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
data = bytes(range(256)) * (64 * 1024)
def send():
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
sender = threading.Thread(target=send)
sender.start()
digest, total = hashlib.sha256(), 0
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    digest.update(chunk)
    total += len(chunk)
sender.join()
print(total, digest.hexdigest() == hashlib.sha256(data).hexdigest())
"#;

#[test]
fn large_transfers_and_half_close_are_relayed_intact() {
    if !require_root("large_transfers_and_half_close_are_relayed_intact") {
        return;
    }
    // Echoes until the client's FIN arrives, then sends its own FIN.
    let echo = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = echo.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = echo.accept().unwrap();
        conn.set_read_timeout(Some(support::WAIT)).unwrap();
        let mut reader = conn.try_clone().unwrap();
        let echoed = std::io::copy(&mut reader, &mut conn).unwrap();
        conn.shutdown(std::net::Shutdown::Write).unwrap();
        echoed
    });
    let scenario = Scenario::new();
    let agent = scenario.start_agent(&scenario.config(&[port]));

    let out = scenario.output_in_cgroup(&["python3", "-c", HALF_CLOSE_CLIENT, &port.to_string()]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "16777216 True");
    assert_eq!(server.join().unwrap(), 16 * 1024 * 1024);
    agent.wait_for(INTERCEPTED, |l| l["comm"] == "python3");
}
