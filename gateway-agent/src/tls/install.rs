//! `gateway-agent ca install`: put the local CA where the host's TLS clients look, and
//! say what runtimes with their own trust store need.
//!
//! Debian's way: the CA goes into the local certificate directory and
//! `update-ca-certificates` rebuilds the system bundle (system roots + ours). Both
//! directories can be pointed elsewhere, so a test (or an image build) can install into
//! a scratch store without touching the host's.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// The file name of the CA inside the local certificate directory (must end in `.crt`
/// for `update-ca-certificates` to pick it up).
pub const INSTALLED_NAME: &str = "gateway-agent-ca.crt";
pub const DEFAULT_STORE: &str = "/usr/local/share/ca-certificates";
pub const DEFAULT_ETC_CERTS: &str = "/etc/ssl/certs";

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error(transparent)]
    Ca(#[from] super::ca::CaError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("running update-ca-certificates: {0}")]
    Update(String),
}

/// Where things ended up.
pub struct Installed {
    pub cert: PathBuf,
    pub bundle: PathBuf,
}

/// Copies the CA of `ca_dir` into `store` and rebuilds the bundle in `etc_certs`.
pub fn install(ca_dir: &Path, store: &Path, etc_certs: &Path) -> Result<Installed, InstallError> {
    let ca = super::ca::load(ca_dir)?;
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| InstallError::Io { path, source }
    };
    std::fs::create_dir_all(store).map_err(io(store))?;
    std::fs::create_dir_all(etc_certs).map_err(io(etc_certs))?;
    let cert = store.join(INSTALLED_NAME);
    std::fs::write(&cert, ca.cert_pem.as_bytes()).map_err(io(&cert))?;
    let mut update = Command::new("update-ca-certificates");
    update
        .arg("--localcertsdir")
        .arg(store)
        .arg("--etccertsdir")
        .arg(etc_certs);
    if etc_certs != Path::new(DEFAULT_ETC_CERTS) {
        // Hooks (Java's keystore, …) act on the host's stores: not for a scratch one.
        update.arg("--hooksdir").arg(etc_certs.join("no-hooks"));
    }
    let output = update
        .output()
        .map_err(|err| InstallError::Update(err.to_string()))?;
    if !output.status.success() {
        return Err(InstallError::Update(format!(
            "{}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(Installed {
        cert,
        bundle: etc_certs.join("ca-certificates.crt"),
    })
}

/// The lines for runtimes that do not read the system store.
pub fn runtime_lines(installed: &Installed) -> String {
    let (cert, bundle) = (installed.cert.display(), installed.bundle.display());
    format!(
        "# Node.js (adds to its built-in roots):\n\
         export NODE_EXTRA_CA_CERTS={cert}\n\
         # Python ssl/httpx/aiohttp, Ruby, Go, curl/OpenSSL builds (system roots + the agent's CA):\n\
         export SSL_CERT_FILE={bundle}\n\
         # Python requests (certifi otherwise):\n\
         export REQUESTS_CA_BUNDLE={bundle}\n\
         # Java (JDK's cacerts):\n\
         keytool -importcert -noprompt -cacerts -storepass changeit -alias gateway-agent-ca -file {cert}\n"
    )
}
