//! The TypeScript SDK's real client against the reference `server-everything`, through
//! the eBPF interception and the agent, over Streamable HTTP and the legacy HTTP+SSE
//! transport. server-everything's `get-env` tool returns its whole environment, where
//! fake credentials are planted. Needs root and `cargo xtask setup` (npm packages).

mod support;

use support::{McpServer, PLANTED_ENV, Scenario, require_root};

const POLICY: &str = r#"
[[rule]]
id = "no-remote-fetch"
description = "gzip-file-as-resource fetches arbitrary URLs"
action = "deny"
reason = "fetching remote files through MCP is not allowed"
[rule.match]
tool = ["gzip-file-as-resource"]
"#;

fn run_case(transport: &str, client_mode: &str) {
    let server = McpServer::everything(transport);
    let scenario = Scenario::new();
    let config = scenario.config_with_policy(&[server.port], POLICY);
    let _agent = scenario.start_agent(&config);

    let direct = server.client_direct(client_mode);
    let proxied = server.client_in(&scenario, client_mode);

    let direct_text = direct.to_string();
    for (_, secret) in PLANTED_ENV {
        assert!(direct_text.contains(secret), "control run lacks {secret}");
    }
    let seen = proxied.to_string();
    for (name, secret) in PLANTED_ENV {
        assert!(!seen.contains(secret), "{transport}: {name} leaked: {seen}");
    }
    let env = proxied["env"][0].as_str().unwrap();
    assert!(env.contains("\"GITHUB_TOKEN\": \"[MASKED:"), "{env}");
    assert!(
        env.contains("\"PORT\""),
        "unrelated variables survive: {env}"
    );

    // Only the masked values differ: the server's key order and layout of the JSON
    // document inside the text are kept.
    let mut direct_env = direct["env"][0].as_str().unwrap().to_owned();
    for (_, secret) in PLANTED_ENV {
        direct_env = direct_env.replace(secret, "<secret>");
    }
    assert_eq!(placeholders_as_secrets(env), direct_env, "{transport}");

    let mut expected_tools = direct["tools"].as_array().unwrap().clone();
    expected_tools.retain(|t| t != "gzip-file-as-resource");
    assert_eq!(
        proxied["tools"],
        serde_json::Value::Array(expected_tools),
        "{transport}"
    );
    assert_eq!(proxied["denied"]["isError"], true, "{transport}: {proxied}");
    assert!(
        proxied["denied"]["text"][0]
            .as_str()
            .unwrap()
            .contains("no-remote-fetch")
    );
    assert_eq!(proxied["echo"], direct["echo"]);
    assert_eq!(proxied["sum"], direct["sum"]);
}

/// `text` with every `[MASKED:rule]` placeholder written as `<secret>`.
fn placeholders_as_secrets(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("[MASKED:") {
        out.push_str(&rest[..start]);
        out.push_str("<secret>");
        let end = rest[start..]
            .find(']')
            .map_or(rest.len(), |i| start + i + 1);
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[test]
fn typescript_client_streamable_http() {
    if require_root("typescript_client_streamable_http") {
        run_case("streamableHttp", "streamable");
    }
}

#[test]
fn typescript_client_legacy_sse() {
    if require_root("typescript_client_legacy_sse") {
        run_case("sse", "sse");
    }
}
