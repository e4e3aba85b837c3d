use super::*;
use crate::approval::store::tests::approval;

fn peer(uid: u32, user: &str, groups: &[&str]) -> Peer {
    Peer {
        uid,
        gid: uid,
        pid: None,
        user: Some(user.to_owned()),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
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
        uid: 2000,
        user: Some("bob".into()),
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
