//! Faults end to end: the identity provider goes away, then comes back answering garbage
//! where its key set should be, then recovers. Needs root and the OIDC test packages.
//!
//! Defined outcomes: a token signed with a key the agent holds keeps working throughout
//! (the held keys are never replaced by a failed or empty fetch); a token naming a key the
//! agent does not hold gets 503 with Retry-After while the key set cannot be fetched (the
//! token may be valid, so no 401 telling the client to drop it), and 401 once the provider
//! answers again without that key; a key the provider rotated in is accepted once it is
//! back.

mod support;

use std::{
    io::Write as _,
    net::TcpListener,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use serde_json::{Value, json};
use support::{EchoAuthServer, Scenario, oidc::OidcProvider, require_root};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// POSTs a tools/call with `token`; returns (status, the response head, body).
fn call(scenario: &Scenario, url: &str, token: &str) -> (u16, String, String) {
    let auth = format!("authorization: Bearer {token}");
    let out = scenario.curl_output(&[
        "-i",
        "-H",
        &auth,
        "-H",
        "content-type: application/json",
        "--data-binary",
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}"#,
        url,
    ]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_owned())
}

/// A fresh token (its own `jti`, so no verification cache helps) with `kid`, or the
/// provider's own RS256 key id when `None`.
fn token(provider: &OidcProvider, audience: &str, kid: Option<&str>) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let mut header = json!({"alg": "RS256", "typ": "at+jwt"});
    if let Some(kid) = kid {
        header["kid"] = kid.into();
    }
    provider.mint(
        header,
        json!({
            "iss": provider.issuer(),
            "sub": "faults-subject",
            "aud": audience,
            "client_id": "gateway-test",
            "scope": "mcp:tools",
            "iat": now(),
            "exp": now() + 300,
            "jti": format!("faults-{}", NEXT.fetch_add(1, Ordering::SeqCst)),
        }),
    )
}

/// Serves `body` (as `content_type`) to every request on the provider's port while the
/// provider is down; counts requests.
fn garbage_idp(
    port: u16,
    content_type: &'static str,
    body: &'static str,
) -> (Arc<AtomicUsize>, impl FnOnce()) {
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the provider's port");
    let served = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (count, stopping) = (Arc::clone(&served), Arc::clone(&stop));
    let thread = std::thread::spawn(move || {
        for conn in listener.incoming() {
            if stopping.load(Ordering::SeqCst) {
                break;
            }
            let Ok(mut conn) = conn else { continue };
            if support::read_request_head(&mut conn).is_none() {
                continue;
            }
            count.fetch_add(1, Ordering::SeqCst);
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let shutdown = move || {
        stop.store(true, Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(("127.0.0.1", port));
        let _ = thread.join();
    };
    (served, shutdown)
}

#[test]
fn idp_down_or_garbage_keeps_known_keys_and_answers_503_for_unknown_ones() {
    if !require_root("idp_down_or_garbage_keeps_known_keys_and_answers_503_for_unknown_ones") {
        return;
    }
    let scenario = Scenario::new();
    let mut provider = OidcProvider::start(&scenario.dir.path().join("keys.json"));
    let server = EchoAuthServer::start();
    let url = server.url();
    let config = scenario.config_with(
        &[server.port],
        &format!(
            "\n[[identity.issuer]]\nissuer = \"{issuer}\"\naudiences = [\"{url}\"]\n\
             jwks_min_refresh_secs = 1\n\n[[server]]\nname = \"echo\"\naddr = \"127.0.0.1:{port}\"\n\
             auth = \"require\"\n",
            issuer = provider.issuer(),
            port = server.port,
        ),
    );
    let agent = scenario.start_agent(&config);
    assert_eq!(call(&scenario, &url, &token(&provider, &url, None)).0, 200);

    // The provider is down.
    provider.stop();
    let (status, _, body) = call(&scenario, &url, &token(&provider, &url, None));
    assert_eq!(status, 200, "known key during the outage: {body}");
    let (status, head, body) = call(&scenario, &url, &token(&provider, &url, Some("k-new")));
    assert_eq!(status, 503, "unknown key during the outage: {body}");
    assert!(head.contains("retry-after: 5"), "{head}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cannot be fetched"),
        "{answer}"
    );
    agent.wait_for("request refused by the identity stage", |l| {
        l["status"] == 503
    });

    // The provider's port answers garbage where the key set should be.
    let port: u16 = provider
        .issuer()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    for (case, content_type, body) in [
        (
            "html",
            "text/html",
            "<html><body>502 Bad Gateway</body></html>",
        ),
        (
            "invalid keys",
            "application/json",
            r#"{"keys":[{"kty":"RSA","kid":"junk","n":"%%%","e":"AQAB"},{"kty":"EC","kid":"x"}]}"#,
        ),
        ("empty set", "application/json", r#"{"keys":[]}"#),
    ] {
        let (served, shutdown) = garbage_idp(port, content_type, body);
        let (status, _, answer) = call(&scenario, &url, &token(&provider, &url, Some("k-garbage")));
        assert_eq!(status, 503, "{case}: unknown key: {answer}");
        assert!(served.load(Ordering::SeqCst) > 0, "{case}: never asked");
        let (status, _, answer) = call(&scenario, &url, &token(&provider, &url, None));
        assert_eq!(status, 200, "{case}: known key after garbage: {answer}");
        shutdown();
    }

    // The provider is back, with a rotated key: its tokens are accepted, unknown kids get
    // a plain 401 again.
    provider.restart_with_new_keys();
    let (status, _, body) = call(&scenario, &url, &token(&provider, &url, None));
    assert_eq!(status, 200, "rotated key after recovery: {body}");
    let (status, head, body) = call(&scenario, &url, &token(&provider, &url, Some("k-none")));
    assert_eq!(status, 401, "unknown key after recovery: {body}");
    assert!(head.contains("invalid_token"), "{head}");
}
