use http::Request;

use super::*;

fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
    let mut request = Request::get(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(()).unwrap().into_parts().0
}

#[test]
fn reads_one_bearer_token() {
    let p = parts("/mcp", &[("authorization", "Bearer abc.def.ghi")]);
    assert_eq!(bearer(&p.headers), Ok(Some("abc.def.ghi")));
    let p = parts("/mcp", &[("authorization", "bearer   xyz ")]);
    assert_eq!(bearer(&p.headers), Ok(Some("xyz")));
    assert_eq!(bearer(&parts("/mcp", &[]).headers), Ok(None));
}

#[test]
fn refuses_ambiguous_or_foreign_authorization() {
    for headers in [
        vec![("authorization", "Basic dXNlcjpwYXNz")],
        vec![("authorization", "Bearer")],
        vec![("authorization", "Bearer  ")],
        vec![("authorization", "Bearer a"), ("authorization", "Bearer b")],
    ] {
        let p = parts("/mcp", &headers);
        assert!(bearer(&p.headers).is_err(), "{headers:?}");
    }
}

#[test]
fn metadata_url_inserts_the_well_known_path() {
    let server = ServerSettings::default();
    let p = parts("/mcp", &[("host", "127.0.0.1:3001")]);
    assert_eq!(resource_uri(&p, &server), "http://127.0.0.1:3001/mcp");
    assert_eq!(
        metadata_url(&p, &server),
        "http://127.0.0.1:3001/.well-known/oauth-protected-resource/mcp"
    );
    // A request for the document itself names the resource without the prefix.
    let p = parts(
        "/.well-known/oauth-protected-resource/mcp",
        &[("host", "127.0.0.1:3001")],
    );
    assert_eq!(resource_uri(&p, &server), "http://127.0.0.1:3001/mcp");
    let p = parts("/", &[("host", "mcp.internal:8000")]);
    assert_eq!(
        metadata_url(&p, &server),
        "http://mcp.internal:8000/.well-known/oauth-protected-resource"
    );
}

#[test]
fn a_pinned_resource_wins() {
    let server = ServerSettings {
        resource: Some("https://mcp.example.com/tools/".into()),
        ..ServerSettings::default()
    };
    let p = parts("/whatever", &[("host", "127.0.0.1:3001")]);
    assert_eq!(resource_uri(&p, &server), "https://mcp.example.com/tools/");
    assert_eq!(
        metadata_url(&p, &server),
        "https://mcp.example.com/.well-known/oauth-protected-resource/tools"
    );
}

#[test]
fn audience_may_be_a_string_or_a_list() {
    let mut claims = TokenClaims::default();
    assert!(!audience_named(&claims, "a"));
    claims.extra.insert("aud".into(), "a".into());
    assert!(audience_named(&claims, "a"));
    assert!(!audience_named(&claims, "b"));
    claims
        .extra
        .insert("aud".into(), serde_json::json!(["b", "c"]));
    assert!(audience_named(&claims, "c"));
    assert!(!audience_named(&claims, "a"));
}
