//! The audit rows of an approval's life: `approval_requested`, `approval_notified`,
//! `approval_granted` (one per approver; the approver's identity in the payload),
//! `approval_denied` (approver and reason), `approval_expired` and `approval_used`.
//!
//! Each is a `gateway`/`decision` row in the requesting session, with the requester in the
//! principal columns (the session is theirs), the rule in `rules`, and a JSON payload
//! that always has `approval` (the id) and `stage` (`request`, or `response` for a
//! response held for carrying too many secrets); DuckDB reads the rest with `payload->>'$.approver.user'`.

use serde_json::{Value, json};

use super::store::{Approval, Decider};
use crate::audit::{AuditRecord, Direction, Kind, PrincipalColumns};

/// A row for `event` on `approval`; `extra`'s members are added to the payload.
pub fn event(approval: &Approval, event: &str, extra: Value) -> AuditRecord {
    let mut row = AuditRecord::new(
        approval.origin.session.clone(),
        Direction::Gateway,
        Kind::Decision,
    );
    row.transport = approval.origin.transport.clone();
    row.protocol_version = approval.origin.protocol_version.clone();
    row.server_name = approval.origin.server_name.clone();
    row.server_addr = approval.key.server_addr.clone();
    row.request_id = approval.origin.request_id.clone();
    row.method = Some(approval.key.method.clone());
    row.tool = approval.key.tool.clone();
    row.decision = Some(event.to_owned());
    row.rules = vec![approval.key.rule.clone()];
    let r = &approval.requester;
    row.principal = PrincipalColumns {
        sub: r.sub.clone(),
        email: r.email.clone(),
        groups: r.groups.clone(),
        issuer: r.issuer.clone(),
        pid: r.pid,
        uid: r.uid,
        user: r.user.clone(),
        comm: r.comm.clone(),
        exe: r.exe.clone(),
        cgroup: r.cgroup.clone(),
    };
    let mut payload = json!({
        "approval": approval.id,
        "state": approval.state.as_str(),
        "digest": approval.key.digest,
        "policy_version": approval.policy_version,
        "stage": approval.key.stage.as_str(),
    });
    if let (Value::Object(payload), Value::Object(extra)) = (&mut payload, extra) {
        payload.extend(extra);
    }
    row.payload = Some(payload.to_string());
    row
}

pub fn decider(decider: &Decider) -> Value {
    json!({
        "uid": decider.uid,
        "user": decider.user,
        "sub": decider.sub,
        "email": decider.email,
        "groups": decider.groups,
    })
}
