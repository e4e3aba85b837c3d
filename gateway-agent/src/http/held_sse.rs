//! SSE keep-alive while an approval holds a request: a client that accepts
//! `text/event-stream` gets its response started as SSE as soon as the hold begins, a
//! comment line (`: held for approval <id>`) every `approval.keepalive_secs`, then the
//! exchange's real answer — the upstream's SSE events as they come, or a JSON answer (the
//! upstream's, or the gateway's pending/denied one) re-framed as one `message` event. Its
//! idle timers never see a silent connection, however long people take.
//!
//! Why a task: hyper's service future must return the response head to start the stream,
//! while the held exchange goes on (wait, forward, filter). So for such requests the
//! exchange runs in a spawned task that owns what it needs (`Arc`s); the service answers
//! with whatever comes first — the early SSE head, or the exchange's own response when no
//! hold started (everything else behaves exactly as before). The task then feeds the
//! early response's channel-backed body. It ends when the client goes away (the next
//! send fails) and is aborted if the client leaves before any response.
//!
//! Only with `[approval]` configured and a POST whose Accept names `text/event-stream`;
//! JSON-only clients keep the plain held exchange.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use serde_json::Value;
use tokio::sync::oneshot;
use tracing::info;

use super::{
    ConnFacts, Pipeline, Upstream,
    audit_rows::RowContext,
    body::{BodyError, ProxyBody},
    exchange::{header_str, rpc_error},
    stream_pump::{self, Downstream},
};
use crate::{
    approval::{Approvals, Call, Held},
    mcp::jsonrpc::{self, codes},
};

/// Does `request` take the keep-alive path?
pub(super) fn applies(pipeline: &Pipeline, request: &Request<Incoming>) -> bool {
    pipeline.approvals.is_some()
        && request.method() == http::Method::POST
        && header_str(request.headers(), header::ACCEPT.as_str())
            .is_some_and(|accept| accept.to_ascii_lowercase().contains("text/event-stream"))
}

/// Runs the exchange in its own task; answers with the early SSE head if a hold starts.
pub(super) async fn handle(
    pipeline: Arc<Pipeline>,
    facts: Arc<ConnFacts>,
    upstream: Arc<Upstream>,
    mut request: Request<Incoming>,
) -> Response<ProxyBody> {
    let (early_tx, early_rx) = oneshot::channel();
    let limit = pipeline.limits.max_response_body;
    let hold = SseHold::new(early_tx, limit);
    request.extensions_mut().insert(hold.clone());
    let task = tokio::spawn(async move {
        let response = pipeline
            .handle(request, &facts, |req| upstream.send(req))
            .await;
        if hold.started() {
            hold.finish(response).await;
            None
        } else {
            Some(response)
        }
    });
    let mut task = AbortOnDrop(Some(task));
    if let Ok(early) = early_rx.await {
        // Detached: the task now feeds the early response's body on its own.
        drop(task.0.take());
        return early;
    }
    let answer = match task.0.as_mut() {
        Some(running) => running.await.ok().flatten(),
        None => None,
    };
    answer.unwrap_or_else(|| {
        rpc_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &Value::Null,
            codes::UPSTREAM,
            "gateway: the exchange ended without an answer",
        )
    })
}

/// Holds `call` for approval, with keep-alives when the exchange came through
/// [`handle`] on Streamable HTTP (legacy HTTP+SSE answers go on the session's stream, not
/// this POST). `None`: the client went away while held.
pub(super) async fn hold(
    approvals: &Approvals,
    call: Call,
    sse: Option<SseHold>,
    rows: &RowContext,
) -> Option<Held> {
    match sse.filter(|_| rows.transport == "streamable_http") {
        Some(sse) => {
            let (opened, id) = oneshot::channel();
            let every = Duration::from_secs(approvals.config().keepalive_secs);
            let hold = approvals.hold_observed(call, Some(opened));
            sse.keep_alive(hold, id, every).await
        }
        None => Some(approvals.hold(call).await),
    }
}

/// Aborts the exchange's task when the client goes away before any response.
struct AbortOnDrop<T>(Option<tokio::task::JoinHandle<T>>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

/// The early SSE response of one exchange, handed to the request stage in the request's
/// extensions (taken out there, so it never travels upstream).
#[derive(Clone)]
pub(super) struct SseHold(Arc<Inner>);

struct Inner {
    /// The head and body to answer with once a hold starts; taken then.
    early: Mutex<Option<(oneshot::Sender<Response<ProxyBody>>, ProxyBody)>>,
    downstream: Downstream,
    /// The most the exchange's final answer is read to re-frame it.
    limit: usize,
}

impl SseHold {
    fn new(early: oneshot::Sender<Response<ProxyBody>>, limit: usize) -> Self {
        let (downstream, body) = stream_pump::channel(None);
        Self(Arc::new(Inner {
            early: Mutex::new(Some((early, body))),
            downstream,
            limit,
        }))
    }

    fn started(&self) -> bool {
        self.0.early.lock().is_ok_and(|early| early.is_none())
    }

    /// Sends the SSE head; `false` when the client is already gone.
    fn start(&self) -> bool {
        let Some((early, body)) = self.0.early.lock().ok().and_then(|mut e| e.take()) else {
            return false;
        };
        let mut response = Response::new(body);
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        early.send(response).is_ok()
    }

    /// Waits for `hold`, starting the SSE response when `opened` names the approval the
    /// exchange waits on and sending a comment every `every` until it ends. `None`: the
    /// client went away (the approval stays open for its retry).
    async fn keep_alive(
        &self,
        hold: impl Future<Output = Held>,
        opened: oneshot::Receiver<String>,
        every: Duration,
    ) -> Option<Held> {
        tokio::pin!(hold);
        let mut opened = Some(opened);
        let mut comment = None;
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            tokio::select! {
                held = &mut hold => return Some(held),
                id = async { opened.as_mut().expect("guarded").await }, if opened.is_some() => {
                    opened = None;
                    if let Ok(id) = id {
                        let line = Bytes::from(format!(": held for approval {id}\n\n"));
                        if !self.start() || !self.0.downstream.send(line.clone()).await {
                            return None;
                        }
                        info!(%id, every_secs = every.as_secs(), "held exchange answered as SSE; keep-alives started");
                        comment = Some(line);
                    }
                }
                _ = tick.tick(), if comment.is_some() => {
                    let line = comment.clone().unwrap_or_default();
                    if !self.0.downstream.send(line).await {
                        return None;
                    }
                }
            }
        }
    }

    /// Streams the exchange's answer into the started SSE response.
    async fn finish(&self, response: Response<ProxyBody>) {
        let downstream = &self.0.downstream;
        let sse = header_str(response.headers(), header::CONTENT_TYPE.as_str())
            .is_some_and(|t| t.to_ascii_lowercase().starts_with("text/event-stream"));
        let mut body = response.into_body();
        if sse {
            while let Some(frame) = body.frame().await {
                match frame {
                    Ok(frame) => {
                        if let Ok(data) = frame.into_data()
                            && !downstream.send(data).await
                        {
                            return;
                        }
                    }
                    Err(err) => return downstream.fail(err).await,
                }
            }
            return;
        }
        let bytes = match http_body_util::Limited::new(body, self.0.limit)
            .collect()
            .await
        {
            Ok(collected) => collected.to_bytes(),
            Err(err) => return downstream.cut(format!("reading the answer: {err}")).await,
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        match reframe(&bytes) {
            Some(event) => {
                downstream.send(event).await;
            }
            None => {
                downstream
                    .fail(BodyError::Cut(
                        "the held exchange's answer is not JSON-RPC".into(),
                    ))
                    .await
            }
        }
    }
}

/// A JSON answer (one message or a batch) as SSE `message` events.
fn reframe(bytes: &[u8]) -> Option<Bytes> {
    let value: Value = serde_json::from_slice(bytes).ok()?;
    let mut out = String::new();
    for message in jsonrpc::messages(&value) {
        // Compact JSON has no newline, so one `data:` line carries it.
        out.push_str("event: message\ndata: ");
        out.push_str(&message.to_string());
        out.push_str("\n\n");
    }
    (!out.is_empty()).then(|| Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_answers_become_one_message_event_each() {
        let one = reframe(br#"{"jsonrpc":"2.0","id":1,"result":{"text":"a\nb"}}"#).unwrap();
        let text = std::str::from_utf8(&one).unwrap();
        let data = text
            .strip_prefix("event: message\ndata: ")
            .and_then(|rest| rest.strip_suffix("\n\n"))
            .unwrap();
        assert!(!data.contains('\n'), "one data line: {text}");
        let message: Value = serde_json::from_str(data).unwrap();
        assert_eq!(message["result"]["text"], "a\nb");
        let batch = reframe(
            br#"[{"jsonrpc":"2.0","id":1,"result":{}},{"jsonrpc":"2.0","id":2,"result":{}}]"#,
        )
        .unwrap();
        assert_eq!(
            batch.windows(14).filter(|w| w == b"event: message").count(),
            2
        );
        assert!(reframe(b"<html>").is_none());
    }
}
