//! The response stage of an exchange: what the server answered, inspected before the
//! client sees it. Every body the gateway forwards on an MCP exchange either goes through
//! the message filter (credential echoes and secrets masked, denied tools hidden, one audit
//! row per message, durable before release) or is recorded as not MCP and forwarded.
//!
//! What a body is comes from its Content-Type when that names an MCP framing, and from its
//! first bytes otherwise (a server may answer JSON-RPC as `text/plain`, or with no type):
//! - SSE (`text/event-stream`, or a body starting with an SSE field): event by event.
//! - JSON (`application/json`, or a body starting with `{`/`[`) with a Content-Length: one
//!   complete body, read whole (bounded) and filtered as one.
//! - JSON without a Content-Length (chunked, or until the connection closes): value by value
//!   as each completes, so a stream that never ends (`subscriptions/listen`) is not withheld.
//! - anything else (an HTML error page, a download): one row saying it is not MCP, then the
//!   bytes untouched. A body of only whitespace carries nothing and gets no row.
//!
//! Fail closed: a body the gateway cannot inspect (an encoding it cannot decode, a message
//! over the limit, a JSON stream that turns to garbage) is not released; only a body whose
//! type says it is binary may pass undecoded, recorded as not MCP.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::{HeaderValue, Response, StatusCode, header, response::Parts};
use hyper::body::Incoming;
use serde::de::IgnoredAny;
use serde_json::Value;
use tracing::warn;

use super::{
    audit_rows::{self, RowContext},
    body::{self, ProxyBody, StreamDecoder, collect_limited, full},
    exchange::{Pipeline, Scope, audit_unavailable, header_str, rpc_error},
    held_response::{ResponseGate, gate_payload},
    json_stream,
    message_filter::MessageFilter,
    offload,
    sniff::{self, Sniffed},
    sse_stream::{self, LegacyRegistry},
    stream_pump::{self, Source},
    timeouts::Wait,
};
use crate::mcp::jsonrpc::codes;

/// What the Content-Type says about a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Declared {
    Sse,
    Json,
    /// Media that never carries JSON-RPC text; still sniffed, but may pass undecoded.
    Binary,
    /// Anything else, or no type at all: the body's first bytes decide.
    Unknown,
}

impl Declared {
    fn of(content_type: &str) -> Self {
        const BINARY: [&str; 8] = [
            "image/",
            "audio/",
            "video/",
            "font/",
            "application/octet-stream",
            "application/zip",
            "application/gzip",
            "application/pdf",
        ];
        if content_type.starts_with("text/event-stream") {
            Self::Sse
        } else if content_type.starts_with("application/json") {
            Self::Json
        } else if BINARY.iter().any(|prefix| content_type.starts_with(prefix)) {
            Self::Binary
        } else {
            Self::Unknown
        }
    }
}

impl Pipeline {
    pub(super) async fn filter_response(
        &self,
        response: Response<Incoming>,
        (request_method, request_tool): (Option<String>, Option<String>),
        masked: bool,
        scope: Arc<Scope>,
        rows: RowContext,
        response_gate: Option<Box<ResponseGate>>,
    ) -> Response<ProxyBody> {
        let content_type = header_str(response.headers(), header::CONTENT_TYPE.as_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        let encoding = header_str(response.headers(), header::CONTENT_ENCODING.as_str())
            .map(str::to_ascii_lowercase)
            .filter(|e| e != "identity");
        let status = response.status().as_u16();
        let (mut parts, incoming) = response.into_parts();
        let declared = Declared::of(&content_type);
        let sized = parts.headers.contains_key(header::CONTENT_LENGTH);
        let mut filter = self.message_filter(request_method, masked, scope, rows);
        filter.request_tool = request_tool;
        filter.response_gate = response_gate;
        if declared == Declared::Json && sized {
            return self
                .buffered_json(parts, incoming, encoding.as_deref(), filter, status)
                .await;
        }
        let decoder = match encoding.as_deref() {
            None => None,
            Some(encoding) => match StreamDecoder::new(encoding, self.limits.max_response_body) {
                // Decoded on the fly and forwarded plain.
                Some(decoder) => {
                    parts.headers.remove(header::CONTENT_ENCODING);
                    parts.headers.remove(header::CONTENT_LENGTH);
                    Some(decoder)
                }
                None if declared == Declared::Binary => {
                    let source = Source::new(incoming, None);
                    return self
                        .not_mcp(parts, source, &filter, status, &content_type)
                        .await;
                }
                None => {
                    warn!(%encoding, "response in an encoding the gateway does not decode; withheld");
                    return rpc_error(
                        StatusCode::BAD_GATEWAY,
                        &Value::Null,
                        codes::UPSTREAM,
                        &format!(
                            "gateway: cannot inspect a response with Content-Encoding {encoding}"
                        ),
                    );
                }
            },
        };
        let mut source = Source::new(incoming, decoder);
        let sniffed = match declared {
            Declared::Sse => Sniffed::Sse,
            Declared::Json => Sniffed::Json,
            Declared::Binary | Declared::Unknown => {
                match sniff::read_head(&mut source, self.limits.max_response_body).await {
                    Ok(sniffed) => sniffed,
                    Err(err) => return withheld(&err.to_string()),
                }
            }
        };
        match sniffed {
            Sniffed::Sse => {
                parts.headers.remove(header::CONTENT_LENGTH);
                let legacy = LegacyRegistry {
                    sessions: Arc::clone(&self.legacy),
                    server: filter.scope.orig_dst,
                };
                let max_event = self.limits.max_sse_event;
                let audit = self.recorder.sink.clone();
                let mut body = sse_stream::filter(source, max_event, filter, legacy, audit);
                body.prime().await;
                Response::from_parts(parts, body.boxed())
            }
            Sniffed::Json if parts.headers.contains_key(header::CONTENT_LENGTH) => {
                self.buffered_sniffed(parts, source, filter, status, &content_type)
                    .await
            }
            Sniffed::Json => {
                let limit = self.limits.max_response_body;
                let audit = self.recorder.sink.clone();
                let mut body = json_stream::filter(source, limit, status, filter, audit);
                body.prime().await;
                Response::from_parts(parts, body.boxed())
            }
            Sniffed::Empty => Response::from_parts(parts, pass_through(source)),
            Sniffed::Other => {
                self.not_mcp(parts, source, &filter, status, &content_type)
                    .await
            }
        }
    }

    /// A complete `application/json` body: read whole (bounded), decoded, filtered as one.
    async fn buffered_json(
        &self,
        mut parts: Parts,
        incoming: Incoming,
        encoding: Option<&str>,
        filter: MessageFilter,
        status: u16,
    ) -> Response<ProxyBody> {
        let idle = Wait::Idle(self.limits.timeouts.response_body_idle);
        let bytes = match collect_limited(incoming, self.limits.max_response_body, idle).await {
            Ok(bytes) => bytes,
            Err(err) => return withheld(&err.to_string()),
        };
        let bytes = match encoding {
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
        self.release_whole(parts, bytes, filter, status).await
    }

    /// A complete body under another type that starts like JSON: filtered as JSON if it
    /// is JSON, else recorded as not MCP; forwarded either way.
    async fn buffered_sniffed(
        &self,
        parts: Parts,
        mut source: Source,
        filter: MessageFilter,
        status: u16,
        content_type: &str,
    ) -> Response<ProxyBody> {
        let limit = self.limits.max_response_body;
        let mut bytes = BytesMut::new();
        while let Some(chunk) = source.next().await {
            match chunk {
                Ok(chunk) if bytes.len() + chunk.len() <= limit => bytes.extend_from_slice(&chunk),
                Ok(_) => return withheld(&format!("body larger than {limit} bytes")),
                Err(err) => return withheld(&format!("reading body: {err}")),
            }
        }
        let bytes = bytes.freeze();
        if serde_json::from_slice::<IgnoredAny>(&bytes).is_ok() {
            return self.release_whole(parts, bytes, filter, status).await;
        }
        let row = self.non_mcp_row(&parts, &filter, status, content_type);
        if let Err(err) = self.recorder.commit(row).await {
            return audit_unavailable(&err, "response withheld");
        }
        with_length(parts, bytes)
    }

    /// Filters a whole body, makes its rows durable, then releases it with its new length.
    async fn release_whole(
        &self,
        parts: Parts,
        bytes: Bytes,
        filter: MessageFilter,
        status: u16,
    ) -> Response<ProxyBody> {
        let filter = Arc::new(filter);
        let (bytes, applied) = offload::apply(&filter, bytes, status, None).await;
        if let Err(err) = self.recorder.commit(applied.rows).await {
            return audit_unavailable(&err, "response withheld");
        }
        let out = applied.rewritten.unwrap_or(bytes);
        let (out, answer_rows) = gate_payload(&filter, applied.masked, out).await;
        if let Err(err) = self.recorder.commit(answer_rows).await {
            return audit_unavailable(&err, "response withheld");
        }
        with_length(parts, out)
    }

    /// A body that carries no MCP message: recorded as such, then forwarded untouched.
    async fn not_mcp(
        &self,
        parts: Parts,
        source: Source,
        filter: &MessageFilter,
        status: u16,
        content_type: &str,
    ) -> Response<ProxyBody> {
        let row = self.non_mcp_row(&parts, filter, status, content_type);
        if let Err(err) = self.recorder.commit(row).await {
            return audit_unavailable(&err, "response withheld");
        }
        Response::from_parts(parts, pass_through(source))
    }

    fn non_mcp_row(
        &self,
        parts: &Parts,
        filter: &MessageFilter,
        status: u16,
        content_type: &str,
    ) -> Vec<crate::audit::AuditRecord> {
        if !self.recorder.enabled() {
            return Vec::new();
        }
        let length = header_str(&parts.headers, header::CONTENT_LENGTH.as_str())
            .and_then(|v| v.parse().ok());
        let method = filter.request_method.as_deref();
        vec![audit_rows::non_mcp_row(
            &filter.rows,
            method,
            status,
            content_type,
            length,
        )]
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
            request_tool: None,
            scope,
            rows,
            legacy: None,
            audited: self.recorder.enabled(),
            response_gate: None,
            pins: self.pins.clone(),
            handles: self.handles.clone(),
        }
    }
}

/// The rest of `source` to the client as it comes.
fn pass_through(source: Source) -> ProxyBody {
    stream_pump::driven(None, move |downstream| {
        stream_pump::pass_through(source, downstream)
    })
}

fn with_length(mut parts: Parts, bytes: Bytes) -> Response<ProxyBody> {
    parts.headers.remove(header::TRANSFER_ENCODING);
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    Response::from_parts(parts, full(bytes))
}

/// The upstream's answer could not be read within the limits: the client gets an error.
fn withheld(problem: &str) -> Response<ProxyBody> {
    warn!(%problem, "upstream response unreadable; withheld");
    rpc_error(
        StatusCode::BAD_GATEWAY,
        &Value::Null,
        codes::TOO_LARGE,
        &format!("gateway: upstream response withheld: {problem}"),
    )
}
