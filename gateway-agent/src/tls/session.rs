//! One intercepted TLS connection, from its ClientHello to its end: pass it through,
//! refuse it, or terminate it and run the MCP pipeline on the plaintext.
//!
//! Every outcome is logged with a reason and recorded as `connection` rows whose payload
//! carries the TLS facts (`tls` mode, `sni`, `alpn`), so an operator sees which
//! processes talk TLS to what even when nothing was opened. A failure on one connection
//! ends that connection only.

use std::{net::SocketAddr, sync::Arc};

use rustls_pki_types::ServerName;
use serde_json::{Map, Value};
use tokio::{io::AsyncWriteExt as _, net::TcpStream};
use tokio_rustls::{TlsConnector, server::StartHandshake};
use tracing::{debug, info, warn};

use super::{
    Decision, TlsServer, TlsSetup, acceptor,
    certs::LeafName,
    connector,
    peek::{self, Hello},
};
use crate::{
    audit::PrincipalColumns,
    http::{
        self, ConnFacts, Pipeline, PoolKey, RowContext, UpstreamPool,
        pool::{self, Dial, First},
    },
    mcp::jsonrpc::codes,
    principal::Principal,
    process::ProcessIdentity,
};

const H2: &[u8] = b"h2";
const HTTP11: &[u8] = b"http/1.1";

/// Who opened the connection and where it was going.
pub struct Origin {
    pub orig_dst: SocketAddr,
    pub identity: ProcessIdentity,
    /// The configured name of the server at `orig_dst`, if any.
    pub server_name: Option<String>,
}

/// Where the upstream side comes from: the TCP connection opened while the client's
/// first bytes were awaited, if one was, else a new one; or, for a terminated HTTP/1.1
/// client, a kept connection of its caller's (`http::pool`), sparing the upstream
/// handshake.
pub struct Dialer<'a> {
    pub tcp: Option<TcpStream>,
    pub pool: &'a Arc<UpstreamPool>,
}

impl Dialer<'_> {
    /// A TCP connection to `dst`; `None`, logged, when it cannot be had.
    async fn tcp(&mut self, dst: SocketAddr) -> Option<TcpStream> {
        if let Some(tcp) = self.tcp.take() {
            return Some(tcp);
        }
        match self.pool.connect_tcp(dst).await {
            Ok(tcp) => Some(tcp),
            Err(err) => {
                warn!(error = %err, "upstream connect failed; resetting client");
                None
            }
        }
    }
}

/// Handles a connection whose first byte is a TLS handshake record.
pub async fn handle(
    setup: &TlsSetup,
    pipeline: &Arc<Pipeline>,
    mut client: TcpStream,
    mut upstream: Dialer<'_>,
    origin: Origin,
) {
    let hello = match peek::read_client_hello(&mut client, setup.handshake_timeout).await {
        Ok(hello) => hello,
        Err(no) => {
            let mut detail = tls_detail("passthrough", None, &[]);
            detail.insert("reason".into(), Value::from(no.reason.to_string()));
            if setup.inspects(origin.orig_dst) {
                warn!(reason = %no.reason, "no usable ClientHello for an inspected server; resetting client");
                detail.insert("tls".into(), Value::from("refused"));
                let rows = row_context(&origin, origin.server_name.clone(), "tls");
                pipeline
                    .recorder
                    .note(|| rows.connection_with("refused", detail))
                    .await;
                reset(client);
            } else {
                // Not ours to judge: relay what arrived as it arrived.
                warn!(reason = %no.reason, "no usable ClientHello; relaying the connection unseen");
                let Some(upstream) = upstream.tcp(origin.orig_dst).await else {
                    return reset(client);
                };
                passthrough(
                    pipeline,
                    client,
                    upstream,
                    &origin,
                    origin.server_name.clone(),
                    no.bytes,
                    detail,
                )
                .await;
            }
            return;
        }
    };
    let sni = hello.sni.clone();
    match setup.decide(sni.as_deref(), origin.orig_dst) {
        Decision::Passthrough(server) => {
            let name = server
                .map(|s| s.name.clone())
                .or(origin.server_name.clone());
            info!(
                sni = sni.as_deref().unwrap_or(""),
                server = name.as_deref().unwrap_or(""),
                "TLS passthrough (not inspected)"
            );
            let detail = tls_detail("passthrough", sni.as_deref(), &hello.alpn);
            let Some(upstream) = upstream.tcp(origin.orig_dst).await else {
                return reset(client);
            };
            passthrough(
                pipeline,
                client,
                upstream,
                &origin,
                name,
                hello.bytes,
                detail,
            )
            .await;
        }
        Decision::Refuse(server) => {
            warn!(sni = sni.as_deref().unwrap_or(""), server = %server.name, "SNI is not one of the inspected server's names; resetting client");
            let mut detail = tls_detail("refused", sni.as_deref(), &hello.alpn);
            detail.insert(
                "reason".into(),
                Value::from("SNI not configured for this server"),
            );
            let rows = row_context(&origin, Some(server.name.clone()), "tls");
            pipeline
                .recorder
                .note(|| rows.connection_with("refused", detail))
                .await;
            reset(client);
        }
        Decision::Terminate(server) => {
            terminate(setup, pipeline, client, upstream, origin, server, hello).await;
        }
    }
}

async fn passthrough(
    pipeline: &Pipeline,
    mut client: TcpStream,
    mut upstream: TcpStream,
    origin: &Origin,
    server_name: Option<String>,
    replay: Vec<u8>,
    detail: Map<String, Value>,
) {
    crate::metrics::get().connection(server_name.as_deref(), "passthrough");
    let rows = row_context(origin, server_name, "tls");
    pipeline
        .recorder
        .note(|| rows.connection_with("open", detail.clone()))
        .await;
    let relayed = async {
        upstream.write_all(&replay).await?;
        tokio::io::copy_bidirectional(&mut client, &mut upstream).await
    }
    .await;
    match relayed {
        Ok((to_upstream, to_client)) => debug!(to_upstream, to_client, "TLS passthrough closed"),
        Err(err) => debug!(error = %err, "TLS passthrough ended with an error"),
    }
    pipeline
        .recorder
        .note(|| rows.connection_with("close", detail))
        .await;
}

async fn terminate(
    setup: &TlsSetup,
    pipeline: &Arc<Pipeline>,
    client: TcpStream,
    mut dialer: Dialer<'_>,
    origin: Origin,
    server: &TlsServer,
    hello: Hello,
) {
    let sni = hello.sni.clone();
    let (upstream_name, leaf_name) = match &sni {
        Some(host) => match ServerName::try_from(host.clone()) {
            Ok(name) => (name, LeafName::Dns(host.to_ascii_lowercase())),
            Err(_) => {
                warn!(sni = %host, "SNI is not a valid DNS name; resetting client");
                reset(client);
                return;
            }
        },
        None => (
            ServerName::IpAddress(origin.orig_dst.ip().to_canonical().into()),
            LeafName::Ip(origin.orig_dst.ip().to_canonical()),
        ),
    };
    let offered: Vec<Vec<u8>> = hello
        .alpn
        .iter()
        .filter(|p| p.as_slice() == H2 || p.as_slice() == HTTP11)
        .cloned()
        .collect();
    // An HTTP/1.1 client may reuse a kept connection of its caller's to this server,
    // opened and verified the same way (a new one for it is opened the same way too).
    let dial = match &server.upstream_http1 {
        Some(config) => Dial::Tls {
            config: Arc::clone(config),
            name: upstream_name.clone(),
            timeout: setup.handshake_timeout,
        },
        None => Dial::Plain,
    };
    let key = dial.keyed(PoolKey::new(
        origin.orig_dst,
        Some(&server.name),
        Some(&origin.identity),
    ));
    let speaks_http1 = offered.is_empty() || offered.iter().any(|p| p == HTTP11);
    let kept = speaks_http1.then(|| dialer.pool.take(&key)).flatten();
    let upstream = match kept {
        Some(sender) => Ok((Upstream::Kept(sender), Some(HTTP11.to_vec()))),
        None => {
            let Some(tcp) = dialer.tcp(origin.orig_dst).await else {
                return reset(client);
            };
            connect_upstream(setup, server, tcp, upstream_name, &offered, &leaf_name).await
        }
    };
    // The client gets the upstream's protocol, if it offered it; else HTTP/1.1 if it did.
    let chosen = match &upstream {
        Ok((_, Some(alpn))) if offered.contains(alpn) => Some(alpn.clone()),
        Ok((_, _)) | Err(_) => offered
            .iter()
            .find(|p| p.as_slice() == HTTP11)
            .or(offered.first())
            .cloned(),
    };
    let cert = match setup.certificate(server, &leaf_name) {
        Ok(cert) => cert,
        Err(err) => {
            warn!(error = %err, "no certificate for the client; resetting client");
            reset(client);
            return;
        }
    };
    let config = match acceptor::server_config(cert, chosen.as_deref(), setup.sessions()) {
        Ok(config) => config,
        Err(err) => {
            warn!(error = %err, "building the client TLS config failed; resetting client");
            reset(client);
            return;
        }
    };
    let handshake = StartHandshake::from_parts(hello.accepted, client).into_stream(config);
    let client = match tokio::time::timeout(setup.handshake_timeout, handshake).await {
        Ok(Ok(client)) => client,
        Ok(Err(err)) => {
            // Typically a client that does not trust the agent's CA (yet).
            warn!(sni = sni.as_deref().unwrap_or(""), error = %err, "client TLS handshake failed");
            return;
        }
        Err(_) => {
            warn!(
                sni = sni.as_deref().unwrap_or(""),
                "client TLS handshake timed out"
            );
            return;
        }
    };
    let http2 = chosen.as_deref() == Some(H2);
    let alpn: Vec<Vec<u8>> = chosen.into_iter().collect();
    let detail = tls_detail("terminate", sni.as_deref(), &alpn);
    let rows = row_context(&origin, Some(server.name.clone()), "streamable_http");
    pipeline
        .recorder
        .note_ahead(|| rows.connection_with("open", detail.clone()))
        .await;
    info!(sni = sni.as_deref().unwrap_or(""), server = %server.name, http2, "TLS terminated");
    crate::metrics::get().connection(Some(&server.name), "terminated");
    match upstream {
        Err(reason) => {
            let row = http::refusal_row(&rows, 502, Some(codes::UPSTREAM), &reason);
            if let Err(err) = pipeline.recorder.commit(vec![row]).await {
                tracing::error!(error = %err, "audit trail unavailable; upstream TLS failure not recorded");
            }
            http::refuse_all(client, http2, reason, pipeline.limits.max_request_body).await;
        }
        Ok((upstream, _)) => {
            let facts = Arc::new(ConnFacts::new(
                origin.orig_dst,
                origin.identity,
                &rows,
                Some(server.name.clone()),
            ));
            let dialed = (key, dial);
            let pipeline = Arc::clone(pipeline);
            serve_terminated(
                client,
                upstream,
                http2,
                dialer.pool,
                dialed,
                pipeline,
                facts,
            )
            .await;
        }
    }
    pipeline
        .recorder
        .note(|| rows.connection_with("close", detail))
        .await;
}

/// Serves a terminated client: h2 on the upstream connection of its own, HTTP/1.1
/// through its caller's pool (starting with the connection just opened or taken).
async fn serve_terminated(
    client: tokio_rustls::server::TlsStream<TcpStream>,
    upstream: Upstream,
    http2: bool,
    pool: &Arc<UpstreamPool>,
    dialed: (PoolKey, Dial),
    pipeline: Arc<Pipeline>,
    facts: Arc<ConnFacts>,
) {
    let first = match upstream {
        Upstream::Tls(stream) if http2 => {
            return http::serve(client, *stream, true, pipeline, facts).await;
        }
        Upstream::Plain(stream) if http2 => {
            return http::serve(client, stream, true, pipeline, facts).await;
        }
        Upstream::Kept(sender) => First::Kept(sender),
        Upstream::Tls(stream) => fresh(pool::handshake(*stream).await),
        Upstream::Plain(stream) => fresh(pool::handshake(stream).await),
    };
    http::serve_pooled(client, Arc::clone(pool), dialed, first, pipeline, facts).await;
}

enum Upstream {
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    Plain(TcpStream),
    /// A kept HTTP/1.1 connection (TLS or plain, as the server's `dial` says).
    Kept(pool::Sender),
}

/// The first connection of an HTTP/1.1 client: the one just opened, unless its HTTP
/// handshake failed (the pool then opens another when a request needs it).
fn fresh(handshake: Result<pool::Sender, hyper::Error>) -> First {
    match handshake {
        Ok(sender) => First::Fresh(sender),
        Err(err) => {
            warn!(error = %err, "upstream handshake failed");
            First::None
        }
    }
}

/// TLS to the server (or plain TCP when so configured) and the protocol it chose; `Err`
/// is the reason the client will read.
async fn connect_upstream(
    setup: &TlsSetup,
    server: &TlsServer,
    tcp: TcpStream,
    name: ServerName<'static>,
    offered: &[Vec<u8>],
    leaf_name: &LeafName,
) -> Result<(Upstream, Option<Vec<u8>>), String> {
    let Some(base) = &server.upstream else {
        // Plain HTTP behind: HTTP/1.1 unless the client only speaks h2.
        let alpn = if offered.is_empty() || offered.iter().any(|p| p == HTTP11) {
            HTTP11.to_vec()
        } else {
            H2.to_vec()
        };
        return Ok((Upstream::Plain(tcp), Some(alpn)));
    };
    let alpn = if offered.is_empty() {
        vec![HTTP11.to_vec()]
    } else {
        offered.to_vec()
    };
    let connector = TlsConnector::from(connector::with_alpn(base, alpn));
    match tokio::time::timeout(setup.handshake_timeout, connector.connect(name, tcp)).await {
        Ok(Ok(stream)) => {
            let chosen = stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
            Ok((Upstream::Tls(Box::new(stream)), chosen))
        }
        Ok(Err(err)) => {
            let reason = connector::describe(&err, &leaf_name.to_string());
            warn!(server = %server.name, %reason, "upstream TLS verification or handshake failed; refusing the client's requests (502)");
            Err(reason)
        }
        Err(_) => {
            warn!(server = %server.name, "upstream TLS handshake timed out; refusing the client's requests (502)");
            Err("upstream TLS handshake timed out".to_owned())
        }
    }
}

/// The TLS facts of a connection row.
fn tls_detail(mode: &str, sni: Option<&str>, alpn: &[Vec<u8>]) -> Map<String, Value> {
    let mut detail = Map::new();
    detail.insert("tls".into(), Value::from(mode));
    detail.insert("sni".into(), sni.map_or(Value::Null, Value::from));
    detail.insert(
        "alpn".into(),
        Value::from(
            alpn.iter()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect::<Vec<_>>(),
        ),
    );
    detail
}

fn row_context(
    origin: &Origin,
    server_name: Option<String>,
    transport: &'static str,
) -> RowContext {
    RowContext {
        session: http::connection_id(),
        transport,
        protocol_version: None,
        server_name,
        server_addr: origin.orig_dst.to_string().into(),
        principal: Arc::new(PrincipalColumns::from_principal(&Principal::from_process(
            origin.identity.clone(),
        ))),
        started: std::time::Instant::now(),
    }
}

/// Closes with RST: the client sees an error at once.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}
