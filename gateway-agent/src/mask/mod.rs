//! Secret masking for everything that flows back to an MCP caller.
//!
//! Detectors, all driven by one keyword pass per string:
//! - by key: a string held under a sensitive JSON key (`password`, `apiKey`,
//!   `DB_PASSWORD`, `smtp_pass`…, see [`keys`]) is replaced whole;
//! - by format: a known credential format inside any string (see [`rules`]) is replaced,
//!   and only it;
//! - by context: a value assigned to a sensitive name in the formats tools print (dotenv,
//!   YAML, flags, headers, XML, name/value pairs: [`assign`]) or held in a table column
//!   whose header names a secret ([`table`]);
//! - encoded: base64, hex and URL-encoded runs that hide one of the above ([`decode`]).
//!
//! Values that are no secret (code, references, placeholders: [`values`]) are left alone.
//! Strings that hold JSON — MCP tools often return their result serialised into a `text`
//! block — are masked as JSON, so a credential in there is caught by key too; a block
//! that is byte for byte a container masked already (its `structuredContent`) is given
//! that container's outcome rather than parsed and walked again (`json/reuse.rs`).
//!
//! Masking must not break a strict client ([`json`]): JSON is masked as text, so nothing
//! but the masked values changes (key order, whitespace, escapes stay the server's); a
//! masked value keeps its JSON type (containers under a sensitive key are entered, not
//! replaced; numbers and booleans are kept); JSON Schemas (`inputSchema`, `outputSchema`,
//! `requestedSchema`) are structure, so a property named `password` stays a schema.
//!
//! Masking works on decoded values: JSON `\uXXXX` escapes are resolved by the parser
//! before any rule looks, so `"\u0041KIA…"` cannot slip past a rule that looks for `AKIA`.
//!
//! A placeholder names the rule and nothing else (`[MASKED:github_pat]`): never the
//! secret, a prefix of it, or its length. No rule matches a placeholder, so masking a
//! masked document changes nothing.
//!
//! Speed: a Unicode regex set runs at under 1 MB/s, a bytes regex with Unicode off at
//! GB/s. So keywords are found first and only the rules they point to run their byte
//! regexes. Keywords are found in stages ([`scan`]): a trigram pass reads each string
//! once and checks its hits in place against the keywords entered under them
//! ([`trigram`]); the encoded spellings are searched by an Aho-Corasick automaton only
//! inside runs long enough to decode; `%` and `\` are flagged by the same loads. A string without a keyword is left as it is and nothing is
//! allocated for it. The differential tests hold this to the single whole-string pass.

mod assign;
mod decode;
mod hexgate;
mod json;
mod keys;
mod rules;
mod scan;
pub mod seam;
mod table;
mod trigram;
pub mod values;

use std::{borrow::Cow, collections::BTreeMap};

use serde::Deserialize;
use serde_json::Value;

pub use self::json::{Doc, Edits, Kind as JsonKind, NodeId, ParseError, apply_sorted};
use self::{
    json::Walker,
    keys::SensitiveKeys,
    scan::{Path, Scanner},
};

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
    /// Hold each SSE notification back until the next message arrives (at most the
    /// configured wait), to mask a secret split across the two ([`seam`]). Off by
    /// default; a server's own `mask.stream_holdback` overrides it.
    pub stream_holdback: Option<seam::StreamHoldback>,
}

impl Default for MaskConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            keys: Vec::new(),
            entropy: false,
            stream_holdback: None,
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
    #[error("mask keyword {0:?} is not 2 to 255 bytes long, as the trigram stage needs")]
    KeywordLength(String),
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
    /// Unique in the process: answers about keys kept between documents
    /// ([`json::keyfacts`]) are valid only for the rules that gave them.
    id: u64,
}

/// Source of [`Rules::id`].
static NEXT_RULES_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl Masker {
    pub fn new(config: &MaskConfig) -> Result<Self, MaskError> {
        Ok(Self {
            enabled: config.enabled,
            rules: std::sync::Arc::new(Rules {
                keys: SensitiveKeys::new(&config.keys).map_err(MaskError::EmptyKey)?,
                scanner: Scanner::new(config.entropy)?,
                id: NEXT_RULES_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
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

    /// Masks a parsed value in place; everything inside `value` (objects, arrays,
    /// strings, JSON inside strings) is inspected. For records and tests: traffic is masked
    /// as text ([`Masker::mask_json`]), which keeps the server's formatting.
    pub fn mask_value(&self, value: &mut Value) -> MaskReport {
        let text = value.to_string();
        match self.mask_json(&text) {
            Ok((Cow::Owned(masked), report)) => {
                // The edits keep the text JSON; if that ever failed, release nothing.
                *value = serde_json::from_str(&masked)
                    .unwrap_or_else(|_| Value::String(DEPTH_PLACEHOLDER.to_owned()));
                report
            }
            Ok((Cow::Borrowed(_), report)) => report,
            Err(_) => {
                *value = Value::String(DEPTH_PLACEHOLDER.to_owned());
                let mut report = MaskReport::default();
                report.hit("too_deep");
                report
            }
        }
    }

    /// Masks a JSON text, changing nothing but the masked values (key order, whitespace
    /// and escapes stay the server's). Borrowed when nothing was found.
    pub fn mask_json<'a>(&self, text: &'a str) -> Result<(Cow<'a, str>, MaskReport), ParseError> {
        self.mask_json_by(text, Path::Staged)
    }

    fn mask_json_by<'a>(
        &self,
        text: &'a str,
        path: Path,
    ) -> Result<(Cow<'a, str>, MaskReport), ParseError> {
        let doc = Doc::parse(text, MAX_DEPTH)?;
        let mut edits = Edits::default();
        let report = self.walk(&doc, doc.root(), &[], &mut edits, path);
        if edits.is_empty() {
            Ok((Cow::Borrowed(text), report))
        } else {
            Ok((Cow::Owned(edits.apply(text)), report))
        }
    }

    /// Masks one value of a parsed document, adding its replacements to `edits`.
    pub fn mask_node(&self, doc: &Doc<'_>, node: NodeId, edits: &mut Edits) -> MaskReport {
        self.mask_members(doc, node, &[], edits)
    }

    /// [`Masker::mask_node`], leaving an object's members named in `skip` untouched
    /// (protocol fields such as a JSON-RPC `id`).
    pub fn mask_members(
        &self,
        doc: &Doc<'_>,
        node: NodeId,
        skip: &[&str],
        edits: &mut Edits,
    ) -> MaskReport {
        self.walk(doc, node, skip, edits, Path::Staged)
    }

    fn walk(
        &self,
        doc: &Doc<'_>,
        node: NodeId,
        skip: &[&str],
        edits: &mut Edits,
        path: Path,
    ) -> MaskReport {
        let mut report = MaskReport::default();
        if self.enabled {
            let mut walker = Walker::new(&self.rules, &mut report, path);
            walker.data_members(doc, node, skip, 0, edits);
            walker.finish();
        }
        report
    }

    /// Masking of a text that is not known to be JSON (a body serde_json refused, a log
    /// line). Borrowed when nothing was found: the clean path does not allocate.
    ///
    /// Text that serde_json refuses but that is JSON by RFC 8259's grammar (a lone
    /// surrogate escape such as `"\ud800"`, a number beyond `f64` such as `1e400`) is
    /// masked as JSON, by key too: the gateway hands such a body here because it could
    /// not parse it, yet lenient clients (JavaScript's `JSON.parse`, Python's `json`)
    /// read it, so it must not be released with pattern masking only. Other text gets
    /// pattern masking; call [`Masker::mask_json`] on JSON.
    pub fn mask_text<'a>(&self, text: &'a str) -> (Cow<'a, str>, MaskReport) {
        self.mask_text_by(text, Path::Staged)
    }

    fn mask_text_by<'a>(&self, text: &'a str, path: Path) -> (Cow<'a, str>, MaskReport) {
        let mut report = MaskReport::default();
        if !self.enabled {
            return (Cow::Borrowed(text), report);
        }
        if text.trim_start().starts_with(['{', '['])
            && serde_json::from_str::<Value>(text).is_err()
            && let Ok(masked) = self.mask_json_by(text, path)
        {
            return masked;
        }
        let masked = self.rules.scanner.mask_by(text, &mut report, path);
        (masked, report)
    }

    /// [`Masker::mask_json`] by the single whole-string keyword pass the staged search
    /// replaced, for the differential tests.
    #[cfg(test)]
    fn mask_json_reference<'a>(
        &self,
        text: &'a str,
    ) -> Result<(Cow<'a, str>, MaskReport), ParseError> {
        self.mask_json_by(text, Path::Reference)
    }

    /// [`Masker::mask_text`] by the reference keyword pass.
    #[cfg(test)]
    fn mask_text_reference<'a>(&self, text: &'a str) -> (Cow<'a, str>, MaskReport) {
        self.mask_text_by(text, Path::Reference)
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
