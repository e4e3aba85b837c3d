//! The verdict stage of a request: a JSON POST is parsed as JSON-RPC, checked against the
//! routing headers, and judged by policy per request. Out comes [`Inbound`]: forward it
//! (with its request rows, and a response gate when its answer may be held), answer it
//! in the server's place (denials, with their rows), or hold it for approval.

use http::{HeaderMap, Response, StatusCode};
use serde_json::Value;
use tracing::{info, warn};

use super::{
    audit_rows::{self, RowContext, Verdict},
    body::{self, ProxyBody},
    exchange::{Pipeline, Scope, header_str, json_response},
    request::called_tool,
};
use crate::{
    audit::AuditRecord,
    mcp::{
        headers,
        jsonrpc::{self, Kind, codes},
    },
    policy::{Decision, MaskProfile, RequestFacts},
};

/// What the request filter decided.
pub(super) enum Inbound {
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
    /// Parses a JSON POST and applies policy to each request in it.
    pub(super) fn inspect_request(
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
        let body: Value = match jsonrpc::parse_request(bytes) {
            Ok(body) => body,
            Err(err) if err.classify() == serde_json::error::Category::Data => {
                warn!(error = %err, "request body repeats a key; refused");
                return refused(
                    StatusCode::BAD_REQUEST,
                    &Value::Null,
                    codes::INVALID_REQUEST,
                    format!(
                        "gateway: request body is ambiguous, servers read a repeated key \
                         differently: {err}"
                    ),
                );
            }
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
    pub(super) fn answer(
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
