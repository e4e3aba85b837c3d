//! The audit trail end to end: real MCP clients through the eBPF interception and the
//! agent, rows read back with real DuckDB, chains checked with `audit verify`; a kill -9
//! under load loses no row of anything a client received; a full disk refuses requests
//! instead of dropping records. Needs root and the test virtualenv.

mod support;

use std::{
    collections::HashSet,
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::Command,
    sync::mpsc,
    time::{Duration, Instant},
};

use serde_json::Value;
use support::{
    DENY_SHELL_POLICY, McpServer, SERVER_SECRETS, Scenario, WAIT, audit_rows, audit_verify, python,
    require_root, workspace,
};

fn text(row: &Value, column: &str) -> String {
    row[column].as_str().unwrap_or_default().to_owned()
}

#[track_caller]
fn assert_verified(dir: &Path) {
    let out = audit_verify(dir);
    assert!(
        out.status.success(),
        "audit verify failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One session-era conversation: every message has its row, under the MCP session, with
/// the calling process, masked payloads only, the denial with its rule, and responses
/// paired with their requests.
#[test]
fn conversation_is_recorded_with_who_and_masked_payloads() {
    if !require_root("conversation_is_recorded_with_who_and_masked_payloads") {
        return;
    }
    let server = McpServer::start("stateful", "json");
    let scenario = Scenario::new();
    let config = scenario.config_with_policy(&[server.port], DENY_SHELL_POLICY);
    let agent = scenario.start_agent(&config);
    let seen = server.client_in(&scenario, "legacy");
    assert_eq!(seen["shell_exec"]["isError"], true, "{seen}");
    let client_pid = agent.wait_for("intercepted connection", |_| true)["pid"].as_u64();
    assert!(agent.stop(libc::SIGTERM).success());

    let rows = audit_rows(&scenario.audit_dir());
    assert!(!rows.is_empty(), "no audit rows written");
    // No secret in any column of any row.
    let all = serde_json::to_string(&rows).unwrap();
    for secret in SERVER_SECRETS {
        assert!(!all.contains(secret), "{secret} reached the audit trail");
    }
    let calls: Vec<&Value> = rows
        .iter()
        .filter(|r| r["kind"] == "request" && r["method"] == "tools/call")
        .collect();
    let tools: HashSet<String> = calls.iter().map(|r| text(r, "tool")).collect();
    assert_eq!(
        tools,
        [
            "create_user",
            "echo",
            "get_config",
            "read_notes",
            "shell_exec"
        ]
        .map(String::from)
        .into(),
        "{calls:#?}"
    );
    for call in &calls {
        assert_eq!(call["direction"], "client_to_server");
        assert_eq!(call["server_addr"], format!("127.0.0.1:{}", server.port));
        assert_eq!(call["comm"], "python", "{call}");
        assert_eq!(call["uid"], 0);
        assert_eq!(call["pid"].as_u64(), client_pid, "{call}");
        let cgroup = scenario.cgroup.path.file_name().unwrap().to_str().unwrap();
        assert!(text(call, "cgroup").ends_with(cgroup), "{call}");
    }
    let denied = calls.iter().find(|r| r["tool"] == "shell_exec").unwrap();
    assert_eq!(denied["decision"], "deny");
    assert_eq!(denied["rules"], serde_json::json!(["deny-shell"]));
    let allowed = calls.iter().find(|r| r["tool"] == "echo").unwrap();
    assert_eq!(allowed["decision"], "allow");
    // Every tools/call has its answer in the same session with the same id: from the
    // server, or from the gateway for the denied one.
    for call in &calls {
        let answer = support::answer_row(&rows, call);
        let from = if call["tool"] == "shell_exec" {
            "gateway"
        } else {
            "server_to_client"
        };
        assert_eq!(answer["direction"], from, "{answer}");
        assert_eq!(answer["method"], "tools/call", "{answer}");
        assert_eq!(answer["tool"], call["tool"], "{answer}");
    }
    // Session-era: the calls ran in the MCP session the server assigned, not a
    // connection id.
    assert!(
        calls
            .iter()
            .all(|r| !text(r, "session").starts_with("conn-"))
    );
    let get_config = rows
        .iter()
        .find(|r| r["kind"] == "response" && text(r, "payload").contains("db.internal"))
        .expect("get_config response row");
    assert!(
        get_config["masked_count"].as_u64().unwrap() >= 3,
        "{get_config}"
    );
    assert!(text(get_config, "payload").contains("[MASKED:"));
    assert!(!get_config["mask_rules"].as_array().unwrap().is_empty());
    // The connection's own rows.
    assert!(rows.iter().any(|r| r["kind"] == "connection"));
    assert_verified(&scenario.audit_dir());

    // What an auditor runs on these files: the session list, the replay, the README's
    // DuckDB queries.
    let dir = scenario.audit_dir().display().to_string();
    let session = text(denied, "session");
    let sessions = agent_cli(&["audit", "sessions", "--dir", &dir, "--json"]);
    assert!(sessions.contains(&session), "{sessions}");
    let replay = agent_cli(&["audit", "replay", &session, "--dir", &dir]);
    for expected in [
        "tools/call",
        "shell_exec",
        "deny-shell",
        "get_config",
        "[MASKED:",
    ] {
        assert!(
            replay.contains(expected),
            "replay lacks {expected}: {replay}"
        );
    }
    for secret in SERVER_SECRETS {
        assert!(!replay.contains(secret));
    }
    let out = Command::new(python())
        .arg(workspace().join("tests/audit/queries.py"))
        .arg(&dir)
        .arg(workspace().join("README.md"))
        .output()
        .expect("run tests/audit/queries.py");
    assert!(
        out.status.success(),
        "README queries failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let result = |about: &str| {
        results
            .iter()
            .find(|r| r["query"].as_str().unwrap().starts_with(about))
            .unwrap_or_else(|| panic!("no README query starting {about:?}"))["rows"]
            .clone()
    };
    let who_called = result("Who called which tool");
    assert!(
        who_called
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["who"] == "root" && r["tool"] == "shell_exec"),
        "{who_called}"
    );
    let denied_calls = result("Denied calls");
    assert!(
        denied_calls
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["tool"] == "shell_exec" && r["rules"] == serde_json::json!(["deny-shell"])),
        "{denied_calls}"
    );
    assert_eq!(result("Chain check"), serde_json::json!([]));
}

/// `gateway-agent ARGS`, which must succeed; its stdout.
fn agent_cli(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_gateway-agent"))
        .args(args)
        .output()
        .expect("run gateway-agent");
    assert!(
        out.status.success(),
        "gateway-agent {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// kill -9 while a client is mid-load, restart: every answer the client received has its
/// request and response rows (sync durability), the chain verifies, nothing twice.
#[test]
fn kill_9_under_load_loses_nothing_a_client_received() {
    if !require_root("kill_9_under_load_loses_nothing_a_client_received") {
        return;
    }
    let server = McpServer::start("stateless", "json");
    let scenario = Scenario::new();
    let config = scenario.config(&[server.port]);
    let agent = scenario.start_agent(&config);
    let python = python().display().to_string();
    let script = workspace()
        .join("tests/audit/load.py")
        .display()
        .to_string();
    let url = server.url();
    let mut client = scenario.spawn_in_cgroup(&[&python, &script, &url, "100000"]);
    let (tx, received) = mpsc::channel();
    let stdout = client.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(message) = line.strip_prefix("received ") {
                let _ = tx.send(message.to_owned());
            }
        }
    });
    let mut got = Vec::new();
    let deadline = Instant::now() + WAIT * 3;
    while got.len() < 200 {
        let left = deadline.saturating_duration_since(Instant::now());
        match received.recv_timeout(left) {
            Ok(message) => got.push(message),
            Err(_) => panic!("client received only {} answers in time", got.len()),
        }
    }
    agent.stop(libc::SIGKILL);
    // The client fails on the reset connection; whatever it printed before is what it
    // received.
    let deadline = Instant::now() + WAIT;
    while client.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = client.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = client.wait();
    reader.join().unwrap();
    got.extend(received.try_iter());

    // The restarted agent recovers the write-ahead log into Parquet.
    let agent = scenario.start_agent(&config);
    assert!(agent.stop(libc::SIGTERM).success());
    let rows = audit_rows(&scenario.audit_dir());
    let payloads_of = |direction: &str| -> Vec<String> {
        rows.iter()
            .filter(|r| r["direction"] == direction && r["method"] == "tools/call")
            .map(|r| text(r, "payload"))
            .collect()
    };
    let requests = payloads_of("client_to_server");
    let responses = payloads_of("server_to_client");
    for message in &got {
        let quoted = format!("\"{message}\"");
        assert!(
            requests.iter().any(|p| p.contains(&quoted)),
            "request for {message} (received by the client) has no row"
        );
        assert!(
            responses.iter().any(|p| p.contains(&quoted)),
            "response {message} (received by the client) has no row"
        );
    }
    let hashes: HashSet<String> = rows.iter().map(|r| text(r, "hash")).collect();
    assert_eq!(hashes.len(), rows.len(), "a row was recorded twice");
    assert_verified(&scenario.audit_dir());
}

/// A tmpfs mounted for one test, unmounted on drop (also on panic).
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: PathBuf, size: &str) -> Self {
        std::fs::create_dir_all(&path).unwrap();
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "gateway-audit-test",
            ])
            .arg(&path)
            .status()
            .expect("run mount");
        assert!(status.success(), "mounting a tmpfs at {}", path.display());
        Self { path }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Fills `dir`'s filesystem: one file takes every free byte.
fn fill(dir: &Path) -> PathBuf {
    let filler = dir.join("filler");
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=4096"])
        .arg(format!("of={}", filler.display()))
        .stderr(std::process::Stdio::null())
        .status();
    filler
}

/// A full disk refuses MCP requests with a clear error (not forwarded, not dropped) and
/// recovers once space is free; nothing written is corrupt.
#[test]
fn full_disk_refuses_requests_and_recovers() {
    if !require_root("full_disk_refuses_requests_and_recovers") {
        return;
    }
    let server = McpServer::start("stateless", "json");
    let scenario = Scenario::new();
    let tmpfs = Tmpfs::mount(scenario.dir.path().join("small"), "2m");
    let audit = tmpfs.path.join("audit");
    let config = scenario.config_with(
        &[server.port],
        // Small WAL segments: the WAL keeps preallocated room (up to 1 MiB, capped at a
        // segment) that still takes rows on a full disk; this keeps it to a few calls.
        &format!(
            "\n[audit]\ndir = \"{}\"\nwal_segment_bytes = 8192\n",
            audit.display()
        ),
    );
    let agent = scenario.start_agent(&config);
    let call = |id: u32| {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"echo","arguments":{{"message":"disk-{id}"}}}}}}"#
        );
        scenario.curl_output(&[
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "-H",
            "accept: application/json, text/event-stream",
            "-H",
            "mcp-protocol-version: 2026-07-28",
            "-w",
            "\n%{http_code}",
            "--data",
            &body,
            &server.url(),
        ])
    };
    let answered = |out: &std::process::Output| {
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, status) = text.rsplit_once('\n').unwrap_or((&text, ""));
        (status.trim().to_owned(), body.to_owned())
    };
    let (status, body) = answered(&call(1));
    assert_ne!(status, "503", "before filling: {body}");

    let filler = fill(&tmpfs.path);
    // The WAL segment's preallocated room and the log file's last page may still hold a
    // few rows; the first request that needs new space is refused.
    let refused = (2..50)
        .map(|id| answered(&call(id)))
        .find(|(status, _)| status == "503");
    let (_, body) = refused.expect("a full disk never refused a request");
    assert!(
        body.contains("audit trail unavailable") && body.contains("-32013"),
        "{body}"
    );
    agent.wait_for("audit trail unavailable; request not forwarded", |_| true);

    std::fs::remove_file(&filler).unwrap();
    let (status, body) = answered(&call(100));
    assert_ne!(status, "503", "after freeing space: {body}");
    assert!(!body.contains("audit trail unavailable"), "{body}");
    assert!(agent.stop(libc::SIGTERM).success());

    let rows = audit_rows(&audit);
    let recorded = |needle: &str| rows.iter().any(|r| text(r, "payload").contains(needle));
    assert!(recorded("disk-1") && recorded("disk-100"));
    assert_verified(&audit);
    drop(tmpfs);
}
