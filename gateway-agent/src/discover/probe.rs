//! Asks one listener, harmlessly, whether it is an MCP server: a 2025-generation
//! `initialize` and a 2026-07-28 `server/discover`, POSTed to the usual endpoint paths.
//! Nothing else is ever sent (never `tools/call`, never a notification that would start
//! a session's work); a session the server opened for the probe is closed with DELETE,
//! as the Streamable HTTP transport defines. Every probe is bounded in time and bytes.

use std::{net::SocketAddr, time::Duration};

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::{net::TcpStream, time::timeout};

/// The paths MCP servers serve Streamable HTTP at, in the order tried.
pub const PATHS: [&str; 2] = ["/mcp", "/"];
/// The 2025 revision the `initialize` probe proposes.
pub const LEGACY_VERSION: &str = "2025-06-18";
/// The revision the `server/discover` probe is sent at.
pub const MODERN_VERSION: &str = "2026-07-28";

/// Bounds on one probe.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connecting and each request-response.
    pub step: Duration,
    /// Bytes of one response body read.
    pub max_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            step: Duration::from_millis(1500),
            max_body: 256 * 1024,
        }
    }
}

/// What a listener turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Mcp(McpServer),
    /// It speaks HTTP, but not MCP at any probed path (its first status).
    Http {
        status: u16,
    },
    /// It does not answer HTTP (or not in time).
    NotHttp {
        why: String,
    },
}

/// An MCP server found by a probe.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct McpServer {
    pub path: String,
    pub transport: &'static str,
    pub name: Option<String>,
    pub version: Option<String>,
    /// `2025` (answers `initialize`) and/or `2026-07-28` (answers `server/discover`).
    pub generations: Vec<String>,
    /// The protocol versions it named: the one `initialize` agreed, the ones `server/discover` supports.
    pub protocol_versions: Vec<String>,
}

/// One HTTP answer, bounded.
struct Answer {
    status: StatusCode,
    session: Option<String>,
    body: Bytes,
}

#[derive(Debug)]
enum ProbeError {
    /// Connect, handshake or the response head failed: not HTTP (or gone).
    NotHttp(String),
}

async fn post(
    addr: SocketAddr,
    path: &str,
    body: &Value,
    headers: &[(&str, &str)],
    limits: Limits,
) -> Result<Answer, ProbeError> {
    send(addr, Method::POST, path, Some(body), headers, limits).await
}

async fn send(
    addr: SocketAddr,
    method: Method,
    path: &str,
    body: Option<&Value>,
    headers: &[(&str, &str)],
    limits: Limits,
) -> Result<Answer, ProbeError> {
    let not_http =
        |what: &str, err: &dyn std::fmt::Display| ProbeError::NotHttp(format!("{what}: {err}"));
    let stream = timeout(limits.step, TcpStream::connect(addr))
        .await
        .map_err(|e| not_http("connect", &e))?
        .map_err(|e| not_http("connect", &e))?;
    let (mut sender, conn) = timeout(
        limits.step,
        hyper::client::conn::http1::handshake(TokioIo::new(stream)),
    )
    .await
    .map_err(|e| not_http("handshake", &e))?
    .map_err(|e| not_http("handshake", &e))?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let host = addr.to_string();
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, host)
        .header(header::ACCEPT, "application/json, text/event-stream")
        .header(
            header::USER_AGENT,
            concat!("gateway-agent-discover/", env!("CARGO_PKG_VERSION")),
        );
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let payload = body.map(Value::to_string).unwrap_or_default();
    if body.is_some() {
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    let request = request
        .body(Full::new(Bytes::from(payload)))
        .map_err(|e| not_http("request", &e))?;
    let result = timeout(limits.step, async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| not_http("response", &e))?;
        let status = response.status();
        let session = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // A body over the limit, or one still streaming at the deadline, is cut: what
        // arrived is enough to tell an MCP answer.
        let body = match Limited::new(response.into_body(), limits.max_body)
            .collect()
            .await
        {
            Ok(collected) => collected.to_bytes(),
            Err(_) => Bytes::new(),
        };
        Ok(Answer {
            status,
            session,
            body,
        })
    })
    .await
    .map_err(|e| not_http("response", &e))?;
    driver.abort();
    result
}

/// The JSON-RPC response with `id` in a JSON body or an SSE stream's `data:` lines.
fn rpc_answer(body: &[u8], id: i64) -> Option<Value> {
    let text = std::str::from_utf8(body).ok()?;
    let matches = |v: &Value| v.get("id").and_then(Value::as_i64) == Some(id);
    if let Ok(value) = serde_json::from_str::<Value>(text.trim()) {
        return matches(&value).then_some(value);
    }
    text.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
        .find(matches)
}

fn client_info() -> Value {
    json!({"name": "gateway-agent-discover", "version": env!("CARGO_PKG_VERSION")})
}

/// Probes `addr`: an MCP server at one of [`PATHS`], or what else it is.
pub async fn probe(addr: SocketAddr, limits: Limits) -> Verdict {
    let mut first_status = None;
    for path in PATHS {
        let mut found = McpServer {
            path: path.to_owned(),
            transport: "streamable_http",
            ..McpServer::default()
        };
        let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": LEGACY_VERSION, "capabilities": {}, "clientInfo": client_info(),
        }});
        match post(addr, path, &initialize, &[], limits).await {
            Err(ProbeError::NotHttp(why)) if first_status.is_none() => {
                return Verdict::NotHttp { why };
            }
            Err(_) => {}
            Ok(answer) => {
                first_status.get_or_insert(answer.status.as_u16());
                let result = rpc_answer(&answer.body, 1).and_then(|v| v.get("result").cloned());
                if let Some(result) = result
                    .filter(|r| r.get("protocolVersion").is_some() || r.get("serverInfo").is_some())
                {
                    found.generations.push("2025".to_owned());
                    note_info(&mut found, result.get("serverInfo"));
                    if let Some(v) = result.get("protocolVersion").and_then(Value::as_str) {
                        found.protocol_versions.push(v.to_owned());
                    }
                }
                if let Some(session) = &answer.session {
                    // Close the session the probe opened; its answer does not matter.
                    let _ = send(
                        addr,
                        Method::DELETE,
                        path,
                        None,
                        &[("mcp-session-id", session)],
                        limits,
                    )
                    .await;
                }
            }
        }
        let discover = json!({"jsonrpc": "2.0", "id": 2, "method": "server/discover", "params": {"_meta": {
            "io.modelcontextprotocol/protocolVersion": MODERN_VERSION,
            "io.modelcontextprotocol/clientInfo": client_info(),
            "io.modelcontextprotocol/clientCapabilities": {},
        }}});
        let headers = [
            ("mcp-protocol-version", MODERN_VERSION),
            ("mcp-method", "server/discover"),
        ];
        if let Ok(answer) = post(addr, path, &discover, &headers, limits).await {
            let result = rpc_answer(&answer.body, 2).and_then(|v| v.get("result").cloned());
            if let Some(supported) = result
                .as_ref()
                .and_then(|r| r.get("supportedVersions"))
                .and_then(Value::as_array)
            {
                found.generations.push(MODERN_VERSION.to_owned());
                for v in supported.iter().filter_map(Value::as_str) {
                    if !found.protocol_versions.iter().any(|p| p == v) {
                        found.protocol_versions.push(v.to_owned());
                    }
                }
                let result = result.as_ref();
                note_info(&mut found, result.and_then(|r| r.get("serverInfo")));
                note_info(
                    &mut found,
                    result.and_then(|r| r.pointer("/_meta/io.modelcontextprotocol~1serverInfo")),
                );
            }
        }
        if !found.generations.is_empty() {
            return Verdict::Mcp(found);
        }
    }
    match first_status {
        Some(status) => Verdict::Http { status },
        None => Verdict::NotHttp {
            why: "no answer".to_owned(),
        },
    }
}

fn note_info(found: &mut McpServer, info: Option<&Value>) {
    let Some(info) = info else { return };
    // What a server calls itself is printed to an operator's terminal: control
    // characters (escape sequences) are dropped, and the length bounded.
    let text = |key: &str| {
        info.get(key)
            .and_then(Value::as_str)
            .map(|s| {
                s.chars()
                    .filter(|c| !c.is_control())
                    .take(200)
                    .collect::<String>()
            })
            .filter(|s| !s.is_empty())
    };
    if found.name.is_none() {
        found.name = text("name");
    }
    if found.version.is_none() {
        found.version = text("version");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_found_in_json_and_sse_bodies() {
        let json = br#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-06-18"}}"#;
        assert!(rpc_answer(json, 1).is_some());
        assert!(rpc_answer(json, 2).is_none());
        let sse = b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\"}\n\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"supportedVersions\":[\"2026-07-28\"]}}\n\n";
        assert_eq!(
            rpc_answer(sse, 2).unwrap()["result"]["supportedVersions"][0],
            "2026-07-28"
        );
        assert!(rpc_answer(b"<html>", 1).is_none());
    }

    #[test]
    fn server_names_lose_control_characters() {
        let mut found = McpServer::default();
        note_info(
            &mut found,
            Some(&json!({"name": "evil\u{1b}[2J\u{1b}]0;x\u{7}srv", "version": ""})),
        );
        assert_eq!(found.name.as_deref(), Some("evil[2J]0;xsrv"));
        assert_eq!(found.version, None);
    }
}
