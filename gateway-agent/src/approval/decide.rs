//! Approving and denying: who may, and what a decision does.
//!
//! The approver is whoever is at the other end of the admin socket, as the kernel says
//! (SO_PEERCRED), their user name and groups from NSS plus the gid they connected with; or,
//! on the HTTP admin endpoint, the subject, e-mail and groups of a validated OIDC token.
//! They may decide when the approval's approvers (the rule's, else `[approval]`'s) list
//! one of their names or groups. They may never approve their own request: not with the
//! uid that made it, nor under any name its process or token carried. With
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

/// Who is deciding: the admin socket's peer (uid, gid, user resolved), or a token's
/// holder on the HTTP admin endpoint (subject, e-mail).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peer {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub pid: Option<i32>,
    pub user: Option<String>,
    pub subject: Option<String>,
    pub email: Option<String>,
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
    pub fn who(&self) -> String {
        let name = self
            .user
            .as_deref()
            .or(self.email.as_deref())
            .or(self.subject.as_deref());
        match (name, self.uid) {
            (Some(name), Some(uid)) => format!("{name} (uid {uid})"),
            (Some(name), None) => name.to_owned(),
            (None, Some(uid)) => format!("uid {uid}"),
            (None, None) => "an unnamed approver".to_owned(),
        }
    }

    /// The names `approvers.users` may list for this peer, exactly: the local user, the
    /// token's subject and e-mail (never an e-mail's local part: `bob@elsewhere` is not
    /// `bob`).
    pub fn exact_names(&self) -> Vec<&str> {
        [
            self.user.as_deref(),
            self.subject.as_deref(),
            self.email.as_deref(),
        ]
        .into_iter()
        .flatten()
        .filter(|n| !n.is_empty())
        .collect()
    }

    /// Every name the peer might go by, for refusing self-approval (broad on purpose):
    /// user, token subject, e-mail and its local part.
    pub fn names(&self) -> Vec<&str> {
        names(
            self.user.as_deref(),
            self.subject.as_deref(),
            self.email.as_deref(),
        )
    }

    fn decider(&self) -> Decider {
        Decider {
            uid: self.uid,
            user: self.user.clone(),
            sub: self.subject.clone(),
            email: self.email.clone(),
            groups: self.groups.clone(),
            time_us: store::now_us(),
        }
    }

    /// Is `decider` this peer (same uid, or a shared name)?
    fn is(&self, decider: &Decider) -> bool {
        if decider.uid.is_some() && decider.uid == self.uid {
            return true;
        }
        let theirs = names(
            decider.user.as_deref(),
            decider.sub.as_deref(),
            decider.email.as_deref(),
        );
        self.names().iter().any(|n| theirs.contains(n))
    }
}

fn names<'a>(user: Option<&'a str>, sub: Option<&'a str>, email: Option<&'a str>) -> Vec<&'a str> {
    let local = email.and_then(|e| e.split('@').next());
    [user, sub, email, local]
        .into_iter()
        .flatten()
        .filter(|n| !n.is_empty())
        .collect()
}

/// Is `peer` the one who asked? Any identity the request carried counts: its uid, its
/// user name, its token subject or e-mail (or the e-mail's local part).
pub fn is_requester(peer: &Peer, approval: &Approval) -> bool {
    let r = &approval.requester;
    if r.uid.is_some() && r.uid == peer.uid {
        return true;
    }
    let theirs = names(r.user.as_deref(), r.sub.as_deref(), r.email.as_deref());
    peer.names().iter().any(|n| theirs.contains(n))
}

/// May `peer` take `verdict` on `approval` now?
pub fn authorise(peer: &Peer, approval: &Approval, verdict: Verdict) -> Result<(), Refusal> {
    if approval.state != State::Pending {
        return Err(Refusal::NotPending {
            id: approval.id.clone(),
            state: approval.state.as_str(),
        });
    }
    if !approval.approvers.admits(&peer.exact_names(), &peer.groups) {
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
        if approval.approved_by.iter().any(|d| peer.is(d)) {
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
