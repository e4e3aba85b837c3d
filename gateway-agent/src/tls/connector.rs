//! The upstream side of a terminated connection: TLS to the original destination, SNI =
//! the client's SNI, verified against the system roots plus the server's `upstream_ca`.
//!
//! Verification is rustls' WebPKI verifier and is never bypassed: an expired, misnamed
//! or untrusted certificate (or a server that only speaks TLS 1.0/1.1, which rustls does
//! not implement) fails the connection, and [`describe`] turns the failure into the
//! reason the client's 502 names.

use std::sync::Arc;

use rustls::{CertificateError, ClientConfig, RootCertStore};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The system's trusted roots, read once at start. A root the platform store holds but
/// rustls cannot parse is skipped (and counted), as every other rustls user does.
pub fn system_roots() -> (RootCertStore, usize) {
    let mut roots = RootCertStore::empty();
    let loaded = rustls_native_certs::load_native_certs();
    for err in &loaded.errors {
        tracing::warn!(error = %err, "reading system CA certificates");
    }
    let (_, skipped) = roots.add_parsable_certificates(loaded.certs);
    (roots, skipped)
}

/// A client certificate chain and key for mTLS to the upstream.
pub type ClientAuth = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// The client config for one server: `roots` plus its extra CAs, and its client
/// certificate if it has one; ALPN is set per connection (see [`with_alpn`]).
pub fn client_config(
    roots: &RootCertStore,
    extra: Vec<CertificateDer<'static>>,
    client_auth: Option<ClientAuth>,
) -> Result<Arc<ClientConfig>, rustls::Error> {
    let mut store = roots.clone();
    for ca in extra {
        store.add(ca)?;
    }
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(store);
    let config = match client_auth {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key)?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// `base` offering `alpn` (the resumption cache stays shared with `base`).
pub fn with_alpn(base: &ClientConfig, alpn: Vec<Vec<u8>>) -> Arc<ClientConfig> {
    let mut config = base.clone();
    config.alpn_protocols = alpn;
    Arc::new(config)
}

/// Why the upstream handshake failed, in words a client's error message can carry.
pub fn describe(err: &std::io::Error, server_name: &str) -> String {
    let Some(tls) = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    else {
        return format!("upstream TLS handshake failed: {err}");
    };
    match tls {
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "upstream certificate has expired".to_owned()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "upstream certificate is not valid yet".to_owned()
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!("upstream certificate is not valid for {server_name}")
            }
            CertificateError::UnknownIssuer => {
                "upstream certificate is not issued by a trusted CA (unknown issuer)".to_owned()
            }
            CertificateError::BadSignature
            | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
                "upstream certificate's signature does not verify against a trusted CA".to_owned()
            }
            other => format!("upstream certificate rejected: {other:?}"),
        },
        rustls::Error::PeerIncompatible(why) => {
            format!("upstream TLS is incompatible (TLS 1.2+ required): {why:?}")
        }
        rustls::Error::AlertReceived(rustls::AlertDescription::ProtocolVersion) => {
            "upstream does not speak TLS 1.2 or 1.3 (alert ProtocolVersion)".to_owned()
        }
        rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired) => {
            "upstream requires a client certificate (configure upstream_client_cert)".to_owned()
        }
        rustls::Error::AlertReceived(alert) => {
            format!("upstream refused the TLS handshake: alert {alert:?}")
        }
        other => format!("upstream TLS handshake failed: {other}"),
    }
}
