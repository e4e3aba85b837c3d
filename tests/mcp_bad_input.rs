//! Bad input through the MCP pipeline: every case gets a clear answer (or a bounded cut),
//! nothing is forwarded that policy could not see, and the agent keeps serving.

mod support;

use std::io::{Read as _, Write as _};

use serde_json::Value;
use support::{McpServer, Scenario, require_root};

/// curl in the scenario's cgroup POSTing `body_args` as JSON; returns (status, body).
fn post(scenario: &Scenario, url: &str, body_args: &[&str]) -> (u16, String) {
    post_as(scenario, url, "application/json", body_args)
}

/// Like [`post`], declaring `content_type`.
fn post_as(
    scenario: &Scenario,
    url: &str,
    content_type: &str,
    body_args: &[&str],
) -> (u16, String) {
    let content_type = format!("content-type: {content_type}");
    let mut argv = vec![
        "-o",
        "-",
        "-w",
        "\n%{http_code}",
        "-H",
        &content_type,
        "-H",
        "accept: application/json, text/event-stream",
    ];
    argv.extend_from_slice(body_args);
    argv.push(url);
    let out = scenario.curl_output(&argv);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (status.trim().parse().unwrap_or(0), body.to_owned())
}

/// The code of a JSON-RPC error the *gateway* produced (the server's own errors for the
/// same input would look alike, so the message must say it came from the gateway).
fn rpc_error_code(body: &str) -> i64 {
    let value: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"));
    let message = value["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("gateway"),
        "not answered by the gateway: {body}"
    );
    value["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("no JSON-RPC error: {body}"))
}

#[test]
fn malformed_requests_are_refused_with_json_rpc_errors() {
    if !require_root("malformed_requests_are_refused_with_json_rpc_errors") {
        return;
    }
    let server = McpServer::start("stateless", "json");
    let scenario = Scenario::new();
    let agent = scenario.start_agent(&scenario.config(&[server.port]));
    let url = server.url();

    let (status, body) = post(&scenario, &url, &["--data-binary", "{\"jsonrpc\":"]);
    assert_eq!((status, rpc_error_code(&body)), (400, -32700), "{body}");

    let invalid_utf8 = scenario.dir.path().join("invalid.bin");
    std::fs::write(
        &invalid_utf8,
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xff\xfe\"}",
    )
    .unwrap();
    let at_file = format!("@{}", invalid_utf8.display());
    let (status, body) = post(&scenario, &url, &["--data-binary", &at_file]);
    assert_eq!((status, rpc_error_code(&body)), (400, -32700), "{body}");

    // Valid JSON that is not JSON-RPC (and so not judged by policy) is not forwarded.
    let (status, body) = post(
        &scenario,
        &url,
        &["--data-binary", "{\"method\":\"tools/call\",\"id\":1}"],
    );
    assert_eq!((status, rpc_error_code(&body)), (400, -32600), "{body}");

    // A header that disagrees with the body (a routing/policy confusion attempt).
    let (status, body) = post(
        &scenario,
        &url,
        &[
            "-H",
            "mcp-method: tools/list",
            "--data-binary",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"shell_exec","arguments":{}}}"#,
        ],
    );
    // -32020 is the 2026-07-28 HeaderMismatch code, the one the SDK servers send.
    assert_eq!((status, rpc_error_code(&body)), (400, -32020), "{body}");
    // The tool named in Mcp-Name must be the one called.
    let (status, body) = post(
        &scenario,
        &url,
        &[
            "-H",
            "mcp-method: tools/call",
            "-H",
            "mcp-name: echo",
            "--data-binary",
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"shell_exec","arguments":{}}}"#,
        ],
    );
    assert_eq!((status, rpc_error_code(&body)), (400, -32020), "{body}");

    // A repeated key: policy would judge the last `name`, a first-wins server run the
    // first. Refused as ambiguous, not judged one way and run another.
    let (status, body) = post(
        &scenario,
        &url,
        &[
            "--data-binary",
            r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"shell_exec","name":"echo","arguments":{}}}"#,
        ],
    );
    assert_eq!((status, rpc_error_code(&body)), (400, -32600), "{body}");
    assert!(body.contains("repeated"), "{body}");

    // 100 MB: refused at the 4 MiB limit, without buffering the rest.
    let big = scenario.dir.path().join("big.json");
    let mut file = std::fs::File::create(&big).unwrap();
    let chunk = vec![b' '; 1 << 20];
    for _ in 0..100 {
        file.write_all(&chunk).unwrap();
    }
    drop(file);
    let at_big = format!("@{}", big.display());
    let (status, body) = post(&scenario, &url, &["--data-binary", &at_big]);
    assert_eq!((status, rpc_error_code(&body)), (413, -32011), "{body}");

    // And the agent still serves a real client.
    let report = server.client_in(&scenario, "2026-07-28");
    assert_eq!(report["echo"][0], "plain text, nothing secret");
    agent.wait_for("request body over the limit; refused", |_| true);
}

/// Answers one request with an SSE stream whose first line never ends.
fn endless_sse_server() -> (u16, std::thread::JoinHandle<u64>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(support::WAIT)).unwrap();
        conn.set_write_timeout(Some(support::WAIT)).unwrap();
        let mut request = [0u8; 4096];
        let _ = conn.read(&mut request);
        let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\ndata: ");
        let chunk = [b'x'; 64 * 1024];
        let mut sent = 0u64;
        // Bounded: 256 MiB at most, or until the agent cuts the stream.
        while sent < 256 << 20 && conn.write_all(&chunk).is_ok() {
            sent += chunk.len() as u64;
        }
        sent
    });
    (port, handle)
}

#[test]
fn a_never_ending_sse_line_is_cut_and_the_agent_keeps_serving() {
    if !require_root("a_never_ending_sse_line_is_cut_and_the_agent_keeps_serving") {
        return;
    }
    let (sse_port, sse_server) = endless_sse_server();
    let mcp = McpServer::start("stateless", "json");
    let scenario = Scenario::new();
    let config = scenario.config_with(
        &[sse_port, mcp.port],
        "\n[http]\nmax_sse_event_bytes = 1048576\n",
    );
    let agent = scenario.start_agent(&config);

    let url = format!("http://127.0.0.1:{sse_port}/mcp");
    let out = scenario.curl_output(&["-o", "/dev/null", &url]);
    let code = out.status.code().unwrap_or(-1);
    // 18 (partial body) or 56 (recv failure): cut, not timed out (28), not a success.
    assert!(
        matches!(code, 18 | 56 | 92),
        "curl exit {code}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    agent.wait_for("SSE stream cut", |_| true);
    let sent = sse_server.join().unwrap();
    assert!(sent < 256 << 20, "the agent read the whole endless stream");

    let report = mcp.client_in(&scenario, "2026-07-28");
    assert_eq!(report["echo"][0], "plain text, nothing secret");
}

#[test]
fn json_rpc_under_another_content_type_is_still_judged() {
    if !require_root("json_rpc_under_another_content_type_is_still_judged") {
        return;
    }
    let server = McpServer::start("stateless", "json");
    let scenario = Scenario::new();
    let policy = "[[rule]]\nid = \"deny-shell\"\naction = \"deny\"\nreason = \"no shell\"\n[rule.match]\ntool = [\"shell_*\"]\n";
    let _agent = scenario.start_agent(&scenario.config_with_policy(&[server.port], policy));

    let (status, body) = post_as(
        &scenario,
        &server.url(),
        "text/plain",
        &[
            "--data-binary",
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"shell_exec","arguments":{"command":"id"}}}"#,
        ],
    );
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["id"], 7);
    assert_eq!(answer["result"]["isError"], true, "{body}");
    assert!(
        answer["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("deny-shell")
    );
}

#[test]
fn head_and_error_answers_keep_their_headers_and_bodies() {
    if !require_root("head_and_error_answers_keep_their_headers_and_bodies") {
        return;
    }
    let server = McpServer::start("stateless", "json");
    let scenario = Scenario::new();
    let _agent = scenario.start_agent(&scenario.config(&[server.port]));
    let url = server.url();

    // HEAD: the Content-Length of the body a GET would get, not of the empty HEAD body.
    let direct = std::process::Command::new("curl")
        .args(["-sS", "-I", "--max-time", "20", "--noproxy", "*", &url])
        .output()
        .unwrap();
    let proxied = scenario.curl_output(&["-I", &url]);
    let length = |out: &std::process::Output| {
        String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(|v| v.trim().to_owned())
        })
    };
    assert!(length(&direct).is_some_and(|l| l != "0"), "{direct:?}");
    assert_eq!(length(&proxied), length(&direct));
    // A 405 body (dual-era clients read it) comes through unchanged.
    let get = |out: std::process::Output| String::from_utf8_lossy(&out.stdout).into_owned();
    let direct_body = get(std::process::Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "20",
            "--noproxy",
            "*",
            "-X",
            "DELETE",
            "-w",
            "%{http_code}",
            &url,
        ])
        .output()
        .unwrap());
    let proxied_body = get(scenario.curl_output(&["-X", "DELETE", "-w", "%{http_code}", &url]));
    assert!(direct_body.ends_with("405"), "{direct_body}");
    assert_eq!(proxied_body, direct_body);
}
