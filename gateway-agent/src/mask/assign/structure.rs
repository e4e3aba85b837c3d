//! Values a name reaches through structure rather than a delimiter: XML elements
//! (`<password>…</password>`, `<wsse:Password Type="…">…`), name/value pairs
//! (`<add key="DbPassword" value="…"/>`, `{"name": "DB_PASSWORD", "value": "…"}`, a
//! Kubernetes `- name:` / `value:` entry, an SSM `SecureString`, a 1Password
//! `CONCEALED` field), lists under a sensitive name (`"api_keys": […]`, YAML `- …` items), flat host-keyed objects
//! (`"bearer": {"repo.example.org": "…"}`), YAML block scalars (`secret: |`), Terraform's
//! `"sensitive": true` beside a `"value"`, and the value-shape filter for weak names.

use super::{
    Assignments, Found, Kind, NAME_MAX, PAIR_REACH, VALUE_MAX, delimiter, is_name_byte, secret,
    skip_back_blank, skip_blank, value,
};
use crate::mask::values::looks_generated;

impl Assignments {
    /// `<password>…</password>`, `<entry key="x">` is handled by [`Self::pair`].
    pub(super) fn element(
        &self,
        text: &[u8],
        name_start: usize,
        name_end: usize,
        name: &str,
    ) -> Option<Found> {
        // `<password>`, `<wsse:Password Type="…">`: the name opens a tag.
        let mut open = name_start;
        if open > 0 && text[open - 1] == b':' {
            open -= 1;
            while open > 0 && name_start - open < 16 && text[open - 1].is_ascii_alphanumeric() {
                open -= 1;
            }
        }
        if open == 0 || text[open - 1] != b'<' {
            return None;
        }
        let tag_end = match text.get(name_end) {
            Some(b'>') => name_end,
            Some(b' ') => {
                let reach = &text[name_end..text.len().min(name_end + 256)];
                let close = reach
                    .iter()
                    .position(|&b| matches!(b, b'>' | b'<' | b'\n'))?;
                if reach[close] != b'>' || reach[close - 1] == b'/' {
                    return None;
                }
                name_end + close
            }
            _ => return None,
        };
        if !self.keys.is_sensitive(name) {
            return None;
        }
        body(text, tag_end + 1)
    }

    /// A name held as the value of `name`/`key`/`type` whose secret sits in a sibling
    /// `value`: XML attributes, JSON name/value objects in text, Kubernetes env entries.
    pub(super) fn pair(
        &self,
        text: &[u8],
        name_start: usize,
        name_end: usize,
        name: &str,
    ) -> Option<Found> {
        self.pair_inner(text, name_start, name_end, name)
    }
}

/// The text of an element from `from` to its closing tag, if that is a secret.
fn body(text: &[u8], from: usize) -> Option<Found> {
    let rest = &text[from..text.len().min(from + VALUE_MAX)];
    let close = rest.windows(2).position(|w| w == b"</")?;
    let raw = &rest[..close];
    let lead = raw.iter().take_while(|b| b.is_ascii_whitespace()).count();
    let trail = raw
        .iter()
        .rev()
        .take_while(|b| b.is_ascii_whitespace())
        .count();
    if lead + trail >= raw.len() {
        return None;
    }
    let value = &raw[lead..raw.len() - trail];
    if let Some(inner) = value
        .strip_prefix(b"<![CDATA[")
        .and_then(|v| v.strip_suffix(b"]]>"))
    {
        let start = from + lead + 9;
        return secret(text, start, start + inner.len());
    }
    if value.contains(&b'<') {
        return None;
    }
    secret(text, from + lead, from + lead + value.len())
}

impl Assignments {
    fn pair_inner(
        &self,
        text: &[u8],
        name_start: usize,
        name_end: usize,
        name: &str,
    ) -> Option<Found> {
        // The name may be the last segment of a path (`/prod/db/password`).
        let mut start = name_start;
        while start > 0
            && name_start - start < NAME_MAX
            && (is_name_byte(text[start - 1]) || text[start - 1] == b'/')
        {
            start -= 1;
        }
        let mut at = start;
        let quoted = at > 0 && matches!(text[at - 1], b'"' | b'\'');
        if quoted {
            at -= 1;
            if at > 0 && text[at - 1] == b'\\' {
                at -= 1;
            }
        }
        at = skip_back_blank(text, at);
        if at == 0 || !matches!(text[at - 1], b'=' | b':') {
            return None;
        }
        at = skip_back_blank(text, at - 1);
        if at > 0 && matches!(text[at - 1], b'"' | b'\'') {
            at -= 1;
            if at > 0 && text[at - 1] == b'\\' {
                at -= 1;
            }
        }
        let attr_end = at;
        while at > 0
            && attr_end - at < 24
            && (text[at - 1].is_ascii_alphanumeric() || text[at - 1] == b'_')
        {
            at -= 1;
        }
        let attr = &text[at..attr_end];
        const NAME_ATTRS: &[&str] = &[
            "name",
            "key",
            "id",
            "type",
            "parametername",
            "parameterkey",
            "variable",
            "var",
            "field",
            "property",
            "param",
            "secretname",
            "envname",
            "label",
        ];
        if !NAME_ATTRS
            .iter()
            .any(|a| attr.eq_ignore_ascii_case(a.as_bytes()))
        {
            return None;
        }
        // A type that says the value is secret: an SSM `SecureString`, a 1Password
        // `CONCEALED` field.
        let secure =
            name.eq_ignore_ascii_case("securestring") || name.eq_ignore_ascii_case("concealed");
        if !secure && !self.keys.is_sensitive_name_value(name) {
            return None;
        }
        // Forward, within the same tag, object or list entry, for `value`; else
        // backward to the tag's or object's start (`<add value="…" key="…"/>`).
        let after = name_end + usize::from(quoted);
        if let Some(found) = find_value(text, after, text.len().min(after + PAIR_REACH), true, 2) {
            return Some(found);
        }
        let floor = at.saturating_sub(PAIR_REACH);
        let open = text[floor..at]
            .iter()
            .rposition(|&b| matches!(b, b'<' | b'{'))?;
        if text[floor + open..at]
            .iter()
            .any(|&b| matches!(b, b'>' | b'}' | b'\n'))
        {
            return None;
        }
        find_value(text, floor + open + 1, at, false, 2)
    }
}

/// The first `value`-like attribute or key in `text[from..limit]` and its value. With
/// `body`, the body of an element whose start tag closes first is the value too.
pub(super) fn find_value(
    text: &[u8],
    from: usize,
    limit: usize,
    body_ok: bool,
    max_lines: usize,
) -> Option<Found> {
    let mut end = from;
    let mut lines = 0;
    while end < limit {
        let b = text[end];
        match b {
            // `<entry key="password">…</entry>`, `<Setting Name="ApiKey">…`.
            b'>' if body_ok && end > 0 && text[end - 1] != b'/' && text[end - 1] != b'-' => {
                return body(text, end + 1);
            }
            b'>' | b'}' | b'{' | b'<' => return None,
            b'\n' => {
                lines += 1;
                let next = skip_blank(text, end + 1);
                if lines > max_lines || text.get(next) == Some(&b'-') {
                    return None;
                }
            }
            _ => {}
        }
        let word_start = b.is_ascii_alphabetic() && (end == 0 || !is_name_byte(text[end - 1]));
        if word_start {
            let len = text[end..limit]
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
                .count();
            let word = &text[end..end + len];
            const VALUE_ATTRS: &[&str] = &[
                "value",
                "content",
                "val",
                "parametervalue",
                "secretstring",
                "secretvalue",
            ];
            if VALUE_ATTRS
                .iter()
                .any(|a| word.eq_ignore_ascii_case(a.as_bytes()))
            {
                // A pair's value is a secret by position: no prose length guard.
                return delimiter(text, end + len)
                    .filter(|d| d.kind != Kind::Space)
                    .and_then(|d| value(text, d.value_at, Kind::Quoted));
            }
            end += len.max(1);
            continue;
        }
        end += 1;
    }
    None
}

/// `["…", "…"]` under a sensitive name: each quoted item that is a secret.
pub(super) fn array(text: &[u8], at: usize) -> Vec<Found> {
    let mut found = Vec::new();
    let limit = text.len().min(at + VALUE_MAX);
    let mut i = at + 1;
    while i < limit {
        match text[i] {
            b']' => break,
            b'[' | b'{' => return Vec::new(), // nested structure: not a list of secrets
            b'"' | b'\'' => match value(text, i, Kind::Quoted) {
                Some(item) => {
                    i = item.end + 1;
                    found.push(item);
                    continue;
                }
                None => {
                    let quote = text[i];
                    let close = text[i + 1..limit]
                        .iter()
                        .position(|&b| b == quote || b == b'\n');
                    i += close.map_or(limit, |c| c + 2);
                    continue;
                }
            },
            b'\\' if text.get(i + 1) == Some(&b'"') => {
                if let Some(item) = value(text, i, Kind::Quoted) {
                    i = item.end + 2;
                    found.push(item);
                    continue;
                }
            }
            // A bare word outside quotes (not an escape such as `\n`): a bracketed
            // phrase, not a list — 1Password's `[use 'op item get … --reveal' to reveal]`.
            b if b.is_ascii_alphabetic()
                && text.get(i + 1).is_some_and(u8::is_ascii_alphabetic)
                && text[i - 1] != b'\\' =>
            {
                return Vec::new();
            }
            _ => {}
        }
        i += 1;
    }
    found
}

/// The `- item` lines right below a YAML key, each item a secret unless it is not.
pub(super) fn yaml_list(text: &[u8], line_end: usize) -> Vec<Found> {
    let mut found = Vec::new();
    let mut at = line_end;
    for _ in 0..256 {
        let Some(newline) = text[at..].iter().position(|&b| b == b'\n') else {
            break;
        };
        let start = at + newline + 1;
        let indent = skip_blank(text, start);
        if indent == start || text.get(indent) != Some(&b'-') || text.get(indent + 1) != Some(&b' ')
        {
            break;
        }
        let item = skip_blank(text, indent + 1);
        found.extend(value(text, item, Kind::Quoted));
        at = item;
    }
    found
}

/// The string values of a flat object keyed by hosts or URLs (`{"repo.example.org":
/// "…"}`, Composer's `auth.json`; also JSON-escaped), each if it is a secret. Nothing
/// for a nested object, one longer than [`PAIR_REACH`] twice, or one with any other key
/// (a schema's `type`, a `username` beside a password that its own key covers).
pub(super) fn object_values(text: &[u8], at: usize) -> Vec<Found> {
    let mut found = Vec::new();
    let limit = text.len().min(at + 2 * PAIR_REACH);
    let mut after_colon = false;
    let mut i = at + 1;
    while i < limit {
        match text[i] {
            b'}' => return found,
            b'{' | b'[' => return Vec::new(),
            b':' => after_colon = true,
            b',' => after_colon = false,
            b'"' | b'\\' if text[i] == b'"' || text.get(i + 1) == Some(&b'"') => {
                let escaped = text[i] == b'\\';
                let open = i + 1 + usize::from(escaped);
                let close = (open..limit).find(|&j| {
                    if escaped {
                        text[j] == b'\\' && text.get(j + 1) == Some(&b'"')
                    } else {
                        text[j] == b'"' && text[j - 1] != b'\\'
                    }
                });
                let Some(close) = close else {
                    return Vec::new();
                };
                if after_colon {
                    found.extend(secret(text, open, close));
                } else if !text[open..close].iter().any(|&b| matches!(b, b'.' | b':')) {
                    return Vec::new();
                }
                i = close + 1 + usize::from(escaped);
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    Vec::new()
}

/// Shortest value [`looks_generated`] accepts.
pub(super) const MIN_GENERATED: usize = 16;

/// Does the value at `found` look generated (see [`looks_generated`])?
pub(super) fn is_generated(text: &[u8], found: &Found) -> bool {
    std::str::from_utf8(&text[found.start..found.end]).is_ok_and(looks_generated)
}

/// The items of a list under a weak name (`tokens:`) that look generated.
pub(super) fn generated(text: &[u8], found: Vec<Found>) -> Vec<Found> {
    found
        .into_iter()
        .filter(|f| is_generated(text, f))
        .collect()
}

/// Terraform state or `terraform output -json` printed as text: the `"value"` string of
/// the object whose `"sensitive": true` starts at `name_start` (the walker does the same
/// for parsed JSON). The value comes first in Terraform's output, so the object is
/// searched back to its opening brace.
pub(super) fn sensitive_value(text: &[u8], name_start: usize) -> Option<Found> {
    let floor = name_start.saturating_sub(2 * PAIR_REACH);
    let mut depth = 0usize;
    let mut open = None;
    for p in (floor..name_start).rev() {
        match text[p] {
            b'}' | b']' => depth += 1,
            b'{' | b'[' if depth > 0 => depth -= 1,
            b'{' => {
                open = Some(p);
                break;
            }
            b'[' => return None,
            _ => {}
        }
    }
    find_value(text, open? + 1, name_start, false, 8)
}

/// A YAML block scalar under a sensitive key (`secret: |`, `private_key: >-`): the lines
/// below it indented deeper than the key's line, from the first to the last non-blank
/// one. `at` is the `|` or `>`; only a header (chomping/indent indicators, a comment)
/// may follow it on its line.
pub(super) fn block_scalar(text: &[u8], name_start: usize, at: usize) -> Option<Found> {
    let line_start = text[..name_start]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    let key_indent = skip_blank(text, line_start) - line_start;
    let mut p = at + 1;
    while matches!(text.get(p), Some(b'-' | b'+' | b'1'..=b'9')) && p - at < 3 {
        p += 1;
    }
    p = skip_blank(text, p);
    if text.get(p) == Some(&b'#') {
        while text.get(p).is_some_and(|&b| b != b'\n') {
            p += 1;
        }
    }
    if text.get(p) == Some(&b'\r') {
        p += 1;
    }
    if text.get(p) != Some(&b'\n') {
        return None;
    }
    let limit = text.len().min(p + VALUE_MAX);
    let (mut start, mut end) = (None, 0);
    let mut line = p + 1;
    while line < limit {
        let content = skip_blank(text, line);
        let eol = text[line..limit]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(limit, |e| line + e);
        let body_end = if eol > line && text[eol - 1] == b'\r' {
            eol - 1
        } else {
            eol
        };
        if content < body_end {
            if content - line <= key_indent {
                break;
            }
            start.get_or_insert(content);
            end = body_end;
        }
        line = eol + 1;
    }
    let start = start?;
    let end = skip_back_blank(text, end);
    secret(text, start, end)
}
