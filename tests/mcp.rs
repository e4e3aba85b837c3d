//! The MCP pipeline end to end: the Python SDK's real client, intercepted by the eBPF
//! programs in a child cgroup, talks through the agent to the Python SDK's real server,
//! in both protocol generations and both response styles. Needs root and the test
//! virtualenv (`cargo xtask setup` makes it).

mod support;

use support::{
    Agent, DB_PASSWORD, DENY_SHELL_POLICY, GITHUB_TOKEN, McpServer, SERVER_SECRETS, Scenario,
    answer_row, audit_rows, require_root,
};

/// The test server, and an agent intercepting it with `policy` as its policy directory.
fn start(policy: &str, state: &str, response: &str) -> (McpServer, Scenario, Agent) {
    let server = McpServer::start(state, response);
    let scenario = Scenario::new();
    let config = scenario.config_with_policy(&[server.port], policy);
    let agent = scenario.start_agent(&config);
    (server, scenario, agent)
}

fn run_case(state: &str, response: &str, mode: &str) {
    let (server, scenario, agent) = start(DENY_SHELL_POLICY, state, response);
    let direct = server.client_direct(mode);
    let proxied = server.client_in(&scenario, mode);
    let case = format!("{state}/{response}/{mode}");

    // The control: without the gateway the secrets and the shell tool are there.
    assert!(
        direct.to_string().contains(GITHUB_TOKEN),
        "{case}: {direct}"
    );
    assert!(
        direct["tools"]
            .as_array()
            .unwrap()
            .contains(&"shell_exec".into())
    );

    // Through the gateway: the denied tool is hidden and refused…
    assert_eq!(
        proxied["tools"],
        serde_json::json!(["create_user", "echo", "get_config", "read_notes"]),
        "{case}"
    );
    assert_eq!(proxied["shell_exec"]["isError"], true, "{case}: {proxied}");
    let refusal = proxied["shell_exec"]["text"][0].as_str().unwrap();
    assert!(
        refusal.contains("Denied by gateway policy") && refusal.contains("deny-shell"),
        "{case}: {refusal}"
    );
    // …no planted secret reaches the caller, in text, JSON-in-text or structured content…
    let seen = proxied.to_string();
    for secret in SERVER_SECRETS {
        assert!(!seen.contains(secret), "{case}: {secret} leaked: {seen}");
    }
    assert!(seen.contains("[MASKED:"), "{case}: {seen}");
    let structured = &proxied["get_config"]["structured"];
    assert_eq!(
        structured["database"]["host"], "db.internal",
        "{case}: {structured}"
    );
    assert!(
        structured["database"]["password"]
            .as_str()
            .unwrap()
            .starts_with("[MASKED:")
    );
    assert!(
        structured["aws_access_key_id"]
            .as_str()
            .unwrap()
            .contains("[MASKED:")
    );
    // …schemas naming secrets (`password`, `api_key` properties) are structure, not
    // secrets: the client gets them exactly as direct (the SDK validated them, and
    // jsonschema validated the masked structured result against them)…
    for (tool, schemas) in proxied["schemas"].as_object().unwrap() {
        assert_eq!(schemas, &direct["schemas"][tool], "{case}: {tool}");
    }
    let created = &proxied["create_user"]["structured"];
    assert_eq!(
        direct["create_user"]["structured"]["password"],
        "pw-Zx81-correct"
    );
    let seen_created = created.to_string();
    for secret in ["pw-Zx81-correct", "ak-1234-5678-90", DB_PASSWORD] {
        assert!(
            !seen_created.contains(secret),
            "{case}: {secret} leaked: {created}"
        );
    }
    // Masked values keep their JSON types: containers entered, numbers kept.
    assert_eq!(created["username"], "ada", "{case}: {created}");
    assert_eq!(
        created["credentials"]["rotation_days"], 30,
        "{case}: {created}"
    );
    assert_eq!(created["session"], 42, "{case}: {created}");
    assert_eq!(
        created["tokens"].as_array().unwrap().len(),
        2,
        "{case}: {created}"
    );
    assert_eq!(proxied["create_user"]["isError"], false, "{case}");
    // …and everything without a secret is exactly as direct.
    assert_eq!(proxied["echo"], direct["echo"], "{case}");
    assert_eq!(proxied["get_config"]["structured"]["service"], "billing");

    agent.wait_for("request denied by policy", |l| l["rule"] == "deny-shell");
    agent.wait_for("masked secrets in response", |_| true);

    // In the audit trail, every answer to a tools/call names the tool it answers, on
    // every transport (the legacy one matches answers to requests through its session).
    assert!(agent.stop(libc::SIGTERM).success());
    let rows = audit_rows(&scenario.audit_dir());
    let calls: Vec<&serde_json::Value> = rows
        .iter()
        .filter(|r| r["kind"] == "request" && r["method"] == "tools/call")
        .collect();
    assert_eq!(calls.len(), 5, "{case}: {calls:?}");
    for call in calls {
        let answer = answer_row(&rows, call);
        assert_eq!(answer["tool"], call["tool"], "{case}: {answer}");
    }
}

#[test]
fn session_era_client_over_sse_responses() {
    if require_root("session_era_client_over_sse_responses") {
        run_case("stateful", "sse", "legacy");
    }
}

#[test]
fn session_era_client_over_json_responses() {
    if require_root("session_era_client_over_json_responses") {
        run_case("stateful", "json", "legacy");
    }
}

#[test]
fn stateless_2026_client_over_json_responses() {
    if require_root("stateless_2026_client_over_json_responses") {
        run_case("stateless", "json", "2026-07-28");
    }
}

#[test]
fn stateless_2026_client_over_sse_responses() {
    if require_root("stateless_2026_client_over_sse_responses") {
        run_case("stateless", "sse", "2026-07-28");
    }
}

#[test]
fn legacy_http_sse_transport() {
    if require_root("legacy_http_sse_transport") {
        run_case("legacy-sse", "sse", "sse");
    }
}

#[test]
fn a_mask_none_rule_leaves_only_that_tools_results_unmasked() {
    if !require_root("a_mask_none_rule_leaves_only_that_tools_results_unmasked") {
        return;
    }
    let policy = format!(
        "{DENY_SHELL_POLICY}\n[[rule]]\nid = \"trusted-notes\"\naction = \"allow\"\nmask = \"none\"\n[rule.match]\ntool = [\"read_notes\"]\n"
    );
    let (server, scenario, _agent) = start(&policy, "stateless", "json");
    let proxied = server.client_in(&scenario, "2026-07-28");
    assert!(
        proxied["read_notes"][0]
            .as_str()
            .unwrap()
            .contains(GITHUB_TOKEN),
        "{proxied}"
    );
    assert!(
        !proxied["get_config"].to_string().contains(GITHUB_TOKEN),
        "{proxied}"
    );
}

#[test]
fn policy_matches_a_server_by_its_configured_name() {
    if !require_root("policy_matches_a_server_by_its_configured_name") {
        return;
    }
    let server = McpServer::start("stateless", "json");
    let scenario = Scenario::new();
    let policy = "[[rule]]\nid = \"billing-no-echo\"\naction = \"deny\"\nreason = \"not on billing\"\n[rule.match]\nserver = [\"billing-mcp\"]\ntool = [\"echo\"]\n";
    let config = scenario.config_with_policy(&[server.port], policy);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[[server]]\nname = \"billing-mcp\"\naddr = \"127.0.0.1:{}\"\n",
        server.port
    ));
    std::fs::write(&config, text).unwrap();
    let agent = scenario.start_agent(&config);

    let proxied = server.client_in(&scenario, "2026-07-28");
    assert!(
        !proxied["tools"]
            .as_array()
            .unwrap()
            .contains(&"echo".into()),
        "{proxied}"
    );
    assert!(
        proxied["echo"][0]
            .as_str()
            .unwrap()
            .contains("billing-no-echo"),
        "{proxied}"
    );
    agent.wait_for("intercepted connection", |l| l["server"] == "billing-mcp");
}
