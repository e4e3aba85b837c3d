//! A secret a tool prints across two SSE events, with `mask.stream_holdback`: the Python
//! SDK's real client, intercepted in a child cgroup, calls the Python SDK's real server
//! (tests/mcp/split_server.py) through the agent. Needs root and the test virtualenv
//! (`cargo xtask setup`).

mod support;

use serde_json::Value;
use support::{McpServer, Scenario, audit_rows, require_root};

const TOKEN: &str = "ghp_Q1w2E3r4T5y6U7i8O9p0A1s2D3f4G5h6J7k8";
/// Where tests/mcp/split_server.py cuts the token.
const CUT: usize = 17;

/// What the client saw through an agent with `holdback` (none: off), and the audit rows.
fn through_agent(holdback: Option<&str>, mode: &str) -> (Value, Vec<Value>) {
    let server = McpServer::split();
    let scenario = Scenario::new();
    let extra = holdback.map_or_else(String::new, |holdback| {
        format!(
            "[[server]]\nname = \"split\"\naddr = \"127.0.0.1:{}\"\nmask.stream_holdback = \"{holdback}\"\n",
            server.port
        )
    });
    let agent = scenario.start_agent(&scenario.config_with(&[server.port], &extra));
    let flag = scenario.audit_dir().with_file_name("step-seen");
    let seen = server.python_client_in(
        &scenario,
        "split_client.py",
        &[mode, flag.to_str().unwrap()],
    );
    assert!(agent.stop(libc::SIGTERM).success());
    (seen, audit_rows(&scenario.audit_dir()))
}

fn progress_rows(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .filter(|r| r["method"] == "notifications/progress")
        .map(|r| r["payload"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn with_holdback(mode: &str) {
    let (seen, rows) = through_agent(Some("2s"), mode);
    let (first, second) = TOKEN.split_at(CUT);
    // Each progress message keeps its own words; its part of the token is a placeholder.
    assert_eq!(
        seen["deploy"]["progress"],
        serde_json::json!([
            "pushing with [MASKED:github_pat]",
            "[MASKED:github_pat] accepted"
        ]),
        "{mode}: {seen}"
    );
    assert_eq!(seen["deploy"]["text"], serde_json::json!(["deployed"]));
    // A notification waits for the next message at most the configured wait: the step
    // the server waits on still reaches the client while the stream stays open.
    assert_eq!(
        seen["wait_for_ack"]["text"],
        serde_json::json!(["acknowledged"])
    );
    assert_eq!(
        seen["wait_for_ack"]["progress"],
        serde_json::json!(["step 1 of 1"])
    );

    // The trail holds what the client got, and counts what the join masked.
    let recorded = progress_rows(&rows);
    assert!(recorded.len() >= 3, "{mode}: {recorded:?}");
    for payload in &recorded {
        for half in [first, second] {
            assert!(
                !payload.contains(half),
                "{mode}: {half} in the trail: {payload}"
            );
        }
    }
    let masked: Vec<&Value> = rows
        .iter()
        .filter(|r| r["method"] == "notifications/progress" && r["masked_count"] == 1)
        .collect();
    assert_eq!(masked.len(), 2, "{mode}: {rows:?}");
    for row in masked {
        assert_eq!(
            row["mask_rules"],
            serde_json::json!(["github_pat"]),
            "{row}"
        );
    }
}

#[test]
fn a_token_split_across_two_progress_events_is_masked_with_holdback_session_era() {
    if require_root("a_token_split_across_two_progress_events_is_masked_with_holdback_session_era")
    {
        with_holdback("legacy");
    }
}

#[test]
fn a_token_split_across_two_progress_events_is_masked_with_holdback_2026() {
    if require_root("a_token_split_across_two_progress_events_is_masked_with_holdback_2026") {
        with_holdback("2026-07-28");
    }
}

/// The documented limit, and the control that shows the test above can fail: without
/// holdback each event is masked alone, and neither half of the token is a secret alone.
#[test]
fn without_holdback_each_event_is_masked_alone() {
    if !require_root("without_holdback_each_event_is_masked_alone") {
        return;
    }
    let (seen, _) = through_agent(None, "2026-07-28");
    let (first, second) = TOKEN.split_at(CUT);
    assert_eq!(
        seen["deploy"]["progress"],
        serde_json::json!([
            format!("pushing with {first}"),
            format!("{second} accepted")
        ]),
        "{seen}"
    );
}
