//! What the exchange calls for a request an `approve` rule matched: use an approval that
//! covers it, or open one (or join the one already pending for the same call) and hold
//! the exchange up to `hold_secs` for a decision.
//!
//! The answer when no decision came in time tells the caller what to do: "approval
//! pending: <id>, ask <approvers>; retry the same call". For `tools/call` it is a tool
//! error result (the model reads it; 2026-07-28 clients get `resultType: "complete"`),
//! for other methods a JSON-RPC error. A denial or expiry is answered the same way with
//! the reason.

use std::{net::SocketAddr, time::Duration};

use serde_json::{Value, json};
use tracing::{info, warn};

use super::{
    Approvals,
    binding::{self, CallKey, Stage},
    config::{Effective, Grant},
    rows,
    store::{self, Approval, Origin, Requester, State},
};
use crate::{
    mcp::jsonrpc::{self, codes},
    principal::Principal,
};

/// Masked arguments longer than this are shown truncated (the digest covers them all).
const MAX_SHOWN_ARGUMENTS: usize = 8 * 1024;

/// One request an `approve` rule matched (or whose answer is held).
#[derive(Clone)]
pub struct Call {
    /// The JSON-RPC request as the client sent it.
    pub message: Value,
    pub principal: Principal,
    pub server_addr: SocketAddr,
    pub rule: String,
    pub reason: String,
    pub policy_version: String,
    pub origin: Origin,
    /// A 2026-07-28 client (its tool results carry `resultType`).
    pub modern: bool,
    /// The bound arguments with secrets masked, for the approvers to read.
    pub masked_arguments: Value,
}

/// What the exchange does with the held request.
#[derive(Debug)]
pub enum Held {
    /// An approval covers it: forward it (the use is already recorded), as `body` when
    /// the gateway's own come-back state had to be taken out of it.
    Release { body: Option<Vec<u8>> },
    /// Answer the client with this JSON-RPC message instead.
    Answer(Value),
}

impl Approvals {
    pub async fn hold(&self, call: Call) -> Held {
        self.hold_observed(call, None).await
    }

    /// [`Self::hold`], telling `opened` the approval's id when the exchange starts to
    /// wait for a decision (an SSE response can then start at once, with keep-alives).
    pub async fn hold_observed(
        &self,
        call: Call,
        opened: Option<tokio::sync::oneshot::Sender<String>>,
    ) -> Held {
        let Some(key) = call_key(&call, Stage::Request) else {
            return answer(
                &call,
                "approval required, but the caller is not identified (no token, no process), so no approval can be bound to it".into(),
            );
        };
        if let Some(outcome) = self.try_use(&key, &call).await {
            return outcome;
        }
        let effective = self.config.for_rule(&call.rule);
        let approval = match self.open_or_join(&call, key.clone(), &effective).await {
            Ok(approval) => approval,
            Err(problem) => return answer(&call, problem),
        };
        if let Some(opened) = opened {
            let _ = opened.send(approval.id.clone());
        }
        let waiting = super::requester_gone::Waiting::new(self.sink.clone(), &approval);
        self.wait(&approval.id).await;
        waiting.ended();
        if let Some(outcome) = self.try_use(&key, &call).await {
            return outcome;
        }
        let now = self.get(&approval.id).await.unwrap_or(approval);
        let text = match decided_text(&now) {
            Some(text) => text,
            None => {
                let stopping = *self.stopping.borrow();
                if !stopping
                    && super::comeback::applies(&call.message, call.modern)
                    && super::comeback::round(&call.message) < self.config.input_required_rounds
                {
                    info!(
                        id = %now.id,
                        round = super::comeback::round(&call.message) + 1,
                        "approval pending; client asked to come back"
                    );
                    return Held::Answer(super::comeback::answer(&call.message));
                }
                pending_text(&now, &effective)
            }
        };
        answer(&call, text)
    }

    /// Uses an approved approval covering `key`, recording the use durably first. `None`
    /// when there is none.
    pub(super) async fn try_use(&self, key: &CallKey, call: &Call) -> Option<Held> {
        let mut store = self.store.lock().await;
        let mut approval = store
            .usable(key, &call.origin.session, store::now_us())?
            .clone();
        approval.uses += 1;
        if approval.grant == Grant::Once {
            approval.state = State::Used;
        }
        let mut row = rows::event(
            &approval,
            "approval_used",
            json!({ "uses": approval.uses, "grant": approval.grant }),
        );
        row.session = call.origin.session.clone();
        row.request_id = call.message.get("id").map(Value::to_string);
        if !self.record(vec![row]).await {
            return Some(answer(
                call,
                "audit trail unavailable: the approved call was not forwarded".into(),
            ));
        }
        if let Err(err) = store.save(approval.clone()) {
            warn!(error = %err, "cannot journal an approval's use; call not forwarded");
            return Some(answer(
                call,
                "approval journal unavailable: the approved call was not forwarded".into(),
            ));
        }
        drop(store);
        info!(id = %approval.id, uses = approval.uses, "approval used; call forwarded");
        self.bump();
        Some(Held::Release {
            body: super::comeback::unwrap(&call.message),
        })
    }

    /// The pending approval for this exact call, or a new one (within the caps), its
    /// request recorded and journalled and its channels notified.
    pub(super) async fn open_or_join(
        &self,
        call: &Call,
        key: CallKey,
        effective: &Effective,
    ) -> Result<Approval, String> {
        let mut store = self.store.lock().await;
        let now = store::now_us();
        if let Some(pending) = store.pending(&key, now) {
            return Ok(pending.clone());
        }
        store
            .room_for(&key.principal)
            .map_err(|cap| format!("approval refused: {cap}"))?;
        let id = store::new_id().map_err(|err| format!("cannot create an approval id: {err}"))?;
        let ttl = i64::try_from(self.config.ttl_secs).unwrap_or(i64::MAX) * 1_000_000;
        let approval = Approval {
            id,
            state: State::Pending,
            requester: requester(&call.principal),
            origin: call.origin.clone(),
            arguments: shown(&call.masked_arguments),
            reason: call.reason.clone(),
            policy_version: call.policy_version.clone(),
            created_us: now,
            expires_us: now.saturating_add(ttl),
            approvals_required: effective.approvals_required,
            approvers: effective.approvers.clone(),
            grant: effective.grant,
            approved_by: Vec::new(),
            approved_us: None,
            denied_by: None,
            denial_reason: None,
            session: (effective.grant == Grant::Session).then(|| call.origin.session.clone()),
            uses: 0,
            key,
        };
        let row = rows::event(
            &approval,
            "approval_requested",
            json!({
                "reason": approval.reason,
                "arguments": approval.arguments,
                "expires_us": approval.expires_us,
                "approvers": approval.approvers.describe(),
                "approvals_required": approval.approvals_required,
            }),
        );
        if !self.record(vec![row]).await {
            return Err(
                "audit trail unavailable: no approval opened, the call was not made".into(),
            );
        }
        store.save(approval.clone()).map_err(|err| {
            warn!(error = %err, "cannot journal a new approval");
            "approval journal unavailable: no approval opened, the call was not made".to_owned()
        })?;
        drop(store);
        info!(
            id = %approval.id,
            rule = %approval.key.rule,
            tool = approval.key.tool.as_deref().unwrap_or(""),
            principal = %approval.key.principal,
            "approval requested"
        );
        self.notifier.announce(&approval);
        Ok(approval)
    }

    /// Returns when `id` is no longer pending, `hold_secs` passed, or the agent stops.
    pub(super) async fn wait(&self, id: &str) {
        let mut changed = self.changed.subscribe();
        let mut stopping = self.stopping.subscribe();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(self.config.hold_secs);
        loop {
            if *stopping.borrow_and_update() {
                return;
            }
            if self.get(id).await.is_none_or(|a| a.state != State::Pending) {
                return;
            }
            tokio::select! {
                changed = changed.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep_until(deadline) => return,
                _ = stopping.changed() => return,
            }
        }
    }
}

/// The exact-call key of `call` at `stage`; `None` when the caller is not identified.
pub(super) fn call_key(call: &Call, stage: Stage) -> Option<CallKey> {
    Some(CallKey {
        principal: binding::principal_key(&call.principal)?,
        server_addr: call.server_addr.to_string(),
        method: jsonrpc::method(&call.message)
            .unwrap_or_default()
            .to_owned(),
        tool: jsonrpc::tool_name(&call.message).map(str::to_owned),
        digest: binding::digest(binding::bound_arguments(&call.message)),
        rule: call.rule.clone(),
        stage,
    })
}

/// What the caller is told about a closed approval; `None` while it is still open.
pub(super) fn decided_text(now: &Approval) -> Option<String> {
    Some(match now.state {
        State::Denied => format!(
            "approval {} denied by {}: {}",
            now.id,
            now.denied_by
                .as_ref()
                .and_then(|d| d.user.clone())
                .unwrap_or_else(|| "an approver".into()),
            now.denial_reason.as_deref().unwrap_or("no reason given"),
        ),
        State::Expired => format!(
            "approval {} expired without a decision; the call was not made",
            now.id
        ),
        State::Used => format!(
            "approval {} was used by an identical call; retry to ask for a new approval",
            now.id
        ),
        State::Pending | State::Approved => return None,
    })
}

/// Counts an exchange as held for as long as it lives (a client that disconnects drops
/// the exchange's future, and with it the guard): a stopping agent waits for these to
/// be answered and their rows recorded before it closes the audit trail.
pub struct Holding<'a>(&'a Approvals);

impl Approvals {
    pub fn holding(&self) -> Holding<'_> {
        self.held.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Holding(self)
    }
}

impl Drop for Holding<'_> {
    fn drop(&mut self) {
        self.0
            .held
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        self.0.bump();
    }
}

/// ` (1 of 2 approvals so far)` under a quorum, else nothing.
pub(super) fn votes(approval: &Approval) -> String {
    if approval.approvals_required > 1 {
        format!(
            " ({} of {} approvals so far)",
            approval.approved_by.len(),
            approval.approvals_required
        )
    } else {
        String::new()
    }
}

pub(super) fn pending_text(approval: &Approval, effective: &Effective) -> String {
    let votes = votes(approval);
    format!(
        "approval pending: {}, ask {}; retry the same call{votes}. Rule {}: {}",
        approval.id,
        effective.approvers.describe(),
        approval.key.rule,
        approval.reason,
    )
}

/// The answer to a held request: a tool error result for `tools/call`, else an error.
pub(super) fn answer(call: &Call, text: String) -> Held {
    let id = call.message.get("id").cloned().unwrap_or(Value::Null);
    Held::Answer(if jsonrpc::method(&call.message) == Some("tools/call") {
        let mut answer = jsonrpc::tool_error_result(&id, &text);
        if call.modern {
            answer["result"]["resultType"] = "complete".into();
        }
        answer
    } else {
        jsonrpc::error_response(&id, codes::APPROVAL_PENDING, &text)
    })
}

/// The bound arguments of `message` with secrets masked, for the approvers to read.
pub fn masked_arguments(message: &Value, masker: &crate::mask::Masker) -> Value {
    let mut copy = binding::bound_arguments(message).clone();
    masker.mask_value(&mut copy);
    copy
}

fn shown(arguments: &Value) -> String {
    let mut text = arguments.to_string();
    if text.len() > MAX_SHOWN_ARGUMENTS {
        let mut end = MAX_SHOWN_ARGUMENTS;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("… (truncated)");
    }
    text
}

fn requester(principal: &Principal) -> Requester {
    let token = principal.token.as_ref();
    Requester {
        pid: principal.process.as_ref().map(|p| p.pid),
        uid: principal.uid(),
        user: principal.user().map(str::to_owned),
        comm: principal.comm().map(str::to_owned),
        exe: principal.exe().map(|e| e.to_string_lossy().into_owned()),
        cgroup: principal.cgroup().map(str::to_owned),
        sub: token.map(|t| t.subject.clone()),
        issuer: token.map(|t| t.issuer.clone()),
        email: token.and_then(|t| t.email.clone()),
        groups: principal.groups().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(message: Value, modern: bool) -> Call {
        Call {
            message,
            principal: Principal::default(),
            server_addr: "127.0.0.1:8000".parse().unwrap(),
            rule: "r".into(),
            reason: "why".into(),
            policy_version: "v".into(),
            origin: Origin::default(),
            modern,
            masked_arguments: Value::Null,
        }
    }

    fn answered(held: Held) -> Value {
        match held {
            Held::Answer(answer) => answer,
            Held::Release { .. } => panic!("released"),
        }
    }

    #[test]
    fn tool_calls_get_a_tool_error_result_other_methods_an_error() {
        let tool = json!({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"x"}});
        let legacy = answered(answer(
            &call(tool.clone(), false),
            "approval pending: a".into(),
        ));
        assert_eq!(legacy["id"], 7);
        assert_eq!(legacy["result"]["isError"], true);
        assert_eq!(
            legacy["result"]["content"][0]["text"],
            "approval pending: a"
        );
        assert!(legacy["result"].get("resultType").is_none());
        let modern = answered(answer(&call(tool, true), "approval pending: a".into()));
        assert_eq!(modern["result"]["resultType"], "complete");
        let read = json!({"jsonrpc":"2.0","id":"r1","method":"resources/read","params":{"uri":"file:///x"}});
        let error = answered(answer(&call(read, true), "approval pending: b".into()));
        assert_eq!(error["id"], "r1");
        assert_eq!(error["error"]["code"], codes::APPROVAL_PENDING);
        assert_eq!(error["error"]["message"], "approval pending: b");
    }

    #[test]
    fn shown_arguments_are_bounded() {
        let long = Value::String("x".repeat(MAX_SHOWN_ARGUMENTS * 2));
        let text = shown(&long);
        assert!(text.len() < MAX_SHOWN_ARGUMENTS + 32);
        assert!(text.ends_with("(truncated)"));
    }
}
