//! The agent's local CA: an ECDSA P-256 key and a self-signed CA certificate in
//! `[tls] ca_dir`, made once by `gateway-agent ca init` and trusted by clients once
//! (`ca install`). It signs the short-lived leaves the agent presents for inspected
//! servers that have no certificate of their own configured.
//!
//! The key file is created 0600 in a 0700 directory and is never logged; `init` never
//! overwrites an existing CA (replacing it would silently break every client that trusts
//! it). The CA is constrained to path length 0: it can sign leaves, not other CAs.

use std::{
    io::Write as _,
    os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};
use rustls_pki_types::{CertificateDer, pem::PemObject as _};

/// File names inside `[tls] ca_dir`.
pub const CERT_FILE: &str = "ca.pem";
pub const KEY_FILE: &str = "ca.key";

/// How long the CA certificate is valid: re-trusting a CA on a fleet is costly, and the
/// leaves it signs are what stays short-lived.
const CA_VALIDITY_DAYS: i64 = 3650;

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("no local CA in {0} (run `gateway-agent ca init`)")]
    Missing(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {problem}")]
    Invalid { path: PathBuf, problem: String },
    #[error("generating the CA: {0}")]
    Generate(rcgen::Error),
}

/// A loaded CA, ready to sign leaves.
pub struct LocalCa {
    pub issuer: Issuer<'static, KeyPair>,
    pub cert: CertificateDer<'static>,
    pub cert_pem: String,
}

impl std::fmt::Debug for LocalCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCa").finish_non_exhaustive()
    }
}

/// What `ca init` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Init {
    Created,
    AlreadyThere,
}

pub fn cert_path(dir: &Path) -> PathBuf {
    dir.join(CERT_FILE)
}

pub fn key_path(dir: &Path) -> PathBuf {
    dir.join(KEY_FILE)
}

/// Creates the CA in `dir` unless one is there already.
pub fn init(dir: &Path) -> Result<Init, CaError> {
    let (cert_file, key_file) = (cert_path(dir), key_path(dir));
    if cert_file.exists() || key_file.exists() {
        // A half-made CA (one file only) is reported by `load`, not papered over.
        load(dir)?;
        return Ok(Init::AlreadyThere);
    }
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| CaError::Io { path, source }
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io(dir))?;
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(CaError::Generate)?;
    let cert = ca_params().self_signed(&key).map_err(CaError::Generate)?;
    // Key first, exclusively and 0600 from birth: never a moment with a readable key.
    write_new(&key_file, key.serialize_pem().as_bytes(), 0o600).map_err(io(&key_file))?;
    write_new(&cert_file, cert.pem().as_bytes(), 0o644).map_err(io(&cert_file))?;
    Ok(Init::Created)
}

/// Reads the CA in `dir`.
pub fn load(dir: &Path) -> Result<LocalCa, CaError> {
    let (cert_file, key_file) = (cert_path(dir), key_path(dir));
    if !cert_file.exists() && !key_file.exists() {
        return Err(CaError::Missing(dir.to_owned()));
    }
    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|source| CaError::Io {
            path: path.to_owned(),
            source,
        })
    };
    let invalid = |path: &Path, problem: String| CaError::Invalid {
        path: path.to_owned(),
        problem,
    };
    let mode = std::fs::metadata(&key_file)
        .map_err(|source| CaError::Io {
            path: key_file.clone(),
            source,
        })?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(invalid(
            &key_file,
            format!(
                "is mode {:o}; the CA key must be readable by its owner only (0600)",
                mode & 0o777
            ),
        ));
    }
    let key = KeyPair::from_pem(&read(&key_file)?)
        .map_err(|err| invalid(&key_file, format!("not a private key: {err}")))?;
    let cert_pem = read(&cert_file)?;
    let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes())
        .map_err(|err| invalid(&cert_file, format!("not a PEM certificate: {err}")))?;
    let issuer = Issuer::from_ca_cert_der(&cert, key)
        .map_err(|err| invalid(&cert_file, format!("not a CA certificate: {err}")))?;
    Ok(LocalCa {
        issuer,
        cert,
        cert_pem,
    })
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "gateway-agent");
    // The host in the name tells an operator which agent's CA a trust store holds.
    name.push(
        DnType::CommonName,
        format!("gateway-agent local CA ({})", hostname()),
    );
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(CA_VALIDITY_DAYS);
    params.serial_number = Some(super::certs::random_serial());
    params
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown host".to_owned())
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_creates_a_private_key_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let ca_dir = dir.path().join("ca");
        assert_eq!(init(&ca_dir).unwrap(), Init::Created);
        let mode = std::fs::metadata(key_path(&ca_dir))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let first = std::fs::read(cert_path(&ca_dir)).unwrap();
        assert_eq!(init(&ca_dir).unwrap(), Init::AlreadyThere);
        assert_eq!(std::fs::read(cert_path(&ca_dir)).unwrap(), first);
        let ca = load(&ca_dir).unwrap();
        assert!(ca.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    }

    #[test]
    fn a_readable_key_or_a_missing_ca_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(load(dir.path()), Err(CaError::Missing(_))));
        init(dir.path()).unwrap();
        std::fs::set_permissions(key_path(dir.path()), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("0600"), "{err}");
    }
}
