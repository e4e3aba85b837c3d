//! HTTP on an intercepted connection: a hyper server facing the client and a hyper client
//! connection to the original destination, with every exchange passed through
//! [`exchange::Exchange`] (policy on the way in, masking on the way out).
//!
//! Plain HTTP/1.1 exchanges go upstream on kept connections shared by the client
//! connections of one caller ([`pool`]); h2 (prior knowledge) and TLS-terminated
//! connections keep one upstream connection per client connection, speaking whatever the
//! client chose.

mod audit_rows;
mod auth;
mod body;
mod client_gone;
mod exchange;
mod held_request;
mod held_response;
mod held_sse;
mod json_stream;
mod legacy;
mod message_filter;
mod offload;
pub mod pool;
mod refuse;
mod request;
mod response;
mod sniff;
mod sse_holdback;
mod sse_stream;
mod stream_pump;
mod timeouts;
mod unrepresentable;
mod verdict;

use std::sync::Arc;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    sync::Mutex,
};
use tracing::debug;

pub use audit_rows::{Recorder, RowContext, connection_id, refusal_row};
pub use body::ProxyBody;
pub use exchange::{ConnFacts, HttpLimits, Pipeline};
pub use legacy::LegacySessions;
pub use pool::{PoolKey, UpstreamError, UpstreamPool};
pub use refuse::refuse_all;
pub use timeouts::Timeouts;

/// The first bytes of an h2 prior-knowledge connection.
pub const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Is this the start of an HTTP/1.x request (a method token then a space)?
pub fn looks_like_http1(head: &[u8]) -> bool {
    const METHODS: [&[u8]; 9] = [
        b"GET ",
        b"POST ",
        b"PUT ",
        b"DELETE ",
        b"HEAD ",
        b"OPTIONS ",
        b"PATCH ",
        b"CONNECT ",
        b"TRACE ",
    ];
    METHODS.iter().any(|m| head.starts_with(m))
}

enum Upstream {
    Http1(Mutex<hyper::client::conn::http1::SendRequest<ProxyBody>>),
    Http2(hyper::client::conn::http2::SendRequest<ProxyBody>),
    Pooled(pool::PooledUpstream),
}

impl Upstream {
    async fn send(&self, request: Request<ProxyBody>) -> Result<Response<Incoming>, UpstreamError> {
        match self {
            Upstream::Http1(sender) => {
                let mut sender = sender.lock().await;
                sender.ready().await?;
                Ok(sender.send_request(request).await?)
            }
            Upstream::Http2(sender) => {
                let mut sender = sender.clone();
                sender.ready().await?;
                Ok(sender.send_request(request).await?)
            }
            Upstream::Pooled(pooled) => pooled.send(request).await,
        }
    }
}

/// A byte stream HTTP can run on: a TCP socket, or a TLS stream over one.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for T {}

/// Serves HTTP on `client`, forwarding each exchange to `upstream` through `pipeline`.
pub async fn serve(
    client: impl Stream,
    upstream: impl Stream,
    http2: bool,
    pipeline: Arc<Pipeline>,
    facts: Arc<ConnFacts>,
) {
    // When the upstream ends its connection (a server's keep-alive timeout), the client's
    // is closed too once idle, as it would be without the agent: otherwise its next
    // request would meet a dead upstream and get a 502.
    let (upstream_gone_tx, upstream_gone) = tokio::sync::oneshot::channel::<()>();
    let upstream = if http2 {
        match hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(upstream))
            .await
        {
            Ok((sender, conn)) => {
                tokio::spawn(async move {
                    if let Err(err) = conn.await {
                        debug!(error = %err, "upstream h2 connection ended");
                    }
                    let _ = upstream_gone_tx.send(());
                });
                Upstream::Http2(sender)
            }
            Err(err) => {
                tracing::warn!(error = %err, "upstream h2 handshake failed");
                return;
            }
        }
    } else {
        match hyper::client::conn::http1::Builder::new()
            .preserve_header_case(true)
            .handshake(TokioIo::new(upstream))
            .await
        {
            Ok((sender, conn)) => {
                tokio::spawn(async move {
                    if let Err(err) = conn.with_upgrades().await {
                        debug!(error = %err, "upstream connection ended");
                    }
                    let _ = upstream_gone_tx.send(());
                });
                Upstream::Http1(Mutex::new(sender))
            }
            Err(err) => {
                tracing::warn!(error = %err, "upstream handshake failed");
                return;
            }
        }
    };
    let upstream_gone = async {
        let _ = upstream_gone.await;
    };
    serve_upstream(
        client,
        http2,
        Arc::new(upstream),
        upstream_gone,
        pipeline,
        facts,
    )
    .await;
}

/// Serves HTTP/1.1 on `client`, its exchanges sent on `pool`'s connections for `key`
/// (opened as `dial` says); `first` is the connection opened (or taken) when the client
/// connected. The
/// client's connection is not tied to any one upstream connection, so an upstream that
/// closes one does not close the client's (the pool opens another).
pub async fn serve_pooled(
    client: impl Stream,
    pool: Arc<UpstreamPool>,
    (key, dial): (PoolKey, pool::Dial),
    first: pool::First,
    pipeline: Arc<Pipeline>,
    facts: Arc<ConnFacts>,
) {
    let upstream = Upstream::Pooled(pool::PooledUpstream::new(pool, key, first).dialing(dial));
    let never = std::future::pending();
    serve_upstream(client, false, Arc::new(upstream), never, pipeline, facts).await;
}

/// Serves `client` until it ends, or shuts it down gracefully once `upstream_gone`
/// resolves.
async fn serve_upstream(
    client: impl Stream,
    http2: bool,
    upstream: Arc<Upstream>,
    upstream_gone: impl Future<Output = ()>,
    pipeline: Arc<Pipeline>,
    facts: Arc<ConnFacts>,
) {
    let timeouts = pipeline.limits.timeouts;
    let service = move |request: Request<Incoming>| {
        let pipeline = Arc::clone(&pipeline);
        let facts = Arc::clone(&facts);
        let upstream = Arc::clone(&upstream);
        async move {
            // A client that takes SSE may get keep-alives while a hold lasts.
            let response = if held_sse::applies(&pipeline, &request) {
                held_sse::handle(pipeline, facts, upstream, request).await
            } else {
                pipeline
                    .handle(request, &facts, |req| upstream.send(req))
                    .await
            };
            Ok::<_, std::convert::Infallible>(response)
        }
    };
    if let Err(err) = serve_client(client, http2, timeouts, upstream_gone, service).await {
        // Also how kept-alive connections idle past the timeout end: info, not a warning.
        if err.is_timeout() {
            tracing::info!(
                timeout_ms = timeouts.request_head.as_millis() as u64,
                "client sent no complete request head in time; connection closed"
            );
        } else {
            debug!(error = %err, "client connection ended");
        }
    }
}

/// Runs hyper's server side on a client connection, h2 or HTTP/1.1 (with upgrades, and
/// the client's header case kept), until it ends. An HTTP/1.1 client has
/// `timeouts.request_head` to send each request head, including the wait for the next
/// request on a kept-alive connection. Once `upstream_gone` resolves, the connection is
/// shut down gracefully (in-flight exchanges finish, then it closes).
async fn serve_client<F, Fut>(
    client: impl Stream,
    http2: bool,
    timeouts: Timeouts,
    upstream_gone: impl Future<Output = ()>,
    service: F,
) -> hyper::Result<()>
where
    F: Fn(Request<Incoming>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Response<ProxyBody>, std::convert::Infallible>> + Send + 'static,
{
    let service = hyper::service::service_fn(service);
    let io = TokioIo::new(client);
    if http2 {
        let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .serve_connection(io, service);
        until_upstream_gone(conn, upstream_gone, |conn| conn.graceful_shutdown()).await
    } else {
        let conn = hyper::server::conn::http1::Builder::new()
            .preserve_header_case(true)
            // Only the head: long-lived SSE streams and slow tools are not cut by it.
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(timeouts.request_head)
            .serve_connection(io, service)
            .with_upgrades();
        until_upstream_gone(conn, upstream_gone, |conn| conn.graceful_shutdown()).await
    }
}

/// Drives a client connection `conn` to its end; once `upstream_gone` resolves first, it
/// is shut down gracefully (`shutdown`: hyper's h1 and h2 connections each have their
/// own `graceful_shutdown`) and driven until the exchanges in flight finish.
async fn until_upstream_gone<C>(
    conn: C,
    upstream_gone: impl Future<Output = ()>,
    shutdown: impl FnOnce(std::pin::Pin<&mut C>),
) -> hyper::Result<()>
where
    C: Future<Output = hyper::Result<()>>,
{
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => return result,
        () = upstream_gone => {}
    }
    debug!("upstream closed its connection; closing the client's");
    shutdown(conn.as_mut());
    conn.await
}
