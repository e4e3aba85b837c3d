//! SIGHUP storms during traffic: 150 reload signals (`systemctl reload`) while clients run
//! MCP calls through the agent, some reloads reading a broken policy file. No call may be
//! lost, answered for another, or decided by a half-read policy; a broken policy keeps
//! the previous one and says why; nothing leaks (file descriptors back to where they
//! were); every call is in the audit trail exactly once. Needs root.

mod support;

use std::{
    collections::HashMap,
    io::{BufRead as _, BufReader},
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use support::{
    DENY_SHELL_POLICY, EchoAuthServer, McpServer, Scenario, audit_rows, audit_verify, require_root,
};

const RELOADED: &str = "SIGHUP: policy reloaded";
const RELOAD_FAILED: &str = "SIGHUP: policy reload failed; keeping the previous policy";
const BURSTS: usize = 30;
const SIGNALS_PER_BURST: usize = 5;
const INTERCEPTED: &str = "intercepted connection";

/// Four workers call tools/call until STOP exists (at most 2000 calls each): `echo` with a
/// unique message (the answer must quote it, under the same id), and every fifth call the
/// denied `shell_exec`. Workers 0 and 2 open a connection per call, 1 and 3 keep theirs.
/// Prints "started" after every worker's first answer, then a JSON summary.
const CLIENT: &str = r#"
import http.client, json, os, sys, threading
port, stop = int(sys.argv[1]), sys.argv[2]
lock = threading.Lock()
summary = {"echo_ok": [], "denied_ok": [], "wrong": [], "failed": []}
first = threading.Barrier(5)
def call(conn, rid, name, args):
    body = json.dumps({"jsonrpc": "2.0", "id": rid, "method": "tools/call",
                       "params": {"name": name, "arguments": args}})
    conn.request("POST", "/mcp", body, {"content-type": "application/json",
                                        "accept": "application/json, text/event-stream"})
    resp = conn.getresponse()
    return resp.status, resp.read()
def worker(w):
    keep = w % 2 == 1
    conn = None
    for i in range(2000):
        if i == 1:
            first.wait(timeout=30)
        if i > 0 and os.path.exists(stop):
            break
        rid = f"w{w}-{i}"
        shell = i % 5 == 4
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
            if shell:
                status, data = call(conn, rid, "shell_exec", {"command": "id"})
            else:
                status, data = call(conn, rid, "echo", {"message": rid})
            reply = json.loads(data)
            if reply.get("id") != rid:
                outcome = "wrong"
            elif shell:
                outcome = "denied_ok" if "error" in reply or reply.get("result", {}).get("isError") else "wrong"
            else:
                texts = [c.get("text") for c in reply.get("result", {}).get("content", [])]
                outcome = "echo_ok" if texts == [rid] else "wrong"
            if outcome == "wrong":
                print("wrong:", rid, status, data[:300], file=sys.stderr)
        except Exception as e:
            print("failed:", rid, repr(e), file=sys.stderr)
            outcome = "failed"
            conn = None
        with lock:
            summary[outcome].append(rid)
        if not keep and conn is not None:
            conn.close()
            conn = None
threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
for t in threads:
    t.start()
first.wait(timeout=30)
print("started", flush=True)
for t in threads:
    t.join()
print(json.dumps(summary), flush=True)
"#;

fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn count(agent: &support::Agent, message: &str) -> usize {
    agent.lines(message).len()
}

/// Waits (bounded) until the agent has logged `message` more than `before` times.
#[track_caller]
fn wait_for_more(agent: &support::Agent, message: &str, before: usize) {
    let deadline = Instant::now() + support::WAIT;
    while count(agent, message) <= before {
        assert!(
            Instant::now() < deadline,
            "agent never logged {message:?} again"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn hup(pid: u32) {
    // SAFETY: kill(2) on the agent's PID, a child this test started and has not reaped.
    unsafe { libc::kill(pid as i32, libc::SIGHUP) };
}

fn write_policy(path: &Path, text: &str) {
    // Written whole and renamed into place, as an operator's editor or config management
    // would: the reload must never see half a file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn a_sighup_storm_during_traffic_loses_and_leaks_nothing() {
    if !require_root("a_sighup_storm_during_traffic_loses_and_leaks_nothing") {
        return;
    }
    let server = McpServer::start("stateless", "json");
    let scenario = Scenario::new();
    let config = scenario.config_with_policy(&[server.port], DENY_SHELL_POLICY);
    let policy = scenario.dir.path().join("policies/10-test.toml");
    let agent = scenario.start_agent(&config);
    let pid = agent.pid();

    // One call first, so everything opened lazily (audit files, pools) is open.
    let warm = scenario.curl_output(&[
        "-X",
        "POST",
        &server.url(),
        "-H",
        "content-type: application/json",
        "-H",
        "accept: application/json, text/event-stream",
        "-d",
        r#"{"jsonrpc":"2.0","id":"warm","method":"tools/call","params":{"name":"echo","arguments":{"message":"warm"}}}"#,
    ]);
    assert!(
        String::from_utf8_lossy(&warm.stdout).contains("\"warm\""),
        "{warm:?}"
    );
    let fds_before = fd_count(pid);

    let stop = scenario.dir.path().join("stop-clients");
    let mut client = Command::new("sh")
        .arg("-c")
        .arg("set -e; echo $$ > \"$0\"; exec \"$@\"")
        .arg(scenario.cgroup.procs())
        .args(["timeout", "300"])
        .arg(support::python())
        .args(["-c", CLIENT, &server.port.to_string()])
        .arg(&stop)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn clients");
    let mut out = BufReader::new(client.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "started");

    // Bursts of signals, each waited for by the log line only a reload of *this* policy
    // file's state can produce, and by new connections from the clients (so reloads and
    // traffic interleave). Every third burst reads a broken file.
    let mut broken_bursts = 0;
    for burst in 0..BURSTS {
        let broken = burst % 3 == 1;
        let expect = if broken {
            broken_bursts += 1;
            write_policy(&policy, "[[rule]\nid = \"half-written");
            RELOAD_FAILED
        } else {
            write_policy(&policy, &format!("# burst {burst}\n{DENY_SHELL_POLICY}"));
            RELOADED
        };
        let (before, connections) = (count(&agent, expect), count(&agent, INTERCEPTED));
        for _ in 0..SIGNALS_PER_BURST {
            hup(pid);
        }
        wait_for_more(&agent, expect, before);
        wait_for_more(&agent, INTERCEPTED, connections + 3);
    }
    std::fs::write(&stop, b"").unwrap();
    let summary: serde_json::Value = out
        .lines()
        .map_while(Result::ok)
        .find(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(&l).unwrap())
        .expect("client summary");
    assert!(client.wait().unwrap().success());

    let ids = |k: &str| -> Vec<String> {
        summary[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    let (echoed, denied) = (ids("echo_ok"), ids("denied_ok"));
    assert_eq!(
        ids("wrong"),
        Vec::<String>::new(),
        "answers for other calls or a lapsed policy"
    );
    assert_eq!(
        ids("failed"),
        Vec::<String>::new(),
        "calls lost during reloads"
    );
    assert!(
        denied.len() >= BURSTS && echoed.len() >= 4 * BURSTS,
        "too little traffic: {summary}"
    );
    eprintln!(
        "{} reload signals in {BURSTS} bursts ({broken_bursts} broken), {} calls answered, {} denied, {} reloads logged ok, {} failed",
        BURSTS * SIGNALS_PER_BURST,
        echoed.len(),
        denied.len(),
        count(&agent, RELOADED),
        count(&agent, RELOAD_FAILED),
    );
    // The broken file was named, and why.
    let failure = &agent.lines(RELOAD_FAILED)[0];
    let why = failure["error"].as_str().unwrap_or("");
    assert!(why.contains("10-test.toml"), "{failure}");

    // Connections closed: the agent's descriptors are back where they were.
    let deadline = Instant::now() + support::WAIT;
    while fd_count(pid) > fds_before {
        assert!(
            Instant::now() < deadline,
            "fds {} after, {fds_before} before",
            fd_count(pid)
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // Every call is in the audit trail exactly once, and the trail verifies.
    assert!(agent.stop(libc::SIGTERM).success());
    let rows = audit_rows(&scenario.audit_dir());
    let mut requests: HashMap<String, usize> = HashMap::new();
    for row in rows
        .iter()
        .filter(|r| r["kind"] == "request" && r["method"] == "tools/call")
    {
        let id = row["request_id"].as_str().unwrap_or("").trim_matches('"');
        *requests.entry(id.to_owned()).or_default() += 1;
    }
    for id in echoed.iter().chain(&denied) {
        assert_eq!(requests.get(id), Some(&1), "audit rows for {id}");
    }
    assert_eq!(
        requests.len(),
        echoed.len() + denied.len() + 1,
        "rows for calls never made"
    );
    let verify = audit_verify(&scenario.audit_dir());
    assert!(verify.status.success(), "{verify:?}");
}

/// A held credential that cannot be read at reload (the file gone mid-rotation) keeps
/// the previous one in use, logged with the file and the reason; the next good reload
/// picks up the new one.
#[test]
fn a_reload_that_cannot_read_a_credential_keeps_the_previous_one() {
    if !require_root("a_reload_that_cannot_read_a_credential_keeps_the_previous_one") {
        return;
    }
    let server = EchoAuthServer::start();
    let port = server.port;
    let scenario = Scenario::new();
    let token_file = scenario.dir.path().join("upstream.token");
    std::fs::write(&token_file, "first-upstream-token-11\n").unwrap();
    let config = scenario.config_with(
        &[port],
        &format!(
            "\n[[server]]\nname = \"echo\"\naddr = \"127.0.0.1:{port}\"\n[server.credential]\nscheme = \"Bearer\"\nfile = \"{}\"\n",
            token_file.display()
        ),
    );
    let agent = scenario.start_agent(&config);
    let call = || {
        let out = scenario.curl_output(&[
            "-H",
            "content-type: application/json",
            "--data-binary",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}"#,
            &server.url(),
        ]);
        assert!(out.status.success(), "{out:?}");
    };
    call();

    std::fs::remove_file(&token_file).unwrap();
    let failed = "SIGHUP: re-reading credentials failed; keeping the previous ones";
    for _ in 0..5 {
        hup(agent.pid());
    }
    let line = agent.wait_for(failed, |_| true);
    let why = line["error"].as_str().unwrap_or("");
    assert!(why.contains("upstream.token"), "{line}");
    call();

    std::fs::write(&token_file, "second-upstream-token-22\n").unwrap();
    let before = count(&agent, "SIGHUP: credentials re-read");
    hup(agent.pid());
    wait_for_more(&agent, "SIGHUP: credentials re-read", before);
    call();
    assert_eq!(
        server.seen(),
        [
            "Bearer first-upstream-token-11",
            "Bearer first-upstream-token-11",
            "Bearer second-upstream-token-22"
        ]
    );
}
