//! Upstream HTTP/1.1 connections kept open and reused across the client connections of one
//! caller, so a client that opens a connection per call (or many in parallel) does not pay
//! a TCP handshake to the server, and an HTTP handshake, on every one of them.
//!
//! Each data-path thread keeps its own pool (`Proxy::for_thread`): a kept connection's
//! task runs on the thread that opened it, and a client connection of another thread
//! using it paid two cross-thread wake-ups per exchange. A caller whose connections land
//! on different threads may so hold one kept connection per thread.
//!
//! What may share a connection: requests to the same original destination, for the same
//! configured server (which decides the credential the gateway injects), from the same
//! caller process (uid, pid and executable). Streamable HTTP POSTs are independent
//! requests, so which connection carries one is invisible to a server that follows HTTP;
//! a server that ties state to a connection (connection-bound auth schemes) still never
//! sees two callers on one, because callers are part of the key. Long responses (SSE
//! streams, legacy `GET /sse`) keep their connection to themselves until they end: a
//! connection is only handed out while hyper says it can take a request.
//!
//! HTTP/1.1 only (h2 multiplexes on the client's own connection already), over plain TCP
//! or over TLS: a terminated TLS client whose upstream speaks HTTP/1.1 gets a kept TLS
//! connection of its caller's, sparing the upstream handshake (the TLS server name is part
//! of the key, and a connection opened later for that key is TLS verified the same way,
//! so nothing meant for a TLS server ever goes to it in plaintext: [`Dial`]).

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
};
use tokio_rustls::TlsConnector;
use tracing::debug;

use super::body::ProxyBody;
use crate::process::ProcessIdentity;

pub type Sender = hyper::client::conn::http1::SendRequest<ProxyBody>;

/// Connections kept per key (more in flight at once are opened and closed after use).
const MAX_PER_KEY: usize = 64;
/// Connections kept over all keys (per data-path thread): bounds memory and file descriptors.
const MAX_TOTAL: usize = 1024;
/// A connection idle this long is not used again: the servers MCP runs on close idle
/// keep-alive connections after 5 s (uvicorn, Node's http), and a request sent as the
/// server closes is lost in flight, which for a POST cannot be safely retried (the
/// server may have acted on it). Under this limit the race cannot happen; past it a new
/// connection costs a loopback or LAN handshake. Found by `cargo xtask soak
/// --interval-ms 5000`: 903 of 7 462 calls failed with a 30 s limit.
const IDLE_TIMEOUT: Duration = Duration::from_secs(4);
/// How often, as a fraction of the idle limit, stale connections are closed on a timer:
/// the connections of callers that exited are never taken or put again, and each holds a
/// descriptor and a server slot until something closes it.
const SWEEPS_PER_IDLE_TIMEOUT: u32 = 4;

/// Why the upstream could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("connecting to {dst}: {source}")]
    Connect {
        dst: SocketAddr,
        source: std::io::Error,
    },
    #[error("connecting to {dst}: timed out after {timeout:?}")]
    ConnectTimeout { dst: SocketAddr, timeout: Duration },
    #[error(transparent)]
    Http(#[from] hyper::Error),
    /// The upstream TLS handshake or its verification failed, in words a client can read.
    #[error("{0}")]
    Tls(String),
}

/// How a new connection for a key is opened. A key opened over TLS names its server
/// ([`Dial::keyed`]), so plain and TLS connections never share a key.
#[derive(Clone, Default)]
pub enum Dial {
    #[default]
    Plain,
    /// TLS to `name`, verified by `config` (which offers HTTP/1.1 only), within `timeout`.
    Tls {
        config: std::sync::Arc<rustls::ClientConfig>,
        name: ServerName<'static>,
        timeout: Duration,
    },
}

/// Which requests may share a connection (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PoolKey {
    dst: SocketAddr,
    /// The configured server: it decides the credential the gateway injects.
    server: Option<String>,
    uid: u32,
    pid: u32,
    /// The executable (or command name when unknown): a reused PID is another caller.
    program: String,
    /// The TLS server name the connection was opened and verified for; `None`: plain.
    tls: Option<String>,
}

impl Dial {
    /// `key` for connections opened this way.
    pub fn keyed(&self, key: PoolKey) -> PoolKey {
        match self {
            Self::Plain => key,
            Self::Tls { name, .. } => key.over_tls(&name.to_str()),
        }
    }
}

impl PoolKey {
    pub fn new(dst: SocketAddr, server: Option<&str>, caller: Option<&ProcessIdentity>) -> Self {
        Self {
            dst,
            server: server.map(str::to_owned),
            uid: caller.map_or(u32::MAX, |c| c.uid),
            pid: caller.map_or(0, |c| c.pid),
            program: caller.map_or_else(String::new, |c| match &c.exe {
                Some(exe) => exe.display().to_string(),
                None => c.comm.clone(),
            }),
            tls: None,
        }
    }

    /// The same caller and server over TLS to `name`.
    fn over_tls(mut self, name: &str) -> Self {
        self.tls = Some(name.to_ascii_lowercase());
        self
    }

    /// Whether `other` is this key's caller and server, over TLS.
    fn is_tls_twin(&self, other: &PoolKey) -> bool {
        other.tls.is_some()
            && other.dst == self.dst
            && other.server == self.server
            && other.uid == self.uid
            && other.pid == self.pid
            && other.program == self.program
    }

    pub fn dst(&self) -> SocketAddr {
        self.dst
    }
}

struct Kept {
    sender: Sender,
    /// When it last finished a request (or was opened).
    since: Instant,
}

impl Kept {
    fn new(sender: Sender) -> Self {
        Self {
            sender,
            since: Instant::now(),
        }
    }

    /// Open and not idle past `idle_timeout`.
    fn usable(&self, idle_timeout: Duration) -> bool {
        !self.sender.is_closed() && self.since.elapsed() < idle_timeout
    }
}

/// The agent's kept upstream connections.
pub struct UpstreamPool {
    kept: Mutex<HashMap<PoolKey, Vec<Kept>>>,
    connect_timeout: Duration,
    idle_timeout: Duration,
}

impl UpstreamPool {
    pub fn new(connect_timeout: Duration) -> Self {
        Self::with_idle_timeout(connect_timeout, IDLE_TIMEOUT)
    }

    /// A pool whose connections are not used past `idle_timeout` (tests shorten it).
    pub fn with_idle_timeout(connect_timeout: Duration, idle_timeout: Duration) -> Self {
        Self {
            kept: Mutex::default(),
            connect_timeout,
            idle_timeout,
        }
    }

    /// An empty pool with the same limits (one per data-path thread).
    pub fn sibling(&self) -> Self {
        Self::with_idle_timeout(self.connect_timeout, self.idle_timeout)
    }

    /// Closes stale connections on a timer for as long as the pool exists. Without it a
    /// connection whose caller exited would stay open until the pool next filled up.
    pub fn spawn_sweeper(self: &std::sync::Arc<Self>) {
        let pool = std::sync::Arc::downgrade(self);
        let every = (self.idle_timeout / SWEEPS_PER_IDLE_TIMEOUT).max(Duration::from_millis(10));
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(pool) = pool.upgrade() else { return };
                pool.sweep();
            }
        });
    }

    /// Drops every dead or stale connection (dropping its sender closes it).
    fn sweep(&self) -> usize {
        let idle_timeout = self.idle_timeout;
        let mut kept = self.lock();
        kept.retain(|_, list| {
            list.retain(|k| k.usable(idle_timeout));
            !list.is_empty()
        });
        kept.values().map(Vec::len).sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PoolKey, Vec<Kept>>> {
        self.kept.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a TLS connection of `key`'s caller and server is kept: its next TLS client
    /// connection may not need a new upstream connection at all.
    pub fn holds_tls_for(&self, key: &PoolKey) -> bool {
        self.lock().keys().any(|kept| key.is_tls_twin(kept))
    }

    /// A kept connection for `key` that can take a request now, if there is one.
    pub fn take(&self, key: &PoolKey) -> Option<Sender> {
        let mut kept = self.lock();
        let list = kept.get_mut(key)?;
        list.retain(|k| k.usable(self.idle_timeout));
        let found = list
            .iter()
            .position(|c| c.sender.is_ready())
            .map(|i| list.swap_remove(i).sender);
        if list.is_empty() {
            kept.remove(key);
        }
        found
    }

    /// Keeps `sender` for later requests under `key`. It may still be busy with a
    /// response; [`UpstreamPool::take`] only hands it out once it can take a request.
    pub fn put(&self, key: &PoolKey, sender: Sender) {
        self.put_kept(key, Kept::new(sender));
    }

    /// [`UpstreamPool::put`], keeping how long the connection has been idle.
    fn put_kept(&self, key: &PoolKey, kept_one: Kept) {
        let idle_timeout = self.idle_timeout;
        if !kept_one.usable(idle_timeout) {
            return;
        }
        let mut total = self.kept();
        if total >= MAX_TOTAL {
            // Callers come and go: drop what is dead or stale before refusing to keep.
            total = self.sweep();
        }
        let mut kept = self.lock();
        let list = kept.entry(key.clone()).or_default();
        if list.len() >= MAX_PER_KEY {
            list.retain(|k| k.usable(idle_timeout));
        }
        // Not kept: dropping the sender closes the connection once its exchange ends.
        if list.len() < MAX_PER_KEY && total < MAX_TOTAL {
            list.push(kept_one);
        } else if list.is_empty() {
            kept.remove(key);
        }
    }

    /// How many connections are kept (busy or not), for tests and metrics.
    pub fn kept(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }

    /// A TCP connection to `dst`, bounded by the configured connect timeout.
    pub async fn connect_tcp(&self, dst: SocketAddr) -> Result<TcpStream, UpstreamError> {
        let timeout = self.connect_timeout;
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(dst)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(source)) => return Err(UpstreamError::Connect { dst, source }),
            Err(_) => return Err(UpstreamError::ConnectTimeout { dst, timeout }),
        };
        // Small MCP requests and SSE events must not wait for Nagle.
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    /// A new plain connection to `dst`, ready for its HTTP/1.1 handshake's first request.
    pub async fn connect(&self, dst: SocketAddr) -> Result<Sender, UpstreamError> {
        self.open(dst, &Dial::Plain).await
    }

    /// A new connection to `dst` opened as `dial` says, ready for its first request.
    pub async fn open(&self, dst: SocketAddr, dial: &Dial) -> Result<Sender, UpstreamError> {
        let stream = self.connect_tcp(dst).await?;
        let Dial::Tls {
            config,
            name,
            timeout,
        } = dial
        else {
            return Ok(handshake(stream).await?);
        };
        let connector = TlsConnector::from(std::sync::Arc::clone(config));
        match tokio::time::timeout(*timeout, connector.connect(name.clone(), stream)).await {
            Ok(Ok(tls)) => Ok(handshake(tls).await?),
            Ok(Err(err)) => Err(UpstreamError::Tls(crate::tls::connector::describe(
                &err,
                &name.to_str(),
            ))),
            Err(_) => Err(UpstreamError::Tls(
                "upstream TLS handshake timed out".to_owned(),
            )),
        }
    }
}

/// HTTP/1.1 over `stream` (TCP, or TLS over it), its connection driven by a task of its
/// own (it outlives the client connection that opened it when kept).
pub async fn handshake<S>(stream: S) -> Result<Sender, hyper::Error>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::Builder::new()
        .preserve_header_case(true)
        .handshake(TokioIo::new(stream))
        .await?;
    tokio::spawn(async move {
        if let Err(err) = conn.with_upgrades().await {
            debug!(error = %err, "upstream connection ended");
        }
    });
    Ok(sender)
}

/// One client connection's view of the pool. Its connection (opened, or taken from the
/// pool, when the client connected) stays its own while the client is connected, so a
/// kept-alive client sees the one upstream connection it would see without the agent;
/// it goes back to the pool when the client leaves, for that caller's next connection.
/// A connection opened for a client that never sent anything upstream (every request
/// answered by the gateway, or none at all) is closed with it, as before reuse: a server
/// that serves one connection at a time must not be left waiting on it.
pub struct PooledUpstream {
    pool: std::sync::Arc<UpstreamPool>,
    key: PoolKey,
    /// Opened when the client connected and not used yet.
    fresh: Mutex<Option<Sender>>,
    /// Has carried a request: goes back to the pool.
    own: Mutex<Option<Kept>>,
    /// How a connection is opened when none is kept.
    dial: Dial,
}

/// The connection a client connection starts with.
pub enum First {
    /// Opened for this client: closed with it unless it carried a request.
    Fresh(Sender),
    /// Taken from the pool: goes back to it.
    Kept(Sender),
    None,
}

impl PooledUpstream {
    pub fn new(pool: std::sync::Arc<UpstreamPool>, key: PoolKey, first: First) -> Self {
        let (fresh, own) = match first {
            First::Fresh(sender) => (Some(sender), None),
            First::Kept(sender) => (None, Some(Kept::new(sender))),
            First::None => (None, None),
        };
        Self {
            pool,
            key,
            fresh: Mutex::new(fresh),
            own: Mutex::new(own),
            dial: Dial::Plain,
        }
    }

    /// Opens new connections as `dial` says instead of plain, under its key.
    pub fn dialing(mut self, dial: Dial) -> Self {
        self.key = dial.keyed(self.key.clone());
        self.dial = dial;
        self
    }

    fn own(&self) -> std::sync::MutexGuard<'_, Option<Kept>> {
        self.own.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn fresh(&self) -> Option<Sender> {
        self.fresh.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Sends `request` on this client's connection, else a kept one, else a new one. A
    /// kept connection the server closed before the request went out (its idle timeout
    /// racing ours) is retried once on a new connection; anything sent is never sent
    /// twice.
    pub async fn send(
        &self,
        mut request: Request<ProxyBody>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        // An upgraded connection (WebSocket and the like) is the client's alone afterwards.
        let upgrade = request.headers().contains_key(http::header::UPGRADE);
        // This client's own connection too is not used once idle past the limit.
        let idle_timeout = self.pool.idle_timeout;
        let taken = self
            .own()
            .take()
            .filter(|k| k.usable(idle_timeout))
            .map(|k| k.sender);
        let mut reused = taken
            .or_else(|| self.fresh())
            .or_else(|| self.pool.take(&self.key));
        loop {
            let retry_allowed = reused.is_some();
            let mut sender = match reused.take() {
                Some(sender) => sender,
                // Boxed: the dial (TCP, TLS, handshake) is a large future that every
                // call's future would otherwise carry and copy while it is moved about,
                // though it runs once per connection at most.
                None => Box::pin(self.pool.open(self.key.dst, &self.dial)).await?,
            };
            if let Err(err) = sender.ready().await {
                if retry_allowed {
                    debug!(error = %err, "kept upstream connection closed; opening another");
                    continue;
                }
                return Err(err.into());
            }
            match sender.try_send_request(request).await {
                Ok(response) => {
                    if !upgrade {
                        self.keep(sender);
                    }
                    return Ok(response);
                }
                Err(mut err) => match err.take_message() {
                    Some(unsent) if retry_allowed => {
                        debug!(error = %err.into_error(), "kept upstream connection failed before sending; opening another");
                        request = unsent;
                    }
                    _ => return Err(err.into_error().into()),
                },
            }
        }
    }

    /// Keeps `sender` as this client's connection, or in the pool if the client already
    /// has one (two exchanges of one client in flight at once).
    fn keep(&self, sender: Sender) {
        let spare = self.own().replace(Kept::new(sender));
        if let Some(spare) = spare {
            self.pool.put_kept(&self.key, spare);
        }
    }
}

impl Drop for PooledUpstream {
    /// The client left: its connection serves that caller's next one (an unused fresh
    /// one is dropped, which closes it).
    fn drop(&mut self) {
        if let Some(kept) = self.own().take() {
            self.pool.put_kept(&self.key, kept);
        }
    }
}

#[cfg(test)]
mod tests;
