//! Attempts to reach an intercepted server around the agent from inside the cgroup: every
//! one must arrive at the agent (its log names the original destination) and still reach
//! the real server through it. Interception matches the destination *port* on every
//! address, so other local addresses are covered by the same connect4/connect6 programs;
//! TCP Fast Open's `sendto(MSG_FASTOPEN)` runs the same connect hook (the kernel calls it
//! from the protocol's pre_connect); cgroup programs apply to every descendant cgroup and
//! to every process in them whatever its uid; MPTCP's first subflow is a TCP socket that
//! runs the same hook. UDP to an intercepted port cannot be proxied, so it is refused
//! (EPERM) in every form (sendto, sendmsg, connect; IPv4, IPv6, v4-mapped) while UDP to
//! other ports is untouched. README.md ("What interception covers") lists what this does
//! not cover. Needs root.

mod support;

use std::{net::SocketAddr, path::PathBuf, process::Command};

use support::{HttpServer, Scenario, require_root};

const INTERCEPTED: &str = "intercepted connection";

fn orig_dst_is(addr: SocketAddr) -> impl Fn(&serde_json::Value) -> bool {
    move |line| line["orig_dst"] == addr.to_string()
}

/// A server on every IPv4 address, an agent intercepting its port, and curl in the cgroup
/// dialling `ip`: the agent must see it, and the real server answer through it.
fn reached_through_agent(ip: &str) {
    let server = HttpServer::start("0.0.0.0");
    let scenario = Scenario::new();
    let agent = scenario.start_agent(&scenario.config(&[server.port()]));
    let dst: SocketAddr = format!("{ip}:{}", server.port()).parse().unwrap();
    let curl = scenario.curl_in_cgroup(&format!("http://{dst}/"), None);
    let body = curl.assert_ok();
    assert!(body.starts_with("hello from the real server"), "{body}");
    let line = agent.wait_for(INTERCEPTED, orig_dst_is(dst));
    assert_eq!(line["pid"], curl.pid, "{line}");
}

#[test]
fn another_loopback_address_is_intercepted() {
    if !require_root("another_loopback_address_is_intercepted") {
        return;
    }
    reached_through_agent("127.0.0.2");
}

#[test]
fn the_hosts_own_address_is_intercepted() {
    if !require_root("the_hosts_own_address_is_intercepted") {
        return;
    }
    let out = Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()
        .expect("run ip");
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(ip) = text
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|cidr| cidr.split('/').next())
    else {
        eprintln!("skipped: the host has no global IPv4 address");
        return;
    };
    reached_through_agent(ip);
}

#[test]
fn tcp_fast_open_sendto_is_intercepted() {
    if !require_root("tcp_fast_open_sendto_is_intercepted") {
        return;
    }
    let server = HttpServer::start("127.0.0.1");
    let scenario = Scenario::new();
    let agent = scenario.start_agent(&scenario.config(&[server.port()]));
    // No connect(): the request goes out through sendto(MSG_FASTOPEN) (blocking, so the
    // kernel waits for the handshake when it has no TFO cookie yet; the timeout is set
    // after, since a timeout makes the socket non-blocking).
    let script = format!(
        "import socket\n\
         s = socket.socket()\n\
         s.sendto(b'GET / HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n', socket.MSG_FASTOPEN, ('127.0.0.1', {port}))\n\
         s.settimeout(10)\n\
         data = b''\n\
         while True:\n\
         \x20   chunk = s.recv(4096)\n\
         \x20   if not chunk:\n\
         \x20       break\n\
         \x20   data += chunk\n\
         print(data.decode())\n",
        port = server.port()
    );
    let out = scenario.output_in_cgroup(&["timeout", "20", "python3", "-c", &script]);
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(body.contains("hello from the real server"), "{body}");
    agent.wait_for(INTERCEPTED, orig_dst_is(server.addr));
}

/// A cgroup the client makes below the intercepted one; removed on drop.
struct ChildCgroup(PathBuf);

impl Drop for ChildCgroup {
    fn drop(&mut self) {
        // The curl that ran in it has exited; an empty cgroup can be removed.
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn a_new_child_cgroup_is_still_intercepted() {
    if !require_root("a_new_child_cgroup_is_still_intercepted") {
        return;
    }
    let server = HttpServer::start("127.0.0.1");
    let scenario = Scenario::new();
    let agent = scenario.start_agent(&scenario.config(&[server.port()]));
    let child = ChildCgroup(scenario.cgroup.path.join("escape"));
    std::fs::create_dir(&child.0).unwrap();
    // Moves itself into the new child cgroup, then (as another uid) dials the server.
    let out = Command::new("sh")
        .arg("-c")
        .arg("set -e; echo $$ > \"$0\"; exec setpriv --reuid=65534 --regid=65534 --clear-groups curl -sS --max-time 10 --noproxy '*' \"$1\"")
        .arg(child.0.join("cgroup.procs"))
        .arg(server.url())
        .output()
        .unwrap();
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(body.starts_with("hello from the real server"), "{body}");
    let line = agent.wait_for(INTERCEPTED, orig_dst_is(server.addr));
    assert_eq!(line["uid"], 65534, "{line}");
    assert!(
        line["cgroup"].as_str().unwrap_or("").ends_with("/escape"),
        "{line}"
    );
}

/// Every UDP way of reaching a port, tried from inside the cgroup; prints one JSON object
/// of `attempt → "ok"` or the errno's name. For the echo port, "ok" means the reply came
/// back, so a send that only seemed to work does not pass.
const UDP_PROBE: &str = r#"
import errno, json, socket, sys
port, echo = int(sys.argv[1]), int(sys.argv[2])
results = {}
def attempt(name, fn):
    try:
        fn()
        results[name] = "ok"
    except OSError as e:
        results[name] = errno.errorcode.get(e.errno, str(e.errno))
def sock(family):
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.settimeout(5)
    return s
def sendto(family, host, p):
    s = sock(family); s.sendto(b"ping", (host, p)); return s
def sendmsg(family, host, p):
    s = sock(family); s.sendmsg([b"ping"], [], 0, (host, p)); return s
def connected(family, host, p):
    s = sock(family); s.connect((host, p)); s.send(b"ping"); return s
def send_after_failed_connect(family, host, p):
    s = sock(family)
    try:
        s.connect((host, p))
    except OSError:
        pass
    s.send(b"ping"); return s
def echoed(send):
    def run(family, host, p):
        s = send(family, host, p)
        data = s.recv(64)
        assert data == b"ping", data
        return s
    return run
targets = {"v4": (socket.AF_INET, "127.0.0.1"), "v6": (socket.AF_INET6, "::1"),
           "v4mapped": (socket.AF_INET6, "::ffff:127.0.0.1")}
for label, (family, host) in targets.items():
    attempt(f"{label} sendto", lambda: sendto(family, host, port))
    attempt(f"{label} sendmsg", lambda: sendmsg(family, host, port))
    attempt(f"{label} connect+send", lambda: connected(family, host, port))
    attempt(f"{label} send after refused connect", lambda: send_after_failed_connect(family, host, port))
    attempt(f"{label} echo sendto", lambda: echoed(sendto)(family, host, echo))
    attempt(f"{label} echo connect+send", lambda: echoed(connected)(family, host, echo))
print(json.dumps(results))
"#;

/// A UDP echo on the same port of 127.0.0.1 and ::1, answering until the test ends.
struct UdpEcho {
    port: u16,
    _sockets: Vec<std::net::UdpSocket>,
}

impl UdpEcho {
    /// On a free port.
    fn start() -> Self {
        (0..20)
            .find_map(|_| {
                let v4 = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind udp echo");
                let port = v4.local_addr().unwrap().port();
                Self::serve(v4, port)
            })
            .expect("no UDP port free on both 127.0.0.1 and ::1")
    }

    /// On `port`, if it is free on both addresses.
    fn on(port: u16) -> Option<Self> {
        Self::serve(std::net::UdpSocket::bind(("127.0.0.1", port)).ok()?, port)
    }

    fn serve(v4: std::net::UdpSocket, port: u16) -> Option<Self> {
        let v6 = std::net::UdpSocket::bind(("::1", port)).ok()?;
        for socket in [&v4, &v6] {
            let socket = socket.try_clone().unwrap();
            // Ends with the test process; each reply is one bounded datagram.
            std::thread::spawn(move || {
                let mut buf = [0u8; 64];
                while let Ok((n, from)) = socket.recv_from(&mut buf) {
                    let _ = socket.send_to(&buf[..n], from);
                }
            });
        }
        Some(Self {
            port,
            _sockets: vec![v4, v6],
        })
    }
}

fn udp_probe(scenario: &Scenario, port: u16, echo: u16) -> serde_json::Value {
    let python = support::python();
    let out = scenario.output_in_cgroup(&[
        "timeout",
        "60",
        python.to_str().unwrap(),
        "-c",
        UDP_PROBE,
        &port.to_string(),
        &echo.to_string(),
    ]);
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|err| panic!("{err}: {out:?}"))
}

/// What [`UDP_PROBE`] must report for an intercepted port and a UDP echo on another port.
fn assert_udp_refused_to(results: &serde_json::Value) {
    for family in ["v4", "v6", "v4mapped"] {
        let expect = [
            ("sendto", "EPERM"),
            ("sendmsg", "EPERM"),
            ("connect+send", "EPERM"),
            // The refused connect left the socket unconnected: nothing can be sent.
            ("send after refused connect", "EDESTADDRREQ"),
            ("echo sendto", "ok"),
            ("echo connect+send", "ok"),
        ];
        for (attempt, outcome) in expect {
            let key = format!("{family} {attempt}");
            assert_eq!(results[&key], outcome, "{key}: {results}");
        }
    }
}

#[test]
fn udp_to_an_intercepted_port_is_refused_and_other_ports_are_not() {
    if !require_root("udp_to_an_intercepted_port_is_refused_and_other_ports_are_not") {
        return;
    }
    let server = HttpServer::start("127.0.0.1");
    let echo = UdpEcho::start();
    let scenario = Scenario::new();
    let config = scenario.config(&[server.port()]);
    let agent = scenario.start_agent(&config);
    assert_udp_refused_to(&udp_probe(&scenario, server.port(), echo.port));
    // TCP to the same port is still intercepted and served.
    scenario.curl_in_cgroup(&server.url(), None).assert_ok();
    agent.wait_for(INTERCEPTED, orig_dst_is(server.addr));

    // The agent down (pins kept): still refused, like TCP (fail closed).
    assert!(agent.stop(libc::SIGTERM).success());
    assert_udp_refused_to(&udp_probe(&scenario, server.port(), echo.port));
}

/// DNS must keep working for intercepted clients: an echo standing in for a resolver on
/// port 53 of 127.0.0.1 and ::1 answers every UDP way in while another port is refused.
#[test]
fn dns_on_port_53_keeps_working_from_the_cgroup() {
    if !require_root("dns_on_port_53_keeps_working_from_the_cgroup") {
        return;
    }
    let Some(dns) = UdpEcho::on(53) else {
        eprintln!("skipped: UDP port 53 is taken on 127.0.0.1 or ::1 (a local resolver)");
        return;
    };
    let server = HttpServer::start("127.0.0.1");
    let scenario = Scenario::new();
    let _agent = scenario.start_agent(&scenario.config(&[server.port()]));
    assert_udp_refused_to(&udp_probe(&scenario, server.port(), dns.port));
}

#[test]
fn udp_from_outside_the_cgroup_and_after_detach_is_untouched() {
    if !require_root("udp_from_outside_the_cgroup_and_after_detach_is_untouched") {
        return;
    }
    let echo = UdpEcho::start();
    let scenario = Scenario::new();
    let config = scenario.config(&[echo.port]);
    let agent = scenario.start_agent(&config);
    // The echo's own port is intercepted now: refused from inside the cgroup …
    let inside = udp_probe(&scenario, echo.port, echo.port);
    assert_eq!(inside["v4 echo sendto"], "EPERM", "{inside}");
    assert_eq!(inside["v6 echo connect+send"], "EPERM", "{inside}");
    // … answered from outside it.
    let outside = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    outside.set_read_timeout(Some(support::WAIT)).unwrap();
    outside.send_to(b"ping", ("127.0.0.1", echo.port)).unwrap();
    let mut buf = [0u8; 8];
    let (n, _) = outside.recv_from(&mut buf).expect("echo from outside");
    assert_eq!(&buf[..n], b"ping");
    // Stopped and detached: UDP from the cgroup goes through again.
    assert!(agent.stop(libc::SIGTERM).success());
    let detached = Command::new(support::AGENT)
        .args(["detach", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(detached.status.success(), "{detached:?}");
    let after = udp_probe(&scenario, echo.port, echo.port);
    assert_eq!(after["v4 echo sendto"], "ok", "{after}");
    assert_eq!(after["v4mapped echo connect+send"], "ok", "{after}");
}

#[test]
fn multipath_tcp_is_intercepted_like_tcp() {
    if !require_root("multipath_tcp_is_intercepted_like_tcp") {
        return;
    }
    let enabled = std::fs::read_to_string("/proc/sys/net/mptcp/enabled").unwrap_or_default();
    if enabled.trim() != "1" {
        eprintln!("skipped: MPTCP is not enabled on this kernel");
        return;
    }
    let server = HttpServer::start("127.0.0.1");
    let scenario = Scenario::new();
    let agent = scenario.start_agent(&scenario.config(&[server.port()]));
    // socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP): the kernel connects its first subflow,
    // a plain TCP socket, through the same connect4 hook, so the agent gets it.
    let script = format!(
        "import socket\n\
         s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262)\n\
         s.settimeout(10)\n\
         s.connect(('127.0.0.1', {port}))\n\
         s.sendall(b'GET / HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n')\n\
         data = b''\n\
         while True:\n\
         \x20   chunk = s.recv(4096)\n\
         \x20   if not chunk:\n\
         \x20       break\n\
         \x20   data += chunk\n\
         print(data.decode())\n",
        port = server.port()
    );
    let out = scenario.output_in_cgroup(&["timeout", "20", "python3", "-c", &script]);
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(body.contains("hello from the real server"), "{body}");
    agent.wait_for(INTERCEPTED, orig_dst_is(server.addr));
}

/// UDP-Lite runs no cgroup connect hook on this kernel (a connected UDP-Lite socket can
/// only reach a UDP-Lite listener, documented), but its unconnected sends go through
/// sendmsg4/6 like UDP's and are refused.
#[test]
fn udp_lite_sendto_an_intercepted_port_is_refused() {
    if !require_root("udp_lite_sendto_an_intercepted_port_is_refused") {
        return;
    }
    let server = HttpServer::start("127.0.0.1");
    let scenario = Scenario::new();
    let _agent = scenario.start_agent(&scenario.config(&[server.port()]));
    let script = format!(
        "import errno, socket\n\
         try:\n\
         \x20   s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, 136)\n\
         except OSError as e:\n\
         \x20   print('unsupported'); raise SystemExit\n\
         try:\n\
         \x20   s.sendto(b'ping', ('127.0.0.1', {port})); print('sent')\n\
         except OSError as e:\n\
         \x20   print(errno.errorcode[e.errno])\n",
        port = server.port()
    );
    let out = scenario.output_in_cgroup(&["timeout", "20", "python3", "-c", &script]);
    let said = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(out.status.success(), "{out:?}");
    if said == "unsupported" {
        eprintln!("skipped: no UDP-Lite on this kernel");
        return;
    }
    assert_eq!(said, "EPERM");
}
