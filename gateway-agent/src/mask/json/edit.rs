//! Rewriting a JSON text in place: replacements of single values, applied to the original
//! bytes, and strings re-encoded the way their author's encoder wrote them.
//!
//! Encoders differ only in what they escape beyond the required `"`, `\` and control
//! characters: Python's `json.dumps` escapes every non-ASCII character (`\u00e9`), Go's
//! `encoding/json` escapes `<`, `>`, `&`, U+2028 and U+2029, PHP escapes `/`. A masked
//! string is written in the style its original shows, so a client comparing bytes (or a
//! human reading a diff) sees only the masked value change.

/// One replacement of the byte range `start..end` of a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub start: usize,
    pub end: usize,
    pub text: String,
}

/// Replacements of one text, non-overlapping.
#[derive(Debug, Default)]
pub struct Edits {
    edits: Vec<Edit>,
}

impl Edits {
    pub fn is_empty(&self) -> bool {
        self.edits.is_empty()
    }

    pub fn push(&mut self, start: usize, end: usize, text: String) {
        self.edits.push(Edit { start, end, text });
    }

    /// How many edits were pushed: a walk's edits are the ones pushed while it ran.
    pub(super) fn len(&self) -> usize {
        self.edits.len()
    }

    /// The edits pushed at positions `from..to` of the list, moved `offset` bytes back:
    /// a subtree's edits as they apply to a copy of its text.
    pub(super) fn moved(&self, from: usize, to: usize, offset: usize) -> Edits {
        Edits {
            edits: self.edits[from..to]
                .iter()
                .map(|e| Edit {
                    start: e.start - offset,
                    end: e.end - offset,
                    text: e.text.clone(),
                })
                .collect(),
        }
    }

    /// Removes and returns the edits that fall inside `start..end`, in order.
    pub fn take_within(&mut self, start: usize, end: usize) -> Vec<Edit> {
        self.sort();
        let (inside, outside): (Vec<Edit>, Vec<Edit>) = self
            .edits
            .drain(..)
            .partition(|e| e.start >= start && e.end <= end);
        self.edits = outside;
        inside
    }

    /// `text` with every edit applied. Edits are made by walking a tree, so none overlap;
    /// one that would (a bug) is dropped rather than corrupting the output — and the
    /// value it would have replaced is still replaced by the enclosing edit.
    pub fn apply(mut self, text: &str) -> String {
        self.sort();
        apply_sorted(text, 0, text.len(), &self.edits)
    }

    /// The edits in the order [`Edits::apply`] makes them.
    pub(super) fn into_sorted(mut self) -> Vec<Edit> {
        self.sort();
        self.edits
    }

    fn sort(&mut self) {
        self.edits
            .sort_by_key(|e| (e.start, std::cmp::Reverse(e.end)));
    }
}

/// `text[start..end]` with `edits` (sorted, inside that range) applied.
pub fn apply_sorted(text: &str, start: usize, end: usize, edits: &[Edit]) -> String {
    let mut out = String::with_capacity(end - start + 64);
    let mut cursor = start;
    for edit in edits {
        if edit.start < cursor || edit.end > end {
            continue;
        }
        out.push_str(&text[cursor..edit.start]);
        out.push_str(&edit.text);
        cursor = edit.end;
    }
    out.push_str(&text[cursor..end]);
    out
}

/// What of a string's [`Style`] writing a value into it depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needed {
    Nothing,
    Slash,
    All,
}

/// How an encoder wrote one string, read off its raw text (quotes included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Style {
    /// Every non-ASCII character as `\uXXXX` (Python's default `ensure_ascii`).
    ascii_only: bool,
    /// `/` as `\/`.
    escape_slash: bool,
    /// `<`, `>`, `&`, U+2028, U+2029 as `\u` escapes (Go's default).
    html_safe: bool,
    /// `\u00E9` rather than `\u00e9`.
    upper_hex: bool,
}

impl Style {
    /// The style of `raw`, whose decoded value is `value`. One look at each `\\` of
    /// `raw` (what a substring search for `\\/`, `\\u003c`… finds, case-insensitively
    /// for the hex digits).
    pub fn of(raw: &str, value: &str) -> Self {
        Self::read(raw, || raw.is_ascii() && !value.is_ascii())
    }

    /// [`Style::of`] a string literal (quotes included) whose value is not at hand: that
    /// the value is non-ASCII is read off the raw text's escapes instead of decoding it.
    pub fn of_literal(raw: &str) -> Self {
        Self::read(raw, || {
            raw.is_ascii() && super::string::escapes_non_ascii(&raw[1..raw.len() - 1])
        })
    }

    /// The style of `raw`; `ascii_only` says whether it is ASCII text holding a
    /// non-ASCII value (asked only if something was escaped).
    fn read(raw: &str, ascii_only: impl FnOnce() -> bool) -> Self {
        if !raw.contains('\\') {
            // Nothing was escaped; the replacement escapes only what JSON requires.
            return Self::default();
        }
        let bytes = raw.as_bytes();
        let mut style = Self {
            ascii_only: ascii_only(),
            ..Self::default()
        };
        for (i, _) in bytes.iter().enumerate().filter(|(_, b)| **b == b'\\') {
            match bytes.get(i + 1) {
                Some(b'/') => style.escape_slash = true,
                // `\\U` only where an escaped `\\` precedes a `U`: the case-insensitive
                // look for Go's escapes has always counted it.
                Some(&u @ (b'u' | b'U')) => {
                    let hex = &raw[i + 2..];
                    style.upper_hex |=
                        u == b'u' && hex.chars().take(4).any(|c| c.is_ascii_uppercase());
                    style.html_safe |= ["003c", "003e", "0026", "2028", "2029"]
                        .iter()
                        .any(|code| hex.get(..4).is_some_and(|h| h.eq_ignore_ascii_case(code)));
                }
                _ => {}
            }
        }
        style
    }

    /// How much of a string's style encoding `value` into it depends on: nothing when
    /// it holds no byte styles treat differently (`/`, `<`, `>`, `&`, control
    /// characters, non-ASCII), whether slashes are escaped when `/` is its only one.
    pub fn needed_for(value: &str) -> Needed {
        let mut needed = Needed::Nothing;
        for b in value.bytes() {
            match b {
                b'/' => needed = Needed::Slash,
                b'<' | b'>' | b'&' | 0..0x20 | 0x80.. => return Needed::All,
                _ => {}
            }
        }
        needed
    }

    /// The plain style, with `/` escaped or not: what [`Style::of`] reads for a value
    /// [`Style::needed_for`] says needs no more (`escaped`: the raw text holds `\\/`).
    pub fn slashes(escaped: bool) -> Self {
        Self {
            escape_slash: escaped,
            ..Self::default()
        }
    }

    /// `value` as a JSON string literal (quotes included) in this style. Runs of bytes
    /// that need no escape are copied whole.
    pub fn encode(&self, value: &str) -> String {
        let mut out = String::with_capacity(value.len() + 2);
        out.push('"');
        self.encode_inside(value, &mut out);
        out.push('"');
        out
    }

    /// `value` escaped in this style, without quotes, appended to `out`.
    pub fn encode_inside(&self, value: &str, out: &mut String) {
        let mut rest = value;
        while let Some(at) = rest.bytes().position(|b| self.needs_escape(b)) {
            out.push_str(&rest[..at]);
            rest = &rest[at..];
            let mut chars = rest.chars();
            if let Some(c) = chars.next() {
                self.encode_char(c, out);
            }
            rest = chars.as_str();
        }
        out.push_str(rest);
    }

    /// Whether a byte may start a character [`Style::encode_char`] escapes (every byte
    /// of a multi-byte character may, in some styles: those are looked at whole).
    fn needs_escape(&self, b: u8) -> bool {
        match b {
            b'"' | b'\\' | 0..0x20 => true,
            b'/' => self.escape_slash,
            b'<' | b'>' | b'&' => self.html_safe,
            0x80.. => self.ascii_only || self.html_safe,
            _ => false,
        }
    }

    fn encode_char(&self, c: char, out: &mut String) {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '/' if self.escape_slash => out.push_str("\\/"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' if self.html_safe => {
                self.escape_code(c as u32, out)
            }
            c if (c as u32) < 0x20 => self.escape_code(c as u32, out),
            c if !c.is_ascii() && self.ascii_only => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    self.escape_code(u32::from(*unit), out);
                }
            }
            c => out.push(c),
        }
    }

    fn escape_code(&self, code: u32, out: &mut String) {
        if self.upper_hex {
            out.push_str(&format!("\\u{code:04X}"));
        } else {
            out.push_str(&format!("\\u{code:04x}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{Needed, Style};

    /// [`Style::of`] as first written: substring searches on the raw text.
    fn style_by_search(raw: &str, value: &str) -> Style {
        if !raw.contains('\\') {
            return Style::default();
        }
        let upper_hex = raw
            .match_indices("\\u")
            .any(|(i, _)| raw[i + 2..].chars().take(4).any(|c| c.is_ascii_uppercase()));
        let lower = raw.to_ascii_lowercase();
        Style {
            ascii_only: raw.is_ascii() && !value.is_ascii(),
            escape_slash: raw.contains("\\/"),
            html_safe: ["\\u003c", "\\u003e", "\\u0026", "\\u2028", "\\u2029"]
                .iter()
                .any(|e| lower.contains(e)),
            upper_hex,
        }
    }

    /// [`Style::encode`] as first written: a character at a time.
    fn encode_by_char(style: &Style, value: &str) -> String {
        let mut out = String::from("\"");
        for c in value.chars() {
            style.encode_char(c, &mut out);
        }
        out.push('"');
        out
    }

    fn text() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                3 => "[a-zA-Z0-9 ]{0,10}",
                2 => prop::sample::select(vec![
                    "\\", "\\\\", "\\/", "/", "\\u003C", "\\u003c", "\\U003e", "\\u0026",
                    "\\u2028", "\\u00E9", "\\u00e9", "<", ">", "&", "\"", "\n", "\t", "\u{1}",
                    "\u{7f}", "é", "\u{2028}", "\u{2029}", "日本",
                ])
                .prop_map(str::to_owned),
            ],
            0..10,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest! {
        /// A value written with only the part of the style it needs is written as the
        /// whole style writes it.
        #[test]
        fn the_style_a_value_needs_writes_it_alike(raw in text(), value in text()) {
            let full = Style::of(&raw, &value);
            let enough = match Style::needed_for(&value) {
                Needed::Nothing => Style::default(),
                Needed::Slash => Style::slashes(raw.contains("\\/")),
                Needed::All => full,
            };
            prop_assert_eq!(enough.encode(&value), full.encode(&value));
        }

        /// One look per `\` reads the same style as the substring searches, and copying
        /// plain runs whole encodes as a character at a time does.
        #[test]
        fn styles_and_encodings_match_the_first_version(raw in text(), value in text()) {
            let style = Style::of(&raw, &value);
            prop_assert_eq!(style, style_by_search(&raw, &value));
            prop_assert_eq!(style.encode(&value), encode_by_char(&style, &value));
            for other in [
                Style { ascii_only: true, ..style },
                Style { html_safe: true, escape_slash: true, ..style },
            ] {
                prop_assert_eq!(other.encode(&value), encode_by_char(&other, &value));
            }
        }
    }
}
