//! A JSON string's value from its raw text: escapes resolved (`\\u0041` is `A` to every
//! rule), or compared with another text while being resolved.

use std::borrow::Cow;

/// The value of a JSON string's raw inside (between the quotes). The text was validated
/// by the parser; a lone surrogate escape (which RFC 8259 tolerates and no UTF-8 string
/// can hold) decodes to U+FFFD.
pub(super) fn decode(inner: &str, escaped: bool) -> Cow<'_, str> {
    if !escaped {
        return Cow::Borrowed(inner);
    }
    let mut out = String::with_capacity(inner.len());
    let mut rest = inner;
    loop {
        // Copy the plain run up to the next escape in one go. A byte loop, not
        // `str::find`: escaped text has an escape every few bytes (serialised JSON in a
        // string), where a searcher's set-up costs more than it saves.
        let run = rest.bytes().position(|b| b == b'\\').unwrap_or(rest.len());
        out.push_str(&rest[..run]);
        if let Some(simple) = rest
            .as_bytes()
            .get(run + 1)
            .and_then(|&b| one_byte_escape(b))
        {
            out.push(char::from(simple));
            rest = &rest[run + 2..];
            continue;
        }
        let Some((decoded, len)) = escape_at(&rest[run..]) else {
            return Cow::Owned(out);
        };
        out.push(decoded);
        rest = &rest[run + len..];
    }
}

/// Whether `inner` (a string's raw inside) decodes to exactly `target`, found without
/// building the decoded value: a large escaped string (a tool result's `text`) is compared
/// with what it may repeat at the cost of one read, and no allocation.
///
/// Eight bytes per step while the raw text holds no escape and matches, a byte per step
/// around escapes (serialised JSON has one every few bytes: `\"`).
pub(super) fn decodes_to(inner: &str, escaped: bool, target: &str) -> bool {
    if !escaped {
        return inner == target;
    }
    let (raw, want) = (inner.as_bytes(), target.as_bytes());
    let (mut at, mut to) = (0, 0);
    loop {
        while let (Some(a), Some(b)) = (raw.get(at..at + 8), want.get(to..to + 8)) {
            let a = u64::from_le_bytes(a.try_into().unwrap_or_default());
            let b = u64::from_le_bytes(b.try_into().unwrap_or_default());
            // Skip the equal plain bytes before the first difference or backslash in one
            // step: serialised JSON has an escape every few bytes, so a byte-at-a-time
            // walk up to it would cost most of the compare.
            let stop = nonzero_bytes(a ^ b) | backslashes(a);
            if stop != 0 {
                let same = stop.trailing_zeros() as usize / 8;
                at += same;
                to += same;
                break;
            }
            at += 8;
            to += 8;
        }
        let Some(&byte) = raw.get(at) else {
            return to == want.len();
        };
        if byte != b'\\' {
            if want.get(to) != Some(&byte) {
                return false;
            }
            at += 1;
            to += 1;
            continue;
        }
        // The one-byte escapes inline (`\"` every few bytes in serialised JSON).
        if let Some(simple) = raw.get(at + 1).and_then(|&b| one_byte_escape(b)) {
            if want.get(to) != Some(&simple) {
                return false;
            }
            at += 2;
            to += 1;
            continue;
        }
        // The raw text is valid UTF-8 and `at` is at an ASCII byte: a char boundary.
        let Some((decoded, len)) = escape_at(&inner[at..]) else {
            return to == want.len();
        };
        let mut buf = [0u8; 4];
        for &b in decoded.encode_utf8(&mut buf).as_bytes() {
            if want.get(to) != Some(&b) {
                return false;
            }
            to += 1;
        }
        at += len;
    }
}

/// The literal (quotes included) of a string whose raw inside is `inner`, with `edits`
/// (sorted, disjoint, in byte offsets of the decoded value) made to its value: each
/// replacement written by `encode` (escaped for this string), every other byte kept as
/// the server wrote it, escapes included. A masked string then differs from the
/// original only where a secret was, and a large escaped string (serialised JSON in a
/// `text` block) is neither decoded whole nor re-encoded.
///
/// `None` when an edit starts or ends where the raw text has no position: inside the
/// bytes of one character (which one escape may stand for), or past the value's end. The
/// masker's edits never do (they sit at character boundaries); the caller then
/// re-encodes the whole value. An edit that overlaps the one before it is dropped, as
/// [`super::apply_sorted`] drops it.
pub(super) fn edited(
    inner: &str,
    edits: &[super::edit::Edit],
    mut encode: impl FnMut(&str, &mut String),
) -> Option<String> {
    let mut out = String::with_capacity(inner.len() + 2 + 16 * edits.len());
    out.push('"');
    let mut cursor = Cursor {
        inner,
        raw_at: 0,
        value_at: 0,
    };
    let mut copied = 0;
    for edit in edits {
        if edit.start < cursor.value_at {
            continue;
        }
        let start = cursor.advance_to(edit.start)?;
        let end = cursor.advance_to(edit.end)?;
        out.push_str(&inner[copied..start]);
        encode(&edit.text, &mut out);
        copied = end;
    }
    out.push_str(&inner[copied..]);
    out.push('"');
    Some(out)
}

/// Whether a string's raw inside has an escape of a non-ASCII character (`\\u00e9`, a
/// surrogate, lone ones included, which decode to U+FFFD), read escape by escape so that
/// an escaped backslash before a `u` is not taken for one.
pub(super) fn escapes_non_ascii(inner: &str) -> bool {
    let raw = inner.as_bytes();
    let mut at = 0;
    while let Some(found) = raw
        .get(at..)
        .and_then(|rest| rest.iter().position(|&b| b == b'\\'))
    {
        at += found;
        if raw.get(at + 1) != Some(&b'u') {
            at += 2;
            continue;
        }
        match escape_at(&inner[at..]) {
            Some((decoded, _)) if !decoded.is_ascii() => return true,
            Some((_, len)) => at += len,
            None => return false,
        }
    }
    false
}

/// Bytes before the first `\\` of `raw` (all of it if none), eight at a step.
fn plain_run(raw: &[u8]) -> usize {
    let mut at = 0;
    while let Some(chunk) = raw.get(at..at + 8) {
        let stop = backslashes(u64::from_le_bytes(chunk.try_into().unwrap_or_default()));
        if stop != 0 {
            return at + stop.trailing_zeros() as usize / 8;
        }
        at += 8;
    }
    at + raw[at..]
        .iter()
        .position(|&b| b == b'\\')
        .unwrap_or(raw.len() - at)
}

/// A position in a string's raw inside and the matching one in its decoded value.
struct Cursor<'a> {
    inner: &'a str,
    raw_at: usize,
    value_at: usize,
}

impl Cursor<'_> {
    /// Moves to decoded offset `target` (not behind the cursor) and says where it is in
    /// the raw text; `None` if it lies inside one escape's bytes or past the end.
    fn advance_to(&mut self, target: usize) -> Option<usize> {
        let raw = self.inner.as_bytes();
        while self.value_at < target {
            let plain = plain_run(raw.get(self.raw_at..)?);
            if target - self.value_at <= plain {
                self.raw_at += target - self.value_at;
                self.value_at = target;
                break;
            }
            self.raw_at += plain;
            self.value_at += plain;
            // The one-byte escapes inline (`\\"` every few bytes in serialised JSON).
            let (len, decoded) = match raw.get(self.raw_at + 1).and_then(|&b| one_byte_escape(b)) {
                Some(_) => (2, 1),
                None => {
                    let (decoded, len) = escape_at(&self.inner[self.raw_at..])?;
                    (len, decoded.len_utf8())
                }
            };
            if self.value_at + decoded > target {
                return None;
            }
            self.raw_at += len;
            self.value_at += decoded;
        }
        Some(self.raw_at)
    }
}

/// The byte a two-byte escape (`\\"`, `\\n`…) whose second byte is `b` stands for.
fn one_byte_escape(b: u8) -> Option<u8> {
    match b {
        b'"' | b'\\' | b'/' => Some(b),
        b'n' => Some(b'\n'),
        b't' => Some(b'\t'),
        b'r' => Some(b'\r'),
        b'b' => Some(8),
        b'f' => Some(12),
        _ => None,
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `x` that is not zero (exact for every byte).
fn nonzero_bytes(x: u64) -> u64 {
    (((x & !HIGH) + !HIGH) | x) & HIGH
}

/// The high bit of the `\\` bytes of `x`: exact for the lowest one (a borrow may flag a
/// byte above it, never one below).
fn backslashes(x: u64) -> u64 {
    let x = x ^ (ONES * u64::from(b'\\'));
    x.wrapping_sub(ONES) & !x & HIGH
}

/// The character the escape at the start of `rest` stands for, and the escape's length
/// in bytes; `None` at the end of the text (or a `\` that ends it).
fn escape_at(rest: &str) -> Option<(char, usize)> {
    let mut chars = rest.chars();
    chars.next()?;
    let decoded = match chars.next()? {
        'n' => '\n',
        't' => '\t',
        'r' => '\r',
        'b' => '\u{8}',
        'f' => '\u{c}',
        'u' => {
            let high = hex4(&mut chars);
            let code = if (0xD800..0xDC00).contains(&high) {
                if let Some(low_escape) = chars.as_str().strip_prefix("\\u") {
                    let mut ahead = low_escape.chars();
                    let low = hex4(&mut ahead);
                    if (0xDC00..0xE000).contains(&low) {
                        chars = ahead;
                        0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
                    } else {
                        0xFFFD
                    }
                } else {
                    0xFFFD
                }
            } else {
                high
            };
            char::from_u32(code).unwrap_or('\u{FFFD}')
        }
        other => other, // `"`, `\`, `/`
    };
    Some((decoded, rest.len() - chars.as_str().len()))
}

fn hex4(chars: &mut std::str::Chars<'_>) -> u32 {
    (0..4).fold(0, |acc, _| {
        acc * 16 + chars.next().and_then(|c| c.to_digit(16)).unwrap_or(0)
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{decode, decodes_to, edited, escapes_non_ascii};
    use crate::mask::json::edit::{Edit, Style, apply_sorted};

    /// Raw string insides: plain text, every escape JSON has, surrogate pairs and lone
    /// surrogates.
    fn raw_inside() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                4 => "[a-z{}\\[\\]:, ]{0,12}",
                // Plain runs longer than a word, for the eight-byte steps.
                1 => "[a-z{}\\[\\]:, ]{8,40}",
                1 => Just("é日".to_owned()),
                1 => prop::sample::select(vec![
                    "\\n", "\\t", "\\r", "\\b", "\\f", "\\\"", "\\\\", "\\/",
                    "\\u0041", "\\u00e9", "\\ud83d\\ude00", "\\ud800", "\\udc00x",
                    // An escaped backslash before text that reads like an escape.
                    "\\\\u00e9",
                ])
                .prop_map(str::to_owned),
            ],
            0..8,
        )
        .prop_map(|parts| parts.concat())
    }

    #[test]
    fn only_a_real_escape_of_a_non_ascii_character_counts() {
        assert!(escapes_non_ascii(r"caf\u00e9"));
        assert!(escapes_non_ascii(r"lone \ud800"));
        assert!(escapes_non_ascii(r"\\\u00e9"));
        assert!(!escapes_non_ascii(r"\\u00e9 is text"));
        assert!(!escapes_non_ascii(r"\u0041 \n \/"));
        assert!(!escapes_non_ascii("café, not escaped"));
    }

    proptest! {
        /// Comparing while decoding agrees with decoding, then comparing: on the decoded
        /// value itself, on its prefixes and on other text.
        #[test]
        fn decodes_to_agrees_with_decode(raw in raw_inside(), other in raw_inside(), cut in 0usize..64) {
            let escaped = raw.contains('\\');
            let value = decode(&raw, escaped);
            prop_assert!(decodes_to(&raw, escaped, &value));
            let mut cut = cut.min(value.len());
            while !value.is_char_boundary(cut) {
                cut -= 1;
            }
            prop_assert_eq!(decodes_to(&raw, escaped, &value[..cut]), cut == value.len());
            let other = decode(&other, other.contains('\\'));
            prop_assert_eq!(decodes_to(&raw, escaped, &other), value == other);
        }

        /// Editing the raw text in place gives the value the edits make of the decoded
        /// one, keeps the raw bytes before the first edit and after the last, and
        /// declines only where an edit boundary falls inside one escape's bytes.
        #[test]
        fn edited_in_place_decodes_to_the_edited_value(
            raw in raw_inside(),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
        ) {
            let escaped = raw.contains('\\');
            let value = decode(&raw, escaped).into_owned();
            let mut bounds: Vec<usize> = cuts
                .iter()
                .map(|cut| cut.index(value.len() + 1))
                .filter(|&at| value.is_char_boundary(at))
                .collect();
            bounds.sort_unstable();
            let edits: Vec<Edit> = bounds
                .chunks_exact(2)
                .map(|pair| Edit { start: pair[0], end: pair[1], text: "[MASKED:x]".to_owned() })
                .collect();
            let expected = apply_sorted(&value, 0, value.len(), &edits);
            let literal = edited(&raw, &edits, |text, out| out.push_str(text));
            // (decoded offset, raw offset) at each whole escape or plain character.
            let mut reachable = vec![(0, 0)];
            let (mut offset, mut at) = (0, 0);
            while at < raw.len() {
                let rest = &raw[at..];
                let (decoded, len) = if rest.starts_with('\\') {
                    let (c, len) = super::escape_at(rest).unwrap();
                    (c.len_utf8(), len)
                } else {
                    let len = rest.chars().next().unwrap().len_utf8();
                    (len, len)
                };
                offset += decoded;
                at += len;
                reachable.push((offset, at));
            }
            let raw_at = |value_at: usize| {
                reachable.iter().find(|(v, _)| *v == value_at).map(|(_, r)| *r)
            };
            let mappable = edits.iter().all(|e| raw_at(e.start).is_some() && raw_at(e.end).is_some());
            prop_assert_eq!(literal.is_some(), mappable);
            if let Some(literal) = literal {
                let inner = &literal[1..literal.len() - 1];
                prop_assert_eq!(decode(inner, inner.contains('\\')), expected);
                // The raw bytes before the first edit and after the last are kept.
                if let (Some(first), Some(last)) = (edits.first(), edits.last()) {
                    let (head, tail) = (raw_at(first.start).unwrap(), raw_at(last.end).unwrap());
                    prop_assert!(inner.starts_with(&raw[..head]));
                    prop_assert!(inner.ends_with(&raw[tail..]));
                } else {
                    prop_assert_eq!(inner, raw.as_str());
                }
            }
        }

        /// The style read off a literal's escapes is the style read with its decoded
        /// value at hand.
        #[test]
        fn a_literals_style_needs_no_decoding(raw in raw_inside()) {
            let literal = format!("\"{raw}\"");
            let value = decode(&raw, raw.contains('\\'));
            prop_assert_eq!(Style::of_literal(&literal), Style::of(&literal, &value));
        }

        /// A value differing from the decoded one in a single ASCII byte, anywhere (inside
        /// an eight-byte step, just before an escape, at the end), is told apart.
        #[test]
        fn decodes_to_finds_a_single_changed_byte(raw in raw_inside(), at in any::<prop::sample::Index>()) {
            let escaped = raw.contains('\\');
            let value = decode(&raw, escaped).into_owned();
            let ascii: Vec<usize> = (0..value.len()).filter(|&i| value.as_bytes()[i].is_ascii()).collect();
            if ascii.is_empty() {
                return Ok(());
            }
            let at = *at.get(&ascii);
            let mut bytes = value.clone().into_bytes();
            bytes[at] = if bytes[at] == b'x' { b'y' } else { b'x' };
            let changed = String::from_utf8(bytes).unwrap_or_default();
            prop_assert!(!decodes_to(&raw, escaped, &changed));
        }
    }
}
