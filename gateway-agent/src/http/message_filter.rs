//! What happens to each server→client payload (a JSON body, or one SSE event's data)
//! before the caller sees it: held-credential echoes masked, tools policy denies hidden,
//! secrets masked, and the audit rows for what the caller will get.

use std::{borrow::Cow, cell::OnceCell, net::SocketAddr, sync::Arc};

use bytes::Bytes;
use serde_json::Value;
use tracing::info;

use super::{
    audit_rows::{self, RowContext},
    exchange::Scope,
    legacy::LegacySessions,
};
use crate::{
    audit::AuditRecord,
    mask::{Doc, MAX_DEPTH, MaskReport, Masker},
    mcp::{
        filter::{Filtered, filter_server_body, filter_server_doc},
        jsonrpc::{self, Kind},
    },
    policy::PolicySet,
};

/// Owned, so a streaming task can carry it; the exchange's scope is shared, not copied.
pub struct MessageFilter {
    pub(super) masker: Arc<Masker>,
    pub(super) policy: Arc<PolicySet>,
    pub(super) request_method: Option<String>,
    /// The tool of that request, when it is a `tools/call`: the answer's row names it.
    pub(super) request_tool: Option<String>,
    pub(super) scope: Arc<Scope>,
    /// The rows' context: a stream that turns out to be a legacy session moves its rows to
    /// that session.
    pub(super) rows: RowContext,
    /// On a legacy HTTP+SSE stream: where to find which request a response answers.
    pub(super) legacy: Option<(Arc<LegacySessions>, SocketAddr, String)>,
    /// Whether to build audit rows at all (`[audit] enabled`).
    pub(super) audited: bool,
    /// Set when an answer with too many secrets is held for approval (`held_response`).
    pub(super) response_gate: Option<Box<super::held_response::ResponseGate>>,
    /// Pinned tool definitions: tools/list results are checked against them.
    pub(super) pins: Option<Arc<crate::pins::Pins>>,
    /// Secret handles, for a server with `mask_mode = "handle"`.
    pub(super) handles: Option<Arc<crate::handles::Handles>>,
}

/// What filtering one payload produced.
pub struct Applied {
    /// The rewritten payload, or `None` when nothing had to change (the caller then
    /// forwards the original bytes untouched).
    pub rewritten: Option<Bytes>,
    /// Rows to make durable before the payload is released.
    pub rows: Vec<AuditRecord>,
    /// Secrets the masker replaced in it.
    pub masked: usize,
}

impl MessageFilter {
    /// From now on, responses are matched to their requests through this legacy session,
    /// and rows are recorded under it.
    pub fn follow_legacy_session(
        &mut self,
        sessions: Arc<LegacySessions>,
        server: SocketAddr,
        session: String,
    ) {
        self.rows.session = session.clone();
        self.rows.transport = "http_sse";
        self.legacy = Some((sessions, server, session));
    }

    /// The method (and tool) of the request `message` answers, when only the session
    /// knows it.
    fn answered_method(&self, message: &Value) -> Option<(String, Option<String>)> {
        let (sessions, server, session) = self.legacy.as_ref()?;
        if jsonrpc::kind(message) != Kind::Response {
            return None;
        }
        sessions.take_method(*server, session, message.get("id")?)
    }

    /// The legacy transport's `endpoint` event: the URL the client must post to, with
    /// the session id the server chose. It is protocol state the client needs verbatim
    /// (masking its `session_id=` broke the transport), and the same id is every row's
    /// `session` already: recorded, not masked.
    pub fn apply_endpoint(&self, payload: &[u8]) -> Applied {
        let text = String::from_utf8_lossy(payload);
        let rows = if self.audited {
            vec![audit_rows::server_text_row(
                &self.rows,
                &text,
                &MaskReport::default(),
            )]
        } else {
            Vec::new()
        };
        Applied {
            rewritten: None,
            rows,
            masked: 0,
        }
    }

    /// `masked` with its placeholders turned into secret handles, when this server's
    /// secrets are handed out as handles and the caller can be bound to them.
    fn with_handles(&self, original: &str, masked: String) -> String {
        let (Some(handles), true) = (&self.handles, self.scope.server.handles) else {
            return masked;
        };
        let Some(binding) = self.scope.handle_binding(&self.rows.session) else {
            return masked;
        };
        match handles.issue(original, &masked, &binding) {
            Some(with) => {
                info!("secret handles issued in response");
                with
            }
            None => masked,
        }
    }

    /// Checks the tools of a tools/list result against their pins (`pins/`).
    fn check_pins(&self, value: &Value, method: Option<&str>) -> Vec<crate::pins::Finding> {
        let Some(pins) = &self.pins else {
            return Vec::new();
        };
        let (tools, more) = crate::pins::listed_tools(value, method);
        if tools.is_empty() {
            return Vec::new();
        }
        pins.observe(&self.scope.pin_key(), &tools, more)
    }

    /// Filters one payload; `status` is the HTTP status it arrived with (for the rows).
    /// `seam`: for a stream message some of whose secrets were masked already, with the
    /// previous or next message, their report (counted in this message's rows, as if found
    /// here). Large payloads go through [`super::offload::apply`] instead, off the thread.
    pub fn apply_joined(&self, payload: &[u8], status: u16, seam: Option<&MaskReport>) -> Applied {
        let text = String::from_utf8_lossy(payload);
        // A server repeating the credential it was given must not hand it to the caller.
        let echoed = self
            .scope
            .server
            .credential
            .as_ref()
            .and_then(|c| c.mask_in(&text));
        let leaked = echoed.is_some();
        let text = echoed.map_or(text, Cow::Owned);
        // Filtering reads the span tree; serde_json's value is made only for what reads
        // one (a legacy session's id lookup, a pin check of a tools/list, the rows), and
        // then once. A text serde_json might refuse goes to serde for its verdict first.
        let doc = Doc::parse(&text, MAX_DEPTH)
            .ok()
            .filter(|doc| !doc.serde_may_refuse());
        let value = OnceCell::new();
        if doc.is_none() {
            match serde_json::from_str::<Value>(&text) {
                Ok(parsed) => {
                    let _ = value.set(parsed);
                }
                // JSON serde will not hold (1e400, a lone surrogate): not inspectable,
                // refused.
                Err(problem) if super::unrepresentable::looks_like_json(&text) => {
                    let rows = self.audited.then_some(&self.rows);
                    return super::unrepresentable::refuse(&text, &problem, rows, status);
                }
                // Not JSON (the legacy transport's endpoint event, plain text): patterns
                // only.
                Err(_) => return self.apply_text(text, leaked, seam),
            }
        }
        let server = self.scope.server_ref();
        let answered = self
            .legacy
            .is_some()
            .then(|| self.answered_method(value_of(&value, &text)))
            .flatten();
        let method = (self.request_method.as_deref())
            .or(answered.as_ref().map(|(method, _)| method.as_str()));
        let tool = (self.request_tool.as_deref())
            .or(answered.as_ref().and_then(|(_, tool)| tool.as_deref()));
        // Only a tools/list result (or, on a stream, an answer of unknown method) lists
        // tools to check.
        let may_list_tools = method.is_none_or(|method| method == "tools/list");
        let findings = if self.pins.is_some() && may_list_tools {
            self.check_pins(value_of(&value, &text), method)
        } else {
            Vec::new()
        };
        let pin_hidden = crate::pins::Pins::to_hide(&findings);
        let hidden = |tool: &str| {
            pin_hidden.contains(tool)
                || self
                    .policy
                    .tool_hidden(&server, tool, &self.scope.principal)
        };
        let body = match &doc {
            Some(doc) => filter_server_doc(doc, method, &self.masker, &hidden),
            None => filter_server_body(
                &text,
                value_of(&value, &text),
                method,
                &self.masker,
                &hidden,
            ),
        };
        let mut total = body.total();
        if let Some(seam) = seam {
            total.mask.merge(seam);
        }
        log_filtered(&total);
        let rewritten = match body.rewritten {
            Some(masked) => Some(self.with_handles(&text, masked)),
            None => leaked.then(|| text.to_string()),
        };
        let rows = if self.audited {
            // Rows hold what the caller gets: the masked message.
            let masked = rewritten
                .as_deref()
                .and_then(|masked| serde_json::from_str::<Value>(masked).ok());
            let delivered = match &masked {
                Some(masked) => masked,
                None => value_of(&value, &text),
            };
            let mut reports: Vec<MaskReport> =
                body.messages.into_iter().map(|one| one.mask).collect();
            if let (Some(seam), Some(first)) = (seam, reports.first_mut()) {
                first.merge(seam);
            }
            let bytes = rewritten.as_ref().map_or(payload.len(), String::len);
            let mut rows = audit_rows::server_rows(
                &self.rows,
                delivered,
                &reports,
                (method, tool),
                status,
                bytes,
            );
            rows.extend(
                findings
                    .iter()
                    .map(|f| audit_rows::pin_row(&self.rows, f, &self.masker)),
            );
            rows
        } else {
            Vec::new()
        };
        Applied {
            rewritten: rewritten.map(Bytes::from),
            rows,
            masked: total.mask.masked,
        }
    }

    /// A payload that is not JSON (the legacy transport's endpoint event, plain text):
    /// masked by patterns only.
    fn apply_text(&self, text: Cow<'_, str>, leaked: bool, seam: Option<&MaskReport>) -> Applied {
        let (masked, mut report) = self.masker.mask_text(&text);
        if let Some(seam) = seam {
            report.merge(seam);
        }
        log_filtered(&Filtered {
            mask: report.clone(),
            hidden_tools: Vec::new(),
        });
        let rows = if self.audited {
            vec![audit_rows::server_text_row(&self.rows, &masked, &report)]
        } else {
            Vec::new()
        };
        let rewritten = match masked {
            Cow::Owned(masked) => Some(Bytes::from(masked)),
            Cow::Borrowed(text) => leaked.then(|| Bytes::from(text.to_owned())),
        };
        Applied {
            rewritten,
            rows,
            masked: report.masked,
        }
    }
}

/// The payload's parsed value, made on first use. `text` is one serde_json takes (the
/// span tree did not flag it: see `Doc::serde_may_refuse`); should it ever refuse, the
/// readers get `null` (no tools listed, a row without content) rather than a panic.
fn value_of<'v>(value: &'v OnceCell<Value>, text: &str) -> &'v Value {
    value.get_or_init(|| serde_json::from_str(text).unwrap_or(Value::Null))
}

fn log_filtered(filtered: &Filtered) {
    crate::metrics::get().masked(&filtered.mask);
    if filtered.mask.masked > 0 {
        info!(masked = filtered.mask.masked, rules = ?filtered.mask.rule_names(), "masked secrets in response");
    }
    if !filtered.hidden_tools.is_empty() {
        info!(hidden = ?filtered.hidden_tools, "hid tools denied by policy from tools/list");
    }
}
