use super::*;
use crate::approval::config::Grant;

pub(crate) fn approval(id: &str, principal: &str, digest: &str) -> Approval {
    Approval {
        id: id.to_owned(),
        state: State::Pending,
        key: CallKey {
            principal: principal.to_owned(),
            server_addr: "127.0.0.1:8000".into(),
            method: "tools/call".into(),
            tool: Some("shell_exec".into()),
            digest: digest.to_owned(),
            rule: "approve-shell".into(),
            stage: Default::default(),
        },
        requester: Requester {
            uid: Some(1000),
            user: Some("alice".into()),
            ..Requester::default()
        },
        origin: Origin::default(),
        arguments: "{}".into(),
        reason: "shell needs a second pair of eyes".into(),
        policy_version: "v1".into(),
        created_us: 1_000,
        expires_us: 1_000_000_000,
        approvals_required: 1,
        approvers: Approvers {
            users: vec!["bob".into()],
            groups: vec!["secops".into()],
        },
        grant: Grant::Once,
        approved_by: Vec::new(),
        approved_us: None,
        denied_by: None,
        denial_reason: None,
        session: None,
        uses: 0,
    }
}

const CAPS: Caps = Caps {
    overall: 3,
    per_principal: 2,
};

#[test]
fn open_approvals_survive_a_reopen_and_closed_ones_are_compacted_away() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("approvals.jsonl");
    {
        let mut store = Store::open(&path, CAPS).unwrap();
        store.save(approval("a", "p1", "d1")).unwrap();
        store.save(approval("b", "p1", "d2")).unwrap();
        let mut approved = approval("a", "p1", "d1");
        approved.state = State::Approved;
        approved.approved_us = Some(2_000);
        store.save(approved).unwrap();
        let mut denied = approval("b", "p1", "d2");
        denied.state = State::Denied;
        store.save(denied).unwrap();
    }
    let store = Store::open(&path, CAPS).unwrap();
    assert_eq!(store.get("a").unwrap().state, State::Approved);
    assert_eq!(store.get("b").unwrap().state, State::Denied, "still shown");
    assert!(
        store.room_for("p1").is_ok(),
        "a closed approval counts against no cap"
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 1, "only the open one is kept: {text}");
}

#[test]
fn a_torn_last_line_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("approvals.jsonl");
    let mut line = serde_json::to_string(&approval("a", "p1", "d1")).unwrap();
    line.push('\n');
    line.push_str("{\"id\":\"b\",\"sta");
    std::fs::write(&path, line).unwrap();
    let store = Store::open(&path, CAPS).unwrap();
    assert!(store.get("a").is_some());
    assert_eq!(store.list().len(), 1);
}

#[test]
fn caps_per_principal_and_overall() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("j.jsonl"), CAPS).unwrap();
    store.save(approval("a", "p1", "d1")).unwrap();
    store.room_for("p1").unwrap();
    store.save(approval("b", "p1", "d2")).unwrap();
    assert_eq!(store.room_for("p1"), Err(CapError::Principal(2)));
    store.room_for("p2").unwrap();
    store.save(approval("c", "p2", "d3")).unwrap();
    assert_eq!(store.room_for("p3"), Err(CapError::Overall(3)));
}

#[test]
fn only_an_approved_unexpired_approval_for_the_same_key_is_usable() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("j.jsonl"), CAPS).unwrap();
    let pending = approval("a", "p1", "d1");
    let key = pending.key.clone();
    store.save(pending.clone()).unwrap();
    assert!(
        store.usable(&key, "s", 5_000).is_none(),
        "pending is not usable"
    );
    assert!(store.pending(&key, 5_000).is_some());
    let mut approved = pending;
    approved.state = State::Approved;
    approved.approved_us = Some(5_000);
    store.save(approved.clone()).unwrap();
    assert!(store.usable(&key, "s", 6_000).is_some());
    let mut other = key.clone();
    other.digest = "d2".into();
    assert!(
        store.usable(&other, "s", 6_000).is_none(),
        "changed arguments"
    );
    let mut caller = key.clone();
    caller.principal = "p2".into();
    assert!(
        store.usable(&caller, "s", 6_000).is_none(),
        "another caller"
    );
    assert!(
        store.usable(&key, "s", approved.expires_us).is_none(),
        "expired"
    );
    assert_eq!(store.due(approved.expires_us).len(), 1);
    // grant = session: bound to one MCP session.
    let mut session = approved.clone();
    session.session = Some("s1".into());
    store.save(session).unwrap();
    assert!(store.usable(&key, "s1", 6_000).is_some());
    assert!(store.usable(&key, "s2", 6_000).is_none());
}

#[test]
fn ttl_grants_are_usable_for_their_window_after_approval() {
    let mut a = approval("a", "p1", "d1");
    a.state = State::Approved;
    a.approved_us = Some(10_000_000);
    a.grant = Grant::Ttl { ttl_secs: 5 };
    assert_eq!(a.usable_until(), 15_000_000);
    assert!(!a.due(14_999_999));
    assert!(a.due(15_000_000));
}

#[test]
fn ids_are_128_bit_hex_and_distinct() {
    let a = new_id().unwrap();
    let b = new_id().unwrap();
    assert_eq!(a.len(), 32);
    assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(a, b);
}
