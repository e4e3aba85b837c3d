//! A secret split across two consecutive stream messages (two SSE events: a log line
//! printed in two notifications, a progress message continued in the next).
//!
//! Each message is masked on its own, so a secret cut in two is missed whenever neither
//! half matches alone. With `mask.stream_holdback` on, the gateway keeps a notification
//! back until the next message arrives (or the wait runs out) and joins them here: the
//! end of each string of the earlier message is joined to the start of the string at the
//! same JSON path in the later one (`params.data` to `params.data`, `params.message` to
//! `params.message`), and the joined text is scanned. A secret the join finds that neither
//! side shows alone is masked in both messages: each keeps a placeholder where its part
//! was. Everything else is left to the ordinary per-message masking that follows.

use std::{borrow::Cow, fmt, ops::Range, time::Duration};

use serde::{Deserialize, Deserializer, de};

use super::{
    MaskReport, Masker,
    json::{Doc, Edits, Kind, NodeId, Style},
    scan::with_placeholders,
};

/// How long a notification waits for its successor when only a size was configured.
pub const DEFAULT_WAIT: Duration = Duration::from_millis(250);
/// How much of each side of a seam is joined when only a wait was configured: more than
/// any single-line credential, and an RSA-4096 PEM key (about 3.2 KiB) fits.
pub const DEFAULT_WINDOW: usize = 4096;
/// String values of one message considered for joining; a notification holds a handful.
const MAX_STRINGS: usize = 64;

/// `mask.stream_holdback`: `"250ms"` / `"2s"` / an integer of milliseconds sets how long
/// a notification is held for its successor (the seam window is then
/// [`DEFAULT_WINDOW`]); `"8KiB"` / `"8192B"` sets the seam window (the wait is then
/// [`DEFAULT_WAIT`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamHoldback {
    /// Longest a notification is held back waiting for the next message.
    pub wait: Duration,
    /// Bytes of each side of a seam joined and scanned.
    pub window: usize,
}

impl StreamHoldback {
    fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let number: u64 = number
            .parse()
            .map_err(|_| format!("{text:?}: expected a number and a unit (250ms, 2s, 8KiB)"))?;
        let wait = |wait: Duration| Self {
            wait,
            window: DEFAULT_WINDOW,
        };
        let window = |bytes: u64| Self {
            wait: DEFAULT_WAIT,
            window: usize::try_from(bytes).unwrap_or(usize::MAX),
        };
        let holdback = match unit.trim() {
            "ms" => wait(Duration::from_millis(number)),
            "s" => wait(Duration::from_secs(number)),
            "B" => window(number),
            "KiB" => window(number.saturating_mul(1024)),
            other => {
                return Err(format!(
                    "{text:?}: unknown unit {other:?} (ms, s, B or KiB)"
                ));
            }
        };
        if holdback.wait.is_zero() || holdback.window == 0 {
            return Err(format!(
                "{text:?}: must be more than zero (leave it out for off)"
            ));
        }
        if holdback.wait > Duration::from_secs(10) {
            return Err(format!(
                "{text:?}: over 10 s would stall every notification a client waits for"
            ));
        }
        Ok(holdback)
    }
}

impl<'de> Deserialize<'de> for StreamHoldback {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = StreamHoldback;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a wait such as \"250ms\" or a size such as \"8KiB\"")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<StreamHoldback, E> {
                StreamHoldback::parse(text).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, ms: i64) -> Result<StreamHoldback, E> {
                StreamHoldback::parse(&format!("{ms}ms")).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// What joining two messages found: each side rewritten when a part of a split secret
/// was in it, with the placeholders it got.
#[derive(Debug, Default)]
pub struct Seam {
    pub earlier: Option<String>,
    pub later: Option<String>,
    pub earlier_report: MaskReport,
    pub later_report: MaskReport,
}

/// One string value of a message, and where it sits.
struct Leaf {
    path: Vec<Step>,
    /// Its node in the parsed message, or `None` when the message is plain text (the
    /// whole text is then the one string).
    node: Option<NodeId>,
}

#[derive(Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// A parsed message: JSON, or plain text when it is not JSON.
enum Message<'a> {
    Json(Doc<'a>),
    Text(&'a str),
}

impl<'a> Message<'a> {
    fn parse(text: &'a str) -> Self {
        match Doc::parse(text, super::MAX_DEPTH) {
            Ok(doc) => Self::Json(doc),
            Err(_) => Self::Text(text),
        }
    }

    fn leaves(&self) -> Vec<Leaf> {
        match self {
            Self::Text(_) => vec![Leaf {
                path: Vec::new(),
                node: None,
            }],
            Self::Json(doc) => {
                let mut leaves = Vec::new();
                let mut path = Vec::new();
                collect(doc, doc.root(), &mut path, &mut leaves);
                leaves
            }
        }
    }

    fn value(&self, leaf: &Leaf) -> Cow<'a, str> {
        match (self, leaf.node) {
            (Self::Json(doc), Some(node)) => doc.str(node).unwrap_or_default(),
            (Self::Text(text), _) => Cow::Borrowed(text),
            (Self::Json(_), None) => Cow::Borrowed(""),
        }
    }

    /// This message with the leaves' new values in place, keeping everything else as the
    /// server wrote it.
    fn rewritten(&self, changes: Vec<(&Leaf, String)>) -> Option<String> {
        if changes.is_empty() {
            return None;
        }
        match self {
            Self::Text(_) => changes.into_iter().next().map(|(_, value)| value),
            Self::Json(doc) => {
                let mut edits = Edits::default();
                for (leaf, value) in changes {
                    let Some(node) = leaf.node else { continue };
                    let (start, end) = doc.span(node);
                    let style = Style::of(doc.raw(node), &doc.str(node).unwrap_or_default());
                    edits.push(start, end, style.encode(&value));
                }
                Some(edits.apply(doc.text()))
            }
        }
    }
}

fn collect(doc: &Doc<'_>, node: NodeId, path: &mut Vec<Step>, leaves: &mut Vec<Leaf>) {
    if leaves.len() >= MAX_STRINGS {
        return;
    }
    match doc.kind(node) {
        Kind::String { .. } => leaves.push(Leaf {
            path: path.clone(),
            node: Some(node),
        }),
        Kind::Object => {
            for child in doc.children(node) {
                path.push(Step::Key(doc.key(child).unwrap_or_default().into_owned()));
                collect(doc, child, path, leaves);
                path.pop();
            }
        }
        Kind::Array => {
            for (index, child) in doc.children(node).enumerate() {
                path.push(Step::Index(index));
                collect(doc, child, path, leaves);
                path.pop();
            }
        }
        Kind::Number | Kind::Bool(_) | Kind::Null => {}
    }
}

/// Ranges of one string with the rule naming each, sorted and disjoint.
type Ranges = Vec<(Range<usize>, &'static str)>;

impl Masker {
    /// Joins the strings of two consecutive messages at each JSON path they share (or the
    /// two texts, when neither is JSON) and masks, in both, the parts of every secret
    /// only the join shows. `window` bounds the bytes taken from each side.
    pub fn mask_seam(&self, earlier: &str, later: &str, window: usize) -> Seam {
        let mut seam = Seam::default();
        if !self.enabled {
            return seam;
        }
        let (first, second) = (Message::parse(earlier), Message::parse(later));
        if matches!(first, Message::Json(_)) != matches!(second, Message::Json(_)) {
            return seam;
        }
        let (first_leaves, second_leaves) = (first.leaves(), second.leaves());
        let mut first_changes = Vec::new();
        let mut second_changes = Vec::new();
        for a_leaf in &first_leaves {
            let Some(b_leaf) = second_leaves.iter().find(|b| b.path == a_leaf.path) else {
                continue;
            };
            let (a, b) = (first.value(a_leaf), second.value(b_leaf));
            let (a_ranges, b_ranges) = self.split_secrets(&a, &b, window);
            for (_, rule) in &a_ranges {
                seam.earlier_report.hit(rule);
            }
            for (_, rule) in &b_ranges {
                seam.later_report.hit(rule);
            }
            if !a_ranges.is_empty() {
                first_changes.push((a_leaf, with_placeholders(&a, a_ranges)));
            }
            if !b_ranges.is_empty() {
                second_changes.push((b_leaf, with_placeholders(&b, b_ranges)));
            }
        }
        seam.earlier = first.rewritten(first_changes);
        seam.later = second.rewritten(second_changes);
        seam
    }

    /// The ranges of `a` and of `b` that belong to a secret found in the end of `a`
    /// joined to the start of `b` and overlapping nothing either part shows alone.
    fn split_secrets(&self, a: &str, b: &str, window: usize) -> (Ranges, Ranges) {
        // At most `window` bytes of each side, in whole characters.
        let tail_start = a.ceil_char_boundary(a.len().saturating_sub(window));
        let head_end = b.floor_char_boundary(window);
        let (tail, head) = (&a[tail_start..], &b[..head_end]);
        let mut joined = String::with_capacity(tail.len() + head.len());
        joined.push_str(tail);
        joined.push_str(head);
        let at = tail.len();
        let scanner = &self.rules.scanner;
        let found = scanner.secret_ranges(&joined);
        let (mut a_ranges, mut b_ranges) = (Vec::new(), Vec::new());
        if found.is_empty() {
            return (a_ranges, b_ranges);
        }
        let mut alone = scanner.secret_ranges(tail);
        alone.extend(
            scanner
                .secret_ranges(head)
                .into_iter()
                .map(|(range, rule)| (range.start + at..range.end + at, rule)),
        );
        for (range, rule) in found {
            // A secret one side shows alone is that side's to mask; joined, it may only
            // look longer (a token the rule lets run on into the next message's text).
            let seen_alone = alone
                .iter()
                .any(|(side, _)| side.start < range.end && range.start < side.end);
            if seen_alone {
                continue;
            }
            if range.start < at {
                a_ranges.push((
                    tail_start + range.start..tail_start + range.end.min(at),
                    rule,
                ));
            }
            if range.end > at {
                b_ranges.push((range.start.max(at) - at..range.end - at, rule));
            }
        }
        // `found` is sorted and disjoint, and each part lies inside its range: so are
        // the parts.
        (a_ranges, b_ranges)
    }
}

#[cfg(test)]
mod tests;
