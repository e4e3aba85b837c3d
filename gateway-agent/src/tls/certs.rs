//! The certificates the agent presents to clients: a server's configured chain and key,
//! or a leaf minted for the client's SNI by the local CA.
//!
//! Minted leaves share one key pair made at start (an ECDSA P-256 signature per new name
//! is cheap; a key generation per name is not, and buys nothing: the key never leaves the
//! agent's memory). Each leaf is short-lived (`[tls] leaf_validity_hours`, ≤ 7 days),
//! renewed once half its life is gone, and kept in a bounded least-recently-used cache.
//! Leaves carry a random serial (a serial derived from the shared key would repeat across
//! names, which NSS rejects as a reused issuer+serial), an Authority Key Identifier (strict
//! OpenSSL verification wants one) and no Subject Key Identifier.

use std::{
    collections::HashMap,
    net::IpAddr,
    path::Path,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType, SerialNumber,
};
use ring::rand::SecureRandom as _;
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, pem::PemObject as _};

use super::ca::LocalCa;

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("{path}: {problem}")]
    File { path: String, problem: String },
    #[error("no certificate for {0}: the server has none configured and there is no local CA")]
    NoCa(String),
    #[error("minting a leaf for {name}: {source}")]
    Mint { name: String, source: rcgen::Error },
    #[error("the leaf key: {0}")]
    Key(String),
}

/// The name a leaf is for: the client's SNI, or without one the address it dialled.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LeafName {
    Dns(String),
    Ip(IpAddr),
}

impl std::fmt::Display for LeafName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Dns(name) => f.write_str(name),
            Self::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// Mints and caches leaves signed by the local CA.
pub struct LeafMinter {
    ca: LocalCa,
    key: KeyPair,
    signer: Arc<dyn rustls::sign::SigningKey>,
    validity: Duration,
    cache: Mutex<LeafCache>,
}

impl std::fmt::Debug for LeafMinter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeafMinter")
            .field("validity", &self.validity)
            .finish_non_exhaustive()
    }
}

impl LeafMinter {
    pub fn new(ca: LocalCa, validity: Duration, capacity: usize) -> Result<Self, CertError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
            .map_err(|err| CertError::Key(err.to_string()))?;
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let signer = rustls::crypto::ring::sign::any_ecdsa_type(&der)
            .map_err(|err| CertError::Key(err.to_string()))?;
        Ok(Self {
            ca,
            key,
            signer,
            validity,
            cache: Mutex::new(LeafCache::new(capacity)),
        })
    }

    /// The CA certificate (what clients must trust).
    pub fn ca_cert(&self) -> &CertificateDer<'static> {
        &self.ca.cert
    }

    /// A leaf for `name`, from the cache while it has more than half its life left.
    pub fn leaf(&self, name: &LeafName) -> Result<Arc<CertifiedKey>, CertError> {
        let now = SystemTime::now();
        if let Some(hit) = self.lock().get(name, now) {
            return Ok(hit);
        }
        let leaf = Arc::new(self.mint(name)?);
        self.lock()
            .insert(name.clone(), Arc::clone(&leaf), now + self.validity / 2);
        Ok(leaf)
    }

    /// How many leaves are cached (for tests and logs).
    pub fn cached(&self) -> usize {
        self.lock().entries.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LeafCache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn mint(&self, name: &LeafName) -> Result<CertifiedKey, CertError> {
        let mint_err = |source| CertError::Mint {
            name: name.to_string(),
            source,
        };
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name.to_string());
        params.distinguished_name = dn;
        params.subject_alt_names = vec![match name {
            LeafName::Dns(host) => SanType::DnsName(host.clone().try_into().map_err(mint_err)?),
            LeafName::Ip(ip) => SanType::IpAddress(*ip),
        }];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        // A little slack for clients whose clock is behind ours.
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::minutes(5);
        params.not_after = now + time::Duration::seconds(self.validity.as_secs() as i64);
        params.serial_number = Some(random_serial());
        let cert = params
            .signed_by(&self.key, &self.ca.issuer)
            .map_err(mint_err)?;
        Ok(CertifiedKey::new(
            vec![cert.der().clone()],
            Arc::clone(&self.signer),
        ))
    }
}

/// 16 random bytes, top bit clear so the DER integer stays positive.
pub fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    // The system RNG failing is not recoverable in any useful way; a zero serial would
    // still be a valid (if non-unique) certificate, so fall back rather than panic.
    let _ = ring::rand::SystemRandom::new().fill(&mut bytes);
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::from_slice(&bytes)
}

/// A PEM chain and its private key, as read (for a client certificate to the upstream).
pub fn load_pair(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), CertError> {
    let certified = load_configured(cert, key)?;
    let private = PrivateKeyDer::from_pem_file(key).map_err(|err| CertError::File {
        path: key.display().to_string(),
        problem: err.to_string(),
    })?;
    Ok((certified.cert.clone(), private))
}

/// A configured certificate chain and its key (PEM files).
pub fn load_configured(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, CertError> {
    let file_err = |path: &Path, problem: String| CertError::File {
        path: path.display().to_string(),
        problem,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|err| file_err(cert, err.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| file_err(cert, err.to_string()))?;
    if chain.is_empty() {
        return Err(file_err(cert, "holds no PEM certificate".into()));
    }
    let private =
        PrivateKeyDer::from_pem_file(key).map_err(|err| file_err(key, err.to_string()))?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&private)
        .map_err(|err| file_err(key, format!("unsupported private key: {err}")))?;
    let certified = CertifiedKey::new(chain, signer);
    certified
        .keys_match()
        .map_err(|err| file_err(key, format!("does not match {}: {err}", cert.display())))?;
    Ok(Arc::new(certified))
}

/// PEM CA certificates (a server's `upstream_ca`).
pub fn load_cas(path: &Path) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let file_err = |problem: String| CertError::File {
        path: path.display().to_string(),
        problem,
    };
    let cas = CertificateDer::pem_file_iter(path)
        .map_err(|err| file_err(err.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| file_err(err.to_string()))?;
    if cas.is_empty() {
        return Err(file_err("holds no PEM certificate".into()));
    }
    Ok(cas)
}

/// Least-recently-used, bounded. Eviction scans the entries, which only happens when a
/// new name is minted into a full cache: far cheaper than the signature that precedes it.
struct LeafCache {
    entries: HashMap<LeafName, Entry>,
    capacity: usize,
    tick: u64,
}

struct Entry {
    leaf: Arc<CertifiedKey>,
    renew_at: SystemTime,
    used: u64,
}

impl LeafCache {
    fn new(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            capacity: capacity.max(1),
            tick: 0,
        }
    }

    fn get(&mut self, name: &LeafName, now: SystemTime) -> Option<Arc<CertifiedKey>> {
        self.tick += 1;
        let tick = self.tick;
        let entry = self.entries.get_mut(name)?;
        if now >= entry.renew_at {
            return None;
        }
        entry.used = tick;
        Some(Arc::clone(&entry.leaf))
    }

    fn insert(&mut self, name: LeafName, leaf: Arc<CertifiedKey>, renew_at: SystemTime) {
        self.tick += 1;
        if !self.entries.contains_key(&name)
            && self.entries.len() >= self.capacity
            && let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone())
        {
            self.entries.remove(&oldest);
        }
        self.entries.insert(
            name,
            Entry {
                leaf,
                renew_at,
                used: self.tick,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use rustls::client::danger::ServerCertVerifier as _;

    use super::*;

    fn minter(capacity: usize) -> (tempfile::TempDir, LeafMinter) {
        let dir = tempfile::tempdir().unwrap();
        super::super::ca::init(dir.path()).unwrap();
        let ca = super::super::ca::load(dir.path()).unwrap();
        let minter = LeafMinter::new(ca, Duration::from_secs(7 * 24 * 3600), capacity).unwrap();
        (dir, minter)
    }

    #[test]
    fn leaves_are_cached_per_name_and_verify_against_the_ca() {
        let (_dir, minter) = minter(8);
        let name = LeafName::Dns("mcp.example".into());
        let first = minter.leaf(&name).unwrap();
        let again = minter.leaf(&name).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        let other = minter.leaf(&LeafName::Dns("other.example".into())).unwrap();
        assert_ne!(first.cert[0], other.cert[0], "each name its own leaf");

        // A real verifier accepts the leaf for its name (and only that name).
        let mut roots = rustls::RootCertStore::empty();
        roots.add(minter.ca_cert().clone()).unwrap();
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .unwrap();
        let now = rustls_pki_types::UnixTime::now();
        let ok = verifier.verify_server_cert(
            &first.cert[0],
            &[],
            &"mcp.example".try_into().unwrap(),
            &[],
            now,
        );
        assert!(ok.is_ok(), "{ok:?}");
        let wrong = verifier.verify_server_cert(
            &first.cert[0],
            &[],
            &"other.example".try_into().unwrap(),
            &[],
            now,
        );
        assert!(wrong.is_err());
        let ip = minter
            .leaf(&LeafName::Ip("127.0.0.1".parse().unwrap()))
            .unwrap();
        let ip_ok = verifier.verify_server_cert(
            &ip.cert[0],
            &[],
            &rustls_pki_types::ServerName::IpAddress("127.0.0.1".parse::<IpAddr>().unwrap().into()),
            &[],
            now,
        );
        assert!(ip_ok.is_ok(), "{ip_ok:?}");
    }

    #[test]
    fn the_cache_is_bounded_and_drops_the_least_recently_used() {
        let (_dir, minter) = minter(2);
        let a = LeafName::Dns("a.example".into());
        let b = LeafName::Dns("b.example".into());
        let c = LeafName::Dns("c.example".into());
        let first_a = minter.leaf(&a).unwrap();
        minter.leaf(&b).unwrap();
        minter.leaf(&a).unwrap(); // a is now the most recent
        minter.leaf(&c).unwrap(); // evicts b
        assert_eq!(minter.cached(), 2);
        assert!(Arc::ptr_eq(&first_a, &minter.leaf(&a).unwrap()));
    }

    #[test]
    fn serials_differ_between_leaves_sharing_a_key() {
        assert_ne!(random_serial().to_bytes(), random_serial().to_bytes());
    }
}
