//! TLS termination end to end, loopback only, with real parts: HTTPS MCP servers (the
//! Python SDK's behind uvicorn, and a Node h2/HTTP/1.1 TLS server) with certificates from
//! a test CA (tests/tls/pki.py), real clients in the intercepted cgroup (the Python SDK
//! with `SSL_CERT_FILE`, the TypeScript SDK with `NODE_EXTRA_CA_CERTS`, curl trusting the
//! bundle `gateway-agent ca install` built in a scratch store, and tests/tls/probe.py for
//! the bad input), and the agent's own CA. Needs root and `cargo xtask setup`.

mod support;

use std::process::{Command, Stdio};

use serde_json::Value;
use support::{
    GITHUB_TOKEN, McpServer, PLANTED_ENV, SERVER_SECRETS, Scenario, audit_rows, free_port, python,
    require_root,
    tls::{
        H2_SECRET, cert_fingerprint, curl_call, h2_server, https_mcp_server, install_ca, make_pki,
        probe, python_client, start_agent, start_agent_with_policy, terminated_h2, tls_rows,
    },
    workspace,
};

fn python_sdk_case(state: &str, response: &str, mode: &str) {
    let scenario = Scenario::new();
    let pki = make_pki(scenario.dir.path());
    let bundle = install_ca(&scenario);
    let (_server, port) = https_mcp_server(&pki, state, response);
    let servers = format!(
        "\n[[server]]\nname = \"mcp-tls\"\naddr = \"127.0.0.1:{port}\"\nsni = [\"localhost\"]\ntls = \"terminate\"\nupstream_ca = [\"{}\"]\n",
        pki.join("test-ca.pem").display()
    );
    let agent = start_agent(&scenario, &[port], &servers);
    let url = format!("https://localhost:{port}/mcp");
    let case = format!("{state}/{response}/{mode}");

    let direct = python_client(vec![], &url, mode, |argv| {
        Command::new(argv[0])
            .args(&argv[1..])
            .env("SSL_CERT_FILE", pki.join("test-ca.pem"))
            .stdin(Stdio::null())
            .output()
            .expect("run client")
    });
    let proxied = python_client(
        vec!["env".into(), format!("SSL_CERT_FILE={}", bundle.display())],
        &url,
        mode,
        |argv| scenario.output_in_cgroup(argv),
    );
    assert!(
        direct.to_string().contains(GITHUB_TOKEN),
        "{case}: {direct}"
    );
    assert_eq!(
        proxied["tools"],
        serde_json::json!(["create_user", "echo", "get_config", "read_notes"]),
        "{case}: {proxied}"
    );
    assert_eq!(proxied["shell_exec"]["isError"], true, "{case}: {proxied}");
    assert!(
        proxied["shell_exec"]["text"][0]
            .as_str()
            .unwrap()
            .contains("deny-shell"),
        "{case}: {proxied}"
    );
    let seen = proxied.to_string();
    for secret in SERVER_SECRETS {
        assert!(!seen.contains(secret), "{case}: {secret} leaked: {seen}");
    }
    assert!(seen.contains("[MASKED:"), "{case}: {seen}");
    assert_eq!(proxied["echo"], direct["echo"], "{case}");
    assert_eq!(
        proxied["get_config"]["structured"]["database"]["host"],
        direct["get_config"]["structured"]["database"]["host"]
    );
    agent.wait_for("TLS terminated", |l| {
        l["sni"] == "localhost" && l["server"] == "mcp-tls"
    });
    agent.wait_for("request denied by policy", |l| l["rule"] == "deny-shell");

    assert!(agent.stop(libc::SIGTERM).success());
    let rows = audit_rows(&scenario.audit_dir());
    assert!(
        !tls_rows(&rows, "terminate", Some("localhost")).is_empty(),
        "{case}: no terminate connection row with the SNI"
    );
    assert!(
        rows.iter().any(|r| r["tool"] == "shell_exec"
            && r["decision"] == "deny"
            && r["server_name"] == "mcp-tls"),
        "{case}: no denied shell_exec row"
    );
}

#[test]
fn python_sdk_session_era_over_https() {
    if require_root("python_sdk_session_era_over_https") {
        python_sdk_case("stateful", "sse", "legacy");
    }
}

#[test]
fn python_sdk_2026_stateless_over_https() {
    if require_root("python_sdk_2026_stateless_over_https") {
        python_sdk_case("stateless", "json", "2026-07-28");
    }
}

#[test]
fn curl_h2_and_http1_by_alpn_and_bad_input_is_contained() {
    if !require_root("curl_h2_and_http1_by_alpn_and_bad_input_is_contained") {
        return;
    }
    let scenario = Scenario::new();
    // Bound whole: the agent and the server live as long as it does.
    let bed = terminated_h2(&scenario, "h2-tls", "sni = [\"localhost\"]\n");
    let (pki, bundle, log, port) = (
        bed.pki.clone(),
        bed.bundle.clone(),
        bed.log.clone(),
        bed.port,
    );
    let agent = &bed.agent;
    let url = format!("https://localhost:{port}/mcp");

    // h2 end to end: ALPN h2 to the client because the upstream chose it.
    let (code, version, body) = curl_call(&scenario, &bundle, &url, &["--http2"]);
    assert_eq!((code, version.as_str()), (200, "2"), "{body}");
    assert!(body.contains("http 2.0"), "the upstream spoke h2: {body}");
    assert!(
        !body.contains(H2_SECRET) && body.contains("[MASKED:"),
        "{body}"
    );
    // HTTP/1.1 when that is all the client offers.
    let (code, version, body) = curl_call(&scenario, &bundle, &url, &["--http1.1"]);
    assert_eq!((code, version.as_str()), (200, "1.1"), "{body}");
    assert!(
        body.contains("http 1.1") && !body.contains(H2_SECRET),
        "{body}"
    );
    // No SNI (an IP URL): the destination decides, the leaf names the IP.
    let (code, _, body) = curl_call(
        &scenario,
        &bundle,
        &format!("https://127.0.0.1:{port}/mcp"),
        &[],
    );
    assert_eq!(code, 200, "{body}");
    assert!(!body.contains(H2_SECRET), "{body}");
    agent.wait_for("TLS terminated", |l| l["sni"] == "");

    // A ClientHello in 5-byte segments is read whole; the session works.
    let split = probe(
        &scenario,
        &[
            "split",
            &port.to_string(),
            "localhost",
            bundle.to_str().unwrap(),
        ],
    );
    assert_eq!(split["status"], "HTTP/1.1 200 OK", "{split}");
    assert!(
        !split["body"].as_str().unwrap().contains(H2_SECRET),
        "{split}"
    );

    // Garbage after a record header: closed, logged, never relayed to an inspected server.
    let requests_before = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .count();
    let garbage = probe(&scenario, &["garbage", &port.to_string()]);
    assert!(
        matches!(garbage["outcome"].as_str(), Some("eof" | "reset")),
        "{garbage}"
    );
    agent.wait_for(
        "no usable ClientHello for an inspected server; resetting client",
        |l| l["reason"].as_str().unwrap_or("").contains("malformed"),
    );
    // A stalled handshake is cut at handshake_timeout_ms (1.5 s), not held open.
    let stall = probe(&scenario, &["stall", &port.to_string()]);
    assert!(
        matches!(stall["outcome"].as_str(), Some("eof" | "reset")),
        "{stall}"
    );
    assert!(stall["seconds"].as_f64().unwrap() < 10.0, "{stall}");
    agent.wait_for(
        "no usable ClientHello for an inspected server; resetting client",
        |l| {
            l["reason"]
                .as_str()
                .unwrap_or("")
                .contains("no complete ClientHello")
        },
    );
    // A client that does not trust the agent's CA fails its handshake; logged.
    let (code, _, _) = curl_call(&scenario, &pki.join("test-ca.pem"), &url, &[]);
    assert_eq!(
        code, 0,
        "a client without the agent's CA must not get through"
    );
    agent.wait_for("client TLS handshake failed", |_| true);
    assert_eq!(
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .count(),
        requests_before,
        "nothing from the bad clients reached the server"
    );
    // Renegotiation (TLS 1.2; 1.3 has none): rustls refuses it with a no_renegotiation
    // alert and the connection goes on as it was.
    let connect = format!("127.0.0.1:{port}");
    let reneg = scenario.output_in_cgroup(&[
        "sh",
        "-c",
        "(sleep 1; printf 'R\\n'; sleep 2) | timeout 20 openssl s_client -connect \"$1\" -servername localhost -tls1_2 -CAfile \"$2\" 2>&1",
        "sh",
        &connect,
        bundle.to_str().unwrap(),
    ]);
    // (s_client takes commands from stdin once connected; the pauses order them.)
    let reneg = String::from_utf8_lossy(&reneg.stdout);
    assert!(
        reneg.contains("RENEGOTIATING") && reneg.contains("no renegotiation"),
        "{reneg}"
    );
    // …and everyone else is still served.
    let (code, version, _) = curl_call(&scenario, &bundle, &url, &["--http2"]);
    assert_eq!((code, version.as_str()), (200, "2"));

    // Every terminated connection, h2 or HTTP/1.1, has its close row in the trail.
    assert!(bed.agent.stop(libc::SIGTERM).success());
    let rows = audit_rows(&scenario.audit_dir());
    let events = |event: &str| -> Vec<String> {
        tls_rows(&rows, "terminate", Some("localhost"))
            .into_iter()
            .filter(|r| {
                r["payload"]
                    .as_str()
                    .unwrap_or("")
                    .contains(&format!("\"event\":\"{event}\""))
            })
            .map(|r| r["session"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    let (opened, closed) = (events("open"), events("close"));
    assert!(opened.len() >= 3, "{opened:?}");
    for session in &opened {
        assert!(
            closed.contains(session),
            "no close row for {session}: {closed:?}"
        );
    }
}

#[test]
fn an_unconfigured_sni_passes_through_byte_for_byte() {
    if !require_root("an_unconfigured_sni_passes_through_byte_for_byte") {
        return;
    }
    let scenario = Scenario::new();
    let pki = make_pki(scenario.dir.path());
    let bundle = install_ca(&scenario);
    let log = scenario.dir.path().join("other.log");
    let (_other, other_port) = h2_server(&pki, "other", &log);
    let inspected = free_port("127.0.0.1");
    // One inspected server elsewhere; the `other` server is nobody's business.
    let servers = format!(
        "\n[[server]]\nname = \"inspected\"\naddr = \"127.0.0.1:{inspected}\"\nsni = [\"localhost\"]\ntls = \"terminate\"\n"
    );
    let agent = start_agent(&scenario, &[other_port, inspected], &servers);

    let direct = Command::new(python())
        .arg(workspace().join("tests/tls/probe.py"))
        .args(["fingerprint", &other_port.to_string(), "other.test.example"])
        .output()
        .expect("probe directly");
    let direct: Value = serde_json::from_slice(&direct.stdout).unwrap();
    let proxied = probe(
        &scenario,
        &["fingerprint", &other_port.to_string(), "other.test.example"],
    );
    assert_eq!(
        proxied["sha256"], direct["sha256"],
        "the client saw the real server's certificate"
    );

    // Not opened: the server's answer arrives unmasked, with the real certificate.
    let resolve = format!("other.test.example:{other_port}:127.0.0.1");
    let (code, _, body) = curl_call(
        &scenario,
        &pki.join("test-ca.pem"),
        &format!("https://other.test.example:{other_port}/mcp"),
        &["--resolve", &resolve],
    );
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains(H2_SECRET),
        "passthrough must not alter a byte: {body}"
    );
    // The agent's CA is not what that client saw (it would fail without test-ca).
    let (code, _, _) = curl_call(
        &scenario,
        &bundle,
        &format!("https://other.test.example:{other_port}/mcp"),
        &["--resolve", &resolve],
    );
    assert_eq!(code, 0);
    agent.wait_for("TLS passthrough (not inspected)", |l| {
        l["sni"] == "other.test.example"
    });

    assert!(agent.stop(libc::SIGTERM).success());
    // Fail closed, TLS or not: with the agent down the connect is refused (curl exit 7).
    let down = scenario.curl_output(&[
        "--cacert",
        pki.join("test-ca.pem").to_str().unwrap(),
        "--resolve",
        &resolve,
        &format!("https://other.test.example:{other_port}/mcp"),
    ]);
    assert_eq!(
        down.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    let rows = audit_rows(&scenario.audit_dir());
    let opened = tls_rows(&rows, "passthrough", Some("other.test.example"));
    assert!(
        opened
            .iter()
            .any(|r| r["comm"] == "python" || r["comm"] == "python3" || r["comm"] == "curl"),
        "passthrough connection rows name the SNI and the process: {opened:?}"
    );
    assert!(opened.iter().all(|r| r["transport"] == "tls"), "{opened:?}");
}

/// The TypeScript SDK (Node trusts the agent's CA through `NODE_EXTRA_CA_CERTS`, as
/// `ca install` says) over HTTPS to the agent, which fronts the plain-HTTP
/// server-everything (`upstream_tls = false`: allowed because it is configured).
#[test]
fn typescript_sdk_over_https_to_a_plain_http_server() {
    if !require_root("typescript_sdk_over_https_to_a_plain_http_server") {
        return;
    }
    let policy = "[[rule]]\nid = \"no-remote-fetch\"\naction = \"deny\"\nreason = \"no remote fetches\"\n[rule.match]\ntool = [\"gzip-file-as-resource\"]\n";
    let server = McpServer::everything("streamableHttp");
    let scenario = Scenario::new();
    install_ca(&scenario);
    let ca_cert = scenario.dir.path().join("store/gateway-agent-ca.crt");
    let servers = format!(
        "\n[[server]]\nname = \"everything\"\naddr = \"127.0.0.1:{}\"\nsni = [\"localhost\"]\ntls = \"terminate\"\nupstream_tls = false\n",
        server.port
    );
    let agent = start_agent_with_policy(&scenario, &[server.port], &servers, policy);

    let direct = server.client_direct("streamable");
    let client = workspace().join("tests/mcp/node/client.mjs");
    let url = format!("https://localhost:{}/mcp", server.port);
    let extra = format!("NODE_EXTRA_CA_CERTS={}", ca_cert.display());
    let out = scenario.output_in_cgroup(&[
        "env",
        &extra,
        "node",
        client.to_str().unwrap(),
        &url,
        "streamable",
    ]);
    assert!(
        out.status.success(),
        "TypeScript client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let proxied: Value = serde_json::from_slice(&out.stdout).expect("client prints JSON");
    let seen = proxied.to_string();
    for (name, secret) in PLANTED_ENV {
        assert!(
            direct.to_string().contains(secret),
            "control run lacks {name}"
        );
        assert!(!seen.contains(secret), "{name} leaked: {seen}");
    }
    assert_eq!(proxied["denied"]["isError"], true, "{proxied}");
    assert_eq!(proxied["echo"], direct["echo"]);
    assert_eq!(proxied["sum"], direct["sum"]);
    agent.wait_for("TLS terminated", |l| l["server"] == "everything");
}

/// A server fronted with its own configured certificate (`cert`/`key`), rotated on disk
/// and re-read on SIGHUP without a restart.
#[test]
fn a_configured_certificate_is_presented_and_rotated_on_sighup() {
    if !require_root("a_configured_certificate_is_presented_and_rotated_on_sighup") {
        return;
    }
    let scenario = Scenario::new();
    let pki = make_pki(scenario.dir.path());
    let log = scenario.dir.path().join("fronted.log");
    let (_server, port) = h2_server(&pki, "good", &log);
    let (cert, key) = (
        scenario.dir.path().join("front.pem"),
        scenario.dir.path().join("front.key"),
    );
    std::fs::copy(pki.join("good.pem"), &cert).unwrap();
    std::fs::copy(pki.join("good.key"), &key).unwrap();
    let servers = format!(
        "\n[[server]]\nname = \"fronted\"\naddr = \"127.0.0.1:{port}\"\nsni = [\"localhost\"]\ntls = \"terminate\"\n\
         cert = \"{}\"\nkey = \"{}\"\nupstream_ca = [\"{}\"]\n",
        cert.display(),
        key.display(),
        pki.join("test-ca.pem").display()
    );
    let agent = start_agent(&scenario, &[port], &servers);
    let fingerprint = |stem: &str| cert_fingerprint(&pki.join(format!("{stem}.pem")));
    // The client sees the configured certificate (issued by the test CA, not the agent's).
    let seen = probe(&scenario, &["fingerprint", &port.to_string(), "localhost"]);
    assert_eq!(seen["sha256"], fingerprint("good").as_str());
    let (code, _, body) = curl_call(
        &scenario,
        &pki.join("test-ca.pem"),
        &format!("https://localhost:{port}/mcp"),
        &[],
    );
    assert_eq!(code, 200, "{body}");
    assert!(!body.contains(H2_SECRET), "terminated and masked: {body}");

    std::fs::copy(pki.join("other.pem"), &cert).unwrap();
    std::fs::copy(pki.join("other.key"), &key).unwrap();
    // SAFETY: plain kill(2) on the agent's PID, a child this test started.
    unsafe { libc::kill(agent.pid() as i32, libc::SIGHUP) };
    agent.wait_for("SIGHUP: TLS certificates re-read", |_| true);
    let seen = probe(&scenario, &["fingerprint", &port.to_string(), "localhost"]);
    assert_eq!(seen["sha256"], fingerprint("other").as_str());
}
