//! The hash chain that makes the audit trail tamper-evident.
//!
//! `hash = SHA-256(canonical(row))`, where `canonical(row)` is the encoding below of every
//! column except `hash`, in schema column order. `prev_hash` is the last of those columns,
//! so this is exactly "the row's fields, then the previous row's hash": changing, deleting
//! or reordering any row breaks either its own hash or the next row's link. The first row
//! ever has `prev_hash` = 32 zero bytes ([`GENESIS`]); the chain then runs unbroken across
//! files and writer restarts.
//!
//! # Canonical encoding, version 1 (stable: an independent verifier recomputes it)
//!
//! The bytes `GWAUDIT1` (ASCII, 8 bytes), then each column in schema order:
//!
//! | column type                        | bytes                                        |
//! |------------------------------------|----------------------------------------------|
//! | nullable column, value null        | `00`                                         |
//! | nullable column, value present     | `01`, then the value as below                |
//! | `Utf8`                             | u32 little-endian byte length, UTF-8 bytes   |
//! | `Timestamp(µs)`, `Int64`           | i64 little-endian (8 bytes)                  |
//! | `Int32`                            | i32 little-endian (4 bytes)                  |
//! | `UInt32` / `UInt64`                | little-endian, 4 / 8 bytes                   |
//! | `List<Utf8>`                       | u32 LE item count, then each item as `Utf8`  |
//! | `FixedSizeBinary(32)` (prev_hash)  | the 32 raw bytes                             |
//!
//! Non-nullable columns carry no presence byte. Length prefixes make the encoding
//! injective: no two different rows encode to the same bytes, so no value can be shifted
//! into its neighbour's column without changing the hash.

use sha2::{Digest, Sha256};

use super::record::AuditRecord;

/// The `prev_hash` of the first row of a fresh audit directory.
pub const GENESIS: [u8; 32] = [0; 32];

/// Versions the encoding: a future schema gets a new tag, never a silent reinterpretation.
const TAG: &[u8; 8] = b"GWAUDIT1";

/// The row's hash, over every field but `hash` (which it ignores).
pub fn row_hash(row: &AuditRecord) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(TAG);
    encode_columns(row, &mut hasher);
    hasher.update(row.prev_hash);
    hasher.finalize().into()
}

/// Where canonical bytes go: the hasher for the chain, a buffer for the write-ahead log
/// (which stores rows before they are sealed, in this same encoding).
pub trait ByteSink {
    fn put(&mut self, bytes: &[u8]);
}

impl ByteSink for Sha256 {
    fn put(&mut self, bytes: &[u8]) {
        self.update(bytes);
    }
}

impl ByteSink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// Every column but `prev_hash` and `hash`, in schema order, in the canonical encoding
/// (without the `GWAUDIT1` tag): the one walk over the columns that both the chain and
/// the write-ahead log use, so a new column cannot reach one and miss the other.
pub fn encode_columns(row: &AuditRecord, out: &mut impl ByteSink) {
    let mut e = Encoder(out);
    e.i64(row.time_us);
    e.text(&row.host);
    e.text(&row.session);
    e.opt_text(&row.request_id);
    e.text(row.direction.as_str());
    e.text(row.kind.as_str());
    e.text(&row.transport);
    e.opt_text(&row.protocol_version);
    e.opt_text(&row.server_name);
    e.text(&row.server_addr);
    e.opt_text(&row.method);
    e.opt_text(&row.tool);
    e.opt_text(&row.payload);
    e.opt(row.status, |e, v| e.0.put(&v.to_le_bytes()));
    e.opt(row.error_code, Encoder::i64);
    e.opt_text(&row.decision);
    e.list(&row.rules);
    e.0.put(&row.masked_count.to_le_bytes());
    e.list(&row.mask_rules);
    e.opt(row.latency_us, |e, v| e.0.put(&v.to_le_bytes()));
    e.0.put(&row.bytes.to_le_bytes());
    let p = &row.principal;
    e.opt_text(&p.sub);
    e.opt_text(&p.email);
    e.list(&p.groups);
    e.opt_text(&p.issuer);
    e.opt(p.pid, |e, v| e.0.put(&v.to_le_bytes()));
    e.opt(p.uid, |e, v| e.0.put(&v.to_le_bytes()));
    e.opt_text(&p.user);
    e.opt_text(&p.comm);
    e.opt_text(&p.exe);
    e.opt_text(&p.cgroup);
    e.text(&row.agent_version);
}

/// Links `row` after `prev` (the previous row's hash) and sets its hash.
pub fn seal(row: &mut AuditRecord, prev: [u8; 32]) {
    row.prev_hash = prev;
    row.hash = row_hash(row);
}

struct Encoder<'a, S: ByteSink>(&'a mut S);

impl<S: ByteSink> Encoder<'_, S> {
    fn i64(&mut self, value: i64) {
        self.0.put(&value.to_le_bytes());
    }

    fn text(&mut self, value: &str) {
        // Audit values are bounded far below 4 GiB (bodies are capped by http limits);
        // saturating keeps the function total without a panic path.
        let len = u32::try_from(value.len()).unwrap_or(u32::MAX);
        self.0.put(&len.to_le_bytes());
        self.0.put(value.as_bytes());
    }

    fn opt<T>(&mut self, value: Option<T>, encode: impl FnOnce(&mut Self, T)) {
        match value {
            None => self.0.put(&[0]),
            Some(v) => {
                self.0.put(&[1]);
                encode(self, v);
            }
        }
    }

    fn opt_text(&mut self, value: &Option<String>) {
        self.opt(value.as_deref(), Self::text);
    }

    fn list(&mut self, items: &[String]) {
        let count = u32::try_from(items.len()).unwrap_or(u32::MAX);
        self.0.put(&count.to_le_bytes());
        for item in items {
            self.text(item);
        }
    }
}

/// Lower-case hex, for file metadata and messages.
pub fn to_hex(bytes: &[u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses what [`to_hex`] wrote.
pub fn from_hex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}
