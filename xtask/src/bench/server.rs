//! The backend the benchmark talks to: an HTTP/1.1 keep-alive server inside the xtask
//! process, answering every request with the same small JSON-RPC result.
//!
//! It stands in for an MCP server's cheapest possible answer, so what the benchmark sees
//! is transport and gateway cost, not server work. The body is JSON-RPC because the agent
//! inspects `application/json` exchanges (policy in, masking out): a realistic request and
//! response exercise that pipeline, which is the agent's per-request cost.

use std::{convert::Infallible, net::SocketAddr};

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{Request, Response, body::Incoming, header, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// What every request gets back (≈100 bytes). The client checks responses against it, so
/// an agent that refused or rewrote the exchange shows up as errors, not as speed.
pub const RESPONSE_BODY: &[u8] = br#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"pong from the bench backend"}],"isError":false}}"#;

/// Binds 127.0.0.1 on an ephemeral port and serves on `runtime` until it is dropped.
pub fn start(runtime: &tokio::runtime::Runtime) -> anyhow::Result<SocketAddr> {
    let listener = runtime
        .block_on(TcpListener::bind(("127.0.0.1", 0)))
        .context("binding the bench backend on 127.0.0.1")?;
    let addr = listener.local_addr()?;
    runtime.spawn(accept_loop(listener));
    Ok(addr)
}

/// Like [`start`], speaking TLS with `config` (`bench --tls`).
pub fn start_tls(
    runtime: &tokio::runtime::Runtime,
    config: std::sync::Arc<rustls::ServerConfig>,
) -> anyhow::Result<SocketAddr> {
    let listener = runtime
        .block_on(TcpListener::bind(("127.0.0.1", 0)))
        .context("binding the TLS bench backend on 127.0.0.1")?;
    let addr = listener.local_addr()?;
    runtime.spawn(tls_accept_loop(
        listener,
        tokio_rustls::TlsAcceptor::from(config),
    ));
    Ok(addr)
}

async fn accept_loop(listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        // Small request/response pairs must not wait for Nagle and delayed ACKs.
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve(stream));
    }
}

async fn tls_accept_loop(listener: TcpListener, acceptor: tokio_rustls::TlsAcceptor) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            if let Ok(stream) = acceptor.accept(stream).await {
                serve(stream).await;
            }
        });
    }
}

async fn serve(stream: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static) {
    let _ = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service_fn(answer))
        .await;
}

/// The path whose POSTs are answered as an SSE stream of one event, as the MCP SDKs'
/// servers answer by default (Python's `json_response=False`, TypeScript's
/// `enableJsonResponse: false`): chunked, `text/event-stream`, ended after the answer.
pub const SSE_ANSWER_PATH: &str = "/mcp-sse";

/// What a POST to [`SSE_ANSWER_PATH`] gets: [`RESPONSE_BODY`] as one SSE event.
pub const SSE_ANSWER: &[u8] = br#"event: message
data: {"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"pong from the bench backend"}],"isError":false}}

"#;

/// The one event a `GET …/sse` stream sends before it stays open (`bench --rss`).
pub const SSE_EVENT: &[u8] = b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"level\":\"info\",\"data\":\"stream open\"}}\n\n";

async fn answer(request: Request<Incoming>) -> Result<Response<Either>, Infallible> {
    if request.method() == hyper::Method::GET && request.uri().path().ends_with("/sse") {
        let response = Response::builder()
            .header(header::CONTENT_TYPE, "text/event-stream")
            .body(Either::Held(HeldSse { sent: false }))
            .expect("static response parts are valid");
        return Ok(response);
    }
    let sse = request.uri().path() == SSE_ANSWER_PATH;
    // Read the request body whole, as a real server would before answering.
    let _ = request.into_body().collect().await;
    if sse {
        let response = Response::builder()
            .header(header::CONTENT_TYPE, "text/event-stream")
            .header(header::CACHE_CONTROL, "no-cache")
            .body(Either::Answer(Some(Bytes::from_static(SSE_ANSWER))))
            .expect("static response parts are valid");
        return Ok(response);
    }
    let response = Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Either::Full(Full::new(Bytes::from_static(RESPONSE_BODY))))
        .expect("static response parts are valid");
    Ok(response)
}

/// The backend's kinds of body.
enum Either {
    Full(Full<Bytes>),
    Held(HeldSse),
    /// One SSE event, then the end; no size hint, so it goes out chunked.
    Answer(Option<Bytes>),
}

/// One SSE event, then open until the client goes away (hyper drops the body then).
struct HeldSse {
    sent: bool,
}

impl hyper::body::Body for Either {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Either::Full(full) => std::pin::Pin::new(full).poll_frame(cx),
            Either::Held(held) if !held.sent => {
                held.sent = true;
                std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(Bytes::from_static(
                    SSE_EVENT,
                )))))
            }
            // Nothing more, ever: no waker is needed for a wake that never comes.
            Either::Held(_) => std::task::Poll::Pending,
            Either::Answer(event) => {
                std::task::Poll::Ready(event.take().map(|e| Ok(hyper::body::Frame::data(e))))
            }
        }
    }

    // Passed on so hyper sends the JSON answer with a Content-Length, as the MCP SDKs'
    // servers do (Starlette's JSONResponse, Node's `res.end(body)`); without these it went
    // out chunked and the agent took its streamed-JSON path instead of the buffered one.
    fn is_end_stream(&self) -> bool {
        match self {
            Either::Full(full) => hyper::body::Body::is_end_stream(full),
            Either::Held(_) => false,
            Either::Answer(event) => event.is_none(),
        }
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match self {
            Either::Full(full) => hyper::body::Body::size_hint(full),
            Either::Held(_) | Either::Answer(_) => hyper::body::SizeHint::default(),
        }
    }
}
