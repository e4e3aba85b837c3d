//! Secrets known by the name they are assigned to, in the formats tools print.
//!
//! `DB_PASS=…` (dotenv, `export`, `env`), `password = "…"` (INI, TOML, properties, code),
//! `smtp_pass: …` (YAML), `"api_key": "…"` (JSON in text, also JSON-escaped `\"`),
//! `--client-secret …` / `--password=…` (command lines), `X-Api-Key: …` (HTTP headers),
//! `<password>…</password>` (XML), `password="…"` (attributes), and name/value pairs:
//! `<add key="DbPassword" value="…"/>`, `{"name": "DB_PASSWORD", "value": "…"}`,
//! `- name: DB_PASSWORD` / `value: …` (Kubernetes env), an SSM `SecureString`.
//!
//! Driven by the scanner's keyword pass: each keyword hit (`pass`, `token`, `key`…) is
//! widened to the whole name around it, and only if a delimiter follows is the name
//! judged by [`SensitiveKeys`] — the same word rules as JSON keys, so `smtp_pass` and
//! `adminPwd` are secret, `password_policy`, `bypass` and `max_tokens` are not. The value
//! ends at its quote or, unquoted, at whitespace; never past its line. Values that are
//! code, references or placeholders ([`is_not_a_secret`]) are left alone.

mod structure;

use self::structure::{array, find_value, object_values, yaml_list};
use super::{
    keys::SensitiveKeys,
    values::{is_not_a_secret, looks_generated},
};

/// Prefilter keywords: every sensitive name contains one of them.
pub const KEYWORDS: &[&str] = &[
    "pass",
    "pwd",
    "pw",
    "secret",
    "token",
    "key",
    "auth",
    "credential",
    "cookie",
    // Pre-shared keys (`psk="…"` in `wpa_supplicant.conf`).
    "psk",
    // Composer's `auth.json` `"bearer": {host: token}`.
    "bearer",
    // Terraform's `"sensitive": true` beside an output's `"value"`.
    "sensitive",
    // Not `session`: `session_id=` is protocol state (MCP's legacy SSE endpoint is
    // `/messages/?session_id=…`); session *secrets* and *tokens* are caught by their word.
    "securestring",
];

/// Longest name considered, each side of the keyword.
const NAME_MAX: usize = 96;
/// Longest value taken.
const VALUE_MAX: usize = 8192;
/// How far a name/value pair may spread (`<add key="…" value="…"/>`, a YAML env entry).
const PAIR_REACH: usize = 320;

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

/// The value a keyword hit is assigned, if it is a secret: the span to mask.
pub struct Found {
    pub start: usize,
    pub end: usize,
}

pub struct Assignments {
    keys: SensitiveKeys,
}

impl Assignments {
    pub fn new() -> Self {
        Self {
            // The built-in names only: operator keys are for JSON (`mask.keys`).
            keys: SensitiveKeys::new(&[]).unwrap_or_else(|_| unreachable!("no extra keys")),
        }
    }

    /// The names judged sensitive (built-in only).
    pub fn keys(&self) -> &SensitiveKeys {
        &self.keys
    }

    /// Looks at the name around the keyword at `start..end`. Returns the end of that
    /// name (later keywords inside it need no second look), the values to mask, and
    /// whether the name is prose (a word followed by another), which no table heads.
    pub fn at(&self, text: &[u8], start: usize, end: usize) -> (usize, Vec<Found>, bool) {
        let mut name_end = end;
        while name_end < text.len() && name_end - end < NAME_MAX && is_name_byte(text[name_end]) {
            name_end += 1;
        }
        // `password.` ends a sentence; `key-` a hyphenated word.
        while name_end > end && matches!(text[name_end - 1], b'.' | b'-') {
            name_end -= 1;
        }
        let mut name_start = start;
        while name_start > 0 && start - name_start < NAME_MAX && is_name_byte(text[name_start - 1])
        {
            name_start -= 1;
        }
        if is_prose(text, name_start, name_end) {
            return (name_end, Vec::new(), true);
        }
        let delimiter = delimiter(text, name_end);
        let dashes = text[name_start..]
            .iter()
            .take_while(|&&b| b == b'-')
            .count();
        let name = &text[name_start + dashes..name_end];
        let Ok(name) = std::str::from_utf8(name) else {
            return (name_end, Vec::new(), false);
        };
        // PHP's `define('DB_PASSWORD', '…')`: a quoted name, a comma, the value.
        let delimiter = delimiter.or_else(|| {
            let before = &text[name_start.saturating_sub(9)..name_start];
            let quoted = matches!(text.get(name_end), Some(b'"' | b'\''));
            let opened = before.ends_with(b"define('")
                || before.ends_with(b"define(\"")
                || before.ends_with(b"define( '")
                || before.ends_with(b"define( \"");
            (quoted && opened && text.get(name_end + 1) == Some(&b',')).then(|| Delimiter {
                value_at: skip_blank(text, name_end + 2),
                kind: Kind::Quoted,
            })
        });
        if let Some(Delimiter { value_at, kind }) = &delimiter
            && *kind == Kind::Quoted
            && name.eq_ignore_ascii_case("sensitive")
        {
            let found = if text[*value_at..].starts_with(b"true") {
                sensitive_value(text, name_start)
            } else {
                None
            };
            return (name_end, found.into_iter().collect(), false);
        }
        if let Some(Delimiter { value_at, kind }) = &delimiter
            && text.get(*value_at) == Some(&b'[')
            && kind != &Kind::Space
        {
            let found = if self.keys.is_sensitive(name) {
                array(text, *value_at)
            } else if self.keys.is_weak(name) {
                generated(text, array(text, *value_at))
            } else {
                Vec::new()
            };
            return (name_end, found, false);
        }
        // YAML: `passwords:` then `  - …` items, or a block scalar (`secret: |`).
        if let Some(Delimiter { value_at, kind }) = &delimiter
            && matches!(kind, Kind::Colon | Kind::Quoted)
        {
            let at = *value_at;
            if matches!(text.get(at), Some(b'\n' | b'\r')) {
                if self.keys.is_sensitive(name) {
                    return (name_end, yaml_list(text, at), false);
                }
                if self.keys.is_weak(name) {
                    return (name_end, generated(text, yaml_list(text, at)), false);
                }
            } else if matches!(text.get(at), Some(b'|' | b'>')) && self.keys.is_sensitive(name) {
                let found = block_scalar(text, name_start, at);
                return (name_end, found.into_iter().collect(), false);
            }
        }
        let found = match delimiter {
            Some(Delimiter { value_at, kind }) => {
                let flag = dashes > 0
                    && name_start.checked_sub(1).is_none_or(|p| {
                        text[p].is_ascii_whitespace() || matches!(text[p], b'"' | b'\'')
                    });
                if kind == Kind::Space && !flag {
                    // `password    s3cret` as the last word of its line: a key/value listing
                    // (`vault kv get`, `kubectl describe`), names at the line's start.
                    if aligned(text, name_start, name_end, value_at) && self.keys.is_sensitive(name)
                    {
                        value(text, value_at, Kind::Equals)
                    } else if matches!(text.get(value_at), Some(b'"' | b'\''))
                        && !name.eq_ignore_ascii_case("bearer") // a scheme: its rules read it
                        && self.is_secret_name(name, Kind::Space)
                    {
                        // `Use the password "…" to log in`, SQL's `PASSWORD '…'`.
                        value(text, value_at, Kind::Quoted).filter(|v| made(&text[v.start..v.end]))
                    } else {
                        None
                    }
                } else if kind == Kind::Prose && dashes > 0 {
                    None
                } else if text.get(value_at) == Some(&b'{')
                    && text
                        .get(value_at + 1)
                        .is_some_and(|b| b.is_ascii_whitespace() || *b == b'"')
                    && kind != Kind::Prose
                {
                    // `"db_password": {"sensitive": true, "value": "…"}` (Terraform).
                    if self.keys.is_sensitive(name) {
                        let limit = text.len().min(value_at + 2 * PAIR_REACH);
                        match find_value(text, value_at + 1, limit, false, 8) {
                            Some(found) => Some(found),
                            // `"bearer": {"repo.example.org": "…"}` (Composer's
                            // auth.json): every value of a flat object, as the JSON
                            // walk masks them.
                            None => return (name_end, object_values(text, value_at), false),
                        }
                    } else {
                        None
                    }
                } else if self.is_secret_label(text, name_start, name, kind) {
                    value(text, value_at, kind)
                        .filter(|v| !self.names_a_secret(&text[v.start..v.end]))
                } else if kind != Kind::Prose {
                    // `SENDGRID_KEY=…`, `REDIS_AUTH=…`: only a value that looks made. The
                    // value's length is checked first: `"max_tokens": 4096` repeats in
                    // every record of a listing and is dismissed without splitting its name.
                    value(text, value_at, kind).filter(|v| {
                        v.end - v.start >= MIN_GENERATED
                            && self.keys.is_weak(name)
                            && is_generated(text, v)
                    })
                } else {
                    None
                }
            }
            None => None,
        };
        let found = found.or_else(|| self.pair(text, name_start, name_end, name));
        let found = found.or_else(|| self.element(text, name_start, name_end, name));
        (name_end, found.into_iter().collect(), false)
    }

    /// An identifier that is itself a secret's name is a variable holding it
    /// (`self.password = password`, `api_key = api_key or …`).
    fn names_a_secret(&self, value: &[u8]) -> bool {
        let ident = value
            .first()
            .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
            && value
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'_');
        if !ident {
            return false;
        }
        // `PASSWORD_ENV_VAR`, `db_token_name`: a compound identifier naming one.
        let compound = value.contains(&b'_')
            && ["pass", "pwd", "secret", "token", "key", "auth", "cred"]
                .iter()
                .any(|w| {
                    value
                        .windows(w.len())
                        .any(|x| x.eq_ignore_ascii_case(w.as_bytes()))
                });
        compound || std::str::from_utf8(value).is_ok_and(|v| self.keys.is_sensitive(v))
    }

    /// A label of two words, `API key: …`, `Client secret = …`, judged whole when its
    /// last word alone names nothing.
    fn is_secret_label(&self, text: &[u8], name_start: usize, name: &str, kind: Kind) -> bool {
        if self.is_secret_name(name, kind) {
            return true;
        }
        if kind == Kind::Space || name_start < 2 || text[name_start - 1] != b' ' {
            return false;
        }
        let end = name_start - 1;
        let mut start = end;
        while start > 0 && end - start < 24 && text[start - 1].is_ascii_alphabetic() {
            start -= 1;
        }
        if start == end || (start > 0 && is_name_byte(text[start - 1])) {
            return false;
        }
        let mut label = [0u8; 64];
        let first = &text[start..end];
        let len = first.len() + 1 + name.len();
        if len > label.len() {
            return false;
        }
        label[..first.len()].copy_from_slice(first);
        label[first.len()] = b' ';
        label[first.len() + 1..len].copy_from_slice(name.as_bytes());
        std::str::from_utf8(&label[..len]).is_ok_and(|l| self.keys.is_sensitive(l))
    }

    fn is_secret_name(&self, name: &str, kind: Kind) -> bool {
        // Dedicated rules read these headers scheme and all; a bare word after them
        // (`Authorization: Bearer …`) is the scheme, not the secret.
        let bare = name.trim_matches(|c: char| !c.is_ascii_alphanumeric());
        if kind != Kind::Quoted
            && [
                "authorization",
                "proxy-authorization",
                "cookie",
                "set-cookie",
            ]
            .iter()
            .any(|h| bare.eq_ignore_ascii_case(h))
        {
            return false;
        }
        self.keys.is_sensitive(name)
    }
}

/// Shortest value [`looks_generated`] accepts.
const MIN_GENERATED: usize = 16;

/// Does the value at `found` look generated (see [`looks_generated`])?
fn is_generated(text: &[u8], found: &Found) -> bool {
    std::str::from_utf8(&text[found.start..found.end]).is_ok_and(looks_generated)
}

/// The items of a list under a weak name (`tokens:`) that look generated.
fn generated(text: &[u8], found: Vec<Found>) -> Vec<Found> {
    found
        .into_iter()
        .filter(|f| is_generated(text, f))
        .collect()
}

/// Terraform state or `terraform output -json` printed as text: the `"value"` string of
/// the object whose `"sensitive": true` starts at `name_start` (the walker does the same
/// for parsed JSON). The value comes first in Terraform's output, so the object is
/// searched back to its opening brace.
fn sensitive_value(text: &[u8], name_start: usize) -> Option<Found> {
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
fn block_scalar(text: &[u8], name_start: usize, at: usize) -> Option<Found> {
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

/// How a name is tied to its value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
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

struct Delimiter {
    value_at: usize,
    kind: Kind,
}

/// What follows a name: an optional closing quote, blanks, then `=`, `:` (not `::`),
/// `:=` or `=>` — or, for a flag, a single run of spaces.
fn delimiter(text: &[u8], at: usize) -> Option<Delimiter> {
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
fn value(text: &[u8], at: usize, kind: Kind) -> Option<Found> {
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
fn made(value: &[u8]) -> bool {
    value.len() >= 6
        && !value.iter().any(u8::is_ascii_whitespace)
        && value.iter().any(u8::is_ascii_alphabetic)
        && value.iter().any(|b| !b.is_ascii_alphabetic())
}

/// The common case, decided in a few bytes: a word inside a sentence (`the password
/// policy`, `max_tokens and`), followed by a space and a lowercase word other than
/// `is`/`was`, not a flag (`--token x`), not an element (`<Password Type=…>`), not at
/// its line's start (`password    s3cret` listings).
fn is_prose(text: &[u8], name_start: usize, name_end: usize) -> bool {
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
fn aligned(text: &[u8], name_start: usize, name_end: usize, value_at: usize) -> bool {
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
fn next_is_assignment(rest: &[u8]) -> bool {
    let rest = &rest[skip_blank(rest, 0)..];
    let n = rest
        .iter()
        .take(64)
        .take_while(|&&b| is_name_byte(b))
        .count();
    n > 0 && matches!(rest.get(n), Some(b'=' | b':'))
}

/// The span, unless its text is not a secret (code, reference, placeholder, masked).
fn secret(text: &[u8], start: usize, end: usize) -> Option<Found> {
    let value = std::str::from_utf8(&text[start..end]).ok()?;
    if value.starts_with("[MASKED:") {
        return None;
    }
    (!is_not_a_secret(value)).then_some(Found { start, end })
}

/// Past spaces, tabs and no-break spaces (U+00A0, as pasted from documents).
fn skip_blank(text: &[u8], mut at: usize) -> usize {
    loop {
        match text.get(at) {
            Some(b' ' | b'\t') => at += 1,
            Some(0xC2) if text.get(at + 1) == Some(&0xA0) => at += 2,
            _ => return at,
        }
    }
}

/// Past any whitespace, line breaks included, at most a few lines' worth.
fn skip_space(text: &[u8], mut at: usize) -> usize {
    let limit = text.len().min(at + 64);
    while at < limit && text[at].is_ascii_whitespace() {
        at += 1;
    }
    at
}

fn skip_back_blank(text: &[u8], mut at: usize) -> usize {
    while at > 0 && matches!(text[at - 1], b' ' | b'\t') {
        at -= 1;
    }
    at
}
