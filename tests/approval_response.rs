//! Response-side hold end to end: a tool whose answer carries more secrets than
//! `hold_response_if_masked_over` is held for approval before the Python SDK's real
//! client (in the intercepted cgroup) gets it, masked; `gateway-agent approvals …` run as
//! another uid decides. A retry after the hold is answered from the kept answer, without
//! running the tool again. Needs root and the test virtualenv (`cargo xtask setup`).

#[path = "support/approval.rs"]
mod gate;
mod support;

use gate::{APPROVERS, DAEMON, Gate, SYS, accepted, refused, requested, result, text};
use serde_json::Value;
use support::{audit_rows, require_root};

/// get_config answers with a password, an AWS key id and a GitHub token, each in the
/// text and the structured content: well over 3. echo of one key: under it.
const HOLD_OVER_3: &str = "hold_secs = 20\nhold_response_if_masked_over = 3";
const PLANTED: [&str; 3] = [
    "AKIAIOSFODNN7EXAMPLE",
    "hunter2-correct-horse-battery",
    "ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8",
];

fn all_text(result: &Value) -> String {
    result["text"].to_string()
}

#[track_caller]
fn assert_masked(result: &Value) {
    let shown = all_text(result);
    for secret in PLANTED {
        assert!(
            !shown.contains(secret),
            "{secret} reached the caller: {shown}"
        );
    }
}

fn events(rows: &[Value], decision: &str) -> Vec<Value> {
    rows.iter()
        .filter(|r| r["decision"] == decision)
        .map(|r| serde_json::from_str(r["payload"].as_str().unwrap()).unwrap())
        .collect()
}

/// Held, approved by another uid, released masked; then held and denied with a reason;
/// an answer under the threshold is not held. `response`: how the server answers.
fn held_then_released_or_denied(response: &str) {
    let gate = Gate::with_server(response, HOLD_OVER_3, "");
    let agent = gate.start();

    let small = gate.call(
        "2026-07-28",
        "echo",
        r#"{"message": "AKIAIOSFODNN7EXAMPLE"}"#,
    );
    assert_eq!(small["isError"], false, "{small}");
    assert_masked(&small);
    assert!(
        gate.list().is_empty(),
        "an answer under the threshold was held"
    );

    let held = gate.spawn_call("2026-07-28", "get_config", r#"{"service": "billing"}"#);
    let id = requested(&agent, &[]);
    let listed = gate.list();
    let mine = listed.iter().find(|a| a["id"] == id.as_str()).unwrap();
    assert_eq!(mine["state"], "pending");
    assert_eq!(mine["key"]["stage"], "response");
    assert_eq!(mine["key"]["tool"], "get_config");
    // The client (root) may not release its own answer.
    refused(&gate.cli(None, &["approve", &id]), "no self-approval");
    accepted(&gate.approve_as(DAEMON, &id));
    let released = result(held);
    assert_eq!(released["isError"], false, "{released}");
    assert!(all_text(&released).contains("db.internal"), "{released}");
    assert_masked(&released);
    assert_eq!(gate.state(&id), "used");

    let held = gate.spawn_call("2026-07-28", "get_config", r#"{"service": "payroll"}"#);
    let second = requested(&agent, &[&id]);
    accepted(&gate.cli(
        Some((SYS, APPROVERS.1, "")),
        &["deny", &second, "--reason", "nobody needs every credential"],
    ));
    let denied = result(held);
    assert_eq!(denied["isError"], true, "{denied}");
    assert!(
        text(&denied).contains("denied by sys: nobody needs every credential"),
        "{denied}"
    );
    assert_masked(&denied);

    assert!(agent.stop(libc::SIGTERM).success());
    let rows = audit_rows(&gate.scenario.audit_dir());
    let requested_rows = events(&rows, "approval_requested");
    assert_eq!(requested_rows.len(), 2, "{requested_rows:?}");
    for row in &requested_rows {
        assert_eq!(row["stage"], "response", "{row}");
    }
    let granted = events(&rows, "approval_granted");
    assert_eq!(granted.len(), 1, "{granted:?}");
    assert_eq!(granted[0]["approver"]["user"], "daemon");
    assert_eq!(granted[0]["stage"], "response");
    let denials = events(&rows, "approval_denied");
    assert_eq!(denials[0]["approval"], second.as_str());
    assert_eq!(denials[0]["reason"], "nobody needs every credential");
    assert_eq!(events(&rows, "approval_used")[0]["approval"], id.as_str());
    // The server's answers are recorded masked, with how many secrets were masked.
    let answers: Vec<&Value> = rows
        .iter()
        .filter(|r| r["direction"] == "server_to_client" && r["method"] == "tools/call")
        .collect();
    assert_eq!(answers.len(), 3, "{answers:?}");
    assert!(
        answers[1]["masked_count"].as_i64().unwrap() > 3,
        "{:?}",
        answers[1]
    );
    for row in &rows {
        let payload = row["payload"].as_str().unwrap_or("");
        for secret in PLANTED {
            assert!(
                !payload.contains(secret),
                "{secret} in the audit trail: {row}"
            );
        }
    }
}

#[test]
fn a_json_answer_with_many_secrets_is_held_then_released_masked_or_denied() {
    if !require_root("a_json_answer_with_many_secrets_is_held_then_released_masked_or_denied") {
        return;
    }
    held_then_released_or_denied("json");
}

#[test]
fn an_sse_answer_with_many_secrets_is_held_then_released_masked_or_denied() {
    if !require_root("an_sse_answer_with_many_secrets_is_held_then_released_masked_or_denied") {
        return;
    }
    held_then_released_or_denied("sse");
}

#[test]
fn a_retry_after_the_hold_gets_the_kept_answer_without_running_the_tool_again() {
    if !require_root("a_retry_after_the_hold_gets_the_kept_answer_without_running_the_tool_again") {
        return;
    }
    let gate = Gate::new("hold_secs = 1\nhold_response_if_masked_over = 3", "");
    let agent = gate.start();
    let args = r#"{"service": "billing"}"#;
    let pending = gate.call("2026-07-28", "get_config", args);
    assert_eq!(pending["isError"], true, "{pending}");
    let said = text(&pending);
    let id = said
        .strip_prefix("response held for approval: ")
        .and_then(|rest| rest.split(',').next())
        .unwrap_or_else(|| panic!("not a held answer: {said}"))
        .to_owned();
    assert!(said.contains("retry the same call"), "{said}");
    assert_masked(&pending);
    // Retried while still pending: held again (from memory), still pending.
    let again = gate.call("2026-07-28", "get_config", args);
    assert!(text(&again).contains(&id), "{again}");
    accepted(&gate.approve_as(DAEMON, &id));
    // Another caller's or another argument's retry is not what was approved.
    let other = gate.call("2026-07-28", "get_config", r#"{"service": "payroll"}"#);
    assert_eq!(other["isError"], true, "{other}");
    assert!(!text(&other).contains(&id), "{other}");
    let released = gate.call("2026-07-28", "get_config", args);
    assert_eq!(released["isError"], false, "{released}");
    assert!(all_text(&released).contains("db.internal"), "{released}");
    assert_masked(&released);
    assert_eq!(gate.state(&id), "used");

    assert!(agent.stop(libc::SIGTERM).success());
    let rows = audit_rows(&gate.scenario.audit_dir());
    // The server answered the billing call once (the retries were answered from the
    // kept answer) and the payroll call once.
    let answers = rows
        .iter()
        .filter(|r| r["direction"] == "server_to_client" && r["method"] == "tools/call")
        .count();
    assert_eq!(answers, 2, "the tool ran again for a retry");
    let used = events(&rows, "approval_used");
    assert_eq!(used.len(), 1, "{used:?}");
    assert_eq!(used[0]["stage"], "response");
}
