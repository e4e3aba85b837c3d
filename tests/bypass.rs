//! Attempts to reach an intercepted server around the agent from inside the cgroup: every
//! one must arrive at the agent (its log names the original destination) and still reach
//! the real server through it. Interception matches the destination *port* on every
//! address, so other local addresses are covered by the same connect4/connect6 programs;
//! TCP Fast Open's `sendto(MSG_FASTOPEN)` runs the same connect hook (the kernel calls it
//! from the protocol's pre_connect); cgroup programs apply to every descendant cgroup and
//! to every process in them whatever its uid. README.md ("What interception covers") lists
//! what this does not cover. Needs root.

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
