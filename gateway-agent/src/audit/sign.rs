//! Ed25519 signatures over each closed file's chain ends.
//!
//! The hash chain shows that rows were changed, removed or reordered *between* rows
//! that remain; it cannot show that the newest rows were cut off and the footer rewritten
//! to match. A signature over (first `prev_hash`, last `hash`, row count) by a key the
//! attacker does not hold closes that: each closed file carries it in its metadata
//! (`gateway.signature`), and `verify` checks it against the pinned public key.
//!
//! The key pair lives in the audit directory: `audit-signing.key` (the 32-byte seed, mode
//! 0600, created on first open) and `audit-signing.pub` (hex). That protects files read by
//! someone who cannot read the key (copies shipped elsewhere, a reader without root); for
//! an attacker with root on the host, keep a copy of the `.pub` (and the newest hash)
//! off the host. Where the agent's long-lived key should live is for the lead to decide.

use std::{
    fs::{self, File, OpenOptions},
    io::{Read, Write},
    os::unix::fs::OpenOptionsExt,
    path::Path,
};

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

pub const KEY_FILE: &str = "audit-signing.key";
pub const PUB_FILE: &str = "audit-signing.pub";

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
    /// Loads the directory's key, or creates it (and its `.pub`) on first use.
    pub fn load_or_create(dir: &Path) -> std::io::Result<Self> {
        let path = dir.join(KEY_FILE);
        let mut seed = [0u8; 32];
        match File::open(&path) {
            Ok(mut file) => file.read_exact(&mut seed)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                File::open("/dev/urandom")?.read_exact(&mut seed)?;
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)?;
                file.write_all(&seed)?;
                file.sync_all()?;
            }
            Err(e) => return Err(e),
        }
        let key = SigningKey::from_bytes(&seed);
        let public = hex(&key.verifying_key().to_bytes());
        let pub_path = dir.join(PUB_FILE);
        if fs::read_to_string(&pub_path)
            .map(|s| s.trim().to_owned())
            .ok()
            != Some(public.clone())
        {
            fs::write(&pub_path, format!("{public}\n"))?;
        }
        Ok(Self { key })
    }

    /// Hex of the signature over [`message`].
    pub fn sign(&self, first_prev: &[u8; 32], last: &[u8; 32], rows: u64) -> String {
        hex(&self.key.sign(&message(first_prev, last, rows)).to_bytes())
    }
}

/// The directory's pinned public key; `Ok(None)` when it has none (signatures are then
/// not checked, and the report says so).
pub fn pinned_key(dir: &Path) -> Result<Option<VerifyingKey>, String> {
    let text = match fs::read_to_string(dir.join(PUB_FILE)) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let bytes: [u8; 32] = unhex(text.trim())
        .and_then(|b| b.try_into().ok())
        .ok_or("not a hex Ed25519 public key")?;
    VerifyingKey::from_bytes(&bytes)
        .map(Some)
        .map_err(|e| e.to_string())
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}
