use serde_json::json;

use super::*;

fn process() -> ProcessIdentity {
    ProcessIdentity {
        pid: 4242,
        tid: 4243,
        uid: 1000,
        gid: 100,
        comm: "python3".into(),
        cgroup_id: 7,
        user: Some("alice".into()),
        exe: Some("/usr/bin/python3.11".into()),
        cgroup: Some("/user.slice/user-1000.slice/session-3.scope".into()),
        unit: None,
        container: None,
    }
}

fn claims(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => unreachable!(),
    }
}

#[test]
fn process_accessors() {
    let p = Principal::from_process(process());
    assert_eq!(p.user(), Some("alice"));
    assert_eq!(p.uid(), Some(1000));
    assert_eq!(p.gid(), Some(100));
    assert_eq!(p.comm(), Some("python3"));
    assert_eq!(p.exe(), Some(Path::new("/usr/bin/python3.11")));
    assert_eq!(
        p.cgroup(),
        Some("/user.slice/user-1000.slice/session-3.scope")
    );
    assert!(p.groups().is_empty());
    assert!(p.claim("sub").is_empty());
}

#[test]
fn unknown_caller_has_nothing() {
    let p = Principal::default();
    assert_eq!(
        (p.user(), p.uid(), p.gid(), p.comm()),
        (None, None, None, None)
    );
    assert_eq!((p.exe(), p.cgroup()), (None, None));
    assert!(p.groups().is_empty() && p.claim("email").is_empty());
}

#[test]
fn token_claims_are_normalised() {
    let token = TokenClaims::from_claims(
        claims(json!({
            "iss": "https://idp.example.com",
            "sub": "u-123",
            "email": "ana@example.com",
            "azp": "cli",
            "roles": ["admins", "data"],
            "scope": "openid mcp:read",
            "tenant": "acme",
            "level": 3,
            "teams": ["red", 7]
        })),
        "roles",
    )
    .unwrap();
    assert_eq!(token.client_id.as_deref(), Some("cli"));
    assert_eq!(token.groups, ["admins", "data"]);
    assert_eq!(token.scopes, ["openid", "mcp:read"]);
    assert!(!token.extra.contains_key("iss") && token.extra.contains_key("tenant"));
    let p = Principal {
        process: None,
        token: Some(token),
    };
    assert_eq!(p.groups(), ["admins", "data"]);
    assert_eq!(p.claim("iss"), ["https://idp.example.com"]);
    assert_eq!(p.claim("email"), ["ana@example.com"]);
    assert_eq!(p.claim("azp"), ["cli"]);
    assert_eq!(p.claim("scope"), ["openid", "mcp:read"]);
    assert_eq!(p.claim("tenant"), ["acme"]);
    assert_eq!(p.claim("level"), ["3"]);
    assert_eq!(p.claim("teams"), ["red", "7"]);
    assert!(p.claim("name").is_empty() && p.claim("missing").is_empty());
    // Process conditions still see nothing: the token says nothing about the process.
    assert_eq!(p.uid(), None);
}

#[test]
fn token_without_issuer_or_subject_is_refused() {
    assert!(TokenClaims::from_claims(claims(json!({"sub": "x"})), "groups").is_none());
    assert!(TokenClaims::from_claims(claims(json!({"iss": "x", "sub": 5})), "groups").is_none());
}

#[test]
fn serializes_for_audit() {
    let p = Principal::from_process(process());
    let value = serde_json::to_value(&p).unwrap();
    assert_eq!(value["process"]["uid"], 1000);
    assert_eq!(value["process"]["exe"], "/usr/bin/python3.11");
    assert_eq!(value["token"], Value::Null);
}
