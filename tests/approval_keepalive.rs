//! SSE keep-alive during an approval hold: a client that accepts `text/event-stream`
//! gets the response started as SSE when the hold begins, `: held for approval <id>`
//! comment lines every `keepalive_secs` while people decide, then the real answer as an
//! SSE `message` event. A raw HTTP client (curl in the intercepted cgroup) reads the
//! comments before the release; the Python SDK's real client gets the real result through
//! the same stream. Needs root and the test virtualenv (`cargo xtask setup`).

#[path = "support/approval.rs"]
mod gate;
mod support;

use std::io::{BufRead as _, BufReader};

use gate::{APPROVERS, DAEMON, Gate, SYS, accepted, requested, result, text};
use serde_json::Value;
use support::require_root;

/// The next line of curl's output (a bounded number of them; curl has --max-time).
fn next_line(lines: &mut impl Iterator<Item = std::io::Result<String>>) -> String {
    lines
        .next()
        .expect("the stream ended early")
        .expect("read curl's output")
}

fn raw_call(gate: &Gate, command: &str) -> std::process::Child {
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":"raw-1","method":"tools/call","params":{{"name":"shell_exec","arguments":{{"command":"{command}"}}}}}}"#
    );
    let url = gate.server.url();
    gate.scenario.spawn_in_cgroup(&[
        "curl",
        "-sS",
        "-N",
        "-i",
        "--max-time",
        "60",
        "--noproxy",
        "*",
        "-H",
        "Content-Type: application/json",
        "-H",
        "Accept: application/json, text/event-stream",
        "-H",
        "MCP-Protocol-Version: 2025-06-18",
        "--data",
        &body,
        &url,
    ])
}

#[test]
fn a_raw_sse_client_reads_keep_alives_during_the_hold_then_the_real_result() {
    if !require_root("a_raw_sse_client_reads_keep_alives_during_the_hold_then_the_real_result") {
        return;
    }
    let gate = Gate::new("hold_secs = 60\nttl_secs = 120\nkeepalive_secs = 1", "");
    let agent = gate.start();
    let mut curl = raw_call(&gate, "uptime");
    let stdout = curl.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines().take(200);
    let status = next_line(&mut lines);
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let mut head = Vec::new();
    loop {
        let line = next_line(&mut lines);
        if line.trim().is_empty() {
            break;
        }
        head.push(line.to_ascii_lowercase());
    }
    assert!(
        head.iter()
            .any(|h| h.starts_with("content-type: text/event-stream")),
        "{head:?}"
    );
    // Three comments before anyone decides: the first at once, then one per second.
    let mut comments = Vec::new();
    while comments.len() < 3 {
        let line = next_line(&mut lines);
        if !line.is_empty() {
            comments.push(line);
        }
    }
    let id = comments[0]
        .strip_prefix(": held for approval ")
        .unwrap_or_else(|| panic!("not a keep-alive comment: {comments:?}"))
        .to_owned();
    assert!(comments.iter().all(|c| c == &comments[0]), "{comments:?}");
    assert_eq!(requested(&agent, &[]), id);
    assert_eq!(gate.state(&id), "pending");

    accepted(&gate.approve_as(DAEMON, &id));
    let mut event = None;
    let mut data = None;
    while data.is_none() {
        let line = next_line(&mut lines);
        if let Some(name) = line.strip_prefix("event: ") {
            event = Some(name.to_owned());
        } else if let Some(json) = line.strip_prefix("data: ") {
            data = Some(serde_json::from_str::<Value>(json).unwrap());
        } else {
            assert!(line.is_empty() || line.starts_with(':'), "{line}");
        }
    }
    let data = data.unwrap();
    assert_eq!(event.as_deref(), Some("message"));
    assert_eq!(data["id"], "raw-1");
    assert_eq!(data["result"]["isError"], false, "{data}");
    assert_eq!(data["result"]["content"][0]["text"], "would run: uptime");
    assert!(curl.wait().unwrap().success());
    assert_eq!(gate.state(&id), "used");
}

#[test]
fn the_python_sdk_gets_the_result_or_the_denial_through_a_kept_alive_hold() {
    if !require_root("the_python_sdk_gets_the_result_or_the_denial_through_a_kept_alive_hold") {
        return;
    }
    let gate = Gate::new("hold_secs = 60\nttl_secs = 120\nkeepalive_secs = 1", "");
    let agent = gate.start();
    let mut seen: Vec<String> = Vec::new();
    for (mode, command) in [
        ("legacy", "hostname"),
        ("2026-07-28", "whoami"),
        ("2026-07-28", "reboot"),
    ] {
        let held = gate.spawn_call(
            mode,
            "shell_exec",
            &format!(r#"{{"command": "{command}"}}"#),
        );
        let id = requested(&agent, &seen.iter().map(String::as_str).collect::<Vec<_>>());
        // The hold answered the SDK's POST as SSE and keep-alives are flowing.
        agent.wait_for("held exchange answered as SSE; keep-alives started", |l| {
            l["id"] == id.as_str()
        });
        seen.push(id.clone());
        if command == "reboot" {
            accepted(&gate.cli(
                Some((SYS, APPROVERS.1, "")),
                &["deny", &id, "--reason", "not during business hours"],
            ));
            let denied = result(held);
            assert_eq!(denied["isError"], true, "{denied}");
            assert!(
                text(&denied).contains("denied by sys: not during business hours"),
                "{denied}"
            );
            continue;
        }
        accepted(&gate.approve_as(DAEMON, &id));
        let released = result(held);
        assert_eq!(released["isError"], false, "{mode}: {released}");
        assert_eq!(text(&released), format!("would run: {command}"), "{mode}");
        assert_eq!(gate.state(&id), "used");
    }
}
