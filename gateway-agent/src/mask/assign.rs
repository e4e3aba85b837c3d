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
//! code, references or placeholders ([`crate::mask::values::is_not_a_secret`]) are left
//! alone. `lexis` reads delimiters and values; `structure` what a name reaches through
//! structure (elements, pairs, lists, block scalars).

mod kube;
mod lexis;
mod structure;

use self::lexis::{
    Delimiter, Kind, aligned, delimiter, is_prose, made, secret, skip_back_blank, skip_blank, value,
};
use self::structure::{
    MIN_GENERATED, array, block_scalar, find_value, generated, is_generated, object_values,
    sensitive_value, yaml_list,
};
use super::keys::SensitiveKeys;

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
    // 1Password's `"type": "CONCEALED"` field (`op item get --format json`).
    "concealed",
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
        if delimiter.is_none()
            && name == "Secret"
            && let Some(found) = kube::secret_values(text, name_start, name_end)
        {
            return (name_end, found, false);
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
                    } else if let Some(cell) = next_cell(text, name_start, value_at)
                        && self.keys.is_sensitive(name)
                    {
                        // `│ SESSION_SECRET │ nf0a… │` (`doppler secrets`), `| token | … |`:
                        // a name/value table row. Only a value that looks made, so a docs
                        // table's `| DB_PASSWORD | Database password |` stays.
                        value(text, cell, Kind::Prose)
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

/// A table bar: ASCII `|` or the box-drawing `│` (U+2502) CLIs draw tables with.
fn bar_len(text: &[u8], at: usize) -> usize {
    match text.get(at..) {
        Some([b'|', ..]) => 1,
        Some([0xE2, 0x94, 0x82, ..]) => 3,
        _ => 0,
    }
}

/// Where the next cell's content starts, when the name at `name_start` fills a table
/// cell (only blanks and a bar before it on its line) and `bar` is the bar closing it.
fn next_cell(text: &[u8], name_start: usize, bar: usize) -> Option<usize> {
    let closing = bar_len(text, bar);
    if closing == 0 {
        return None;
    }
    let mut p = name_start;
    while p > 0 && matches!(text[p - 1], b' ' | b'\t') {
        p -= 1;
    }
    let opening = (p >= 1 && text[p - 1] == b'|') || (p >= 3 && bar_len(text, p - 3) == 3);
    if !opening {
        return None;
    }
    let mut at = bar + closing;
    while matches!(text.get(at), Some(b' ' | b'\t')) {
        at += 1;
    }
    (bar_len(text, at) == 0).then_some(at)
}
