//! A client connection whose upstream cannot be used (its TLS certificate failed
//! verification, or it could not be reached over TLS): every request on it is answered
//! by the gateway with HTTP 502 and a JSON-RPC error naming the reason, and nothing is
//! forwarded. The client's TLS handshake with the agent completes first, so the client
//! reads a clear reason instead of a bare reset.

use std::sync::Arc;

use http::{Request, StatusCode};
use hyper::body::Incoming;
use serde_json::Value;
use tracing::debug;

use super::{
    Stream,
    body::collect_limited,
    exchange::json_response,
    serve_client,
    timeouts::{Timeouts, Wait},
};
use crate::mcp::jsonrpc::{self, codes};

/// Answers every request on `client` with 502 and `reason` (JSON-RPC error -32012, with
/// the request's id when its body is a JSON-RPC request no larger than `max_body`).
pub async fn refuse_all(client: impl Stream, http2: bool, reason: String, max_body: usize) {
    let reason = Arc::new(reason);
    let service = move |request: Request<Incoming>| {
        let reason = Arc::clone(&reason);
        async move {
            let wait = Wait::Total(Timeouts::default().request_body);
            let id = match collect_limited(request.into_body(), max_body, wait).await {
                Ok(bytes) => serde_json::from_slice::<Value>(&bytes)
                    .ok()
                    .and_then(|v| v.get("id").cloned())
                    .unwrap_or(Value::Null),
                Err(_) => Value::Null,
            };
            let body = jsonrpc::error_response(&id, codes::UPSTREAM, &reason);
            Ok::<_, std::convert::Infallible>(json_response(StatusCode::BAD_GATEWAY, &body))
        }
    };
    if let Err(err) = serve_client(
        client,
        http2,
        Timeouts::default(),
        std::future::pending(),
        service,
    )
    .await
    {
        debug!(error = %err, "refused client connection ended");
    }
}
