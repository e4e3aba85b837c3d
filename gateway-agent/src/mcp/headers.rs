//! The 2026-07-28 routing headers: `Mcp-Method` mirrors a request's method and
//! `Mcp-Name` its target (`params.name` of `tools/call` and `prompts/get`, `params.uri` of
//! `resources/read`), so intermediaries can route without parsing bodies. A server that
//! routed by header while the gateway judged the body would be a policy bypass, so the
//! two must agree; a disagreement is answered as the spec says servers answer it
//! (`-32020` HeaderMismatch, HTTP 400), which clients handle specifically.

use base64::Engine as _;
use serde_json::Value;

use super::jsonrpc;

/// Which `params` member `Mcp-Name` mirrors, per method.
fn named_param(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    }
}

/// Checks a single message's routing headers against its body (a batch has no single
/// method to mirror, and the 2026-07-28 revision has no batches).
pub fn agree(mcp_method: Option<&str>, mcp_name: Option<&str>, body: &Value) -> Result<(), String> {
    if body.is_array() {
        return Ok(());
    }
    let method = jsonrpc::method(body);
    if let Some(header) = mcp_method
        && Some(header) != method
    {
        return Err(format!(
            "Mcp-Method header {header:?} does not match the body's method"
        ));
    }
    let Some(param) = method.and_then(named_param) else {
        return Ok(());
    };
    let body_value = body
        .get("params")
        .and_then(|p| p.get(param))
        .and_then(Value::as_str);
    if let Some(header) = mcp_name
        && decode_header_value(header).as_deref() != body_value
    {
        return Err(format!(
            "Mcp-Name header {header:?} does not match the body's {param:?}"
        ));
    }
    Ok(())
}

/// Header values that are not plain visible ASCII travel as `=?base64?…?=` (UTF-8,
/// canonical base64). A malformed one decodes to nothing, so it matches no body value.
fn decode_header_value(value: &str) -> Option<String> {
    let Some(payload) = value
        .strip_prefix("=?base64?")
        .and_then(|rest| rest.strip_suffix("?="))
    else {
        return Some(value.to_owned());
    };
    let engine = base64::engine::general_purpose::STANDARD;
    let decoded = engine.decode(payload).ok()?;
    // Only the canonical encoding: a value with other padding bits is not the one a
    // client wrote.
    if engine.encode(&decoded) != payload {
        return None;
    }
    String::from_utf8(decoded).ok()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn method_and_name_must_mirror_the_body() {
        let call = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}});
        assert!(agree(Some("tools/call"), Some("echo"), &call).is_ok());
        assert!(agree(None, None, &call).is_ok());
        assert!(agree(Some("tools/list"), None, &call).is_err());
        assert!(agree(Some("tools/call"), Some("shell_exec"), &call).is_err());
        let read =
            json!({"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"file:///a"}});
        assert!(agree(Some("resources/read"), Some("file:///a"), &read).is_ok());
        assert!(agree(Some("resources/read"), Some("file:///etc/passwd"), &read).is_err());
        let prompt = json!({"jsonrpc":"2.0","id":3,"method":"prompts/get","params":{"name":"p"}});
        assert!(agree(Some("prompts/get"), Some("q"), &prompt).is_err());
        // Methods without a mirrored name ignore Mcp-Name.
        let list = json!({"jsonrpc":"2.0","id":4,"method":"tools/list"});
        assert!(agree(Some("tools/list"), Some("anything"), &list).is_ok());
    }

    #[test]
    fn base64_names_are_decoded_and_must_be_canonical() {
        let call = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"café"}});
        assert!(agree(Some("tools/call"), Some("=?base64?Y2Fmw6k=?="), &call).is_ok());
        assert!(agree(Some("tools/call"), Some("=?base64?Y2Fmw6l=?="), &call).is_err());
        assert!(agree(Some("tools/call"), Some("=?base64?!!?="), &call).is_err());
    }
}
