//! Server payloads that look like JSON but that serde_json will not hold: a number beyond
//! f64 (`1e400`) or a lone surrogate escape (`"\uD800"`). Both are valid RFC 8259 text,
//! and a lenient client would read them; but the pipeline's key masking, escape decoding,
//! tool hiding and pin checks all work on the parsed value, so such a payload cannot be
//! inspected. Falling back to text patterns would let `"apiKey": "…"` or `\u0041KIA…`
//! through unmasked, and a `tools/list` through unfiltered; so the payload is replaced by
//! a JSON-RPC error for the same id, and the refusal is logged and audited.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;
use tracing::warn;

use super::{audit_rows, message_filter::Applied};
use crate::mcp::jsonrpc::{self, codes};

/// Does `text` start (after whitespace) like a JSON object or array? Plain text (the
/// legacy transport's endpoint event, a log line) is masked by patterns instead.
pub(super) fn looks_like_json(text: &str) -> bool {
    matches!(text.trim_start().as_bytes().first(), Some(b'{' | b'['))
}

/// Only the `id` member: serde skips the other members without checking number ranges
/// or surrogates, so the refusal can still answer the request the client is waiting on.
#[derive(Deserialize)]
struct IdOnly {
    id: Option<Value>,
}

/// The id of the message in `text`, when it is a single object whose id parses.
fn message_id(text: &str) -> Value {
    if !text.trim_start().starts_with('{') {
        // A batch (serde would read an array as the struct's fields in order).
        return Value::Null;
    }
    serde_json::from_str::<IdOnly>(text)
        .ok()
        .and_then(|m| m.id)
        // JSON-RPC ids are strings or numbers.
        .filter(|id| id.is_string() || id.is_number())
        .unwrap_or(Value::Null)
}

/// Replaces an uninspectable payload with a gateway error for its id; `problem` is what
/// serde said, `rows` the exchange's row context (`None` when auditing is off).
pub(super) fn refuse(
    text: &str,
    problem: &serde_json::Error,
    rows: Option<&audit_rows::RowContext>,
    status: u16,
) -> Applied {
    warn!(%problem, bytes = text.len(), "upstream message withheld: not representable JSON");
    let id = message_id(text);
    let answer = jsonrpc::error_response(
        &id,
        codes::UPSTREAM,
        &format!(
            "gateway: cannot inspect the upstream message ({problem}); withheld because \
             secrets in it could not be masked"
        ),
    );
    let rows = rows.map_or_else(Vec::new, |ctx| {
        audit_rows::gateway_rows(ctx, &answer, &Value::Null, status)
    });
    Applied {
        rewritten: Some(Bytes::from(answer.to_string())),
        rows,
        masked: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_survives_what_serde_refuses() {
        assert_eq!(message_id(r#"{"id":7,"result":{"n":1e400}}"#), 7);
        assert_eq!(message_id(r#"{"result":{"s":"\uD800"},"id":"a"}"#), "a");
        assert_eq!(message_id(r#"[{"id":1}]"#), Value::Null);
        assert_eq!(message_id(r#"{"id":"\uD800"}"#), Value::Null);
        assert_eq!(message_id(r#"{"id":{"nested":1}}"#), Value::Null);
    }

    #[test]
    fn only_json_looking_text_is_refused() {
        assert!(looks_like_json("  {\"a\":1e400}"));
        assert!(looks_like_json("[1e400]"));
        assert!(!looks_like_json("/messages?session_id=abc"));
        assert!(!looks_like_json(""));
    }
}
