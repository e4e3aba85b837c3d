//! Values that sit where a secret would, but are not one.
//!
//! A sensitive name (`password`, `API_KEY`) is followed in real output by many things
//! that hide nothing: code that *fetches* the secret (`os.environ["X"]`, `getpass()`,
//! `process.env.TOKEN`), a reference to it (`${DB_PASSWORD}`, `$TOKEN`,
//! `{{ secrets.X }}`), a value already hidden (`********`, `[REDACTED]`), a placeholder
//! left for the user (`<your-token>`, `YOUR_API_KEY`), or nothing at all. Masking those
//! mangles source code and config templates and tells the caller nothing; leaving them
//! is the look-alike half of detection quality.
//!
//! Judgement calls: `changeme`, `admin` or `password` as a password are weak but *working*
//! credentials (defaults that were never changed) and are masked; a bcrypt/argon hash is
//! masked (it can be cracked offline); an encrypted value (`ENC(…)`, `!vault`) is left,
//! as it is useless without its key and is written like a call.

/// Is `value`, found under a sensitive name, certainly not a secret? `false` when in
/// doubt. Never allocates; looks at most at the first 256 bytes for code shapes.
pub fn is_not_a_secret(value: &str) -> bool {
    let v = value.trim();
    if v.is_empty() {
        return true;
    }
    let bytes = v.as_bytes();
    is_hidden(bytes)
        || is_status_word(v)
        || is_reference(bytes)
        || is_placeholder(v)
        || is_code(bytes)
        || is_path(v)
        || is_partly_shown(v)
}

/// Already masked or redacted: `****`, `•••`, `xxxxxxxx`, `[REDACTED]`, `[MASKED:…]`.
fn is_hidden(v: &[u8]) -> bool {
    if v.iter()
        .all(|b| matches!(b, b'*' | b'#' | b'.' | b'-' | b'_' | b'x' | b'X'))
        && v.iter().any(|b| matches!(b, b'*' | b'x' | b'X' | b'#'))
    {
        return true;
    }
    if let Ok(text) = std::str::from_utf8(v)
        && text
            .chars()
            .all(|c| matches!(c, '•' | '●' | '∙' | '·' | '*'))
    {
        return true;
    }
    let inner = strip_brackets(v);
    let inner = inner.strip_prefix(b"***").unwrap_or(inner);
    let inner = inner.strip_suffix(b"***").unwrap_or(inner);
    inner.starts_with(b"MASKED:")
        || [
            &b"redacted"[..],
            b"filtered",
            b"hidden",
            b"masked",
            b"secret hidden",
            b"sensitive",
            b"sensitive value",
            b"known after apply",
            b"omitted",
            b"removed",
        ]
        .iter()
        .any(|w| inner.eq_ignore_ascii_case(w))
}

/// Redacted the way CLIs show a stored key: a run of mask characters (4+ `*` or `•`,
/// or `...`/`…`) with at most 8 characters shown around it — a vendor prefix or the
/// last four (`gho_****…`, `'****…HVLd'`, `sk-...Xy9z`; `gh auth status`, `stripe
/// config --list`). A real secret rarely holds such a run, and 8 visible characters
/// are not one.
fn is_partly_shown(v: &str) -> bool {
    let v = v.trim_matches(|c| c == '\'' || c == '"');
    // Most values hold no mask character at all: one byte scan decides them.
    if v.len() > 256 || !v.bytes().any(|b| matches!(b, b'*' | b'.' | 0xE2)) {
        return false;
    }
    let (mut run, mut longest, mut shown) = (0usize, 0usize, 0usize);
    for c in v.chars() {
        if matches!(c, '*' | '•' | '●') {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
            shown += 1;
        }
    }
    let elided = v.contains("...") || v.contains('…');
    let masked_chars = if elided {
        v.replace("...", "").replace('…', "")
    } else {
        String::new()
    };
    (longest >= 4 && shown <= 8)
        || (elided && longest == 0 && !v.contains(' ') && masked_chars.chars().count() <= 8)
}

/// The contents of `[…]`, `<…>`, `(…)` or `{…}`, else the value itself.
fn strip_brackets(v: &[u8]) -> &[u8] {
    match (v.first(), v.last()) {
        (Some(b'['), Some(b']'))
        | (Some(b'<'), Some(b'>'))
        | (Some(b'('), Some(b')'))
        | (Some(b'{'), Some(b'}'))
            if v.len() >= 2 =>
        {
            &v[1..v.len() - 1]
        }
        _ => v,
    }
}

/// Words that answer "is there one?" rather than being one (`password: required`), and
/// type names from code (`password: str`, `token: string`).
fn is_status_word(v: &str) -> bool {
    const WORDS: &[&str] = &[
        "none",
        "null",
        "nil",
        "undefined",
        "true",
        "false",
        "yes",
        "no",
        "on",
        "off",
        "required",
        "optional",
        "invalid",
        "incorrect",
        "expired",
        "missing",
        "empty",
        "unset",
        "set",
        "not set",
        "n/a",
        "na",
        "ok",
        "enabled",
        "disabled",
        "valid",
        "revoked",
        "rotated",
        "present",
        "provided",
        "string",
        "str",
        "bytes",
        "secretstr",
        "int",
        "bool",
        "boolean",
        "number",
        "any",
        "object",
        "todo",
        "tbd",
        "placeholder",
        "dummy",
    ];
    WORDS.iter().any(|w| v.eq_ignore_ascii_case(w))
}

/// `$VAR`, `${VAR}`, `$(cmd)`, `%VAR%`, `{{ … }}`, `${{ secrets.X }}`, `#{…}`, `{var}`,
/// `%s`, `%(name)s`, `?`, `:name` (SQL parameters), `!vault`/`!Ref` (YAML tags).
fn is_reference(v: &[u8]) -> bool {
    match v {
        // A substitution; its end may lie past the word a caller cut (`$(cat /run/x)`).
        [b'$', b'{' | b'(', ..] => return true,
        [b'$', rest @ ..] if !rest.is_empty() => {
            // `$TOKEN`, `$db_pass`, `$_POST['x']`: one case only. `$ecretP4ss` mixes.
            let ident = ident_len(rest);
            if ident > 0 && (ident == rest.len() || matches!(rest[ident], b'[' | b'-' | b';')) {
                let word = &rest[..ident];
                return !word.iter().any(u8::is_ascii_lowercase)
                    || !word
                        .iter()
                        .any(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
            }
            return false;
        }
        [b'%', .., b'%'] if v.len() > 2 => return is_ident(&v[1..v.len() - 1]),
        [b'%', b's' | b'd'] | [b'?'] => return true,
        [b'%', b'(', ..] => return v.ends_with(b")s"),
        [b'{', b'{', ..] | [b'#', b'{', ..] => return v.ends_with(b"}"),
        // `{password}` is a template field; `{AQAAABAAAAAQ…}` (Jenkins, Maven) is an
        // encrypted blob that happens to hold no `+` or `/`.
        [b'{', inner @ .., b'}'] => {
            return inner.is_empty() || (is_ident(inner) && !mixes_like_random(inner));
        }
        [b':', rest @ ..] => return is_ident(rest) && rest.len() > 1,
        [b'!', rest @ ..] => return rest.first().is_some_and(u8::is_ascii_alphabetic),
        _ => {}
    }
    false
}

/// `<your-token>`, `YOUR_API_KEY`, `your-password-here`, `...`, `<token>`.
fn is_placeholder(v: &str) -> bool {
    let b = v.as_bytes();
    if b.len() >= 3 && b[0] == b'<' && b[b.len() - 1] == b'>' && !v[1..].contains('<') {
        return true; // `<your token>`, `<TOKEN>`, `<redacted>`
    }
    if b.iter().all(|&c| c == b'.') || v == "…" {
        return true;
    }
    let lower_starts =
        |p: &str| b.len() > p.len() && b[..p.len()].eq_ignore_ascii_case(p.as_bytes());
    if lower_starts("your_")
        || lower_starts("your-")
        || lower_starts("your ")
        || lower_starts("my_")
    {
        return true;
    }
    let tail =
        |s: &str| b.len() > s.len() && b[b.len() - s.len()..].eq_ignore_ascii_case(s.as_bytes());
    tail("_here") || tail("-here") || tail(" here")
}

/// A call, an index or a property of a code object: `getpass()`, `get_token(user)`,
/// `os.environ["X"]`, `os.getenv("X")`, `ENV.fetch("X")`, `process.env.TOKEN`,
/// `self.password`, `settings.SECRET_KEY`, `req.headers.authorization;`.
fn is_code(v: &[u8]) -> bool {
    let v = &v[..v.len().min(256)];
    let mut at = 0;
    let mut segments = 0;
    loop {
        let n = ident_len(&v[at..]);
        if n == 0 {
            return false;
        }
        segments += 1;
        at += n;
        match v.get(at) {
            Some(b'.') => at += 1,
            Some(b'(' | b'[') => return true,
            // A generic type: `Option<String>`, `Vec<u8>`.
            Some(b'<') if v.get(at + 1).is_some_and(|b| b.is_ascii_alphabetic()) => return true,
            Some(b' ') if matches!(v.get(at + 1), Some(b'(')) => return true,
            // `a.b.c` is code when no segment has a digit (`req.headers.authorization`);
            // random tokens with dots (`q9_1fJ.CVBo…`) have digits.
            // `;` ends a statement; `!`/`?` are TypeScript's non-null/optional marks.
            None | Some(b';' | b'!' | b'?' | b',') => {
                let wordy = !v[..at].iter().any(u8::is_ascii_digit);
                return (segments >= 3 && wordy) || (segments >= 2 && code_root(v));
            }
            Some(b':') if v.get(at + 1) == Some(&b':') => {
                at += 2; // `Rails.application.credentials` / `std::env::var("X")`
            }
            _ => return false,
        }
    }
}

/// Upper, lower and digit all present in at least 16 characters: how generated tokens
/// read, and how names (`DB_PASSWORD`, `dbPassword`, `password2`) rarely do.
fn mixes_like_random(v: &[u8]) -> bool {
    v.len() >= 16
        && v.iter().any(u8::is_ascii_uppercase)
        && v.iter().any(u8::is_ascii_lowercase)
        && v.iter().any(u8::is_ascii_digit)
}

/// Does a value under a name too general to be called secret alone (`SENDGRID_KEY`,
/// `REDIS_AUTH`, a `tokens:` list; see `keys::SensitiveKeys::is_weak`) look generated?
/// At least 16 characters with no blank, no URL or path, not a UUID; either upper,
/// lower and digit mixed with few lowercase words (base62/base64 tokens, not
/// `CamelCaseNames1`), or 32+ hex digits. `cache_key=users:v2`, `max_tokens: 4096`,
/// `secrets: [db_password]` and `default_auth=caching_sha2_password` are not.
pub fn looks_generated(value: &str) -> bool {
    let v = value.as_bytes();
    if v.len() < 16
        || v.len() > 4096
        || v.iter().any(|b| b.is_ascii_whitespace())
        || value.contains("://")
        || matches!(v[0], b'/' | b'.' | b'~' | b'$' | b'{' | b'<')
        || is_uuid(v)
        || is_not_a_secret(value)
    {
        return false;
    }
    if v.len() >= 32 && v.iter().all(u8::is_ascii_hexdigit) {
        return true;
    }
    if !mixes_like_random(v) {
        return false;
    }
    // Letters in lowercase runs of three or more: words and identifiers, not tokens.
    let (mut letters, mut in_words, mut run) = (0usize, 0usize, 0usize);
    for &b in v.iter().chain([b' '].iter()) {
        if b.is_ascii_lowercase() {
            run += 1;
        } else {
            if run >= 4 {
                in_words += run;
            }
            run = 0;
        }
        letters += usize::from(b.is_ascii_alphabetic());
    }
    in_words * 2 < letters
}

fn is_uuid(v: &[u8]) -> bool {
    v.len() == 36
        && v.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// First segments that make `a.b` code rather than a dotted password.
fn code_root(v: &[u8]) -> bool {
    const ROOTS: &[&str] = &[
        "self",
        "this",
        "process",
        "os",
        "env",
        "ENV",
        "config",
        "settings",
        "args",
        "opts",
        "options",
        "params",
        "request",
        "req",
        "ctx",
        "context",
        "secrets",
        "vars",
        "values",
        "Values",
        "props",
        "cfg",
        "conf",
        "app",
        "System",
        "Environment",
        "credentials",
        "creds",
        "vault",
        "import",
        "Deno",
        "Bun",
        "os_env",
        "environ",
        // Terraform / HCL references: `var.db_password`, `local.token`, `module.db.pass`.
        "var",
        "local",
        "module",
        "data",
    ];
    let first = &v[..ident_len(v)];
    ROOTS.iter().any(|r| r.as_bytes() == first)
}

/// A file holding the secret is not the secret: `/run/secrets/db`, `~/.ssh/id_rsa`.
fn is_path(v: &str) -> bool {
    const ROOTS: &[&str] = &[
        "~/",
        "./",
        "../",
        "/etc/",
        "/run/",
        "/var/",
        "/home/",
        "/tmp/",
        "/usr/",
        "/opt/",
        "/secrets/",
        "/vault/",
        "/mnt/",
        "/root/",
        "/Users/",
        "/srv/",
        "/app/",
        "file://",
    ];
    !v.contains(char::is_whitespace) && ROOTS.iter().any(|r| v.starts_with(r))
}

fn ident_len(v: &[u8]) -> usize {
    match v.first() {
        Some(b) if b.is_ascii_alphabetic() || *b == b'_' => v
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
            .count(),
        _ => 0,
    }
}

fn is_ident(v: &[u8]) -> bool {
    let v = v.trim_ascii();
    !v.is_empty() && ident_len(v) == v.len()
}
