//! Pattern masking of one string: one keyword pass, then only the rules it points to.
//!
//! A string without any rule keyword costs one Aho-Corasick pass and nothing else: no
//! regex runs and nothing is allocated. A keyword that is a common word (`token` in
//! "max_tokens") costs one anchored regex attempt right after it, which fails within a
//! byte or two, still without allocating.

use std::{borrow::Cow, cmp::Reverse};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use regex::bytes::{Regex, RegexBuilder};

use super::{
    MaskError, MaskReport, is_placeholder,
    rules::{self, Anchor, ENTROPY_RULE, Rule},
};

/// Rules fit in a fixed bit set so that the per-string candidate set lives on the stack.
const MAX_RULES: usize = 256;

/// The rules worth running on one string.
#[derive(Default)]
struct Candidates {
    bits: [u64; MAX_RULES / 64],
    any: bool,
    /// Some [`Anchor::AfterKeyword`] rule matched: a second keyword pass finds where.
    anchored: bool,
}

impl Candidates {
    fn set(&mut self, rule: usize) {
        self.bits[rule / 64] |= 1 << (rule % 64);
        self.any = true;
    }

    fn has(&self, rule: usize) -> bool {
        self.bits[rule / 64] & (1 << (rule % 64)) != 0
    }
}

struct Compiled {
    /// Position in [`rules::all`]: among identical spans the earlier rule names it.
    rank: usize,
    name: &'static str,
    regex: Regex,
    anchor: Anchor,
}

pub struct Scanner {
    prefilter: AhoCorasick,
    /// For each prefilter pattern, the rule it belongs to.
    keyword_rule: Vec<usize>,
    rules: Vec<Compiled>,
    entropy: Option<Compiled>,
}

impl Scanner {
    pub fn new(entropy: bool) -> Result<Self, MaskError> {
        let rules = rules::all()
            .enumerate()
            .map(|(rank, rule)| compile(rank, rule))
            .collect::<Result<Vec<_>, _>>()?;
        if rules.len() > MAX_RULES {
            return Err(MaskError::TooManyRules(rules.len()));
        }
        let (keywords, keyword_rule): (Vec<&str>, Vec<usize>) = rules::all()
            .enumerate()
            .flat_map(|(index, rule)| rule.keywords.iter().map(move |kw| (*kw, index)))
            .unzip();
        // A DFA: some hundreds of KiB built once; the fastest of the automata on the hot
        // path (≈2.5× the contiguous NFA on English text here). Overlapping, because
        // keywords overlap (`token` inside `?access_token=`).
        let prefilter = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::DFA))
            .build(&keywords)?;
        Ok(Self {
            prefilter,
            keyword_rule,
            rules,
            entropy: entropy
                .then(|| compile(usize::MAX, &ENTROPY_RULE))
                .transpose()?,
        })
    }

    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// Replaces every secret the rules (and the entropy rule, when on) find in `text`.
    pub fn mask<'a>(&self, text: &'a str, report: &mut MaskReport) -> Cow<'a, str> {
        let bytes = text.as_bytes();
        let mut candidates = Candidates::default();
        for found in self.prefilter.find_overlapping_iter(bytes) {
            let index = self.keyword_rule[found.pattern().as_usize()];
            let rule = &self.rules[index];
            match rule.anchor {
                Anchor::Search => candidates.set(index),
                Anchor::AfterKeyword => {
                    if !candidates.has(index) && rule.regex.is_match(&bytes[found.end()..]) {
                        candidates.set(index);
                        candidates.anchored = true;
                    }
                }
            }
        }
        if !candidates.any && self.entropy.is_none() {
            return Cow::Borrowed(text);
        }
        let mut spans: Vec<Span> = Vec::new();
        for (index, rule) in self.rules.iter().enumerate() {
            // `is_match` first: it needs no capture slots, so a keyword without a secret
            // (the word "aws" in prose) still allocates nothing.
            if rule.anchor == Anchor::Search && candidates.has(index) && rule.regex.is_match(bytes)
            {
                collect(rule, text, 0, &mut spans);
            }
        }
        if candidates.anchored {
            for found in self.prefilter.find_overlapping_iter(bytes) {
                let index = self.keyword_rule[found.pattern().as_usize()];
                let rule = &self.rules[index];
                if rule.anchor == Anchor::AfterKeyword && candidates.has(index) {
                    collect(rule, text, found.end(), &mut spans);
                }
            }
        }
        if let Some(entropy) = &self.entropy {
            for found in entropy.regex.find_iter(bytes) {
                if rules::looks_random(found.as_bytes()) {
                    spans.push(Span::new(text, found.start(), found.end(), entropy));
                }
            }
        }
        if spans.is_empty() {
            return Cow::Borrowed(text);
        }
        Cow::Owned(replace(text, spans, report))
    }
}

fn compile(rank: usize, rule: &Rule) -> Result<Compiled, MaskError> {
    RegexBuilder::new(rule.pattern)
        .unicode(false)
        .build()
        .map(|regex| Compiled {
            rank,
            name: rule.name,
            regex,
            anchor: rule.anchor,
        })
        .map_err(|source| MaskError::Rule {
            rule: rule.name,
            source: Box::new(source),
        })
}

struct Span {
    start: usize,
    end: usize,
    rank: usize,
    rule: &'static str,
}

impl Span {
    /// Byte regexes can stop inside a multi-byte character (a length cap reached
    /// mid-character): widen to whole characters, masking a little more, never less.
    fn new(text: &str, mut start: usize, mut end: usize, rule: &Compiled) -> Self {
        while !text.is_char_boundary(start) {
            start -= 1;
        }
        while !text.is_char_boundary(end) {
            end += 1;
        }
        Self {
            start,
            end,
            rank: rule.rank,
            rule: rule.name,
        }
    }
}

/// The first capture group that took part in the match (the value, keeping its
/// context), else the whole match. A value that is already a placeholder is left alone.
/// `from`: where an anchored rule starts (just after its keyword); 0 for a search.
fn collect(rule: &Compiled, text: &str, from: usize, spans: &mut Vec<Span>) {
    for caps in rule.regex.captures_iter(&text.as_bytes()[from..]) {
        let Some(span) = caps.iter().skip(1).flatten().next().or_else(|| caps.get(0)) else {
            continue;
        };
        if span.is_empty() || is_placeholder(span.as_bytes()) {
            continue;
        }
        spans.push(Span::new(
            text,
            from + span.start(),
            from + span.end(),
            rule,
        ));
    }
}

/// Masks the spans, merging overlaps: two rules that see the same secret (a JWT that is
/// also a `token=` value) produce one placeholder, named for the span that starts first
/// and, among those, reaches furthest, so no tail of a longer match survives.
fn replace(text: &str, mut spans: Vec<Span>, report: &mut MaskReport) -> String {
    // Among identical spans the earlier rule (a vendor format) names it.
    spans.sort_unstable_by_key(|span| (span.start, Reverse(span.end), span.rank));
    let mut out = String::with_capacity(text.len());
    let mut cursor = 0;
    let mut spans = spans.into_iter().peekable();
    while let Some(first) = spans.next() {
        let mut end = first.end;
        while let Some(next) = spans.next_if(|next| next.start < end) {
            end = end.max(next.end);
        }
        out.push_str(&text[cursor..first.start]);
        out.push_str("[MASKED:");
        out.push_str(first.rule);
        out.push(']');
        report.hit(first.rule);
        cursor = end;
    }
    out.push_str(&text[cursor..]);
    out
}
