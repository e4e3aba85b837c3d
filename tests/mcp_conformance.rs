//! The official MCP conformance suite (`@modelcontextprotocol/conformance`, on the Node 22
//! it needs) run against the reference server-everything directly and through the agent:
//! every scenario must end the same way. The gateway may not break what works, nor mend
//! what does not. Needs root and `cargo xtask setup`.

mod support;

use std::{collections::BTreeMap, process::Command};

use support::{McpServer, Scenario, require_root, workspace};

fn suite_argv(url: &str) -> Vec<String> {
    let node_dir = workspace().join("tests/mcp/node/node_modules");
    vec![
        node_dir.join(".bin/node").display().to_string(),
        node_dir
            .join("@modelcontextprotocol/conformance/dist/index.js")
            .display()
            .to_string(),
        "server".into(),
        "--url".into(),
        url.into(),
    ]
}

/// Scenario name → "N passed, M failed", from the suite's summary lines.
fn results(out: std::process::Output) -> BTreeMap<String, String> {
    let text = String::from_utf8_lossy(&out.stdout);
    let results: BTreeMap<String, String> = text
        .lines()
        .filter_map(|line| {
            let line = line
                .strip_prefix("✓ ")
                .or_else(|| line.strip_prefix("✗ "))?;
            let (name, outcome) = line.split_once(": ")?;
            Some((name.to_owned(), outcome.to_owned()))
        })
        .collect();
    assert!(
        results.len() >= 20,
        "the suite ran too few scenarios:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    results
}

#[test]
fn conformance_results_are_identical_direct_and_through_the_agent() {
    if !require_root("conformance_results_are_identical_direct_and_through_the_agent") {
        return;
    }
    let server = McpServer::everything("streamableHttp");
    let scenario = Scenario::new();
    let agent = scenario.start_agent(&scenario.config(&[server.port]));

    let argv = suite_argv(&server.url());
    let direct = results(
        Command::new(&argv[0])
            .args(&argv[1..])
            .output()
            .expect("run the conformance suite"),
    );
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let proxied = results(scenario.output_in_cgroup(&argv));
    assert_eq!(proxied, direct);
    // And it really went through the agent.
    agent.wait_for("intercepted connection", |l| l["comm"] == "node");
}
