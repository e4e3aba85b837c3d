//! The pool against a real loopback HTTP/1.1 server that counts the connections it accepts.

use std::{
    convert::Infallible,
    net::SocketAddr,
    path::PathBuf,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt as _;
use hyper::{body::Frame, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::{net::TcpListener, sync::mpsc};

use super::*;
use crate::http::body;

/// A response body fed by the test: it ends when the sender is dropped.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| Ok(Frame::data(c))))
    }
}

struct Backend {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    /// Connections accepted and not yet closed by either side.
    open: Arc<AtomicUsize>,
    /// `/stream` requests hand the test the sender of their body here.
    streams: mpsc::Receiver<mpsc::Sender<Bytes>>,
}

/// Answers `/stream` with a body the test ends, anything else with `ok` at once; closes
/// each connection after one exchange unless `keep_alive`.
async fn backend(keep_alive: bool) -> Backend {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let open = Arc::new(AtomicUsize::new(0));
    let (streams_tx, streams) = mpsc::channel(8);
    let count = Arc::clone(&accepted);
    let open_count = Arc::clone(&open);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            open_count.fetch_add(1, Ordering::SeqCst);
            let streams_tx = streams_tx.clone();
            let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                let streams_tx = streams_tx.clone();
                async move {
                    let (tx, rx) = mpsc::channel(1);
                    if request.uri().path() == "/stream" {
                        let _ = streams_tx.send(tx).await;
                    } else {
                        let _ = tx.send(Bytes::from_static(b"ok")).await;
                    }
                    Ok::<_, Infallible>(Response::new(ChannelBody(rx)))
                }
            });
            let served = hyper::server::conn::http1::Builder::new()
                .keep_alive(keep_alive)
                .serve_connection(TokioIo::new(stream), service);
            let open_count = Arc::clone(&open_count);
            tokio::spawn(async move {
                let _ = served.await;
                open_count.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    Backend {
        addr,
        accepted,
        open,
        streams,
    }
}

fn caller(pid: u32) -> ProcessIdentity {
    ProcessIdentity {
        pid,
        tid: pid,
        uid: 1000,
        gid: 1000,
        comm: "client".into(),
        cgroup_id: 1,
        user: None,
        exe: Some(PathBuf::from("/usr/bin/client")),
        cgroup: None,
        unit: None,
        container: None,
    }
}

fn get(path: &str) -> Request<ProxyBody> {
    Request::get(path)
        .header(http::header::HOST, "backend")
        .body(body::empty())
        .expect("request")
}

async fn text(response: Response<Incoming>) -> String {
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn pool() -> Arc<UpstreamPool> {
    Arc::new(UpstreamPool::new(Duration::from_secs(5)))
}

#[tokio::test]
async fn one_callers_client_connections_share_an_upstream_connection() {
    let backend = backend(true).await;
    let pool = pool();
    let key = PoolKey::new(backend.addr, None, Some(&caller(42)));
    // Three client connections one after another, as a client that opens one per call.
    for _ in 0..3 {
        let client_conn = PooledUpstream::new(Arc::clone(&pool), key.clone(), First::None);
        let response = client_conn.send(get("/")).await.expect("sent");
        assert_eq!(text(response).await, "ok");
    }
    assert_eq!(backend.accepted.load(Ordering::SeqCst), 1);
    assert_eq!(pool.kept(), 1);
}

/// Each data-path thread has a sibling pool: what one keeps, the other never hands out.
#[tokio::test]
async fn sibling_pools_share_no_connection_and_keep_the_limits() {
    let backend = backend(true).await;
    let pool = Arc::new(UpstreamPool::with_idle_timeout(
        Duration::from_secs(3),
        Duration::from_millis(1500),
    ));
    let sibling = Arc::new(pool.sibling());
    let key = PoolKey::new(backend.addr, None, Some(&caller(42)));
    for _ in 0..2 {
        for pool in [&pool, &sibling] {
            let client_conn = PooledUpstream::new(Arc::clone(pool), key.clone(), First::None);
            let response = client_conn.send(get("/")).await.expect("sent");
            assert_eq!(text(response).await, "ok");
        }
    }
    assert_eq!(backend.accepted.load(Ordering::SeqCst), 2);
    assert_eq!((pool.kept(), sibling.kept()), (1, 1));
    assert_eq!(
        (sibling.connect_timeout, sibling.idle_timeout),
        (pool.connect_timeout, pool.idle_timeout)
    );
}

#[tokio::test]
async fn callers_never_share_a_connection() {
    let backend = backend(true).await;
    let pool = pool();
    for pid in [42, 43, 42, 43] {
        let key = PoolKey::new(backend.addr, None, Some(&caller(pid)));
        let client_conn = PooledUpstream::new(Arc::clone(&pool), key, First::None);
        let response = client_conn.send(get("/")).await.expect("sent");
        assert_eq!(text(response).await, "ok");
    }
    assert_eq!(backend.accepted.load(Ordering::SeqCst), 2);
    // Nor do two servers (their injected credentials differ) on the same address.
    let named = PoolKey::new(backend.addr, Some("other"), Some(&caller(42)));
    let response = PooledUpstream::new(Arc::clone(&pool), named, First::None)
        .send(get("/"))
        .await
        .expect("sent");
    assert_eq!(text(response).await, "ok");
    assert_eq!(backend.accepted.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_kept_alive_client_keeps_its_connection() {
    let backend = backend(true).await;
    let pool = pool();
    let key = PoolKey::new(backend.addr, None, Some(&caller(42)));
    let first = PooledUpstream::new(Arc::clone(&pool), key.clone(), First::None);
    let second = PooledUpstream::new(Arc::clone(&pool), key.clone(), First::None);
    // Two clients connected at once, taking turns: each on a connection of its own.
    for client_conn in [&first, &second, &first, &second] {
        let response = client_conn.send(get("/")).await.expect("sent");
        assert_eq!(text(response).await, "ok");
    }
    assert_eq!(backend.accepted.load(Ordering::SeqCst), 2);
    assert_eq!(
        pool.kept(),
        0,
        "connections of connected clients are not shared"
    );
    drop((first, second));
    assert_eq!(pool.kept(), 2);
}

#[tokio::test]
async fn a_streaming_response_keeps_its_connection_until_it_ends() {
    let mut backend = backend(true).await;
    let pool = pool();
    let key = PoolKey::new(backend.addr, None, Some(&caller(42)));
    let client_conn = PooledUpstream::new(Arc::clone(&pool), key.clone(), First::None);
    let mut stream = client_conn
        .send(get("/stream"))
        .await
        .expect("sent")
        .into_body();
    let events = backend.streams.recv().await.expect("stream started");
    events
        .send(Bytes::from_static(b"event"))
        .await
        .expect("event");
    let first = stream.frame().await.expect("a frame").expect("data");
    assert_eq!(first.into_data().expect("data"), "event");
    // Its client connection ends while the stream still runs: kept, but not handed out.
    drop(client_conn);
    assert!(
        pool.take(&key).is_none(),
        "a busy connection was handed out"
    );
    // A call meanwhile gets a connection of its own.
    let other = PooledUpstream::new(Arc::clone(&pool), key.clone(), First::None);
    assert_eq!(text(other.send(get("/")).await.expect("sent")).await, "ok");
    drop(other);
    assert_eq!(backend.accepted.load(Ordering::SeqCst), 2);
    // Once the stream ends its connection serves again: no third connection.
    drop(events);
    assert!(stream.frame().await.is_none());
    let mut held = Vec::new();
    for _ in 0..2 {
        let again = PooledUpstream::new(Arc::clone(&pool), key.clone(), First::None);
        assert_eq!(text(again.send(get("/")).await.expect("sent")).await, "ok");
        held.push(again);
    }
    assert_eq!(backend.accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_connection_the_server_closed_is_replaced() {
    let backend = backend(false).await;
    let pool = pool();
    let key = PoolKey::new(backend.addr, None, Some(&caller(42)));
    for _ in 0..3 {
        let client_conn = PooledUpstream::new(Arc::clone(&pool), key.clone(), First::None);
        let response = client_conn.send(get("/")).await.expect("sent");
        assert_eq!(text(response).await, "ok");
    }
    assert_eq!(backend.accepted.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn an_unreachable_upstream_is_an_error_not_a_hang() {
    // Bound, then released: nothing listens there.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
        .local_addr()
        .expect("addr");
    let key = PoolKey::new(addr, None, Some(&caller(42)));
    let client_conn = PooledUpstream::new(pool(), key, First::None);
    let err = client_conn
        .send(get("/"))
        .await
        .expect_err("nothing listens");
    assert!(matches!(err, UpstreamError::Connect { .. }), "{err}");
}

#[tokio::test]
async fn a_connection_no_request_used_is_closed_with_its_client() {
    let backend = backend(true).await;
    let pool = pool();
    let key = PoolKey::new(backend.addr, None, Some(&caller(42)));
    // As the proxy does when a client connects: a connection opened for it, which its
    // requests never need (the gateway answered them itself).
    let fresh = pool.connect(backend.addr).await.expect("connected");
    drop(PooledUpstream::new(
        Arc::clone(&pool),
        key.clone(),
        First::Fresh(fresh),
    ));
    assert_eq!(pool.kept(), 0, "an unused connection was kept");
    // One that carried a request is kept for the caller's next connection.
    let fresh = pool.connect(backend.addr).await.expect("connected");
    let client_conn = PooledUpstream::new(Arc::clone(&pool), key.clone(), First::Fresh(fresh));
    assert_eq!(
        text(client_conn.send(get("/")).await.expect("sent")).await,
        "ok"
    );
    drop(client_conn);
    assert_eq!(pool.kept(), 1);
    assert_eq!(backend.accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_connection_left_idle_is_closed_without_further_traffic() {
    let backend = backend(true).await;
    let pool = Arc::new(UpstreamPool::with_idle_timeout(
        Duration::from_secs(5),
        Duration::from_millis(200),
    ));
    pool.spawn_sweeper();
    // A caller makes one call and exits: nothing will take or put under its key again.
    let client_conn = PooledUpstream::new(
        Arc::clone(&pool),
        PoolKey::new(backend.addr, None, Some(&caller(42))),
        First::None,
    );
    assert_eq!(
        text(client_conn.send(get("/")).await.expect("sent")).await,
        "ok"
    );
    drop(client_conn);
    assert_eq!(pool.kept(), 1);
    assert_eq!(backend.open.load(Ordering::SeqCst), 1);
    // The sweeper closes it once idle past the limit: the server sees it go.
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        while backend.open.load(Ordering::SeqCst) > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(closed.is_ok(), "the idle connection was never closed");
    assert_eq!(pool.kept(), 0);
}

/// A TLS backend (a self-signed certificate for `localhost`) answering `ok` on kept-alive
/// connections; the client config that trusts it, and one that trusts something else.
struct TlsBackend {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    trusting: Arc<rustls::ClientConfig>,
    distrusting: Arc<rustls::ClientConfig>,
}

fn client_trusting(cert: rustls_pki_types::CertificateDer<'static>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).expect("a root");
    let base = crate::tls::connector::client_config(&roots, Vec::new(), None).expect("config");
    crate::tls::connector::with_alpn(&base, vec![b"http/1.1".to_vec()])
}

async fn tls_backend() -> TlsBackend {
    let issued = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(issued.signing_key.serialize_der().into());
    let server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(vec![issued.cert.der().clone()], key)
    .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let count = Arc::clone(&count);
            tokio::spawn(async move {
                // A plaintext request is no TLS handshake: nothing is served on it.
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                count.fetch_add(1, Ordering::SeqCst);
                let service = service_fn(|_request: Request<hyper::body::Incoming>| async {
                    Ok::<_, Infallible>(Response::new(body::full(Bytes::from_static(b"ok"))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    TlsBackend {
        addr,
        accepted,
        trusting: client_trusting(issued.cert.der().clone()),
        distrusting: client_trusting(other.cert.der().clone()),
    }
}

fn tls_dial(config: &Arc<rustls::ClientConfig>) -> Dial {
    Dial::Tls {
        config: Arc::clone(config),
        name: ServerName::try_from("localhost").expect("a name"),
        timeout: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn tls_connections_are_opened_verified_and_shared_under_their_own_key() {
    let backend = tls_backend().await;
    let pool = pool();
    let plain = PoolKey::new(backend.addr, Some("secure"), Some(&caller(42)));
    let dial = tls_dial(&backend.trusting);
    assert_ne!(
        dial.keyed(plain.clone()),
        plain,
        "TLS and plain never share a key"
    );
    assert!(!pool.holds_tls_for(&plain));
    for _ in 0..3 {
        let client_conn = PooledUpstream::new(Arc::clone(&pool), plain.clone(), First::None)
            .dialing(dial.clone());
        let response = client_conn.send(get("/")).await.expect("sent over TLS");
        assert_eq!(text(response).await, "ok");
    }
    assert_eq!(backend.accepted.load(Ordering::SeqCst), 1);
    assert!(pool.holds_tls_for(&plain));
    // The plain key has nothing: a plain client of the same caller opens its own.
    assert!(pool.take(&plain).is_none());
    assert!(pool.take(&dial.keyed(plain)).is_some());
}

#[tokio::test]
async fn an_unverifiable_tls_upstream_is_an_error_naming_why() {
    let backend = tls_backend().await;
    let key = PoolKey::new(backend.addr, Some("secure"), Some(&caller(42)));
    let client_conn =
        PooledUpstream::new(pool(), key, First::None).dialing(tls_dial(&backend.distrusting));
    let err = client_conn.send(get("/")).await.expect_err("not verified");
    // Both self-signed certificates carry rcgen's default name, so the one trusted is
    // taken as the issuer and its signature fails.
    assert!(
        err.to_string()
            .contains("does not verify against a trusted CA"),
        "the reason is named: {err}"
    );
    assert_eq!(backend.accepted.load(Ordering::SeqCst), 0);
}
