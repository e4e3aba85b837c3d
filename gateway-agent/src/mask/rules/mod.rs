//! The secret formats the masker knows, as data.
//!
//! Every rule was written from the issuer's public description of its credential format
//! (prefix, alphabet, length), not taken from another scanner's rule files. Issued tokens
//! carry a literal prefix (`ghp_`, `xoxb-`, `AKIA`) precisely so that scanners can find
//! them; where a format has none (a Twilio auth token is 32 hex digits) the rule only
//! fires near the vendor's name.
//!
//! Each rule lists literal keywords, at least one of which must occur for the rule to
//! possibly match. The masker runs one Aho-Corasick pass over a string for all keywords
//! and then only the few regexes whose keywords were seen (see PERF-NOTES: a bytes regex
//! with Unicode off runs at GB/s; a set of a few hundred Unicode regexes at under 1 MB/s).
//! Rules labelled by a common word run anchored right after it ([`Anchor`]).
//!
//! A rule's regex may have capture groups: then the first group that took part in the
//! match is masked (the password in a URL, the value of a `password=` pair) and its
//! context survives. Groups that capture a value never start with `[`, so a placeholder
//! (`[MASKED:…]`) is never taken for a value and masking twice changes nothing.

mod generic;
mod services;

/// Where a rule's regex is run.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    /// Over the whole string. For rules whose regex starts with a rare literal the regex
    /// engine finds at memchr speed (`ghp_`, `AKIA`).
    Search,
    /// Anchored (`^`) right after each occurrence of one of its keywords. For labels that
    /// are common words (`password`, `token`, `bearer`): a regex that has to find the
    /// label itself scans at a few hundred MB/s, while one that starts where the keyword
    /// pass already found the label fails after a byte or two on prose ("max_tokens").
    AfterKeyword,
}

pub struct Rule {
    /// Lowercase letters and `_` (no digits, so a placeholder cannot carry a length),
    /// shorter than the entropy rule's minimum token, and never
    /// containing the first four characters of the tokens it masks: it is printed in the
    /// placeholder, which must not give away any part of a secret.
    pub name: &'static str,
    /// ASCII case-insensitive literals; at least one must occur for the regex to run.
    pub keywords: &'static [&'static str],
    /// Byte regex, compiled with Unicode off (`\b`, `\s`, `.` and `(?i)` are ASCII-only).
    pub pattern: &'static str,
    pub anchor: Anchor,
}

macro_rules! rule {
    ($name:literal, [$($kw:literal),+ $(,)?], $pattern:literal $(,)?) => {
        $crate::mask::rules::Rule {
            name: $name,
            keywords: &[$($kw),+],
            pattern: $pattern,
            anchor: $crate::mask::rules::Anchor::Search,
        }
    };
}
use rule;

/// A rule run right after its keywords (see [`Anchor::AfterKeyword`]); its pattern starts
/// with `^`.
macro_rules! after {
    ($name:literal, [$($kw:literal),+ $(,)?], $pattern:literal $(,)?) => {
        $crate::mask::rules::Rule {
            name: $name,
            keywords: &[$($kw),+],
            pattern: $pattern,
            anchor: $crate::mask::rules::Anchor::AfterKeyword,
        }
    };
}
use after;

/// All rules, vendor formats first: when two rules mask the same span, the earlier one's
/// name is reported (a `token=ghp_…` pair is reported as a GitHub token).
pub fn all() -> impl Iterator<Item = &'static Rule> {
    services::RULES.iter().chain(generic::RULES)
}

/// Off by default: long random-looking tokens of no known format. It has no keyword, so
/// when enabled it scans every string. `/` is left out of the alphabet so file paths are
/// not taken for tokens.
pub const ENTROPY_RULE: Rule = Rule {
    name: "high_entropy_string",
    keywords: &[],
    pattern: r"[A-Za-z0-9_+\-]{32,}={0,2}",
    anchor: Anchor::Search,
};

/// Shortest token the entropy rule considers (placeholders are shorter, so they are
/// never re-masked by it).
pub const ENTROPY_MIN_LEN: usize = 32;

/// Is a token found by [`ENTROPY_RULE`] random enough to be a secret?
///
/// Three tests, each ruling out a family of false positives measured on samples:
/// upper, lower and digit all present (hex digests, UUIDs, words and numbers are not);
/// Shannon entropy at least 80% of the most a string of its length can have (random
/// base62 of 32 chars has ≈4.5 bits/char, p1 ≈4.2, against a maximum of 5); and less
/// than 60% of its letters in lowercase runs of three or more (random base62: median
/// ≈15%, p99 ≈52%; `CamelCaseIdentifiersWith123` or `x86_64-unknown-linux-gnu-2024`:
/// 70–95%, though their entropy alone would pass). Base64 of ordinary bytes passes all
/// three: that is why the rule is opt-in.
pub fn looks_random(token: &[u8]) -> bool {
    let token = token.strip_suffix(b"==").unwrap_or(token);
    let token = token.strip_suffix(b"=").unwrap_or(token);
    if token.len() < ENTROPY_MIN_LEN {
        return false;
    }
    let (mut upper, mut lower, mut digit) = (0usize, 0usize, 0usize);
    let mut counts = [0usize; 256];
    let mut in_words = 0usize;
    let mut run = 0usize;
    for &b in token.iter().chain([b' '].iter()) {
        if b.is_ascii_lowercase() {
            run += 1;
        } else {
            if run >= 3 {
                in_words += run;
            }
            run = 0;
        }
        if b == b' ' {
            break; // the sentinel that closes the last run
        }
        counts[b as usize] += 1;
        upper += usize::from(b.is_ascii_uppercase());
        lower += usize::from(b.is_ascii_lowercase());
        digit += usize::from(b.is_ascii_digit());
    }
    if upper == 0 || lower == 0 || digit == 0 {
        return false;
    }
    let len = token.len() as f64;
    let entropy: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / len;
            -p * p.log2()
        })
        .sum();
    let max = len.min(64.0).log2();
    entropy >= 0.8 * max && (in_words as f64) < 0.6 * (upper + lower) as f64
}
