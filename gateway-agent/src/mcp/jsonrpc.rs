//! JSON-RPC 2.0 messages as MCP uses them: telling requests, notifications and responses
//! apart, and reading the few fields policy needs (method, id, tool name, arguments).
//!
//! The gateway never re-serialises a client's request: requests are forwarded byte for
//! byte (the server needs them exactly). Only server→client messages are rewritten, and
//! only when masking or filtering changed something.

use serde_json::Value;

/// Parses a client's request body, refusing a key repeated in one object anywhere in it.
///
/// Policy judges the request as serde_json reads it (the last copy of a repeated key), and
/// the body is forwarded byte for byte; a server whose parser keeps the first copy would
/// run another tool, or the same one with other arguments, than the one policy allowed
/// (`{"name": "shell_exec", "name": "echo"}`). RFC 8259 leaves repeated names to each
/// parser, and no MCP client's encoder writes one, so an ambiguous request is refused
/// rather than judged one way and run another. The refusal is a data error
/// (`serde_json::error::Category::Data`) naming the key.
pub fn parse_request(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    use serde::de::DeserializeSeed as _;
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = Unambiguous.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// Builds a [`Value`] as serde_json does, but fails on a repeated object key.
#[derive(Clone, Copy)]
struct Unambiguous;

impl<'de> serde::de::DeserializeSeed<'de> for Unambiguous {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Unambiguous {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(self)?;
            match object.entry(key) {
                serde_json::map::Entry::Vacant(slot) => {
                    slot.insert(value);
                }
                serde_json::map::Entry::Occupied(slot) => {
                    return Err(serde::de::Error::custom(format_args!(
                        "key {:?} repeated in one object",
                        slot.key()
                    )));
                }
            }
        }
        Ok(Value::Object(object))
    }
}

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
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    #[test]
    fn a_repeated_key_anywhere_in_a_request_is_refused() {
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"shell_exec","name":"echo"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call"}"#,
            r#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"id":2,"id":3}]"#,
            r#"{"params":{"arguments":{"deep":[{"a":1,"a":2}]}}}"#,
        ] {
            let err = parse_request(body.as_bytes()).unwrap_err();
            assert_eq!(err.classify(), serde_json::error::Category::Data, "{body}");
            assert!(err.to_string().contains("repeated"), "{err}");
        }
        // The same key in different objects is no repeat; syntax errors stay syntax errors.
        assert!(parse_request(br#"{"a":{"a":{"a":1}},"b":[{"a":1},{"a":2}]}"#).is_ok());
        let err = parse_request(br#"{"a":1,}"#).unwrap_err();
        assert_eq!(err.classify(), serde_json::error::Category::Syntax);
        assert!(parse_request(br#"{"a":1} trailing"#).is_err());
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-1e300f64..1e300).prop_map(Value::from),
            "[a-z\\\"\u{e9}\u{1f600}\n]{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map("[a-z]{0,3}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Without repeated keys, the strict parse reads what serde_json reads.
        #[test]
        fn the_strict_parse_reads_what_serde_json_reads(value in json_value()) {
            let text = value.to_string();
            let strict = parse_request(text.as_bytes()).unwrap();
            prop_assert_eq!(strict, serde_json::from_str::<Value>(&text).unwrap());
        }
    }

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
