//! The audit rows an exchange produces, and the rule that they are durable before the
//! traffic they describe moves on: a request's rows before it is forwarded, a response's
//! (or an SSE event's) before the client gets it. If the trail cannot take them the
//! traffic stops there (fail closed): no secret retrieval goes unrecorded.
//!
//! Only masked text reaches a row: server→client messages are recorded after masking,
//! and a client's request parameters are masked for the record (the request itself is
//! forwarded unchanged: the server needs it exactly).

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use serde_json::Value;

use crate::{
    audit::{AuditRecord, AuditSink, Direction, Kind, PrincipalColumns, SinkError},
    mask::{MaskReport, Masker},
    mcp::jsonrpc,
};

/// Where rows go; `None` when `[audit] enabled = false`.
pub struct Recorder {
    pub sink: Option<AuditSink>,
    /// Masks what clients send, for the record only.
    pub masker: std::sync::Arc<Masker>,
}

impl Recorder {
    /// Makes `rows` durable (per `[audit] durability`); an error means the traffic they
    /// describe must not move on.
    pub async fn commit(&self, rows: Vec<AuditRecord>) -> Result<(), SinkError> {
        match &self.sink {
            Some(sink) if !rows.is_empty() => sink.record(rows).await,
            _ => Ok(()),
        }
    }

    /// Records a row that gates nothing (connection lifecycle): a trail that cannot take
    /// it is logged, and the requests on the connection are what fail closed. The row is
    /// made only when there is a trail to take it: with auditing off, building and
    /// dropping a connection's rows was 1.4% of the agent's CPU per new connection.
    pub async fn note(&self, row: impl FnOnce() -> AuditRecord) {
        if self.sink.is_none() {
            return;
        }
        if let Err(err) = self.commit(vec![row()]).await {
            tracing::error!(error = %err, "audit trail unavailable; connection event not recorded");
        }
    }

    /// Records a connection's `open` row without a flush of its own: the connection's
    /// first request row is committed after it and its flush makes both durable before
    /// that request moves on (see [`AuditSink::enqueue`]). Only for connections whose
    /// traffic is all gated by later rows (HTTP served by the pipeline).
    pub async fn note_ahead(&self, row: impl FnOnce() -> AuditRecord) {
        if let Some(sink) = &self.sink
            && let Err(err) = sink.enqueue(vec![row()]).await
        {
            tracing::error!(error = %err, "audit trail unavailable; connection event not recorded");
        }
    }

    pub fn enabled(&self) -> bool {
        self.sink.is_some()
    }
}

/// A process-unique id for a connection: the session of rows that have no MCP session.
pub fn connection_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    // The start time, asked once.
    static START: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let start = START.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    });
    format!(
        "conn-{start:x}-{}-{}",
        crate::process::own_pid(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// What every row of one exchange shares.
#[derive(Clone)]
pub struct RowContext {
    /// The MCP session (`Mcp-Session-Id`, or the legacy transport's session id), else the
    /// connection id.
    pub session: String,
    /// `streamable_http` or `http_sse` (the deprecated transport).
    pub transport: &'static str,
    pub protocol_version: Option<String>,
    pub server_name: Option<String>,
    pub server_addr: Arc<str>,
    /// Shared with the connection (and replaced for a request whose token adds claims):
    /// copied into a row only when a row is made.
    pub principal: Arc<PrincipalColumns>,
    pub started: Instant,
}

impl RowContext {
    fn row(&self, direction: Direction, kind: Kind) -> AuditRecord {
        let mut row = AuditRecord::new(self.session.clone(), direction, kind);
        row.transport = self.transport.to_owned();
        row.protocol_version = self.protocol_version.clone();
        row.server_name = self.server_name.clone();
        row.server_addr = self.server_addr.to_string();
        row.principal = PrincipalColumns::clone(&self.principal);
        row
    }

    fn elapsed_us(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// A connection opened or closed.
    pub fn connection(&self, event: &str) -> AuditRecord {
        self.connection_with(event, serde_json::Map::new())
    }

    /// A connection event with more facts in its payload (a TLS connection's SNI, ALPN and
    /// mode), next to `event`.
    pub fn connection_with(
        &self,
        event: &str,
        mut detail: serde_json::Map<String, Value>,
    ) -> AuditRecord {
        let mut row = self.row(Direction::Gateway, Kind::Connection);
        detail.insert("event".to_owned(), Value::from(event));
        row.payload = Some(Value::Object(detail).to_string());
        if event == "close" {
            row.latency_us = Some(self.elapsed_us());
        }
        row
    }
}

/// One policy decision on one client message.
pub struct Verdict {
    /// `allow`, `deny` or `approve`; `None` for messages policy does not judge
    /// (notifications, responses to the server).
    pub decision: Option<&'static str>,
    pub rule: Option<String>,
}

/// Rows for a client's body (one message or a batch), in order, with their verdicts.
pub fn client_rows(
    ctx: &RowContext,
    body: &Value,
    verdicts: &[Verdict],
    masker: &Masker,
) -> Vec<AuditRecord> {
    jsonrpc::messages(body)
        .into_iter()
        .zip(verdicts)
        .map(|(message, verdict)| {
            let mut row = message_row(ctx, Direction::ClientToServer, message, None);
            let (payload, report) = masked_payload(message, masker);
            row.payload = payload;
            apply_report(&mut row, &report);
            row.decision = verdict.decision.map(str::to_owned);
            row.rules = verdict.rule.iter().cloned().collect();
            row
        })
        .collect()
}

/// Rows for what the gateway answered in the server's place (refusals); `requests` is
/// the client's body, whose requests name the method and tool each answer is for.
pub fn gateway_rows(
    ctx: &RowContext,
    answers: &Value,
    requests: &Value,
    status: u16,
) -> Vec<AuditRecord> {
    let asked = jsonrpc::messages(requests);
    jsonrpc::messages(answers)
        .into_iter()
        .filter(|m| !m.is_null())
        .map(|message| {
            let request = asked
                .iter()
                .find(|r| r.get("id").is_some() && r.get("id") == message.get("id"));
            let mut row = message_row(
                ctx,
                Direction::Gateway,
                message,
                request.and_then(|r| jsonrpc::method(r)),
            );
            row.tool = request
                .filter(|r| jsonrpc::method(r) == Some("tools/call"))
                .and_then(|r| jsonrpc::tool_name(r))
                .map(str::to_owned);
            row.status = Some(i32::from(status));
            row.latency_us = Some(ctx.elapsed_us());
            row.payload = payload_of(message);
            row
        })
        .collect()
}

/// A request the gateway refused before reading it as JSON-RPC (unparseable, too large,
/// unauthenticated): one decision row saying why.
pub fn refusal_row(ctx: &RowContext, status: u16, code: Option<i64>, reason: &str) -> AuditRecord {
    let mut row = ctx.row(Direction::Gateway, Kind::Decision);
    row.status = Some(i32::from(status));
    row.error_code = code;
    row.decision = Some("deny".to_owned());
    row.payload = Some(serde_json::json!({ "reason": reason }).to_string());
    row.latency_us = Some(ctx.elapsed_us());
    row
}

/// Rows for a server's body after filtering: `value` is what the client will get,
/// `reports` the masking per message (body order).
pub fn server_rows(
    ctx: &RowContext,
    value: &Value,
    reports: &[MaskReport],
    (request_method, request_tool): (Option<&str>, Option<&str>),
    status: u16,
    bytes: usize,
) -> Vec<AuditRecord> {
    let messages = jsonrpc::messages(value);
    let count = messages.len().max(1);
    messages
        .into_iter()
        .enumerate()
        .map(|(i, message)| {
            let mut row = message_row(ctx, Direction::ServerToClient, message, request_method);
            // An answer names the tool it answers, so "which tool handed out secrets" is
            // one row, not a join back to the request.
            if row.kind == Kind::Response && row.tool.is_none() {
                row.tool = request_tool.map(str::to_owned);
            }
            row.payload = payload_of(message);
            row.status = Some(i32::from(status));
            row.latency_us = Some(ctx.elapsed_us());
            row.bytes = u64::try_from(bytes / count).unwrap_or(u64::MAX);
            if let Some(report) = reports.get(i) {
                apply_report(&mut row, report);
            }
            row
        })
        .collect()
}

/// A tool definition that differs from its pin (`pins/`): what was found, the diff and
/// what the gateway does about it. Masked like any payload (a description is not a
/// secret, but a hostile one may carry one).
pub fn pin_row(ctx: &RowContext, finding: &crate::pins::Finding, masker: &Masker) -> AuditRecord {
    let mut row = ctx.row(Direction::Gateway, Kind::Decision);
    row.method = Some("tools/list".to_owned());
    row.tool = Some(finding.tool.clone());
    row.decision = Some(finding.action.as_str().to_owned());
    row.rules = vec![finding.rule.to_owned()];
    let mut payload = serde_json::json!({ "tool_change": {
        "change": finding.change,
        "action": finding.action.as_str(),
        "reason": finding.reason,
        "detail": finding.detail,
    }});
    let report = masker.mask_value(&mut payload);
    apply_report(&mut row, &report);
    row.payload = Some(payload.to_string());
    row.latency_us = Some(ctx.elapsed_us());
    row
}

/// A server→client payload that is not JSON (the legacy `endpoint` event, plain text),
/// already masked.
pub fn server_text_row(ctx: &RowContext, text: &str, report: &MaskReport) -> AuditRecord {
    let mut row = ctx.row(Direction::ServerToClient, Kind::Notification);
    row.payload = Some(Value::String(text.to_owned()).to_string());
    row.bytes = text.len() as u64;
    row.latency_us = Some(ctx.elapsed_us());
    apply_report(&mut row, report);
    row
}

/// A server→client body that carries no MCP message (an HTML error page, a download):
/// recorded as a response to `answered_method` whose payload says what it was, since the
/// bytes themselves were forwarded uninspected.
pub fn non_mcp_row(
    ctx: &RowContext,
    answered_method: Option<&str>,
    status: u16,
    content_type: &str,
    bytes: Option<u64>,
) -> AuditRecord {
    let mut row = ctx.row(Direction::ServerToClient, Kind::Response);
    row.method = answered_method.map(str::to_owned);
    row.status = Some(i32::from(status));
    row.latency_us = Some(ctx.elapsed_us());
    row.bytes = bytes.unwrap_or(0);
    row.payload =
        Some(serde_json::json!({ "not_mcp": { "content_type": content_type } }).to_string());
    row
}

fn message_row(
    ctx: &RowContext,
    direction: Direction,
    message: &Value,
    answered_method: Option<&str>,
) -> AuditRecord {
    let kind = match jsonrpc::kind(message) {
        jsonrpc::Kind::Request => Kind::Request,
        jsonrpc::Kind::Notification => Kind::Notification,
        jsonrpc::Kind::Response => Kind::Response,
        // Recorded anyway (a server may send anything): as what it claims to be.
        jsonrpc::Kind::Invalid => Kind::Notification,
    };
    let mut row = ctx.row(direction, kind);
    row.request_id = message.get("id").map(Value::to_string);
    row.method = jsonrpc::method(message)
        .or(if kind == Kind::Response {
            answered_method
        } else {
            None
        })
        .map(str::to_owned);
    row.tool = (jsonrpc::method(message) == Some("tools/call"))
        .then(|| jsonrpc::tool_name(message))
        .flatten()
        .map(str::to_owned);
    row.error_code = message
        .get("error")
        .and_then(|e| e.get("code"))
        .and_then(Value::as_i64);
    if direction != Direction::ServerToClient {
        row.bytes = compact_len(message);
    }
    row
}

/// The length of `message` as compact JSON, counted as it is written rather than by
/// building the text.
fn compact_len(message: &Value) -> u64 {
    struct Count(u64);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len() as u64;
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a `Value` to a writer that never fails cannot fail.
    let _ = serde_json::to_writer(&mut count, message);
    count.0
}

/// What a message carries: `params` of a request or notification, `result` or `error`
/// of a response, the whole message when it is not JSON-RPC at all.
fn payload_part(message: &Value) -> Option<&Value> {
    ["params", "result", "error"]
        .into_iter()
        .find_map(|key| message.get(key))
        .or_else(|| (jsonrpc::kind(message) == jsonrpc::Kind::Invalid).then_some(message))
}

fn payload_of(message: &Value) -> Option<String> {
    payload_part(message).map(Value::to_string)
}

/// The payload of a client message with secrets masked (a client may send a key as a
/// tool argument; the record must not keep it).
fn masked_payload(message: &Value, masker: &Masker) -> (Option<String>, MaskReport) {
    let Some(part) = payload_part(message) else {
        return (None, MaskReport::default());
    };
    let mut copy = part.clone();
    let report = masker.mask_value(&mut copy);
    (Some(copy.to_string()), report)
}

fn apply_report(row: &mut AuditRecord, report: &MaskReport) {
    row.masked_count = u32::try_from(report.masked).unwrap_or(u32::MAX);
    row.mask_rules = report.rule_names().into_iter().map(str::to_owned).collect();
}

#[cfg(test)]
mod tests;
