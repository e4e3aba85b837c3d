//! Streams an upstream SSE body to the client event by event, filtering each event's data.
//!
//! A task reads upstream frames and sends finished events into a bounded channel that is
//! the client's response body: the upstream is read no faster than the client drains
//! (backpressure), nothing waits for the stream to end (a tools/call stream stays open
//! while the server waits for the client's answer to an elicitation sent on it), and
//! there is no idle timeout. When the client goes away the channel closes, the task ends
//! and the upstream body is dropped.

use std::{
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use tokio::sync::mpsc;
use tracing::{error, warn};

use super::{
    body::{BodyError, ProxyBody, StreamDecoder},
    legacy::{INJECT_QUEUE, LegacySessions},
    message_filter::MessageFilter,
};
use crate::{audit::AuditSink, mcp::sse::SseParser};

/// Events in flight between the upstream reader and the client.
const CHANNEL_EVENTS: usize = 16;

/// Where a legacy-transport stream registers, so refusals can be delivered on it.
pub struct LegacyRegistry {
    pub sessions: Arc<LegacySessions>,
    pub server: SocketAddr,
}

pub fn filter(
    upstream: Incoming,
    max_event: usize,
    filter: MessageFilter,
    legacy: LegacyRegistry,
    decoder: Option<StreamDecoder>,
    audit: Option<AuditSink>,
) -> ProxyBody {
    let (tx, rx) = mpsc::channel(CHANNEL_EVENTS);
    tokio::spawn(pump(
        upstream, max_event, filter, legacy, decoder, audit, tx,
    ));
    ChannelBody { rx }.boxed()
}

async fn pump(
    mut upstream: Incoming,
    max_event: usize,
    mut filter: MessageFilter,
    legacy: LegacyRegistry,
    mut decoder: Option<StreamDecoder>,
    audit: Option<AuditSink>,
    tx: mpsc::Sender<Result<Bytes, BodyError>>,
) {
    let mut parser = SseParser::new(max_event);
    let (inject_tx, mut injected) = mpsc::channel(INJECT_QUEUE);
    let mut inject_tx = Some(inject_tx);
    let mut _registration = None;
    loop {
        let frame = tokio::select! {
            frame = upstream.frame() => match frame {
                Some(frame) => frame,
                None => break,
            },
            Some(event) = injected.recv() => {
                if tx.send(Ok(event)).await.is_err() {
                    return;
                }
                continue;
            }
        };
        let data = match frame {
            Ok(frame) => match frame.into_data() {
                Ok(data) => data,
                Err(_trailers) => continue,
            },
            Err(err) => {
                let _ = tx.send(Err(BodyError::Hyper(err))).await;
                return;
            }
        };
        let data = match decoder.as_mut().map(|d| d.push(&data)) {
            None => data,
            Some(Ok(decoded)) => Bytes::from(decoded),
            Some(Err(err)) => {
                warn!(error = %err, "undecodable compressed SSE stream cut");
                let _ = tx.send(Err(BodyError::Cut(err.to_string()))).await;
                return;
            }
        };
        let events = match parser.push(&data) {
            Ok(events) => events,
            Err(err) => {
                warn!(error = %err, "SSE stream cut");
                let _ = tx.send(Err(BodyError::Cut(err.to_string()))).await;
                return;
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
            let out = match &event.data {
                Some(data) => {
                    let applied = filter.apply(data.as_bytes(), 200);
                    // Durable before the client sees it; a trail that cannot take the
                    // rows ends the stream rather than release an unrecorded event.
                    if let (Some(sink), false) = (&audit, applied.rows.is_empty())
                        && let Err(err) = sink.record(applied.rows).await
                    {
                        error!(error = %err, "audit trail unavailable; SSE stream cut");
                        let _ = tx
                            .send(Err(BodyError::Cut(format!(
                                "audit trail unavailable: {err}"
                            ))))
                            .await;
                        return;
                    }
                    match applied.rewritten {
                        Some(filtered) => event.with_data(&String::from_utf8_lossy(&filtered)),
                        None => event.raw,
                    }
                }
                None => event.raw,
            };
            if tx.send(Ok(out)).await.is_err() {
                return; // client gone
            }
        }
    }
    // A stream that ended mid-event: its fragment never forms an event for the client,
    // but it is still text that reached us, so no secret in it may pass.
    let tail = parser.finish();
    if !tail.is_empty() {
        let applied = filter.apply(&tail, 200);
        if let Some(sink) = &audit
            && let Err(err) = sink.record(applied.rows).await
        {
            error!(error = %err, "audit trail unavailable; SSE stream tail withheld");
            return;
        }
        let _ = tx.send(Ok(applied.rewritten.unwrap_or(tail))).await;
    }
}

struct ChannelBody {
    rx: mpsc::Receiver<Result<Bytes, BodyError>>,
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        self.rx
            .poll_recv(cx)
            .map(|item| item.map(|result| result.map(Frame::data)))
    }
}
