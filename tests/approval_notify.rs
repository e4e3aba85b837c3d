//! Approval notifications end to end: webhook receivers on loopback get each new approval,
//! signed (HMAC-SHA256 over timestamp and body) and with masked arguments, a Slack-format
//! message says who/what/how to decide, and a receiver that is down blocks nothing. Needs
//! root and the test virtualenv.

#[path = "support/approval.rs"]
mod gate;
mod support;

use std::{
    collections::HashMap,
    io::{Read as _, Write as _},
    net::TcpListener,
    sync::{Arc, Condvar, Mutex},
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use gate::{DAEMON, Gate, accepted, requested, result, text};
use hmac::{KeyInit as _, Mac as _};
use serde_json::Value;
use support::{GITHUB_TOKEN, WAIT, audit_rows, free_port, require_root};

/// One POST as received: lower-cased headers and the body.
type Received = (HashMap<String, String>, String);

/// A loopback HTTP receiver that answers 200 to every POST and keeps what it got.
struct Receiver {
    port: u16,
    got: Arc<(Mutex<Vec<Received>>, Condvar)>,
}

impl Receiver {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let got = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let sink = Arc::clone(&got);
        // Detached: it ends with the test process.
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                conn.set_read_timeout(Some(WAIT)).unwrap();
                if let Some(request) = read_post(&mut conn) {
                    let _ = conn.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    );
                    let (list, cond) = &*sink;
                    list.lock().unwrap().push(request);
                    cond.notify_all();
                }
            }
        });
        Self { port, got }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    /// The first POST, waiting (bounded) for it.
    fn first(&self) -> Received {
        let (list, cond) = &*self.got;
        let deadline = Instant::now() + WAIT;
        let mut guard = list.lock().unwrap();
        while guard.is_empty() {
            let now = Instant::now();
            assert!(now < deadline, "the receiver got nothing");
            guard = cond.wait_timeout(guard, deadline - now).unwrap().0;
        }
        guard[0].clone()
    }
}

/// Reads one request with a Content-Length body (bounded to 1 MiB).
fn read_post(conn: &mut std::net::TcpStream) -> Option<Received> {
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = conn.read(&mut buf).ok().filter(|&n| n > 0)?;
        data.extend_from_slice(&buf[..n]);
        if data.len() > 1 << 20 {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let headers: HashMap<String, String> = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers.get("content-length")?.parse().ok()?;
    while data.len() < head_end + length.min(1 << 20) {
        let n = conn.read(&mut buf).ok().filter(|&n| n > 0)?;
        data.extend_from_slice(&buf[..n]);
    }
    let body = String::from_utf8_lossy(&data[head_end..head_end + length]).into_owned();
    Some((headers, body))
}

fn hmac_hex(key: &[u8], message: &str) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(message.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn webhooks_announce_signed_masked_approvals_and_a_down_receiver_blocks_nothing() {
    if !require_root("webhooks_announce_signed_masked_approvals_and_a_down_receiver_blocks_nothing")
    {
        return;
    }
    let hook = Receiver::start();
    let slack = Receiver::start();
    let down = free_port("127.0.0.1");
    let secrets = tempfile::tempdir().unwrap();
    let secret_file = secrets.path().join("webhook.key");
    std::fs::write(&secret_file, "s3cret-hmac-key\n").unwrap();
    let channel = |kind: &str, url: &str, attempts: u32| {
        format!(
            "[[approval.channel]]\nkind = \"{kind}\"\nurl = \"{url}\"\nsecret_file = \"{}\"\nmax_attempts = {attempts}\n",
            secret_file.display()
        )
    };
    let channels = [
        channel("webhook", &format!("http://127.0.0.1:{down}/hook"), 2),
        channel("webhook", &hook.url(), 3),
        channel("slack", &slack.url(), 3),
    ]
    .concat();
    let gate = Gate::new("hold_secs = 20", &channels);
    let agent = gate.start();
    let arguments = format!(r#"{{"command": "deploy --token {GITHUB_TOKEN}"}}"#);
    let held = gate.spawn_call("2026-07-28", "shell_exec", &arguments);
    let id = requested(&agent, &[]);

    let (headers, body) = hook.first();
    let timestamp = &headers["x-gateway-timestamp"];
    assert_eq!(
        headers["x-gateway-signature"],
        format!(
            "sha256={}",
            hmac_hex(b"s3cret-hmac-key", &format!("{timestamp}.{body}"))
        ),
        "the signature is HMAC-SHA256(secret, timestamp.body)"
    );
    assert_ne!(
        headers["x-gateway-signature"],
        format!(
            "sha256={}",
            hmac_hex(b"another key", &format!("{timestamp}.{body}"))
        )
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let sent: u64 = timestamp.parse().unwrap();
    assert!(now.abs_diff(sent) < 300, "fresh timestamp: {sent} vs {now}");
    let announced: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(announced["type"], "approval.requested");
    assert_eq!(announced["approval"]["id"], id.as_str());
    assert_eq!(announced["approval"]["key"]["tool"], "shell_exec");
    assert!(!body.contains(GITHUB_TOKEN), "arguments are masked: {body}");
    assert!(body.contains("[MASKED"), "{body}");

    let (_, slack_body) = slack.first();
    let message: Value = serde_json::from_str(&slack_body).unwrap();
    let message = message["text"].as_str().unwrap();
    assert!(
        message.contains(&id) && message.contains("shell_exec"),
        "{message}"
    );
    assert!(
        message.contains(&format!("gateway-agent approvals approve {id}")),
        "{message}"
    );
    assert!(!message.contains(GITHUB_TOKEN), "{message}");

    // The down receiver is still being retried or has given up: neither blocks a decision.
    accepted(&gate.approve_as(DAEMON, &id));
    let released = result(held);
    assert_eq!(released["isError"], false, "{released}");
    assert!(
        text(&released).starts_with("would run: deploy"),
        "{released}"
    );
    agent.wait_for(
        "approval notification failed; the approval stays open",
        |l| {
            l["url"]
                .as_str()
                .is_some_and(|u| u.contains(&down.to_string()))
        },
    );

    assert!(agent.stop(libc::SIGTERM).success());
    let rows = audit_rows(&gate.scenario.audit_dir());
    let count = |decision: &str| rows.iter().filter(|r| r["decision"] == decision).count();
    assert_eq!(count("approval_notified"), 2, "{rows:?}");
    assert_eq!(count("approval_notify_failed"), 1, "{rows:?}");
}
