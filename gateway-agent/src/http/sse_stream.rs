//! Streams an upstream SSE body to the client event by event, filtering each event's data
//! (the shared streaming structure, backpressure and audit-before-release, is in
//! [`super::stream_pump`]). A tools/call stream stays open while the server waits for the
//! client's answer to an elicitation sent on it, so nothing waits for the stream to end;
//! with `mask.stream_holdback` a notification waits for its successor, boundedly
//! ([`super::sse_holdback`]).

use std::{net::SocketAddr, sync::Arc};

use bytes::Bytes;
use tokio::sync::mpsc;
use tracing::warn;

use super::{
    legacy::{INJECT_QUEUE, LegacySessions},
    message_filter::MessageFilter,
    offload,
    sse_holdback::{Holdback, Ready},
    stream_pump::{self, Downstream, DrivenBody, Pulled, Source},
};
use crate::{audit::AuditSink, mcp::sse::SseParser};

/// Where a legacy-transport stream registers, so refusals can be delivered on it.
pub struct LegacyRegistry {
    pub sessions: Arc<LegacySessions>,
    pub server: SocketAddr,
}

pub fn filter(
    upstream: Source,
    max_event: usize,
    filter: MessageFilter,
    legacy: LegacyRegistry,
    audit: Option<AuditSink>,
) -> DrivenBody {
    let holdback = filter.scope.server.stream_holdback.map(Holdback::new);
    stream_pump::driven_body(audit, move |downstream| {
        let stream = Stream {
            filter: Arc::new(filter),
            downstream,
            holdback,
        };
        stream.pump(upstream, max_event, legacy)
    })
}

/// One SSE response being filtered.
struct Stream {
    /// Shared with the blocking pool while a large event is filtered there ([`offload`]),
    /// and only then.
    filter: Arc<MessageFilter>,
    downstream: Downstream,
    holdback: Option<Holdback>,
}

impl Stream {
    async fn pump(mut self, mut upstream: Source, max_event: usize, legacy: LegacyRegistry) {
        let mut parser = SseParser::new(max_event);
        let (inject_tx, mut injected) = mpsc::channel(INJECT_QUEUE);
        let mut inject_tx = Some(inject_tx);
        let mut _registration = None;
        loop {
            let due = self.holdback.as_ref().and_then(Holdback::due);
            let data = tokio::select! {
                pulled = upstream.pull() => match pulled {
                    Pulled::Data(data) => data,
                    Pulled::Failed(err) => {
                        if self.flush().await {
                            self.downstream.fail(err).await;
                        }
                        return;
                    }
                    Pulled::End => break,
                },
                Some(event) = injected.recv() => {
                    if !self.downstream.send(event).await {
                        return;
                    }
                    continue;
                }
                () = tokio::time::sleep_until(due.unwrap_or_else(tokio::time::Instant::now)),
                    if due.is_some() =>
                {
                    if !self.flush().await {
                        return;
                    }
                    continue;
                }
            };
            let events = match parser.push(&data) {
                Ok(events) => events,
                Err(err) => {
                    warn!(error = %err, "SSE stream cut");
                    if self.flush().await {
                        self.downstream.cut(err.to_string()).await;
                    }
                    return;
                }
            };
            for mut event in events {
                let endpoint = event.event.as_deref() == Some("endpoint");
                if endpoint && let (Some(endpoint), Some(inject)) = (&event.data, inject_tx.take())
                {
                    _registration = legacy.sessions.register(legacy.server, endpoint, inject);
                    if let Some(registration) = &_registration {
                        // The sole owner: an offloaded event's clone is dropped before its
                        // filtering is awaited to the end.
                        match Arc::get_mut(&mut self.filter) {
                            Some(filter) => filter.follow_legacy_session(
                                Arc::clone(&legacy.sessions),
                                legacy.server,
                                registration.session().to_owned(),
                            ),
                            None => warn!(
                                "legacy session rows stay with the stream: its filter is shared"
                            ),
                        }
                    }
                }
                let released = match event.data.take() {
                    Some(data) if !endpoint => self.message(Ready::new(event, data)).await,
                    // Protocol state, and events without a message (comments, priming
                    // events with an id): nothing held may be overtaken by them.
                    Some(data) => {
                        let applied = self.filter.apply_endpoint(data.as_bytes());
                        self.flush().await && self.downstream.release(applied.rows, event.raw).await
                    }
                    None => self.flush().await && self.downstream.send(event.raw).await,
                };
                if !released {
                    return;
                }
            }
        }
        if !self.flush().await {
            return;
        }
        // A stream that ended mid-event: its fragment never forms an event for the
        // client, but it is still text that reached us, so no secret in it may pass.
        let tail = parser.finish();
        if !tail.is_empty() {
            let (tail, applied) = offload::apply(&self.filter, tail, 200, None).await;
            self.downstream
                .release(applied.rows, applied.rewritten.unwrap_or(tail))
                .await;
        }
    }

    /// One message event: released now, or (with a holdback) when its successor comes.
    async fn message(&mut self, ready: Ready) -> bool {
        let Some(holdback) = self.holdback.as_mut() else {
            return self.release(ready).await;
        };
        for ready in holdback.admit(&self.filter.masker, ready) {
            if !self.release(ready).await {
                return false;
            }
        }
        true
    }

    /// Releases the held notification, if any; false when the stream must end.
    async fn flush(&mut self) -> bool {
        match self.holdback.as_mut().and_then(Holdback::release) {
            Some(ready) => self.release(ready).await,
            None => true,
        }
    }

    /// Filters one message event and releases it once its rows are durable; false when
    /// the stream must end.
    async fn release(&self, ready: Ready) -> bool {
        let Ready {
            event,
            data,
            edited,
            seam,
        } = ready;
        let seam = (seam.masked > 0).then_some(seam);
        let (data, applied) = offload::apply(&self.filter, data, 200, seam).await;
        let mut rows = applied.rows;
        let payload = applied
            .rewritten
            .or_else(|| edited.then(|| Bytes::from(data)));
        let out = match payload {
            Some(payload) => {
                // An answer with too many secrets (masked, so rewritten) waits here for
                // approval.
                let (payload, held_rows) =
                    super::held_response::gate_payload(&self.filter, applied.masked, payload).await;
                rows.extend(held_rows);
                event.with_data(&String::from_utf8_lossy(&payload))
            }
            None => event.raw,
        };
        self.downstream.release(rows, out).await
    }
}
