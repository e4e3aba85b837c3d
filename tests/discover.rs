//! `gateway-agent discover` against real servers on loopback: the Python SDK's MCP server
//! and the reference server-everything (TypeScript SDK) on ports nobody configured, a
//! plain HTTP server, and an MCP server the config intercepts. Each MCP server logs every
//! request it gets, so the test sees the probes were harmless. Needs no root: nothing is
//! intercepted; the discover command only reads /proc and sends probes. `--port` keeps the
//! probes to this test's own servers (other tests' servers run on the same host).

mod support;

use std::process::Command;

use support::{AGENT, HttpServer, McpServer, free_port};

fn discover(config: &std::path::Path, ports: &[u16]) -> Vec<serde_json::Value> {
    let mut cmd = Command::new(AGENT);
    cmd.args(["discover", "--json", "--config"]).arg(config);
    for port in ports {
        cmd.args(["--port", &port.to_string()]);
    }
    let out = cmd.output().expect("run gateway-agent discover");
    assert!(
        out.status.success(),
        "discover: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("discover --json prints JSON lines"))
        .collect()
}

fn on_port(found: &[serde_json::Value], port: u16) -> &serde_json::Value {
    found
        .iter()
        .find(|f| f["addr"].as_str().unwrap().ends_with(&format!(":{port}")))
        .unwrap_or_else(|| panic!("port {port} not listed: {found:?}"))
}

#[test]
fn finds_shadow_mcp_servers_and_tells_intercepted_from_not() {
    let dir = tempfile::tempdir().unwrap();
    let python_log = dir.path().join("python.log");
    let node_log = dir.path().join("node.log");
    let configured_log = dir.path().join("configured.log");
    let python = McpServer::logged(&python_log);
    let everything = McpServer::everything_logged(&node_log);
    let configured = McpServer::logged(&configured_log);
    let plain = HttpServer::start("127.0.0.1");
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "[intercept]\nports = [{port}]\nlisten = \"127.0.0.1:{listen}\"\n\n\
             [[server]]\nname = \"sanctioned\"\naddr = \"127.0.0.1:{port}\"\n\n\
             [audit]\ndir = \"{audit}\"\n",
            port = configured.port,
            listen = free_port("127.0.0.1"),
            audit = dir.path().join("audit").display(),
        ),
    )
    .unwrap();

    let found = discover(
        &config,
        &[python.port, everything.port, configured.port, plain.port()],
    );

    let py = on_port(&found, python.port);
    assert_eq!(py["mcp"], true, "{py}");
    assert_eq!(py["server"]["name"], "gateway-e2e-server", "{py}");
    assert_eq!(py["server"]["path"], "/mcp");
    assert_eq!(py["server"]["transport"], "streamable_http");
    let generations = py["server"]["generations"].to_string();
    assert!(
        generations.contains("2025") && generations.contains("2026-07-28"),
        "{py}"
    );
    assert_eq!(py["intercepted"], false, "{py}");
    assert!(py["comm"].as_str().unwrap().starts_with("python"), "{py}");

    let node = on_port(&found, everything.port);
    assert_eq!(node["mcp"], true, "{node}");
    assert!(
        node["server"]["name"]
            .as_str()
            .unwrap()
            .contains("everything"),
        "{node}"
    );
    assert!(
        node["server"]["generations"].to_string().contains("2025"),
        "{node}"
    );
    assert_eq!(node["intercepted"], false);
    assert_eq!(node["comm"], "node", "{node}");

    let sanctioned = on_port(&found, configured.port);
    assert_eq!(sanctioned["mcp"], true, "{sanctioned}");
    assert_eq!(sanctioned["intercepted"], true, "{sanctioned}");
    assert_eq!(sanctioned["configured_server"], "sanctioned");

    let web = on_port(&found, plain.port());
    assert_eq!(web["mcp"], false, "{web}");
    assert_eq!(web["http_status"], 200, "{web}");

    // The probes were an initialize and a server/discover, never a tool call.
    for log in [&python_log, &node_log, &configured_log] {
        let seen = std::fs::read_to_string(log).unwrap_or_default();
        assert!(seen.contains("\"initialize\""), "{}: {seen}", log.display());
        assert!(!seen.contains("tools/call"), "{}: {seen}", log.display());
        assert!(!seen.contains("tools/list"), "{}: {seen}", log.display());
    }
    let seen = std::fs::read_to_string(&python_log).unwrap();
    assert!(seen.contains("server/discover"), "{seen}");
}
