//! Ed25519 signatures over each closed file's chain ends.
//!
//! The hash chain shows that rows were changed, removed or reordered *between* rows
//! that remain; it cannot show that the newest rows were cut off and the footer rewritten
//! to match. A signature over (first `prev_hash`, last `hash`, row count) by a key the
//! attacker does not hold closes that: each closed file carries it in its metadata
//! (`gateway.signature`), and `verify` checks it against the pinned public key.
//!
//! The key must not live beside the files it signs: whoever can rewrite the trail could
//! re-sign it. It is kept (see [`key_location`]):
//! - at `[audit] signing_key` when configured (refused inside the audit directory);
//! - else in the systemd credential `$CREDENTIALS_DIRECTORY/audit-signing-key` when the
//!   unit passes one (`LoadCredential=`/`SetCredentialEncrypted=`; read, never written);
//! - else at `<parent of the audit dir>/keys/audit-signing.key`
//!   (`/var/lib/gateway-agent/keys/audit-signing.key` by default), in a 0700 directory.
//!
//! The key file holds the 32-byte seed (a credential may also hold it as 64 hex digits),
//! mode 0600, created on first start; a key an older version left in the audit directory
//! is moved there (and logged). `audit-signing.pub` (hex) is written beside the key and,
//! for convenience, into the audit directory; a verifier should pin its own copy
//! (`gateway-agent audit pubkey`, then `audit verify --pubkey FILE`), since the copy in
//! the audit directory is as writable as the trail.

use std::{
    fs::{self, File},
    io::{Read, Write},
    path::{Path, PathBuf},
};

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use super::{
    AuditConfig,
    access::{self, AccessError},
};

pub const KEY_FILE: &str = "audit-signing.key";
pub const PUB_FILE: &str = "audit-signing.pub";
/// The systemd credential name the key may come from.
pub const CREDENTIAL: &str = "audit-signing-key";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("audit signing key {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("audit signing key {path}: {problem}")]
    Bad { path: PathBuf, problem: String },
    #[error(
        "audit signing key {path} is inside the audit directory {dir}: whoever can rewrite \
         the trail could re-sign it; set [audit] signing_key to a path outside it"
    )]
    InsideAuditDir { path: PathBuf, dir: PathBuf },
    #[error(
        "two different audit signing keys: {old} (left in the audit directory) and {path}; \
         keep the right one, move the other away, and start again"
    )]
    Conflict { old: PathBuf, path: PathBuf },
    #[error("audit signing key directory: {0}")]
    Access(#[from] AccessError),
    #[error("no audit signing key at {path} yet (the agent creates it on its first start)")]
    Missing { path: PathBuf },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Where the key is, and whether the agent may create it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyLocation {
    /// A file the agent creates on first start.
    File(PathBuf),
    /// A systemd credential: read only.
    Credential(PathBuf),
}

impl KeyLocation {
    pub fn path(&self) -> &Path {
        match self {
            Self::File(path) | Self::Credential(path) => path,
        }
    }
}

/// See the module documentation for the order.
pub fn key_location(config: &AuditConfig) -> KeyLocation {
    key_location_in(config, std::env::var_os("CREDENTIALS_DIRECTORY").as_deref())
}

/// [`key_location`] with systemd's credentials directory given.
fn key_location_in(config: &AuditConfig, credentials: Option<&std::ffi::OsStr>) -> KeyLocation {
    if let Some(path) = &config.signing_key {
        return KeyLocation::File(path.clone());
    }
    if let Some(dir) = credentials {
        let path = Path::new(&dir).join(CREDENTIAL);
        if path.exists() {
            return KeyLocation::Credential(path);
        }
    }
    KeyLocation::File(default_key_path(&config.dir))
}

/// `<parent of audit_dir>/keys/audit-signing.key`.
pub fn default_key_path(audit_dir: &Path) -> PathBuf {
    audit_dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("/"))
        .join("keys")
        .join(KEY_FILE)
}

/// `path` resolved through the symlinks of its nearest existing ancestor (it need not
/// exist itself), so `..` or a link cannot smuggle it into the audit directory.
fn resolved(path: &Path) -> PathBuf {
    let mut existing = path.to_path_buf();
    let mut rest = Vec::new();
    while !existing.exists() {
        let Some(last) = existing.components().next_back() else {
            break;
        };
        rest.push(last.as_os_str().to_owned());
        if !existing.pop() {
            break;
        }
    }
    let mut out = fs::canonicalize(&existing).unwrap_or(existing);
    // What does not exist cannot be a link: `..` there is lexical.
    for name in rest.iter().rev() {
        match Path::new(name).components().next() {
            Some(std::path::Component::ParentDir) => {
                out.pop();
            }
            Some(std::path::Component::CurDir) => {}
            _ => out.push(name),
        }
    }
    out
}

fn check_outside(audit_dir: &Path, key: &Path) -> Result<(), KeyError> {
    if resolved(key).starts_with(resolved(audit_dir)) {
        return Err(KeyError::InsideAuditDir {
            path: key.to_owned(),
            dir: audit_dir.to_owned(),
        });
    }
    Ok(())
}

/// The seed in `bytes`: 32 raw bytes, or 64 hex digits (a credential set as text).
fn parse_seed(path: &Path, bytes: &[u8]) -> Result<[u8; 32], KeyError> {
    if let Ok(seed) = <[u8; 32]>::try_from(bytes) {
        return Ok(seed);
    }
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|text| unhex(text.trim()))
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| KeyError::Bad {
            path: path.to_owned(),
            problem: "not a 32-byte Ed25519 seed (raw, or 64 hex digits)".into(),
        })
}

fn read_seed(path: &Path) -> Result<Option<[u8; 32]>, KeyError> {
    let mut bytes = Vec::new();
    match File::open(path) {
        // Bounded: a key file is 32 bytes, hex with a newline well under 256.
        Ok(file) => file.take(256).read_to_end(&mut bytes).map_err(io(path))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(path)(e)),
    };
    parse_seed(path, &bytes).map(Some)
}

/// The key at its configured location, without creating anything (`audit pubkey`).
pub fn read_key(config: &AuditConfig) -> Result<SigningKey, KeyError> {
    let location = key_location(config);
    let path = location.path();
    match read_seed(path)? {
        Some(seed) => Ok(SigningKey::from_bytes(&seed)),
        None => Err(KeyError::Missing {
            path: path.to_owned(),
        }),
    }
}

/// Writes a new seed at `path` atomically: a racing second writer finds either no key or
/// the whole one, never half of it.
fn create_seed(path: &Path) -> Result<[u8; 32], KeyError> {
    let mut seed = [0u8; 32];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .map_err(io(path))?;
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let unique = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp.{}.{unique}", std::process::id()));
    let written = access::create_secret_file(&tmp)
        .and_then(|mut f| f.write_all(&seed).and_then(|()| f.sync_all()));
    let linked = written.and_then(|()| fs::hard_link(&tmp, path));
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(seed),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            read_seed(path)?.ok_or_else(|| KeyError::Missing {
                path: path.to_owned(),
            })
        }
        Err(e) => Err(io(path)(e)),
    }
}

/// A key an older version kept in the audit directory goes to `path` (or, when `path`
/// already holds the same key, is deleted); two different keys stop the start.
fn migrate(audit_dir: &Path, location: &KeyLocation) -> Result<(), KeyError> {
    let old = audit_dir.join(KEY_FILE);
    let Some(old_seed) = read_seed(&old)? else {
        return Ok(());
    };
    let path = location.path();
    match (read_seed(path)?, location) {
        (Some(seed), _) if seed == old_seed => {
            fs::remove_file(&old).map_err(io(&old))?;
            tracing::warn!(old = %old.display(), key = %path.display(),
                "removed a copy of the audit signing key from the audit directory");
        }
        (None, KeyLocation::File(path)) => {
            let dir = path.parent().unwrap_or(Path::new("/"));
            let tmp = path.with_extension("migrating");
            let copied = access::create_secret_file(&tmp)
                .and_then(|mut f| f.write_all(&old_seed).and_then(|()| f.sync_all()))
                .and_then(|()| fs::rename(&tmp, path))
                .and_then(|()| File::open(dir)?.sync_all());
            if let Err(e) = copied {
                let _ = fs::remove_file(&tmp);
                return Err(io(path)(e));
            }
            fs::remove_file(&old).map_err(io(&old))?;
            File::open(audit_dir)
                .and_then(|d| d.sync_all())
                .map_err(io(audit_dir))?;
            tracing::warn!(from = %old.display(), to = %path.display(),
                "moved the audit signing key out of the audit directory");
        }
        _ => {
            return Err(KeyError::Conflict {
                old,
                path: path.to_owned(),
            });
        }
    }
    Ok(())
}

/// Writes `public` (hex) to `path` unless it already says so.
fn write_pub(path: &Path, public: &str) -> Result<(), KeyError> {
    if fs::read_to_string(path).map(|s| s.trim().to_owned()).ok() == Some(public.to_owned()) {
        return Ok(());
    }
    access::create_file(path, false)
        .and_then(|mut f| f.write_all(format!("{public}\n").as_bytes()))
        .map_err(io(path))
}

/// Hex of the public half of `key`.
pub fn public_hex(key: &SigningKey) -> String {
    hex(&key.verifying_key().to_bytes())
}

/// What is signed: a domain tag (so the signature means nothing elsewhere), the file's
/// first `prev_hash`, its last `hash`, and its row count (u64 little-endian).
pub fn message(first_prev: &[u8; 32], last: &[u8; 32], rows: u64) -> Vec<u8> {
    let mut message = b"GWAUDIT1 file".to_vec();
    message.extend_from_slice(first_prev);
    message.extend_from_slice(last);
    message.extend_from_slice(&rows.to_le_bytes());
    message
}

pub struct FileSigner {
    key: SigningKey,
}

impl FileSigner {
    /// Loads the key from its location (creating it there on first start, after moving
    /// one an older version left in the audit directory), and publishes its `.pub`. The
    /// audit directory must exist (prepared by [`access::prepare`]).
    pub fn open(config: &AuditConfig) -> Result<Self, KeyError> {
        Self::open_at(config, key_location(config))
    }

    /// [`open`](Self::open) with the location given.
    fn open_at(config: &AuditConfig, location: KeyLocation) -> Result<Self, KeyError> {
        let path = location.path();
        check_outside(&config.dir, path)?;
        if let KeyLocation::File(path) = &location {
            // Checked, not re-moded: the directory may hold other things (a config dir).
            access::check_dir(path.parent().unwrap_or(Path::new("/")))?;
            if access::restrict_file(path)? {
                tracing::warn!(key = %path.display(), "the audit signing key was readable by others; set to 0600");
            }
        }
        migrate(&config.dir, &location)?;
        let seed = match (read_seed(path)?, &location) {
            (Some(seed), _) => seed,
            (None, KeyLocation::File(path)) => create_seed(path)?,
            (None, KeyLocation::Credential(path)) => {
                return Err(KeyError::Missing {
                    path: path.to_owned(),
                });
            }
        };
        let key = SigningKey::from_bytes(&seed);
        let public = public_hex(&key);
        if let KeyLocation::File(path) = &location {
            write_pub(&path.with_file_name(PUB_FILE), &public)?;
        }
        write_pub(&config.dir.join(PUB_FILE), &public)?;
        Ok(Self { key })
    }

    /// The key, for checkpoints.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// Hex of the signature over [`message`].
    pub fn sign(&self, first_prev: &[u8; 32], last: &[u8; 32], rows: u64) -> String {
        hex(&self.key.sign(&message(first_prev, last, rows)).to_bytes())
    }
}

/// The directory's `audit-signing.pub`; `Ok(None)` when it has none (signatures are then
/// not checked, and the report says so).
pub fn pinned_key(dir: &Path) -> Result<Option<VerifyingKey>, String> {
    match fs::read_to_string(dir.join(PUB_FILE)) {
        Ok(text) => parse_public(&text).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// A public key as `audit pubkey` prints it (hex, surrounding whitespace ignored).
pub fn parse_public(text: &str) -> Result<VerifyingKey, String> {
    let bytes: [u8; 32] = unhex(text.trim())
        .and_then(|b| b.try_into().ok())
        .ok_or("not a hex Ed25519 public key")?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| e.to_string())
}

/// Whether `signature_hex` is `key`'s signature of these chain ends.
pub fn check(
    key: &VerifyingKey,
    first_prev: &[u8; 32],
    last: &[u8; 32],
    rows: u64,
    signature_hex: &str,
) -> bool {
    let Some(bytes) = unhex(signature_hex).and_then(|b| <[u8; 64]>::try_from(b).ok()) else {
        return false;
    };
    key.verify_strict(
        &message(first_prev, last, rows),
        &Signature::from_bytes(&bytes),
    )
    .is_ok()
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests;
