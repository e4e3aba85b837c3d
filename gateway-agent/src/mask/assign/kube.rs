//! A Kubernetes `Secret` manifest printed as YAML (`kubectl get secret -o yaml`, a
//! manifest in a repository, `helm template`): every value under its top-level `data:`
//! or `stringData:` is secret, whatever its key is called (`STRIPE_WEBHOOK_SIGNING`,
//! `tls.key`, `.dockerconfigjson`). The JSON walk reads the same shape in JSON; this is
//! the text reader, found from the `Secret` of its `kind: Secret` line.
//!
//! Lines are split at real and at JSON-escaped (`\n`) line breaks, so a manifest inside
//! a log line is read too. Bounded: the document is looked for within [`REACH`] bytes
//! either side of `kind:` (`kubectl` sorts `data` before `kind`), and ends at `---`, a
//! line indented less than `kind:`, or the reach.

use super::Found;
use super::lexis::secret;

/// How far from `kind: Secret` its document is read, each way.
const REACH: usize = 64 * 1024;

/// A line: where it starts and ends, and where its content starts (after indentation).
#[derive(Clone, Copy)]
struct Line {
    start: usize,
    content: usize,
    end: usize,
}

/// The lines of `text[from..to]`, split at `\n` and at an escaped `\n`.
fn lines(text: &[u8], from: usize, to: usize) -> Vec<Line> {
    let mut out = Vec::new();
    let mut start = from;
    let mut i = from;
    while i < to {
        let width = match text[i] {
            b'\n' => 1,
            b'\\' if text.get(i + 1) == Some(&b'n') => 2,
            _ => 0,
        };
        if width > 0 {
            out.push(line(text, start, i));
            i += width;
            start = i;
        } else {
            i += 1;
        }
    }
    out.push(line(text, start, to));
    out
}

fn line(text: &[u8], start: usize, mut end: usize) -> Line {
    if end > start && text[end - 1] == b'\r' {
        end -= 1;
    }
    if end >= start + 2 && &text[end - 2..end] == b"\\r" {
        end -= 2;
    }
    let mut content = start;
    while content < end && text[content] == b' ' {
        content += 1;
    }
    Line {
        start,
        content,
        end,
    }
}

/// The secret values of the manifest whose `kind: Secret` has `Secret` at
/// `name_start..name_end`; `None` when it is not such a line.
pub(super) fn secret_values(text: &[u8], name_start: usize, name_end: usize) -> Option<Vec<Found>> {
    let before = &text[..name_start];
    let trimmed = before.len() - before.iter().rev().take_while(|&&b| b == b' ').count();
    if !before[..trimmed].ends_with(b"kind:") {
        return None;
    }
    let from = name_start.saturating_sub(REACH);
    let to = text.len().min(name_end + REACH);
    let all = lines(text, from, to);
    let here = all
        .iter()
        .position(|l| l.start <= name_start && name_start <= l.end)?;
    let kind_line = all[here];
    if kind_line.content + 5 != trimmed || kind_line.end != name_end {
        return None; // not `kind: Secret` alone on its line
    }
    let indent = kind_line.content - kind_line.start;
    let ends_document = |l: &Line| {
        let content = &text[l.content..l.end];
        content.starts_with(b"---") || (!content.is_empty() && l.content - l.start < indent)
    };
    let first = all[..here]
        .iter()
        .rposition(&ends_document)
        .map_or(0, |p| p + 1);
    let last = all[here + 1..]
        .iter()
        .position(&ends_document)
        .map_or(all.len(), |p| here + 1 + p);
    let document = &all[first..last];
    let mut found = Vec::new();
    let mut under = false;
    for l in document {
        let content = &text[l.content..l.end];
        let depth = l.content - l.start;
        if depth == indent {
            under = content == b"data:" || content == b"stringData:";
            continue;
        }
        if !under || depth < indent || content.is_empty() {
            continue;
        }
        if let Some(value) = entry_value(text, l) {
            found.extend(value);
        }
    }
    Some(found)
}

/// The value of a `key: value` entry line, without quotes.
fn entry_value(text: &[u8], l: &Line) -> Option<Option<Found>> {
    let content = &text[l.content..l.end];
    let colon = content.windows(2).position(|w| w == b": ")?;
    let mut start = l.content + colon + 2;
    let mut end = l.end;
    while start < end && text[start] == b' ' {
        start += 1;
    }
    while end > start && text[end - 1] == b' ' {
        end -= 1;
    }
    for quote in [&b"\\\""[..], b"\"", b"'"] {
        if end - start >= 2 * quote.len()
            && text[start..end].starts_with(quote)
            && text[start..end].ends_with(quote)
        {
            start += quote.len();
            end -= quote.len();
            break;
        }
    }
    if end <= start || matches!(text[start], b'|' | b'>') {
        return None;
    }
    Some(secret(text, start, end))
}
