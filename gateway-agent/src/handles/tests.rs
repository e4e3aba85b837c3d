use super::*;

fn binding(principal: &str, session: &str, server: &str) -> Binding {
    Binding {
        principal: principal.into(),
        session: session.into(),
        server: server.into(),
    }
}

fn issued(handles: &Handles, b: &Binding) -> (String, String) {
    let original = r#"{"text":"use ghp_secret1 now"}"#;
    let masked = r#"{"text":"use [MASKED:github_token] now"}"#;
    let out = handles.issue(original, masked, b).unwrap();
    assert!(!out.contains("ghp_secret1"));
    let start = out.find(PREFIX).unwrap();
    let handle = out[start..start + PREFIX.len() + HEX_LEN + 1].to_owned();
    (out, handle)
}

#[test]
fn the_same_caller_session_and_server_get_the_value_back() {
    let handles = Handles::new(&HandlesConfig::default());
    let b = binding("uid:0", "s1", "srv");
    let (_, handle) = issued(&handles, &b);
    let body = format!(r#"{{"arguments":{{"token":"{handle}"}}}}"#);
    let (resolved, count) = handles.resolve(&body, &b).unwrap();
    assert_eq!(count, 1);
    assert_eq!(
        resolved.unwrap(),
        r#"{"arguments":{"token":"ghp_secret1"}}"#
    );
}

#[test]
fn another_server_caller_or_session_an_unknown_or_expired_handle_is_refused() {
    let handles = Handles::new(&HandlesConfig::default());
    let b = binding("uid:0", "s1", "srv");
    let (_, handle) = issued(&handles, &b);
    for (other, why) in [
        (binding("uid:0", "s1", "other"), "another server"),
        (binding("uid:1000", "s1", "srv"), "another caller"),
        (binding("uid:0", "s2", "srv"), "another MCP session"),
    ] {
        let err = handles.resolve(&handle, &other).unwrap_err();
        assert!(err.contains(why), "{err}");
    }
    let forged = format!("{PREFIX}{}]", "0".repeat(HEX_LEN));
    assert!(
        handles
            .resolve(&forged, &b)
            .unwrap_err()
            .contains("unknown")
    );

    let expired = Handles::new(&HandlesConfig {
        ttl_secs: 0,
        ..HandlesConfig::default()
    });
    let (_, handle) = issued(&expired, &b);
    assert!(expired.resolve(&handle, &b).is_err());
}

#[test]
fn text_that_only_looks_like_a_handle_passes_and_the_store_is_bounded() {
    let handles = Handles::new(&HandlesConfig {
        max_handles: 2,
        ..HandlesConfig::default()
    });
    let b = binding("uid:0", "s1", "srv");
    assert_eq!(handles.resolve("[SECRET:h_nothex]", &b).unwrap(), (None, 0));
    let first = issued(&handles, &b).1;
    issued(&handles, &b);
    issued(&handles, &b);
    assert!(
        handles.resolve(&first, &b).is_err(),
        "the oldest was dropped"
    );
}
