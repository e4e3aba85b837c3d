//! `bench --tls`: a throwaway CA and a `localhost` certificate for the TLS backend, and
//! the rustls configs of the backend and of the load generator (ring, like the agent).

use std::{path::Path, sync::Arc};

use anyhow::Context as _;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, pem::PemObject as _};

/// Writes the backend's CA certificate to `ca_file` and returns the backend's config.
pub fn backend(ca_file: &Path) -> anyhow::Result<Arc<ServerConfig>> {
    let ca_key = KeyPair::generate().context("CA key")?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).context("CA params")?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "gateway-agent bench backend CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    let ca = ca_params.self_signed(&ca_key).context("CA certificate")?;
    std::fs::write(ca_file, ca.pem()).with_context(|| format!("writing {}", ca_file.display()))?;
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().context("backend key")?;
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).context("params")?;
    params
        .subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    params.use_authority_key_identifier_extension = true;
    let cert = params
        .signed_by(&key, &issuer)
        .context("backend certificate")?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A client config trusting the CAs in `ca_files` (PEM), offering HTTP/1.1.
pub fn client(ca_files: &[impl AsRef<Path>]) -> anyhow::Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    for file in ca_files {
        let file = file.as_ref();
        for cert in CertificateDer::pem_file_iter(file)
            .with_context(|| format!("reading {}", file.display()))?
        {
            roots.add(cert.with_context(|| format!("parsing {}", file.display()))?)?;
        }
    }
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}
