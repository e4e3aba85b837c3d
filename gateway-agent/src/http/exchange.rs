//! One HTTP exchange through the gateway, in the order a reader expects:
//! identity (per the server's auth mode) → request filter (parse JSON-RPC, check
//! header/body agreement, policy) → audit (durable before forwarding) → upstream (held
//! credential in place of the caller's token) → response filter (mask and hide tools,
//! buffered JSON or streamed SSE; audit durable before release).
//!
//! Fail closed: a JSON POST the gateway cannot parse, or that is not JSON-RPC, is not
//! forwarded (a lenient server might act on what policy could not see); a response the
//! gateway cannot inspect (an SSE stream in an encoding it cannot decode) is not released;
//! traffic whose audit rows cannot be made durable does not move on.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use serde_json::Value;
use tracing::{Instrument as _, error, info, info_span, warn};

use super::{
    audit_rows::{self, Recorder, RowContext, Verdict},
    auth::{self, Admission},
    body::{self, CollectError, ProxyBody, collect_limited, full},
    legacy::LegacySessions,
    message_filter::MessageFilter,
    sse_stream::{self, LegacyRegistry},
};
use crate::{
    audit::{AuditRecord, PrincipalColumns},
    identity::Authenticator,
    mask::Masker,
    mcp::jsonrpc::{self, Kind, codes},
    policy::{Decision, MaskProfile, PolicySet, RequestFacts, ServerRef},
    principal::Principal,
    process::ProcessIdentity,
    servers::{ServerSettings, ServerTable},
};

/// Limits on what the gateway holds in memory for one exchange.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    pub max_request_body: usize,
    pub max_response_body: usize,
    pub max_sse_event: usize,
}

/// What the gateway knows about the connection an exchange arrived on.
pub struct ConnFacts {
    pub orig_dst: SocketAddr,
    /// The local process that opened it, from the kernel.
    pub process: Option<ProcessIdentity>,
    /// The session of rows recorded before (or without) an MCP session.
    pub conn_id: String,
    /// The configured server a TLS connection was attributed to by its SNI (its settings
    /// apply wherever the connection goes); `None`: the server at `orig_dst`.
    pub server: Option<String>,
}

/// Who is asking whom, for one exchange: the connection's process plus this request's
/// token, and the server's settings as they were when the request arrived.
pub struct Scope {
    pub orig_dst: SocketAddr,
    pub server: Arc<ServerSettings>,
    pub principal: Principal,
}

impl Scope {
    pub fn server_ref(&self) -> ServerRef<'_> {
        ServerRef {
            addr: self.orig_dst,
            name: self.server.name.as_deref(),
        }
    }
}

/// The shared parts of the MCP pipeline.
pub struct Pipeline {
    pub masker: Arc<Masker>,
    /// A disabled masker, for traffic policy allows with `mask = "none"`.
    pub unmasked: Arc<Masker>,
    pub legacy: Arc<LegacySessions>,
    pub policy: Arc<std::sync::RwLock<Arc<PolicySet>>>,
    /// Replaced on SIGHUP (credentials re-read); each request reads it afresh.
    pub servers: Arc<std::sync::RwLock<Arc<ServerTable>>>,
    /// Validates bearer tokens; empty without `[[identity.issuer]]`, or until the
    /// issuers' discovery first succeeds.
    pub authenticator: Arc<std::sync::OnceLock<Arc<Authenticator>>>,
    pub recorder: Recorder,
    pub limits: HttpLimits,
}

/// What the request filter decided.
enum Inbound {
    /// Forward; `method` is set when the body held exactly one request. `masked` is
    /// false only when policy allowed every request in the body with `mask = "none"`.
    Forward {
        method: Option<String>,
        masked: bool,
        rows: Vec<AuditRecord>,
    },
    /// Answer the client ourselves.
    Respond(Response<ProxyBody>, Vec<AuditRecord>),
}

impl Pipeline {
    fn policy(&self) -> Arc<PolicySet> {
        Arc::clone(&self.policy.read().unwrap_or_else(|p| p.into_inner()))
    }

    fn server(&self, facts: &ConnFacts) -> Arc<ServerSettings> {
        let table = self.servers.read().unwrap_or_else(|p| p.into_inner());
        match &facts.server {
            Some(name) => table
                .named(name)
                .unwrap_or_else(|| table.get(facts.orig_dst)),
            None => table.get(facts.orig_dst),
        }
    }

    pub async fn handle<F, Fut>(
        &self,
        mut request: Request<Incoming>,
        facts: &Arc<ConnFacts>,
        send: F,
    ) -> Response<ProxyBody>
    where
        F: FnOnce(Request<ProxyBody>) -> Fut,
        Fut: Future<Output = hyper::Result<Response<Incoming>>>,
    {
        let session = header_str(request.headers(), "mcp-session-id").map(str::to_owned);
        let span = info_span!("request", method = %request.method(), path = %request.uri().path(), session = session.as_deref().unwrap_or(""));
        async move {
            let started = Instant::now();
            let wants_upgrade = request.headers().contains_key(header::UPGRADE);
            let client_upgrade = wants_upgrade.then(|| hyper::upgrade::on(&mut request));
            let (mut parts, incoming) = request.into_parts();
            let server = self.server(facts);
            let mut rows = self.row_context(&parts, facts, &server, started);
            let token = match auth::admit(&mut parts, &server, self.authenticator.get().map(Arc::as_ref)).await {
                Admission::Admit(token) => token,
                Admission::Respond(response, refusal) => {
                    if let Some(reason) = refusal.reason {
                        let row = audit_rows::refusal_row(&rows, refusal.status, Some(codes::UNAUTHORIZED), &reason);
                        // Nothing moved on, so a trail that cannot take the row changes nothing.
                        if let Err(err) = self.recorder.commit(vec![row]).await {
                            error!(error = %err, "audit trail unavailable; identity refusal not recorded");
                        }
                    }
                    return response;
                }
            };
            let scope = Arc::new(Scope {
                orig_dst: facts.orig_dst,
                server,
                principal: Principal {
                    process: facts.process.clone(),
                    token,
                },
            });
            rows.principal = PrincipalColumns::from_principal(&scope.principal);
            let is_head = parts.method == http::Method::HEAD;
            let inspection = post_inspection(&parts.method, &parts.headers);
            let (upstream_body, method, masked) = if inspection != Inspection::None {
                let bytes = match collect_limited(incoming, self.limits.max_request_body).await {
                    Ok(bytes) => bytes,
                    Err(CollectError::TooLarge { limit }) => {
                        warn!(limit, "request body over the limit; refused");
                        let message = format!("request body exceeds the gateway limit of {limit} bytes");
                        return self.refuse(&rows, StatusCode::PAYLOAD_TOO_LARGE, codes::TOO_LARGE, &message).await;
                    }
                    Err(CollectError::Read(err)) => {
                        let message = format!("reading request body: {err}");
                        return self.refuse(&rows, StatusCode::BAD_REQUEST, codes::PARSE_ERROR, &message).await;
                    }
                };
                let (method, masked) =
                    if inspection == Inspection::IfJsonRpc && !looks_like_json_rpc(&bytes) {
                        // Not JSON-RPC under another content type: ordinary HTTP, untouched.
                        (None, true)
                    } else {
                        match self.inspect_request(&parts.uri, &parts.headers, &bytes, &scope, &rows) {
                            Inbound::Forward { method, masked, rows: request_rows } => {
                                if let Err(err) = self.recorder.commit(request_rows).await {
                                    return audit_unavailable(&err, "request not forwarded");
                                }
                                (method, masked)
                            }
                            Inbound::Respond(response, answer_rows) => {
                                if let Err(err) = self.recorder.commit(answer_rows).await {
                                    return audit_unavailable(&err, "request not forwarded");
                                }
                                return response;
                            }
                        }
                    };
                // The body is already here: the upstream needs no 100-continue dance.
                parts.headers.remove(header::EXPECT);
                (full(bytes), method, masked)
            } else {
                (body::forward(incoming), None, true)
            };
            // A server with a held credential gets that, never the caller's token (MCP
            // forbids passthrough; in token modes the identity stage already removed it).
            if let Some(credential) = &scope.server.credential {
                parts.headers.remove(header::AUTHORIZATION);
                parts.headers.remove(credential.header());
                parts
                    .headers
                    .insert(credential.header().clone(), credential.header_value());
            }
            // Bodies the gateway must read are asked for unencoded.
            parts.headers.insert(
                header::ACCEPT_ENCODING,
                HeaderValue::from_static("identity"),
            );
            let mut response = match send(Request::from_parts(parts, upstream_body)).await {
                Ok(response) => response,
                Err(err) => {
                    warn!(error = %err, "upstream request failed");
                    let message = format!("gateway: upstream MCP server failed: {err}");
                    let answer = jsonrpc::error_response(&Value::Null, codes::UPSTREAM, &message);
                    let gateway_rows = audit_rows::gateway_rows(&rows, &answer, &Value::Null, 502);
                    if let Err(err) = self.recorder.commit(gateway_rows).await {
                        error!(error = %err, "audit trail unavailable; upstream failure not recorded");
                    }
                    return json_response(StatusCode::BAD_GATEWAY, &answer);
                }
            };
            if let Some(client_upgrade) = client_upgrade
                && response.status() == StatusCode::SWITCHING_PROTOCOLS
            {
                splice_upgrades(client_upgrade, hyper::upgrade::on(&mut response));
                let (parts, _) = response.into_parts();
                return Response::from_parts(parts, body::empty());
            }
            // Bodiless answers carry the headers of a body they do not have: leave them be.
            if is_head
                || matches!(
                    response.status(),
                    StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED
                )
            {
                let (parts, incoming) = response.into_parts();
                return Response::from_parts(parts, body::forward(incoming));
            }
            // An initialize answer names the session its rows belong to from now on.
            if let Some(session) = header_str(response.headers(), "mcp-session-id") {
                rows.session = session.to_owned();
            }
            self.filter_response(response, method, masked, scope, rows).await
        }
        .instrument(span)
        .await
    }

    /// The rows' shared context for a request on `facts`' connection.
    fn row_context(
        &self,
        parts: &http::request::Parts,
        facts: &ConnFacts,
        server: &ServerSettings,
        started: Instant,
    ) -> RowContext {
        let target = parts.uri.path_and_query().map_or("", |pq| pq.as_str());
        let legacy_session = super::legacy::session_id(target);
        let mcp_session = header_str(&parts.headers, "mcp-session-id");
        let session = mcp_session
            .or(legacy_session)
            .map_or_else(|| facts.conn_id.clone(), str::to_owned);
        RowContext {
            session,
            transport: if legacy_session.is_some() && mcp_session.is_none() {
                "http_sse"
            } else {
                "streamable_http"
            },
            protocol_version: header_str(&parts.headers, "mcp-protocol-version").map(str::to_owned),
            server_name: server.name.clone(),
            server_addr: facts.orig_dst.to_string(),
            // The process half: refusals before (or without) a token still say who tried.
            principal: PrincipalColumns::from_principal(&Principal {
                process: facts.process.clone(),
                token: None,
            }),
            started,
        }
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
        if let Err(problem) = headers_agree(headers, &body) {
            warn!(%problem, "MCP headers disagree with the body; refused");
            let id = body.get("id").cloned().unwrap_or(Value::Null);
            return refused(
                StatusCode::BAD_REQUEST,
                &id,
                codes::INVALID_REQUEST,
                format!("gateway: {problem}"),
            );
        }
        let policy = self.policy();
        let mut refusals = Vec::new();
        let mut verdicts = Vec::with_capacity(messages.len());
        let mut masked = false;
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
                // The approval workflow is a later stage; until then approval means no.
                Decision::Approve { rule, reason } => (
                    Verdict {
                        decision: Some("approve"),
                        rule: Some(rule.clone()),
                    },
                    Some((rule, format!("approval required: {reason}"))),
                ),
            };
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
            let method = match messages.as_slice() {
                [single] if jsonrpc::kind(single) == Kind::Request => {
                    jsonrpc::method(single).map(str::to_owned)
                }
                _ => None,
            };
            // On the legacy transport the answers come back on the session's stream.
            let target = uri.path_and_query().map_or("", |pq| pq.as_str());
            self.legacy.note_requests(
                scope.orig_dst,
                target,
                messages
                    .iter()
                    .filter(|m| jsonrpc::kind(m) == Kind::Request)
                    .filter_map(|m| Some((m.get("id")?, jsonrpc::method(m)?))),
            );
            // A body of notifications/responses only has no decision: mask by default.
            let any_request = messages.iter().any(|m| jsonrpc::kind(m) == Kind::Request);
            return Inbound::Forward {
                method,
                masked: masked || !any_request,
                rows: request_rows,
            };
        }
        // 2026-07-28 results carry a resultType; earlier eras have none.
        let modern = header_str(headers, "mcp-protocol-version").is_some_and(|v| v >= "2026-07-28");
        let answers = denial_answers(&body, &refusals, modern);
        // Legacy HTTP+SSE: answers belong on the session's stream; the POST gets 202.
        let target = uri.path_and_query().map_or("", |pq| pq.as_str());
        let on_stream = jsonrpc::messages(&answers)
            .iter()
            .all(|answer| self.legacy.inject(scope.orig_dst, target, answer));
        let (response, status) = if on_stream && !answers.is_null() {
            let mut accepted = Response::new(body::empty());
            *accepted.status_mut() = StatusCode::ACCEPTED;
            (accepted, 202)
        } else {
            (json_response(StatusCode::OK, &answers), 200)
        };
        if audited {
            request_rows.extend(audit_rows::gateway_rows(rows, &answers, &body, status));
        }
        Inbound::Respond(response, request_rows)
    }

    async fn filter_response(
        &self,
        response: Response<Incoming>,
        request_method: Option<String>,
        masked: bool,
        scope: Arc<Scope>,
        rows: RowContext,
    ) -> Response<ProxyBody> {
        let content_type = header_str(response.headers(), header::CONTENT_TYPE.as_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        let encoding = header_str(response.headers(), header::CONTENT_ENCODING.as_str())
            .map(str::to_ascii_lowercase)
            .filter(|e| e != "identity");
        let status = response.status().as_u16();
        let (mut parts, incoming) = response.into_parts();
        if content_type.starts_with("text/event-stream") {
            // Compressed streams are decoded on the fly and forwarded plain.
            let decoder = match encoding.as_deref() {
                None => None,
                Some(encoding) => match body::StreamDecoder::new(encoding) {
                    Some(decoder) => {
                        parts.headers.remove(header::CONTENT_ENCODING);
                        Some(decoder)
                    }
                    None => {
                        warn!(%encoding, "SSE response in an encoding the gateway does not decode; withheld");
                        return rpc_error(
                            StatusCode::BAD_GATEWAY,
                            &Value::Null,
                            codes::UPSTREAM,
                            &format!(
                                "gateway: cannot inspect an SSE stream with Content-Encoding {encoding}"
                            ),
                        );
                    }
                },
            };
            parts.headers.remove(header::CONTENT_LENGTH);
            let filter = self.message_filter(request_method, masked, scope, rows);
            let legacy = LegacyRegistry {
                sessions: Arc::clone(&self.legacy),
                server: filter.scope.orig_dst,
            };
            let body = sse_stream::filter(
                incoming,
                self.limits.max_sse_event,
                filter,
                legacy,
                decoder,
                self.recorder.sink.clone(),
            );
            return Response::from_parts(parts, body);
        }
        if !content_type.starts_with("application/json") {
            return Response::from_parts(parts, body::forward(incoming));
        }
        let bytes = match collect_limited(incoming, self.limits.max_response_body).await {
            Ok(bytes) => bytes,
            Err(err) => {
                warn!(error = %err, "upstream response unreadable; withheld");
                return rpc_error(
                    StatusCode::BAD_GATEWAY,
                    &Value::Null,
                    codes::TOO_LARGE,
                    &format!("gateway: upstream response withheld: {err}"),
                );
            }
        };
        let bytes = match encoding.as_deref() {
            None => bytes,
            Some(encoding) => match body::decode(encoding, &bytes, self.limits.max_response_body) {
                Ok(decoded) => {
                    parts.headers.remove(header::CONTENT_ENCODING);
                    decoded
                }
                Err(problem) => {
                    warn!(%encoding, %problem, "cannot decode upstream response; withheld");
                    return rpc_error(
                        StatusCode::BAD_GATEWAY,
                        &Value::Null,
                        codes::UPSTREAM,
                        &format!(
                            "gateway: cannot decode upstream response ({encoding}): {problem}"
                        ),
                    );
                }
            },
        };
        let filter = self.message_filter(request_method, masked, scope, rows);
        let applied = filter.apply(&bytes, status);
        if let Err(err) = self.recorder.commit(applied.rows).await {
            return audit_unavailable(&err, "response withheld");
        }
        let out = applied.rewritten.unwrap_or(bytes);
        parts.headers.remove(header::CONTENT_LENGTH);
        parts.headers.remove(header::TRANSFER_ENCODING);
        parts
            .headers
            .insert(header::CONTENT_LENGTH, HeaderValue::from(out.len()));
        Response::from_parts(parts, full(out))
    }

    fn message_filter(
        &self,
        request_method: Option<String>,
        masked: bool,
        scope: Arc<Scope>,
        rows: RowContext,
    ) -> MessageFilter {
        MessageFilter {
            masker: Arc::clone(if masked { &self.masker } else { &self.unmasked }),
            policy: self.policy(),
            request_method,
            scope,
            rows,
            legacy: None,
            audited: self.recorder.enabled(),
        }
    }
}

/// The traffic could not be recorded, so it stops here: the client gets a clear error.
fn audit_unavailable(err: &crate::audit::SinkError, what: &str) -> Response<ProxyBody> {
    error!(error = %err, "audit trail unavailable; {what}");
    rpc_error(
        StatusCode::SERVICE_UNAVAILABLE,
        &Value::Null,
        codes::AUDIT_UNAVAILABLE,
        &format!("gateway: audit trail unavailable ({err}); {what}"),
    )
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

/// 2026-07-28 mirrors the method and name in headers so intermediaries can route without
/// parsing bodies. A server that routes by header while we judged the body would be a
/// policy bypass, so the two must agree.
fn headers_agree(headers: &HeaderMap, body: &Value) -> Result<(), String> {
    let single = match body {
        Value::Array(_) => return Ok(()),
        single => single,
    };
    if let Some(header_method) = header_str(headers, "mcp-method")
        && Some(header_method) != jsonrpc::method(single)
    {
        return Err(format!(
            "Mcp-Method header {header_method:?} does not match the body's method"
        ));
    }
    if let Some(header_name) = header_str(headers, "mcp-name")
        && jsonrpc::method(single) == Some("tools/call")
        && Some(header_name) != jsonrpc::tool_name(single)
    {
        return Err(format!(
            "Mcp-Name header {header_name:?} does not match the called tool"
        ));
    }
    Ok(())
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

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub(super) fn json_response(status: StatusCode, value: &Value) -> Response<ProxyBody> {
    let bytes = Bytes::from(value.to_string());
    let mut response = Response::new(full(bytes.clone()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    response
}

fn rpc_error(status: StatusCode, id: &Value, code: i64, message: &str) -> Response<ProxyBody> {
    json_response(status, &jsonrpc::error_response(id, code, message))
}

/// Connects a client's and an upstream's upgraded connections (WebSocket and the like:
/// not MCP, so relayed untouched).
fn splice_upgrades(client: hyper::upgrade::OnUpgrade, upstream: hyper::upgrade::OnUpgrade) {
    tokio::spawn(async move {
        let (Ok(client), Ok(upstream)) = (client.await, upstream.await) else {
            return;
        };
        let mut client = hyper_util::rt::TokioIo::new(client);
        let mut upstream = hyper_util::rt::TokioIo::new(upstream);
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
    });
}
