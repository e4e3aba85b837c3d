//! Pattern masking of one string: a keyword search, then only the rules it points to.
//!
//! The search is staged: rule and assignment keywords are found by a trigram pass whose
//! hits are checked in place ([`super::trigram`]); the encoded spellings have an
//! Aho-Corasick automaton, run only inside runs of their alphabet long enough to decode
//! ([`decode::long_runs`]). The result is the same as one overlapping Aho-Corasick pass
//! over every keyword (kept for the differential tests as `Path::Reference`). A string
//! without any keyword costs the trigram pass and nothing else: no automaton or regex
//! runs and nothing is allocated. A keyword that is a common word (`token` in
//! "max_tokens") costs one anchored regex attempt right after it, which fails within a
//! byte or two, still without allocating.
//!
//! The same pass feeds three detectors that are code rather than regexes: assignments to
//! sensitive names ([`super::assign`]), table columns under a sensitive header
//! ([`super::table`]) and encoded secrets ([`super::decode`], whose keywords are the
//! encoded spellings of trigger words). Each looks only at its keyword's surroundings.

use std::{borrow::Cow, cmp::Reverse};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, Input, MatchKind};
use regex::bytes::{Regex, RegexBuilder};

use super::{
    MaskError, MaskReport,
    assign::{self, Assignments},
    decode::{self, Encoding},
    hexgate::HexGate,
    is_placeholder,
    rules::{self, Anchor, ENTROPY_RULE, Rule},
    table,
    trigram::{self, Seen, Trigrams},
    values,
};

/// Rule name of a value assigned to a sensitive name (`DB_PASS=…`, `"token": "…"`).
pub const ASSIGNMENT_RULE: &str = "password_assignment";
/// Rule name of a value in a table column whose header names a secret.
pub const COLUMN_RULE: &str = "secret_column";
/// Rule name of a base64 or hex run that decodes to a secret.
pub const ENCODED_RULE: &str = "encoded_secret";

/// Among identical spans, vendor and structural rules name them before these.
const ASSIGNMENT_RANK: usize = usize::MAX - 3;
const COLUMN_RANK: usize = usize::MAX - 2;
const ENCODED_RANK: usize = usize::MAX - 1;

/// What a prefilter keyword belongs to.
#[derive(Clone, Copy)]
enum Target {
    Rule(usize),
    Assignment,
    Encoded(Encoding),
    /// `%XX` (URL-encoding) or `\n`, `\"` (JSON escapes): keywords of the reference
    /// pass only; the staged search flags them in its trigram pass.
    #[cfg_attr(not(test), allow(dead_code))]
    Percent,
    #[cfg_attr(not(test), allow(dead_code))]
    Escape,
}

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

    /// The rules set, in increasing order.
    fn indices(&self) -> impl Iterator<Item = usize> + '_ {
        self.bits.iter().enumerate().flat_map(|(word, &bits)| {
            let mut bits = bits;
            std::iter::from_fn(move || {
                (bits != 0).then(|| {
                    let bit = bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    word * 64 + bit
                })
            })
        })
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
    /// Rule and assignment keywords, found by trigram hits checked in place.
    plain: Trigrams,
    /// For each `plain` keyword, what it belongs to.
    plain_targets: Vec<Target>,
    /// The encoded spellings of trigger words ([`decode`]), run only inside runs of
    /// their alphabet long enough to be decoded.
    encoded: AhoCorasick,
    encoded_targets: Vec<Target>,
    /// Rules out hex identifiers (a commit SHA) before the encoded automaton starts on
    /// them; `None` if its premise fails for the spellings.
    hex_gate: Option<HexGate>,
    rules: Vec<Compiled>,
    entropy: Option<Compiled>,
    assignments: Assignments,
    /// The single whole-string automaton over every keyword that the staged search
    /// replaced: the differential tests compare the two.
    #[cfg(test)]
    reference: (AhoCorasick, Vec<Target>),
}

/// Which keyword search [`Scanner::find`] uses: the staged one, or (tests) the single
/// whole-string pass it must agree with byte for byte.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Path {
    Staged,
    #[cfg(test)]
    Reference,
}

/// What one [`Scanner::find`] has seen so far.
#[derive(Default)]
struct Pass {
    candidates: Candidates,
    /// End of the last name / encoded run looked at: keywords inside it add nothing.
    named_to: usize,
    decoded_to: usize,
    percent: bool,
    escape: bool,
    /// Where each keyword of an [`Anchor::AfterKeyword`] rule ended, in pass order, with
    /// its rule: where those rules run once the candidates are known, without a second
    /// keyword pass over the text.
    anchors: Vec<(usize, usize)>,
}

/// A DFA: some hundreds of KiB built once; the fastest of the automata on the hot path
/// (≈2.5× the contiguous NFA on English text here). Overlapping, because keywords
/// overlap (`token` inside `?access_token=`).
fn automaton(keywords: &[&str]) -> Result<AhoCorasick, MaskError> {
    Ok(AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::Standard)
        .kind(Some(AhoCorasickKind::DFA))
        .build(keywords)?)
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
        let (plain, plain_targets): (Vec<&str>, Vec<Target>) = rules::all()
            .enumerate()
            .flat_map(|(index, rule)| {
                rule.keywords
                    .iter()
                    .map(move |kw| (*kw, Target::Rule(index)))
            })
            .chain(assign::KEYWORDS.iter().map(|kw| (*kw, Target::Assignment)))
            .unzip();
        if let Some(odd) = plain
            .iter()
            .find(|kw| !(2..=trigram::MAX_KEYWORD).contains(&kw.len()))
        {
            return Err(MaskError::KeywordLength((*odd).to_owned()));
        }
        let encoded_spellings = decode::keywords();
        let (encoded, encoded_targets): (Vec<&str>, Vec<Target>) = encoded_spellings
            .iter()
            .map(|(kw, encoding)| (kw.as_str(), Target::Encoded(*encoding)))
            .unzip();
        #[cfg(test)]
        let reference = {
            let (keywords, targets): (Vec<&str>, Vec<Target>) = plain
                .iter()
                .copied()
                .zip(plain_targets.iter().copied())
                .chain([("%", Target::Percent), ("\\", Target::Escape)])
                .chain(encoded.iter().copied().zip(encoded_targets.iter().copied()))
                .unzip();
            (automaton(&keywords)?, targets)
        };
        Ok(Self {
            plain: Trigrams::new(plain.iter().copied()),
            plain_targets,
            encoded: automaton(&encoded)?,
            encoded_targets,
            hex_gate: HexGate::new(&encoded_spellings),
            rules,
            assignments: Assignments::new(),
            entropy: entropy
                .then(|| compile(usize::MAX, &ENTROPY_RULE))
                .transpose()?,
            #[cfg(test)]
            reference,
        })
    }

    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// Replaces every secret the rules (and the entropy rule, when on) find in `text`,
    /// finding keywords by `path`.
    pub(super) fn mask_by<'a>(
        &self,
        text: &'a str,
        report: &mut MaskReport,
        path: Path,
    ) -> Cow<'a, str> {
        let ranges = self.masked_ranges_by(text, report, path);
        if ranges.is_empty() {
            return Cow::Borrowed(text);
        }
        Cow::Owned(with_placeholders(text, ranges))
    }

    /// The byte ranges [`Scanner::mask_by`] replaces in `text`, merged, each with the rule
    /// that names its placeholder; each counted in `report`.
    pub(super) fn masked_ranges_by(
        &self,
        text: &str,
        report: &mut MaskReport,
        path: Path,
    ) -> Vec<(std::ops::Range<usize>, &'static str)> {
        let mut spans: Vec<Span> = Vec::new();
        self.find(text, 0, &mut spans, path);
        merged(spans)
            .inspect(|(_, rule)| report.hit(rule))
            .collect()
    }

    /// The byte ranges [`Scanner::mask_by`] would replace in `text`, merged, each with the
    /// rule that would name its placeholder (for joining a secret split across two
    /// stream messages: [`super::seam`]).
    pub(super) fn secret_ranges(&self, text: &str) -> Vec<(std::ops::Range<usize>, &'static str)> {
        let mut spans: Vec<Span> = Vec::new();
        self.find(text, 0, &mut spans, Path::Staged);
        merged(spans).collect()
    }

    /// Every `plain` keyword occurrence in `bytes`, in the order one whole-string
    /// overlapping automaton pass reports them ([`Trigrams::occurrences`]).
    fn plain_matches(&self, bytes: &[u8], f: &mut impl FnMut(Target, usize, usize)) -> Seen {
        self.plain.occurrences(bytes, |keyword, start, end| {
            f(self.plain_targets[keyword], start, end);
        })
    }

    /// Every encoded-spelling occurrence that lies in a run long enough to decode (the
    /// others cannot lead anywhere: [`decode::run`] refuses them).
    fn encoded_matches(&self, bytes: &[u8], f: &mut impl FnMut(Target, usize, usize)) {
        decode::long_runs(bytes, |start, end| {
            if self
                .hex_gate
                .as_ref()
                .is_some_and(|gate| gate.rules_out(&bytes[start..end]))
            {
                return;
            }
            let input = Input::new(bytes).range(start..end);
            for found in self.encoded.find_overlapping_iter(input) {
                f(
                    self.encoded_targets[found.pattern().as_usize()],
                    found.start(),
                    found.end(),
                );
            }
        });
    }

    /// The single whole-string pass over every keyword.
    #[cfg(test)]
    fn reference_matches(&self, bytes: &[u8], f: &mut impl FnMut(Target, usize, usize)) {
        let (automaton, targets) = &self.reference;
        for found in automaton.find_overlapping_iter(bytes) {
            f(
                targets[found.pattern().as_usize()],
                found.start(),
                found.end(),
            );
        }
    }

    /// Collects the spans to mask in `text`; `depth` counts decodings already undone.
    ///
    /// The detectors fed by keywords (rules, assignments, encoded runs) keep no state in
    /// common, so feeding each its own keywords in order is the same as feeding all of
    /// them from one pass; `%` and `\` only set a flag, which the trigram pass sets.
    fn find(&self, text: &str, depth: usize, spans: &mut Vec<Span>, path: Path) {
        let bytes = text.as_bytes();
        let mut pass = Pass::default();
        let mut on = |target, start, end| {
            self.on_keyword(text, depth, target, start, end, &mut pass, spans, path)
        };
        match path {
            Path::Staged => {
                let seen = self.plain_matches(bytes, &mut on);
                if depth < decode::MAX_DEPTH {
                    self.encoded_matches(bytes, &mut on);
                }
                pass.percent = seen.percent;
                pass.escape = seen.escape;
            }
            #[cfg(test)]
            Path::Reference => self.reference_matches(bytes, &mut on),
        }
        self.finish(text, depth, pass, spans, path);
    }

    /// Acts on one keyword occurrence at `start..end` of `text`.
    #[allow(clippy::too_many_arguments)]
    fn on_keyword(
        &self,
        text: &str,
        depth: usize,
        target: Target,
        start: usize,
        end: usize,
        pass: &mut Pass,
        spans: &mut Vec<Span>,
        path: Path,
    ) {
        let bytes = text.as_bytes();
        match target {
            Target::Rule(index) => {
                let rule = &self.rules[index];
                match rule.anchor {
                    Anchor::Search => pass.candidates.set(index),
                    Anchor::AfterKeyword => {
                        pass.anchors.push((index, end));
                        if !pass.candidates.has(index) && rule.regex.is_match(&bytes[end..]) {
                            pass.candidates.set(index);
                            pass.candidates.anchored = true;
                        }
                    }
                }
            }
            Target::Assignment if start >= pass.named_to => {
                let (name_end, values, prose) = self.assignments.at(bytes, start, end);
                pass.named_to = name_end;
                for value in values {
                    spans.push(Span::named(
                        text,
                        value.start,
                        value.end,
                        ASSIGNMENT_RANK,
                        ASSIGNMENT_RULE,
                    ));
                }
                if !prose {
                    table::column(self.assignments.keys(), bytes, start, |s, e| {
                        spans.push(Span::named(text, s, e, COLUMN_RANK, COLUMN_RULE));
                    });
                }
            }
            Target::Assignment => {}
            Target::Percent => pass.percent = true,
            Target::Escape => pass.escape = true,
            Target::Encoded(encoding) => {
                if depth < decode::MAX_DEPTH
                    && start >= pass.decoded_to
                    && let Some((run_start, run_end)) = decode::run(bytes, start, end, encoding)
                {
                    pass.decoded_to = run_end;
                    if let Some(decoded) = decode::decode(&bytes[run_start..run_end], encoding) {
                        let mut inner = Vec::new();
                        self.find(&decoded, depth + 1, &mut inner, path);
                        if !inner.is_empty() {
                            spans.push(Span::named(
                                text,
                                run_start,
                                run_end,
                                ENCODED_RANK,
                                ENCODED_RULE,
                            ));
                        }
                    }
                }
            }
        }
    }

    /// What runs after the keyword pass: decoded views, then the candidate rules.
    fn finish(&self, text: &str, depth: usize, pass: Pass, spans: &mut Vec<Span>, path: Path) {
        let bytes = text.as_bytes();
        if depth < decode::MAX_DEPTH && pass.percent {
            for (start, _, decoded, map) in decode::percent_runs(text) {
                let mut inner = Vec::new();
                self.find(&decoded, depth + 1, &mut inner, path);
                for span in inner {
                    spans.push(Span::named(
                        text,
                        start + map[span.start],
                        start + map[span.end],
                        span.rank,
                        span.rule,
                    ));
                }
            }
        }
        // JSON-escaped text (`output: "DB_PASS=…\nTOKEN=…"`): lines and quotes are
        // escapes, so names and values are read again unescaped.
        if depth < decode::MAX_DEPTH
            && pass.escape
            && let Some((decoded, map)) = decode::unescape(text)
        {
            let mut inner = Vec::new();
            self.find(&decoded, depth + 1, &mut inner, path);
            for span in inner {
                spans.push(Span::named(
                    text,
                    map[span.start],
                    map[span.end],
                    span.rank,
                    span.rule,
                ));
            }
        }
        let candidates = pass.candidates;
        if !candidates.any && self.entropy.is_none() {
            return;
        }
        // In rule order, visiting only the candidates (a string that names one rule's
        // keyword does not pay a look at every rule).
        for index in candidates.indices() {
            let rule = &self.rules[index];
            // `is_match` first: it needs no capture slots, so a keyword without a secret
            // (the word "aws" in prose) still allocates nothing.
            if rule.anchor == Anchor::Search && rule.regex.is_match(bytes) {
                collect(rule, text, 0, spans);
            }
        }
        if candidates.anchored {
            match path {
                Path::Staged => {
                    for (index, end) in pass.anchors {
                        if candidates.has(index) {
                            collect(&self.rules[index], text, end, spans);
                        }
                    }
                }
                // The second keyword pass the recorded ends replaced.
                #[cfg(test)]
                Path::Reference => self.reference_matches(bytes, &mut |target, _start, end| {
                    if let Target::Rule(index) = target {
                        let rule = &self.rules[index];
                        if rule.anchor == Anchor::AfterKeyword && candidates.has(index) {
                            collect(rule, text, end, spans);
                        }
                    }
                }),
            }
        }
        if let Some(entropy) = &self.entropy {
            for found in entropy.regex.find_iter(bytes) {
                if rules::looks_random(found.as_bytes()) {
                    spans.push(Span::new(text, found.start(), found.end(), entropy));
                }
            }
        }
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
    fn new(text: &str, start: usize, end: usize, rule: &Compiled) -> Self {
        Self::named(text, start, end, rule.rank, rule.name)
    }

    fn named(
        text: &str,
        mut start: usize,
        mut end: usize,
        rank: usize,
        rule: &'static str,
    ) -> Self {
        while !text.is_char_boundary(start) {
            start -= 1;
        }
        while end < text.len() && !text.is_char_boundary(end) {
            end += 1;
        }
        Self {
            start,
            end: end.min(text.len()),
            rank,
            rule,
        }
    }
}

/// The first capture group that took part in the match (the value, keeping its
/// context), else the whole match. A value that is already a placeholder is left alone.
/// `from`: where an anchored rule starts (just after its keyword); 0 for a search.
fn collect(rule: &Compiled, text: &str, from: usize, spans: &mut Vec<Span>) {
    for caps in rule.regex.captures_iter(&text.as_bytes()[from..]) {
        let group = caps.iter().skip(1).flatten().next();
        let Some(span) = group.or_else(|| caps.get(0)) else {
            continue;
        };
        // A captured value ends at its line, also where the line break is a JSON escape
        // (`output: "Authorization: Bearer ****\nAccept: …"`).
        let value = if group.is_some() {
            let mut value = &span.as_bytes()[..escaped_break(span.as_bytes())];
            // A value ending where an escaped quote closes it (`\"Bearer <token>\"`).
            if value.len() == span.len()
                && value.ends_with(b"\\")
                && text.as_bytes().get(from + span.end()) == Some(&b'"')
            {
                value = &value[..value.len() - 1];
            }
            value
        } else {
            span.as_bytes()
        };
        if value.is_empty() || is_placeholder(value) {
            continue;
        }
        // A captured value in its context (`Password="…"`, `?token=…`) may be code or
        // a reference rather than a secret (`"$(cat /run/secrets/db)"`).
        if group.is_some() && std::str::from_utf8(value).is_ok_and(values::is_not_a_secret) {
            continue;
        }
        spans.push(Span::new(
            text,
            from + span.start(),
            from + span.start() + value.len(),
            rule,
        ));
    }
}

/// Where the first JSON-escaped line break (`\n`, `\r`; not `\\n`) in `value` starts,
/// else its length.
fn escaped_break(value: &[u8]) -> usize {
    let mut i = 0;
    while i + 1 < value.len() {
        if value[i] == b'\\' {
            if matches!(value[i + 1], b'n' | b'r') {
                return i;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    value.len()
}

/// `text` with each range replaced by its rule's placeholder (ranges sorted, disjoint).
pub(super) fn with_placeholders(
    text: &str,
    ranges: impl IntoIterator<Item = (std::ops::Range<usize>, &'static str)>,
) -> String {
    let mut out = String::with_capacity(text.len());
    let mut cursor = 0;
    for (range, rule) in ranges {
        out.push_str(&text[cursor..range.start]);
        push_placeholder(&mut out, rule);
        cursor = range.end;
    }
    out.push_str(&text[cursor..]);
    out
}

/// Appends the placeholder that names `rule` (`[MASKED:github_pat]`): the one spelling
/// of a pattern rule's replacement, in free text and in JSON strings alike.
pub(super) fn push_placeholder(out: &mut String, rule: &str) {
    out.push_str("[MASKED:");
    out.push_str(rule);
    out.push(']');
}

/// The spans in text order with overlaps merged: two rules that see the same secret (a
/// JWT that is also a `token=` value) give one range, named for the span that starts
/// first and, among those, reaches furthest, so no tail of a longer match survives.
fn merged(mut spans: Vec<Span>) -> impl Iterator<Item = (std::ops::Range<usize>, &'static str)> {
    // Among identical spans the earlier rule (a vendor format) names it.
    spans.sort_unstable_by_key(|span| (span.start, Reverse(span.end), span.rank));
    let mut spans = spans.into_iter().peekable();
    std::iter::from_fn(move || {
        let first = spans.next()?;
        let mut end = first.end;
        while let Some(next) = spans.next_if(|next| next.start < end) {
            end = end.max(next.end);
        }
        Some((first.start..end, first.rule))
    })
}
