//! Sessions and replay over real files written by [`AuditWriter`], rotated every two rows
//! so sessions span files.

use std::path::Path;

use super::*;
use crate::audit::{AuditConfig, AuditWriter, Direction, Kind, PrincipalColumns, RotationConfig};

const HOUR_US: i64 = 3_600_000_000;

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

fn alice() -> PrincipalColumns {
    PrincipalColumns {
        user: Some("alice".into()),
        uid: Some(1000),
        sub: Some("alice-sub".into()),
        email: Some("alice@example.com".into()),
        comm: Some("python3".into()),
        pid: Some(100),
        ..PrincipalColumns::default()
    }
}

fn bob() -> PrincipalColumns {
    PrincipalColumns {
        user: Some("bob".into()),
        uid: Some(1001),
        sub: Some("bob-sub".into()),
        comm: Some("node".into()),
        pid: Some(200),
        ..PrincipalColumns::default()
    }
}

fn row(
    session: &str,
    time_us: i64,
    direction: Direction,
    kind: Kind,
    who: PrincipalColumns,
) -> AuditRecord {
    let mut r = AuditRecord::new(session, direction, kind);
    r.time_us = time_us;
    r.transport = "streamable_http".into();
    r.server_name = Some("vault".into());
    r.server_addr = "10.0.0.5:8000".into();
    r.method = Some("tools/call".into());
    r.principal = who;
    r
}

/// Returns the base time: alice's recent session starts there, bob's a minute later, and
/// alice's old session is three days before.
fn fixture(dir: &Path) -> i64 {
    let base = now_us() - HOUR_US;
    let mut rows = Vec::new();

    let mut old = row(
        "s-old",
        base - 72 * HOUR_US,
        Direction::ClientToServer,
        Kind::Request,
        alice(),
    );
    old.tool = Some("list_keys".into());
    rows.push(old);

    let mut req = row(
        "s-alice",
        base,
        Direction::ClientToServer,
        Kind::Request,
        alice(),
    );
    req.tool = Some("read_secret".into());
    req.request_id = Some("1".into());
    req.payload = Some(r#"{"name":"read_secret","arguments":{"key":"db"}}"#.into());
    req.decision = Some("allow".into());
    req.rules = vec!["allow-vault".into()];
    rows.push(req);

    let mut deny = row(
        "s-bob",
        base + 60_000_000,
        Direction::ClientToServer,
        Kind::Request,
        bob(),
    );
    deny.tool = Some("delete_repo".into());
    deny.request_id = Some("7".into());
    rows.push(deny);
    let mut decision = row(
        "s-bob",
        base + 60_000_000,
        Direction::Gateway,
        Kind::Decision,
        bob(),
    );
    decision.tool = Some("delete_repo".into());
    decision.decision = Some("deny".into());
    decision.rules = vec!["no-delete".into()];
    decision.error_code = Some(-32010);
    rows.push(decision);

    let mut resp = row(
        "s-alice",
        base + 1000,
        Direction::ServerToClient,
        Kind::Response,
        alice(),
    );
    resp.tool = Some("read_secret".into());
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
    let mut writer = AuditWriter::open(&config).expect("open writer");
    for r in rows {
        writer.append(r).expect("append");
    }
    writer.close().expect("close");
    assert_eq!(
        writer::closed_files(dir).unwrap().len(),
        3,
        "rotation across files"
    );
    base
}

#[test]
fn sessions_are_summarised_newest_last() {
    let dir = tempfile::tempdir().unwrap();
    let base = fixture(dir.path());
    let list = sessions(dir.path(), &SessionFilter::default()).unwrap();
    let names: Vec<_> = list.iter().map(|s| s.session.as_str()).collect();
    assert_eq!(names, ["s-old", "s-alice", "s-bob"]);
    let alice = &list[1];
    assert_eq!((alice.first_us, alice.last_us), (base, base + 1000));
    assert_eq!(alice.user.as_deref(), Some("alice"));
    assert_eq!(alice.comm.as_deref(), Some("python3"));
    assert_eq!(alice.server, "vault");
    assert_eq!((alice.messages, alice.denied, alice.masked), (2, 0, 2));
    let bob = &list[2];
    assert_eq!((bob.messages, bob.denied, bob.masked), (2, 1, 0));
}

#[test]
fn user_filter_matches_user_sub_or_email() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    for user in ["alice", "alice-sub", "alice@example.com"] {
        let filter = SessionFilter {
            user: Some(user.into()),
            ..SessionFilter::default()
        };
        let names: Vec<_> = sessions(dir.path(), &filter)
            .unwrap()
            .into_iter()
            .map(|s| s.session)
            .collect();
        assert_eq!(names, ["s-old", "s-alice"], "--user {user}");
    }
    let nobody = SessionFilter {
        user: Some("mallory".into()),
        ..SessionFilter::default()
    };
    assert!(sessions(dir.path(), &nobody).unwrap().is_empty());
}

#[test]
fn since_drops_older_rows() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let filter = SessionFilter {
        since_us: Some(parse_since("1d", now_us()).unwrap()),
        ..SessionFilter::default()
    };
    let names: Vec<_> = sessions(dir.path(), &filter)
        .unwrap()
        .into_iter()
        .map(|s| s.session)
        .collect();
    assert_eq!(names, ["s-alice", "s-bob"]);
}

#[test]
fn replay_returns_the_session_in_order_across_files() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let rows = replay(dir.path(), "s-alice").unwrap();
    let kinds: Vec<_> = rows.iter().map(|r| r.kind).collect();
    assert_eq!(kinds, [Kind::Request, Kind::Response]);
    let bob = replay(dir.path(), "s-bob").unwrap();
    assert_eq!(
        bob.iter().map(|r| r.direction).collect::<Vec<_>>(),
        [Direction::ClientToServer, Direction::Gateway],
        "equal timestamps keep chain order"
    );
}

#[test]
fn replay_text_shows_who_payload_decision_and_masking() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let text = render_replay(&replay(dir.path(), "s-alice").unwrap());
    assert!(
        text.contains("client_to_server request  tools/call  tool=read_secret  id=1"),
        "{text}"
    );
    assert!(
        text.contains("who: alice(1000) alice@example.com  comm=python3  pid=100"),
        "{text}"
    );
    assert!(text.contains("masked=2 (json_key, github_token)"), "{text}");
    assert!(
        text.contains("decision=allow (rules: allow-vault)"),
        "{text}"
    );
    assert!(
        text.contains("      {\n        \"arguments\": {"),
        "pretty JSON: {text}"
    );
    let bob = render_replay(&replay(dir.path(), "s-bob").unwrap());
    assert!(
        bob.contains("error_code=-32010  decision=deny (rules: no-delete)"),
        "{bob}"
    );
}

#[test]
fn record_json_has_columns_and_hex_hashes() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let rows = replay(dir.path(), "s-bob").unwrap();
    let v = record_json(&rows[1]);
    assert_eq!(v["decision"], "deny");
    assert_eq!(v["rules"][0], "no-delete");
    assert_eq!(v["user"], "bob");
    assert_eq!(v["hash"].as_str().unwrap(), chain::to_hex(&rows[1].hash));
    assert_eq!(v["prev_hash"].as_str().unwrap().len(), 64);
}

#[test]
fn unknown_session_and_empty_dir_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let empty = replay(dir.path(), "x").unwrap_err();
    assert!(matches!(empty, ReplayError::Empty { .. }), "{empty}");
    fixture(dir.path());
    let err = replay(dir.path(), "nope").unwrap_err().to_string();
    assert!(
        err.contains("\"nope\"") && err.contains("audit sessions"),
        "{err}"
    );
}

#[test]
fn damaged_file_is_reported_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let file = &writer::closed_files(dir.path()).unwrap()[1].path;
    let mut bytes = std::fs::read(file).unwrap();
    let mid = bytes.len() / 2;
    bytes.truncate(mid);
    std::fs::write(file, bytes).unwrap();
    let err = replay(dir.path(), "s-alice").unwrap_err();
    assert!(
        matches!(&err, ReplayError::Unreadable { file: f, .. } if f == file),
        "{err}"
    );
}

#[test]
fn since_parses_rfc3339_and_ages() {
    let now = 1_700_000_000_000_000;
    assert_eq!(parse_since("30m", now).unwrap(), now - 1_800_000_000);
    assert_eq!(parse_since("7d", now).unwrap(), now - 7 * 24 * HOUR_US);
    assert_eq!(
        parse_since("2023-11-14T22:13:20Z", 0).unwrap(),
        1_700_000_000_000_000
    );
    assert_eq!(
        parse_since("2023-11-14T23:13:20.5+01:00", 0).unwrap(),
        1_700_000_000_500_000
    );
    assert!(parse_since("yesterday", now).is_err());
    assert!(parse_since("5w", now).is_err());
    assert_eq!(
        format_time(1_700_000_000_123_456),
        "2023-11-14T22:13:20.123Z"
    );
}

/// Rows durable in the WAL but not yet in a closed file are listed too, once each: the
/// rows the closed file already holds (by WAL sequence) are not counted twice.
#[test]
fn rows_still_only_in_the_wal_are_listed_once() {
    use crate::audit::wal::{self, WalWriter};
    let dir = tempfile::tempdir().unwrap();
    let config = AuditConfig {
        dir: dir.path().to_owned(),
        ..AuditConfig::default()
    };
    let t = now_us();
    let rows: Vec<AuditRecord> = (0..5)
        .map(|i| {
            row(
                if i < 2 { "s-closed" } else { "s-live" },
                t + i,
                Direction::ClientToServer,
                Kind::Request,
                alice(),
            )
        })
        .collect();
    // Rows 1-3 reached a closed file; all five are in the log.
    let mut writer = AuditWriter::open(&config).unwrap();
    for (seq, r) in rows.iter().take(3).enumerate() {
        writer.append_logged(r.clone(), seq as u64 + 1).unwrap();
    }
    writer.close().unwrap();
    let mut frames = Vec::new();
    for (seq, r) in rows.iter().enumerate() {
        wal::encode_frame(&mut frames, seq as u64 + 1, r);
    }
    let mut log = WalWriter::create(&wal::wal_dir(dir.path()), 1, 64 << 20, vec![]).unwrap();
    log.write_group(&frames, 1).unwrap();

    let listed = sessions(dir.path(), &SessionFilter::default()).unwrap();
    let counts: Vec<(&str, u64)> = listed
        .iter()
        .map(|s| (s.session.as_str(), s.messages))
        .collect();
    assert_eq!(counts, [("s-closed", 2), ("s-live", 3)]);
    assert_eq!(replay(dir.path(), "s-live").unwrap().len(), 3);

    // Nothing closed yet at all: the log alone is enough.
    let fresh = tempfile::tempdir().unwrap();
    let mut log = WalWriter::create(&wal::wal_dir(fresh.path()), 1, 64 << 20, vec![]).unwrap();
    log.write_group(&frames, 1).unwrap();
    assert_eq!(replay(fresh.path(), "s-live").unwrap().len(), 3);
}
