//! A client that goes away while its request is in flight (the upstream is slow to answer,
//! or the call is held for approval): hyper drops the exchange's future, which cancels the
//! upstream request and releases its connection. This guard makes that outcome visible:
//! dropped while still armed, it logs and audits one row saying the client went away, so
//! the trail does not show a request with no answer and no reason.

use serde_json::{Value, json};
use tracing::warn;

use super::audit_rows::RowContext;
use crate::audit::{AuditRecord, AuditSink};

/// Armed from the moment a request is admitted until the exchange produces its response.
pub(super) struct Answering {
    sink: Option<AuditSink>,
    rows: RowContext,
    /// The request's JSON-RPC id and method, once read.
    pub(super) id: Value,
    pub(super) method: Option<String>,
    armed: bool,
}

impl Answering {
    pub(super) fn new(sink: Option<AuditSink>, rows: RowContext) -> Self {
        Self {
            sink,
            rows,
            id: Value::Null,
            method: None,
            armed: true,
        }
    }

    /// The exchange answered (whatever the answer): nothing to record here.
    pub(super) fn answered(mut self) {
        self.armed = false;
    }

    fn row(&self) -> AuditRecord {
        // 499: the status proxies log for "client closed request" (no answer was sent).
        let mut row = super::audit_rows::refusal_row(&self.rows, 499, None, "client went away");
        row.decision = Some("client_gone".to_owned());
        row.method = self.method.clone();
        row.request_id = (!self.id.is_null()).then(|| self.id.to_string());
        row.payload = Some(
            json!({
                "event": "client_gone",
                "request_id": self.id,
                "waited_ms": self.rows.started.elapsed().as_millis() as u64,
            })
            .to_string(),
        );
        row
    }
}

impl Drop for Answering {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        warn!(
            session = %self.rows.session,
            id = %self.id,
            method = self.method.as_deref().unwrap_or(""),
            waited_ms = self.rows.started.elapsed().as_millis() as u64,
            "client went away before its answer; upstream request cancelled"
        );
        let (Some(sink), Ok(runtime)) = (self.sink.clone(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        let row = self.row();
        runtime.spawn(async move {
            if let Err(err) = sink.record(vec![row]).await {
                warn!(error = %err, "audit trail unavailable; client departure not recorded");
            }
        });
    }
}
