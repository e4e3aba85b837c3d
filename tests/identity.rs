//! Identity end to end: a real OpenID provider (npm `oidc-provider`) on loopback issues
//! real tokens; curl and Python in the test cgroup call an MCP server through the eBPF
//! interception and the agent, which validates the token, answers 401/403 the way MCP
//! authorization specifies (RFC 9728 metadata), removes the token and injects the held
//! upstream credential. Needs root, node and the test virtualenv.

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use support::{
    EchoAuthServer, Scenario, audit_rows,
    oidc::{self, OidcProvider},
    python, require_root,
};

const UPSTREAM_SECRET: &str = "held-upstream-credential-4242";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An agent requiring tokens from `provider` (audience = the server's URL, scope
/// `mcp:tools`) for `server`, with a held credential and `policy`.
fn agent_config(
    scenario: &Scenario,
    provider: &OidcProvider,
    server: &EchoAuthServer,
    policy: &str,
) -> std::path::PathBuf {
    let secret = scenario.dir.path().join("upstream.token");
    std::fs::write(&secret, UPSTREAM_SECRET).unwrap();
    let policies = scenario.dir.path().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::write(policies.join("10-test.toml"), policy).unwrap();
    scenario.config_with(
        &[server.port],
        &format!(
            r#"
[policy]
dir = "{policies}"

[[identity.issuer]]
issuer = "{issuer}"
audiences = ["{audience}"]
jwks_min_refresh_secs = 1

[[server]]
name = "echo"
addr = "127.0.0.1:{port}"
auth = "require"
scopes = ["mcp:tools"]
[server.credential]
scheme = "Bearer"
file = "{secret}"
"#,
            policies = policies.display(),
            issuer = provider.issuer(),
            audience = server.url(),
            port = server.port,
            secret = secret.display(),
        ),
    )
}

/// POSTs a tools/call with `authorization` (if any) from curl in the cgroup; returns
/// (status, WWW-Authenticate, body).
fn call(scenario: &Scenario, url: &str, authorization: Option<&str>) -> (u16, String, String) {
    let header_file = scenario.dir.path().join("headers.txt");
    let mut args = vec![
        "-D".to_owned(),
        header_file.display().to_string(),
        "-H".to_owned(),
        "content-type: application/json".to_owned(),
        "--data-binary".to_owned(),
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}"#
            .to_owned(),
        url.to_owned(),
    ];
    if let Some(authorization) = authorization {
        args.splice(
            0..0,
            ["-H".to_owned(), format!("authorization: {authorization}")],
        );
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = scenario.curl_output(&argv);
    assert!(out.status.success(), "curl failed: {out:?}");
    let headers = std::fs::read_to_string(&header_file).unwrap();
    let status = headers
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let challenge = headers
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("www-authenticate")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_default();
    (
        status,
        challenge,
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// The header of a correctly signed access token.
fn rs256() -> Value {
    json!({"alg": "RS256", "typ": "at+jwt"})
}

fn claims(provider: &OidcProvider, audience: &str) -> Value {
    json!({
        "iss": provider.issuer(),
        "sub": "mint-subject",
        "aud": audience,
        "client_id": "gateway-test",
        "scope": "mcp:tools",
        "iat": now(),
        "exp": now() + 300,
    })
}

#[test]
fn tokens_are_validated_answered_per_spec_and_never_forwarded() {
    if !require_root("tokens_are_validated_answered_per_spec_and_never_forwarded") {
        return;
    }
    let scenario = Scenario::new();
    let provider = OidcProvider::start(&scenario.dir.path().join("keys-1.json"));
    let server = EchoAuthServer::start();
    let config = agent_config(&scenario, &provider, &server, "");
    let agent = scenario.start_agent(&config);
    let url = server.url();
    let metadata_url = format!(
        "http://127.0.0.1:{}/.well-known/oauth-protected-resource/mcp",
        server.port
    );

    // A real token from the provider: accepted, the server gets the held credential.
    let token = provider.token(&url, "mcp:tools");
    let (status, _, body) = call(&scenario, &url, Some(&format!("Bearer {token}")));
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("you sent Bearer [MASKED:upstream_credential]"),
        "{body}"
    );
    assert_eq!(server.seen(), [format!("Bearer {UPSTREAM_SECRET}")]);
    agent.wait_for("caller authenticated", |l| l["iss"] == provider.issuer());

    // No token: 401 pointing at the metadata, which the gateway serves.
    let (status, challenge, body) = call(&scenario, &url, None);
    assert_eq!(status, 401, "{body}");
    assert!(
        challenge.starts_with("Bearer")
            && challenge.contains(&format!("resource_metadata=\"{metadata_url}\"")),
        "{challenge}"
    );
    assert!(body.contains("-32014"), "{body}");
    let out = scenario.curl_output(&[&metadata_url]);
    let document: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(document["resource"], url);
    assert_eq!(
        document["authorization_servers"],
        json!([provider.issuer()])
    );
    assert!(
        document["scopes_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("mcp:tools"))
    );

    // The attack matrix: each refused, none reaches the server.
    let good = claims(&provider, &url);
    let with = |patch: Value| {
        let mut claims = good.clone();
        for (k, v) in patch.as_object().unwrap() {
            claims[k] = v.clone();
        }
        claims
    };
    let cases: Vec<(&str, String, u16)> = vec![
        ("malformed", "Bearer not-a-jwt".into(), 401),
        ("basic scheme", "Basic dXNlcjpwYXNz".into(), 401),
        (
            "alg none",
            format!(
                "Bearer {}",
                provider.mint(json!({"alg": "none", "typ": "at+jwt"}), good.clone())
            ),
            401,
        ),
        (
            "HS256 signed with the public key",
            format!(
                "Bearer {}",
                provider.mint(json!({"alg": "HS256", "typ": "at+jwt"}), good.clone())
            ),
            401,
        ),
        (
            "wrong issuer",
            format!(
                "Bearer {}",
                provider.mint(rs256(), with(json!({"iss": "http://127.0.0.1:1/evil"})))
            ),
            401,
        ),
        (
            "wrong audience",
            format!(
                "Bearer {}",
                provider.mint(rs256(), with(json!({"aud": "http://other.example/mcp"})))
            ),
            401,
        ),
        (
            "expired",
            format!(
                "Bearer {}",
                provider.mint(
                    rs256(),
                    with(json!({"exp": now() - 600, "iat": now() - 900}))
                )
            ),
            401,
        ),
        (
            "not yet valid",
            format!(
                "Bearer {}",
                provider.mint(rs256(), with(json!({"nbf": now() + 600})))
            ),
            401,
        ),
        (
            "unknown kid",
            format!(
                "Bearer {}",
                provider.mint(
                    json!({"alg": "RS256", "typ": "at+jwt", "kid": "no-such-key"}),
                    good.clone()
                )
            ),
            401,
        ),
        (
            "missing scope",
            format!("Bearer {}", provider.token(&url, "")),
            403,
        ),
    ];
    for (case, authorization, want) in &cases {
        let (status, challenge, body) = call(&scenario, &url, Some(authorization));
        assert_eq!(status, *want, "{case}: {body}");
        assert!(
            challenge.contains("resource_metadata="),
            "{case}: {challenge}"
        );
        if *want == 403 {
            assert!(
                challenge.contains("error=\"insufficient_scope\""),
                "{case}: {challenge}"
            );
        } else {
            assert!(
                challenge.contains("error=\"invalid_token\""),
                "{case}: {challenge}"
            );
        }
    }
    assert_eq!(
        server.seen().len(),
        1,
        "a refused request reached the server"
    );
    // A self-minted token with every claim right is accepted: the matrix above fails for
    // its one defect, not for being minted.
    let (status, _, body) = call(
        &scenario,
        &url,
        Some(&format!("Bearer {}", provider.mint(rs256(), good))),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(server.seen().len(), 2);
    assert!(
        server
            .seen()
            .iter()
            .all(|a| a == &format!("Bearer {UPSTREAM_SECRET}"))
    );
    // Each refusal is in the audit trail with the process that tried, never the token.
    assert!(agent.stop(libc::SIGTERM).success());
    let rows = audit_rows(&scenario.audit_dir());
    let refusals: Vec<&Value> = rows
        .iter()
        .filter(|r| r["kind"] == "decision" && r["status"] == 401)
        .collect();
    assert!(refusals.len() >= 9, "{refusals:#?}");
    for refusal in &refusals {
        assert_eq!(
            (refusal["comm"].as_str(), refusal["uid"].as_u64()),
            (Some("curl"), Some(0)),
            "{refusal}"
        );
    }
    assert!(!serde_json::to_string(&rows).unwrap().contains(&token));
}

#[test]
fn rotated_signing_keys_are_fetched_and_removed_keys_refused() {
    if !require_root("rotated_signing_keys_are_fetched_and_removed_keys_refused") {
        return;
    }
    let scenario = Scenario::new();
    let mut provider = OidcProvider::start(&scenario.dir.path().join("keys-1.json"));
    let server = EchoAuthServer::start();
    let config = agent_config(&scenario, &provider, &server, "");
    let _agent = scenario.start_agent(&config);
    let url = server.url();
    let old_used = provider.token(&url, "mcp:tools");
    let old_unused = provider.token(&url, "mcp:tools");
    assert_eq!(
        call(&scenario, &url, Some(&format!("Bearer {old_used}"))).0,
        200
    );

    provider.restart_with_new_keys();
    // A token signed with the new key has an unknown kid: the agent refreshes and accepts.
    let new = provider.token(&url, "mcp:tools");
    let (status, _, body) = call(&scenario, &url, Some(&format!("Bearer {new}")));
    assert_eq!(status, 200, "new key after rotation: {body}");
    // Tokens signed with the removed key are refused, seen before or not.
    for (case, token) in [("unused", &old_unused), ("cached", &old_used)] {
        let (status, _, body) = call(&scenario, &url, Some(&format!("Bearer {token}")));
        assert_eq!(status, 401, "old key ({case}) after rotation: {body}");
    }
}

/// Binds the test client id to curl: the same valid token from Python is refused by
/// policy. Both calls are attributed to their own process and uid.
const BINDING: &str = r#"
[[rule]]
id = "test-client-from-curl"
action = "allow"
[rule.match]
claim = { client_id = "gateway-test" }
comm = ["curl"]

[[rule]]
id = "test-client-elsewhere"
action = "deny"
reason = "this client's token is bound to curl"
[rule.match]
claim = { client_id = "gateway-test" }
"#;

#[test]
fn two_processes_are_told_apart_and_a_token_binding_holds() {
    if !require_root("two_processes_are_told_apart_and_a_token_binding_holds") {
        return;
    }
    let scenario = Scenario::new();
    let provider = OidcProvider::start(&scenario.dir.path().join("keys-1.json"));
    let server = EchoAuthServer::start();
    let config = agent_config(&scenario, &provider, &server, BINDING);
    let agent = scenario.start_agent(&config);
    let url = server.url();
    let token = provider.token(&url, "mcp:tools");
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}"#;

    // curl as uid 65534.
    let out = scenario.output_in_cgroup(&[
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "curl",
        "-sS",
        "--max-time",
        "20",
        "--noproxy",
        "*",
        "-H",
        "content-type: application/json",
        "-H",
        &format!("authorization: Bearer {token}"),
        "--data-binary",
        body,
        &url,
    ]);
    let seen = String::from_utf8_lossy(&out.stdout);
    assert!(
        seen.contains("you sent Bearer [MASKED:upstream_credential]"),
        "{seen}"
    );

    // Python as root, same token.
    let script = format!(
        "import urllib.request,sys\n\
         r=urllib.request.Request('{url}',data=sys.argv[1].encode(),headers={{'content-type':'application/json','authorization':'Bearer {token}'}})\n\
         print(urllib.request.urlopen(r,timeout=20).read().decode())"
    );
    let py = python().display().to_string();
    let out = scenario.output_in_cgroup(&[&py, "-c", &script, body]);
    let seen = String::from_utf8_lossy(&out.stdout);
    assert!(
        seen.contains("Denied by gateway policy") && seen.contains("test-client-elsewhere"),
        "python with curl's token: {seen} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        server.seen().len(),
        1,
        "the bound token reached the server from python"
    );
    agent.wait_for("request denied by policy", |l| {
        l["rule"] == "test-client-elsewhere"
    });
    assert!(agent.stop(libc::SIGTERM).success());

    let rows = audit_rows(&scenario.audit_dir());
    let calls: Vec<&Value> = rows
        .iter()
        .filter(|r| r["kind"] == "request" && r["method"] == "tools/call")
        .collect();
    let by = |comm: &str| {
        *calls
            .iter()
            .find(|r| r["comm"] == comm)
            .unwrap_or_else(|| panic!("no call row from {comm}: {calls:#?}"))
    };
    let curl = by("curl");
    assert_eq!(
        (curl["uid"].as_u64(), curl["user"].as_str()),
        (Some(65534), Some("nobody"))
    );
    assert_eq!(curl["decision"], "allow");
    assert_eq!(curl["issuer"], provider.issuer());
    let python_row = by("python");
    assert_eq!(python_row["uid"], 0);
    assert_eq!(python_row["decision"], "deny");
    assert_eq!(python_row["rules"], json!(["test-client-elsewhere"]));
    assert_eq!(python_row["sub"], curl["sub"]);
    assert!(!serde_json::to_string(&rows).unwrap().contains(&token));
}

/// The Python SDK's own OAuth client (client_credentials) against a `require` server:
/// it meets the 401, follows the RFC 9728 metadata the gateway serves to the provider,
/// fetches a token for this resource and completes a session — in both protocol
/// generations. The server itself knows nothing about OAuth.
#[test]
fn a_standard_mcp_client_discovers_the_issuer_and_gets_in() {
    if !require_root("a_standard_mcp_client_discovers_the_issuer_and_gets_in") {
        return;
    }
    let scenario = Scenario::new();
    let provider = OidcProvider::start(&scenario.dir.path().join("keys-1.json"));
    let server = support::McpServer::start("stateful", "json");
    let url = server.url();
    let config = scenario.config_with(
        &[server.port],
        &format!(
            "\n[[identity.issuer]]\nissuer = \"{issuer}\"\naudiences = [\"{url}\"]\n\n\
             [[server]]\nname = \"notes\"\naddr = \"127.0.0.1:{port}\"\nauth = \"require\"\nscopes = [\"mcp:tools\"]\n",
            issuer = provider.issuer(),
            port = server.port,
        ),
    );
    let agent = scenario.start_agent(&config);
    let py = python().display().to_string();
    let script = support::workspace()
        .join("tests/identity/oauth_client.py")
        .display()
        .to_string();
    for mode in ["legacy", "2026-07-28"] {
        let out = scenario.output_in_cgroup(&[
            &py,
            &script,
            &url,
            &provider.issuer(),
            oidc::CLIENT_ID,
            oidc::CLIENT_SECRET,
            "mcp:tools",
            mode,
        ]);
        assert!(
            out.status.success(),
            "{mode}: the SDK's OAuth client failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            seen["echo"],
            json!(["hello through OAuth"]),
            "{mode}: {seen}"
        );
        assert!(seen["tools"].as_array().unwrap().contains(&json!("echo")));
    }
    // It was refused first (no token), then authenticated.
    agent.wait_for("request refused by the identity stage", |l| {
        l["status"] == 401
    });
    agent.wait_for("caller authenticated", |l| {
        l["client_id"] == oidc::CLIENT_ID
    });
}
