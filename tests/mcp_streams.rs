//! Transport details through the agent that the SDK tests do not reach: SSE resumption
//! with `Last-Event-ID` (the header reaches the server, replayed events are masked like
//! live ones, ids survive) and MCP over h2 with prior knowledge. The upstreams are small
//! servers written here (no real MCP server here speaks h2c or replays on demand). Needs
//! root.

mod support;

use std::{convert::Infallible, io::Write as _, net::TcpListener};

use support::{EchoAuthServer, Scenario, require_root};

const SECRET: &str = "ghp_Q1w2E3r4T5y6U7i8O9p0A1s2D3f4G5h6J7k8";

/// Answers one GET with an SSE replay of the events after the request's Last-Event-ID,
/// gzip-compressed if `gzip` (a server that ignores the gateway's Accept-Encoding).
fn resumable_sse_server(gzip: bool) -> (u16, std::thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let request = support::read_request_head(&mut conn).expect("a request head");
        let last_id: u32 = request
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("last-event-id: ")
                    .map(str::to_owned)
            })
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let mut body = String::from(": replaying\n\n");
        for id in last_id + 1..=last_id + 2 {
            body.push_str(&format!(
                "id: {id}\nevent: message\ndata: {{\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{{\"level\":\"info\",\"data\":\"replayed {id} with {SECRET}\"}}}}\n\n"
            ));
        }
        let (body, encoding) = if gzip {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(body.as_bytes()).unwrap();
            (encoder.finish().unwrap(), "content-encoding: gzip\r\n")
        } else {
            (body.into_bytes(), "")
        };
        let _ = write!(
            conn,
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n{encoding}content-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        let _ = conn.write_all(&body);
        request
    });
    (port, handle)
}

fn resume_through_agent(gzip: bool) {
    let (port, server) = resumable_sse_server(gzip);
    let scenario = Scenario::new();
    let _agent = scenario.start_agent(&scenario.config(&[port]));

    let url = format!("http://127.0.0.1:{port}/mcp");
    let out = scenario.curl_output(&[
        "-N",
        "-D",
        "/dev/stderr",
        "-H",
        "accept: text/event-stream",
        "-H",
        "last-event-id: 41",
        "-H",
        "mcp-session-id: s-1",
        &url,
    ]);
    assert!(out.status.success(), "{out:?}");
    let headers = String::from_utf8_lossy(&out.stderr).to_ascii_lowercase();
    assert!(
        !headers.contains("content-encoding"),
        "forwarded decoded: {headers}"
    );
    let stream = String::from_utf8_lossy(&out.stdout);
    let request = server.join().unwrap();
    assert!(
        request.to_ascii_lowercase().contains("last-event-id: 41"),
        "{request}"
    );
    assert!(
        request.to_ascii_lowercase().contains("mcp-session-id: s-1"),
        "{request}"
    );
    assert!(!stream.contains(SECRET), "{stream}");
    assert!(
        stream.starts_with(": replaying\n\n"),
        "comments survive: {stream}"
    );
    for id in [42, 43] {
        assert!(
            stream.contains(&format!("id: {id}\nevent: message\n")),
            "{stream}"
        );
        assert!(
            stream.contains(&format!("replayed {id} with [MASKED:github_pat]")),
            "{stream}"
        );
    }
}

#[test]
fn resumed_sse_streams_pass_last_event_id_and_replays_are_masked() {
    if require_root("resumed_sse_streams_pass_last_event_id_and_replays_are_masked") {
        resume_through_agent(false);
    }
}

#[test]
fn a_gzip_sse_stream_is_decoded_and_masked() {
    if require_root("a_gzip_sse_stream_is_decoded_and_masked") {
        resume_through_agent(true);
    }
}

/// An h2c (prior knowledge) server answering every POST with a JSON-RPC result that
/// carries a secret. Runs on its own runtime thread; ends when the test process does.
fn h2c_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(|request: hyper::Request<hyper::body::Incoming>| async move {
                        let version = format!("{:?}", request.version());
                        let body = format!(
                            "{{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{{\"content\":[{{\"type\":\"text\",\"text\":\"{version} token {SECRET}\"}}]}}}}"
                        );
                        let response = hyper::Response::builder()
                            .header("content-type", "application/json")
                            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
                            .unwrap();
                        Ok::<_, Infallible>(response)
                    });
                    let _ = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    port
}

#[test]
fn mcp_over_h2_prior_knowledge_is_inspected() {
    if !require_root("mcp_over_h2_prior_knowledge_is_inspected") {
        return;
    }
    let port = h2c_server();
    let scenario = Scenario::new();
    let agent = scenario.start_agent(&scenario.config(&[port]));

    let url = format!("http://127.0.0.1:{port}/mcp");
    let out = scenario.curl_output(&[
        "--http2-prior-knowledge",
        "-w",
        "\n%{http_version}",
        "-H",
        "content-type: application/json",
        "--data-binary",
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}}"#,
        &url,
    ]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let (body, version) = text.rsplit_once('\n').unwrap();
    assert_eq!(version, "2", "client side was not h2: {text}");
    // The upstream saw h2 too, and the secret it sent was masked.
    assert!(
        body.contains("HTTP/2.0 token [MASKED:github_pat]"),
        "{body}"
    );
    assert!(!body.contains(SECRET));
    agent.wait_for("masked secrets in response", |_| true);
}

#[test]
fn a_held_credential_replaces_the_callers_token_and_never_reaches_the_caller() {
    if !require_root("a_held_credential_replaces_the_callers_token_and_never_reaches_the_caller") {
        return;
    }
    let server = EchoAuthServer::start();
    let port = server.port;
    let scenario = Scenario::new();
    let token_file = scenario.dir.path().join("upstream.token");
    std::fs::write(&token_file, "upstream-s3cret-value-77\n").unwrap();
    let config = scenario.config_with(
        &[port],
        &format!(
            "\n[[server]]\nname = \"echo\"\naddr = \"127.0.0.1:{port}\"\n[server.credential]\nscheme = \"Bearer\"\nfile = \"{}\"\n",
            token_file.display()
        ),
    );
    let agent = scenario.start_agent(&config);

    let call = || {
        let out = scenario.curl_output(&[
            "-H", "content-type: application/json",
            "-H", "authorization: Bearer caller-token-abc",
            "--data-binary", r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}"#,
            &server.url(),
        ]);
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let body = call();
    assert_eq!(server.seen(), ["Bearer upstream-s3cret-value-77"]);
    assert!(!body.contains("upstream-s3cret-value-77"), "{body}");
    assert!(
        body.contains("you sent Bearer [MASKED:upstream_credential]"),
        "{body}"
    );

    // A rotated secret file takes effect on SIGHUP, for the very next request.
    std::fs::write(&token_file, "rotated-upstream-value-88\n").unwrap();
    // SAFETY: plain kill(2) on the agent's PID, which the test owns.
    unsafe { libc::kill(agent.pid() as i32, libc::SIGHUP) };
    agent.wait_for("SIGHUP: credentials re-read", |l| l["credentials"] == 1);
    let body = call();
    assert_eq!(
        server.seen(),
        [
            "Bearer upstream-s3cret-value-77",
            "Bearer rotated-upstream-value-88"
        ]
    );
    assert!(!body.contains("rotated-upstream-value-88"), "{body}");
}
