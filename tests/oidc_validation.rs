//! Bearer-token validation against a real, certified OpenID provider (npm
//! `oidc-provider`): real client_credentials JWT access tokens are accepted; hand-made
//! hostile ones are refused with the right error and status; key rotation and an IdP
//! outage behave. Needs `npm ci` in tests/mcp/node; no root.

mod support;

use std::{
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use gateway_agent::identity::{Authenticator, IssuerConfig, TokenError};
use serde_json::{Value, json};
use support::oidc::{CLIENT_ID, OidcProvider, mint_with};

const AUD: &str = "https://mcp.example.test/gateway";
const METADATA: &str = "http://127.0.0.1:9/.well-known/oauth-protected-resource";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn config(provider: &OidcProvider) -> IssuerConfig {
    IssuerConfig::new(provider.issuer(), vec![AUD.to_owned()])
}

/// Claims a real token from `provider` would carry, to be edited into hostile ones.
fn claims(provider: &OidcProvider) -> Value {
    let now = now();
    json!({
        "iss": provider.issuer(), "sub": "mallory", "client_id": "mallory",
        "aud": AUD, "iat": now, "exp": now + 300, "scope": "mcp:tools",
    })
}

fn with(mut claims: Value, name: &str, value: Value) -> Value {
    claims[name] = value;
    claims
}

async fn refused(auth: &Authenticator, token: &str) -> TokenError {
    match auth.authenticate(token, &[]).await {
        Ok(claims) => panic!("token accepted, should be refused: {claims:?}"),
        Err(e) => e,
    }
}

/// Also routes the library's logs (refresh outcomes) to the test's output.
fn provider(dir: &tempfile::TempDir) -> OidcProvider {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("gateway_agent=debug")
        .with_test_writer()
        .try_init();
    OidcProvider::start(&dir.path().join("keys.json"))
}

#[tokio::test]
async fn real_tokens_are_accepted_with_their_identity() {
    let dir = tempfile::tempdir().unwrap();
    let idp = provider(&dir);
    let auth = Authenticator::discover(&[config(&idp)]).await.unwrap();
    assert_eq!(auth.authorization_servers(), vec![idp.issuer()]);

    let token = idp.token(AUD, "mcp:tools mcp:admin");
    let claims = auth.authenticate(&token, &[]).await.unwrap();
    assert_eq!(claims.issuer, idp.issuer());
    assert_eq!(claims.subject, CLIENT_ID);
    assert_eq!(claims.client_id.as_deref(), Some(CLIENT_ID));
    assert_eq!(claims.scopes, ["mcp:tools", "mcp:admin"]);
    // Second time from the cache, same answer; a scope the server needs is still checked.
    assert_eq!(auth.authenticate(&token, &[]).await.unwrap(), claims);
    let admin = ["mcp:admin".to_owned()];
    auth.authenticate(&token, &admin).await.unwrap();

    // ES256 from the same key set, with and without a kid.
    for header in [
        json!({"alg": "ES256", "typ": "at+jwt"}),
        json!({"alg": "ES256", "kid": null}),
    ] {
        let es = idp.mint(header, claims_for(&idp, "es-caller"));
        let got = auth.authenticate(&es, &[]).await.unwrap();
        assert_eq!(got.subject, "es-caller");
    }
}

fn claims_for(idp: &OidcProvider, sub: &str) -> Value {
    with(claims(idp), "sub", json!(sub))
}

#[tokio::test]
async fn hostile_tokens_are_refused_with_the_right_error() {
    let dir = tempfile::tempdir().unwrap();
    let idp = provider(&dir);
    let auth = Authenticator::discover(&[config(&idp)]).await.unwrap();
    let now = now();
    let good = claims(&idp);
    let rs = json!({"alg": "RS256", "typ": "at+jwt"});

    // The baseline really is valid, so each case below fails for its own reason only.
    auth.authenticate(&idp.mint(rs.clone(), good.clone()), &[])
        .await
        .unwrap();

    let missing = refused(&auth, "").await;
    assert_eq!(missing, TokenError::Missing);
    assert_eq!(missing.status(), 401);
    assert_eq!(
        missing.www_authenticate(METADATA),
        format!("Bearer resource_metadata=\"{METADATA}\"")
    );

    assert!(matches!(
        refused(&auth, "not-a-jwt").await,
        TokenError::Malformed(_)
    ));

    let none = idp.mint(json!({"alg": "none"}), good.clone());
    assert_eq!(
        refused(&auth, &none).await,
        TokenError::UnsupportedAlgorithm("none".into())
    );

    // HMAC keyed with the issuer's public RSA key: the algorithm-confusion attack.
    let hs = idp.mint(json!({"alg": "HS256"}), good.clone());
    assert_eq!(
        refused(&auth, &hs).await,
        TokenError::UnsupportedAlgorithm("HS256".into())
    );

    let evil = with(good.clone(), "iss", json!("https://evil.example"));
    assert_eq!(
        refused(&auth, &idp.mint(rs.clone(), evil)).await,
        TokenError::UnknownIssuer("https://evil.example".into())
    );

    // A genuine token, but for another resource server.
    let elsewhere = idp.token("https://other.example.test/api", "mcp:tools");
    assert_eq!(refused(&auth, &elsewhere).await, TokenError::WrongAudience);
    let aud_list = with(
        good.clone(),
        "aud",
        json!(["https://a.example", "https://b"]),
    );
    assert_eq!(
        refused(&auth, &idp.mint(rs.clone(), aud_list)).await,
        TokenError::WrongAudience
    );

    let expired = with(
        with(good.clone(), "exp", json!(now - 3600)),
        "iat",
        json!(now - 4000),
    );
    let err = refused(&auth, &idp.mint(rs.clone(), expired)).await;
    assert_eq!(err, TokenError::Expired);
    assert_eq!(err.status(), 401);
    assert!(
        err.www_authenticate(METADATA)
            .starts_with("Bearer error=\"invalid_token\", error_description=\"token expired\"")
    );

    let no_exp = {
        let mut c = good.clone();
        c.as_object_mut().unwrap().remove("exp");
        c
    };
    assert_eq!(
        refused(&auth, &idp.mint(rs.clone(), no_exp)).await,
        TokenError::MissingClaim("exp")
    );

    let early = with(good.clone(), "nbf", json!(now + 3600));
    assert_eq!(
        refused(&auth, &idp.mint(rs.clone(), early)).await,
        TokenError::NotYetValid
    );

    let future = with(good.clone(), "iat", json!(now + 3600));
    assert_eq!(
        refused(&auth, &idp.mint(rs.clone(), future)).await,
        TokenError::IssuedInFuture
    );

    let unknown = idp.mint(json!({"alg": "RS256", "kid": "no-such-key"}), good.clone());
    assert!(matches!(
        refused(&auth, &unknown).await,
        TokenError::UnknownKey { kid: Some(k), .. } if k == "no-such-key"
    ));

    // Signed by a key nobody trusts, under the trusted key's kid.
    let stranger = mint_with(
        &dir.path().join("stranger.json"),
        json!({"alg": "RS256", "kid": idp.kid("RS256")}),
        good.clone(),
    );
    assert_eq!(refused(&auth, &stranger).await, TokenError::BadSignature);

    // A valid signature over other claims: swap the payload in.
    let real = idp.mint(rs.clone(), good.clone());
    let other = idp.mint(rs.clone(), with(good.clone(), "sub", json!("root")));
    let parts: Vec<&str> = real.split('.').collect();
    let spliced = format!(
        "{}.{}.{}",
        parts[0],
        other.split('.').nth(1).unwrap(),
        parts[2]
    );
    assert_eq!(refused(&auth, &spliced).await, TokenError::BadSignature);

    // The algorithm must fit the key the token names: ES256 under the RSA key's kid.
    let mismatch = idp.mint(
        json!({"alg": "ES256", "kid": idp.kid("RS256")}),
        good.clone(),
    );
    assert!(matches!(
        refused(&auth, &mismatch).await,
        TokenError::KeyMismatch { .. }
    ));

    // Not allowed by this issuer's configuration although the key set could verify it.
    let mut rsa_only = config(&idp);
    rsa_only.algorithms = vec!["RS256".into()];
    let strict = Authenticator::discover(&[rsa_only]).await.unwrap();
    let es = idp.mint(json!({"alg": "ES256"}), good.clone());
    auth.authenticate(&es, &[]).await.unwrap();
    assert_eq!(
        refused(&strict, &es).await,
        TokenError::UnsupportedAlgorithm("ES256".into())
    );

    // Valid token, too few scopes: 403 with the scopes to ask for.
    let tools_only = idp.token(AUD, "mcp:tools");
    let err = auth
        .authenticate(&tools_only, &["mcp:admin".to_owned()])
        .await
        .unwrap_err();
    assert_eq!(
        err,
        TokenError::InsufficientScope {
            missing: vec!["mcp:admin".into()],
            required: vec!["mcp:admin".into()],
        }
    );
    assert_eq!(err.status(), 403);
    assert!(err
        .www_authenticate(METADATA)
        .contains("error=\"insufficient_scope\", error_description=\"insufficient scope\", scope=\"mcp:admin\""));
    // The issuer's own required scopes apply to every token.
    let mut needs_admin = config(&idp);
    needs_admin.required_scopes = vec!["mcp:admin".into()];
    let admin_auth = Authenticator::discover(&[needs_admin]).await.unwrap();
    assert_eq!(refused(&admin_auth, &tools_only).await.status(), 403);
}

#[tokio::test]
async fn rotation_is_picked_up_and_withdrawn_keys_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut idp = provider(&dir);
    let mut eager = config(&idp);
    eager.jwks_min_refresh_secs = 0;
    let mut slow = config(&idp);
    slow.jwks_min_refresh_secs = 3600;
    let auth = Arc::new(Authenticator::discover(&[eager]).await.unwrap());
    let limited = Authenticator::discover(&[slow]).await.unwrap();

    let old = idp.token(AUD, "mcp:tools");
    auth.authenticate(&old, &[]).await.unwrap();
    limited.authenticate(&old, &[]).await.unwrap();

    idp.restart_with_new_keys();
    let new = idp.token(AUD, "mcp:tools");
    assert_ne!(old.split('.').next(), new.split('.').next(), "kid changed");

    // Rate-limited: the unknown kid may not trigger a refresh yet.
    assert!(matches!(
        refused(&limited, &new).await,
        TokenError::UnknownKey { .. }
    ));

    // Many callers at once with the new kid: one shared refresh, all accepted.
    let callers: Vec<_> = (0..8)
        .map(|_| {
            let auth = auth.clone();
            let new = new.clone();
            tokio::spawn(async move { auth.authenticate(&new, &[]).await })
        })
        .collect();
    for caller in callers {
        caller.await.unwrap().unwrap();
    }
    // The old key is gone from the provider: its token, though cached, is refused now.
    assert!(matches!(
        refused(&auth, &old).await,
        TokenError::UnknownKey { .. }
    ));
}

#[tokio::test]
async fn an_idp_outage_keeps_the_cached_keys() {
    let dir = tempfile::tempdir().unwrap();
    let mut idp = provider(&dir);
    let mut eager = config(&idp);
    eager.jwks_min_refresh_secs = 0;
    let auth = Authenticator::discover(&[eager]).await.unwrap();
    idp.stop();

    // Never seen before, so verified now, with the keys held since discovery.
    let fresh = idp.mint(json!({"alg": "RS256"}), claims(&idp));
    assert_eq!(
        auth.authenticate(&fresh, &[]).await.unwrap().subject,
        "mallory"
    );
    // An unknown kid tries a refresh, which fails; the held keys survive it. The token
    // may be good (the provider may have rotated), so it is "unavailable" (503), not 401.
    let unknown = idp.mint(json!({"alg": "RS256", "kid": "next"}), claims(&idp));
    let err = refused(&auth, &unknown).await;
    assert!(
        matches!(err, TokenError::KeysUnavailable { .. }) && err.status() == 503,
        "{err:?}"
    );
    let es = idp.mint(json!({"alg": "ES256"}), claims(&idp));
    auth.authenticate(&es, &[]).await.unwrap();

    // Starting without the IdP fails, naming the issuer.
    let err = Authenticator::discover(&[config(&idp)]).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains(&idp.issuer()), "{text}");
    assert!(text.contains("discovery"), "{text}");
}
