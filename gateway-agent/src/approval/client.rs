//! `gateway-agent approvals list|show|approve|deny`: one request to the admin socket, the
//! answer printed for people (or as JSON).

use std::{
    io::{BufRead as _, BufReader, Write as _},
    os::unix::net::UnixStream,
    path::Path,
    time::Duration,
};

use anyhow::{Context as _, bail};
use serde_json::Value;

use super::admin::{MAX_REQUEST, Request};

/// Sends `request` and returns the answer's payload (`approvals` or `approval`).
pub fn call(socket: &Path, request: &Request) -> anyhow::Result<Value> {
    let mut stream = UnixStream::connect(socket)
        .with_context(|| format!("connecting to the admin socket {}", socket.display()))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut line = serde_json::to_vec(request)?;
    line.push(b'\n');
    stream.write_all(&line)?;
    let mut answer = Vec::new();
    BufReader::new(&stream)
        .take_bounded(&mut answer)
        .context("reading the agent's answer")?;
    let answer: Value =
        serde_json::from_slice(&answer).context("the agent's answer is not JSON")?;
    if answer["ok"] != true {
        bail!(
            "refused: {}",
            answer["error"].as_str().unwrap_or("no reason given")
        );
    }
    Ok(answer
        .get("approvals")
        .or_else(|| answer.get("approval"))
        .cloned()
        .unwrap_or(Value::Null))
}

trait TakeBounded {
    fn take_bounded(self, out: &mut Vec<u8>) -> std::io::Result<()>;
}

impl<R: std::io::Read> TakeBounded for BufReader<R> {
    /// One line, at most 64 × the request limit (a list of many approvals).
    fn take_bounded(self, out: &mut Vec<u8>) -> std::io::Result<()> {
        use std::io::Read as _;
        let mut limited = BufReader::new(self.take(MAX_REQUEST * 64));
        limited.read_until(b'\n', out).map(|_| ())
    }
}

/// One line per approval: id, state, age, who, where, what, rule.
pub fn render_list(approvals: &Value, now_us: i64) -> String {
    let mut out = String::from(
        "ID                                STATE     AGE    REQUESTER            SERVER                TOOL/METHOD           RULE\n",
    );
    for a in approvals.as_array().into_iter().flatten() {
        let age = (now_us - a["created_us"].as_i64().unwrap_or(now_us)) / 1_000_000;
        out.push_str(&format!(
            "{:<33} {:<9} {:<6} {:<20} {:<21} {:<21} {}\n",
            a["id"].as_str().unwrap_or(""),
            a["state"].as_str().unwrap_or(""),
            format!("{age}s"),
            requester(&a["requester"]),
            a["origin"]["server_name"]
                .as_str()
                .or(a["key"]["server_addr"].as_str())
                .unwrap_or(""),
            a["key"]["tool"]
                .as_str()
                .or(a["key"]["method"].as_str())
                .unwrap_or(""),
            a["key"]["rule"].as_str().unwrap_or(""),
        ));
    }
    out
}

fn requester(r: &Value) -> String {
    if let Some(sub) = r["email"].as_str().or(r["sub"].as_str()) {
        return sub.to_owned();
    }
    match (r["user"].as_str(), r["uid"].as_u64()) {
        (Some(user), _) => format!("{user} ({})", r["comm"].as_str().unwrap_or("?")),
        (None, Some(uid)) => format!("uid {uid}"),
        _ => "unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_names_who_asked_for_what_where() {
        let approvals = serde_json::json!([{
            "id": "0123456789abcdef0123456789abcdef",
            "state": "pending",
            "created_us": 1_000_000,
            "requester": {"user": "alice", "uid": 1000, "comm": "python3"},
            "origin": {"server_name": "billing-mcp"},
            "key": {"server_addr": "127.0.0.1:8000", "method": "tools/call",
                    "tool": "shell_exec", "rule": "approve-shell"},
        }]);
        let table = render_list(&approvals, 61_000_000);
        let row = table.lines().nth(1).unwrap();
        for field in [
            "0123456789abcdef0123456789abcdef",
            "pending",
            "60s",
            "alice (python3)",
            "billing-mcp",
            "shell_exec",
            "approve-shell",
        ] {
            assert!(row.contains(field), "{field} missing: {row}");
        }
    }

    #[test]
    fn a_missing_socket_is_named() {
        let err = call(Path::new("/nonexistent/approvals.sock"), &Request::List).unwrap_err();
        assert!(
            format!("{err:#}").contains("/nonexistent/approvals.sock"),
            "{err:#}"
        );
    }
}
