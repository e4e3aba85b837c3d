//! Exact output of the context detectors: only the value goes, its context stays.

use super::masked_text;

#[test]
fn assignments_mask_the_value_only_and_never_past_its_line_or_quote() {
    for (text, want) in [
        (
            "DB_PASSWORD=p@ss&w0rd#Q7x\nDB_HOST=db",
            "DB_PASSWORD=[MASKED:password_assignment]\nDB_HOST=db",
        ),
        (
            "password=\"abc def\" user=\"bob\"",
            "password=\"[MASKED:connection_string_password]\" user=\"bob\"",
        ),
        (
            "login password=hunter2-horse&user=bob",
            "login password=[MASKED:password_assignment]&user=bob",
        ),
        (
            "smtp_pass: Zq8!rT5#kW",
            "smtp_pass: [MASKED:password_assignment]",
        ),
        (
            "--client-secret Zq8rT5kW2x --region eu",
            "--client-secret [MASKED:password_assignment] --region eu",
        ),
        (
            "<wsse:Password Type=\"x#PasswordText\">Zq8!rT5#kW</wsse:Password>",
            "<wsse:Password Type=\"x#PasswordText\">[MASKED:password_assignment]</wsse:Password>",
        ),
        (
            "<add key=\"DbPassword\" value=\"Zq8!rT5#kW\" />",
            "<add key=\"DbPassword\" value=\"[MASKED:password_assignment]\" />",
        ),
        (
            "- name: DB_PASSWORD\n  value: Zq8!rT5#kW\n- name: DB_HOST\n  value: db",
            "- name: DB_PASSWORD\n  value: [MASKED:password_assignment]\n- name: DB_HOST\n  value: db",
        ),
        (
            "- **Password:** Zq8!rT5#kW",
            "- **Password:** [MASKED:password_assignment]",
        ),
        (
            "**API key**: Zq8rT5kW2xYv",
            "**API key**: [MASKED:password_assignment]",
        ),
        (
            "\"api_keys\": [\"k-0123456789\", \"k-9876543210\"]",
            "\"api_keys\": [\"[MASKED:password_assignment]\", \"[MASKED:password_assignment]\"]",
        ),
    ] {
        assert_eq!(masked_text(text).0, want, "{text}");
    }
}

#[test]
fn values_that_are_not_secrets_are_left_byte_identical() {
    for text in [
        "api_key = os.environ[\"OPENAI_API_KEY\"]",
        "password = getpass()",
        "token = get_token(user)",
        "JWT_SECRET=\nAPP_ENV=production\n",
        "DB_PASSWORD=${DB_PASSWORD}",
        "password: ********",
        "api_key=<your-api-key>",
        "password: Option<String>,",
        "max_tokens: 4096, bypass_cache=true, passenger_count: 3",
        "apiKey: process.env.OPENAI_API_KEY!,",
        "password = PASSWORD_ENV_VAR",
        "const password = req.body.password;",
        "event: endpoint\ndata: /messages/?session_id=4f0c8a52d3e94b7a9f1e2d3c4b5a6978\n",
    ] {
        let (masked, report) = masked_text(text);
        assert_eq!(masked, text, "{report:?}");
    }
}

#[test]
fn a_secret_column_is_masked_in_every_row() {
    let text =
        "id,email,password\n1,a@x.io,Zq8!rT5#kW\n2,b@x.io,Mn4$eR7&pL\n\n3,c@x.io,after-blank";
    let (masked, report) = masked_text(text);
    assert_eq!(
        masked,
        "id,email,password\n1,a@x.io,[MASKED:secret_column]\n2,b@x.io,[MASKED:secret_column]\n\n3,c@x.io,after-blank"
    );
    assert_eq!(report.rules["secret_column"], 2);
}

#[test]
fn encoded_secrets_are_masked_in_their_encoded_form() {
    // base64("token: ghp_…") and hex("sk_live_…"): the whole run goes.
    let pat = format!("token: ghp_{}", super::corpus::alnum(36));
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &pat);
    let (masked, _) = masked_text(&format!("blob={b64} end"));
    assert_eq!(masked, "blob=[MASKED:encoded_secret] end");
    let hex: String = format!("sk_live_{}", super::corpus::alnum(24))
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect();
    let (masked, _) = masked_text(&format!("hex: {hex}"));
    assert_eq!(masked, "hex: [MASKED:encoded_secret]");
    // URL-encoding is mapped back byte for byte: only the value's escapes go.
    let (masked, _) = masked_text("next=%2Flogin%3Fpassword%3DZq8%21rT5%23kW%26user%3Dbob");
    assert_eq!(
        masked,
        "next=%2Flogin%3Fpassword%3D[MASKED:password_assignment]%26user%3Dbob"
    );
    // Ordinary base64 and hex are not decoded into masks.
    for clean in [
        "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==",
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    ] {
        assert_eq!(masked_text(clean).0, clean);
    }
}

#[test]
fn json_escaped_text_is_read_unescaped() {
    let text = r#"{"stdout": "DB_USER=app\nDB_PASS=Zq8!rT5#kW\n"} trailing"#;
    let (masked, _) = masked_text(text);
    assert_eq!(
        masked,
        r#"{"stdout": "DB_USER=app\nDB_PASS=[MASKED:password_assignment]\n"} trailing"#
    );
}

#[test]
fn a_vendor_token_glued_to_more_token_characters_is_still_masked() {
    // A fixed-length base62 body followed by more letters or digits (a token glued to the
    // next word, a longer future format, a padded copy) is the token: the whole run goes.
    // Found by the `mask` fuzz target: `ghp_` + 37 characters used to pass untouched.
    let body = super::corpus::alnum(36);
    for (text, want) in [
        (format!("n=ghp_{body}A rest"), "n=[MASKED:github_pat] rest"),
        (format!("ghp_{body}x9_suffix"), "[MASKED:github_pat]_suffix"),
        (
            "key AKIAIOSFODNN7EXAMPLE0 here".to_owned(),
            "key [MASKED:aws_access_key_id] here",
        ),
    ] {
        assert_eq!(masked_text(&text).0, want, "{text}");
    }
    // Hex bodies keep their exact length: `key-` + a sha256 is a cache key, not Mailgun's.
    let cache_key = format!("cache-key-{}", super::corpus::hex(64));
    assert_eq!(masked_text(&cache_key).0, cache_key);
}
