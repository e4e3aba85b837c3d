use serde_json::json;

use super::*;
use crate::mask::MaskConfig;

fn masker() -> Masker {
    Masker::new(&MaskConfig::default()).unwrap()
}

fn hide_shell(tool: &str) -> bool {
    tool.starts_with("shell")
}

/// Filters `body` as the wire would carry it (compact JSON); the body becomes what the
/// client would get.
fn filter(body: &mut Value, method: Option<&str>) -> Filtered {
    let text = body.to_string();
    let filtered = filter_server_body(&text, body, method, &masker(), &hide_shell);
    if let Some(rewritten) = &filtered.rewritten {
        *body = serde_json::from_str(rewritten).expect("filtered body is JSON");
    }
    filtered.total()
}

#[test]
fn tools_list_loses_hidden_tools_by_request_method() {
    let mut body = json!({"jsonrpc":"2.0","id":1,"result":{"tools":[
        {"name":"echo","inputSchema":{}},{"name":"shell_exec","inputSchema":{}}]}});
    let filtered = filter(&mut body, Some("tools/list"));
    assert_eq!(filtered.hidden_tools, ["shell_exec"]);
    assert_eq!(
        body["result"]["tools"],
        json!([{"name":"echo","inputSchema":{}}])
    );
    assert!(filtered.changed());
}

#[test]
fn tools_list_is_recognised_by_shape_on_streams() {
    let mut body = json!({"jsonrpc":"2.0","id":"x","result":{"tools":[
        {"name":"shell","inputSchema":{"type":"object"}}]}});
    let filtered = filter(&mut body, None);
    assert_eq!(filtered.hidden_tools, ["shell"]);
    // A tool *call* result is never filtered as a list, even with a `tools` key.
    let mut call =
        json!({"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"shell","inputSchema":{}}]}});
    let filtered = filter(&mut call, Some("tools/call"));
    assert!(filtered.hidden_tools.is_empty());
}

#[test]
fn masks_results_errors_and_server_requests_but_not_envelope() {
    let secret = "AKIAIOSFODNN7EXAMPLE";
    let mut body = json!([
        {"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":format!("key {secret}")}]}},
        {"jsonrpc":"2.0","id":2,"error":{"code":-1,"message":format!("bad key {secret}")}},
        {"jsonrpc":"2.0","id":3,"method":"sampling/createMessage","params":{"messages":[{"content":{"type":"text","text":secret}}]}},
        {"jsonrpc":"2.0","method":"notifications/message","params":{"data":{"password":"p4ssw0rd!"}}}
    ]);
    let filtered = filter(&mut body, None);
    let text = body.to_string();
    assert!(!text.contains(secret), "{text}");
    assert!(!text.contains("p4ssw0rd!"), "{text}");
    assert!(filtered.mask.masked >= 4, "{filtered:?}");
    assert_eq!(body[2]["method"], "sampling/createMessage");
    assert_eq!(body[2]["id"], 3);
}

#[test]
fn request_state_is_never_altered() {
    // Opaque state that happens to look like a JWT must come back byte for byte.
    let state = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLXBhcnQtaGVyZQ";
    let mut body = json!({"jsonrpc":"2.0","id":1,"result":{
        "resultType":"input_required","requestState":state,
        "inputRequests":{"q":{"method":"elicitation/create","params":{"message":format!("token {state}")}}}}});
    filter(&mut body, Some("tools/call"));
    assert_eq!(body["result"]["requestState"], state);
    // A cursor is handed back to the server as it came, whatever it looks like.
    let mut list = json!({"jsonrpc":"2.0","id":2,"result":{"resources":[],"nextCursor":state}});
    filter(&mut list, Some("resources/list"));
    assert_eq!(list["result"]["nextCursor"], state);
    assert!(!body["result"]["inputRequests"].to_string().contains(state));
}

#[test]
fn clean_messages_are_unchanged() {
    let original =
        json!({"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"hello"}]}});
    let mut body = original.clone();
    let filtered = filter(&mut body, Some("tools/call"));
    assert!(!filtered.changed());
    assert_eq!(body, original);
}

#[test]
fn only_masked_values_and_hidden_tools_change_on_the_wire() {
    // Key order, indentation and escapes are the server's (Python's ensure_ascii, a
    // pretty-printed body), and stay so around what the gateway changes.
    let text = "{\n  \"jsonrpc\": \"2.0\",\n  \"id\": 7,\n  \"result\": {\n    \"tools\": [\n      {\"name\": \"zeta\", \"description\": \"caf\\u00e9 AKIAIOSFODNN7EXAMPLE\", \"inputSchema\": {}},\n      {\"name\": \"shell_exec\", \"inputSchema\": {}},\n      {\"name\": \"alpha\", \"inputSchema\": {\"type\": \"object\"}}\n    ]\n  }\n}";
    let value: Value = serde_json::from_str(text).unwrap();
    let body = filter_server_body(text, &value, Some("tools/list"), &masker(), &hide_shell);
    let expected = "{\n  \"jsonrpc\": \"2.0\",\n  \"id\": 7,\n  \"result\": {\n    \"tools\": [\n      {\"name\": \"zeta\", \"description\": \"caf\\u00e9 [MASKED:aws_access_key_id]\", \"inputSchema\": {}},\n      {\"name\": \"alpha\", \"inputSchema\": {\"type\": \"object\"}}\n    ]\n  }\n}";
    assert_eq!(body.rewritten.as_deref(), Some(expected));
    assert_eq!(body.total().hidden_tools, ["shell_exec"]);
}

#[test]
fn every_tool_hidden_leaves_an_empty_list() {
    let text = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"shell","inputSchema":{}}],"nextCursor":"c"}}"#;
    let value: Value = serde_json::from_str(text).unwrap();
    let body = filter_server_body(text, &value, Some("tools/list"), &masker(), &hide_shell);
    assert_eq!(
        body.rewritten.as_deref(),
        Some(r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[],"nextCursor":"c"}}"#)
    );
}

#[test]
fn a_repeated_member_is_filtered_as_clients_read_it() {
    // JSON parsers keep the last of a repeated key (JavaScript, Python, serde_json):
    // whatever the gateway inspects, the copy the client reads must be masked and
    // filtered.
    let text = r#"{"jsonrpc":"2.0","id":1,"result":{"content":[]},"result":{"content":[{"type":"text","text":"AKIAIOSFODNN7EXAMPLE"}]}}"#;
    let value: Value = serde_json::from_str(text).unwrap();
    let body = filter_server_body(text, &value, Some("tools/call"), &masker(), &hide_shell);
    let delivered = body.rewritten.as_deref().unwrap_or(text);
    assert!(!delivered.contains("AKIAIOSFODNN7EXAMPLE"), "{delivered}");

    let text = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[]},"result":{"tools":[{"name":"shell_exec","inputSchema":{}}]}}"#;
    let value: Value = serde_json::from_str(text).unwrap();
    let body = filter_server_body(text, &value, Some("tools/list"), &masker(), &hide_shell);
    let delivered: Value = serde_json::from_str(body.rewritten.as_deref().unwrap_or(text)).unwrap();
    assert_eq!(delivered["result"]["tools"], json!([]), "{delivered}");
}

#[test]
fn a_tool_named_twice_is_hidden_if_either_name_is() {
    let text = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"safe","name":"shell_exec","inputSchema":{}},{"name":"alpha","inputSchema":{}}]}}"#;
    let value: Value = serde_json::from_str(text).unwrap();
    let body = filter_server_body(text, &value, Some("tools/list"), &masker(), &hide_shell);
    assert_eq!(body.total().hidden_tools, ["shell_exec"]);
    let delivered: Value = serde_json::from_str(body.rewritten.as_deref().unwrap()).unwrap();
    assert_eq!(
        delivered["result"]["tools"],
        json!([{"name": "alpha", "inputSchema": {}}])
    );
}

proptest::proptest! {
    /// The span tree's response check agrees with [`jsonrpc::kind`] on the parsed value,
    /// repeated members and odd types included.
    #[test]
    fn the_response_check_agrees_with_the_parsed_value(
        members in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::strategy::Just(r#""jsonrpc":"2.0""#),
                proptest::strategy::Just(r#""jsonrpc":"1.0""#),
                proptest::strategy::Just(r#""jsonrpc":2"#),
                proptest::strategy::Just(r#""j\u0073onrpc":"2\u002e0""#),
                proptest::strategy::Just(r#""method":"tools/list""#),
                proptest::strategy::Just(r#""method":7"#),
                proptest::strategy::Just(r#""id":1"#),
                proptest::strategy::Just(r#""id":null"#),
                proptest::strategy::Just(r#""result":{}"#),
                proptest::strategy::Just(r#""error":{"code":1}"#),
                proptest::strategy::Just(r#""other":[]"#),
            ],
            0..6,
        ),
        batch in proptest::bool::ANY,
    ) {
        let object = format!("{{{}}}", members.join(","));
        let text = if batch { format!("[{object},1]") } else { object };
        let value: Value = serde_json::from_str(&text).unwrap();
        let doc = Doc::parse(&text, MAX_DEPTH).unwrap();
        let nodes: Vec<NodeId> = match doc.kind(doc.root()) {
            JsonKind::Array => doc.children(doc.root()).collect(),
            _ => vec![doc.root()],
        };
        for (node, message) in nodes.into_iter().zip(jsonrpc::messages(&value)) {
            proptest::prop_assert_eq!(
                is_response(&doc, node),
                jsonrpc::kind(message) == jsonrpc::Kind::Response,
                "{}", text
            );
        }
    }
}
