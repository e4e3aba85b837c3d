//! What the walk asks of an object key, worked out once per distinct key of a document.
//!
//! Listings repeat the same few keys in every record (`id`, `title`, `max_tokens`), and
//! each member costs the walk several questions about its key: is it sensitive (a word
//! split and a suffix search for keys such as `max_tokens` that end like a secret's
//! name), does it name a field of a name/value pair, a schema member, a schema's shape.
//! The answers depend on the key alone, so short unescaped keys are looked up in a small
//! direct-mapped table by their raw bytes; the rest are answered afresh.

use super::{Rules, key::NormKey, schema};

/// The longest raw key kept in the table (longer ones are rare and answered afresh).
const MAX_CACHED: usize = 24;
/// Table slots (a power of two).
const SLOTS: usize = 64;

/// The answers about one key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct KeyFacts {
    /// Its value is a secret ([`crate::mask::keys`]).
    pub sensitive: bool,
    /// Ends in `a` and normalises to a `…schema` name: its value may be a schema.
    pub schema_member: bool,
    /// What it names in an object that may be a name/value pair, a JWK, a Secret.
    pub field: Field,
    /// What it says about an object that may be a JSON Schema.
    pub shape: Shape,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) enum Field {
    #[default]
    Other,
    /// `value`, `parameterValue`, `OutputValue`, `secret_value`.
    Value,
    /// `name`, `key`, `ParameterName`, `variable`…: holds the name of the pair.
    Name,
    /// `type` (an SSM `SecureString`).
    Type,
    /// `sensitive` (a Terraform output).
    Sensitive,
    /// `kty` (a JWK).
    Kty,
    /// `kind` (a Kubernetes object).
    Kind,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) enum Shape {
    #[default]
    Other,
    DollarSchema,
    Type,
    Properties,
}

/// The longest raw key that can name a field (`Parameter_Value` and the like, with
/// separators).
const MAX_FIELD_KEY: usize = 16;

impl KeyFacts {
    /// The answers for the decoded key `key`.
    pub fn of(rules: &Rules, key: &str) -> Self {
        let field = if key.len() > MAX_FIELD_KEY {
            Field::Other
        } else {
            match NormKey::new(key).bytes() {
                b"value" | b"parametervalue" | b"outputvalue" | b"secretvalue" => Field::Value,
                b"name" | b"key" | b"parametername" | b"parameterkey" | b"outputkey"
                | b"variable" => Field::Name,
                b"type" => Field::Type,
                b"sensitive" => Field::Sensitive,
                b"kty" => Field::Kty,
                b"kind" => Field::Kind,
                _ => Field::Other,
            }
        };
        Self {
            sensitive: rules.keys.is_sensitive(key),
            schema_member: key
                .as_bytes()
                .last()
                .is_some_and(|b| b.eq_ignore_ascii_case(&b'a'))
                && schema::is_schema_key(&NormKey::new(key)),
            field,
            shape: match key {
                "$schema" => Shape::DollarSchema,
                "type" => Shape::Type,
                "properties" => Shape::Properties,
                _ => Shape::Other,
            },
        }
    }
}

/// A direct-mapped table from raw key bytes to their answers.
pub(super) struct KeyTable {
    slots: Box<[Slot; SLOTS]>,
}

#[derive(Clone, Copy)]
struct Slot {
    /// The key's bytes, zero-padded; `len` is `u8::MAX` while the slot is empty.
    bytes: [u64; MAX_CACHED / 8],
    len: u8,
    facts: KeyFacts,
}

impl KeyTable {
    pub fn new() -> Self {
        Self {
            slots: Box::new(
                [Slot {
                    bytes: [0; MAX_CACHED / 8],
                    len: u8::MAX,
                    facts: KeyFacts::default(),
                }; SLOTS],
            ),
        }
    }

    /// The answers for a key whose raw inside (between the quotes) is `raw`, holding
    /// `\` escapes if `escaped`.
    pub fn facts(&mut self, rules: &Rules, raw: &str, escaped: bool) -> KeyFacts {
        if escaped || raw.len() > MAX_CACHED {
            return KeyFacts::of(rules, &super::string::decode(raw, escaped));
        }
        let mut padded = [0u8; MAX_CACHED];
        padded[..raw.len()].copy_from_slice(raw.as_bytes());
        let mut bytes = [0u64; MAX_CACHED / 8];
        for (word, chunk) in bytes.iter_mut().zip(padded.chunks_exact(8)) {
            *word = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        }
        let len = raw.len() as u8;
        let mixed = bytes[0] ^ bytes[1].rotate_left(21) ^ bytes[2].rotate_left(42) ^ u64::from(len);
        let slot = &mut self.slots
            [(mixed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - SLOTS.trailing_zeros())) as usize];
        if slot.len != len || slot.bytes != bytes {
            *slot = Slot {
                bytes,
                len,
                facts: KeyFacts::of(rules, raw),
            };
        }
        slot.facts
    }
}
