//! What the walk asks of an object key, worked out once per distinct key of a document.
//!
//! Listings repeat the same few keys in every record (`id`, `title`, `max_tokens`), and
//! each member costs the walk several questions about its key: is it sensitive (a word
//! split and a suffix search for keys such as `max_tokens` that end like a secret's
//! name), does it name a field of a name/value pair, a schema member, a schema's shape.
//! The answers depend on the key alone, so short unescaped keys are looked up in a small
//! direct-mapped table by their raw bytes; the rest are answered afresh.
//!
//! The table outlives its document: each thread keeps the last one it used
//! ([`KeyTable::for_rules`], [`KeyTable::keep`]), tagged with the rules it answered for.
//! Small MCP messages are mostly the same keys (`jsonrpc`, `id`, `result`, `content`,
//! `type`, `text`), and building a table (4 KiB) and answering them afresh per message
//! was most of the walk's cost for them.

use std::cell::Cell;

use super::{Rules, key::NormKey, schema, terraform};

/// The longest raw key kept in the table (longer ones are rare and answered afresh).
const MAX_CACHED: usize = 16;
/// Table slots (a power of two), in pairs.
const SLOTS: usize = 128;

/// The answers about one key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct KeyFacts {
    /// Its value is a secret ([`crate::mask::keys`]).
    pub sensitive: bool,
    /// Its last word is too general alone (`SENDGRID_KEY`, `tokens`): its value is a
    /// secret if it looks generated ([`crate::mask::keys::SensitiveKeys::is_weak`]).
    pub weak: bool,
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
    /// `sensitive_attributes` / `sensitive_values`: Terraform's own marks.
    TerraformMarks,
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
                | b"variable" | b"label" => Field::Name,
                b"type" => Field::Type,
                b"sensitive" => Field::Sensitive,
                b"kty" => Field::Kty,
                b"kind" => Field::Kind,
                _ => Field::Other,
            }
        };
        let sensitive = rules.keys.is_sensitive(key);
        Self {
            sensitive,
            weak: !sensitive && rules.keys.is_weak(key),
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
                key if terraform::is_marker(key) => Shape::TerraformMarks,
                _ => Shape::Other,
            },
        }
    }
}

/// A direct-mapped table from raw key bytes to their answers.
pub(super) struct KeyTable {
    slots: Box<[Slot; SLOTS]>,
    /// The [`Rules`] the answers are for.
    rules: u64,
}

thread_local! {
    /// The table this thread's last walk used.
    static KEPT: Cell<Option<KeyTable>> = const { Cell::new(None) };
}

#[derive(Clone, Copy)]
struct Slot {
    /// The key as [`packed`] words; `len` is `u8::MAX` while the slot is empty.
    words: [u64; 2],
    len: u8,
    facts: KeyFacts,
}

/// A key of at most [`MAX_CACHED`] bytes as two words that, with its length, determine
/// it: its first and its last eight bytes, which overlap for shorter keys (first and last
/// four, or first, middle and last byte). Loads from the key itself, no copy.
fn packed(key: &[u8]) -> [u64; 2] {
    let len = key.len();
    let word = |at: usize| u64::from_le_bytes(key[at..at + 8].try_into().unwrap_or_default());
    let half = |at: usize| {
        u64::from(u32::from_le_bytes(
            key[at..at + 4].try_into().unwrap_or_default(),
        ))
    };
    match len {
        8.. => [word(0), word(len - 8)],
        4..=7 => [half(0), half(len - 4)],
        1..=3 => [
            u64::from(key[0]) | u64::from(key[len / 2]) << 8,
            u64::from(key[len - 1]),
        ],
        0 => [0, 0],
    }
}

impl KeyTable {
    fn new(rules: u64) -> Self {
        Self {
            slots: Box::new(
                [Slot {
                    words: [0; 2],
                    len: u8::MAX,
                    facts: KeyFacts::default(),
                }; SLOTS],
            ),
            rules,
        }
    }

    /// This thread's kept table if it answered for `rules`, else a new one. Two walks at
    /// once on one thread (one nested in the other) each get a table of their own; the
    /// last to end is kept.
    pub fn for_rules(rules: &Rules) -> Self {
        match KEPT.take() {
            Some(table) if table.rules == rules.id => table,
            _ => Self::new(rules.id),
        }
    }

    /// Keeps `table` for this thread's next walk.
    pub fn keep(table: Self) {
        KEPT.set(Some(table));
    }

    /// The answers for a key whose raw inside (between the quotes) is `raw`, holding
    /// `\` escapes if `escaped`.
    pub fn facts(&mut self, rules: &Rules, raw: &str, escaped: bool) -> KeyFacts {
        if escaped || raw.len() > MAX_CACHED {
            return KeyFacts::of(rules, &super::string::decode(raw, escaped));
        }
        let words = packed(raw.as_bytes());
        let len = raw.len() as u8;
        let mixed = words[0] ^ words[1].rotate_left(29) ^ u64::from(len) << 56;
        let index =
            (mixed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - SLOTS.trailing_zeros())) as usize;
        // Two ways: the slot and its neighbour, so that two keys of every record that
        // share a slot do not evict each other.
        for way in [index, index ^ 1] {
            let slot = &self.slots[way];
            if slot.len == len && slot.words == words {
                return slot.facts;
            }
        }
        let facts = KeyFacts::of(rules, raw);
        // The newest entry of the pair takes the first way, the one it displaces the
        // other (evicting the oldest).
        if self.slots[index].len != u8::MAX {
            self.slots[index ^ 1] = self.slots[index];
        }
        self.slots[index] = Slot { words, len, facts };
        facts
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{MAX_CACHED, packed};

    proptest! {
        /// A key differing from another of its length in any one byte has other words.
        #[test]
        fn packed_words_tell_keys_apart(
            key in "[a-zA-Z_]{1,16}",
            at in any::<prop::sample::Index>(),
            byte in b'a'..=b'z',
        ) {
            let mut other = key.clone().into_bytes();
            let at = at.index(other.len());
            prop_assume!(other[at] != byte);
            other[at] = byte;
            prop_assert!(key.len() <= MAX_CACHED);
            prop_assert_ne!(packed(key.as_bytes()), packed(&other));
        }
    }
}
