//! Masking JSON text: schemas stay schemas, masked values keep their types, and nothing
//! but a masked value changes on the wire.

use serde_json::{Value, json};

use super::*;

/// Masks `text` as the gateway masks a body, returning the new text.
fn mask(text: &str) -> (String, MaskReport) {
    let (masked, report) = masker().mask_json(text).expect("valid JSON");
    (masked.into_owned(), report)
}

fn mask_json_value(value: Value) -> (Value, MaskReport) {
    let (masked, report) = mask(&value.to_string());
    (serde_json::from_str(&masked).unwrap(), report)
}

#[test]
fn schemas_with_sensitive_property_names_are_left_alone() {
    let schema = json!({
        "type": "object",
        "properties": {
            "password": {"type": "string", "minLength": 8, "description": "the new user's password"},
            "api_key": {"type": "string", "format": "password"},
            "token": {"$ref": "#/$defs/token"},
            "credentials": {"type": "object", "properties": {"secret": {"type": "string"}}},
            "tokens": {"type": "array", "items": {"type": "string"}}
        },
        "patternProperties": {"^secret_": {"type": "string"}},
        "required": ["password", "api_key"],
        "$defs": {"token": {"anyOf": [{"type": "string"}, {"type": "null"}]}},
        "definitions": {"secret": {"type": "string"}},
        "additionalProperties": false
    });
    let message = json!({"tools": [{
        "name": "create_user",
        "inputSchema": schema,
        "outputSchema": schema,
    }]});
    let (masked, report) = mask_json_value(message.clone());
    assert_eq!(masked, message, "{report:?}");
    // Elicitation asks for a form; its schema is structure too.
    let elicit = json!({"message": "Connect", "requestedSchema": {
        "type": "object", "properties": {"password": {"type": "string", "title": "Password"}}}});
    let (masked, _) = mask_json_value(elicit.clone());
    assert_eq!(masked, elicit);
    // A schema found by its shape, not its key.
    let bare = json!({"result": {"$schema": "https://json-schema.org/draft/2020-12/schema",
        "properties": {"secret": {"type": "string"}}}});
    assert_eq!(mask_json_value(bare.clone()).0, bare);
}

#[test]
fn schema_instance_values_are_still_masked() {
    let pat = format!("ghp_{}", corpus::alnum(36));
    let schema = json!({"inputSchema": {"type": "object", "properties": {
        "repo": {"type": "string", "default": format!("see {pat}"), "examples": [pat.clone()]},
        "password": {"type": "string", "default": "hunter2-default", "enum": ["s3cr3t-value"]},
        "token": {"const": "tok-example-123"}
    }}});
    let (masked, report) = mask_json_value(schema);
    let text = masked.to_string();
    for secret in [
        pat.as_str(),
        "hunter2-default",
        "s3cr3t-value",
        "tok-example-123",
    ] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    // The structure around them stays.
    let props = &masked["inputSchema"]["properties"];
    assert_eq!(props["password"]["type"], "string");
    assert_eq!(props["repo"]["default"], "see [MASKED:github_pat]");
    assert_eq!(report.masked, 5, "{report:?}");
}

#[test]
fn masked_values_keep_their_json_types() {
    let (masked, _) = mask_json_value(json!({
        "api_key": ["key-one-value", "key-two-value"],
        "credentials": {"username": "app", "password": "pw-123456", "port": 5432, "tls": true},
        "secret": {"data": [1, 2, 3]},
        "token": null,
        "pin_password": 123456
    }));
    assert_eq!(masked["api_key"], json!([KEY_PLACEHOLDER, KEY_PLACEHOLDER]));
    assert_eq!(
        masked["credentials"],
        json!({"username": KEY_PLACEHOLDER, "password": KEY_PLACEHOLDER, "port": 5432, "tls": true})
    );
    assert_eq!(masked["secret"], json!({"data": [1, 2, 3]}));
    assert_eq!(masked["token"], Value::Null);
    assert_eq!(masked["pin_password"], 123456);
}

#[test]
fn values_named_by_a_sibling_field_are_masked() {
    let (masked, _) = mask_json_value(json!({
        "env": [
            {"name": "DB_PASSWORD", "value": "pg-pass-123"},
            {"name": "LOG_LEVEL", "value": "debug"}
        ],
        "Parameters": [{"Name": "/prod/app/db-url", "Type": "SecureString", "Value": "sensitive-1"}],
        "outputs": {"db_pw": {"sensitive": true, "type": "string", "value": "tf-out-secret"}},
        "manifest": {"kind": "Secret", "data": {"tls.key": "LS0tLS1CRUdJTg==", "ca.crt": "Q0E="}},
        "cfn": [{"ParameterKey": "MasterUserPassword", "ParameterValue": "cfn-pass-1"}],
        "jwk": {"kty": "RSA", "kid": "k1", "n": "i6pKaMP4", "e": "AQAB", "d": "i8tmH5Vd", "p": "LSBu", "q": "3bzt"}
    }));
    assert_eq!(
        masked["jwk"],
        json!({"kty": "RSA", "kid": "k1", "n": "i6pKaMP4", "e": "AQAB",
            "d": KEY_PLACEHOLDER, "p": KEY_PLACEHOLDER, "q": KEY_PLACEHOLDER})
    );
    assert_eq!(masked["env"][0]["value"], KEY_PLACEHOLDER);
    assert_eq!(masked["env"][0]["name"], "DB_PASSWORD");
    assert_eq!(masked["env"][1]["value"], "debug");
    assert_eq!(masked["Parameters"][0]["Value"], KEY_PLACEHOLDER);
    assert_eq!(masked["outputs"]["db_pw"]["value"], KEY_PLACEHOLDER);
    assert_eq!(
        masked["manifest"]["data"],
        json!({"tls.key": KEY_PLACEHOLDER, "ca.crt": KEY_PLACEHOLDER})
    );
    assert_eq!(masked["cfn"][0]["ParameterValue"], KEY_PLACEHOLDER);
}

#[test]
fn references_and_redactions_under_sensitive_keys_are_kept() {
    let value = json!({
        "password": "${DB_PASSWORD}",
        "api_key": "********",
        "token": "{{ .Values.token }}",
        "secret": "",
    });
    assert_eq!(mask_json_value(value.clone()).0, value);
}

#[test]
fn nothing_but_the_masked_value_changes() {
    // Unsorted keys, odd spacing, a pretty-printed JSON document inside a string.
    let text = "{ \"zeta\" : 1,\n  \"password\" :\t\"hunter2\" , \"alpha\": [ 1,2 ],\n  \"text\": \"{\\n  \\\"z\\\": 1,\\n  \\\"token\\\": \\\"abc-123-def\\\",\\n  \\\"a\\\": 2\\n}\" }";
    let (masked, report) = mask(text);
    assert_eq!(
        masked,
        "{ \"zeta\" : 1,\n  \"password\" :\t\"[MASKED:json_key]\" , \"alpha\": [ 1,2 ],\n  \"text\": \"{\\n  \\\"z\\\": 1,\\n  \\\"token\\\": \\\"[MASKED:json_key]\\\",\\n  \\\"a\\\": 2\\n}\" }"
    );
    assert_eq!(report.masked, 2);
}

#[test]
fn a_masked_string_keeps_its_encoders_escapes() {
    let key = "AKIAIOSFODNN7EXAMPLE";
    // Python's ensure_ascii, Go's HTML-safe escapes, PHP's escaped slashes.
    for (raw, expected) in [
        (
            format!(r#"{{"t":"caf\u00e9 \u2014 {key}"}}"#),
            r#"{"t":"caf\u00e9 \u2014 [MASKED:aws_access_key_id]"}"#,
        ),
        (
            format!(r#"{{"t":"\u003cb\u003e {key} \u0026 more"}}"#),
            r#"{"t":"\u003cb\u003e [MASKED:aws_access_key_id] \u0026 more"}"#,
        ),
        (
            format!(r#"{{"t":"https:\/\/x\/ {key}"}}"#),
            r#"{"t":"https:\/\/x\/ [MASKED:aws_access_key_id]"}"#,
        ),
        (
            format!(r#"{{"t":"café {key}"}}"#),
            r#"{"t":"café [MASKED:aws_access_key_id]"}"#,
        ),
    ] {
        assert_eq!(mask(&raw).0, expected);
    }
}

#[test]
fn the_bytes_around_a_masked_secret_keep_their_escapes() {
    // Escapes no single style explains (an escaped `A`, one slash escaped and one not):
    // only the secret changes, not the rest of the string re-encoded.
    let (masked, _) = mask(r#"{"t":"\u0041 caf\u00e9 / and \/ AKIAIOSFODNN7EXAMPLE done"}"#);
    assert_eq!(
        masked,
        r#"{"t":"\u0041 caf\u00e9 / and \/ [MASKED:aws_access_key_id] done"}"#
    );
    // A text block written by PHP (`\/`) holding JSON with a database URL: the masked
    // URL goes back in with its slashes escaped the way the block escapes them.
    let text =
        r#"{"text":"{\"db\":\"postgres:\/\/app:FAKEpassw0rd@db.internal:5432\/prod\",\"n\":1}"}"#;
    let (masked, report) = mask(text);
    assert_eq!(report.masked, 1, "{masked}");
    let rule = report.rule_names()[0];
    assert_eq!(
        masked,
        text.replace("FAKEpassw0rd", &format!("[MASKED:{rule}]"))
    );
}

#[test]
fn escapes_cannot_hide_a_secret() {
    let (masked, report) =
        mask(r#"{"t":"\u0041KIAIOSFODNN7EXAMPLE","p\u0061ssword":"x-secret-1"}"#);
    assert!(!masked.contains("IOSFODNN7EXAMPLE"), "{masked}");
    assert!(!masked.contains("x-secret-1"), "{masked}");
    assert_eq!(report.masked, 2);
}

#[test]
fn clean_documents_come_back_borrowed() {
    let text = r#"{"content":[{"type":"text","text":"{\"a\": [1, 2], \"b\": \"plain\"}"}],"isError":false}"#;
    let (masked, report) = masker().mask_json(text).unwrap();
    assert!(matches!(masked, Cow::Borrowed(_)));
    assert_eq!(report.masked, 0);
}

#[test]
fn malformed_json_is_refused() {
    for text in [
        "{",
        "{\"a\":}",
        "[1,]",
        "{\"a\" 1}",
        "01",
        "\"\u{1}\"",
        "\"\\x\"",
        "tru",
        "{}x",
        "\"\\u12\"",
        "-",
        "1.",
        "1e",
    ] {
        assert!(masker().mask_json(text).is_err(), "{text:?}");
    }
    for text in [
        "{}",
        " [ ] ",
        "-0.5e+3",
        "\"\\ud83d\\ude00\"",
        "[true,false,null]",
    ] {
        assert!(masker().mask_json(text).is_ok(), "{text:?}");
    }
}

#[test]
fn whatever_serde_json_parses_the_span_parser_parses_too() {
    // The gateway judges a body with serde_json and masks it with the span parser: their
    // nesting limits must agree, or a body would be filtered only in canonical form.
    for depth in 120..=132 {
        let text = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        if serde_json::from_str::<Value>(&text).is_ok() {
            assert!(masker().mask_json(&text).is_ok(), "depth {depth}");
        }
    }
}

/// Bodies serde_json refuses but RFC 8259's grammar allows — a lone surrogate escape, a
/// number beyond `f64` — reach the masker as text (the gateway could not parse them).
/// JavaScript and Python clients read them, so they are masked as JSON, by key too.
#[test]
fn json_serde_refuses_is_still_masked_as_json() {
    let secret = "Zq8xW2vN7rT4pL9kM3sB6dF1";
    for body in [
        format!(r#"{{"jsonrpc":"2.0","id":1,"result":{{"jwt":"{secret}","note":"\ud800"}}}}"#),
        format!(r#"{{"jsonrpc":"2.0","id":1,"result":{{"jwt":"{secret}","size":1e400}}}}"#),
        format!(r#"[{{"dsn":"{secret}\udc00"}}]"#),
    ] {
        assert!(serde_json::from_str::<Value>(&body).is_err(), "{body}");
        let (masked, report) = masker().mask_text(&body);
        assert!(!masked.contains(secret), "{masked}");
        assert_eq!(report.rule_names(), ["json_key"], "{masked}");
        // Only the masked value changed: the rest is the server's text.
        assert!(
            masked.contains(r#""jwt":"[MASKED:json_key]""#)
                || masked.contains(r#""dsn":"[MASKED:json_key]""#),
            "{masked}"
        );
    }
}

/// A lone surrogate inside a string decodes to U+FFFD for matching: a secret next to one
/// is still found, and a string holding one but no secret is left byte for byte.
#[test]
fn lone_surrogates_neither_hide_a_secret_nor_change_clean_text() {
    let clean = r#"{"text":"broken \ud800 pair \udc00\u0041"}"#;
    let (masked, report) = masker().mask_text(clean);
    assert_eq!(masked, clean);
    assert_eq!(report.masked, 0);
    let leaky = r#"{"text":"\ud800ghp_FAKEfake0123456789EXAMPLEexample0123"}"#;
    let (masked, _) = mask(leaky);
    assert!(!masked.contains("FAKEfake0123"), "{masked}");
    assert!(masked.contains("[MASKED:github_pat]"), "{masked}");
}

/// A tool result whose `text` block repeats its `structuredContent`: both copies are
/// masked (the block by reusing the structured copy's outcome), and the report counts
/// each copy, as masking them one by one does.
#[test]
fn a_text_block_repeating_structured_content_is_masked_like_it() {
    let structured = json!({
        "items": [
            {"id": 1, "password": "FAKEpassw0rd-1", "note": "max_tokens and the tokenizer"},
            {"id": 2, "url": "postgres://app:FAKEpassw0rd@db.internal:5432/prod", "é": "/"},
        ],
        "total": 2,
    });
    let result = json!({
        "content": [{"type": "text", "text": structured.to_string()}],
        "structuredContent": structured,
    });
    let text = result.to_string();
    let masker = masker();
    let (masked, report) = masker.mask_json(&text).unwrap();
    let (reference, reference_report) = masker.mask_json_reference(&text).unwrap();
    assert_eq!(masked, reference);
    assert_eq!(report, reference_report);
    assert!(!masked.contains("FAKEpassw0rd"), "{masked}");
    assert_eq!(report.masked, 4, "{masked}");
    let value: Value = serde_json::from_str(&masked).unwrap();
    let block: Value = serde_json::from_str(value["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(block, value["structuredContent"]);
}

/// The copy in a text block sits deeper than the structured original: where that takes
/// it past the nesting limit, the block is masked as too deep, not given the original's
/// outcome.
#[test]
fn a_repeated_copy_past_the_nesting_limit_is_not_reused() {
    let depth = MAX_DEPTH - 3;
    let nested = format!("{}\"x\"{}", "[".repeat(depth), "]".repeat(depth));
    let structured = format!(r#"{{"a":{nested},"pad":"{}"}}"#, "p".repeat(200));
    let escaped = serde_json::to_string(&structured).unwrap();
    let text = format!(
        r#"{{"content":[{{"type":"text","text":{escaped}}}],"structuredContent":{structured}}}"#
    );
    let masker = masker();
    let (masked, report) = masker.mask_json(&text).unwrap();
    let (reference, reference_report) = masker.mask_json_reference(&text).unwrap();
    assert_eq!(masked, reference);
    assert_eq!(report, reference_report);
    assert_eq!(report.rules.get("too_deep"), Some(&1), "{masked}");
    assert!(masked.contains(&format!(r#""structuredContent":{structured}"#)));
}
