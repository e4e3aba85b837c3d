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

async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    // Read the request body whole, as a real server would before answering.
    let _ = request.into_body().collect().await;
    let response = Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from_static(RESPONSE_BODY)))
        .expect("static response parts are valid");
    Ok(response)
}
