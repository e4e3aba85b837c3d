//! The request stage of an exchange: a POST's body is read when it must be judged (bounded
//! in size and time), secret handles in it are resolved, and the body goes to the verdict
//! stage ([`super::verdict`]: JSON-RPC parse, routing headers, policy per request) and,
//! for an `approve` decision, to the hold stage ([`super::held_request`]). What comes out
//! is either the body to forward or the gateway's own answer, with the audit rows of
//! either durable first.
//!
//! Fail closed: a JSON POST the gateway cannot parse, or that is not JSON-RPC, is not
//! forwarded (a lenient server might act on what policy could not see).

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode, header};
use hyper::body::Incoming;
use serde_json::Value;
use tracing::{error, warn};

use super::{
    audit_rows::{self, RowContext},
    body::{self, CollectError, ProxyBody, collect_limited, full},
    exchange::{Pipeline, Scope, audit_unavailable, header_str, rpc_error},
    timeouts::Wait,
    verdict::Inbound,
};
use crate::mcp::jsonrpc::{self, codes};

/// What to send upstream.
pub(super) struct Forward {
    pub body: ProxyBody,
    /// The method, when the body held exactly one request.
    pub method: Option<String>,
    /// Its tool, when that request is a `tools/call` (the answer's audit row names it).
    pub tool: Option<String>,
    /// False only when policy allowed every request in the body with `mask = "none"`.
    pub masked: bool,
    /// The id of the body's single request (`null` otherwise), for the gateway's own
    /// answer if the upstream fails.
    pub id: Value,
    /// Set when the answer is held for approval if it carries too many secrets.
    pub response_gate: Option<Box<super::held_response::ResponseGate>>,
}

impl Pipeline {
    /// Reads and judges a request: `Ok` with what to forward, `Err` with the answer the
    /// gateway gives instead.
    pub(super) async fn read_request(
        &self,
        parts: &mut http::request::Parts,
        incoming: Incoming,
        scope: &Scope,
        rows: &RowContext,
    ) -> Result<Forward, Response<ProxyBody>> {
        // Keep-alive during a hold (`held_sse`): never forwarded upstream.
        let sse_hold = parts.extensions.remove::<super::held_sse::SseHold>();
        let inspection = post_inspection(&parts.method, &parts.headers);
        if inspection == Inspection::None {
            return Ok(Forward {
                body: body::forward(incoming),
                method: None,
                tool: None,
                masked: true,
                id: Value::Null,
                response_gate: None,
            });
        }
        let wait = Wait::Total(self.limits.timeouts.request_body);
        let bytes = match collect_limited(incoming, self.limits.max_request_body, wait).await {
            Ok(bytes) => bytes,
            Err(CollectError::TooLarge { limit }) => {
                warn!(limit, "request body over the limit; refused");
                let message = format!("request body exceeds the gateway limit of {limit} bytes");
                return Err(self
                    .refuse(
                        rows,
                        StatusCode::PAYLOAD_TOO_LARGE,
                        codes::TOO_LARGE,
                        &message,
                    )
                    .await);
            }
            Err(CollectError::Stalled(wait)) => {
                warn!(%wait, "client stalled sending its request body; refused and closed");
                let message = format!("request body {wait}");
                let mut answer = self
                    .refuse(
                        rows,
                        StatusCode::REQUEST_TIMEOUT,
                        codes::PARSE_ERROR,
                        &message,
                    )
                    .await;
                // The rest of the body may still trickle in: this connection is done.
                answer
                    .headers_mut()
                    .insert(header::CONNECTION, http::HeaderValue::from_static("close"));
                return Err(answer);
            }
            Err(CollectError::Read(err)) => {
                let message = format!("reading request body: {err}");
                return Err(self
                    .refuse(rows, StatusCode::BAD_REQUEST, codes::PARSE_ERROR, &message)
                    .await);
            }
        };
        if inspection == Inspection::IfJsonRpc && !looks_like_json_rpc(&bytes) {
            // Not JSON-RPC under another content type: ordinary HTTP, untouched.
            parts.headers.remove(header::EXPECT);
            return Ok(Forward {
                body: full(bytes),
                method: None,
                tool: None,
                masked: true,
                id: Value::Null,
                response_gate: None,
            });
        }
        // Secret handles the caller sends back: resolved for the upstream only (policy and
        // the audit trail see the handles), or the request is refused.
        // The binding is only worked out (strings built) when handles are in use at all.
        let binding = self
            .handles
            .as_ref()
            .and_then(|_| scope.handle_binding(&rows.session));
        let resolved = match crate::handles::resolve_request(
            self.handles.as_deref(),
            &bytes,
            binding.as_ref(),
        ) {
            Ok(resolved) => resolved,
            Err(reason) => {
                warn!(%reason, "secret handle not resolved; refused");
                // Answered under the request's id, so the client's call fails at once.
                let id = serde_json::from_slice::<Value>(&bytes)
                    .ok()
                    .and_then(|v| v.get("id").cloned())
                    .unwrap_or(Value::Null);
                let row = audit_rows::refusal_row(rows, 403, Some(codes::DENIED), &reason);
                if let Err(err) = self.recorder.commit(vec![row]).await {
                    error!(error = %err, "audit trail unavailable; refusal not recorded");
                }
                return Err(rpc_error(
                    StatusCode::FORBIDDEN,
                    &id,
                    codes::DENIED,
                    &reason,
                ));
            }
        };
        let not_forwarded =
            |err: crate::audit::SinkError| audit_unavailable(&err, "request not forwarded");
        let mut response_gate = None;
        let (method, tool, masked, id, rewritten) =
            match self.inspect_request(&parts.uri, &parts.headers, &bytes, scope, rows) {
                Inbound::Forward {
                    method,
                    tool,
                    masked,
                    id,
                    rows: request_rows,
                    response_gate: gate,
                } => {
                    self.recorder
                        .commit(request_rows)
                        .await
                        .map_err(not_forwarded)?;
                    // A retry of a call whose answer is held is answered from it.
                    if let Some(gate) = &gate
                        && let Some(answer) = self.kept_answer(gate, rows).await
                    {
                        return Err(answer);
                    }
                    response_gate = gate;
                    (method, tool, masked, id, None)
                }
                Inbound::Respond(response, answer_rows) => {
                    self.recorder
                        .commit(answer_rows)
                        .await
                        .map_err(not_forwarded)?;
                    return Err(response);
                }
                Inbound::Hold(call, request_rows) => {
                    let id = call.message.get("id").cloned().unwrap_or(Value::Null);
                    let tool = called_tool(&call.message);
                    // `rewritten`: the body to forward instead (the gateway's own
                    // 2026-07-28 come-back state taken out).
                    let (method, rewritten) = self
                        .held(*call, request_rows, &parts.uri, scope, rows, sse_hold)
                        .await?;
                    if rewritten.is_some() {
                        parts.headers.remove(header::CONTENT_LENGTH);
                    }
                    (Some(method), tool, true, id, rewritten.map(Bytes::from))
                }
            };
        // The body is already here: the upstream needs no 100-continue dance.
        parts.headers.remove(header::EXPECT);
        let rewritten = rewritten.or_else(|| {
            let resolved = resolved.map(Bytes::from)?;
            parts.headers.remove(header::CONTENT_LENGTH);
            Some(resolved)
        });
        Ok(Forward {
            body: full(rewritten.unwrap_or(bytes)),
            method,
            tool,
            masked,
            id,
            response_gate,
        })
    }

    /// Answers a request the gateway could not read as JSON-RPC, recording why.
    pub(super) async fn refuse(
        &self,
        rows: &RowContext,
        status: StatusCode,
        code: i64,
        message: &str,
    ) -> Response<ProxyBody> {
        let row = audit_rows::refusal_row(rows, status.as_u16(), Some(code), message);
        if let Err(err) = self.recorder.commit(vec![row]).await {
            error!(error = %err, "audit trail unavailable; refusal not recorded");
        }
        rpc_error(status, &Value::Null, code, &format!("gateway: {message}"))
    }
}

/// How much of a request the gateway must read before forwarding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inspection {
    /// Streamed through unread.
    None,
    /// A JSON POST: must be JSON-RPC, judged by policy.
    JsonRpc,
    /// A POST under some other text-ish content type: judged like JSON-RPC if it parses as
    /// a JSON-RPC message (a server that ignores Content-Type must not receive a tools/call
    /// policy never saw), forwarded untouched otherwise.
    IfJsonRpc,
}

fn post_inspection(method: &http::Method, headers: &HeaderMap) -> Inspection {
    if method != http::Method::POST {
        return Inspection::None;
    }
    let content_type = header_str(headers, header::CONTENT_TYPE.as_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("application/json") {
        return Inspection::JsonRpc;
    }
    // Bulk and binary uploads are not where JSON-RPC travels; do not buffer them.
    const STREAMED: [&str; 6] = [
        "multipart/",
        "application/octet-stream",
        "image/",
        "audio/",
        "video/",
        "application/grpc",
    ];
    if STREAMED
        .iter()
        .any(|prefix| content_type.starts_with(prefix))
    {
        Inspection::None
    } else {
        Inspection::IfJsonRpc
    }
}

/// Parses as JSON with a `method` member (one message or a batch)?
fn looks_like_json_rpc(bytes: &[u8]) -> bool {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(object)) => object.contains_key("method"),
        Ok(Value::Array(batch)) => batch.iter().any(|m| m.get("method").is_some()),
        _ => false,
    }
}

/// The tool a `tools/call` request names.
pub(super) fn called_tool(message: &Value) -> Option<String> {
    (jsonrpc::method(message) == Some("tools/call"))
        .then(|| jsonrpc::tool_name(message))
        .flatten()
        .map(str::to_owned)
}
