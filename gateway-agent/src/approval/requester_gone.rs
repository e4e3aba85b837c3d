//! A requester whose client went away while its call was held. The approval stays open:
//! approvals are keyed to the exact call, and the design is that the caller retries it
//! (the hold ends after `hold_secs` anyway, long before the approval's `ttl_secs`); an
//! approval granted after the client left releases nothing until that same caller asks
//! again. What changes is that the approver can tell: the departure is logged and audited
//! against the approval's id, so `audit replay` of the session shows the call was left.

use serde_json::json;
use tracing::info;

use super::{rows, store::Approval};
use crate::audit::AuditSink;

/// Armed while an exchange waits on `approval`; dropped armed when the exchange's future
/// is dropped (the client disconnected).
pub(super) struct Waiting {
    sink: Option<AuditSink>,
    approval: Approval,
    armed: bool,
}

impl Waiting {
    pub(super) fn new(sink: Option<AuditSink>, approval: &Approval) -> Self {
        Self {
            sink,
            approval: approval.clone(),
            armed: true,
        }
    }

    /// The wait ended normally (decision, hold time up, agent stopping).
    pub(super) fn ended(mut self) {
        self.armed = false;
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        info!(
            id = %self.approval.id,
            "client went away while held for approval; the approval stays open for a retry"
        );
        let (Some(sink), Ok(runtime)) = (self.sink.clone(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        let row = rows::event(
            &self.approval,
            "approval_requester_gone",
            json!({ "note": "the held client disconnected; the approval stays open for a retry of the same call" }),
        );
        runtime.spawn(async move {
            let _ = sink.record(vec![row]).await;
        });
    }
}
