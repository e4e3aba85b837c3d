//! Key matching: spellings, look-alikes, operator keys.

use super::super::keys::SensitiveKeys;

fn builtin() -> SensitiveKeys {
    SensitiveKeys::new(&[]).unwrap()
}

#[test]
fn spellings_of_one_key_match() {
    let keys = builtin();
    for key in [
        "password",
        "Password",
        "PASSWORD",
        "passwd",
        "pwd",
        "secret",
        "token",
        "access_token",
        "accessToken",
        "refresh_token",
        "id_token",
        "api_key",
        "apiKey",
        "API_KEY",
        "api-key",
        "Api Key",
        "x-api-key",
        "X-API-KEY",
        "access_key",
        "secret_key",
        "private_key",
        "privateKey",
        "client_secret",
        "clientSecret",
        "authorization",
        "Authorization",
        "Proxy-Authorization",
        "cookie",
        "set-cookie",
        "Set-Cookie",
        "session",
        "sessionId",
        "connection_string",
        "ConnectionString",
        "credentials",
        "credential",
        "DB_PASSWORD",
        "db.password",
        "githubToken",
        "GITHUB_TOKEN",
        "aws_secret_access_key",
        "AWS_SECRET_ACCESS_KEY",
        "webhook_secret",
        "csrf_token",
        "dsn",
    ] {
        assert!(keys.is_sensitive(key), "{key} should be secret");
    }
}

#[test]
fn look_alikes_do_not_match() {
    let keys = builtin();
    for key in [
        "max_tokens",
        "maxTokens",
        "max_token",
        "token_count",
        "tokenCount",
        "tokenizer",
        "tokens",
        "total_tokens",
        "input_tokens",
        "password_policy",
        "passwordPolicy",
        "password_min_length",
        "secret_name",
        "secretary",
        "nextPageToken",
        "page_token",
        "progressToken",
        "continuation_token",
        "token_type",
        "passed",
        "bypass",
        "compass",
        "username",
        "user",
        "description",
        "keyboard",
        "key",
        "keys",
        "monkey",
        "author",
        "session_count",
        "cookie_policy",
        "credentials_url",
        "apikey_id",
        "",
        "---",
    ] {
        assert!(!keys.is_sensitive(key), "{key} should not be secret");
    }
}

#[test]
fn operator_keys_are_normalised() {
    let keys = SensitiveKeys::new(&["X-Vendor-Auth".to_owned()]).unwrap();
    assert!(keys.is_sensitive("x_vendor_auth"));
    assert!(keys.is_sensitive("xVendorAuth"));
    assert!(!keys.is_sensitive("vendor"));
    assert!(!keys.is_sensitive("x_vendor_author"));
    assert_eq!(SensitiveKeys::new(&["--".to_owned()]).err().unwrap(), "--");
    // Names too short for the ending shortcut still match exactly.
    let keys = SensitiveKeys::new(&["P-W".to_owned()]).unwrap();
    assert!(keys.is_sensitive("pw") && keys.is_sensitive("PW"));
    assert!(!keys.is_sensitive("pwx") && !keys.is_sensitive("p"));
    assert!(keys.is_sensitive("password"), "built-ins still apply");
}

#[test]
fn long_keys_take_the_slow_path_correctly() {
    let keys = builtin();
    let long = format!("{}_password", "very_long_prefix_".repeat(8));
    assert!(keys.is_sensitive(&long));
    assert!(!keys.is_sensitive(&format!("{}_count", "token_".repeat(20))));
}

#[test]
fn sensitive_words_inside_compound_names_match() {
    let keys = builtin();
    for key in [
        "smtp_pass",
        "adminPwd",
        "DB_PASS",
        "db_pw",
        "ldapBindPw",
        "root_pass2",
        "Ocp-Apim-Subscription-Key",
        "APP_KEY",
        "SECRET_KEY_BASE",
        "client-key-data",
        "password_hash",
        "secret_value",
        "api_keys",
        "accessTokens",
        "fcm_server_key",
        "AccountKey",
        "auth",
        "basic_auth",
        "mysqlRootPassword",
        "APIKey",
    ] {
        assert!(keys.is_sensitive(key), "{key} should be secret");
    }
}

#[test]
fn safe_compounds_stay() {
    let keys = builtin();
    for key in [
        "passenger",
        "passenger_count",
        "pass_through",
        "passport",
        "bypass_cache",
        "compass_heading",
        "password_changed_at",
        "password_reset_required",
        "client-certificate-data",
        "private_key_id",
        "access_key_id",
        "token_endpoint",
        "authorization_endpoint",
        "cancellationToken",
        "author",
        "oauth_provider",
        "secret_ref",
    ] {
        assert!(!keys.is_sensitive(key), "{key} should not be secret");
    }
}

#[test]
fn name_value_names_are_judged_by_their_last_segment() {
    let keys = builtin();
    assert!(keys.is_sensitive_name_value("DB_PASSWORD"));
    assert!(keys.is_sensitive_name_value("/prod/billing/db/password"));
    assert!(keys.is_sensitive_name_value("DbPassword"));
    assert!(!keys.is_sensitive_name_value("/prod/billing/db/host"));
    assert!(!keys.is_sensitive_name_value("password/policy"));
}
