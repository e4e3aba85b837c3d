//! TLS on intercepted connections: terminate it for the MCP servers the agent is told to
//! inspect, and only those, so identity, policy, masking and audit see HTTPS exactly as
//! they see plain HTTP; relay everyone else's TLS untouched (attributed, never opened).
//!
//! Why selective: intercepting port 443 catches the host's whole HTTPS traffic, and
//! opening what nobody asked to inspect would break certificate pinning and put secrets
//! in the agent's memory for nothing. Why verified upstream TLS: once the agent terminates,
//! the client can no longer check the real server, so the agent must, with no way around
//! a failure (the client gets a 502 naming the reason, never the unverified server).
//!
//! Per connection, in order (module map):
//! - [`peek`]: read the ClientHello (kept for replay) and get its SNI and ALPN from
//!   rustls' `Acceptor`;
//! - [`TlsSetup::decide`]: terminate, pass through, or refuse, from the SNI and the
//!   original destination;
//! - [`connector`]: upstream TLS first (SNI = the client's; system roots + `upstream_ca`),
//!   so the upstream's ALPN choice is known before the client's handshake completes;
//! - [`certs`] + [`ca`]: the certificate shown to the client — the server's configured
//!   chain, or a short-lived leaf for the SNI minted by the local CA;
//! - [`acceptor`]: the client handshake, offering exactly the upstream's protocol;
//! - [`session`]: the orchestration, then the MCP pipeline over the two TLS streams.
//!
//! [`config`] holds `[tls]` and the TLS keys of `[[server]]`; [`install`] is
//! `gateway-agent ca install`.

pub mod acceptor;
pub mod ca;
pub mod certs;
pub mod config;
pub mod connector;
pub mod install;
pub mod peek;
pub mod session;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use rustls::{ClientConfig, server::StoresServerSessions, sign::CertifiedKey};

pub use config::{TlsConfig, TlsMode};

use self::{
    certs::{CertError, LeafMinter, LeafName},
    config::sni_matches,
};
use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("server {server}: {source}")]
    Cert { server: String, source: CertError },
    #[error("server {server} terminates TLS without `cert`/`key`: {source}")]
    Ca { server: String, source: ca::CaError },
    #[error("server {server}: upstream TLS config: {source}")]
    Upstream {
        server: String,
        source: rustls::Error,
    },
}

/// One configured server, as TLS sees it.
#[derive(Debug)]
pub struct TlsServer {
    pub name: String,
    pub addr: SocketAddr,
    patterns: Vec<String>,
    pub mode: TlsMode,
    /// Its configured certificate; `None`: leaves from the local CA.
    cert: Option<Arc<CertifiedKey>>,
    /// Verified TLS to the server; `None`: plain HTTP behind (`upstream_tls = false`).
    pub upstream: Option<Arc<ClientConfig>>,
    /// `upstream` offering HTTP/1.1 only: how the connections an HTTP/1.1 client shares
    /// through the pool are opened (built once, not per connection).
    pub upstream_http1: Option<Arc<ClientConfig>>,
}

/// What to do with one TLS connection.
#[derive(Debug)]
pub enum Decision<'a> {
    Terminate(&'a TlsServer),
    /// Relay unseen; attributed to a configured server when one matched.
    Passthrough(Option<&'a TlsServer>),
    /// The destination is inspected but the SNI is none of its names: neither opening it
    /// (which name would the agent vouch for?) nor relaying it unseen (an easy way around
    /// inspection) is right, so the connection is reset.
    Refuse(&'a TlsServer),
}

/// Everything TLS needs at run time, built from the config at start.
pub struct TlsSetup {
    servers: Vec<TlsServer>,
    minter: Option<LeafMinter>,
    sessions: Arc<dyn StoresServerSessions>,
    pub handshake_timeout: Duration,
}

impl std::fmt::Debug for TlsSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSetup")
            .field("servers", &self.servers)
            .finish_non_exhaustive()
    }
}

impl TlsSetup {
    /// Loads certificates, the CA (only if a terminating server needs it) and the system
    /// roots (only if a terminating server verifies an upstream): a problem with any of
    /// them stops `run` and fails `check`, never the first connection.
    pub fn load(config: &Config) -> Result<Self, TlsError> {
        let tls = &config.tls;
        let terminating =
            |s: &crate::config::ServerConfig| s.tls.unwrap_or(tls.mode) == TlsMode::Terminate;
        let roots = config
            .servers
            .iter()
            .any(|s| terminating(s) && s.upstream_tls)
            .then(|| {
                let (roots, skipped) = connector::system_roots();
                if skipped > 0 {
                    tracing::warn!(
                        skipped,
                        "system CA certificates rustls cannot use were skipped"
                    );
                }
                roots
            });
        let mut minter = None;
        let mut servers = Vec::new();
        for server in &config.servers {
            let mode = server.tls.unwrap_or(tls.mode);
            let cert_err = |source| TlsError::Cert {
                server: server.name.clone(),
                source,
            };
            let cert = match (&server.cert, &server.key) {
                (Some(cert), Some(key)) => {
                    Some(certs::load_configured(cert, key).map_err(cert_err)?)
                }
                _ => None,
            };
            if mode == TlsMode::Terminate && cert.is_none() && minter.is_none() {
                let ca = ca::load(&tls.ca_dir).map_err(|source| TlsError::Ca {
                    server: server.name.clone(),
                    source,
                })?;
                let validity = Duration::from_secs(u64::from(tls.leaf_validity_hours) * 3600);
                minter = Some(LeafMinter::new(ca, validity, tls.leaf_cache).map_err(cert_err)?);
            }
            let upstream =
                match (&roots, mode, server.upstream_tls) {
                    (Some(roots), TlsMode::Terminate, true) => {
                        let mut extra = Vec::new();
                        for path in &server.upstream_ca {
                            extra.extend(certs::load_cas(path).map_err(cert_err)?);
                        }
                        let client_auth =
                            match (&server.upstream_client_cert, &server.upstream_client_key) {
                                (Some(cert), Some(key)) => {
                                    Some(certs::load_pair(cert, key).map_err(cert_err)?)
                                }
                                _ => None,
                            };
                        Some(connector::client_config(roots, extra, client_auth).map_err(
                            |source| TlsError::Upstream {
                                server: server.name.clone(),
                                source,
                            },
                        )?)
                    }
                    _ => None,
                };
            servers.push(TlsServer {
                name: server.name.clone(),
                addr: canonical(server.addr),
                patterns: server.sni.iter().map(|p| p.to_ascii_lowercase()).collect(),
                mode,
                cert,
                upstream_http1: upstream
                    .as_ref()
                    .map(|base| connector::with_alpn(base, vec![b"http/1.1".to_vec()])),
                upstream,
            });
        }
        Ok(Self {
            servers,
            minter,
            sessions: rustls::server::ServerSessionMemoryCache::new(4096),
            handshake_timeout: Duration::from_millis(tls.handshake_timeout_ms),
        })
    }

    /// How many servers have their TLS terminated.
    pub fn terminating(&self) -> usize {
        self.servers
            .iter()
            .filter(|s| s.mode == TlsMode::Terminate)
            .count()
    }

    /// Is `orig_dst` a server whose TLS is terminated?
    pub fn inspects(&self, orig_dst: SocketAddr) -> bool {
        let orig_dst = canonical(orig_dst);
        self.servers
            .iter()
            .any(|s| s.addr == orig_dst && s.mode == TlsMode::Terminate)
    }

    /// Terminate when the SNI names a terminating server, or (without SNI, or with a
    /// server that lists no names) when the destination is one; pass everything else
    /// through.
    pub fn decide(&self, sni: Option<&str>, orig_dst: SocketAddr) -> Decision<'_> {
        let orig_dst = canonical(orig_dst);
        if let Some(name) = sni
            && let Some(server) = self
                .servers
                .iter()
                .find(|s| s.patterns.iter().any(|p| sni_matches(p, name)))
        {
            return match server.mode {
                TlsMode::Terminate => Decision::Terminate(server),
                TlsMode::Passthrough => Decision::Passthrough(Some(server)),
            };
        }
        match self.servers.iter().find(|s| s.addr == orig_dst) {
            Some(server) if server.mode == TlsMode::Passthrough => {
                Decision::Passthrough(Some(server))
            }
            Some(server) if sni.is_some() && !server.patterns.is_empty() => {
                Decision::Refuse(server)
            }
            Some(server) => Decision::Terminate(server),
            None => Decision::Passthrough(None),
        }
    }

    /// The certificate `server` presents for `name`.
    pub fn certificate(
        &self,
        server: &TlsServer,
        name: &LeafName,
    ) -> Result<Arc<CertifiedKey>, CertError> {
        if let Some(cert) = &server.cert {
            return Ok(Arc::clone(cert));
        }
        match &self.minter {
            Some(minter) => minter.leaf(name),
            None => Err(CertError::NoCa(server.name.clone())),
        }
    }

    pub fn sessions(&self) -> Arc<dyn StoresServerSessions> {
        Arc::clone(&self.sessions)
    }
}

/// A v4-mapped connect reaches the same server as its IPv4 form.
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

#[cfg(test)]
mod tests;
