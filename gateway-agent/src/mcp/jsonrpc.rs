//! JSON-RPC 2.0 messages as MCP uses them: telling requests, notifications and responses
//! apart, and reading the few fields policy needs (method, id, tool name, arguments).
//!
//! The gateway never re-serialises a client's request: requests are forwarded byte for
//! byte (the server needs them exactly). Only server→client messages are rewritten, and
//! only when masking or filtering changed something.

use serde_json::Value;

/// One JSON-RPC message (a request body may also be a batch of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Request,
    Notification,
    Response,
    Invalid,
}

pub fn kind(message: &Value) -> Kind {
    let Some(object) = message.as_object() else {
        return Kind::Invalid;
    };
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Kind::Invalid;
    }
    match (object.get("method"), object.get("id")) {
        (Some(Value::String(_)), Some(_)) => Kind::Request,
        (Some(Value::String(_)), None) => Kind::Notification,
        (None, Some(_)) if object.contains_key("result") || object.contains_key("error") => {
            Kind::Response
        }
        _ => Kind::Invalid,
    }
}

pub fn method(message: &Value) -> Option<&str> {
    message.get("method").and_then(Value::as_str)
}

/// `params.name`: the tool's name in a `tools/call` (a prompt's in `prompts/get`, which
/// approval binding keys on). It does not look at the method: callers that want a tool
/// check that the method is `tools/call` (a fuzz-found crash was a check assuming this did).
pub fn tool_name(message: &Value) -> Option<&str> {
    params(message, "name").and_then(Value::as_str)
}

/// `params.<member>`. Not `Value::pointer`, which allocates two strings per path token
/// to unescape it: this runs several times per message on the request path.
pub fn params<'a>(message: &'a Value, member: &str) -> Option<&'a Value> {
    message.get("params")?.get(member)
}

pub fn tool_arguments(message: &Value) -> Option<&Value> {
    params(message, "arguments")
}

/// The messages of a body: a single message or a batch (2025-03-26 allowed batches).
pub fn messages(body: &Value) -> Vec<&Value> {
    match body {
        Value::Array(batch) => batch.iter().collect(),
        single => vec![single],
    }
}

pub fn messages_mut(body: &mut Value) -> Vec<&mut Value> {
    match body {
        Value::Array(batch) => batch.iter_mut().collect(),
        single => vec![single],
    }
}

/// A JSON-RPC error response for `id`.
pub fn error_response(id: &Value, code: i64, message: &str) -> Value {
    serde_json::json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": { "code": code, "message": message },
    })
}

/// A tools/call result that tells the model the call was refused. MCP reports tool
/// failures in-band (`isError`) so the model sees them, rather than as protocol errors.
pub fn tool_error_result(id: &Value, text: &str) -> Value {
    serde_json::json!({
        "jsonrpc": "2.0",
        "id": id,
        "result": {
            "content": [{ "type": "text", "text": text }],
            "isError": true,
        },
    })
}

/// JSON-RPC error codes the gateway itself answers with. The gateway's own are in
/// -32000..-32019, which the 2026-07-28 revision leaves to implementations (-32020 and up
/// are allocated by the spec; the gateway uses them only with their spec meaning).
pub mod codes {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    /// A policy rule denied the request (or requires an approval that is not available).
    pub const DENIED: i64 = -32010;
    /// The request or response was too large for the gateway's limits.
    pub const TOO_LARGE: i64 = -32011;
    /// The upstream MCP server could not be reached or answered something unusable.
    pub const UPSTREAM: i64 = -32012;
    /// The audit trail could not make the record durable, so the traffic did not move on.
    pub const AUDIT_UNAVAILABLE: i64 = -32013;
    /// The caller presented no valid token (sent with HTTP 401/403).
    pub const UNAUTHORIZED: i64 = -32014;
    /// The request waits for a human's approval (or was denied or expired waiting).
    pub const APPROVAL_PENDING: i64 = -32015;
    /// Spec-defined (2026-07-28): the `Mcp-Method`/`Mcp-Name` headers disagree with the
    /// body (sent with HTTP 400).
    pub const HEADER_MISMATCH: i64 = -32020;
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn classifies_messages() {
        assert_eq!(
            kind(&json!({"jsonrpc":"2.0","id":1,"method":"tools/list"})),
            Kind::Request
        );
        assert_eq!(
            kind(&json!({"jsonrpc":"2.0","method":"notifications/initialized"})),
            Kind::Notification
        );
        assert_eq!(
            kind(&json!({"jsonrpc":"2.0","id":1,"result":{}})),
            Kind::Response
        );
        assert_eq!(
            kind(&json!({"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"x"}})),
            Kind::Response
        );
        assert_eq!(
            kind(&json!({"jsonrpc":"1.0","id":1,"method":"x"})),
            Kind::Invalid
        );
        assert_eq!(kind(&json!({"id":1})), Kind::Invalid);
        assert_eq!(kind(&json!([1])), Kind::Invalid);
    }

    #[test]
    fn reads_tool_call_fields() {
        let call = json!({"jsonrpc":"2.0","id":3,"method":"tools/call",
            "params":{"name":"echo","arguments":{"message":"hi"}}});
        assert_eq!(method(&call), Some("tools/call"));
        assert_eq!(tool_name(&call), Some("echo"));
        assert_eq!(tool_arguments(&call), Some(&json!({"message":"hi"})));
    }

    #[test]
    fn batches_and_singles() {
        let batch = json!([{"a":1},{"b":2}]);
        assert_eq!(messages(&batch).len(), 2);
        assert_eq!(messages(&json!({"a":1})).len(), 1);
    }
}
