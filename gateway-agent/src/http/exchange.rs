//! One HTTP exchange through the gateway, composed in [`Pipeline::handle`] from named
//! stages in the order a reader expects:
//! 1. identity (`auth.rs`, per the server's auth mode);
//! 2. request (`request.rs`: parse JSON-RPC, header/body agreement, policy, approval hold;
//!    audit durable before forwarding);
//! 3. upstream (here: the held credential in place of the caller's token, then the send);
//! 4. response (`response.rs`: mask and hide tools in buffered JSON, streamed JSON or SSE,
//!    whatever the Content-Type says; audit durable before release).
//!
//! Fail closed: a JSON POST the gateway cannot parse, or that is not JSON-RPC, is not
//! forwarded (a lenient server might act on what policy could not see); a response the
//! gateway cannot inspect (a stream in an encoding it cannot decode, a JSON stream that
//! turns to garbage, a message over the limit) is not released;
//! traffic whose audit rows cannot be made durable does not move on.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use serde_json::Value;
use tracing::{Instrument as _, debug_span, error, warn};

use super::{
    audit_rows::{self, Recorder, RowContext},
    auth::{self, Admission},
    body::{self, ProxyBody, full},
    client_gone::Answering,
    legacy::LegacySessions,
};
use crate::{
    audit::PrincipalColumns,
    identity::Authenticator,
    mask::Masker,
    mcp::jsonrpc::{self, codes},
    policy::{PolicySet, ServerRef},
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
    /// Deadlines against peers that stall (`[http] *_timeout_ms`).
    pub timeouts: super::Timeouts,
}

/// What the gateway knows about the connection an exchange arrived on.
pub struct ConnFacts {
    pub orig_dst: SocketAddr,
    /// The local process that opened it, from the kernel.
    pub process: Option<Arc<ProcessIdentity>>,
    /// The session of rows recorded before (or without) an MCP session.
    pub conn_id: String,
    /// The configured server a TLS connection was attributed to by its SNI (its settings
    /// apply wherever the connection goes); `None`: the server at `orig_dst`.
    pub server: Option<String>,
    /// `orig_dst` as the rows write it, and the process half of their principal columns:
    /// the same for every exchange on the connection, so formatted once.
    pub server_addr: Arc<str>,
    pub process_columns: Arc<PrincipalColumns>,
}

impl ConnFacts {
    /// The facts of a connection whose own rows (`open`, `close`) are `rows`, made for
    /// `process` alone: its session, server address and principal columns are shared.
    pub fn new(
        orig_dst: SocketAddr,
        process: ProcessIdentity,
        rows: &RowContext,
        server: Option<String>,
    ) -> Self {
        Self {
            orig_dst,
            process: Some(Arc::new(process)),
            conn_id: rows.session.clone(),
            server,
            server_addr: Arc::clone(&rows.server_addr),
            process_columns: Arc::clone(&rows.principal),
        }
    }
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

    /// The key this server's tools are pinned under: its configured name, else `ip:port`.
    pub fn pin_key(&self) -> String {
        crate::pins::server_key(self.server.name.as_deref(), self.orig_dst)
    }

    /// What a secret handle issued or resolved in `session` is bound to; `None` when the
    /// caller cannot be identified (no handle is then issued, none resolved).
    pub fn handle_binding(&self, session: &str) -> Option<crate::handles::Binding> {
        Some(crate::handles::Binding {
            principal: crate::approval::binding::principal_key(&self.principal)?,
            session: session.to_owned(),
            server: self.pin_key(),
        })
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
    /// The approval workflow (`[approval]`); without it `approve` rules refuse.
    pub approvals: Option<Arc<crate::approval::Approvals>>,
    /// Pinned tool definitions (`[pins]`); `None` when disabled.
    pub pins: Option<Arc<crate::pins::Pins>>,
    /// Secret handles; `None` unless a server has `mask_mode = "handle"`.
    pub handles: Option<Arc<crate::handles::Handles>>,
}

impl Pipeline {
    pub(super) fn policy(&self) -> Arc<PolicySet> {
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

    pub async fn handle<F, Fut, E>(
        &self,
        mut request: Request<Incoming>,
        facts: &Arc<ConnFacts>,
        send: F,
    ) -> Response<ProxyBody>
    where
        F: FnOnce(Request<ProxyBody>) -> Fut,
        Fut: Future<Output = Result<Response<Incoming>, E>>,
        E: std::fmt::Display,
    {
        // Debug level: at `info` the JSON formatter renders a span's fields when it opens,
        // which was 5% of the agent's CPU per call at c=32 (`perf`). Warnings and refusals
        // still name their connection (its `conn` span: destination, peer, pid, comm), and
        // the audit row of each exchange has its session and method.
        let session = header_str(request.headers(), "mcp-session-id").map(str::to_owned);
        let span = debug_span!(
            "request",
            method = request.method().as_str(),
            path = request.uri().path(),
            session = session.as_deref().unwrap_or("")
        );
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
            if scope.principal.token.is_some() {
                rows.principal = Arc::new(PrincipalColumns::from_principal(&scope.principal));
            }
            let is_head = parts.method == http::Method::HEAD;
            let answering = Answering::new(self.recorder.sink.clone(), rows.clone());
            let forward = match self.read_request(&mut parts, incoming, &scope, &rows).await {
                Ok(forward) => forward,
                Err(answer) => {
                    answering.answered();
                    return answer;
                }
            };
            let mut answering = answering;
            answering.id = forward.id.clone();
            answering.method = forward.method.clone();
            // `return` below leaves this block: the guard is disarmed whatever the answer.
            let response = async {
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
            let sent = crate::metrics::get().timed_upstream(send(Request::from_parts(parts, forward.body)));
            let head_timeout = self.limits.timeouts.response_head;
            let mut response = match tokio::time::timeout(head_timeout, sent).await {
                Ok(Ok(response)) => response,
                Ok(Err(err)) => return self.upstream_failed(&err.to_string(), &forward.id, &rows).await,
                Err(_) => return self.upstream_timed_out(head_timeout, &forward.id, &rows).await,
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
            let gate = forward.response_gate;
            let asked = (forward.method, forward.tool);
            self.filter_response(response, asked, forward.masked, scope, rows, gate)
                .await
            }
            .await;
            answering.answered();
            response
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
            server_addr: facts.server_addr.clone(),
            // The process half: refusals before (or without) a token still say who tried.
            principal: facts.process_columns.clone(),
            started,
        }
    }

    /// The upstream could not be asked: the client gets a JSON-RPC error for its request
    /// (with its id, so an SDK can match it), and the failure is recorded.
    async fn upstream_failed(
        &self,
        err: &str,
        id: &Value,
        rows: &RowContext,
    ) -> Response<ProxyBody> {
        warn!(error = %err, "upstream request failed");
        let message = format!("gateway: upstream MCP server failed: {err}");
        let answer = jsonrpc::error_response(id, codes::UPSTREAM, &message);
        let gateway_rows = audit_rows::gateway_rows(rows, &answer, &Value::Null, 502);
        if let Err(err) = self.recorder.commit(gateway_rows).await {
            error!(error = %err, "audit trail unavailable; upstream failure not recorded");
        }
        json_response(StatusCode::BAD_GATEWAY, &answer)
    }
}

impl Pipeline {
    /// The upstream did not start its answer within `[http] response_head_timeout_ms`:
    /// the client gets a JSON-RPC error for its request, the failure is recorded, and the
    /// connection is closed (its upstream may still answer later, out of step).
    async fn upstream_timed_out(
        &self,
        timeout: std::time::Duration,
        id: &Value,
        rows: &RowContext,
    ) -> Response<ProxyBody> {
        let timeout_ms = timeout.as_millis() as u64;
        warn!(
            timeout_ms,
            "upstream sent no response head in time; request abandoned"
        );
        let message = format!("gateway: upstream MCP server did not answer within {timeout_ms} ms");
        let answer = jsonrpc::error_response(id, codes::UPSTREAM, &message);
        let gateway_rows = audit_rows::gateway_rows(rows, &answer, &Value::Null, 504);
        if let Err(err) = self.recorder.commit(gateway_rows).await {
            error!(error = %err, "audit trail unavailable; upstream timeout not recorded");
        }
        let mut response = json_response(StatusCode::GATEWAY_TIMEOUT, &answer);
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        response
    }
}

/// The traffic could not be recorded, so it stops here: the client gets a clear error.
pub(super) fn audit_unavailable(err: &crate::audit::SinkError, what: &str) -> Response<ProxyBody> {
    error!(error = %err, "audit trail unavailable; {what}");
    rpc_error(
        StatusCode::SERVICE_UNAVAILABLE,
        &Value::Null,
        codes::AUDIT_UNAVAILABLE,
        &format!("gateway: audit trail unavailable ({err}); {what}"),
    )
}

pub(super) fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
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

pub(super) fn rpc_error(
    status: StatusCode,
    id: &Value,
    code: i64,
    message: &str,
) -> Response<ProxyBody> {
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
