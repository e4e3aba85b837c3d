//! Approving and denying: who may, and what a decision does.
//!
//! The approver is whoever is at the other end of the admin socket, as the kernel says
//! (SO_PEERCRED); their user name and groups come from NSS, plus the gid they connected
//! with. They may decide when the approval's approvers (the rule's, else `[approval]`'s)
//! list their user or one of their groups. They may never approve their own request: not
//! with the uid that made it, nor as the user its token or process names. With
//! `approvals_required = N`, N distinct approvers must approve; one denial ends it.
//!
//! A decision is recorded in the audit trail before it takes effect, then journalled,
//! then the held exchange is woken.

use serde_json::json;
use tracing::info;

use super::{
    Approvals, rows,
    store::{self, Approval, Decider, State},
};

/// The admin socket's peer, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub gid: u32,
    pub pid: Option<i32>,
    pub user: Option<String>,
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Approve,
    Deny,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no approval {0}")]
    Unknown(String),
    #[error("approval {id} is {state}, not pending")]
    NotPending { id: String, state: &'static str },
    #[error("{who} may not decide approval {id}: approvers are {approvers}")]
    NotApprover {
        who: String,
        id: String,
        approvers: String,
    },
    #[error("{who} requested this call; someone else must approve it (no self-approval)")]
    SelfApproval { who: String },
    #[error("{who} already approved {id}; it needs another approver")]
    AlreadyApproved { who: String, id: String },
    #[error("a denial needs a reason (--reason)")]
    NoReason,
    #[error("audit trail unavailable: decision not taken")]
    Audit,
    #[error("approval journal unavailable: decision not taken ({0})")]
    Journal(String),
}

impl Peer {
    fn who(&self) -> String {
        match &self.user {
            Some(user) => format!("{user} (uid {})", self.uid),
            None => format!("uid {}", self.uid),
        }
    }

    fn decider(&self) -> Decider {
        Decider {
            uid: self.uid,
            user: self.user.clone(),
            groups: self.groups.clone(),
            time_us: store::now_us(),
        }
    }
}

/// Is `peer` the one who asked? Any identity the request carried counts: its uid, its
/// user name, its token subject or e-mail (or the e-mail's local part).
pub fn is_requester(peer: &Peer, approval: &Approval) -> bool {
    let r = &approval.requester;
    if r.uid == Some(peer.uid) {
        return true;
    }
    let Some(name) = peer.user.as_deref() else {
        return false;
    };
    let email_local = r.email.as_deref().and_then(|e| e.split('@').next());
    [
        r.user.as_deref(),
        r.sub.as_deref(),
        r.email.as_deref(),
        email_local,
    ]
    .into_iter()
    .flatten()
    .any(|id| id == name)
}

/// May `peer` take `verdict` on `approval` now?
pub fn authorise(peer: &Peer, approval: &Approval, verdict: Verdict) -> Result<(), Refusal> {
    if approval.state != State::Pending {
        return Err(Refusal::NotPending {
            id: approval.id.clone(),
            state: approval.state.as_str(),
        });
    }
    if !approval
        .approvers
        .admits(peer.user.as_deref(), &peer.groups)
    {
        return Err(Refusal::NotApprover {
            who: peer.who(),
            id: approval.id.clone(),
            approvers: approval.approvers.describe(),
        });
    }
    if verdict == Verdict::Approve {
        if is_requester(peer, approval) {
            return Err(Refusal::SelfApproval { who: peer.who() });
        }
        if approval.approved_by.iter().any(|d| d.uid == peer.uid) {
            return Err(Refusal::AlreadyApproved {
                who: peer.who(),
                id: approval.id.clone(),
            });
        }
    }
    Ok(())
}

impl Approvals {
    /// `peer` approves or denies approval `id`; returns its new state.
    pub async fn decide(
        &self,
        peer: &Peer,
        id: &str,
        verdict: Verdict,
        reason: Option<String>,
    ) -> Result<Approval, Refusal> {
        let reason = reason.filter(|r| !r.trim().is_empty());
        if verdict == Verdict::Deny && reason.is_none() {
            return Err(Refusal::NoReason);
        }
        let mut store = self.store.lock().await;
        let mut approval = store
            .get(id)
            .cloned()
            .ok_or_else(|| Refusal::Unknown(id.to_owned()))?;
        if let Err(refusal) = authorise(peer, &approval, verdict) {
            info!(id, approver = %peer.who(), %refusal, "approval decision refused");
            return Err(refusal);
        }
        let decider = peer.decider();
        let row = match verdict {
            Verdict::Approve => {
                approval.approved_by.push(decider.clone());
                let votes = u32::try_from(approval.approved_by.len()).unwrap_or(u32::MAX);
                if votes >= approval.approvals_required {
                    approval.state = State::Approved;
                    approval.approved_us = Some(decider.time_us);
                }
                rows::event(
                    &approval,
                    "approval_granted",
                    json!({
                        "approver": rows::decider(&decider),
                        "reason": reason,
                        "votes": votes,
                        "approvals_required": approval.approvals_required,
                    }),
                )
            }
            Verdict::Deny => {
                approval.state = State::Denied;
                approval.denied_by = Some(decider.clone());
                approval.denial_reason = reason.clone();
                rows::event(
                    &approval,
                    "approval_denied",
                    json!({ "approver": rows::decider(&decider), "reason": reason }),
                )
            }
        };
        if !self.record(vec![row]).await {
            return Err(Refusal::Audit);
        }
        store
            .save(approval.clone())
            .map_err(|err| Refusal::Journal(err.to_string()))?;
        drop(store);
        info!(
            id,
            approver = %peer.who(),
            verdict = ?verdict,
            state = approval.state.as_str(),
            "approval decided"
        );
        self.bump();
        Ok(approval)
    }
}

#[cfg(test)]
mod tests;
