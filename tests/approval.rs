//! Just-in-time approval end to end: the Python SDK's real client, intercepted in a child
//! cgroup, calls a tool an `approve` rule holds; `gateway-agent approvals …` run as other
//! uids (setpriv) decides over the admin socket; the client gets the real result or the
//! reason. Needs root and the test virtualenv (`cargo xtask setup`).

#[path = "support/approval.rs"]
mod gate;
mod support;

use std::process::Command;

use gate::{
    APPROVERS, BIN, DAEMON, Gate, SYS, accepted, pending_id, refused, requested, result, stderr,
    text,
};
use serde_json::Value;
use support::{audit_rows, python, require_root, workspace};

#[test]
fn held_call_is_released_by_another_approver_and_a_denial_reaches_the_client() {
    if !require_root("held_call_is_released_by_another_approver_and_a_denial_reaches_the_client") {
        return;
    }
    let gate = Gate::new("hold_secs = 20", "");
    let agent = gate.start();
    let held = gate.spawn_call("2026-07-28", "shell_exec", r#"{"command": "id"}"#);
    let id = requested(&agent, &[]);
    let listed = gate.list();
    let mine = listed
        .iter()
        .find(|a| a["id"] == id.as_str())
        .expect("listed");
    assert_eq!(mine["state"], "pending");
    assert_eq!(mine["key"]["tool"], "shell_exec");
    assert_eq!(mine["arguments"], r#"{"command":"id"}"#);
    assert_eq!(mine["requester"]["uid"], 0);

    // root asked (the client runs as root): listed as an approver, still not for this.
    refused(&gate.cli(None, &["approve", &id]), "no self-approval");
    // bin can open the socket (supplementary staff) but is not an approver (gid bin).
    refused(
        &gate.cli(Some((BIN, BIN, "50")), &["approve", &id]),
        "may not decide",
    );
    assert_eq!(gate.state(&id), "pending");
    let deciding = std::time::Instant::now();
    accepted(&gate.approve_as(DAEMON, &id));
    let released = result(held);
    eprintln!(
        "approve command started → client printed the result: {:?}",
        deciding.elapsed()
    );
    assert_eq!(released["isError"], false, "{released}");
    assert_eq!(text(&released), "would run: id");
    assert_eq!(gate.state(&id), "used");
    refused(&gate.approve_as(SYS, &id), "not pending");

    let held = gate.spawn_call("2026-07-28", "shell_exec", r#"{"command": "rm -rf /srv"}"#);
    let second = requested(&agent, &[&id]);
    refused(
        &gate.cli(Some((SYS, APPROVERS.1, "")), &["deny", &second]),
        "--reason",
    );
    accepted(&gate.cli(
        Some((SYS, APPROVERS.1, "")),
        &["deny", &second, "--reason", "not on the billing hosts"],
    ));
    let denied = result(held);
    assert_eq!(denied["isError"], true, "{denied}");
    assert!(
        text(&denied).contains("denied by sys: not on the billing hosts"),
        "{denied}"
    );

    assert!(agent.stop(libc::SIGTERM).success());
    let rows = audit_rows(&gate.scenario.audit_dir());
    let events = |decision: &str| -> Vec<Value> {
        rows.iter()
            .filter(|r| r["decision"] == decision)
            .map(|r| serde_json::from_str(r["payload"].as_str().unwrap()).unwrap())
            .collect()
    };
    let requested_rows = events("approval_requested");
    assert_eq!(requested_rows.len(), 2, "{rows:?}");
    let granted = events("approval_granted");
    assert_eq!(granted.len(), 1, "{granted:?}");
    assert_eq!(granted[0]["approval"], id.as_str());
    assert_eq!(granted[0]["approver"]["user"], "daemon");
    assert_eq!(granted[0]["approver"]["uid"], DAEMON);
    let denials = events("approval_denied");
    assert_eq!(denials[0]["approver"]["user"], "sys");
    assert_eq!(denials[0]["reason"], "not on the billing hosts");
    assert_eq!(events("approval_used")[0]["approval"], id.as_str());
    for row in rows.iter().filter(|r| {
        r["decision"]
            .as_str()
            .is_some_and(|d| d.starts_with("approval_"))
    }) {
        assert_eq!(row["tool"], "shell_exec", "{row}");
        assert_eq!(row["uid"], 0, "the requester is the row's principal: {row}");
        assert_eq!(row["rules"], serde_json::json!(["approve-shell"]), "{row}");
    }
    // `audit replay` shows the approval's life in the requester's session.
    let session = rows
        .iter()
        .find(|r| r["decision"] == "approval_granted")
        .and_then(|r| r["session"].as_str())
        .unwrap();
    let replay = Command::new(support::AGENT)
        .args(["audit", "replay", session, "--dir"])
        .arg(gate.scenario.audit_dir())
        .output()
        .unwrap();
    assert!(replay.status.success(), "{}", stderr(&replay));
    let replay = String::from_utf8_lossy(&replay.stdout);
    for event in ["approval_requested", "approval_granted", "approval_used"] {
        assert!(replay.contains(event), "{event} missing: {replay}");
    }
    assert!(
        replay.contains("would run: id"),
        "the released response: {replay}"
    );
    // The README's DuckDB question: which approvals did daemon grant, for which tools.
    let out = Command::new(python())
        .arg(workspace().join("tests/audit/approvals.py"))
        .arg(gate.scenario.audit_dir())
        .arg("daemon")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let grants: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(grants.len(), 1, "{grants:?}");
    assert_eq!(grants[0]["approval"], id.as_str());
    assert_eq!(grants[0]["tool"], "shell_exec");
}

#[test]
fn a_retry_uses_the_approval_once_and_only_for_the_same_arguments() {
    if !require_root("a_retry_uses_the_approval_once_and_only_for_the_same_arguments") {
        return;
    }
    let gate = Gate::new("hold_secs = 1", "");
    let agent = gate.start();
    // Session-era client this time: the hold ends and the answer says what to do.
    let args = r#"{"command": "uptime"}"#;
    let first = pending_id(&gate.call("legacy", "shell_exec", args));
    assert!(
        text(&gate.call("legacy", "shell_exec", args)).contains(&first),
        "a retry waits on the same approval"
    );
    accepted(&gate.approve_as(DAEMON, &first));
    // A new process, session and JSON-RPC id, same caller and call: released.
    let retried = gate.call("legacy", "shell_exec", args);
    assert_eq!(text(&retried), "would run: uptime", "{retried}");
    assert_eq!(retried["isError"], false);
    // Used once: the next identical call needs a new approval.
    let again = pending_id(&gate.call("legacy", "shell_exec", args));
    assert_ne!(again, first);
    // A changed argument never matches an approval for another.
    accepted(&gate.approve_as(SYS, &again));
    let changed = pending_id(&gate.call("legacy", "shell_exec", r#"{"command": "uptime; id"}"#));
    assert_ne!(changed, again);
    assert_eq!(
        gate.state(&again),
        "approved",
        "still waiting for its own call"
    );
    agent.wait_for("approval used; call forwarded", |l| {
        l["id"] == first.as_str()
    });
}

#[test]
fn expiry_is_a_denial() {
    if !require_root("expiry_is_a_denial") {
        return;
    }
    let gate = Gate::new("hold_secs = 1\nttl_secs = 2\ninput_required_rounds = 0", "");
    let agent = gate.start();
    let id = pending_id(&gate.call("2026-07-28", "shell_exec", r#"{"command": "id"}"#));
    agent.wait_for("approval expired", |l| l["id"] == id.as_str());
    assert_eq!(gate.state(&id), "expired");
    refused(&gate.approve_as(DAEMON, &id), "not pending");
    let next = pending_id(&gate.call("2026-07-28", "shell_exec", r#"{"command": "id"}"#));
    assert_ne!(next, id, "an expired approval is not revived by a retry");
    assert!(agent.stop(libc::SIGTERM).success());
    let rows = audit_rows(&gate.scenario.audit_dir());
    assert!(
        rows.iter()
            .any(|r| r["decision"] == "approval_expired"
                && r["payload"].as_str().unwrap().contains(&id)),
        "{rows:?}"
    );
}

#[test]
fn a_pending_approval_survives_a_restart() {
    if !require_root("a_pending_approval_survives_a_restart") {
        return;
    }
    let gate = Gate::new("hold_secs = 20", "");
    let agent = gate.start();
    let held = gate.spawn_call("2026-07-28", "shell_exec", r#"{"command": "id"}"#);
    let id = requested(&agent, &[]);
    // The agent stops while the call is held: the client is told it is pending.
    assert!(agent.stop(libc::SIGTERM).success());
    assert_eq!(pending_id(&result(held)), id);
    let agent = gate.start();
    assert_eq!(gate.state(&id), "pending");
    accepted(&gate.approve_as(DAEMON, &id));
    let retried = gate.call("2026-07-28", "shell_exec", r#"{"command": "id"}"#);
    assert_eq!(text(&retried), "would run: id", "{retried}");
    agent.wait_for("approval used; call forwarded", |l| l["id"] == id.as_str());
}

#[test]
fn a_quorum_of_two_needs_two_distinct_approvers() {
    if !require_root("a_quorum_of_two_needs_two_distinct_approvers") {
        return;
    }
    let gate = Gate::new(
        "hold_secs = 20",
        "[approval.rule.approve-shell]\napprovals_required = 2\n",
    );
    let agent = gate.start();
    let held = gate.spawn_call("2026-07-28", "shell_exec", r#"{"command": "id"}"#);
    let id = requested(&agent, &[]);
    accepted(&gate.approve_as(DAEMON, &id));
    assert_eq!(gate.state(&id), "pending");
    refused(&gate.approve_as(DAEMON, &id), "already approved");
    accepted(&gate.approve_as(SYS, &id));
    let released = result(held);
    assert_eq!(text(&released), "would run: id", "{released}");
}

#[test]
fn a_ttl_grant_covers_repeats_of_the_same_call_for_its_window() {
    if !require_root("a_ttl_grant_covers_repeats_of_the_same_call_for_its_window") {
        return;
    }
    let gate = Gate::new(
        "hold_secs = 1\ninput_required_rounds = 0",
        "[approval.rule.approve-shell]\ngrant = { ttl_secs = 600 }\n",
    );
    let _agent = gate.start();
    let args = r#"{"command": "df -h"}"#;
    let id = pending_id(&gate.call("2026-07-28", "shell_exec", args));
    accepted(&gate.approve_as(DAEMON, &id));
    for _ in 0..2 {
        let repeated = gate.call("2026-07-28", "shell_exec", args);
        assert_eq!(text(&repeated), "would run: df -h", "{repeated}");
    }
    assert_eq!(gate.state(&id), "approved", "still covering repeats");
    let other = pending_id(&gate.call("2026-07-28", "shell_exec", r#"{"command": "df"}"#));
    assert_ne!(other, id);
}

#[test]
fn nobody_floods_the_approvers() {
    if !require_root("nobody_floods_the_approvers") {
        return;
    }
    let gate = Gate::new(
        "hold_secs = 1\nmax_pending_per_principal = 1\ninput_required_rounds = 0",
        "",
    );
    let _agent = gate.start();
    let first = pending_id(&gate.call("2026-07-28", "shell_exec", r#"{"command": "a"}"#));
    let flood = gate.call("2026-07-28", "shell_exec", r#"{"command": "b"}"#);
    assert_eq!(flood["isError"], true, "{flood}");
    assert!(
        text(&flood).contains("approval refused: you already have 1 approvals waiting"),
        "{flood}"
    );
    assert_eq!(gate.list().len(), 1, "no second approval was opened");
    // The same call again is not a new request: it waits on the open one.
    assert_eq!(
        pending_id(&gate.call("2026-07-28", "shell_exec", r#"{"command": "a"}"#)),
        first
    );
}

#[test]
fn a_2026_client_keeps_coming_back_until_the_decision_then_gets_the_result() {
    if !require_root("a_2026_client_keeps_coming_back_until_the_decision_then_gets_the_result") {
        return;
    }
    // One-second holds: the SDK is answered input_required and sends the call again,
    // held again, without the caller seeing anything but a slow call.
    let gate = Gate::new("hold_secs = 1\ninput_required_rounds = 8", "");
    let agent = gate.start();
    let held = gate.spawn_call("2026-07-28", "shell_exec", r#"{"command": "id"}"#);
    let id = requested(&agent, &[]);
    agent.wait_for("approval pending; client asked to come back", |l| {
        l["id"] == id.as_str() && l["round"] == 2
    });
    accepted(&gate.approve_as(DAEMON, &id));
    let released = result(held);
    assert_eq!(released["isError"], false, "{released}");
    assert_eq!(text(&released), "would run: id");
    assert_eq!(gate.state(&id), "used");
    assert_eq!(gate.list().len(), 1, "the retries joined one approval");
}

#[test]
fn after_its_rounds_a_2026_client_is_told_the_approval_is_pending() {
    if !require_root("after_its_rounds_a_2026_client_is_told_the_approval_is_pending") {
        return;
    }
    let gate = Gate::new("hold_secs = 1\ninput_required_rounds = 1", "");
    let agent = gate.start();
    let id = pending_id(&gate.call("2026-07-28", "shell_exec", r#"{"command": "id"}"#));
    agent.wait_for("approval pending; client asked to come back", |l| {
        l["id"] == id.as_str() && l["round"] == 1
    });
    assert!(
        agent
            .lines("approval pending; client asked to come back")
            .iter()
            .all(|l| l["round"] == 1),
        "exactly one come-back round"
    );
}

#[test]
fn the_typescript_sdk_waits_out_a_hold_and_gets_the_result() {
    if !require_root("the_typescript_sdk_waits_out_a_hold_and_gets_the_result") {
        return;
    }
    let gate = Gate::new("hold_secs = 20", "");
    let agent = gate.start();
    let held = gate.spawn_node_call("shell_exec", r#"{"command": "id"}"#);
    let id = requested(&agent, &[]);
    accepted(&gate.approve_as(SYS, &id));
    let released = result(held);
    assert_eq!(released["isError"], false, "{released}");
    assert_eq!(text(&released), "would run: id");
}
