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
    decode_pieces(inner, |piece| {
        out.push_str(piece);
        true
    });
    Cow::Owned(out)
}

/// Whether `inner` (a string's raw inside) decodes to exactly `target`, found without
/// building the decoded value: a large escaped string (a tool result's `text`) is compared
/// with what it may repeat at the cost of one read, and no allocation.
pub(super) fn decodes_to(inner: &str, escaped: bool, target: &str) -> bool {
    if !escaped {
        return inner == target;
    }
    let mut rest = target.as_bytes();
    let whole = decode_pieces(inner, |piece| match rest.strip_prefix(piece.as_bytes()) {
        Some(after) => {
            rest = after;
            true
        }
        None => false,
    });
    whole && rest.is_empty()
}

/// Hands the decoded value of `inner` to `piece` in order, as plain runs (borrowed) and
/// single decoded characters; stops early, returning false, when `piece` does.
fn decode_pieces(inner: &str, mut piece: impl FnMut(&str) -> bool) -> bool {
    let mut chars = inner.chars();
    let mut buf = [0u8; 4];
    loop {
        // Copy the plain run up to the next escape in one go.
        let rest = chars.as_str();
        // A byte loop, not `str::find`: escaped text has an escape every few bytes
        // (serialised JSON in a string), where a searcher's set-up costs more than it saves.
        let run = rest.bytes().position(|b| b == b'\\').unwrap_or(rest.len());
        if run > 0 && !piece(&rest[..run]) {
            return false;
        }
        chars = rest[run..].chars();
        if chars.next().is_none() {
            return true;
        }
        let decoded = match chars.next() {
            Some('n') => '\n',
            Some('t') => '\t',
            Some('r') => '\r',
            Some('b') => '\u{8}',
            Some('f') => '\u{c}',
            Some('u') => {
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
            Some(other) => other, // `"`, `\`, `/`
            None => return true,
        };
        if !piece(decoded.encode_utf8(&mut buf)) {
            return false;
        }
    }
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
                4 => "[a-z{}\\[\\]:, ]{0,6}",
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
    }
}
