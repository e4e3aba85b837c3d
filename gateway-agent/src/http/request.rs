//! The request stage of an exchange: a POST's body is read when it must be judged, parsed
//! as JSON-RPC, checked against the routing headers, and judged by policy per request; an
//! `approve` decision holds it for a person's decision (`approval/`). What comes out is
//! either the body to forward or the gateway's own answer, with the audit rows of either
//! durable first.
//!
//! Fail closed: a JSON POST the gateway cannot parse, or that is not JSON-RPC, is not
//! forwarded (a lenient server might act on what policy could not see).

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode, header};
use hyper::body::Incoming;
use serde_json::Value;
use tracing::{error, info, warn};

use super::{
    audit_rows::{self, RowContext, Verdict},
    body::{self, CollectError, ProxyBody, collect_limited, full},
    exchange::{Pipeline, Scope, audit_unavailable, header_str, json_response, rpc_error},
    timeouts::Wait,
};
use crate::{
    audit::AuditRecord,
    mcp::{
        headers,
        jsonrpc::{self, Kind, codes},
    },
    policy::{Decision, MaskProfile, RequestFacts},
};

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

/// What the request filter decided.
enum Inbound {
    /// Forward; `method` and `id` are set when the body held exactly one request.
    /// `masked` is false only when policy allowed every request in the body with
    /// `mask = "none"`.
    Forward {
        method: Option<String>,
        tool: Option<String>,
        masked: bool,
        id: Value,
        rows: Vec<AuditRecord>,
        response_gate: Option<Box<super::held_response::ResponseGate>>,
    },
    /// Answer the client ourselves.
    Respond(Response<ProxyBody>, Vec<AuditRecord>),
    /// One request an `approve` rule matched: hold it for a decision (`approval::hold`).
    Hold(Box<crate::approval::Call>, Vec<AuditRecord>),
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
        let binding = scope.handle_binding(&rows.session);
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
    async fn refuse(
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

    /// Parses a JSON POST and applies policy to each request in it.
    fn inspect_request(
        &self,
        uri: &http::Uri,
        headers: &HeaderMap,
        bytes: &[u8],
        scope: &Scope,
        rows: &RowContext,
    ) -> Inbound {
        let refused = |status: StatusCode, id: &Value, code: i64, message: String| {
            let answer = jsonrpc::error_response(id, code, &message);
            let row = audit_rows::refusal_row(rows, status.as_u16(), Some(code), &message);
            Inbound::Respond(json_response(status, &answer), vec![row])
        };
        let body: Value = match serde_json::from_slice(bytes) {
            Ok(body) => body,
            Err(err) => {
                warn!(error = %err, "request body is not valid JSON; refused");
                return refused(
                    StatusCode::BAD_REQUEST,
                    &Value::Null,
                    codes::PARSE_ERROR,
                    format!("gateway: request body is not valid JSON: {err}"),
                );
            }
        };
        let messages = jsonrpc::messages(&body);
        if messages.is_empty() || messages.iter().any(|m| jsonrpc::kind(m) == Kind::Invalid) {
            warn!("request body is not JSON-RPC 2.0; refused");
            return refused(
                StatusCode::BAD_REQUEST,
                &Value::Null,
                codes::INVALID_REQUEST,
                "gateway: request body is not a JSON-RPC 2.0 message".into(),
            );
        }
        if let Err(problem) = headers::agree(
            header_str(headers, "mcp-method"),
            header_str(headers, "mcp-name"),
            &body,
        ) {
            warn!(%problem, "MCP headers disagree with the body; refused");
            let id = body.get("id").cloned().unwrap_or(Value::Null);
            return refused(
                StatusCode::BAD_REQUEST,
                &id,
                codes::HEADER_MISMATCH,
                format!("gateway: {problem}"),
            );
        }
        let policy = self.policy();
        let mut refusals = Vec::new();
        let mut verdicts = Vec::with_capacity(messages.len());
        let mut masked = false;
        let mut approve = None;
        for message in &messages {
            if jsonrpc::kind(message) != Kind::Request {
                verdicts.push(Verdict {
                    decision: None,
                    rule: None,
                });
                continue;
            }
            let method = jsonrpc::method(message).unwrap_or_default();
            let tool = (method == "tools/call")
                .then(|| jsonrpc::tool_name(message))
                .flatten();
            let decision = policy.evaluate(&RequestFacts {
                server: scope.server_ref(),
                method,
                tool,
                arguments: (method == "tools/call")
                    .then(|| jsonrpc::tool_arguments(message))
                    .flatten(),
                principal: &scope.principal,
            });
            // A tool whose definition is not the pinned one: `on_tool_change` may refuse it.
            let decision = match (&self.pins, tool) {
                (Some(pins), Some(tool)) => {
                    crate::pins::overrule(decision, pins.check_call(&scope.pin_key(), tool))
                }
                _ => decision,
            };
            let (verdict, refusal) = match decision {
                Decision::Allow { mask, rule } => {
                    masked |= mask == MaskProfile::Default;
                    (
                        Verdict {
                            decision: Some("allow"),
                            rule,
                        },
                        None,
                    )
                }
                Decision::Deny { rule, reason } => (
                    Verdict {
                        decision: Some("deny"),
                        rule: Some(rule.clone()),
                    },
                    Some((rule, reason)),
                ),
                // Held for a decision when the body is this one request and approvals are
                // configured; otherwise approval means no.
                Decision::Approve { rule, reason } => {
                    approve = Some((rule.clone(), reason.clone()));
                    (
                        Verdict {
                            decision: Some("approve"),
                            rule: Some(rule.clone()),
                        },
                        Some((rule, format!("approval required: {reason}"))),
                    )
                }
            };
            crate::metrics::get().request(method, verdict.decision.unwrap_or("none"));
            verdicts.push(verdict);
            if let Some((rule, reason)) = refusal {
                info!(rpc_method = method, tool = tool.unwrap_or(""), %rule, %reason, "request denied by policy");
                refusals.push(((*message).clone(), rule, reason));
            }
        }
        let audited = self.recorder.enabled();
        let mut request_rows = if audited {
            audit_rows::client_rows(rows, &body, &verdicts, &self.masker)
        } else {
            Vec::new()
        };
        if refusals.is_empty() {
            let (method, tool, id, response_gate) = match messages.as_slice() {
                [single] if jsonrpc::kind(single) == Kind::Request => (
                    jsonrpc::method(single).map(str::to_owned),
                    called_tool(single),
                    single.get("id").cloned().unwrap_or(Value::Null),
                    self.response_gate(single, verdicts[0].rule.as_deref(), headers, scope, rows),
                ),
                _ => (None, None, Value::Null, None),
            };
            // On the legacy transport the answers come back on the session's stream.
            let target = uri.path_and_query().map_or("", |pq| pq.as_str());
            self.legacy.note_requests(
                scope.orig_dst,
                target,
                messages
                    .iter()
                    .filter(|m| jsonrpc::kind(m) == Kind::Request)
                    .filter_map(|m| {
                        let method = jsonrpc::method(m)?;
                        let tool = (method == "tools/call")
                            .then(|| jsonrpc::tool_name(m))
                            .flatten();
                        Some((m.get("id")?, method, tool))
                    }),
            );
            // A body of notifications/responses only has no decision: mask by default.
            let any_request = messages.iter().any(|m| jsonrpc::kind(m) == Kind::Request);
            return Inbound::Forward {
                method,
                tool,
                masked: masked || !any_request,
                id,
                rows: request_rows,
                response_gate,
            };
        }
        // 2026-07-28 results carry a resultType; earlier eras have none.
        let modern = header_str(headers, "mcp-protocol-version").is_some_and(|v| v >= "2026-07-28");
        if let (Some(_), Some((rule, reason)), [single]) =
            (&self.approvals, approve, messages.as_slice())
        {
            let call = crate::approval::Call {
                message: (*single).clone(),
                principal: scope.principal.clone(),
                server_addr: scope.orig_dst,
                rule,
                reason,
                policy_version: policy.version().to_owned(),
                origin: crate::approval::Origin {
                    session: rows.session.clone(),
                    transport: rows.transport.to_owned(),
                    protocol_version: rows.protocol_version.clone(),
                    server_name: rows.server_name.clone(),
                    request_id: single.get("id").map(Value::to_string),
                },
                modern,
                masked_arguments: crate::approval::hold::masked_arguments(single, &self.masker),
            };
            return Inbound::Hold(Box::new(call), request_rows);
        }
        let answers = denial_answers(&body, &refusals, modern);
        let (response, answer_rows) = self.answer(uri, scope, rows, &answers, &body);
        request_rows.extend(answer_rows);
        Inbound::Respond(response, request_rows)
    }

    /// The response carrying the gateway's own `answers` to `body`, and their rows.
    /// Legacy HTTP+SSE: answers belong on the session's stream; the POST gets 202.
    fn answer(
        &self,
        uri: &http::Uri,
        scope: &Scope,
        rows: &RowContext,
        answers: &Value,
        body: &Value,
    ) -> (Response<ProxyBody>, Vec<AuditRecord>) {
        let target = uri.path_and_query().map_or("", |pq| pq.as_str());
        let on_stream = jsonrpc::messages(answers)
            .iter()
            .all(|answer| self.legacy.inject(scope.orig_dst, target, answer));
        let (response, status) = if on_stream && !answers.is_null() {
            let mut accepted = Response::new(body::empty());
            *accepted.status_mut() = StatusCode::ACCEPTED;
            (accepted, 202)
        } else {
            (json_response(StatusCode::OK, answers), 200)
        };
        let answer_rows = if self.recorder.enabled() {
            audit_rows::gateway_rows(rows, answers, body, status)
        } else {
            Vec::new()
        };
        (response, answer_rows)
    }

    /// Holds a request for approval (see `approval::hold`): `Ok(method, rewritten body)`
    /// to forward it, or the answer to send instead.
    async fn held(
        &self,
        call: crate::approval::Call,
        request_rows: Vec<AuditRecord>,
        uri: &http::Uri,
        scope: &Scope,
        rows: &RowContext,
        sse_hold: Option<super::held_sse::SseHold>,
    ) -> Result<(String, Option<Vec<u8>>), Response<ProxyBody>> {
        let Some(approvals) = &self.approvals else {
            let message = "approval required, but approvals are not configured";
            return Err(self
                .refuse(rows, StatusCode::FORBIDDEN, codes::DENIED, message)
                .await);
        };
        // Until answered: a stopping agent waits for held exchanges.
        let _holding = approvals.holding();
        if let Err(err) = self.recorder.commit(request_rows).await {
            return Err(audit_unavailable(&err, "request not forwarded"));
        }
        let body = call.message.clone();
        let Some(held) = super::held_sse::hold(approvals, call, sse_hold, rows).await else {
            // The client is gone; the approval stays open for its retry.
            return Err(Response::new(body::empty()));
        };
        match held {
            crate::approval::Held::Release { body: rewritten } => {
                let method = jsonrpc::method(&body).unwrap_or_default();
                let target = uri.path_and_query().map_or("", |pq| pq.as_str());
                let tool = called_tool(&body);
                let id = (body.get("id").into_iter()).map(|id| (id, method, tool.as_deref()));
                self.legacy.note_requests(scope.orig_dst, target, id);
                Ok((method.to_owned(), rewritten))
            }
            crate::approval::Held::Answer(answer) => {
                let (response, answer_rows) = self.answer(uri, scope, rows, &answer, &body);
                if let Err(err) = self.recorder.commit(answer_rows).await {
                    return Err(audit_unavailable(&err, "request not forwarded"));
                }
                Err(response)
            }
        }
    }
}

/// The answers to a body the gateway refuses: one per request, in order. In a batch,
/// requests that were not themselves denied are refused too (nothing is forwarded).
fn denial_answers(body: &Value, refusals: &[(Value, String, String)], modern: bool) -> Value {
    let answer = |message: &Value| -> Option<Value> {
        let id = message.get("id")?;
        let refusal = refusals.iter().find(|(denied, _, _)| denied == message);
        Some(match refusal {
            Some((_, rule, reason)) if jsonrpc::method(message) == Some("tools/call") => {
                let mut answer = jsonrpc::tool_error_result(
                    id,
                    &format!("Denied by gateway policy (rule {rule}): {reason}"),
                );
                if modern {
                    answer["result"]["resultType"] = "complete".into();
                }
                answer
            }
            Some((_, rule, reason)) => jsonrpc::error_response(
                id,
                codes::DENIED,
                &format!("denied by gateway policy (rule {rule}): {reason}"),
            ),
            None => jsonrpc::error_response(
                id,
                codes::DENIED,
                "not forwarded: the batch contained a request denied by gateway policy",
            ),
        })
    };
    match body {
        Value::Array(batch) => Value::Array(batch.iter().filter_map(answer).collect()),
        single => answer(single).unwrap_or(Value::Null),
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
fn called_tool(message: &Value) -> Option<String> {
    (jsonrpc::method(message) == Some("tools/call"))
        .then(|| jsonrpc::tool_name(message))
        .flatten()
        .map(str::to_owned)
}
