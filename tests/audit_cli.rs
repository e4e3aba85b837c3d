//! `audit sessions`, `audit replay` and the README's DuckDB queries, on audit files written
//! by the library's own `AuditWriter` (rotated every two rows, so sessions span files). No
//! privileges needed; the queries need the venv of `cargo xtask setup` (duckdb).

mod support;

use std::{path::Path, process::Command};

use gateway_agent::audit::{
    AuditConfig, AuditRecord, AuditWriter, Direction, Kind, PrincipalColumns, RotationConfig,
};
use serde_json::Value;

const AGENT: &str = env!("CARGO_BIN_EXE_gateway-agent");
const HOUR_US: i64 = 3_600_000_000;

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

fn person(user: &str, uid: u32, sub: &str, comm: &str) -> PrincipalColumns {
    PrincipalColumns {
        user: Some(user.into()),
        uid: Some(uid),
        sub: Some(sub.into()),
        email: Some(format!("{user}@example.com")),
        comm: Some(comm.into()),
        pid: Some(1000 + uid),
        ..PrincipalColumns::default()
    }
}

fn row(session: &str, time_us: i64, direction: Direction, kind: Kind, tool: &str) -> AuditRecord {
    let mut r = AuditRecord::new(session, direction, kind);
    r.time_us = time_us;
    r.transport = "streamable_http".into();
    r.server_name = Some("vault".into());
    r.server_addr = "10.0.0.5:8000".into();
    r.method = Some("tools/call".into());
    r.tool = Some(tool.into());
    r
}

/// Alice: an old session (three days ago) and a recent one that reads a secret (the
/// response masked twice). Bob: a recent session whose `delete_repo` call was denied.
fn fixture(dir: &Path) {
    let alice = person("alice", 1000, "alice-sub", "python3");
    let bob = person("bob", 1001, "bob-sub", "node");
    let base = now_us() - HOUR_US;
    let mut rows = Vec::new();

    let mut old = row(
        "s-old",
        base - 72 * HOUR_US,
        Direction::ClientToServer,
        Kind::Request,
        "list_keys",
    );
    old.principal = alice.clone();
    rows.push(old);

    let mut req = row(
        "s-alice",
        base,
        Direction::ClientToServer,
        Kind::Request,
        "read_secret",
    );
    req.principal = alice.clone();
    req.request_id = Some("1".into());
    req.payload = Some(r#"{"name":"read_secret","arguments":{"key":"db"}}"#.into());
    req.decision = Some("allow".into());
    req.rules = vec!["allow-vault".into()];
    rows.push(req);

    let mut call = row(
        "s-bob",
        base + 60_000_000,
        Direction::ClientToServer,
        Kind::Request,
        "delete_repo",
    );
    call.principal = bob.clone();
    call.request_id = Some("7".into());
    rows.push(call);
    let mut deny = row(
        "s-bob",
        base + 60_000_000,
        Direction::Gateway,
        Kind::Decision,
        "delete_repo",
    );
    deny.principal = bob;
    deny.decision = Some("deny".into());
    deny.rules = vec!["no-delete".into()];
    deny.error_code = Some(-32010);
    rows.push(deny);

    let mut resp = row(
        "s-alice",
        base + 1000,
        Direction::ServerToClient,
        Kind::Response,
        "read_secret",
    );
    resp.principal = alice;
    resp.request_id = Some("1".into());
    resp.status = Some(200);
    resp.payload = Some(
        r#"{"content":[{"type":"text","text":"password=[MASKED:json_key] token=[MASKED:github_token]"}]}"#
            .into(),
    );
    resp.masked_count = 2;
    resp.mask_rules = vec!["json_key".into(), "github_token".into()];
    rows.push(resp);

    let config = AuditConfig {
        dir: dir.to_owned(),
        rotation: RotationConfig {
            max_rows: 2,
            ..RotationConfig::default()
        },
        ..AuditConfig::default()
    };
    let mut writer = AuditWriter::open(&config).expect("open audit writer");
    for r in rows {
        writer.append(r).expect("append");
    }
    writer.close().expect("close");
}

fn agent(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(AGENT)
        .args(args)
        .output()
        .expect("run gateway-agent");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn audit_dir() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let path = dir.path().to_str().unwrap().to_owned();
    (dir, path)
}

/// Session ids, first column of each data line of the table.
fn listed(table: &str) -> Vec<String> {
    table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap().to_owned())
        .collect()
}

#[test]
fn sessions_lists_every_session_newest_last_with_counts() {
    let (_dir, dir) = audit_dir();
    let (ok, out, err) = agent(&["audit", "sessions", "--dir", &dir]);
    assert!(ok, "{err}");
    assert!(out.starts_with("SESSION"), "{out}");
    assert_eq!(listed(&out), ["s-old", "s-alice", "s-bob"], "{out}");
    let bob = out.lines().find(|l| l.starts_with("s-bob")).unwrap();
    for cell in ["bob(1001) bob@example.com", "node", "vault"] {
        assert!(bob.contains(cell), "{cell} in {bob}");
    }
    let counts: Vec<_> = bob.split_whitespace().rev().take(3).collect();
    assert_eq!(
        counts,
        ["0", "1", "2"],
        "messages 2, denied 1, masked 0: {bob}"
    );

    let (ok, json, _) = agent(&["audit", "sessions", "--dir", &dir, "--json"]);
    assert!(ok);
    let alice: Value = serde_json::from_str(json.lines().nth(1).unwrap()).unwrap();
    assert_eq!(alice["session"], "s-alice");
    assert_eq!(alice["masked"], 2);
    assert_eq!(alice["messages"], 2);
}

#[test]
fn sessions_filters_by_user_and_since() {
    let (_dir, dir) = audit_dir();
    let (ok, out, err) = agent(&["audit", "sessions", "--dir", &dir, "--user", "bob-sub"]);
    assert!(ok, "{err}");
    assert_eq!(listed(&out), ["s-bob"]);
    let (_, out, _) = agent(&[
        "audit",
        "sessions",
        "--dir",
        &dir,
        "--user",
        "alice@example.com",
    ]);
    assert_eq!(listed(&out), ["s-old", "s-alice"]);
    let (_, out, _) = agent(&["audit", "sessions", "--dir", &dir, "--since", "2d"]);
    assert_eq!(listed(&out), ["s-alice", "s-bob"]);
    let (_, out, _) = agent(&[
        "audit", "sessions", "--dir", &dir, "--user", "alice", "--since", "2d",
    ]);
    assert_eq!(listed(&out), ["s-alice"]);
    let (ok, _, err) = agent(&["audit", "sessions", "--dir", &dir, "--since", "last week"]);
    assert!(!ok);
    assert!(
        err.contains("--since \"last week\"") && err.contains("RFC 3339"),
        "{err}"
    );
}

#[test]
fn replay_shows_the_conversation() {
    let (_dir, dir) = audit_dir();
    let (ok, out, err) = agent(&["audit", "replay", "s-alice", "--dir", &dir]);
    assert!(ok, "{err}");
    let request = out
        .find("client_to_server request  tools/call  tool=read_secret")
        .expect(&out);
    let response = out.find("server_to_client response").expect(&out);
    assert!(request < response, "{out}");
    assert!(
        out.contains("who: alice(1000) alice@example.com  comm=python3  pid=2000"),
        "{out}"
    );
    assert!(out.contains("status=200"), "{out}");
    assert!(out.contains("masked=2 (json_key, github_token)"), "{out}");
    assert!(
        out.contains("\"key\": \"db\""),
        "payload pretty-printed: {out}"
    );
    assert!(out.contains("password=[MASKED:json_key]"), "{out}");

    let (_, bob, _) = agent(&["audit", "replay", "s-bob", "--dir", &dir]);
    assert!(bob.contains("decision=deny (rules: no-delete)"), "{bob}");
    assert!(bob.contains("error_code=-32010"), "{bob}");
}

#[test]
fn replay_json_is_one_row_per_line() {
    let (_dir, dir) = audit_dir();
    let (ok, out, err) = agent(&["audit", "replay", "s-bob", "--dir", &dir, "--json"]);
    assert!(ok, "{err}");
    let rows: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["kind"], "request");
    assert_eq!(rows[1]["decision"], "deny");
    assert_eq!(rows[1]["rules"][0], "no-delete");
    assert_eq!(rows[1]["prev_hash"], rows[0]["hash"], "chain order");
    assert_eq!(rows[1]["hash"].as_str().unwrap().len(), 64);
}

#[test]
fn unknown_session_and_empty_dir_say_what_to_do() {
    let (_dir, dir) = audit_dir();
    let (ok, _, err) = agent(&["audit", "replay", "s-nope", "--dir", &dir]);
    assert!(!ok);
    assert!(
        err.contains("\"s-nope\"") && err.contains("audit sessions"),
        "{err}"
    );
    let empty = tempfile::tempdir().unwrap();
    let (ok, _, err) = agent(&["audit", "sessions", "--dir", empty.path().to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("no audit rows"), "{err}");
}

#[test]
fn readme_queries_run_on_the_trail() {
    let (_dir, dir) = audit_dir();
    let root = support::workspace();
    let out = Command::new(support::python())
        .arg(root.join("tests/audit/queries.py"))
        .arg(&dir)
        .arg(root.join("README.md"))
        .output()
        .expect("run tests/audit/queries.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let rows = |prefix: &str| -> &Vec<Value> {
        let r = results
            .iter()
            .find(|r| r["query"].as_str().unwrap().starts_with(prefix))
            .unwrap_or_else(|| panic!("no query {prefix:?} in {stdout}"));
        r["rows"].as_array().unwrap()
    };
    assert_eq!(results.len(), 5, "{stdout}");

    let calls = rows("Who called which tool");
    assert!(
        calls
            .iter()
            .any(|r| r["who"] == "bob" && r["tool"] == "delete_repo" && r["calls"] == 1),
        "{calls:?}"
    );
    let masked = rows("Every secret masked");
    assert_eq!(masked.len(), 1, "{masked:?}");
    assert_eq!(masked[0]["masked_count"], 2);
    assert_eq!(masked[0]["mask_rules"][1], "github_token");
    let denied = rows("Denied calls");
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert_eq!(denied[0]["tool"], "delete_repo");
    assert_eq!(denied[0]["rules"][0], "no-delete");
    let conversation = rows("One session's conversation");
    let kinds: Vec<_> = conversation
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["request", "response"]);
    assert!(
        rows("Chain check").is_empty(),
        "intact chain has no broken links"
    );
}
