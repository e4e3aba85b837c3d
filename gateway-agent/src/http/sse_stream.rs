//! Streams an upstream SSE body to the client event by event, filtering each event's data
//! (the shared streaming structure, backpressure and audit-before-release, is in
//! [`super::stream_pump`]). A tools/call stream stays open while the server waits for the
//! client's answer to an elicitation sent on it, so nothing waits for the stream to end.

use std::{net::SocketAddr, sync::Arc};

use tokio::sync::mpsc;
use tracing::warn;

use super::{
    body::ProxyBody,
    legacy::{INJECT_QUEUE, LegacySessions},
    message_filter::MessageFilter,
    stream_pump::{self, Downstream, Pulled, Source},
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
) -> ProxyBody {
    stream_pump::driven(audit, move |downstream| {
        pump(upstream, max_event, filter, legacy, downstream)
    })
}

async fn pump(
    mut upstream: Source,
    max_event: usize,
    mut filter: MessageFilter,
    legacy: LegacyRegistry,
    downstream: Downstream,
) {
    let mut parser = SseParser::new(max_event);
    let (inject_tx, mut injected) = mpsc::channel(INJECT_QUEUE);
    let mut inject_tx = Some(inject_tx);
    let mut _registration = None;
    loop {
        let data = tokio::select! {
            pulled = upstream.pull() => match pulled {
                Pulled::Data(data) => data,
                Pulled::Failed(err) => return downstream.fail(err).await,
                Pulled::End => break,
            },
            Some(event) = injected.recv() => {
                if !downstream.send(event).await {
                    return;
                }
                continue;
            }
        };
        let events = match parser.push(&data) {
            Ok(events) => events,
            Err(err) => {
                warn!(error = %err, "SSE stream cut");
                return downstream.cut(err.to_string()).await;
            }
        };
        for event in events {
            if event.event.as_deref() == Some("endpoint")
                && let (Some(endpoint), Some(inject)) = (&event.data, inject_tx.take())
            {
                _registration = legacy.sessions.register(legacy.server, endpoint, inject);
                if let Some(registration) = &_registration {
                    filter.follow_legacy_session(
                        Arc::clone(&legacy.sessions),
                        legacy.server,
                        registration.session().to_owned(),
                    );
                }
            }
            let released = match &event.data {
                Some(data) => {
                    let applied = if event.event.as_deref() == Some("endpoint") {
                        filter.apply_endpoint(data.as_bytes())
                    } else {
                        filter.apply(data.as_bytes(), 200)
                    };
                    let mut rows = applied.rows;
                    let out = match applied.rewritten {
                        Some(payload) => {
                            // An answer with too many secrets (masked, so rewritten)
                            // waits here for approval.
                            let (payload, held_rows) = super::held_response::gate_payload(
                                &filter,
                                applied.masked,
                                payload,
                            )
                            .await;
                            rows.extend(held_rows);
                            event.with_data(&String::from_utf8_lossy(&payload))
                        }
                        None => event.raw,
                    };
                    downstream.release(rows, out).await
                }
                None => downstream.send(event.raw).await,
            };
            if !released {
                return;
            }
        }
    }
    // A stream that ended mid-event: its fragment never forms an event for the client,
    // but it is still text that reached us, so no secret in it may pass.
    let tail = parser.finish();
    if !tail.is_empty() {
        let applied = filter.apply(&tail, 200);
        downstream
            .release(applied.rows, applied.rewritten.unwrap_or(tail))
            .await;
    }
}
