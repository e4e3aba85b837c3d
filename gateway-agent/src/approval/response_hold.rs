//! Response-side hold: an answer in which the masker found more secrets than
//! `hold_response_if_masked_over` (a "dump everything" answer) waits for approval before
//! the caller gets it, masked as usual.
//!
//! The approval is an ordinary one (same store, binding, caps, quorum, no self-approval,
//! expiry, channels, journal and audit rows) whose key says `stage = "response"`, so an
//! approval of a request never releases a response and the other way round.
//!
//! A retry must not re-run the tool: the masked response is kept in memory, bounded
//! ([`MAX_KEPT_BYTES`] over all approvals; an answer that does not fit is not kept) and
//! only while its approval is open. The caller's retry of the same call (same principal,
//! tool and arguments; any JSON-RPC id) is answered from it without reaching the server:
//! held again while pending, released once approved (the approval is then used). Without
//! a kept answer (it did not fit, or the agent restarted) the retry is forwarded, and the
//! new answer is released by the approved approval, or joins the pending one.

use std::collections::HashMap;

use bytes::Bytes;
use serde_json::Value;
use tracing::info;

use super::{
    Approvals,
    binding::Stage,
    hold::{Call, Held, answer, call_key, decided_text},
    store::{self, Approval, State},
};

/// Masked responses kept for retries, over all open response approvals.
pub const MAX_KEPT_BYTES: usize = 64 * 1024 * 1024;

/// Held responses by approval id, with their total size.
#[derive(Default)]
pub struct Kept {
    by_id: HashMap<String, Bytes>,
    bytes: usize,
}

impl Kept {
    /// Keeps `body` for `id` when it fits; `false` when it does not.
    fn keep(&mut self, id: &str, body: Bytes) -> bool {
        if self.by_id.contains_key(id) {
            return true;
        }
        if self.bytes + body.len() > MAX_KEPT_BYTES {
            return false;
        }
        self.bytes += body.len();
        self.by_id.insert(id.to_owned(), body);
        true
    }

    fn get(&self, id: &str) -> Option<Bytes> {
        self.by_id.get(id).cloned()
    }

    /// Forgets every answer whose approval is no longer open.
    fn retain(&mut self, open: impl Fn(&str) -> bool) {
        let mut freed = 0;
        self.by_id.retain(|id, body| {
            let keep = open(id);
            if !keep {
                freed += body.len();
            }
            keep
        });
        self.bytes -= freed;
    }
}

/// What becomes of a held response.
#[derive(Debug)]
pub enum ResponseHeld {
    /// Approved: deliver this (the masked answer, its id the caller's request's).
    Release(Bytes),
    /// Answer the caller with this instead (pending, denied, expired, refused).
    Answer(Value),
}

impl Approvals {
    /// The response-hold threshold for a request `rule` allowed; `None`: not held.
    pub fn response_threshold(&self, rule: Option<&str>) -> Option<usize> {
        self.config.response_threshold(rule)
    }

    /// Holds `masked`, the answer to `call` in which `secrets` secrets were masked, for
    /// approval. `call.rule` is the rule that allowed the request.
    pub async fn hold_response(&self, call: Call, masked: Bytes, secrets: usize) -> ResponseHeld {
        let _holding = self.holding();
        let Some(key) = call_key(&call, Stage::Response) else {
            return refused(
                &call,
                "response held: it carried too many secrets and the caller is not identified, so no approval can be bound to it".into(),
            );
        };
        match self.try_use(&key, &call).await {
            Some(Held::Release { .. }) => return ResponseHeld::Release(masked),
            Some(Held::Answer(refusal)) => return ResponseHeld::Answer(refusal),
            None => {}
        }
        let effective = self.config.for_rule(&call.rule);
        let approval = match self.open_or_join(&call, key.clone(), &effective).await {
            Ok(approval) => approval,
            Err(problem) => return refused(&call, problem),
        };
        let kept = self.keep_response(&approval.id, masked.clone()).await;
        info!(id = %approval.id, secrets, kept, "response held for approval");
        self.wait(&approval.id).await;
        self.after_wait(&call, &key, approval, masked).await
    }

    /// A retry of a call whose answer is held: answered from the kept answer (held
    /// again while pending), never forwarded. `None`: nothing kept, forward it.
    pub async fn kept_response(&self, call: &Call) -> Option<ResponseHeld> {
        let key = call_key(call, Stage::Response)?;
        let (approval, kept) = {
            let store = self.store.lock().await;
            let now = store::now_us();
            let approval = store
                .pending(&key, now)
                .or_else(|| store.usable(&key, &call.origin.session, now))?
                .clone();
            let kept = self.kept.lock().ok()?.get(&approval.id)?;
            (approval, kept)
        };
        let _holding = self.holding();
        if approval.state == State::Pending {
            info!(id = %approval.id, "retry of a held response; held again");
            self.wait(&approval.id).await;
        }
        Some(self.after_wait(call, &key, approval, kept).await)
    }

    async fn after_wait(
        &self,
        call: &Call,
        key: &super::binding::CallKey,
        approval: Approval,
        masked: Bytes,
    ) -> ResponseHeld {
        match self.try_use(key, call).await {
            Some(Held::Release { .. }) => {
                return ResponseHeld::Release(with_id(&masked, call.message.get("id")));
            }
            Some(Held::Answer(refusal)) => return ResponseHeld::Answer(refusal),
            None => {}
        }
        let now = self.get(&approval.id).await.unwrap_or(approval);
        let effective = self.config.for_rule(&call.rule);
        let text = match decided_text(&now) {
            Some(text) => text.replace("the call was not made", "the response was withheld"),
            None => format!(
                "response held for approval: {}, it carried more secrets than allowed; ask {} \
                 and retry the same call to receive it{}",
                now.id,
                effective.approvers.describe(),
                super::hold::votes(&now),
            ),
        };
        refused(call, text)
    }

    /// Keeps `masked` for a retry while the approval is open; `false` when over the cap.
    async fn keep_response(&self, id: &str, masked: Bytes) -> bool {
        let open: Vec<String> = {
            let store = self.store.lock().await;
            store
                .list()
                .into_iter()
                .filter(|a| a.state.is_open())
                .map(|a| a.id)
                .collect()
        };
        let Ok(mut kept) = self.kept.lock() else {
            return false;
        };
        kept.retain(|held| open.iter().any(|o| o == held));
        kept.keep(id, masked)
    }
}

fn refused(call: &Call, text: String) -> ResponseHeld {
    match answer(call, text) {
        Held::Answer(value) => ResponseHeld::Answer(value),
        Held::Release { .. } => unreachable!("answer() always answers"),
    }
}

/// `body` (one JSON-RPC response) answering the request with `id`: a kept answer is
/// delivered to a retry, which has a new id.
fn with_id(body: &Bytes, id: Option<&Value>) -> Bytes {
    let (Some(id), Ok(Value::Object(mut message))) = (id, serde_json::from_slice(body)) else {
        return body.clone();
    };
    if message.get("id") == Some(id) {
        return body.clone();
    }
    message.insert("id".into(), id.clone());
    Bytes::from(Value::Object(message).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_answers_are_bounded_and_forgotten_when_closed() {
        let mut kept = Kept::default();
        assert!(kept.keep("a", Bytes::from_static(b"{}")));
        assert!(!kept.keep("big", Bytes::from(vec![b' '; MAX_KEPT_BYTES])));
        assert!(kept.keep("b", Bytes::from_static(b"[1]")));
        assert_eq!(kept.bytes, 5);
        kept.retain(|id| id == "b");
        assert!(kept.get("a").is_none());
        assert_eq!(kept.get("b").as_deref(), Some(&b"[1]"[..]));
        assert_eq!(kept.bytes, 3);
    }

    #[test]
    fn a_retry_gets_the_answer_under_its_own_id() {
        let body = Bytes::from_static(br#"{"jsonrpc":"2.0","id":1,"result":{"x":1}}"#);
        let again: Value = serde_json::from_slice(&with_id(&body, Some(&"r2".into()))).unwrap();
        assert_eq!(again["id"], "r2");
        assert_eq!(again["result"]["x"], 1);
        assert_eq!(with_id(&body, Some(&1.into())), body);
    }
}
