//! The client side of a terminated connection: a rustls server config presenting the
//! chosen certificate and exactly one ALPN protocol (the one the upstream agreed to), so
//! the client speaks what the server behind us speaks.

use std::sync::Arc;

use rustls::{
    ServerConfig,
    server::{ClientHello, ResolvesServerCert, StoresServerSessions},
    sign::CertifiedKey,
};

/// The certificate for this one connection (decided before the handshake continues).
#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl ResolvesServerCert for Fixed {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

/// A server config for one terminated connection. `sessions` is shared by all of them,
/// so a returning client can resume instead of paying a full handshake.
pub fn server_config(
    cert: Arc<CertifiedKey>,
    alpn: Option<&[u8]>,
    sessions: Arc<dyn StoresServerSessions>,
) -> Result<Arc<ServerConfig>, rustls::Error> {
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Fixed(cert)));
    config.alpn_protocols = alpn.map(|p| vec![p.to_vec()]).unwrap_or_default();
    config.session_storage = sessions;
    Ok(Arc::new(config))
}
