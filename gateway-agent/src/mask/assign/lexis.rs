//! The lexical part of an assignment: how a name is tied to its value (`=`, `:`, a
//! flag's blank, `is` in prose) and where that value starts and ends.

use super::{Found, VALUE_MAX, is_name_byte};
use crate::mask::values::is_not_a_secret;

/// How a name is tied to its value.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// `=`, `:=`, `=>`: dotenv, INI, TOML, properties, code, flags.
    Equals,
    /// `:`: YAML, headers, JSON. Prose uses it too, so an unquoted value must be longer.
    Colon,
    /// `--password hunter2`: only after a command-line flag.
    Space,
    /// The name was quoted (`"password": …`): JSON or a dict literal.
    Quoted,
    /// `the password is …`: only a value that looks made, not a word.
    Prose,
}

pub(super) struct Delimiter {
    pub(super) value_at: usize,
    pub(super) kind: Kind,
}

/// What follows a name: an optional closing quote, blanks, then `=`, `:` (not `::`),
/// `:=` or `=>` — or, for a flag, a single run of spaces.
pub(super) fn delimiter(text: &[u8], at: usize) -> Option<Delimiter> {
    let mut p = at;
    let mut quoted = false;
    if text.get(p) == Some(&b'\\') && text.get(p + 1) == Some(&b'"') {
        p += 2;
        quoted = true;
    } else if matches!(text.get(p), Some(b'"' | b'\'')) {
        p += 1;
        quoted = true;
        if text.get(p) == Some(&b']') {
            p += 1; // `os.environ["API_KEY"] = …`, `ENV['DB_PASSWORD'] = …`
        }
    } else {
        // Markdown emphasis around a label: `**Password**: …`, `__Token:__ …`.
        while matches!(text.get(p), Some(b'*' | b'_')) && p - at < 2 {
            p += 1;
        }
    }
    // A quoted name is JSON-like, where line breaks around `:` are mere layout.
    let blank = if quoted {
        skip_space(text, skip_blank(text, p))
    } else {
        skip_blank(text, p)
    };
    let kind = match text.get(blank) {
        Some(b'=') => match text.get(blank + 1) {
            Some(b'=' | b'~') => return None, // `==`, `=~`: a comparison
            Some(b'>') => {
                p = blank + 2;
                Kind::Equals
            }
            _ => {
                p = blank + 1;
                Kind::Equals
            }
        },
        Some(b':') => match text.get(blank + 1) {
            // LDIF's base64 attribute value: `userPassword:: e1NTSEF9…`.
            Some(b':') if !quoted && matches!(text.get(blank + 2), Some(b' ')) => {
                p = blank + 2;
                Kind::Colon
            }
            Some(b':') => return None,
            Some(b'=') => {
                p = blank + 2;
                Kind::Equals
            }
            _ => {
                p = blank + 1;
                Kind::Colon
            }
        },
        Some(b'i' | b'w') if !quoted && blank > p => {
            let rest = &text[blank..text.len().min(blank + 8)];
            match rest {
                [b'i', b's', b' ' | b':', ..] => {
                    p = blank + 2;
                    // `Your temporary password is: …`
                    let colon = skip_blank(text, p);
                    if text.get(colon) == Some(&b':') {
                        p = colon + 1;
                    }
                    Kind::Prose
                }
                [b'w', b'a', b's', b' ', ..] => {
                    p = blank + 4;
                    Kind::Prose
                }
                _ => {
                    p = blank;
                    Kind::Space
                }
            }
        }
        _ if !quoted && blank > p => {
            p = blank;
            Kind::Space
        }
        _ => return None,
    };
    let kind = if quoted && kind != Kind::Space {
        Kind::Quoted
    } else {
        kind
    };
    if kind == Kind::Quoted {
        let next = skip_space(text, p);
        if text.get(next) == Some(&b'"') {
            return Some(Delimiter {
                value_at: next,
                kind,
            });
        }
    }
    let mut value_at = skip_blank(text, p);
    if kind == Kind::Colon {
        // `**Password:** hunter2`: the closing emphasis is not the value.
        let stars = text[value_at..]
            .iter()
            .take(2)
            .take_while(|b| matches!(b, b'*' | b'_'))
            .count();
        if stars > 0
            && text
                .get(value_at + stars)
                .is_some_and(|b| *b == b' ' || *b == b'\t')
        {
            value_at = skip_blank(text, value_at + stars);
        }
    }
    Some(Delimiter { value_at, kind })
}

/// The value at `at`: quoted (to its closing quote on the same line) or a bare word.
pub(super) fn value(text: &[u8], at: usize, kind: Kind) -> Option<Found> {
    let rest = &text[at..text.len().min(at + VALUE_MAX)];
    let (open, skip) = match rest {
        [b'\\', b'"', ..] => (&b"\\\""[..], 2),
        [b'"', ..] => (&b"\""[..], 1),
        [b'\'', ..] => (&b"'"[..], 1),
        [b'`', ..] => (&b"`"[..], 1),
        _ => (&b""[..], 0),
    };
    if !open.is_empty() {
        let body = &rest[skip..];
        let mut i = 0;
        while i < body.len() {
            match body[i] {
                b'\n' | b'\r' => return None,
                b'\\' if open == b"\"" => i += 1, // `\"` inside a JSON string
                b'\\' if open.len() == 2 => match body.get(i + 1) {
                    Some(b'"') => return secret(text, at + skip, at + skip + i),
                    Some(b'n' | b'r') => return None, // an escaped line break
                    Some(b'\\') => i += 1,
                    _ => {}
                },
                b if open.len() == 1 && b == open[0] => {
                    return secret(text, at + skip, at + skip + i);
                }
                _ => {}
            }
            i += 1;
        }
        return None;
    }
    if kind == Kind::Space && rest.first() == Some(&b'-') {
        return None; // the next flag
    }
    // A bracketed phrase is judged whole, so its first word is not taken alone:
    // Terraform's `(sensitive value)`, `(known after apply)`, `<sensitive>`, and a tuple
    // of code (`auth=(user, os.environ["PW"])`) are no secrets.
    if let Some(&open @ (b'(' | b'<')) = rest.first() {
        let close = if open == b'(' { b')' } else { b'>' };
        if let Some(len) = rest
            .iter()
            .take(64)
            .position(|&b| b == close || b == b'\n')
            .filter(|&p| rest[p] == close)
            && rest[..len].contains(&b' ')
        {
            let phrase = std::str::from_utf8(&rest[..=len]).unwrap_or("x");
            let code = |item: &str| {
                let item = item.trim();
                is_not_a_secret(item)
                    || (item.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                        && item
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            };
            if is_not_a_secret(phrase) || (open == b'(' && phrase[1..len].split(',').all(code)) {
                return None;
            }
        }
    }
    let mut end = 0;
    while end < rest.len() {
        let b = rest[end];
        if b.is_ascii_whitespace() || matches!(b, b'"' | b'\'' | b'`') {
            break;
        }
        if b == b'\\' && matches!(rest.get(end + 1), Some(b'n' | b'r' | b't' | b'"')) {
            break; // `\n` in JSON-escaped text
        }
        if b == b'<' && rest.get(end + 1) == Some(&b'/') {
            break; // `</td>`
        }
        if matches!(b, b',' | b';' | b'&') && next_is_assignment(&rest[end + 1..]) {
            break; // `password=x&user=y`, `pwd=x;Server=y`
        }
        end += 1;
    }
    let mut value = &rest[..end];
    loop {
        let trimmed = match value.last() {
            Some(b',' | b';') => &value[..value.len() - 1],
            Some(&close @ (b')' | b']' | b'}')) => {
                let open = match close {
                    b')' => b'(',
                    b']' => b'[',
                    _ => b'{',
                };
                let opens = value.iter().filter(|&&b| b == open).count();
                let closes = value.iter().filter(|&&b| b == close).count();
                if closes > opens {
                    &value[..value.len() - 1]
                } else {
                    break;
                }
            }
            _ => break,
        };
        value = trimmed;
    }
    let min = match kind {
        Kind::Colon | Kind::Prose => 6,
        _ => 4,
    };
    if value.len() < min {
        return None;
    }
    if kind == Kind::Prose {
        // Prose goes on with words ("is required", "is stored in Vault"); a password
        // mixes letters with digits or symbols. A sentence's full stop is not part of it.
        let value = value.strip_suffix(b".").unwrap_or(value);
        if !made(value) || value.len() < min {
            return None;
        }
        return secret(text, at, at + value.len());
    }
    secret(text, at, at + value.len())
}

/// A value named in prose (`the password is …`, `the password "…"`) is taken only if it
/// looks made rather than written: one word of 6+ characters mixing letters with digits
/// or symbols (not "required", "stored in Vault", "string").
pub(super) fn made(value: &[u8]) -> bool {
    value.len() >= 6
        && !value.iter().any(u8::is_ascii_whitespace)
        && value.iter().any(u8::is_ascii_alphabetic)
        && value.iter().any(|b| !b.is_ascii_alphabetic())
}

/// The common case, decided in a few bytes: a word inside a sentence (`the password
/// policy`, `max_tokens and`), followed by a space and a lowercase word other than
/// `is`/`was`, not a flag (`--token x`), not an element (`<Password Type=…>`), not at
/// its line's start (`password    s3cret` listings).
pub(super) fn is_prose(text: &[u8], name_start: usize, name_end: usize) -> bool {
    if text.get(name_end) != Some(&b' ') || text[name_start] == b'-' {
        return false;
    }
    let next = &text[name_end + 1..text.len().min(name_end + 5)];
    if !next.first().is_some_and(u8::is_ascii_lowercase)
        || next.starts_with(b"is ")
        || next.starts_with(b"is:")
        || next.starts_with(b"was ")
    {
        return false;
    }
    match name_start.checked_sub(1).map(|p| text[p]) {
        Some(b' ') => {
            // Not first on its line.
            let line = skip_back_blank(text, name_start);
            line > 0 && text[line - 1] != b'\n'
        }
        Some(b'-' | b'<' | b':' | b'\n') | None => false,
        Some(_) => true,
    }
}

/// Is the name first on its line, followed by a gap of two or more blanks and one word
/// that ends the line?
pub(super) fn aligned(text: &[u8], name_start: usize, name_end: usize, value_at: usize) -> bool {
    let line_start = skip_back_blank(text, name_start);
    let first = line_start == 0 || text[line_start - 1] == b'\n';
    let gap = value_at - name_end >= 2 || text[name_end] == b'\t';
    let word = text[value_at..]
        .iter()
        .take(VALUE_MAX)
        .take_while(|b| !b.is_ascii_whitespace())
        .count();
    let after = skip_blank(text, value_at + word);
    first && gap && matches!(text.get(after), None | Some(b'\n' | b'\r'))
}

/// `name=` or `name:` right after a separator (spaces allowed).
pub(super) fn next_is_assignment(rest: &[u8]) -> bool {
    let rest = &rest[skip_blank(rest, 0)..];
    let n = rest
        .iter()
        .take(64)
        .take_while(|&&b| is_name_byte(b))
        .count();
    n > 0 && matches!(rest.get(n), Some(b'=' | b':'))
}

/// The span, unless its text is not a secret (code, reference, placeholder, masked).
pub(super) fn secret(text: &[u8], start: usize, end: usize) -> Option<Found> {
    let value = std::str::from_utf8(&text[start..end]).ok()?;
    if value.starts_with("[MASKED:") {
        return None;
    }
    (!is_not_a_secret(value)).then_some(Found { start, end })
}

/// Past spaces, tabs and no-break spaces (U+00A0, as pasted from documents).
pub(super) fn skip_blank(text: &[u8], mut at: usize) -> usize {
    loop {
        match text.get(at) {
            Some(b' ' | b'\t') => at += 1,
            Some(0xC2) if text.get(at + 1) == Some(&0xA0) => at += 2,
            _ => return at,
        }
    }
}

/// Past any whitespace, line breaks included, at most a few lines' worth.
pub(super) fn skip_space(text: &[u8], mut at: usize) -> usize {
    let limit = text.len().min(at + 64);
    while at < limit && text[at].is_ascii_whitespace() {
        at += 1;
    }
    at
}

pub(super) fn skip_back_blank(text: &[u8], mut at: usize) -> usize {
    while at > 0 && matches!(text[at - 1], b' ' | b'\t') {
        at -= 1;
    }
    at
}
