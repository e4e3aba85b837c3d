//! Secret masking for everything that flows back to an MCP caller.
//!
//! Two detectors: sensitive JSON keys (the whole value goes), and known secret formats
//! inside any string (only the secret goes). Strings that hold JSON are parsed and masked
//! as JSON, so a credential inside a tool's text-serialised result is caught by key too.
//! Masking works on decoded values — JSON `\uXXXX` escapes are already resolved by the
//! parser, so `"\u0041KIA…"` cannot slip past a pattern that looks for `AKIA`.
//!
//! A placeholder names the rule and nothing else (`[MASKED:github_pat]`): never the
//! secret, a prefix of it, or its length. Placeholders match no rule, so masking twice
//! changes nothing.
//!
//! Speed (see shared/PERF-NOTES.md): one ASCII case-insensitive Aho-Corasick pass finds
//! the keywords present in a string; only the rules those keywords point to run their
//! byte regexes, compiled with Unicode off. Clean strings allocate nothing.

mod keys;
mod rules;

use std::{borrow::Cow, collections::BTreeMap};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::bytes::{Regex, RegexBuilder};
use serde::Deserialize;
use serde_json::Value;

use self::{
    keys::SensitiveKeys,
    rules::{ENTROPY_RULE, ENTROPY_THRESHOLD, RULES, Rule},
};

/// What replaces a value held under a sensitive key.
pub const KEY_PLACEHOLDER: &str = "[MASKED:json_key]";
/// What replaces a subtree nested deeper than [`MAX_DEPTH`]: it cannot be inspected, so
/// it is not released (fail closed).
pub const DEPTH_PLACEHOLDER: &str = "[MASKED:too_deep]";
/// JSON nesting the masker follows (JSON inside strings counts as nesting too).
pub const MAX_DEPTH: usize = 128;
const PLACEHOLDER_PREFIX: &[u8] = b"[MASKED:";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MaskConfig {
    /// Mask secrets in responses (on by default). Off only for debugging.
    pub enabled: bool,
    /// More JSON key names to treat as secret, in any spelling (`vendorAuth`,
    /// `VENDOR_AUTH`…), in addition to the built-in list.
    pub keys: Vec<String>,
    /// Also mask long high-entropy tokens of no known format (costs a regex scan of every
    /// string; may catch random ids).
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
    #[error("mask rule {rule}: {source}")]
    Rule {
        rule: &'static str,
        source: Box<regex::Error>,
    },
    #[error("mask keyword prefilter: {0}")]
    Prefilter(#[from] aho_corasick::BuildError),
}

/// What masking found, for logs and audit (rule names and counts, never values).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MaskReport {
    /// Values or spans replaced.
    pub masked: usize,
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

struct Compiled {
    name: &'static str,
    regex: Regex,
}

pub struct Masker {
    enabled: bool,
    keys: SensitiveKeys,
    rules: Vec<Compiled>,
    prefilter: AhoCorasick,
    /// For each prefilter pattern, the rule it belongs to.
    keyword_rule: Vec<usize>,
    entropy: Option<Compiled>,
}

impl Masker {
    pub fn new(config: &MaskConfig) -> Result<Self, MaskError> {
        let compile = |rule: &Rule| {
            RegexBuilder::new(rule.pattern)
                .unicode(false)
                .build()
                .map(|regex| Compiled {
                    name: rule.name,
                    regex,
                })
                .map_err(|source| MaskError::Rule {
                    rule: rule.name,
                    source: Box::new(source),
                })
        };
        let rules = RULES.iter().map(compile).collect::<Result<Vec<_>, _>>()?;
        let (keywords, keyword_rule): (Vec<&str>, Vec<usize>) = RULES
            .iter()
            .enumerate()
            .flat_map(|(index, rule)| rule.keywords.iter().map(move |kw| (*kw, index)))
            .unzip();
        let prefilter = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(&keywords)?;
        let entropy = config.entropy.then(|| compile(&ENTROPY_RULE)).transpose()?;
        Ok(Self {
            enabled: config.enabled,
            keys: SensitiveKeys::new(&config.keys),
            rules,
            prefilter,
            keyword_rule,
            entropy,
        })
    }

    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// Masks in place; everything inside `value` is inspected.
    pub fn mask_value(&self, value: &mut Value) -> MaskReport {
        let mut report = MaskReport::default();
        if self.enabled {
            self.mask_node(value, 0, &mut report);
        }
        report
    }

    /// Pattern masking of free text. Borrowed when nothing was found.
    pub fn mask_text<'a>(&self, text: &'a str) -> (Cow<'a, str>, MaskReport) {
        let mut report = MaskReport::default();
        if !self.enabled {
            return (Cow::Borrowed(text), report);
        }
        let masked = self.mask_patterns(text, &mut report);
        (masked, report)
    }

    fn mask_node(&self, value: &mut Value, depth: usize, report: &mut MaskReport) {
        if depth >= MAX_DEPTH {
            *value = Value::String(DEPTH_PLACEHOLDER.to_owned());
            report.hit("too_deep");
            return;
        }
        match value {
            Value::Object(object) => {
                for (key, child) in object.iter_mut() {
                    if self.keys.is_sensitive(key) {
                        self.mask_all_leaves(child, depth + 1, report);
                    } else {
                        self.mask_node(child, depth + 1, report);
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

    /// Under a sensitive key every scalar goes, but the shape stays (clients validate
    /// structured content against a schema).
    fn mask_all_leaves(&self, value: &mut Value, depth: usize, report: &mut MaskReport) {
        if depth >= MAX_DEPTH {
            *value = Value::String(DEPTH_PLACEHOLDER.to_owned());
            report.hit("too_deep");
            return;
        }
        match value {
            Value::Object(object) => {
                for child in object.values_mut() {
                    self.mask_all_leaves(child, depth + 1, report);
                }
            }
            Value::Array(items) => {
                for item in items {
                    self.mask_all_leaves(item, depth + 1, report);
                }
            }
            // Nothing to hide in an absent value; an already-masked one stays as it is.
            Value::Null => {}
            Value::String(text) if text.is_empty() || text.starts_with("[MASKED:") => {}
            scalar => {
                *scalar = Value::String(KEY_PLACEHOLDER.to_owned());
                report.hit("json_key");
            }
        }
    }

    /// A string's masked replacement, or `None` if it holds nothing secret.
    fn mask_string(&self, text: &str, depth: usize, report: &mut MaskReport) -> Option<String> {
        let trimmed = text.trim_start();
        if (trimmed.starts_with('{') || trimmed.starts_with('['))
            && let Ok(mut inner) = serde_json::from_str::<Value>(text)
        {
            let mut inner_report = MaskReport::default();
            self.mask_node(&mut inner, depth + 1, &mut inner_report);
            if inner_report.masked == 0 {
                return None;
            }
            report.merge(&inner_report);
            // Keep the author's layout where we can: pretty in, pretty out.
            let pretty = text.contains('\n');
            let out = if pretty {
                serde_json::to_string_pretty(&inner)
            } else {
                serde_json::to_string(&inner)
            };
            return out.ok();
        }
        match self.mask_patterns(text, report) {
            Cow::Owned(masked) => Some(masked),
            Cow::Borrowed(_) => None,
        }
    }

    fn mask_patterns<'a>(&self, text: &'a str, report: &mut MaskReport) -> Cow<'a, str> {
        let bytes = text.as_bytes();
        let mut candidates = [false; RULES.len()];
        let mut any = false;
        for hit in self.prefilter.find_overlapping_iter(bytes) {
            candidates[self.keyword_rule[hit.pattern().as_usize()]] = true;
            any = true;
        }
        if !any && self.entropy.is_none() {
            return Cow::Borrowed(text);
        }
        let mut spans: Vec<(usize, usize, &'static str)> = Vec::new();
        for (rule, _) in self.rules.iter().zip(candidates).filter(|(_, c)| *c) {
            collect_spans(&rule.regex, rule.name, bytes, &mut spans);
        }
        if let Some(entropy) = &self.entropy {
            for m in entropy.regex.find_iter(bytes) {
                if shannon_entropy(m.as_bytes()) >= ENTROPY_THRESHOLD && mixed_classes(m.as_bytes())
                {
                    spans.push((m.start(), m.end(), entropy.name));
                }
            }
        }
        if spans.is_empty() {
            return Cow::Borrowed(text);
        }
        spans.sort_by_key(|&(start, end, _)| (start, std::cmp::Reverse(end)));
        let mut out = String::with_capacity(text.len());
        let mut cursor = 0;
        for (mut start, mut end, name) in spans {
            // Byte regexes may stop inside a multi-byte character (a length cap reached
            // mid-character): widen to whole characters, masking a little more.
            while !text.is_char_boundary(start) {
                start -= 1;
            }
            while !text.is_char_boundary(end) {
                end += 1;
            }
            if start < cursor {
                continue; // inside a span already masked
            }
            out.push_str(&text[cursor..start]);
            out.push_str("[MASKED:");
            out.push_str(name);
            out.push(']');
            report.hit(name);
            cursor = end;
        }
        out.push_str(&text[cursor..]);
        Cow::Owned(out)
    }
}

/// Adds the spans `regex` finds: capture group 1 when the rule has one (mask the value,
/// keep its context), else the whole match. Already-masked values are skipped.
fn collect_spans(
    regex: &Regex,
    name: &'static str,
    bytes: &[u8],
    spans: &mut Vec<(usize, usize, &'static str)>,
) {
    for caps in regex.captures_iter(bytes) {
        let Some(span) = caps.get(1).or_else(|| caps.get(0)) else {
            continue;
        };
        if span.as_bytes().starts_with(PLACEHOLDER_PREFIX) || span.is_empty() {
            continue;
        }
        spans.push((span.start(), span.end(), name));
    }
}

fn shannon_entropy(bytes: &[u8]) -> f64 {
    let mut counts = [0usize; 256];
    for &b in bytes {
        counts[b as usize] += 1;
    }
    let len = bytes.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / len;
            -p * p.log2()
        })
        .sum()
}

/// Upper, lower and digit all present: rules out words, hex digests and numbers.
fn mixed_classes(bytes: &[u8]) -> bool {
    bytes.iter().any(u8::is_ascii_uppercase)
        && bytes.iter().any(u8::is_ascii_lowercase)
        && bytes.iter().any(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests;
