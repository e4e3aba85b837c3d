//! Secret handles end to end: the Python SDK's real client, intercepted in a child cgroup,
//! reads a secret from a server configured with `mask_mode = "handle"`, gets a handle,
//! and passes it to another tool of the same server, which receives the real value (its
//! request log shows it). The same handle in a new session, on another server, or after
//! expiry is refused; the audit trail and the agent's log never hold the value. Needs
//! root and the test virtualenv (`cargo xtask setup`).

mod support;

use support::{GITHUB_TOKEN, McpServer, Scenario, audit_rows, python, require_root, workspace};

struct Case {
    scenario: Scenario,
    vault: McpServer,
    other: McpServer,
    vault_log: std::path::PathBuf,
    other_log: std::path::PathBuf,
    config: std::path::PathBuf,
}

impl Case {
    fn new(extra: &str) -> Self {
        let scenario = Scenario::new();
        let vault_log = scenario.dir.path().join("vault.log");
        let other_log = scenario.dir.path().join("other.log");
        let vault = McpServer::logged(&vault_log);
        let other = McpServer::logged(&other_log);
        let config = scenario.config_with(
            &[vault.port, other.port],
            &format!(
                "\n[[server]]\nname = \"vault\"\naddr = \"127.0.0.1:{}\"\nmask_mode = \"handle\"\n{extra}",
                vault.port
            ),
        );
        Self {
            scenario,
            vault,
            other,
            vault_log,
            other_log,
            config,
        }
    }

    fn client(&self) -> serde_json::Value {
        let python = python();
        let script = workspace().join("tests/mcp/handles_client.py");
        let (a, b) = (self.vault.url(), self.other.url());
        let argv = [python.to_str().unwrap(), script.to_str().unwrap(), &a, &b];
        let out = self.scenario.output_in_cgroup(&argv);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("client JSON")
    }
}

#[test]
fn a_handle_resolves_for_the_same_caller_session_and_server_only() {
    if !require_root("a_handle_resolves_for_the_same_caller_session_and_server_only") {
        return;
    }
    let case = Case::new("");
    let agent = case.scenario.start_agent(&case.config);
    let seen = case.client();

    let notes = seen["notes"].as_str().unwrap();
    assert!(!notes.contains(GITHUB_TOKEN), "{seen}");
    assert!(seen["handle"].as_str().is_some(), "no handle in {notes}");
    // Same session, same server: the server got the real value…
    let same = &seen["same_session"];
    assert_eq!(same["isError"], false, "{seen}");
    let vault_log = std::fs::read_to_string(&case.vault_log).unwrap();
    assert!(
        vault_log.contains(&format!("deploy with {GITHUB_TOKEN}")),
        "the server never received the value: {vault_log}"
    );
    // …and its echo of it came back as a handle again, never the value.
    let echoed = same["text"].as_str().unwrap();
    assert!(echoed.starts_with("deploy with [SECRET:h_"), "{echoed}");
    // A new session, another server: refused, and the other server got nothing.
    let new_session = &seen["new_session"];
    assert_eq!(new_session["isError"], true, "{seen}");
    assert!(
        new_session["text"]
            .as_str()
            .unwrap()
            .contains("another MCP session"),
        "{seen}"
    );
    let other = &seen["other_server"];
    assert_eq!(other["isError"], true, "{seen}");
    assert!(
        other["text"].as_str().unwrap().contains("another server"),
        "{seen}"
    );
    let other_log = std::fs::read_to_string(&case.other_log).unwrap_or_default();
    assert!(!other_log.contains("deploy with"), "{other_log}");

    agent.wait_for("secret handles resolved for the upstream", |l| {
        l["handles"] == 1
    });
    let log = serde_json::Value::Array(agent.all_lines()).to_string();
    assert!(!log.contains(GITHUB_TOKEN), "the agent logged the value");
    assert!(agent.stop(libc::SIGTERM).success());
    let rows = serde_json::Value::Array(audit_rows(&case.scenario.audit_dir())).to_string();
    assert!(
        !rows.contains(GITHUB_TOKEN),
        "the audit trail holds the value"
    );
    assert!(rows.contains("[SECRET:h_"), "no handle in the audit trail");
}

#[test]
fn an_expired_handle_is_refused() {
    if !require_root("an_expired_handle_is_refused") {
        return;
    }
    let case = Case::new("\n[handles]\nttl_secs = 0\n");
    let _agent = case.scenario.start_agent(&case.config);
    let seen = case.client();
    let same = &seen["same_session"];
    assert_eq!(same["isError"], true, "{seen}");
    assert!(same["text"].as_str().unwrap().contains("expired"), "{seen}");
    let vault_log = std::fs::read_to_string(&case.vault_log).unwrap();
    assert!(!vault_log.contains(GITHUB_TOKEN), "{vault_log}");
}
