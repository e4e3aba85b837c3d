//! The exchange's side of the response-side hold (`approval::response_hold`): which
//! requests' answers may be held, the retry answered from a kept answer, and the payload
//! held when the masker found too many secrets in it. Kept apart so the request and
//! response stages only call in.

use std::sync::Arc;

use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::Value;

use super::{
    audit_rows::{self, RowContext},
    body::ProxyBody,
    exchange::{Pipeline, Scope, audit_unavailable, header_str, json_response},
    message_filter::MessageFilter,
};
use crate::{
    approval::{self, Approvals, ResponseHeld},
    audit::AuditRecord,
};

/// A request whose answer is held when it carries more than `threshold` secrets.
pub(super) struct ResponseGate {
    approvals: Arc<Approvals>,
    /// The request, as an approval names it (`rule`: the rule that allowed it; its
    /// masked arguments are only worked out when an answer is actually held).
    call: approval::Call,
    masker: Arc<crate::mask::Masker>,
    threshold: usize,
}

impl Pipeline {
    /// The gate for `message`, a single request policy allowed under `rule`, when
    /// responses to it may be held.
    pub(super) fn response_gate(
        &self,
        message: &Value,
        rule: Option<&str>,
        headers: &http::HeaderMap,
        scope: &Scope,
        rows: &RowContext,
    ) -> Option<Box<ResponseGate>> {
        let approvals = self.approvals.as_ref()?;
        let threshold = approvals.response_threshold(rule)?;
        let policy = self.policy();
        let call = approval::Call {
            message: message.clone(),
            principal: scope.principal.clone(),
            server_addr: scope.orig_dst,
            rule: rule.unwrap_or("default").to_owned(),
            reason: format!("the response carried more than {threshold} masked secrets"),
            policy_version: policy.version().to_owned(),
            origin: approval::Origin {
                session: rows.session.clone(),
                transport: rows.transport.to_owned(),
                protocol_version: rows.protocol_version.clone(),
                server_name: rows.server_name.clone(),
                request_id: message.get("id").map(Value::to_string),
            },
            modern: header_str(headers, "mcp-protocol-version").is_some_and(|v| v >= "2026-07-28"),
            masked_arguments: Value::Null,
        };
        Some(Box::new(ResponseGate {
            approvals: Arc::clone(approvals),
            call,
            masker: Arc::clone(&self.masker),
            threshold,
        }))
    }

    /// A retry of a call whose answer is held: answered from the kept answer (after
    /// another hold while pending), so the tool does not run again. `None`: forward it.
    pub(super) async fn kept_answer(
        &self,
        gate: &ResponseGate,
        rows: &RowContext,
    ) -> Option<Response<ProxyBody>> {
        let held = gate.approvals.kept_response(&gate.call).await?;
        let (body, answer_rows) = delivered(held, gate, rows, self.recorder.enabled());
        if let Err(err) = self.recorder.commit(answer_rows).await {
            return Some(audit_unavailable(&err, "held response not released"));
        }
        let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        Some(json_response(StatusCode::OK, &value))
    }
}

/// The payload to deliver for one server message in which `masked` secrets were masked,
/// and the rows of the gateway's own answer when it replaces the payload. Under the
/// threshold (or without a gate) the payload passes as it is.
pub(super) async fn gate_payload(
    filter: &MessageFilter,
    masked: usize,
    payload: Bytes,
) -> (Bytes, Vec<AuditRecord>) {
    let Some(gate) = &filter.response_gate else {
        return (payload, Vec::new());
    };
    if masked <= gate.threshold {
        return (payload, Vec::new());
    }
    let mut call = gate.call.clone();
    call.masked_arguments = approval::hold::masked_arguments(&call.message, &gate.masker);
    match gate.approvals.hold_response(call, payload, masked).await {
        // The server's rows already hold what is released.
        ResponseHeld::Release(body) => (body, Vec::new()),
        held => delivered(held, gate, &filter.rows, filter.audited),
    }
}

fn delivered(
    held: ResponseHeld,
    gate: &ResponseGate,
    rows: &RowContext,
    audited: bool,
) -> (Bytes, Vec<AuditRecord>) {
    match held {
        ResponseHeld::Release(body) => {
            let answer_rows = if audited {
                let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                audit_rows::gateway_rows(rows, &value, &gate.call.message, 200)
            } else {
                Vec::new()
            };
            (body, answer_rows)
        }
        ResponseHeld::Answer(answer) => {
            let answer_rows = if audited {
                audit_rows::gateway_rows(rows, &answer, &gate.call.message, 200)
            } else {
                Vec::new()
            };
            (Bytes::from(answer.to_string()), answer_rows)
        }
    }
}
