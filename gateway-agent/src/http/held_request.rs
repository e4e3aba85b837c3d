//! The hold stage of a request: an `approve` verdict waits here for a person's decision
//! (`approval/`, kept alive for SSE clients by [`super::held_sse`]), its request rows
//! durable first; approved, it is forwarded (possibly rewritten), denied or expired, the
//! gateway answers in its place.

use http::{Response, StatusCode};

use super::{
    audit_rows::RowContext,
    body::{self, ProxyBody},
    exchange::{Pipeline, Scope, audit_unavailable},
    request::called_tool,
};
use crate::{
    audit::AuditRecord,
    mcp::jsonrpc::{self, codes},
};

impl Pipeline {
    /// Holds a request for approval (see `approval::hold`): `Ok(method, rewritten body)`
    /// to forward it, or the answer to send instead.
    pub(super) async fn held(
        &self,
        call: crate::approval::Call,
        request_rows: Vec<AuditRecord>,
        uri: &http::Uri,
        scope: &Scope,
        rows: &RowContext,
        sse_hold: Option<super::held_sse::SseHold>,
    ) -> Result<(String, Option<Vec<u8>>), Response<ProxyBody>> {
        let Some(approvals) = &self.approvals else {
            let message = "approval required, but approvals are not configured";
            return Err(self
                .refuse(rows, StatusCode::FORBIDDEN, codes::DENIED, message)
                .await);
        };
        // Until answered: a stopping agent waits for held exchanges.
        let _holding = approvals.holding();
        if let Err(err) = self.recorder.commit(request_rows).await {
            return Err(audit_unavailable(&err, "request not forwarded"));
        }
        let body = call.message.clone();
        let Some(held) = super::held_sse::hold(approvals, call, sse_hold, rows).await else {
            // The client is gone; the approval stays open for its retry.
            return Err(Response::new(body::empty()));
        };
        match held {
            crate::approval::Held::Release { body: rewritten } => {
                let method = jsonrpc::method(&body).unwrap_or_default();
                let target = uri.path_and_query().map_or("", |pq| pq.as_str());
                let tool = called_tool(&body);
                let id = (body.get("id").into_iter()).map(|id| (id, method, tool.as_deref()));
                self.legacy.note_requests(scope.orig_dst, target, id);
                Ok((method.to_owned(), rewritten))
            }
            crate::approval::Held::Answer(answer) => {
                let (response, answer_rows) = self.answer(uri, scope, rows, &answer, &body);
                if let Err(err) = self.recorder.commit(answer_rows).await {
                    return Err(audit_unavailable(&err, "request not forwarded"));
                }
                Err(response)
            }
        }
    }
}
