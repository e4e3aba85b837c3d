//! Faults end to end: a client that goes away while its request is in flight (the upstream
//! is slow to answer) or held for approval. Needs root (and, for the approval case, the
//! test virtualenv).
//!
//! In flight: the upstream request is cancelled and its connection released, the log says
//! the client went away, and the audit trail has a `client_gone` row for the request.
//! Held: the approval stays open for a retry of the same call (approvals are keyed to the
//! call, not the connection), and an `approval_requester_gone` row tells the approver the
//! held client left.

#[path = "support/approval.rs"]
mod gate;
mod support;

use gate::{Gate, requested};
use serde_json::Value;
use support::{
    Scenario, audit_rows, require_root,
    stall::{Stall, StallingServer},
};

#[test]
fn client_gone_while_in_flight_cancels_the_upstream_request_and_is_audited() {
    if !require_root("client_gone_while_in_flight_cancels_the_upstream_request_and_is_audited") {
        return;
    }
    let server = StallingServer::start(Stall::Silent);
    let scenario = Scenario::new();
    let agent = scenario.start_agent(&scenario.config(&[server.port]));
    let url = format!("http://127.0.0.1:{}/mcp", server.port);
    // curl gives up after a second: the agent is still waiting on the upstream.
    let out = scenario.curl_output(&[
        "--max-time",
        "1",
        "-H",
        "content-type: application/json",
        "-H",
        "accept: application/json, text/event-stream",
        "--data-binary",
        r#"{"jsonrpc":"2.0","id":41,"method":"tools/call","params":{"name":"slow","arguments":{}}}"#,
        &url,
    ]);
    assert_eq!(out.status.code(), Some(28), "curl should time out: {out:?}");
    assert_eq!(
        server.wait_open(0),
        0,
        "the upstream request was not cancelled"
    );
    let line = agent.wait_for(
        "client went away before its answer; upstream request cancelled",
        |l| l["id"] == "41",
    );
    assert_eq!(line["method"], "tools/call", "{line}");

    agent.stop(libc::SIGTERM);
    let rows = audit_rows(&scenario.audit_dir());
    let gone: Vec<&Value> = rows
        .iter()
        .filter(|r| r["decision"] == "client_gone")
        .collect();
    assert_eq!(gone.len(), 1, "{rows:#?}");
    assert_eq!(gone[0]["request_id"], "41", "{}", gone[0]);
    assert_eq!(gone[0]["method"], "tools/call", "{}", gone[0]);
    assert_eq!(gone[0]["status"], 499, "{}", gone[0]);
}

#[test]
fn client_gone_while_held_for_approval_is_marked_on_the_approval() {
    if !require_root("client_gone_while_held_for_approval_is_marked_on_the_approval") {
        return;
    }
    let gate = Gate::new("hold_secs = 20\nkeepalive_secs = 1", "");
    let agent = gate.start();
    let mut held = gate.spawn_call("2026-07-28", "shell_exec", r#"{"command": "id"}"#);
    let id = requested(&agent, &[]);
    // SAFETY: kill(2) on the PID of our own child, not yet reaped.
    unsafe { libc::kill(held.id() as i32, libc::SIGKILL) };
    let _ = held.wait();
    agent.wait_for(
        "client went away while held for approval; the approval stays open for a retry",
        |l| l["id"] == id.as_str(),
    );
    assert_eq!(gate.state(&id), "pending", "the approval stays open");

    agent.stop(libc::SIGTERM);
    let rows = audit_rows(&gate.scenario.audit_dir());
    let gone: Vec<Value> = rows
        .iter()
        .filter(|r| r["decision"] == "approval_requester_gone")
        .map(|r| serde_json::from_str(r["payload"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(gone.len(), 1, "{rows:#?}");
    assert_eq!(gone[0]["approval"], id.as_str(), "{}", gone[0]);
}
