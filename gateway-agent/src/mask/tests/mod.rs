use serde_json::json;

use super::*;

mod context;
mod corpus;
mod detection;
mod differential;
mod generalise;
mod json;
mod keys;
mod values;

fn masker() -> Masker {
    Masker::new(&MaskConfig::default()).unwrap()
}

fn masked_text(text: &str) -> (String, MaskReport) {
    let (masked, report) = masker().mask_text(text);
    (masked.into_owned(), report)
}

#[test]
fn every_rule_masks_its_positive_and_spares_its_negative() {
    let masker = masker();
    let cases = corpus::cases();
    for rule in rules::all() {
        assert!(
            cases.iter().any(|case| case.rule == rule.name),
            "no corpus case for rule {}",
            rule.name
        );
    }
    for case in &cases {
        let (masked, report) = masker.mask_text(&case.text);
        let rule = case.rule;
        assert_eq!(report.rule_names(), [rule], "{rule}: {masked}");
        assert_eq!(report.masked, 1, "{rule}: {masked}");
        assert!(
            masked.contains(&format!("[MASKED:{rule}]")),
            "{rule}: {masked}"
        );
        // Nothing of the secret survives: not it, nor its first four characters.
        assert!(
            !masked.contains(&case.secret[..4]),
            "{rule}: leaked a prefix: {masked}"
        );
        let (again, _) = masker.mask_text(&case.negative);
        assert!(
            matches!(again, Cow::Borrowed(_)),
            "{rule}: false positive on {:?}: {again}",
            case.negative
        );
    }
    assert!(
        masker.rule_count() >= 40,
        "only {} rules",
        masker.rule_count()
    );
}

#[test]
fn anchored_rules_start_at_their_keyword() {
    for rule in rules::all().filter(|rule| rule.anchor == rules::Anchor::AfterKeyword) {
        let pattern = rule.pattern.trim_start_matches("(?i)");
        assert!(
            pattern.starts_with('^'),
            "{} must be anchored with ^",
            rule.name
        );
    }
}

#[test]
fn legacy_openai_keys_and_test_pypi_tokens_are_known_too() {
    let legacy = format!("sk-{}T3BlbkFJ{}", corpus::alnum(20), corpus::alnum(20));
    let test_pypi = format!("pypi-AgENdGVzdC5weXBpLm9yZw{}", corpus::alnum(60));
    for secret in [legacy, test_pypi] {
        let (masked, report) = masked_text(&format!("key {secret}"));
        assert_eq!(report.masked, 1, "{masked}");
    }
}

#[test]
fn ordinary_text_and_identifiers_survive() {
    let masker = masker();
    for text in corpus::CLEAN {
        let (masked, report) = masker.mask_text(text);
        assert!(
            matches!(masked, Cow::Borrowed(_)),
            "false positive {report:?}: {masked}"
        );
        let mut value = json!({"text": text, "max_tokens": 10, "tokenizer": "bpe"});
        let before = value.clone();
        assert_eq!(masker.mask_value(&mut value).masked, 0);
        assert_eq!(value, before);
    }
}

#[test]
fn placeholders_name_a_rule_and_match_none() {
    let masker = masker();
    let names = rules::all().map(|rule| rule.name).chain([
        "json_key",
        "too_deep",
        rules::ENTROPY_RULE.name,
    ]);
    let entropic = Masker::new(&MaskConfig {
        entropy: true,
        ..Default::default()
    })
    .unwrap();
    for name in names {
        assert!(
            name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') && name.len() < 32,
            "{name}: rule names are short lowercase words, so a placeholder holds no digits \
             (no length) and is shorter than an entropy token"
        );
        let placeholder = format!("[MASKED:{name}]");
        assert!(is_placeholder(placeholder.as_bytes()));
        for text in [
            format!("x {placeholder} y"),
            format!("password={placeholder}."),
            format!("\"token\": \"{placeholder}\""),
            format!("Authorization: Bearer {placeholder}"),
            format!("postgres://u:{placeholder}@db/x?token={placeholder}"),
            format!("Set-Cookie: {placeholder}"),
        ] {
            for m in [&masker, &entropic] {
                let (masked, report) = m.mask_text(&text);
                assert!(matches!(masked, Cow::Borrowed(_)), "{text}: {report:?}");
            }
        }
    }
}

#[test]
fn keys_mask_whole_values_anywhere() {
    let mut value = json!({
        "service": "billing",
        "db": {"host": "db.internal", "Password": "hunter2", "port": 5432},
        "items": [{"apiKey": "k-123"}, {"API_KEY": 42}, {"api-key": null}],
        "credentials": {"user": "u", "nested": ["a", {"x": true}]},
        "has_password": true,
        "token": "",
        "secret": [],
        "max_tokens": 100,
        "tokenizer": "bpe",
        "password_policy": {"min": 12},
        "_meta": {"progressToken": "p-1"},
    });
    let report = masker().mask_value(&mut value);
    assert_eq!(value["db"]["Password"], KEY_PLACEHOLDER);
    assert_eq!(value["db"]["host"], "db.internal");
    assert_eq!(value["db"]["port"], 5432);
    assert_eq!(value["items"][0]["apiKey"], KEY_PLACEHOLDER);
    // A number keeps its JSON type (a client validates it against the tool's schema).
    assert_eq!(value["items"][1]["API_KEY"], 42);
    assert_eq!(value["items"][2]["api-key"], Value::Null);
    // Containers keep their shape; every string in them is masked.
    assert_eq!(
        value["credentials"],
        json!({"user": KEY_PLACEHOLDER, "nested": [KEY_PLACEHOLDER, {"x": true}]})
    );
    // Values with no secret in them keep their shape.
    assert_eq!(value["has_password"], true);
    assert_eq!(value["token"], "");
    assert_eq!(value["secret"], json!([]));
    assert_eq!(value["max_tokens"], 100);
    assert_eq!(value["tokenizer"], "bpe");
    assert_eq!(value["password_policy"], json!({"min": 12}));
    assert_eq!(value["_meta"]["progressToken"], "p-1");
    assert_eq!(report.rules, BTreeMap::from([("json_key", 4)]));
    assert_eq!(report.masked, 4);
}

#[test]
fn operator_keys_are_masked() {
    let masker = Masker::new(&MaskConfig {
        keys: vec!["X-Vendor-Auth".into()],
        ..Default::default()
    })
    .unwrap();
    let mut value = json!({"xVendorAuth": "v-1", "text": "{\"x_vendor_auth\": \"v-2\"}"});
    masker.mask_value(&mut value);
    assert_eq!(value["xVendorAuth"], KEY_PLACEHOLDER);
    assert_eq!(value["text"], "{\"x_vendor_auth\": \"[MASKED:json_key]\"}");
    let empty = Masker::new(&MaskConfig {
        keys: vec!["-".into()],
        ..Default::default()
    });
    assert!(matches!(empty, Err(MaskError::EmptyKey(key)) if key == "-"));
}

/// Answers about keys are kept per thread between documents, for the rules that gave
/// them: maskers with other keys on the same thread answer for themselves.
#[test]
fn maskers_with_other_keys_on_one_thread_answer_for_themselves() {
    let vendor = Masker::new(&MaskConfig {
        keys: vec!["flavor".into()],
        ..Default::default()
    })
    .unwrap();
    let plain = masker();
    let body = r#"{"flavor":"vanilla-1","id":1}"#;
    for _ in 0..2 {
        let (masked, _) = vendor.mask_json(body).unwrap();
        assert!(masked.contains(KEY_PLACEHOLDER), "{masked}");
        let (masked, _) = plain.mask_json(body).unwrap();
        assert_eq!(masked, body, "another masker's key answers were used");
    }
}

#[test]
fn secrets_used_as_object_keys_are_masked() {
    let secret = format!("ghp_{}", corpus::alnum(36));
    let other = format!("ghp_{}", corpus::alnum(37).split_off(1));
    let mut value = json!({"tokens_by_id": {secret.clone(): {"scopes": "repo"}, other.clone(): 1}});
    let report = masker().mask_value(&mut value);
    let text = value.to_string();
    assert!(!text.contains(&secret) && !text.contains(&other), "{text}");
    assert_eq!(report.rules["github_pat"], 2);
    assert_eq!(
        value["tokens_by_id"].as_object().unwrap().len(),
        2,
        "{text}"
    );
}

#[test]
fn json_inside_text_is_masked_by_key_and_pattern_and_keeps_its_layout() {
    let inner = "{\n  \"user\": \"app\",\n  \"password\": \"hunter2\",\n  \"note\": \"AKIAIOSFODNN7EXAMPLE\"\n}";
    let mut value = json!({"content": [{"type": "text", "text": inner}]});
    let report = masker().mask_value(&mut value);
    let text = value["content"][0]["text"].as_str().unwrap();
    assert!(
        !text.contains("hunter2") && !text.contains("AKIA"),
        "{text}"
    );
    assert!(
        text.contains('\n') && text.contains("\"user\": \"app\""),
        "{text}"
    );
    assert_eq!(report.masked, 2);
    let nested: Value = serde_json::from_str(text).unwrap();
    assert_eq!(nested["password"], KEY_PLACEHOLDER);
}

#[test]
fn json_inside_text_without_secrets_stays_byte_identical() {
    // Odd spacing, key order and escapes that re-serialising would change.
    for inner in [
        "{ \"z\":1,  \"a\" : [1.50, \"x\"] }",
        "[{\"max_tokens\": 5, \"url\": \"https:\\/\\/example.com\\/\", \"u\": \"\\u00e9\"}]",
        "  {\"key\": \"value\", \"monkey\": 1e3}",
        "{not json at all",
    ] {
        let mut value = json!({"text": inner});
        assert_eq!(masker().mask_value(&mut value).masked, 0, "{inner}");
        assert_eq!(value["text"], inner);
    }
}

#[test]
fn unicode_escapes_do_not_hide_a_secret() {
    // \u0041 is 'A': the raw JSON never contains "AKIA" or "password".
    let raw = r#"{"text":"key \u0041KIAIOSFODNN7EXAMPLE here","p\u0061ssword":"hunter2"}"#;
    let mut value: Value = serde_json::from_str(raw).unwrap();
    masker().mask_value(&mut value);
    assert_eq!(value["text"], "key [MASKED:aws_access_key_id] here");
    assert_eq!(value["password"], KEY_PLACEHOLDER);
    // The same, one level down: JSON text inside a string, escapes still encoded there.
    let inner = r#"{"p\u0061ssword":"hunter2","url":"postgres:\/\/app:s3cret@db\/x"}"#;
    let mut value = json!({"text": inner});
    masker().mask_value(&mut value);
    let text = value["text"].as_str().unwrap();
    assert!(
        !text.contains("hunter2") && !text.contains("s3cret"),
        "{text}"
    );
}

#[test]
fn tool_result_text_and_structured_copies_are_both_masked() {
    let pat = format!("ghp_{}", corpus::alnum(36));
    let jwt = format!(
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0.{}",
        corpus::alnum(40)
    );
    let structured = json!({
        "repo": "org/app",
        "deploy": {"token": pat, "url": "https://ci:tr0ub4dor@ci.example.com/hook"},
        "log": format!("fetched with Authorization: Bearer {jwt}"),
        "stats": {"max_tokens": 2048, "files": 12},
    });
    let mut result = json!({
        "content": [{"type": "text", "text": serde_json::to_string_pretty(&structured).unwrap()}],
        "structuredContent": structured,
        "isError": false,
    });
    let report = masker().mask_value(&mut result);
    let text = result.to_string();
    for secret in [pat.as_str(), jwt.as_str(), "tr0ub4dor"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    let structured = &result["structuredContent"];
    assert_eq!(structured["deploy"]["token"], KEY_PLACEHOLDER);
    assert_eq!(
        structured["deploy"]["url"],
        "https://ci:[MASKED:url_password]@ci.example.com/hook"
    );
    assert_eq!(structured["stats"]["max_tokens"], 2048);
    assert_eq!(result["isError"], false);
    let copy: Value = serde_json::from_str(result["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(&copy, structured, "both copies masked alike");
    assert_eq!(report.masked, 6, "{report:?}");
}

#[test]
fn masking_is_idempotent() {
    let masker = masker();
    for case in corpus::cases() {
        let (once, _) = masker.mask_text(&case.text);
        let (twice, report) = masker.mask_text(&once);
        assert!(
            matches!(twice, Cow::Borrowed(_)),
            "{}: {once} -> {twice} {report:?}",
            case.rule
        );
    }
    let mut value = json!({
        "password": "x", "creds": {"token": {"a": 1}}, "note": "AKIAIOSFODNN7EXAMPLE",
        "text": "{\"secret\": \"s\", \"url\": \"redis://:pw0rd@cache:6379\"}",
    });
    masker.mask_value(&mut value);
    let once = value.clone();
    let report = masker.mask_value(&mut value);
    assert_eq!(value, once);
    assert_eq!(report, MaskReport::default());
}

#[test]
fn every_secret_in_one_document_is_masked() {
    let cases = corpus::cases();
    let document = cases
        .iter()
        .map(|case| case.text.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let (masked, report) = masked_text(&document);
    for case in &cases {
        assert!(!masked.contains(&case.secret), "{} leaked", case.rule);
    }
    assert_eq!(report.masked, cases.len(), "{masked}");
    assert!(matches!(masker().mask_text(&masked).0, Cow::Borrowed(_)));
}

/// Deterministic soup of keyword fragments, separators, quotes and multi-byte
/// characters: masking never panics, always terminates, and a second pass changes
/// nothing.
#[test]
fn arbitrary_text_masks_once_and_for_all() {
    #[rustfmt::skip]
    const PIECES: &[&str] = &[
        "password", "token", "=", ": ", "\"", "'", ";", "&", "?", "://", "@", "u:", "Bearer ",
        "Authorization: ", "eyJ", "abcDEF123456", ".", "-----BEGIN PRIVATE KEY-----",
        "-----END PRIVATE KEY-----", "\n", " ", "é", "ключ", "🔑", "[MASKED:jwt]", "[", "]",
        "AKIA", "IOSFODNN7EXAMPLE", "ghp_", "FAKEfake0123456789EXAMPLEexample0123", "sk-", "\\",
        "cookie", "Set-Cookie:", "{", "}",
    ];
    let masker = masker();
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut masked_any = 0;
    for _ in 0..3000 {
        let mut text = String::new();
        for _ in 0..24 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            text.push_str(PIECES[(seed >> 33) as usize % PIECES.len()]);
        }
        let (once, _) = masker.mask_text(&text);
        masked_any += usize::from(matches!(once, Cow::Owned(_)));
        let (twice, report) = masker.mask_text(&once);
        assert!(
            matches!(twice, Cow::Borrowed(_)),
            "not idempotent:\n{text:?}\n{once:?}\n{twice:?}\n{report:?}"
        );
        let mut value = json!({ "text": text });
        masker.mask_value(&mut value);
        let again = value.clone();
        assert_eq!(masker.mask_value(&mut value).masked, 0, "{again}");
    }
    assert!(
        masked_any > 1000,
        "the soup should hold secrets: {masked_any}"
    );
}

#[test]
fn overlapping_matches_leave_no_tail() {
    // The JWT rule and the `token=` rule see different extents of one value.
    let text = format!(
        "token=eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0.{}~tail",
        corpus::alnum(40)
    );
    let (masked, report) = masked_text(&text);
    assert_eq!(masked, "token=[MASKED:password_assignment]");
    assert_eq!(report.masked, 1);
}

#[test]
fn url_passwords_with_unencoded_at_signs_are_masked_whole() {
    let (masked, _) =
        masked_text("mongodb+srv://app:p@ss@w0rd@cluster0.example.net/db?retryWrites=true");
    assert_eq!(
        masked,
        "mongodb+srv://app:[MASKED:database_url_password]@cluster0.example.net/db?retryWrites=true"
    );
    let (masked, _) =
        masked_text("amqp://guest:guest123@rabbit:5672/ and redis://:s3cret@cache:6379/0");
    assert_eq!(
        masked,
        "amqp://guest:[MASKED:database_url_password]@rabbit:5672/ and redis://:[MASKED:database_url_password]@cache:6379/0"
    );
}

#[test]
fn nesting_beyond_the_limit_is_withheld() {
    let mut value = json!({"note": "AKIAIOSFODNN7EXAMPLE"});
    for _ in 0..MAX_DEPTH + 5 {
        value = json!([value]);
    }
    let report = masker().mask_value(&mut value);
    assert_eq!(report.rules.get("too_deep"), Some(&1));
    assert!(!value.to_string().contains("AKIA"));
    // Deep JSON inside a string (deeper than serde_json parses) is withheld too, not
    // scanned as text where its keys would be missed.
    let deep = format!(
        "{}{{\"password\": \"hunter2\"}}{}",
        "[".repeat(200),
        "]".repeat(200)
    );
    let mut value = json!({"text": deep});
    masker().mask_value(&mut value);
    assert_eq!(value["text"], DEPTH_PLACEHOLDER);
    // Masking the result again changes nothing.
    assert_eq!(masker().mask_value(&mut value).masked, 0);
}

#[test]
fn multibyte_text_never_splits_a_character() {
    let text = format!("password={}", "é".repeat(300));
    let (masked, report) = masked_text(&text);
    assert_eq!(report.masked, 1);
    assert_eq!(masked, "password=[MASKED:password_assignment]");
    let (masked, _) = masked_text("ключ: AKIAIOSFODNN7EXAMPLE — готово");
    assert_eq!(masked, "ключ: [MASKED:aws_access_key_id] — готово");
}

#[test]
fn entropy_rule_is_opt_in_and_spares_digests_and_identifiers() {
    let token = "q8Zr2LmX9vT4bN7kW1pY5sD3fG6hJ0aC";
    assert_eq!(masker().mask_text(token).1.masked, 0);
    let entropic = Masker::new(&MaskConfig {
        entropy: true,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(entropic.mask_text(token).0, "[MASKED:high_entropy_string]");
    let mut value = json!({"k": format!("{{\"v\": \"{token}\"}}")});
    assert_eq!(entropic.mask_value(&mut value).masked, 1);
    for clean in [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "550e8400-e29b-41d4-a716-446655440000",
        "ThisIsAVeryLongCamelCaseIdentifierWith123",
        "x86_64-unknown-linux-gnu-release-build-2024",
        "/usr/lib/x86_64-linux-gnu/libssl.so.3",
    ] {
        assert_eq!(entropic.mask_text(clean).1.masked, 0, "{clean}");
    }
}

#[test]
fn disabled_masker_changes_nothing() {
    let masker = Masker::new(&MaskConfig {
        enabled: false,
        ..Default::default()
    })
    .unwrap();
    let mut value = json!({"password": "x", "t": "AKIAIOSFODNN7EXAMPLE"});
    assert_eq!(masker.mask_value(&mut value).masked, 0);
    assert_eq!(value["password"], "x");
    assert!(matches!(
        masker.mask_text("AKIAIOSFODNN7EXAMPLE").0,
        Cow::Borrowed(_)
    ));
}

#[test]
fn config_reads_from_toml_with_defaults_and_rejects_unknown_keys() {
    let config: MaskConfig = toml::from_str("keys = [\"x-vendor-auth\"]").unwrap();
    assert!(config.enabled && !config.entropy);
    assert_eq!(config.keys, ["x-vendor-auth"]);
    let err = toml::from_str::<MaskConfig>("entropi = true").unwrap_err();
    assert!(err.to_string().contains("entropi"), "{err}");
}

#[test]
fn reports_merge_by_rule() {
    let mut a = MaskReport::default();
    a.hit("jwt");
    let mut b = MaskReport::default();
    b.hit("jwt");
    b.hit("json_key");
    a.merge(&b);
    assert_eq!(a.masked, 3);
    assert_eq!(a.rules, BTreeMap::from([("json_key", 1), ("jwt", 2)]));
    assert_eq!(a.rule_names(), ["json_key", "jwt"]);
}

#[test]
fn masker_is_shareable_across_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Masker>();
}

#[test]
fn the_disabled_twin_masks_nothing_and_leaves_the_original_masking() {
    let masker = masker();
    let twin = masker.disabled_twin();
    let secret = json!({"password": "hunter2-correct-horse"});
    let mut untouched = secret.clone();
    assert_eq!(twin.mask_value(&mut untouched).masked, 0);
    assert_eq!(untouched, secret);
    let mut masked = secret.clone();
    assert_eq!(masker.mask_value(&mut masked).masked, 1);
}
