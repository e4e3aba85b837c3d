use serde_json::json;

use super::*;

fn masker() -> Masker {
    Masker::new(&MaskConfig::default()).unwrap()
}

fn without_placeholders(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("[MASKED:") {
        out.push_str(&rest[..start]);
        rest = rest[start..].split_once(']').map_or("", |(_, after)| after);
    }
    out.push_str(rest);
    out
}

fn rep(c: char, n: usize) -> String {
    std::iter::repeat_n(c, n).collect()
}

/// (rule, text containing exactly one secret, the secret itself)
fn positives() -> Vec<(&'static str, String, String)> {
    let a = |n| rep('a', n);
    let hex = |n| {
        "0123456789abcdef"
            .chars()
            .cycle()
            .take(n)
            .collect::<String>()
    };
    let alnum = |n| {
        "Ab3Cd5Ef7Gh9Jk2Mn4Pq6Rs8Tu1Vw3Xy5Z"
            .chars()
            .cycle()
            .take(n)
            .collect::<String>()
    };
    let mut cases: Vec<(&str, String)> = vec![
        ("aws_access_key_id", "AKIAIOSFODNN7EXAMPLE".into()),
        ("gcp_api_key", format!("AIza{}", alnum(35))),
        ("google_oauth_client_secret", format!("GOCSPX-{}", alnum(28))),
        ("google_oauth_access_token", format!("ya29.{}", alnum(40))),
        ("digitalocean_token", format!("dop_v1_{}", hex(64))),
        ("heroku_api_key", format!("HRKU-{}", alnum(60))),
        ("databricks_token", format!("dapi{}", hex(32))),
        ("vault_token", format!("hvs.{}", alnum(30))),
        ("terraform_cloud_token", format!("{}.atlasv1.{}", alnum(14), alnum(64))),
        ("github_pat", format!("ghp_{}", alnum(36))),
        ("github_oauth_token", format!("gho_{}", alnum(36))),
        ("github_user_token", format!("ghu_{}", alnum(36))),
        ("github_server_token", format!("ghs_{}", alnum(36))),
        ("github_refresh_token", format!("ghr_{}", alnum(36))),
        ("github_fine_grained_pat", format!("github_pat_{}_{}", alnum(22), alnum(59))),
        ("gitlab_token", format!("glpat-{}", alnum(20))),
        ("bitbucket_app_password", format!("ATBB{}", alnum(32))),
        ("npm_token", format!("npm_{}", alnum(36))),
        ("pypi_token", format!("pypi-AgEIcHlwaS5vcmc{}", alnum(60))),
        ("dockerhub_pat", format!("dckr_pat_{}", alnum(27))),
        ("slack_token", format!("xoxb-123456789012-1234567890123-{}", alnum(24))),
        ("slack_app_token", "xapp-1-A0123ABCDEF-1234567890123-abcdef0123456789".into()),
        ("slack_webhook", format!("https://hooks.slack.com/services/T0000/B0000/{}", alnum(24))),
        ("discord_webhook", format!("https://discord.com/api/webhooks/123456789012345678/{}", alnum(68))),
        ("telegram_bot_token", format!("123456789:AA{}", alnum(33))),
        ("stripe_key", format!("sk_live_{}", alnum(24))),
        ("stripe_webhook_secret", format!("whsec_{}", alnum(32))),
        ("square_token", format!("sq0atp-{}", alnum(22))),
        ("sendgrid_api_key", format!("SG.{}.{}", alnum(22), alnum(43))),
        ("mailgun_api_key", format!("key-{}", hex(32))),
        ("mailchimp_api_key", format!("{}-us12", hex(32))),
        ("shopify_token", format!("shpat_{}", hex(32))),
        ("atlassian_api_token", format!("ATATT3{}", alnum(120))),
        ("linear_api_key", format!("lin_api_{}", alnum(40))),
        ("notion_token", format!("ntn_{}{}", "12345678901", alnum(35))),
        ("newrelic_key", format!("NRAK-{}", "ABCDEFGHIJKLMNOPQRSTUVWXYZ0")),
        ("postman_api_key", format!("PMAK-{}-{}", hex(24), hex(34))),
        ("grafana_token", format!("glsa_{}_{}", alnum(32), hex(8))),
        ("sentry_token", format!("sntrys_{}", alnum(60))),
        ("age_secret_key", format!("AGE-SECRET-KEY-1{}", "QWERTYUIOPASDFGHJKLZXCVBNM0123456789QWERTYUIOPASDFGHJKLZXC")),
        ("openai_api_key", format!("sk-proj-{}", alnum(48))),
        ("anthropic_api_key", format!("sk-ant-api03-{}", alnum(90))),
        ("huggingface_token", format!("hf_{}", alnum(34))),
        ("jwt", format!("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0.{}", alnum(40))),
        ("private_key", "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7\nabc+/=\n-----END RSA PRIVATE KEY-----".into()),
    ];
    let mut out: Vec<(&'static str, String, String)> = cases
        .drain(..)
        .map(|(rule, secret)| (rule, format!("here it is: {secret} (do not share)"), secret))
        .collect();
    // Rules that mask a value in context.
    let contextual = [
        (
            "aws_secret_access_key",
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ),
        (
            "azure_storage_account_key",
            "DefaultEndpointsProtocol=https;AccountName=x;AccountKey=Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9v==;EndpointSuffix=core.windows.net",
            "Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9v==",
        ),
        (
            "azure_sas_signature",
            "https://x.blob.core.windows.net/c?sv=2022&sig=Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6%3D",
            "Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6%3D",
        ),
        (
            "heroku_api_key_legacy",
            "HEROKU_API_KEY=01234567-89ab-cdef-0123-456789abcdef",
            "01234567-89ab-cdef-0123-456789abcdef",
        ),
        (
            "discord_bot_token",
            "discord bot token: MTA1234567890123456789012.AbCdEf.abcdefghijklmnopqrstuvwxyz012345",
            "MTA1234567890123456789012.AbCdEf.abcdefghijklmnopqrstuvwxyz012345",
        ),
        (
            "twilio_api_key",
            "TWILIO_API_KEY=SK0123456789abcdef0123456789abcdef",
            "SK0123456789abcdef0123456789abcdef",
        ),
        (
            "datadog_key",
            "DD_API_KEY=0123456789abcdef0123456789abcdef",
            "0123456789abcdef0123456789abcdef",
        ),
        (
            "database_url_password",
            "postgres://app:s3cr3t-Pa55@db.internal:5432/prod",
            "s3cr3t-Pa55",
        ),
        (
            "url_password",
            "https://deploy:tr0ub4dor@git.example.com/repo.git",
            "tr0ub4dor",
        ),
        (
            "authorization_header",
            "Authorization: Basic dXNlcjpwYXNzd29yZA==",
            "dXNlcjpwYXNzd29yZA==",
        ),
        (
            "bearer_token",
            "curl -H 'X: Bearer abcdefghij0123456789klmnop'",
            "abcdefghij0123456789klmnop",
        ),
        (
            "password_assignment",
            "login with password=hunter2-horse now",
            "hunter2-horse",
        ),
    ];
    out.extend(
        contextual
            .iter()
            .map(|(r, t, s)| (*r, (*t).to_owned(), (*s).to_owned())),
    );
    let _ = a;
    out
}

#[test]
fn every_rule_has_a_positive_case_and_masks_it() {
    let masker = masker();
    let cases = positives();
    for rule in RULES {
        assert!(
            cases.iter().any(|(name, _, _)| *name == rule.name),
            "no positive case for {}",
            rule.name
        );
    }
    for (rule, text, secret) in cases {
        let (masked, report) = masker.mask_text(&text);
        assert!(!masked.contains(&secret), "{rule}: not masked in {masked}");
        assert!(
            masked.contains(&format!("[MASKED:{rule}]")) || report.rules.contains_key(rule),
            "{rule}: masked by another rule: {masked} {report:?}"
        );
        // Outside the placeholders, no prefix of the secret (4+ chars) survives, nor its
        // length.
        let rest = without_placeholders(&masked);
        let context = text.replace(&secret, "");
        assert!(
            !rest.contains(&secret[..4]) || context.contains(&secret[..4]),
            "{rule}: prefix leaked: {masked}"
        );
        let length = secret.len().to_string();
        assert!(
            !rest.contains(&length) || context.contains(&length),
            "{rule}: length leaked: {masked}"
        );
    }
    assert!(RULES.len() >= 40, "only {} rules", RULES.len());
}

#[test]
fn ordinary_text_and_identifiers_survive() {
    let masker = masker();
    let negatives = [
        "550e8400-e29b-41d4-a716-446655440000",
        "commit 9fceb02d0ae598e95dc970b74767f19372d61af8",
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "SGVsbG8sIHRoaXMgaXMganVzdCBhIGJhc2U2NCBlbmNvZGVkIHNlbnRlbmNlLg==",
        "See https://example.com/docs?page=2 and http://localhost:8080/health",
        "postgres://db.internal:5432/prod (no credentials)",
        "The password policy requires 12 characters; tokens are rotated daily.",
        "max_tokens: 4096, token_count: 17, tokenizer: cl100k",
        "Ask the task runner; skip the disk check.",
        "the secret: true",
        "AKIA is the prefix AWS uses for access key ids",
        "ghp_ tokens are 40 characters long",
        "Bearer tokens must be sent over TLS.",
        "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----",
        "eyJ is how a base64 JSON object starts",
    ];
    for text in negatives {
        let (masked, report) = masker.mask_text(text);
        assert_eq!(masked, text, "false positive {report:?}");
        assert!(matches!(masked, Cow::Borrowed(_)));
    }
}

#[test]
fn keys_mask_whole_values_anywhere() {
    let mut value = json!({
        "service": "billing",
        "db": {"host": "db.internal", "Password": "hunter2", "port": 5432},
        "items": [{"apiKey": "k-123"}, {"API_KEY": 42}, {"api-key": null}],
        "credentials": {"user": "u", "nested": ["a", {"x": true}]},
        "max_tokens": 100,
    });
    let report = masker().mask_value(&mut value);
    assert_eq!(value["db"]["Password"], KEY_PLACEHOLDER);
    assert_eq!(value["db"]["host"], "db.internal");
    assert_eq!(value["db"]["port"], 5432);
    assert_eq!(value["items"][0]["apiKey"], KEY_PLACEHOLDER);
    assert_eq!(value["items"][1]["API_KEY"], KEY_PLACEHOLDER);
    assert_eq!(value["items"][2]["api-key"], Value::Null);
    assert_eq!(value["credentials"]["nested"][1]["x"], KEY_PLACEHOLDER);
    assert_eq!(value["max_tokens"], 100);
    assert_eq!(report.rules["json_key"], 6);
}

#[test]
fn json_inside_text_is_masked_by_key_and_layout_kept() {
    let inner = "{\n  \"user\": \"app\",\n  \"password\": \"hunter2\"\n}";
    let mut value = json!({"content": [{"type": "text", "text": inner}]});
    masker().mask_value(&mut value);
    let text = value["content"][0]["text"].as_str().unwrap();
    assert!(!text.contains("hunter2"), "{text}");
    assert!(
        text.contains('\n') && text.contains("\"user\": \"app\""),
        "{text}"
    );
}

#[test]
fn unicode_escapes_do_not_hide_a_secret() {
    // \u0041 is 'A': the raw JSON never contains "AKIA".
    let raw = r#"{"text":"key \u0041KIAIOSFODNN7EXAMPLE here"}"#;
    let mut value: Value = serde_json::from_str(raw).unwrap();
    masker().mask_value(&mut value);
    assert_eq!(value["text"], "key [MASKED:aws_access_key_id] here");
}

#[test]
fn tool_result_text_and_structured_copies_are_both_masked() {
    let secret = format!("ghp_{}", rep('x', 36));
    let mut result = json!({
        "content": [{"type": "text", "text": format!("{{\"token\": \"{secret}\", \"note\": \"ok\"}}")}],
        "structuredContent": {"token": secret, "note": format!("use {secret}")},
    });
    masker().mask_value(&mut result);
    let text = result.to_string();
    assert!(!text.contains(&secret), "{text}");
    assert_eq!(
        result["structuredContent"]["note"],
        "use [MASKED:github_pat]"
    );
}

#[test]
fn masking_is_idempotent() {
    let masker = masker();
    for (_, text, _) in positives() {
        let (once, _) = masker.mask_text(&text);
        let (twice, report) = masker.mask_text(&once);
        assert_eq!(once, twice, "{report:?}");
    }
    let mut value = json!({"password": "x", "note": "AKIAIOSFODNN7EXAMPLE"});
    masker.mask_value(&mut value);
    let once = value.clone();
    let report = masker.mask_value(&mut value);
    assert_eq!(value, once);
    assert_eq!(report.masked, 0);
}

#[test]
fn nesting_beyond_the_limit_is_withheld() {
    let mut value = json!("AKIAIOSFODNN7EXAMPLE");
    for _ in 0..MAX_DEPTH + 5 {
        value = json!([value]);
    }
    let report = masker().mask_value(&mut value);
    assert!(report.rules.contains_key("too_deep"));
    assert!(!value.to_string().contains("AKIAIOSFODNN7EXAMPLE"));
}

#[test]
fn multibyte_text_never_splits_a_character() {
    let text = format!("password={}", "é".repeat(300));
    let (masked, report) = masker().mask_text(&text);
    assert_eq!(report.masked, 1);
    assert!(masked.starts_with("password=[MASKED:password_assignment]"));
}

#[test]
fn entropy_rule_is_opt_in() {
    let token = "q8Zr2LmX9vT4bN7kW1pY5sD3fG6hJ0aC";
    let plain = masker();
    assert_eq!(plain.mask_text(token).1.masked, 0);
    let entropic = Masker::new(&MaskConfig {
        entropy: true,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(entropic.mask_text(token).0, "[MASKED:high_entropy_string]");
    // A hex digest is long but not mixed-class.
    assert_eq!(
        entropic
            .mask_text("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
            .1
            .masked,
        0
    );
}

#[test]
fn disabled_masker_changes_nothing() {
    let masker = Masker::new(&MaskConfig {
        enabled: false,
        ..Default::default()
    })
    .unwrap();
    let mut value = json!({"password": "x"});
    assert_eq!(masker.mask_value(&mut value).masked, 0);
    assert_eq!(value["password"], "x");
}
