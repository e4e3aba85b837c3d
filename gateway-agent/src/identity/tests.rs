use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use openidconnect::{
    JsonWebKeyId,
    core::{CoreJsonCurveType, CoreJsonWebKey, CoreJsonWebKeySet, CoreJwsSigningAlgorithm},
};
use serde_json::{Map, Value, json};

use super::{cache, jwt, keys, *};

const ISS: &str = "https://idp.example.com";
const NOW: u64 = 1_800_000_000;

fn issuer() -> IssuerConfig {
    IssuerConfig::new(ISS, vec!["https://mcp.example.com".into()])
}

fn claims(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => unreachable!(),
    }
}

fn good() -> Map<String, Value> {
    claims(json!({
        "iss": ISS, "sub": "alice", "aud": "https://mcp.example.com",
        "exp": NOW + 300, "iat": NOW, "nbf": NOW,
    }))
}

fn token(header: Value, payload: Value) -> String {
    let enc = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.{}",
        enc(&header),
        enc(&payload),
        URL_SAFE_NO_PAD.encode(b"sig")
    )
}

#[test]
fn config_defaults_and_deny_unknown_fields() {
    let parsed: IssuerConfig =
        toml::from_str(&format!("issuer = \"{ISS}\"\naudiences = [\"a\"]")).unwrap();
    assert_eq!(parsed.groups_claim, "groups");
    assert_eq!(parsed.clock_skew_secs, 60);
    assert_eq!(parsed.jwks_refresh_secs, 3600);
    assert_eq!(parsed.jwks_min_refresh_secs, 30);
    assert_eq!(parsed.algorithms.len(), 9);
    parsed.validate().unwrap();
    let typo = toml::from_str::<IssuerConfig>(&format!(
        "issuer = \"{ISS}\"\naudiences = [\"a\"]\naudience = \"b\""
    ));
    assert!(typo.unwrap_err().to_string().contains("unknown field"));
}

#[test]
fn config_validation_names_the_problem() {
    let check = |edit: fn(&mut IssuerConfig), want: &str| {
        let mut config = issuer();
        edit(&mut config);
        let err = config.validate().unwrap_err();
        assert!(err.contains(want), "{err:?} should mention {want:?}");
        assert!(
            err.contains(&config.issuer),
            "{err:?} should name the issuer"
        );
    };
    check(|c| c.algorithms = vec!["none".into()], "never accepted");
    check(|c| c.algorithms = vec!["HS256".into()], "HMAC");
    check(|c| c.algorithms = vec!["hs512".into()], "HMAC");
    check(|c| c.algorithms = vec!["ES512".into()], "not supported");
    check(|c| c.algorithms = vec![], "algorithms is empty");
    check(|c| c.audiences = vec![], "audiences");
    check(|c| c.issuer = "http://idp.example.com".into(), "https");
    check(|c| c.issuer = "not a url".into(), "not a URL");
    check(|c| c.jwks_refresh_secs = 0, "jwks_refresh_secs");
    check(|c| c.jwks_min_refresh_secs = 7200, "jwks_min_refresh_secs");
    let mut local = issuer();
    local.issuer = "http://127.0.0.1:8080/oidc".into();
    local.validate().unwrap();
}

#[test]
fn none_and_hmac_are_refused_before_any_key_lookup() {
    for alg in ["none", "NONE", "HS256", "HS384", "HS512", "ES512", "XY1"] {
        let t = token(json!({"alg": alg, "kid": "k"}), Value::Object(good()));
        assert_eq!(
            jwt::parse(&t).unwrap_err(),
            TokenError::UnsupportedAlgorithm(alg.into()),
            "{alg}"
        );
    }
    let t = token(json!({"alg": "RS256", "kid": "k"}), Value::Object(good()));
    let parsed = jwt::parse(&t).unwrap();
    assert_eq!(parsed.alg, CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256);
    assert_eq!(parsed.header.kid.as_deref(), Some("k"));
    assert_eq!(parsed.signature, b"sig");
    assert_eq!(
        parsed.signing_input,
        t.rsplit_once('.').unwrap().0.as_bytes()
    );
}

#[test]
fn malformed_tokens_say_why() {
    let malformed = |t: &str| match jwt::parse(t) {
        Err(TokenError::Malformed(why)) => why,
        other => panic!("{t:?}: {other:?}"),
    };
    assert!(malformed("abc").contains("1 dot-separated"));
    assert!(malformed("a.b.c.d.e").contains("JWE"));
    assert!(malformed("!!.a.b").contains("header is not base64url"));
    assert!(malformed(&"a".repeat(20_000)).contains("longer"));
    let array = token(json!({"alg": "RS256"}), json!([1]));
    assert!(malformed(&array).contains("not a JSON object"));
    let crit = token(json!({"alg": "RS256", "crit": ["b64"]}), json!({}));
    assert!(malformed(&crit).contains("crit"));
    assert_eq!(jwt::parse("").unwrap_err(), TokenError::Missing);
}

#[test]
fn token_type_must_be_an_access_token() {
    for ok in ["at+jwt", "application/at+jwt", "JWT", "jwt"] {
        jwt::parse(&token(json!({"alg": "ES256", "typ": ok}), json!({}))).unwrap();
    }
    let id_token = token(json!({"alg": "ES256", "typ": "id+jwt"}), json!({}));
    assert_eq!(
        jwt::parse(&id_token).unwrap_err(),
        TokenError::WrongType("id+jwt".into())
    );
}

#[test]
fn claim_checks() {
    let config = issuer();
    let check = |edit: &dyn Fn(&mut Map<String, Value>)| {
        let mut c = good();
        edit(&mut c);
        jwt::check_claims(&c, &config, NOW)
    };
    assert_eq!(check(&|_| {}), Ok(NOW + 300));
    assert_eq!(
        check(&|c| drop(c.insert("aud".into(), json!(["x", "https://mcp.example.com"])))),
        Ok(NOW + 300)
    );
    assert_eq!(
        check(&|c| drop(c.insert("aud".into(), json!(["x", "y"])))),
        Err(TokenError::WrongAudience)
    );
    assert_eq!(
        check(&|c| drop(c.insert("aud".into(), json!("https://mcp.example.com/other")))),
        Err(TokenError::WrongAudience)
    );
    assert_eq!(
        check(&|c| drop(c.remove("aud"))),
        Err(TokenError::MissingClaim("aud"))
    );
    assert_eq!(
        check(&|c| drop(c.insert("iss".into(), json!("https://evil.example")))),
        Err(TokenError::UnknownIssuer("https://evil.example".into()))
    );
    assert_eq!(
        check(&|c| drop(c.remove("exp"))),
        Err(TokenError::MissingClaim("exp"))
    );
    assert!(matches!(
        check(&|c| drop(c.insert("exp".into(), json!("soon")))),
        Err(TokenError::Malformed(_))
    ));
    // Skew: 60 s either way is tolerated, one second more is not.
    assert!(check(&|c| drop(c.insert("exp".into(), json!(NOW - 59)))).is_ok());
    assert_eq!(
        check(&|c| drop(c.insert("exp".into(), json!(NOW - 60)))),
        Err(TokenError::Expired)
    );
    assert!(check(&|c| drop(c.insert("nbf".into(), json!(NOW + 60)))).is_ok());
    assert_eq!(
        check(&|c| drop(c.insert("nbf".into(), json!(NOW + 61)))),
        Err(TokenError::NotYetValid)
    );
    assert_eq!(
        check(&|c| drop(c.insert("iat".into(), json!(NOW + 61)))),
        Err(TokenError::IssuedInFuture)
    );
    assert!(check(&|c| drop(c.insert("iat".into(), json!(NOW as f64 + 0.5)))).is_ok());
}

#[test]
fn missing_scopes_keep_order_and_drop_repeats() {
    let granted = vec!["mcp:tools".to_owned()];
    let required = ["mcp:admin", "mcp:tools", "mcp:admin", "x"].map(String::from);
    assert_eq!(
        jwt::missing_scopes(&granted, &required),
        vec!["mcp:admin".to_owned(), "x".to_owned()]
    );
    assert!(jwt::missing_scopes(&granted, &granted).is_empty());
}

#[test]
fn www_authenticate_values() {
    let url = "https://gw.example/.well-known/oauth-protected-resource";
    assert_eq!(
        TokenError::Missing.www_authenticate(url),
        format!("Bearer resource_metadata=\"{url}\"")
    );
    assert_eq!(
        TokenError::Expired.www_authenticate(url),
        format!(
            "Bearer error=\"invalid_token\", error_description=\"token expired\", \
             resource_metadata=\"{url}\""
        )
    );
    let scope = TokenError::InsufficientScope {
        missing: vec!["mcp:admin".into()],
        required: vec!["mcp:tools".into(), "mcp:admin".into()],
    };
    assert_eq!(scope.status(), 403);
    assert_eq!(
        scope.www_authenticate(url),
        format!(
            "Bearer error=\"insufficient_scope\", error_description=\"insufficient scope\", \
             scope=\"mcp:tools mcp:admin\", resource_metadata=\"{url}\""
        )
    );
    // Nothing from the token reaches the header; the URL cannot break out of its quotes.
    let unknown = TokenError::UnknownKey {
        issuer: ISS.into(),
        kid: Some("\", error=\"x".into()),
    };
    assert_eq!(unknown.status(), 401);
    assert!(!unknown.www_authenticate("a\"b").contains("error=\"x"));
    assert!(
        unknown
            .www_authenticate("a\"b")
            .ends_with("resource_metadata=\"ab\"")
    );
}

fn rsa(kid: &str) -> CoreJsonWebKey {
    CoreJsonWebKey::new_rsa(
        vec![1; 256],
        vec![1, 0, 1],
        Some(JsonWebKeyId::new(kid.into())),
    )
}

fn ec(kid: &str) -> CoreJsonWebKey {
    CoreJsonWebKey::new_ec(
        vec![1; 32],
        vec![2; 32],
        CoreJsonCurveType::P256,
        Some(JsonWebKeyId::new(kid.into())),
    )
}

#[test]
fn key_selection() {
    use CoreJwsSigningAlgorithm::{EcdsaP256Sha256 as ES256, RsaSsaPkcs1V15Sha256 as RS256};
    let set = CoreJsonWebKeySet::new(vec![rsa("r1"), ec("e1")]);
    let kid = |k: Result<CoreJsonWebKey, TokenError>| {
        use openidconnect::JsonWebKey as _;
        k.map(|k| k.key_id().unwrap().as_str().to_owned())
    };
    assert_eq!(
        kid(keys::select(&set, ISS, Some("r1"), &RS256)),
        Ok("r1".into())
    );
    assert_eq!(kid(keys::select(&set, ISS, None, &ES256)), Ok("e1".into()));
    // An EC key named by an RS256 token: the algorithm must match the key.
    assert_eq!(
        kid(keys::select(&set, ISS, Some("e1"), &RS256)),
        Err(TokenError::KeyMismatch {
            kid: Some("e1".into()),
            alg: "RS256".into()
        })
    );
    assert!(matches!(
        keys::select(&set, ISS, Some("gone"), &RS256),
        Err(TokenError::UnknownKey { kid: Some(_), .. })
    ));
    // No kid and two RSA keys: ambiguous, refused.
    let two = CoreJsonWebKeySet::new(vec![rsa("r1"), rsa("r2")]);
    assert!(matches!(
        keys::select(&two, ISS, None, &RS256),
        Err(TokenError::UnknownKey { kid: None, .. })
    ));
}

#[test]
fn cache_expires_and_stays_bounded() {
    let entry = |until| cache::Entry {
        claims: TokenClaims::default(),
        valid_until: until,
    };
    let cache = cache::TokenCache::new(10);
    cache.insert(cache::hash("a"), entry(NOW + 10), NOW);
    assert!(cache.get(&cache::hash("a"), NOW + 9).is_some());
    assert!(cache.get(&cache::hash("a"), NOW + 10).is_none());
    for i in 0..25u64 {
        cache.insert(cache::hash(&i.to_string()), entry(NOW + 100 + i), NOW);
        assert!(cache.len() <= 10);
    }
    // The newest survive; the soonest to expire were evicted.
    assert!(cache.get(&cache::hash("24"), NOW).is_some());
    assert!(cache.get(&cache::hash("0"), NOW).is_none());
    cache.clear();
    assert_eq!(cache.len(), 0);
}
