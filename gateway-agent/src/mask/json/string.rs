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

    use super::{decode, decodes_to};

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
                ])
                .prop_map(str::to_owned),
            ],
            0..8,
        )
        .prop_map(|parts| parts.concat())
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
