//! Faults end to end: a real upstream answers with JSON that is valid by RFC 8259 but that
//! serde_json will not hold (a number beyond f64, `1e400`; a lone surrogate escape,
//! `"\uD800"`) next to a secret. Needs root.
//!
//! Before, such a body fell back to "not JSON: patterns only": no key masking, no escape
//! decoding (so `\u0041KIA…` passed the AKIA rule) and no tool hiding. Now a body that
//! starts like JSON but cannot be parsed is refused with a JSON-RPC error carrying the
//! request's id, and the refusal is audited; the agent keeps serving.

mod support;

use std::{io::Write as _, net::TcpListener, thread::JoinHandle};

use serde_json::Value;
use support::{Scenario, require_root};

/// The secret, the tail of which must never reach the client in any spelling.
const SECRET_TAIL: &str = "IOSFODNN7EXAMPLE";
const PASSWORD: &str = "hunter2-correct-horse-battery";

/// An upstream that answers connection `n` with `bodies[n]` (as `content_type`, sized or
/// chunked), then closes; stops after the last.
fn canned_server(bodies: Vec<(&'static str, String)>) -> (u16, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        for (content_type, body) in bodies {
            let Ok((mut conn, _)) = listener.accept() else {
                return;
            };
            support::read_request(&mut conn);
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, handle)
}

/// POSTs a tools/call with id 7 through the agent; returns (HTTP status, body).
fn call(scenario: &Scenario, port: u16) -> (u16, String) {
    support::post_json_rpc(
        scenario,
        port,
        r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"read_config","arguments":{}}}"#,
    )
}

fn leaks(body: &str) -> bool {
    body.contains(SECRET_TAIL) || body.contains(PASSWORD)
}

/// A tools/call result holding the secrets, with `oddity` (what serde refuses) beside them.
fn result_with(oddity: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":7,"result":{{"content":[{{"type":"text","text":"{oddity} aws \u0041KIAIOSFODNN7EXAMPLE"}}],"structuredContent":{{"apiKey":"{PASSWORD}","weight":{weight}}}}}}}"#,
        weight = if oddity.is_empty() { "1e400" } else { "1.5" },
    )
}

#[test]
fn unrepresentable_json_next_to_a_secret_is_refused_not_leaked() {
    if !require_root("unrepresentable_json_next_to_a_secret_is_refused_not_leaked") {
        return;
    }
    let huge_number = result_with("");
    let lone_surrogate = result_with(r"\uD800");
    let plain = result_with("fine");
    let sse = |json: &str| format!("event: message\ndata: {json}\n\n");
    let (port, server) = canned_server(vec![
        ("application/json", huge_number.clone()),
        ("application/json", lone_surrogate.clone()),
        // No type: sniffed as JSON.
        ("text/plain", huge_number.clone()),
        ("text/event-stream", sse(&huge_number)),
        ("text/event-stream", sse(&lone_surrogate)),
        // The agent still serves, and masks, a well-formed answer.
        ("application/json", plain),
    ]);
    let scenario = Scenario::new();
    let agent = scenario.start_agent(&scenario.config(&[port]));

    for case in [
        "1e400 json",
        "surrogate json",
        "1e400 text/plain",
        "1e400 sse",
        "surrogate sse",
    ] {
        let (status, body) = call(&scenario, port);
        assert!(!leaks(&body), "{case}: secret released: {body}");
        // SSE bodies carry the refusal as the event's data.
        let json = body
            .lines()
            .find_map(|l| l.strip_prefix("data: "))
            .unwrap_or(&body);
        let answer: Value =
            serde_json::from_str(json).unwrap_or_else(|e| panic!("{case}: {e}: {body}"));
        assert_eq!(
            answer["id"], 7,
            "{case}: the refusal answers the call: {body}"
        );
        assert_eq!(answer["error"]["code"], -32012, "{case}: {body}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("gateway") && message.contains("cannot inspect"),
            "{case}: {message}"
        );
        assert!(status == 200 || status == 502, "{case}: status {status}");
    }
    let (status, body) = call(&scenario, port);
    assert_eq!(status, 200, "{body}");
    assert!(!leaks(&body), "well-formed answer not masked: {body}");
    assert!(body.contains("[MASKED:"), "{body}");
    server.join().unwrap();

    // One log line per refusal.
    agent.wait_for_count(5, |l| {
        l["message"] == "upstream message withheld: not representable JSON"
    });
    agent.stop(libc::SIGTERM);
    let rows = support::audit_rows(&scenario.audit_dir());
    let refusals: Vec<&Value> = rows
        .iter()
        .filter(|r| r["error_code"] == -32012 && r["direction"] == "gateway")
        .collect();
    assert_eq!(refusals.len(), 5, "one audit row per refusal: {rows:#?}");
    for row in &rows {
        let payload = row["payload"].as_str().unwrap_or_default();
        assert!(!leaks(payload), "secret in the audit trail: {row}");
    }
}
