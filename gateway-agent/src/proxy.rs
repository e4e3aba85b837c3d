//! The L4 data path: accept a redirected connection, find out where it was going and who
//! opened it, connect to that original destination and relay bytes both ways.
//!
//! `copy_bidirectional` gives backpressure (it only reads what it can write) and half-close
//! (EOF on one side becomes a write shutdown on the other). A client whose upstream cannot
//! be reached is reset, not left hanging, so it fails as fast as a refused connect would.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use tokio::{
    net::{TcpListener, TcpStream},
    sync::Semaphore,
};
use tracing::{Instrument as _, debug, info, info_span, warn};

use crate::{
    audit::PrincipalColumns,
    http::{self, ConnFacts, Pipeline, PoolKey, RowContext, UpstreamPool, pool::First},
    intercept::{ConnTable, socket_addr},
    principal::Principal,
    process::{IdentityResolver, ProcessIdentity},
    servers::ServerTable,
    tls::{TlsSetup, session},
};

#[derive(Clone)]
pub struct Proxy {
    pub table: Arc<ConnTable>,
    pub identities: Arc<IdentityResolver>,
    pub slots: Arc<Semaphore>,
    /// The agent's own listener addresses: a record pointing at one of them would loop.
    pub own_listeners: Vec<SocketAddr>,
    /// The MCP pipeline for HTTP connections; `None` relays everything at L4.
    pub pipeline: Option<Arc<Pipeline>>,
    /// Server names, auth modes and held credentials (shared with the pipeline, replaced
    /// on SIGHUP).
    pub servers: Arc<std::sync::RwLock<Arc<ServerTable>>>,
    /// TLS termination for inspected servers (replaced on SIGHUP: certificate files
    /// re-read); `None` relays all TLS unseen.
    pub tls: Option<Arc<std::sync::RwLock<Arc<TlsSetup>>>>,
    /// Kept upstream HTTP/1.1 connections for the pipeline's plain HTTP exchanges: each
    /// data-path thread has its own ([`Proxy::for_thread`]).
    pub pool: Arc<UpstreamPool>,
}

impl Proxy {
    /// This proxy for one data-path thread: the same tables and pipeline, with a pool of
    /// upstream connections of its own. A kept connection is driven by a task on the
    /// thread that opened it, so a connection accepted by another thread that took it
    /// would pay two cross-thread wake-ups per exchange (the request handed to that task,
    /// its answer handed back).
    pub fn for_thread(&self) -> Self {
        Self {
            pool: Arc::new(self.pool.sibling()),
            ..self.clone()
        }
    }

    /// Accepts on `listener` until the task is dropped.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        loop {
            match listener.accept().await {
                Ok((client, peer)) => {
                    let proxy = Arc::clone(&self);
                    tokio::spawn(async move { proxy.handle(client, peer).await });
                }
                // EMFILE and friends: keep serving the connections we have; back off so a
                // persistent error does not spin.
                Err(err) => {
                    warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    async fn handle(&self, client: TcpStream, peer: SocketAddr) {
        // The record is taken before anything can refuse the connection: one left behind
        // would wait in the map for a later connection from the same local address whose
        // own record the kernel failed to keep, and send it to this one's destination.
        let info = self.table.take(peer);
        let Ok(_slot) = Arc::clone(&self.slots).try_acquire_owned() else {
            warn!(%peer, "connection limit (proxy.max_connections) reached; resetting client");
            reset(client);
            return;
        };
        let info = match info {
            Ok(Some(info)) => info,
            Ok(None) => {
                // Either a direct connect to the listener or a record evicted under
                // pressure: with no original destination there is nowhere safe to go.
                warn!(
                    %peer,
                    "no interception record for this connection (a direct connect to the \
                     listener, or its record was evicted: more connections in flight than \
                     intercept.max_tracked_connections); resetting client"
                );
                reset(client);
                return;
            }
            Err(err) => {
                warn!(%peer, error = %err, "reading interception record failed; resetting client");
                reset(client);
                return;
            }
        };
        // The kernel never redirects the agent's own connects (see gateway-ebpf); should an
        // older program still be attached, refusing here turns a loop into one reset.
        if info.ns_pid != 0 && info.ns_pid == crate::process::own_pid() {
            warn!(%peer, "connection opened by the agent itself (redirect loop); resetting");
            reset(client);
            return;
        }
        let orig_dst = socket_addr(&info.orig_dst);
        let identity = match self.identities.resolve_without_blocking(&info) {
            Some(identity) => identity,
            None => {
                let identities = Arc::clone(&self.identities);
                match tokio::task::spawn_blocking(move || identities.resolve(&info)).await {
                    Ok(identity) => identity,
                    Err(err) => {
                        warn!(%peer, error = %err, "resolving process identity failed; resetting client");
                        reset(client);
                        return;
                    }
                }
            }
        };
        let server_name = self
            .servers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(orig_dst)
            .name
            .clone();
        // Logged before the connection's span is entered: the JSON formatter re-reads an
        // enclosing span's fields for every event in it, and this line carries them all.
        info!(
            %orig_dst,
            %peer,
            pid = identity.pid,
            tid = identity.tid,
            uid = identity.uid,
            gid = identity.gid,
            user = identity.user.as_deref().unwrap_or(""),
            comm = %identity.comm,
            exe = %identity.exe.as_deref().map(|p| p.display().to_string()).unwrap_or_default(),
            cgroup_id = identity.cgroup_id,
            cgroup = identity.cgroup.as_deref().unwrap_or(""),
            server = server_name.as_deref().unwrap_or(""),
            "intercepted connection"
        );
        let span = info_span!("conn", %orig_dst, %peer, pid = identity.pid, comm = %identity.comm);
        async {
            if self.own_listeners.contains(&orig_dst) {
                warn!("original destination is the agent itself; resetting client");
                reset(client);
                return;
            }
            self.relay(client, orig_dst, identity, server_name).await;
        }
        .instrument(span)
        .await;
    }

    async fn relay(
        &self,
        mut client: TcpStream,
        orig_dst: SocketAddr,
        identity: ProcessIdentity,
        server_name: Option<String>,
    ) {
        // A kept connection of this caller's spares the connect; it is only used if the
        // client turns out to speak plain HTTP/1.1 (see `http::pool`).
        let key = PoolKey::new(orig_dst, server_name.as_deref(), Some(&identity));
        let mut kept = self.pipeline.as_ref().and_then(|_| self.pool.take(&key));
        // With a kept TLS connection of this caller's, a TLS client may need no new one
        // (`tls::session` connects when it does).
        let tls_kept =
            self.pipeline.is_some() && self.tls.is_some() && self.pool.holds_tls_for(&key);
        let mut upstream = match kept {
            Some(_) => None,
            None if tls_kept => None,
            None => match self.connect(orig_dst).await {
                Some(upstream) => Some(upstream),
                None => return reset(client),
            },
        };
        // Small MCP requests and SSE events must not wait for Nagle.
        let _ = client.set_nodelay(true);
        let protocol = sniff(&client).await;
        debug!(?protocol, "client protocol");
        let (tls, http) = (protocol == Protocol::Tls, protocol != Protocol::Other);
        crate::metrics::get().sniffed(server_name.as_deref(), tls, http);
        if let (Some(pipeline), Protocol::Http1 | Protocol::Http2) = (&self.pipeline, protocol) {
            // The connection's own rows: who opened it, to where, and when it ended.
            let rows = RowContext {
                session: http::connection_id(),
                transport: "streamable_http",
                protocol_version: None,
                server_name,
                server_addr: orig_dst.to_string().into(),
                principal: Arc::new(PrincipalColumns::from_principal(&Principal::from_process(
                    identity.clone(),
                ))),
                started: std::time::Instant::now(),
            };
            pipeline
                .recorder
                .note_ahead(|| rows.connection("open"))
                .await;
            let facts = Arc::new(ConnFacts::new(orig_dst, identity, &rows, None));
            if protocol == Protocol::Http1 {
                let first = match (upstream, kept) {
                    (Some(stream), _) => match http::pool::handshake(stream).await {
                        Ok(sender) => First::Fresh(sender),
                        Err(err) => {
                            warn!(error = %err, "upstream handshake failed");
                            First::None
                        }
                    },
                    (None, Some(sender)) => First::Kept(sender),
                    (None, None) => First::None,
                };
                let pool = Arc::clone(&self.pool);
                let dialed = (key, http::pool::Dial::Plain);
                http::serve_pooled(client, pool, dialed, first, Arc::clone(pipeline), facts).await;
            } else {
                let upstream = match (upstream, kept) {
                    (Some(upstream), _) => upstream,
                    (None, kept) => {
                        if let Some(sender) = kept {
                            self.pool.put(&key, sender);
                        }
                        match self.connect(orig_dst).await {
                            Some(upstream) => upstream,
                            None => return reset(client),
                        }
                    }
                };
                http::serve(client, upstream, true, Arc::clone(pipeline), facts).await;
            }
            pipeline.recorder.note(|| rows.connection("close")).await;
            return;
        }
        // Not plain HTTP: a raw connection of its own.
        if let Some(sender) = kept.take() {
            self.pool.put(&key, sender);
        }
        if let (Some(pipeline), Some(tls), Protocol::Tls) = (&self.pipeline, &self.tls, protocol) {
            let tls = Arc::clone(&tls.read().unwrap_or_else(|p| p.into_inner()));
            let origin = session::Origin {
                orig_dst,
                identity,
                server_name,
            };
            let upstream = session::Dialer {
                tcp: upstream.take(),
                pool: &self.pool,
            };
            session::handle(&tls, pipeline, client, upstream, origin).await;
            return;
        }
        let mut upstream = match upstream.take() {
            Some(upstream) => upstream,
            None => match self.connect(orig_dst).await {
                Some(upstream) => upstream,
                None => return reset(client),
            },
        };
        if protocol == Protocol::Tls {
            warn!("TLS on an MCP port is relayed without inspection (TLS handling is off)");
        }
        match tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
            Ok((to_upstream, to_client)) => {
                debug!(to_upstream, to_client, "connection closed");
            }
            Err(err) => debug!(error = %err, "connection ended with an error"),
        }
    }

    /// Connects to the original destination (bounded, Nagle off); `None`, logged, when it
    /// cannot be reached: the client is then reset.
    async fn connect(&self, orig_dst: SocketAddr) -> Option<TcpStream> {
        match self.pool.connect_tcp(orig_dst).await {
            Ok(upstream) => Some(upstream),
            Err(http::UpstreamError::ConnectTimeout { timeout, .. }) => {
                warn!(
                    timeout_ms = timeout.as_millis() as u64,
                    "upstream connect timed out; resetting client"
                );
                None
            }
            Err(err) => {
                warn!(error = %err, "upstream connect failed; resetting client");
                None
            }
        }
    }
}

/// What the client's first bytes say it speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Http1,
    Http2,
    Tls,
    /// Anything else, or a client that stays silent (server-speaks-first protocols).
    Other,
}

/// How long a silent client may keep us guessing before its bytes are relayed raw.
const SNIFF_TIMEOUT: Duration = Duration::from_secs(2);

/// Peeks (without consuming) until the first bytes decide the protocol.
async fn sniff(client: &TcpStream) -> Protocol {
    let deadline = tokio::time::Instant::now() + SNIFF_TIMEOUT;
    let mut buf = [0u8; http::H2_PREFACE.len()];
    loop {
        let n = match tokio::time::timeout_at(deadline, client.peek(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => n,
            _ => return Protocol::Other,
        };
        let head = &buf[..n];
        if head.first() == Some(&0x16) {
            return Protocol::Tls;
        }
        if head == http::H2_PREFACE {
            return Protocol::Http2;
        }
        if http::looks_like_http1(head) {
            return Protocol::Http1;
        }
        // Still a possible prefix of something we recognise: wait for more bytes.
        let undecided = http::H2_PREFACE.starts_with(head)
            || (n < 8 && head.iter().all(u8::is_ascii_uppercase));
        if !undecided {
            return Protocol::Other;
        }
        // peek returns at once while data is queued; yield until more arrives.
        if tokio::time::timeout_at(deadline, client.readable())
            .await
            .is_err()
        {
            return Protocol::Other;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Closes with RST so the client sees an error at once instead of a clean EOF it might
/// take for an empty response.
fn reset(stream: TcpStream) {
    if let Err(err) = stream.set_zero_linger() {
        debug!(error = %err, "cannot set SO_LINGER 0; closing normally");
    }
    drop(stream);
}
