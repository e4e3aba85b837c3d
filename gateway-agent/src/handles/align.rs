//! Which original span each `[MASKED:…]` placeholder of a masked text replaced. The masker
//! changes nothing but those spans, so the text between placeholders is the original's,
//! and each placeholder's span ends where the following unchanged text begins. A
//! placeholder whose span cannot be told (two placeholders side by side, text that does
//! not line up) is left as it is: a blank is always safe.

use std::ops::Range;

const OPEN: &str = "[MASKED:";

/// A placeholder in the masked text and the original span it replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub masked: Range<usize>,
    pub original: Range<usize>,
}

/// Every recoverable placeholder, in order; `None` when the texts do not line up at all.
pub fn placeholders(original: &str, masked: &str) -> Option<Vec<Span>> {
    let mut spans = Vec::new();
    let (mut i, mut j) = (0usize, 0usize);
    while let Some(found) = masked[j..].find(OPEN) {
        let p = j + found;
        let same = &masked[j..p];
        if !original[i..].starts_with(same) {
            return None;
        }
        i += same.len();
        let q = p + masked[p..].find(']')? + 1;
        let next = masked[q..].find(OPEN).map_or(masked.len(), |n| q + n);
        let anchor = &masked[q..next];
        let end = if next == masked.len() && anchor.is_empty() {
            original.len()
        } else if anchor.is_empty() {
            // Side by side: where one secret ends and the next begins is unknown.
            j = q;
            continue;
        } else {
            // The unchanged text after the span; the secret is at least one character.
            let from = i + original[i..].chars().next()?.len_utf8();
            from + original[from..].find(anchor)?
        };
        spans.push(Span {
            masked: p..q,
            original: i..end,
        });
        i = end;
        j = q;
    }
    Some(spans)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_line_up_with_the_original() {
        let original = r#"{"text":"token ghp_abc and key AKIA1 end"}"#;
        let masked = r#"{"text":"token [MASKED:github] and key [MASKED:aws] end"}"#;
        let spans = placeholders(original, masked).unwrap();
        let values: Vec<&str> = spans
            .iter()
            .map(|s| &original[s.original.clone()])
            .collect();
        assert_eq!(values, ["ghp_abc", "AKIA1"]);
        assert_eq!(&masked[spans[1].masked.clone()], "[MASKED:aws]");
    }

    #[test]
    fn side_by_side_placeholders_are_left_alone_and_misaligned_text_gives_nothing() {
        let spans = placeholders("a XY b", "a [MASKED:x][MASKED:y] b").unwrap();
        assert_eq!(spans.len(), 1);
        assert_eq!(&"a XY b"[spans[0].original.clone()], "XY");
        assert!(placeholders("abc", "xyz [MASKED:x]").is_none());
    }

    #[test]
    fn a_placeholder_at_the_end() {
        let spans = placeholders("key=sekrit", "key=[MASKED:k]").unwrap();
        assert_eq!(&"key=sekrit"[spans[0].original.clone()], "sekrit");
    }
}
