//! The approvals' HTTP admin endpoint end to end: approvers identified by OIDC tokens from
//! a real provider (tests/oidc) decide a call the Python SDK's client is held on. No
//! token, a token of someone who is no approver, and a token naming the requester are
//! refused; a token whose group is an approvers group releases the call. Needs root, the
//! test virtualenv and tests/mcp/node's packages (`cargo xtask setup`).

#[path = "support/approval.rs"]
mod gate;
mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use gate::{APPROVERS, Gate, requested, result, text};
use serde_json::{Value, json};
use support::{free_port, oidc::OidcProvider, require_root};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `curl` (outside the cgroup) with an optional bearer token; (HTTP status, JSON body).
fn admin(url: &str, method: &str, token: Option<&str>, body: Option<&str>) -> (u16, Value) {
    let mut cmd = std::process::Command::new("curl");
    cmd.args(["-sS", "--max-time", "20", "--noproxy", "*", "-X", method])
        .args(["-w", "\n%{http_code}"]);
    if let Some(token) = token {
        cmd.args(["-H", &format!("Authorization: Bearer {token}")]);
    }
    if let Some(body) = body {
        cmd.args(["-H", "content-type: application/json", "--data", body]);
    }
    let out = cmd.arg(url).output().expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').expect("status line");
    (
        status.parse().unwrap(),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

#[test]
fn token_holders_decide_over_http_and_never_for_themselves() {
    if !require_root("token_holders_decide_over_http_and_never_for_themselves") {
        return;
    }
    let keys = tempfile::tempdir().unwrap();
    let provider = OidcProvider::start(&keys.path().join("keys.json"));
    let port = free_port("127.0.0.1");
    let gate = Gate::new(
        &format!("hold_secs = 20\nhttp_listen = \"127.0.0.1:{port}\""),
        &format!(
            "[[identity.issuer]]\nissuer = \"{}\"\naudiences = [\"gateway-approvals\"]\n",
            provider.issuer()
        ),
    );
    let agent = gate.start();
    let token = |sub: &str, email: &str, groups: &[&str]| {
        provider.mint(
            json!({"alg": "RS256", "typ": "at+jwt"}),
            json!({
                "iss": provider.issuer(),
                "sub": sub,
                "email": email,
                "groups": groups,
                "aud": "gateway-approvals",
                "client_id": "gateway-test",
                "iat": now(),
                "exp": now() + 300,
            }),
        )
    };
    let base = format!("http://127.0.0.1:{port}/approvals");
    let held = gate.spawn_call("2026-07-28", "shell_exec", r#"{"command": "id"}"#);
    let id = requested(&agent, &[]);
    let approve = format!("{base}/{id}/approve");

    let (status, _) = admin(&base, "GET", None, None);
    assert_eq!(status, 401, "no token");
    let (status, listed) = admin(
        &base,
        "GET",
        Some(&token("u-9", "eve@example.com", &[])),
        None,
    );
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["approvals"][0]["id"], id.as_str());
    let (status, refused) = admin(
        &approve,
        "POST",
        Some(&token("u-9", "eve@example.com", &["dev"])),
        None,
    );
    assert_eq!(status, 403, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("may not decide"),
        "{refused}"
    );
    // The client runs as local user root: a token for root@… is the requester.
    let (status, refused) = admin(
        &approve,
        "POST",
        Some(&token("u-0", "root@example.com", &[APPROVERS.0])),
        None,
    );
    assert_eq!(status, 403, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("no self-approval"),
        "{refused}"
    );

    let (status, approved) = admin(
        &approve,
        "POST",
        Some(&token("u-1", "carol@example.com", &[APPROVERS.0])),
        Some(r#"{"reason": "change 4711"}"#),
    );
    assert_eq!(status, 200, "{approved}");
    assert_eq!(
        approved["approval"]["approved_by"][0]["email"],
        "carol@example.com"
    );
    let released = result(held);
    assert_eq!(text(&released), "would run: id", "{released}");
}
