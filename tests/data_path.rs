//! The data-path threads under a large answer: filtering it must not hold up the other
//! connections of its thread. Real eBPF interception, the real agent with one data-path
//! thread (so both clients share it), curl as the clients, and an upstream written here
//! that answers one large `tools/call` result, then a small one. Needs root.

mod support;

use std::{io::Write as _, net::TcpListener, sync::mpsc, thread::JoinHandle};

use serde_json::{Value, json};
use support::{Scenario, WAIT, require_root};

const SECRET: &str = "ghp_Q1w2E3r4T5y6U7i8O9p0A1s2D3f4G5h6J7k8";
const MASKED: &str = "[MASKED:github_pat]";
const CALL: &str =
    r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"report","arguments":{}}}"#;
const SMALL: &str = "the small answer";

/// A `tools/call` result with about `size` bytes of prose, a token at its end.
fn large_result(size: usize) -> String {
    let line = "the deploy pipeline finished every step and the report lists each result\n";
    let mut text = line.repeat(size / line.len() + 1);
    text.push_str("push with ");
    text.push_str(SECRET);
    json!({"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": text}]}})
        .to_string()
}

fn small_result() -> String {
    json!({"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": SMALL}]}})
        .to_string()
}

/// An HTTP/1.1 response carrying `message` as JSON (`sse`: as one SSE event).
fn response(message: &str, sse: bool) -> Vec<u8> {
    let (content_type, body) = if sse {
        (
            "text/event-stream",
            format!("event: message\ndata: {message}\n\n"),
        )
    } else {
        ("application/json", message.to_owned())
    };
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

/// Answers its first connection with `large` and says so once written; its second with
/// `small`.
fn upstream(large: Vec<u8>, small: Vec<u8>) -> (u16, mpsc::Receiver<()>, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (sent, sent_rx) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        let mut conns = Vec::new();
        for answer in [large, small] {
            let (mut conn, _) = listener.accept().unwrap();
            support::read_request(&mut conn).expect("a request");
            conn.set_write_timeout(Some(WAIT)).unwrap();
            conn.write_all(&answer).unwrap();
            let _ = sent.send(());
            // Kept open: the agent may keep the connection for its caller.
            conns.push(conn);
        }
    });
    (port, sent_rx, handle)
}

fn curl(url: &str) -> Vec<String> {
    [
        "curl",
        "-sS",
        "--max-time",
        "60",
        "--noproxy",
        "*",
        "-H",
        "Content-Type: application/json",
        "-H",
        "Accept: application/json, text/event-stream",
        "-d",
        CALL,
        url,
    ]
    .map(str::to_owned)
    .to_vec()
}

/// While the agent filters a large answer (12 MiB: about a second of masking in a debug
/// build), a small call on a new connection — on the same data-path thread — is answered
/// and audited first; the large one still arrives masked.
fn a_large_answer_does_not_hold_up_its_thread(sse: bool) {
    let scenario = Scenario::new();
    let large = large_result(12 << 20);
    let (port, sent, server) = upstream(response(&large, sse), response(&small_result(), sse));
    let config = scenario.config_with(&[port], "threads = 1\n");
    let agent = scenario.start_agent(&config);
    let url = format!("http://127.0.0.1:{port}/mcp");

    let argv = curl(&url);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let large_client = scenario.spawn_in_cgroup(&argv);
    sent.recv_timeout(WAIT)
        .expect("the upstream sent the large answer");
    let small = scenario.output_in_cgroup(&argv);
    assert!(small.status.success(), "{small:?}");
    assert!(
        String::from_utf8_lossy(&small.stdout).contains(SMALL),
        "{small:?}"
    );

    let large_out = large_client.wait_with_output().expect("wait for curl");
    assert!(large_out.status.success(), "{:?}", large_out.status);
    let body = String::from_utf8_lossy(&large_out.stdout);
    assert!(body.contains(MASKED), "the large answer was not masked");
    assert!(!body.contains(SECRET), "the token reached the client");
    server.join().unwrap();
    assert!(agent.stop(libc::SIGTERM).success());

    // The audit trail orders the answers as the agent released them: the small one
    // first, while the large one was still being masked.
    let rows = support::audit_rows(&scenario.audit_dir());
    let answers: Vec<&Value> = rows.iter().filter(|r| r["kind"] == "response").collect();
    let masked: Vec<&Value> = answers.iter().map(|r| &r["masked_count"]).collect();
    assert_eq!(masked, [&json!(0), &json!(1)], "answers in release order");
}

#[test]
fn a_large_json_answer_does_not_hold_up_its_thread() {
    if !require_root("a_large_json_answer_does_not_hold_up_its_thread") {
        return;
    }
    a_large_answer_does_not_hold_up_its_thread(false);
}

#[test]
fn a_large_sse_answer_does_not_hold_up_its_thread() {
    if !require_root("a_large_sse_answer_does_not_hold_up_its_thread") {
        return;
    }
    a_large_answer_does_not_hold_up_its_thread(true);
}
