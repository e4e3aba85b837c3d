//! Streams an upstream JSON body that has no declared length (chunked, or read until the
//! connection closes) to the client value by value, filtering each value as it completes:
//! the same masking, tool hiding and audit rows as an SSE event's data, and the same
//! streaming structure ([`super::stream_pump`]). 2026-07-28's `subscriptions/listen` answers
//! this way, with an acknowledgement then notifications on a body that never ends, so
//! waiting for the end would withhold everything.
//!
//! The whitespace between values is forwarded as it came, so a stream the filter leaves
//! unchanged reaches the client byte for byte. What cannot be read as a stream of JSON
//! values (garbage, a value over the limit, a stream ending inside a value) cuts the
//! stream: bytes the gateway could not inspect are never released.

use std::sync::Arc;

use bytes::Bytes;
use serde::de::IgnoredAny;
use tracing::warn;

use super::{
    message_filter::MessageFilter,
    offload,
    stream_pump::{self, Downstream, DrivenBody, Pulled, Source},
};
use crate::{
    audit::AuditSink,
    mcp::json_frames::{JsonFramer, Piece},
};

/// `status` is the HTTP status the body came with (for the rows); `max_value` bounds each
/// value (`max_response_body`).
pub fn filter(
    upstream: Source,
    max_value: usize,
    status: u16,
    filter: MessageFilter,
    audit: Option<AuditSink>,
) -> DrivenBody {
    stream_pump::driven_body(audit, move |downstream| {
        pump(upstream, max_value, status, filter, downstream)
    })
}

async fn pump(
    mut upstream: Source,
    max_value: usize,
    status: u16,
    filter: MessageFilter,
    downstream: Downstream,
) {
    let filter = Arc::new(filter);
    let mut framer = JsonFramer::new(max_value);
    loop {
        let chunk = match upstream.pull().await {
            Pulled::Data(chunk) => chunk,
            Pulled::Failed(err) => return downstream.fail(err).await,
            Pulled::End => break,
        };
        // What completed before a framing error is released first: it was inspected.
        let mut pieces = Vec::new();
        let framed = framer.push(chunk, &mut pieces);
        for piece in pieces {
            let released = match piece {
                Piece::Gap(gap) => downstream.send(gap).await,
                Piece::Value(value) => match release(&filter, value, status).await {
                    Ok((rows, out)) => downstream.release(rows, out).await,
                    Err(problem) => return cut(&downstream, &problem).await,
                },
            };
            if !released {
                return;
            }
        }
        if let Err(err) = framed {
            return cut(&downstream, &err.to_string()).await;
        }
    }
    if let Err(err) = framer.finish() {
        cut(&downstream, &err.to_string()).await;
    }
}

/// One value filtered: its rows and what the client gets (an answer with too many
/// secrets is held for approval first). A value that is not valid JSON is an error (the
/// framer only checked its brackets).
async fn release(
    filter: &Arc<MessageFilter>,
    value: Bytes,
    status: u16,
) -> Result<(Vec<crate::audit::AuditRecord>, Bytes), String> {
    if let Err(err) = serde_json::from_slice::<IgnoredAny>(&value) {
        return Err(format!("streamed JSON value is not valid JSON: {err}"));
    }
    let (value, applied) = offload::apply(filter, value, status, None).await;
    let mut rows = applied.rows;
    let out = applied.rewritten.unwrap_or(value);
    let (out, held_rows) = super::held_response::gate_payload(filter, applied.masked, out).await;
    rows.extend(held_rows);
    Ok((rows, out))
}

async fn cut(downstream: &Downstream, problem: &str) {
    warn!(%problem, "JSON stream cut");
    downstream.cut(problem.to_owned()).await;
}
