//! Responses whose framing is not the ordinary one, through the agent: a chunked
//! `application/json` stream that never ends (2026-07-28 `subscriptions/listen`), JSON-RPC
//! answered as `text/plain` or with no Content-Type, SSE with lone-CR line endings, and a
//! body that is not MCP at all. Each must reach the client (message by message when it
//! streams), masked, with one audit row per message. The upstreams are small servers
//! written here, since no SDK server answers this way on demand. Needs root.

mod support;

use std::{
    io::{Read as _, Write as _},
    net::TcpListener,
    process::Child,
    sync::mpsc,
    thread::JoinHandle,
    time::Instant,
};

use serde_json::Value;
use support::{Scenario, WAIT, require_root};

const SECRET: &str = "ghp_Q1w2E3r4T5y6U7i8O9p0A1s2D3f4G5h6J7k8";
const MASKED: &str = "[MASKED:github_pat]";

/// Answers one request with `head` then `chunks` (written one by one, flushed), then
/// holds the connection open until `release` fires (or WAIT passes): a stream that has
/// not ended while the client reads it. Then writes `after` and closes.
fn held_stream_server(
    head: &'static str,
    chunks: Vec<Vec<u8>>,
    after: Vec<u8>,
) -> (u16, mpsc::Sender<()>, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (release, released) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        support::read_request_head(&mut conn).expect("a request head");
        conn.set_write_timeout(Some(WAIT)).unwrap();
        conn.write_all(head.as_bytes()).unwrap();
        for chunk in chunks {
            conn.write_all(&chunk).unwrap();
            conn.flush().unwrap();
        }
        let _ = released.recv_timeout(WAIT);
        let _ = conn.write_all(&after);
    });
    (port, release, handle)
}

/// One HTTP/1.1 chunk.
fn chunk(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

/// Answers the i-th connection with `responses[i]` (whole, then closes).
fn canned_server(responses: Vec<Vec<u8>>) -> (u16, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        for response in responses {
            let (mut conn, _) = listener.accept().unwrap();
            // The body drained too, so closing does not reset the connection.
            support::read_request(&mut conn).expect("a request head");
            conn.write_all(&response).unwrap();
        }
    });
    (port, handle)
}

/// curl in the cgroup, its stdout read as it arrives.
struct Streaming {
    child: Child,
    chunks: mpsc::Receiver<Vec<u8>>,
    seen: Vec<u8>,
}

impl Streaming {
    fn start(scenario: &Scenario, args: &[&str]) -> Self {
        let mut argv = vec!["curl", "-sS", "-N", "--max-time", "20", "--noproxy", "*"];
        argv.extend_from_slice(args);
        let mut child = scenario.spawn_in_cgroup(&argv);
        let mut stdout = child.stdout.take().unwrap();
        let (tx, chunks) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = stdout.read(&mut buf) {
                if tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            chunks,
            seen: Vec::new(),
        }
    }

    /// Waits (bounded) until what the client received satisfies `done`.
    #[track_caller]
    fn wait_until(&mut self, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let text = String::from_utf8_lossy(&self.seen).into_owned();
            if done(&text) {
                return text;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.chunks.recv_timeout(left) {
                Ok(chunk) => self.seen.extend(chunk),
                Err(_) => panic!("the client did not receive it in time; it got: {text:?}"),
            }
        }
    }
}

impl Streaming {
    /// Waits (bounded by curl's --max-time) for the client to exit; returns its status and
    /// everything it printed.
    fn finish(mut self) -> std::process::Output {
        let status = self.child.wait().unwrap();
        let mut stdout = std::mem::take(&mut self.seen);
        stdout.extend(self.chunks.iter().flatten());
        std::process::Output {
            status,
            stdout,
            stderr: Vec::new(),
        }
    }
}

impl Drop for Streaming {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn server_rows(rows: &[Value]) -> Vec<&Value> {
    rows.iter()
        .filter(|r| r["direction"] == "server_to_client")
        .collect()
}

fn assert_no_secret(rows: &[Value]) {
    for row in rows {
        assert!(
            !row.to_string().contains(SECRET),
            "unmasked in the trail: {row}"
        );
    }
}

#[test]
fn a_never_ending_json_stream_reaches_the_client_message_by_message() {
    if !require_root("a_never_ending_json_stream_reaches_the_client_message_by_message") {
        return;
    }
    let ack = r#"{"jsonrpc":"2.0","id":1,"result":{"resultType":"complete"}}"#;
    let first = format!(
        r#"{{"jsonrpc":"2.0","method":"notifications/message","params":{{"level":"info","data":"deploy key {SECRET}"}}}}"#
    );
    let second = r#"{"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"file:///a"}}"#;
    // The secret notification arrives in two chunks split inside the secret.
    let cut = first.find("ghp_").unwrap() + 10;
    let chunks = vec![
        chunk(format!("{ack}\n").as_bytes()),
        chunk(&first.as_bytes()[..cut]),
        chunk(format!("{}\n", &first[cut..]).as_bytes()),
        chunk(format!("{second}\n").as_bytes()),
    ];
    let (port, release, server) = held_stream_server(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
        chunks,
        Vec::new(),
    );
    let scenario = Scenario::new();
    let agent = scenario.start_agent(&scenario.config(&[port]));

    let url = format!("http://127.0.0.1:{port}/mcp");
    let mut client = Streaming::start(
        &scenario,
        &[
            "-H",
            "content-type: application/json",
            "-H",
            "accept: application/json, text/event-stream",
            "-H",
            "mcp-protocol-version: 2026-07-28",
            "--data-binary",
            r#"{"jsonrpc":"2.0","id":1,"method":"subscriptions/listen","params":{}}"#,
            &url,
        ],
    );
    // The server holds the stream open until released: everything here arrived while it
    // was still open.
    let text = client.wait_until(|text| text.lines().count() >= 3);
    release.send(()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // Unchanged messages arrive byte for byte; the secret is masked in place.
    assert_eq!(lines[0], ack);
    assert_eq!(lines[2], second);
    let masked: Value = serde_json::from_str(lines[1]).unwrap();
    assert_eq!(masked["params"]["data"], format!("deploy key {MASKED}"));
    drop(client);
    server.join().unwrap();
    assert!(agent.stop(libc::SIGTERM).success());

    let rows = support::audit_rows(&scenario.audit_dir());
    assert_no_secret(&rows);
    let delivered = server_rows(&rows);
    let kinds: Vec<(&str, &str)> = delivered
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap(),
                r["method"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("response", "subscriptions/listen"),
            ("notification", "notifications/message"),
            ("notification", "notifications/resources/updated"),
        ],
        "{rows:#?}"
    );
    assert_eq!(delivered[1]["masked_count"], 1, "{rows:#?}");
}

/// An HTTP/1.1 response with a Content-Length, `content_type` (none if empty) and `body`.
fn sized(content_type: &str, body: &str) -> Vec<u8> {
    let content_type = if content_type.is_empty() {
        String::new()
    } else {
        format!("content-type: {content_type}\r\n")
    };
    format!(
        "HTTP/1.1 200 OK\r\n{content_type}content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[test]
fn json_rpc_and_sse_under_any_content_type_are_masked_and_audited_and_html_is_recorded() {
    if !require_root(
        "json_rpc_and_sse_under_any_content_type_are_masked_and_audited_and_html_is_recorded",
    ) {
        return;
    }
    let answer = |id: u32| {
        format!(
            r#"{{"jsonrpc":"2.0","id":{id},"result":{{"content":[{{"type":"text","text":"token {SECRET}"}}]}}}}"#
        )
    };
    let html = "<!doctype html><html><body>502 Bad Gateway</body></html>";
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gzip.write_all(format!("{}\n", answer(4)).as_bytes())
        .unwrap();
    let gzip = gzip.finish().unwrap();
    let mut chunked_gzip = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-encoding: gzip\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    chunked_gzip.extend(chunk(&gzip));
    chunked_gzip.extend_from_slice(b"0\r\n\r\n");
    let (port, server) = canned_server(vec![
        sized("text/plain; charset=utf-8", &answer(1)),
        sized("", &answer(2)),
        sized("text/html", html),
        chunked_gzip,
        sized(
            "text/plain",
            &format!("event: message\ndata: {}\n\n", answer(5)),
        ),
    ]);
    let scenario = Scenario::new();
    let agent = scenario.start_agent(&scenario.config(&[port]));

    let url = format!("http://127.0.0.1:{port}/mcp");
    let call = |id: u32| {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"read","arguments":{{}}}}}}"#
        );
        let out = scenario.curl_output(&[
            "--compressed",
            "-H",
            "content-type: application/json",
            "-H",
            "accept: application/json, text/event-stream",
            "--data-binary",
            &body,
            &url,
        ]);
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    // A rewritten message is re-serialised: compare values, not bytes.
    let masked =
        |id: u32| -> Value { serde_json::from_str(&answer(id).replace(SECRET, MASKED)).unwrap() };
    for id in [1, 2] {
        let body = call(id);
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap(),
            masked(id),
            "answer {id}"
        );
    }
    assert_eq!(call(3), html, "not MCP: forwarded untouched");
    let streamed = call(4);
    assert!(streamed.ends_with('\n'), "{streamed:?}");
    assert_eq!(serde_json::from_str::<Value>(&streamed).unwrap(), masked(4));
    // SSE framing under another type is filtered as SSE.
    let event = call(5);
    let data = event
        .strip_prefix("event: message\ndata: ")
        .and_then(|rest| rest.strip_suffix("\n\n"))
        .unwrap_or_else(|| panic!("not one SSE event: {event:?}"));
    assert_eq!(serde_json::from_str::<Value>(data).unwrap(), masked(5));
    server.join().unwrap();
    assert!(agent.stop(libc::SIGTERM).success());

    let rows = support::audit_rows(&scenario.audit_dir());
    assert_no_secret(&rows);
    let delivered = server_rows(&rows);
    assert_eq!(delivered.len(), 5, "{rows:#?}");
    for (row, id) in delivered.iter().zip(["1", "2", "", "4", "5"]) {
        assert_eq!(row["kind"], "response", "{row}");
        assert_eq!(row["method"], "tools/call", "{row}");
        if id.is_empty() {
            let payload: Value = serde_json::from_str(row["payload"].as_str().unwrap()).unwrap();
            assert_eq!(payload["not_mcp"]["content_type"], "text/html", "{row}");
        } else {
            assert_eq!(row["request_id"], id, "{row}");
            assert_eq!(row["masked_count"], 1, "{row}");
        }
    }
}

#[test]
fn sse_with_lone_cr_line_endings_is_masked_and_audited() {
    if !require_root("sse_with_lone_cr_line_endings_is_masked_and_audited") {
        return;
    }
    let answer = format!(
        r#"{{"jsonrpc":"2.0","id":1,"result":{{"content":[{{"type":"text","text":"token {SECRET}"}}]}}}}"#
    );
    let events = format!("id: 1\revent: message\rdata: {answer}\r\r");
    let (port, release, server) = held_stream_server(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n",
        vec![chunk(events.as_bytes())],
        Vec::new(),
    );
    let scenario = Scenario::new();
    let agent = scenario.start_agent(&scenario.config(&[port]));

    let url = format!("http://127.0.0.1:{port}/mcp");
    let mut client = Streaming::start(
        &scenario,
        &[
            "-H",
            "content-type: application/json",
            "-H",
            "accept: application/json, text/event-stream",
            "--data-binary",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read","arguments":{}}}"#,
            &url,
        ],
    );
    // Arrives while the server still holds the stream open, masked.
    let text = client.wait_until(|text| text.contains(MASKED));
    release.send(()).unwrap();
    assert!(!text.contains(SECRET), "{text:?}");
    drop(client);
    server.join().unwrap();
    assert!(agent.stop(libc::SIGTERM).success());

    let rows = support::audit_rows(&scenario.audit_dir());
    assert_no_secret(&rows);
    let delivered = server_rows(&rows);
    assert_eq!(delivered.len(), 1, "{rows:#?}");
    assert_eq!(delivered[0]["kind"], "response");
    assert_eq!(delivered[0]["method"], "tools/call");
    assert_eq!(delivered[0]["request_id"], "1");
    assert_eq!(delivered[0]["masked_count"], 1);
}

#[test]
fn a_json_stream_that_turns_to_garbage_is_cut_after_what_was_inspected() {
    if !require_root("a_json_stream_that_turns_to_garbage_is_cut_after_what_was_inspected") {
        return;
    }
    let fine = r#"{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"fine"}}"#;
    // A message, then (once the client has it) what is not JSON, and would leak if relayed.
    let mut garbage = chunk(format!("<html>{SECRET}</html>\n").as_bytes());
    garbage.extend_from_slice(b"0\r\n\r\n");
    let (port, release, server) = held_stream_server(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
        vec![chunk(format!("{fine}\n").as_bytes())],
        garbage,
    );
    let scenario = Scenario::new();
    let agent = scenario.start_agent(&scenario.config(&[port]));

    let url = format!("http://127.0.0.1:{port}/mcp");
    let mut client = Streaming::start(
        &scenario,
        &[
            "-H",
            "content-type: application/json",
            "--data-binary",
            r#"{"jsonrpc":"2.0","id":1,"method":"subscriptions/listen","params":{}}"#,
            &url,
        ],
    );
    client.wait_until(|text| text.contains('\n'));
    release.send(()).unwrap();
    server.join().unwrap();
    let out = client.finish();
    // 18 (partial body) or 56 (recv failure): a broken transfer, not a clean end.
    let code = out.status.code().unwrap_or(-1);
    assert!(matches!(code, 18 | 56 | 92), "curl exit {code}: {out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{fine}\n"));
    agent.wait_for("JSON stream cut", |l| {
        l["problem"]
            .as_str()
            .unwrap_or("")
            .contains("unexpected byte 0x3c")
    });
}
