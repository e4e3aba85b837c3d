//! Secret masking for everything that flows back to an MCP caller.
//!
//! Two detectors. By key: a value held under a sensitive JSON key (`password`, `apiKey`,
//! `DB_PASSWORD`…, see [`keys`]) is replaced whole. By pattern: a known credential format
//! inside any string (see [`rules`]) is replaced, and only it. Strings that hold JSON —
//! MCP tools often return their result serialised into a `text` block — are parsed and
//! masked as JSON, so a credential in there is caught by key too.
//!
//! Masking works on decoded values: JSON `\uXXXX` escapes are resolved by the parser
//! before any rule looks, so `"\u0041KIA…"` cannot slip past a rule that looks for `AKIA`.
//!
//! A placeholder names the rule and nothing else (`[MASKED:github_pat]`): never the
//! secret, a prefix of it, or its length. No rule matches a placeholder, so masking a
//! masked document changes nothing.
//!
//! Speed (see shared/PERF-NOTES.md): one ASCII case-insensitive Aho-Corasick pass per
//! string finds the keywords present; only the rules those keywords point to run their
//! byte regexes, compiled with Unicode off. A string without a keyword is left as it is
//! and nothing is allocated for it.

mod assign;
mod decode;
mod keys;
mod rules;
mod scan;
mod table;
pub mod values;

use std::{borrow::Cow, collections::BTreeMap};

use serde::Deserialize;
use serde_json::Value;

use self::{keys::SensitiveKeys, scan::Scanner};

/// What replaces a value held under a sensitive key.
pub const KEY_PLACEHOLDER: &str = "[MASKED:json_key]";
/// What replaces a subtree nested deeper than [`MAX_DEPTH`]: it was not inspected, so it
/// is not released (fail closed).
pub const DEPTH_PLACEHOLDER: &str = "[MASKED:too_deep]";
/// JSON nesting the masker follows, counting JSON inside strings as nesting too. Equal
/// to serde_json's own parse limit, so any document the gateway could parse is inspected
/// whole unless a string inside it nests further.
pub const MAX_DEPTH: usize = 128;
/// Object keys at least this long are pattern-scanned as well as checked by name.
const MIN_SCANNED_KEY: usize = 16;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MaskConfig {
    /// Mask secrets in everything returned to MCP clients (on by default). Turning it off
    /// releases tool output exactly as servers send it.
    pub enabled: bool,
    /// More JSON key names whose values are always masked, in addition to the built-in
    /// list. Matched like the built-ins: case and separators are ignored, so `X-Vendor-Auth`
    /// also covers `x_vendor_auth` and `xVendorAuth`.
    pub keys: Vec<String>,
    /// Also mask long random-looking tokens of no known format (32+ characters mixing
    /// upper, lower and digits). Off by default: it costs a regex scan of every string
    /// and also masks random identifiers and base64 data.
    pub entropy: bool,
}

impl Default for MaskConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            keys: Vec::new(),
            entropy: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MaskError {
    #[error("built-in mask rule {rule} does not compile: {source}")]
    Rule {
        rule: &'static str,
        source: Box<regex::Error>,
    },
    #[error("mask keyword prefilter cannot be built: {0}")]
    Prefilter(#[from] aho_corasick::BuildError),
    #[error("{0} built-in mask rules; at most 256 fit the per-string candidate set")]
    TooManyRules(usize),
    #[error("mask.keys: {0:?} has no letters or digits, so it would match no key")]
    EmptyKey(String),
}

/// What masking found, for logs and audit: rule names and counts, never values.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MaskReport {
    /// Values or spans replaced.
    pub masked: usize,
    /// Replacements per rule name (`json_key` for key hits, `too_deep` for the depth
    /// limit, else the pattern rule's name).
    pub rules: BTreeMap<&'static str, usize>,
}

impl MaskReport {
    pub fn merge(&mut self, other: &MaskReport) {
        self.masked += other.masked;
        for (rule, count) in &other.rules {
            *self.rules.entry(rule).or_default() += count;
        }
    }

    pub fn rule_names(&self) -> Vec<&'static str> {
        self.rules.keys().copied().collect()
    }

    fn hit(&mut self, rule: &'static str) {
        self.masked += 1;
        *self.rules.entry(rule).or_default() += 1;
    }
}

/// Built once from [`MaskConfig`] and shared (`Arc<Masker>`); masking needs `&self` only.
pub struct Masker {
    enabled: bool,
    rules: std::sync::Arc<Rules>,
}

/// The compiled keys and patterns, shared by a masker and its disabled twin.
struct Rules {
    keys: SensitiveKeys,
    scanner: Scanner,
}

impl Masker {
    pub fn new(config: &MaskConfig) -> Result<Self, MaskError> {
        Ok(Self {
            enabled: config.enabled,
            rules: std::sync::Arc::new(Rules {
                keys: SensitiveKeys::new(&config.keys).map_err(MaskError::EmptyKey)?,
                scanner: Scanner::new(config.entropy)?,
            }),
        })
    }

    /// A masker that masks nothing, for traffic a policy rule exempts (`mask = "none"`);
    /// it shares this one's compiled rules instead of compiling them again.
    pub fn disabled_twin(&self) -> Self {
        Self {
            enabled: false,
            rules: std::sync::Arc::clone(&self.rules),
        }
    }

    /// Number of pattern rules (without the optional entropy rule).
    pub fn rule_count(&self) -> usize {
        self.rules.scanner.rule_count()
    }

    /// Masks in place; everything inside `value` (objects, arrays, strings, JSON inside
    /// strings) is inspected.
    pub fn mask_value(&self, value: &mut Value) -> MaskReport {
        let mut report = MaskReport::default();
        if self.enabled {
            self.mask_node(value, 0, &mut report);
        }
        report
    }

    /// Pattern masking of free text (a non-JSON body, a log line). Borrowed when nothing
    /// was found: the clean path does not allocate. Text is not parsed as JSON here; call
    /// [`Masker::mask_value`] on parsed JSON to get key masking.
    pub fn mask_text<'a>(&self, text: &'a str) -> (Cow<'a, str>, MaskReport) {
        let mut report = MaskReport::default();
        if !self.enabled {
            return (Cow::Borrowed(text), report);
        }
        let masked = self.rules.scanner.mask(text, &mut report);
        (masked, report)
    }

    fn mask_node(&self, value: &mut Value, depth: usize, report: &mut MaskReport) {
        if depth >= MAX_DEPTH {
            if !matches!(value, Value::String(s) if s == DEPTH_PLACEHOLDER) {
                *value = Value::String(DEPTH_PLACEHOLDER.to_owned());
                report.hit("too_deep");
            }
            return;
        }
        match value {
            Value::Object(object) => {
                let mut renamed = Vec::new();
                for (key, child) in object.iter_mut() {
                    if self.rules.keys.is_sensitive(key) {
                        redact(child, report);
                    } else {
                        self.mask_node(child, depth + 1, report);
                    }
                    // Maps keyed by credential (`{"ghp_…": {"scopes": …}}`) exist too. Keys
                    // under 16 bytes are not scanned: every issued-token format is longer,
                    // and nearly every key is a short identifier (this keeps the walk fast).
                    if key.len() >= MIN_SCANNED_KEY
                        && let Cow::Owned(masked) = self.rules.scanner.mask(key, report)
                    {
                        renamed.push((key.clone(), masked));
                    }
                }
                for (old, mut new) in renamed {
                    if let Some(child) = object.remove(&old) {
                        // Two keys masked alike must not overwrite each other.
                        let base = new.clone();
                        let mut n = 1;
                        while object.contains_key(&new) {
                            n += 1;
                            new = format!("{base}#{n}");
                        }
                        object.insert(new, child);
                    }
                }
            }
            Value::Array(items) => {
                for item in items {
                    self.mask_node(item, depth + 1, report);
                }
            }
            Value::String(text) => {
                if let Some(masked) = self.mask_string(text, depth, report) {
                    *text = masked;
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    /// A string's masked replacement, or `None` if it holds nothing secret.
    fn mask_string(&self, text: &str, depth: usize, report: &mut MaskReport) -> Option<String> {
        let trimmed = text.trim_start();
        if trimmed.starts_with('{') || trimmed.starts_with('[') {
            // Always parsed, not first scanned for keywords: real tool output nearly
            // always holds some key fragment ("author", "monkey"), so a scan would rarely
            // spare the parse, and the parse resolves escapes (`\u0041KIA`, `https:\/\/`)
            // that hide keywords from a scan of the raw text.
            match serde_json::from_str::<Value>(text) {
                Ok(mut inner) => {
                    let mut found = MaskReport::default();
                    self.mask_node(&mut inner, depth + 1, &mut found);
                    if found.masked == 0 {
                        return None; // left byte-identical
                    }
                    report.merge(&found);
                    // Keep the author's layout where we can: pretty in, pretty out.
                    let out = if text.contains('\n') {
                        serde_json::to_string_pretty(&inner)
                    } else {
                        serde_json::to_string(&inner)
                    };
                    // Serialising a Value cannot fail; if it ever did, release nothing.
                    return Some(out.unwrap_or_else(|_| DEPTH_PLACEHOLDER.to_owned()));
                }
                // serde_json stops at 128 levels: JSON nested deeper than it will parse
                // is withheld rather than scanned as text, where keys would be missed.
                Err(err) if too_deep(text, &err) => {
                    report.hit("too_deep");
                    return Some(DEPTH_PLACEHOLDER.to_owned());
                }
                Err(_) => {} // not JSON after all: free text
            }
        }
        match self.rules.scanner.mask(text, report) {
            Cow::Owned(masked) => Some(masked),
            Cow::Borrowed(_) => None,
        }
    }
}

/// Did serde_json give up on `text` for nesting too deep? Its error has no category for
/// that, so the message is checked — only when the text could nest that deep at all, so
/// ordinary non-JSON text (`[INFO] …`) formats no message.
fn too_deep(text: &str, err: &serde_json::Error) -> bool {
    let openers = text.bytes().filter(|b| matches!(b, b'[' | b'{')).count();
    openers >= MAX_DEPTH && err.to_string().starts_with("recursion limit exceeded")
}

/// Replaces a sensitive key's value, scalar or whole subtree, with [`KEY_PLACEHOLDER`].
/// Values that carry no secret are kept so clients still see their shape: `null`,
/// booleans (`"has_password": true`), `""`, `[]` and `{}`. An existing placeholder is
/// kept, so masking twice changes nothing.
fn redact(value: &mut Value, report: &mut MaskReport) {
    let keep = match value {
        Value::Null | Value::Bool(_) => true,
        Value::String(s) => s.is_empty() || is_placeholder(s.as_bytes()),
        Value::Array(items) => items.is_empty(),
        Value::Object(object) => object.is_empty(),
        Value::Number(_) => false,
    };
    if !keep {
        *value = Value::String(KEY_PLACEHOLDER.to_owned());
        report.hit("json_key");
    }
}

/// Exactly one placeholder, `[MASKED:` + rule name + `]`. Only an exact match counts:
/// a secret that merely starts with a placeholder-looking prefix is still masked.
fn is_placeholder(text: &[u8]) -> bool {
    text.strip_prefix(b"[MASKED:")
        .and_then(|rest| rest.strip_suffix(b"]"))
        .is_some_and(|name| {
            !name.is_empty()
                && name
                    .iter()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
        })
}

#[cfg(test)]
mod tests;
