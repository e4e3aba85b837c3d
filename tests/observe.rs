//! Operating the agent: Prometheus metrics after real MCP traffic through interception,
//! and `gateway-agent status` with the agent up, down (fail closed) and detached. Needs
//! root and the test virtualenv (`cargo xtask setup`).

mod support;

use std::{
    io::{Read as _, Write as _},
    net::TcpStream,
    path::Path,
    process::Command,
};

use support::{DENY_SHELL_POLICY, HttpServer, McpServer, Scenario, require_root};

/// `GET /metrics` with a plain socket: status line and body.
fn scrape(port: u16) -> (String, String) {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).expect("connect to metrics");
    conn.set_read_timeout(Some(support::WAIT)).unwrap();
    conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).expect("read metrics");
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    (
        head.lines().next().unwrap_or("").to_owned(),
        body.to_owned(),
    )
}

/// The value of the sample `series` (name with labels, as rendered), 0 when absent.
fn sample(body: &str, series: &str) -> f64 {
    body.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().expect("a number"))
}

#[test]
fn metrics_count_real_traffic_through_interception() {
    if !require_root("metrics_count_real_traffic_through_interception") {
        return;
    }
    let server = McpServer::start("stateful", "json");
    let scenario = Scenario::new();
    let metrics_port = support::free_port("127.0.0.1");
    let policies = scenario.dir.path().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::write(policies.join("10-test.toml"), DENY_SHELL_POLICY).unwrap();
    let config = scenario.config_with(
        &[server.port],
        &format!(
            "\n[policy]\ndir = \"{}\"\n\n[metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n\n[status]\nfile = \"{}\"\n",
            policies.display(),
            scenario.dir.path().join("status.json").display()
        ),
    );
    let agent = scenario.start_agent(&config);
    agent.wait_for("metrics served at /metrics", |_| true);

    let (status, before) = scrape(metrics_port);
    assert!(status.contains("200"), "{status}");
    let server_label = "server=\"unconfigured\",mode=\"plaintext\"";
    let connections = format!("gateway_connections_intercepted_total{{{server_label}}}");
    assert_eq!(sample(&before, &connections), 0.0, "{before}");

    // The Python SDK's client in the cgroup: lists tools, calls each (shell_exec denied),
    // and gets planted secrets back masked.
    let report = server.client_in(&scenario, "legacy");
    assert_eq!(report["shell_exec"]["isError"], true, "{report}");

    let (_, after) = scrape(metrics_port);
    assert!(sample(&after, &connections) >= 1.0, "{after}");
    let denied = "gateway_requests_total{method=\"tools/call\",decision=\"deny\"}";
    assert_eq!(sample(&after, denied), 1.0, "{after}");
    let allowed = "gateway_requests_total{method=\"tools/call\",decision=\"allow\"}";
    assert!(sample(&after, allowed) >= 1.0, "{after}");
    assert!(
        sample(
            &after,
            "gateway_requests_total{method=\"initialize\",decision=\"allow\"}"
        ) >= 1.0,
        "{after}"
    );
    let masked: f64 = after
        .lines()
        .filter(|l| l.starts_with("gateway_masked_secrets_total{"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum();
    assert!(masked >= 3.0, "three planted secrets at least: {after}");
    assert!(
        sample(&after, "gateway_upstream_latency_seconds_count") >= 2.0,
        "{after}"
    );
    // Audit is on (sync): every exchange fsynced its rows.
    assert!(
        sample(&after, "gateway_audit_fsync_seconds_count") >= 1.0,
        "{after}"
    );
    assert!(after.contains("gateway_audit_wal_lag_rows "), "{after}");
    assert!(after.contains("gateway_approvals_pending "), "{after}");

    // Anything but /metrics is 404.
    let mut conn = TcpStream::connect(("127.0.0.1", metrics_port)).unwrap();
    conn.set_read_timeout(Some(support::WAIT)).unwrap();
    conn.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
}

fn status(config: &Path) -> (i32, serde_json::Value, String) {
    let json = Command::new(support::AGENT)
        .args(["status", "--json", "--config"])
        .arg(config)
        .output()
        .expect("run gateway-agent status --json");
    let text = Command::new(support::AGENT)
        .args(["status", "--config"])
        .arg(config)
        .output()
        .expect("run gateway-agent status");
    assert_eq!(json.status.code(), text.status.code());
    let value = serde_json::from_slice(&json.stdout).unwrap_or_else(|err| {
        panic!("status --json printed no JSON ({err}): {json:?}");
    });
    (
        json.status.code().unwrap_or(-1),
        value,
        String::from_utf8_lossy(&text.stdout).into_owned(),
    )
}

#[test]
fn status_reports_agent_up_down_and_detached() {
    if !require_root("status_reports_agent_up_down_and_detached") {
        return;
    }
    let server = HttpServer::start("127.0.0.1");
    let scenario = Scenario::new();
    let status_file = scenario.dir.path().join("run/status.json");
    let config = scenario.config_with(
        &[server.port()],
        &format!("\n[status]\nfile = \"{}\"\n", status_file.display()),
    );

    // Nothing yet.
    let (code, value, text) = status(&config);
    assert_eq!(code, 4, "{value}");
    assert_eq!(value["health"], "detached");
    assert!(text.starts_with("interception detached"), "{text}");

    // Up.
    let agent = scenario.start_agent(&config);
    scenario.curl_in_cgroup(&server.url(), None).assert_ok();
    let (code, value, text) = status(&config);
    assert_eq!(code, 0, "{value}");
    assert_eq!(value["health"], "active");
    assert_eq!(value["agent"]["pid"], agent.pid(), "{value}");
    assert_eq!(value["agent"]["running"], true);
    assert_eq!(value["pins"]["attached"], true);
    assert_eq!(value["pins"]["ports"], serde_json::json!([server.port()]));
    assert_eq!(value["agent"]["on_exit"], "keep");
    assert!(value["agent"]["uptime_secs"].is_u64(), "{value}");
    assert!(value["audit_backlog"]["wal_segments"].is_u64(), "{value}");
    assert_eq!(value["cgroup"], scenario.cgroup.path.display().to_string());
    assert!(text.starts_with("interception active, agent up"), "{text}");
    assert!(text.contains(&format!("pid {}", agent.pid())), "{text}");

    // Down: killed, the pins stay and connections are refused.
    agent.stop(libc::SIGKILL);
    assert!(status_file.exists(), "a crash leaves its status file");
    let (code, value, text) = status(&config);
    assert_eq!(code, 3, "{value}");
    assert_eq!(value["health"], "agent_down");
    assert_eq!(value["agent"]["running"], false);
    assert!(
        text.starts_with("interception active, agent DOWN: connections refused"),
        "{text}"
    );
    assert_eq!(scenario.curl_in_cgroup(&server.url(), None).exit_code(), 7);

    // A clean stop removes the status file: still down, fail closed.
    let agent = scenario.start_agent(&config);
    assert_eq!(status(&config).0, 0);
    assert!(agent.stop(libc::SIGTERM).success());
    assert!(
        !status_file.exists(),
        "a clean stop removes its status file"
    );
    let (code, value, _) = status(&config);
    assert_eq!(code, 3, "{value}");
    assert_eq!(value["pins"]["agent_tgid"], 0, "released: {value}");

    // Detached.
    let detach = Command::new(support::AGENT)
        .args(["detach", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(detach.status.success(), "{detach:?}");
    let (code, value, text) = status(&config);
    assert_eq!(code, 4, "{value}");
    assert!(value["pins"].is_null(), "{value}");
    assert!(text.contains("pins:    none"), "{text}");
}

#[test]
fn metrics_count_identity_refusals_by_reason() {
    if !require_root("metrics_count_identity_refusals_by_reason") {
        return;
    }
    let scenario = Scenario::new();
    let provider = support::oidc::OidcProvider::start(&scenario.dir.path().join("keys-1.json"));
    let server = support::EchoAuthServer::start();
    let metrics_port = support::free_port("127.0.0.1");
    let config = scenario.config_with(
        &[server.port],
        &format!(
            "\n[[identity.issuer]]\nissuer = \"{issuer}\"\naudiences = [\"{audience}\"]\n\n\
             [[server]]\nname = \"echo\"\naddr = \"127.0.0.1:{port}\"\nauth = \"require\"\n\n\
             [metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n\n[status]\nfile = \"{status}\"\n",
            issuer = provider.issuer(),
            audience = server.url(),
            port = server.port,
            status = scenario.dir.path().join("status.json").display(),
        ),
    );
    let _agent = scenario.start_agent(&config);
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    let post = |authorization: Option<&str>| {
        let mut args = vec!["-o", "/dev/null", "-w", "%{http_code}"];
        args.extend([
            "-H",
            "content-type: application/json",
            "--data-binary",
            body,
        ]);
        let header = authorization.map(|a| format!("authorization: {a}"));
        if let Some(header) = &header {
            args.extend(["-H", header.as_str()]);
        }
        let url = server.url();
        args.push(&url);
        let out = scenario.curl_output(&args);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(post(None), "401");
    assert_eq!(post(Some("Bearer not-a-jwt")), "401");
    assert_eq!(post(Some("Bearer not-a-jwt")), "401");

    let (_, scraped) = scrape(metrics_port);
    let refusals = |reason: &str| {
        sample(
            &scraped,
            &format!("gateway_identity_refusals_total{{reason=\"{reason}\"}}"),
        )
    };
    assert_eq!(refusals("missing_token"), 1.0, "{scraped}");
    assert_eq!(refusals("malformed"), 2.0, "{scraped}");
    // Refused before policy: no request was counted.
    assert!(!scraped.contains("gateway_requests_total{"), "{scraped}");
    assert!(server.seen().is_empty(), "nothing reached the server");
}
