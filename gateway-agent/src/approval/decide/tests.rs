use super::*;
use crate::approval::store::tests::approval;

fn peer(uid: u32, user: &str, groups: &[&str]) -> Peer {
    Peer {
        uid: Some(uid),
        gid: Some(uid),
        user: Some(user.to_owned()),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        ..Peer::default()
    }
}

fn token(sub: &str, email: &str, groups: &[&str]) -> Peer {
    Peer {
        subject: Some(sub.to_owned()),
        email: Some(email.to_owned()),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        ..Peer::default()
    }
}

#[test]
fn approvers_by_user_or_group_may_decide() {
    let a = approval("a", "p", "d");
    authorise(&peer(2000, "bob", &[]), &a, Verdict::Approve).unwrap();
    authorise(&peer(2001, "carol", &["secops"]), &a, Verdict::Approve).unwrap();
    let refused = authorise(&peer(2002, "mallory", &["dev"]), &a, Verdict::Approve);
    assert!(
        matches!(refused, Err(Refusal::NotApprover { .. })),
        "{refused:?}"
    );
    let refused = authorise(&peer(2002, "mallory", &["dev"]), &a, Verdict::Deny);
    assert!(
        matches!(refused, Err(Refusal::NotApprover { .. })),
        "{refused:?}"
    );
}

#[test]
fn the_requester_never_approves_their_own_call() {
    let mut a = approval("a", "p", "d");
    // alice (uid 1000) asked; even listed as an approver she cannot approve it…
    a.approvers.users.push("alice".into());
    let by_uid = authorise(&peer(1000, "someone", &["secops"]), &a, Verdict::Approve);
    assert!(
        matches!(by_uid, Err(Refusal::SelfApproval { .. })),
        "{by_uid:?}"
    );
    let by_name = authorise(&peer(4242, "alice", &[]), &a, Verdict::Approve);
    assert!(
        matches!(by_name, Err(Refusal::SelfApproval { .. })),
        "{by_name:?}"
    );
    // …nor through her token's identity…
    a.requester.uid = Some(77);
    a.requester.user = Some("svc".into());
    a.requester.email = Some("alice@example.com".into());
    let by_email = authorise(&peer(4242, "alice", &[]), &a, Verdict::Approve);
    assert!(
        matches!(by_email, Err(Refusal::SelfApproval { .. })),
        "{by_email:?}"
    );
    // …but she may withdraw it (deny).
    authorise(&peer(4242, "alice", &[]), &a, Verdict::Deny).unwrap();
}

#[test]
fn one_vote_per_approver_and_only_while_pending() {
    let mut a = approval("a", "p", "d");
    a.approvals_required = 2;
    a.approved_by.push(Decider {
        uid: Some(2000),
        user: Some("bob".into()),
        sub: None,
        email: None,
        groups: Vec::new(),
        time_us: 1,
    });
    let twice = authorise(&peer(2000, "bob", &[]), &a, Verdict::Approve);
    assert!(
        matches!(twice, Err(Refusal::AlreadyApproved { .. })),
        "{twice:?}"
    );
    authorise(&peer(2001, "carol", &["secops"]), &a, Verdict::Approve).unwrap();
    a.state = State::Used;
    let used = authorise(&peer(2001, "carol", &["secops"]), &a, Verdict::Approve);
    assert!(matches!(used, Err(Refusal::NotPending { .. })), "{used:?}");
}

#[test]
fn token_holders_are_approvers_by_name_or_group_and_never_for_themselves() {
    let mut a = approval("a", "p", "d");
    authorise(
        &token("u-1", "carol@example.com", &["secops"]),
        &a,
        Verdict::Approve,
    )
    .unwrap();
    // Users are matched exactly: `bob` is listed, bob@example.com is not (until listed).
    let local_part = authorise(&token("u-2", "bob@example.com", &[]), &a, Verdict::Approve);
    assert!(
        matches!(local_part, Err(Refusal::NotApprover { .. })),
        "{local_part:?}"
    );
    a.approvers.users.push("bob@example.com".into());
    authorise(&token("u-2", "bob@example.com", &[]), &a, Verdict::Approve).unwrap();
    let stranger = authorise(
        &token("u-3", "eve@example.com", &["dev"]),
        &a,
        Verdict::Approve,
    );
    assert!(
        matches!(stranger, Err(Refusal::NotApprover { .. })),
        "{stranger:?}"
    );
    // The local user alice asked: her token (alice@…) may not approve it.
    let herself = authorise(
        &token("u-4", "alice@example.com", &["secops"]),
        &a,
        Verdict::Approve,
    );
    assert!(
        matches!(herself, Err(Refusal::SelfApproval { .. })),
        "{herself:?}"
    );
    // bob approved on the socket; his token is the same person, not a second vote.
    a.approvals_required = 2;
    a.approved_by.push(Decider {
        uid: Some(2000),
        user: Some("bob".into()),
        sub: None,
        email: None,
        groups: Vec::new(),
        time_us: 1,
    });
    let twice = authorise(&token("u-2", "bob@example.com", &[]), &a, Verdict::Approve);
    assert!(
        matches!(twice, Err(Refusal::AlreadyApproved { .. })),
        "{twice:?}"
    );
}
