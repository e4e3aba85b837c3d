//! A JSON text parsed into byte spans, so that masking can rewrite one value and leave
//! every other byte of a server's message as the server wrote it.
//!
//! `serde_json::Value` forgets what a client might notice: key order (its map is sorted),
//! indentation, and how strings were escaped (`\u00e9` or `é`, `\/`, Go's `\u003c`). So
//! the masker decides on this span tree and edits the original text.
//!
//! The grammar is RFC 8259's, strictly: a text this parser refuses is not JSON and is
//! masked as free text instead. It accepts two things serde_json refuses, because the
//! grammar allows them and lenient clients (JavaScript's `JSON.parse`, Python's `json`)
//! read them: a lone surrogate escape (`"\ud800"`, decoded to U+FFFD for matching) and a
//! number beyond `f64` (`1e400`). A body holding one reaches the masker as text that
//! serde_json could not parse, and [`crate::mask::Masker::mask_text`] masks it as JSON,
//! by key too, rather than releasing it with pattern masking only. Nesting is capped by
//! the caller, since the masker counts JSON inside strings as nesting too.

use std::borrow::Cow;

use super::{
    edit::{Edits, Needed, Style, apply_sorted},
    string::{decode, decodes_to, edited},
};

/// An index into [`Doc`]'s nodes.
pub type NodeId = u32;

const NONE: u32 = u32::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Object,
    Array,
    /// `escaped`: the raw text holds at least one `\` escape, so its value must be decoded.
    String {
        escaped: bool,
    },
    Number,
    Bool(bool),
    Null,
}

#[derive(Debug, Clone, Copy)]
struct Node {
    kind: Kind,
    start: u32,
    end: u32,
    /// The member key's raw span (quotes included) when this node is an object member's
    /// value; `start == end` otherwise.
    key_start: u32,
    key_end: u32,
    key_escaped: bool,
    /// The next sibling, or [`NONE`].
    next: u32,
    /// Children are stored right after their parent; this says whether there are any.
    has_children: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("not JSON (at byte {0})")]
    Syntax(usize),
    #[error("JSON nested deeper than the masker follows")]
    TooDeep,
}

/// A parsed JSON text: the text itself and one span per value.
pub struct Doc<'a> {
    text: &'a str,
    nodes: Vec<Node>,
    /// See [`Doc::serde_may_refuse`].
    serde_may_refuse: bool,
}

/// serde_json refuses a container inside this many others (its recursion limit: 127
/// nested containers parse, 128 do not).
const SERDE_DEPTH: usize = 127;
/// A number this large or larger is checked by serde_json itself: its float parsing need
/// not round exactly as ours does near `f64::MAX`, so only numbers well below it are
/// known to parse.
const SERDE_SURE_BELOW: f64 = 1e300;

impl<'a> Doc<'a> {
    /// Parses one JSON value (surrounding whitespace allowed) nested at most `max_depth`
    /// containers deep.
    pub fn parse(text: &'a str, max_depth: usize) -> Result<Self, ParseError> {
        if text.len() >= NONE as usize {
            return Err(ParseError::Syntax(0));
        }
        let mut parser = Parser {
            bytes: text.as_bytes(),
            pos: 0,
            // About one value per 16 bytes of typical MCP JSON: one allocation, mostly.
            nodes: Vec::with_capacity(text.len() / 16 + 1),
            max_depth,
            serde_may_refuse: false,
        };
        parser.value(0, None)?;
        parser.whitespace();
        if parser.pos != text.len() {
            return Err(ParseError::Syntax(parser.pos));
        }
        Ok(Self {
            text,
            nodes: parser.nodes,
            serde_may_refuse: parser.serde_may_refuse,
        })
    }

    /// Whether serde_json might refuse this text, which this parser took: a number
    /// beyond `f64` (or near its limit), a surrogate escape without its pair, or more
    /// containers nested than serde_json follows ([`SERDE_DEPTH`]). `false` means `serde_json::from_str::<Value>`
    /// succeeds on it, so a caller that needs serde's verdict, not its value, can skip
    /// that parse (the differential test holds this on generated texts).
    pub fn serde_may_refuse(&self) -> bool {
        self.serde_may_refuse
    }

    pub fn text(&self) -> &'a str {
        self.text
    }

    pub fn root(&self) -> NodeId {
        0
    }

    pub fn kind(&self, node: NodeId) -> Kind {
        self.node(node).kind
    }

    /// The node's raw bytes range in [`Doc::text`] (a string's includes its quotes).
    pub fn span(&self, node: NodeId) -> (usize, usize) {
        let n = self.node(node);
        (n.start as usize, n.end as usize)
    }

    /// The raw text of a node.
    pub fn raw(&self, node: NodeId) -> &'a str {
        let (start, end) = self.span(node);
        &self.text[start..end]
    }

    /// Children in document order: an array's items, or an object's member values (their
    /// keys through [`Doc::key`]).
    pub fn children(&self, node: NodeId) -> Children<'_, 'a> {
        let next = if self.node(node).has_children {
            node + 1
        } else {
            NONE
        };
        Children { doc: self, next }
    }

    /// The decoded key of an object member's value node.
    pub fn key(&self, node: NodeId) -> Option<Cow<'a, str>> {
        let n = self.node(node);
        (n.key_start < n.key_end).then(|| {
            let inner = &self.text[n.key_start as usize + 1..n.key_end as usize - 1];
            decode(inner, n.key_escaped)
        })
    }

    /// The raw inside of an object member's key (between the quotes), and whether it
    /// holds escapes.
    pub fn key_raw(&self, node: NodeId) -> Option<(&'a str, bool)> {
        let n = self.node(node);
        (n.key_start < n.key_end).then(|| {
            (
                &self.text[n.key_start as usize + 1..n.key_end as usize - 1],
                n.key_escaped,
            )
        })
    }

    /// The raw span of an object member's key (quotes included).
    pub fn key_span(&self, node: NodeId) -> Option<(usize, usize)> {
        let n = self.node(node);
        (n.key_start < n.key_end).then_some((n.key_start as usize, n.key_end as usize))
    }

    /// The decoded value of a string node (`None` for other kinds).
    pub fn str(&self, node: NodeId) -> Option<Cow<'a, str>> {
        let Kind::String { escaped } = self.kind(node) else {
            return None;
        };
        let (start, end) = self.span(node);
        Some(decode(&self.text[start + 1..end - 1], escaped))
    }

    /// Whether string `node`'s decoded value is exactly `target` (false for other kinds),
    /// without decoding it into a new string.
    pub fn str_is(&self, node: NodeId, target: &str) -> bool {
        let Kind::String { escaped } = self.kind(node) else {
            return false;
        };
        let (start, end) = self.span(node);
        decodes_to(&self.text[start + 1..end - 1], escaped, target)
    }

    /// String `node`'s literal (quotes included) with `changes` made to its decoded value
    /// (`None` for other kinds). Only the changed bytes differ from the server's text:
    /// the rest keeps its escapes, and each replacement is escaped in the string's own
    /// style ([`Style`]), read only as far as the replacement holds bytes styles differ
    /// on.
    pub fn str_edited(&self, node: NodeId, changes: Edits) -> Option<String> {
        let Kind::String { escaped } = self.kind(node) else {
            return None;
        };
        let raw = self.raw(node);
        let inner = &raw[1..raw.len() - 1];
        let changes = changes.into_sorted();
        // Read once, and only as far as a replacement needs: a large escaped string
        // holds thousands of escapes.
        let (mut slashes, mut style) = (None, None);
        let in_place = edited(inner, &changes, |text, out| {
            let style = match Style::needed_for(text) {
                Needed::Nothing => Style::default(),
                Needed::Slash => {
                    *slashes.get_or_insert_with(|| Style::slashes(raw.contains("\\/")))
                }
                Needed::All => *style.get_or_insert_with(|| Style::of_literal(raw)),
            };
            style.encode_inside(text, out);
        });
        in_place.or_else(|| {
            // An edit inside one escape's bytes: the whole value re-encoded.
            let value = decode(inner, escaped);
            let changed = apply_sorted(&value, 0, value.len(), &changes);
            Some(Style::of(raw, &value).encode(&changed))
        })
    }

    /// The value of the member `key` of an object node: the last, if repeated, which is
    /// the one JSON parsers keep (JavaScript's `JSON.parse`, Python's `json`,
    /// serde_json). For a decision every copy must satisfy, use [`Doc::members`].
    pub fn member(&self, object: NodeId, key: &str) -> Option<NodeId> {
        self.members(object, key).last()
    }

    /// Every member `key` of an object node, in order. A repeated key is valid JSON and
    /// parsers differ on which copy they keep (most the last, some the first, a few
    /// refuse), so what the gateway masks or hides it must do to every copy: a server
    /// must not get a secret past it by writing a `result` twice.
    pub fn members<'d>(
        &'d self,
        object: NodeId,
        key: &'d str,
    ) -> impl Iterator<Item = NodeId> + 'd {
        let children = (self.kind(object) == Kind::Object).then(|| self.children(object));
        children
            .into_iter()
            .flatten()
            .filter(move |&child| self.key(child).is_some_and(|k| k == key))
    }

    fn node(&self, node: NodeId) -> &Node {
        &self.nodes[node as usize]
    }
}

pub struct Children<'d, 'a> {
    doc: &'d Doc<'a>,
    next: u32,
}

impl Iterator for Children<'_, '_> {
    type Item = NodeId;

    fn next(&mut self) -> Option<NodeId> {
        (self.next != NONE).then(|| {
            let current = self.next;
            self.next = self.doc.node(current).next;
            current
        })
    }
}

/// Bytes that end a plain run inside a string: `"`, `\\` and control characters.
const STRING_STOP: [bool; 256] = {
    let mut stop = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        stop[b] = true;
        b += 1;
    }
    stop[b'"' as usize] = true;
    stop[b'\\' as usize] = true;
    stop
};

/// The length of the plain run at the start of `rest`: bytes up to the first
/// [`STRING_STOP`] byte, or all of them.
///
/// Eight bytes per step (SWAR): `(x - 0x01…) & !x & 0x80…` flags the zero bytes of `x`
/// (and, through the borrow, possibly bytes above a flagged one), so its lowest flag is
/// exact; the same with `0x20…` flags bytes below 0x20. A step costs a dozen operations
/// for eight bytes where the table costs a load and a branch per byte.
fn plain_run(rest: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut at = 0;
    while let Some(chunk) = rest.get(at..at + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        let quote = x ^ (ONES * u64::from(b'"'));
        let escape = x ^ (ONES * u64::from(b'\\'));
        let flags = (quote.wrapping_sub(ONES) & !quote)
            | (escape.wrapping_sub(ONES) & !escape)
            | (x.wrapping_sub(ONES * 0x20) & !x);
        let flags = flags & HIGH;
        if flags != 0 {
            return at + flags.trailing_zeros() as usize / 8;
        }
        at += 8;
    }
    at + rest[at..]
        .iter()
        .position(|&b| STRING_STOP[usize::from(b)])
        .unwrap_or(rest.len() - at)
}

struct Parser<'b> {
    bytes: &'b [u8],
    pos: usize,
    nodes: Vec<Node>,
    max_depth: usize,
    serde_may_refuse: bool,
}

impl Parser<'_> {
    fn error(&self) -> ParseError {
        ParseError::Syntax(self.pos)
    }

    fn whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> Result<(), ParseError> {
        self.whitespace();
        if self.bytes.get(self.pos) == Some(&byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error())
        }
    }

    /// Parses the value at `pos` into a new node; `key` is its member key's span.
    fn value(&mut self, depth: usize, key: Option<(u32, u32, bool)>) -> Result<u32, ParseError> {
        self.whitespace();
        let index = self.nodes.len() as u32;
        let (key_start, key_end, key_escaped) = key.unwrap_or((0, 0, false));
        self.nodes.push(Node {
            kind: Kind::Null,
            start: self.pos as u32,
            end: 0,
            key_start,
            key_end,
            key_escaped,
            next: NONE,
            has_children: false,
        });
        let kind = match self.bytes.get(self.pos).copied() {
            Some(open @ (b'{' | b'[')) => {
                if depth >= self.max_depth {
                    return Err(ParseError::TooDeep);
                }
                self.serde_may_refuse |= depth >= SERDE_DEPTH;
                self.pos += 1;
                self.container(index, depth, open == b'{')?;
                if open == b'{' {
                    Kind::Object
                } else {
                    Kind::Array
                }
            }
            Some(b'"') => Kind::String {
                escaped: self.string()?,
            },
            Some(b't') => self.literal(b"true", Kind::Bool(true))?,
            Some(b'f') => self.literal(b"false", Kind::Bool(false))?,
            Some(b'n') => self.literal(b"null", Kind::Null)?,
            Some(b'-' | b'0'..=b'9') => self.number()?,
            _ => return Err(self.error()),
        };
        let node = &mut self.nodes[index as usize];
        node.kind = kind;
        node.end = self.pos as u32;
        Ok(index)
    }

    /// The members or items after an opening bracket, through the closing one.
    fn container(&mut self, index: u32, depth: usize, object: bool) -> Result<(), ParseError> {
        let close = if object { b'}' } else { b']' };
        self.whitespace();
        if self.bytes.get(self.pos) == Some(&close) {
            self.pos += 1;
            return Ok(());
        }
        let mut previous = NONE;
        loop {
            let key = if object {
                self.whitespace();
                if self.bytes.get(self.pos) != Some(&b'"') {
                    return Err(self.error());
                }
                let start = self.pos as u32;
                let escaped = self.string()?;
                let end = self.pos as u32;
                self.eat(b':')?;
                Some((start, end, escaped))
            } else {
                None
            };
            let child = self.value(depth + 1, key)?;
            if previous == NONE {
                self.nodes[index as usize].has_children = true;
            } else {
                self.nodes[previous as usize].next = child;
            }
            previous = child;
            self.whitespace();
            match self.bytes.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(&b) if b == close => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.error()),
            }
        }
    }

    /// A string starting at its opening quote; returns whether it holds escapes.
    fn string(&mut self) -> Result<bool, ParseError> {
        self.pos += 1;
        let mut escaped = false;
        loop {
            // The plain run up to the next quote, escape or (invalid) control character.
            self.pos += plain_run(&self.bytes[self.pos..]);
            let Some(&b) = self.bytes.get(self.pos) else {
                return Err(self.error());
            };
            match b {
                b'"' => {
                    self.pos += 1;
                    return Ok(escaped);
                }
                b'\\' => {
                    escaped = true;
                    match self.bytes.get(self.pos + 1) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                            self.pos += 2;
                        }
                        Some(b'u') => {
                            let Some(unit) = self.hex_escape(self.pos) else {
                                return Err(self.error());
                            };
                            self.pos += 6;
                            match unit {
                                // A pair: the low half must follow at once.
                                0xD800..=0xDBFF => match self.hex_escape(self.pos) {
                                    Some(0xDC00..=0xDFFF) => self.pos += 6,
                                    _ => self.serde_may_refuse = true,
                                },
                                0xDC00..=0xDFFF => self.serde_may_refuse = true,
                                _ => {}
                            }
                        }
                        _ => return Err(self.error()),
                    }
                }
                0..=0x1f => return Err(self.error()),
                _ => self.pos += 1,
            }
        }
    }

    /// The code unit of the `\uXXXX` escape at `at`, if one is there.
    fn hex_escape(&self, at: usize) -> Option<u16> {
        let escape = self.bytes.get(at..at + 6)?;
        let hex = std::str::from_utf8(escape.strip_prefix(b"\\u")?).ok()?;
        // `from_str_radix` takes a sign, JSON does not.
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u16::from_str_radix(hex, 16).ok()
    }

    /// Flags the number from `start` to here if it is not well below `f64::MAX` (only
    /// numbers with an exponent or over 300 characters can be).
    fn check_magnitude(&mut self, start: usize) {
        let sure = std::str::from_utf8(&self.bytes[start..self.pos])
            .ok()
            .and_then(|number| number.parse::<f64>().ok())
            .is_some_and(|value| value.abs() < SERDE_SURE_BELOW);
        self.serde_may_refuse |= !sure;
    }

    fn literal(&mut self, word: &[u8], kind: Kind) -> Result<Kind, ParseError> {
        if self.bytes[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(kind)
        } else {
            Err(self.error())
        }
    }

    fn number(&mut self) -> Result<Kind, ParseError> {
        let digits = |p: &mut Self| {
            let start = p.pos;
            while p.bytes.get(p.pos).is_some_and(u8::is_ascii_digit) {
                p.pos += 1;
            }
            p.pos > start
        };
        let start = self.pos;
        if self.bytes.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        if self.bytes.get(self.pos) == Some(&b'0') {
            self.pos += 1;
        } else if !digits(self) {
            return Err(self.error());
        }
        if self.bytes.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            if !digits(self) {
                return Err(self.error());
            }
        }
        if let Some(b'e' | b'E') = self.bytes.get(self.pos) {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.bytes.get(self.pos) {
                self.pos += 1;
            }
            if !digits(self) {
                return Err(self.error());
            }
            self.check_magnitude(start);
        } else if self.pos - start > 300 {
            self.check_magnitude(start);
        }
        Ok(Kind::Number)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{Doc, STRING_STOP, plain_run};
    use crate::mask::MAX_DEPTH;

    /// serde_json's verdict and ours: `(serde parses it, we parse it, we flag it)`.
    fn verdicts(text: &str) -> (bool, bool, bool) {
        let serde = serde_json::from_str::<serde_json::Value>(text).is_ok();
        let ours = Doc::parse(text, MAX_DEPTH);
        let flagged = ours.as_ref().is_ok_and(Doc::serde_may_refuse);
        (serde, ours.is_ok(), flagged)
    }

    #[test]
    fn what_serde_refuses_is_flagged() {
        for text in [
            "1e400",
            "[-1e400]",
            "1.8e308",
            r#"{"n": 1E+309}"#,
            &format!("{}0", "9".repeat(310)),
            r#""\ud800""#,
            r#""\udc00""#,
            r#""\ud83d\u0041""#,
            r#""\ud83d x""#,
            &format!("{}{}", "[".repeat(128), "]".repeat(128)),
        ] {
            let (serde, ours, flagged) = verdicts(text);
            assert!(!serde, "serde took {text:.40}");
            assert!(ours && flagged, "not flagged: {text:.40}");
        }
    }

    #[test]
    fn what_serde_takes_is_not_flagged() {
        for text in [
            "1e-05",
            "1e-400",
            "-0.5E+10",
            "1.7976931348623157e299",
            &"9".repeat(300),
            r#""\ud83d\ude00 \u00e9 \u0041""#,
            &format!("{}{}", "[".repeat(127), "]".repeat(127)),
        ] {
            let (serde, ours, flagged) = verdicts(text);
            assert!(
                serde && ours && !flagged,
                "{text:.40}: {:?}",
                (serde, ours, flagged)
            );
        }
    }

    /// JSON-like texts from pieces serde_json and RFC 8259 disagree on (numbers near and
    /// beyond `f64`, surrogate escapes paired and not, deep nesting) and some that are
    /// not JSON at all.
    fn json_like() -> impl Strategy<Value = String> {
        let number = prop_oneof![
            Just("0".to_owned()),
            Just("-12.5e-3".to_owned()),
            Just("1e308".to_owned()),
            Just("1.7976931348623157e308".to_owned()),
            Just("1.7976931348623159e308".to_owned()),
            Just("2e308".to_owned()),
            Just("-1e999".to_owned()),
            Just("1e-999".to_owned()),
            Just("01".to_owned()),
            (1usize..340).prop_map(|n| "7".repeat(n)),
            any::<f64>().prop_map(|f| format!("{f:e}")),
        ];
        let piece = prop_oneof![
            Just("plain"),
            Just("\\n"),
            Just("\\\""),
            Just("\\u00e9"),
            Just("\\ud83d\\ude00"),
            Just("\\ud83d"),
            Just("\\ude00"),
            Just("\\uDBFF\\uDFFF"),
            Just("\\ud800\\ud800"),
            Just("\\uZZZZ"),
            Just("\\x"),
        ];
        let string = prop::collection::vec(piece, 0..4).prop_map(|p| format!("\"{}\"", p.concat()));
        let leaf = prop_oneof![
            number,
            string.clone(),
            Just("true".to_owned()),
            Just("null".to_owned())
        ];
        let tree = leaf.prop_recursive(3, 24, 4, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4)
                    .prop_map(|v| format!("[{}]", v.join(","))),
                prop::collection::vec((string.clone(), inner), 0..4).prop_map(|v| {
                    let members: Vec<String> =
                        v.into_iter().map(|(k, v)| format!("{k}:{v}")).collect();
                    format!("{{{}}}", members.join(","))
                }),
            ]
        });
        (tree, 0usize..132)
            .prop_map(|(tree, depth)| format!("{}{tree}{}", "[".repeat(depth), "]".repeat(depth)))
    }

    proptest! {
        /// The eight-byte steps stop exactly where a byte-by-byte look does.
        #[test]
        fn plain_run_stops_at_the_first_stop_byte(
            bytes in prop::collection::vec(
                prop_oneof![4 => 0x20u8..0x7f, 1 => any::<u8>(), 1 => Just(b'"'), 1 => Just(b'\\')],
                0..40,
            )
        ) {
            let expected = bytes
                .iter()
                .position(|&b| STRING_STOP[usize::from(b)])
                .unwrap_or(bytes.len());
            prop_assert_eq!(plain_run(&bytes), expected);
        }

        /// A text we parse and do not flag is one serde_json parses (a caller skips
        /// serde's parse on that), and one serde_json parses we parse too.
        #[test]
        fn unflagged_texts_are_ones_serde_takes(text in json_like()) {
            let (serde, ours, flagged) = verdicts(&text);
            prop_assert!(!ours || flagged || serde, "serde refused an unflagged text: {}", text);
            prop_assert!(!serde || ours, "serde took a text we refuse: {}", text);
        }
    }
}
