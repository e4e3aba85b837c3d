//! Secrets hidden by an encoding: base64 / base64url, hex and URL-encoding.
//!
//! Decoding every string would cost the clean path dearly, so candidates are found by the
//! scanner's one keyword pass: the base64 and hex *spellings* of words and prefixes that
//! betray a secret (`password`, `token`, `ghp_`, `AKIA`, `PRIVATE KEY`…) are keywords
//! too. A base64 spelling depends on where the word falls in its 3-byte group, so each
//! word has three, and only the characters the word alone determines are used. A hit is
//! widened to the whole run of the encoding's alphabet, which is decoded (bounded) and
//! scanned again; if the decoded text holds a secret, the whole encoded run is masked.
//!
//! URL-encoding keeps letters and digits as they are, so keywords still show; what it
//! hides is the syntax (`password%3Dhunter2%26…`, `%22token%22%3A%22…`). Strings holding
//! a `%XX` escape have their escaped runs decoded, scanned, and the hits mapped back to
//! the encoded bytes.

use base64::{
    Engine, alphabet,
    engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
};

/// Shortest encoded run worth decoding: a secret shorter than 16 bytes has no recognisable
/// format, and shorter runs are everyday identifiers.
pub const MIN_RUN: usize = 24;
/// Longest encoded run decoded (a secret, or a small file holding one).
pub const MAX_RUN: usize = 64 << 10;
/// How many encodings deep a secret is followed (`base64(urlencode(…))`).
pub const MAX_DEPTH: usize = 2;
/// Shortest literal used as a keyword: shorter spellings turn up by chance in any blob.
const MIN_LITERAL: usize = 5;

/// Words spelled in three cases, prefixes as they are issued.
const WORDS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "bearer",
    "private_key",
];
const PREFIXES: &[&str] = &[
    "PRIVATE KEY",
    "ghp_",
    "gho_",
    "ghs_",
    "github_pat_",
    "glpat-",
    "xoxb-",
    "xoxp-",
    "sk_live_",
    "sk-proj-",
    "sk-ant-",
    "AKIA",
    "ASIA",
    "AIza",
    "eyJhbGci",
    "npm_",
    "hvs.",
    "dop_v1_",
    "postgres://",
    "postgresql://",
    "mysql://",
    "mongodb+srv://",
    "mongodb://",
    "redis://",
    "amqp://",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// The literal's first character sits at this position (0–3) of its 4-char group.
    Base64 {
        phase: u8,
    },
    Hex,
}

/// Every encoded spelling of every trigger, with its encoding.
pub fn keywords() -> Vec<(String, Encoding)> {
    let mut triggers: Vec<String> = PREFIXES.iter().map(|p| (*p).to_owned()).collect();
    for word in WORDS {
        triggers.push((*word).to_owned());
        triggers.push(word.to_ascii_uppercase());
        let mut capital = (*word).to_owned();
        capital[..1].make_ascii_uppercase();
        triggers.push(capital);
    }
    let mut out = Vec::new();
    for trigger in &triggers {
        let bytes = trigger.as_bytes();
        out.push((hex(bytes), Encoding::Hex));
        for align in 0..3usize {
            let mut padded = vec![0u8; align];
            padded.extend_from_slice(bytes);
            let encoded = base64::engine::general_purpose::STANDARD.encode(&padded);
            // Character k holds bits 6k..6k+6; the trigger holds bits 8·align..8·(align+len).
            let first = (8 * align).div_ceil(6);
            let last = (8 * (align + bytes.len())) / 6; // exclusive
            if last <= first || last - first < MIN_LITERAL {
                continue;
            }
            let literal = &encoded[first..last];
            let phase = u8::try_from(first % 4).unwrap_or(0);
            out.push((literal.to_owned(), Encoding::Base64 { phase }));
            let url = literal.replace('+', "-").replace('/', "_");
            if url != literal {
                out.push((url, Encoding::Base64 { phase }));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.dedup_by(|a, b| a.0 == b.0);
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_base64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_')
}

/// The bytes of [`long_runs`]: the base64 (both alphabets) and hex digits, and `=`.
const RUN_BYTE: [bool; 256] = {
    let mut member = [false; 256];
    let mut b = 0;
    while b < 256 {
        let byte = b as u8;
        member[b] =
            byte.is_ascii_alphanumeric() || matches!(byte, b'+' | b'/' | b'-' | b'_' | b'=');
        b += 1;
    }
    member
};

/// Calls `region(start, end)` for each maximal run of `text` of at least [`MIN_RUN`]
/// bytes of the base64 and hex alphabets and `=`: every run [`run`] accepts lies in one.
/// Probes one byte per [`MIN_RUN`] where text has no long run (prose, JSON punctuation).
pub fn long_runs(text: &[u8], mut region: impl FnMut(usize, usize)) {
    let member = |b: u8| RUN_BYTE[usize::from(b)];
    // `at` is always at the start of the text or just after a non-member.
    let mut at = 0;
    while at + MIN_RUN <= text.len() {
        let probe = at + MIN_RUN - 1;
        if !member(text[probe]) {
            at = probe + 1;
            continue;
        }
        let mut start = probe;
        while start > at && member(text[start - 1]) {
            start -= 1;
        }
        if start > at {
            at = start;
            continue;
        }
        let mut end = probe + 1;
        while end < text.len() && member(text[end]) {
            end += 1;
        }
        region(at, end);
        at = end + 1;
    }
}

/// The encoded run around a keyword hit at `start..end`, if long enough.
pub fn run(text: &[u8], start: usize, end: usize, encoding: Encoding) -> Option<(usize, usize)> {
    let member: fn(u8) -> bool = match encoding {
        Encoding::Base64 { .. } => is_base64,
        Encoding::Hex => |b: u8| b.is_ascii_hexdigit(),
    };
    let mut run_start = start;
    while run_start > 0 && start - run_start < MAX_RUN && member(text[run_start - 1]) {
        run_start -= 1;
    }
    let mut run_end = end;
    while run_end < text.len() && run_end - end < MAX_RUN && member(text[run_end]) {
        run_end += 1;
    }
    if let Encoding::Base64 { phase } = encoding {
        // Start on a group boundary, as the encoder did.
        let boundary = start as i64 - i64::from(phase);
        run_start += usize::try_from((boundary - run_start as i64).rem_euclid(4)).unwrap_or(0);
        while run_end < text.len() && text[run_end] == b'=' && run_end - end < MAX_RUN {
            run_end += 1;
        }
    }
    (run_end - run_start >= MIN_RUN).then_some((run_start, run_end))
}

/// The decoded bytes of a run, as text (invalid UTF-8 replaced: binary around a secret
/// does not hide it).
pub fn decode(encoded: &[u8], encoding: Encoding) -> Option<String> {
    let bytes = match encoding {
        Encoding::Hex => {
            let even = &encoded[..encoded.len() & !1];
            even.chunks(2)
                .map(|pair| {
                    let hi = char::from(pair[0]).to_digit(16)?;
                    let lo = char::from(pair[1]).to_digit(16)?;
                    u8::try_from(hi * 16 + lo).ok()
                })
                .collect::<Option<Vec<u8>>>()?
        }
        Encoding::Base64 { .. } => {
            let body: &[u8] = {
                let unpadded = encoded
                    .iter()
                    .rposition(|&b| b != b'=')
                    .map_or(&[][..], |p| &encoded[..=p]);
                &unpadded[..unpadded.len() - usize::from(unpadded.len() % 4 == 1)]
            };
            let config = GeneralPurposeConfig::new()
                .with_decode_padding_mode(DecodePaddingMode::Indifferent)
                .with_decode_allow_trailing_bits(true);
            let url = body.iter().any(|b| matches!(b, b'-' | b'_'));
            let alphabet = if url {
                &alphabet::URL_SAFE
            } else {
                &alphabet::STANDARD
            };
            GeneralPurpose::new(alphabet, config).decode(body).ok()?
        }
    };
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// URL-encoded runs of `text`: (start, end, decoded text, for each decoded byte its
/// offset in the run, plus the run's length at the end).
pub fn percent_runs(text: &str) -> Vec<(usize, usize, String, Vec<usize>)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(found) = bytes[at..].iter().position(|&b| b == b'%') {
        let pct = at + found;
        if !is_escape(bytes, pct) {
            at = pct + 1;
            continue;
        }
        let url_byte =
            |b: u8| !b.is_ascii_whitespace() && !matches!(b, b'"' | b'\'' | b'<' | b'>' | b'`');
        let mut start = pct;
        while start > 0 && pct - start < MAX_RUN && url_byte(bytes[start - 1]) {
            start -= 1;
        }
        let mut end = pct;
        while end < bytes.len() && end - pct < MAX_RUN && url_byte(bytes[end]) {
            end += 1;
        }
        let mut decoded = Vec::with_capacity(end - start);
        let mut map = Vec::with_capacity(end - start + 1);
        let mut i = start;
        while i < end {
            map.push(i - start);
            if is_escape(bytes, i) && i + 2 < end {
                let hi = char::from(bytes[i + 1]).to_digit(16).unwrap_or(0);
                let lo = char::from(bytes[i + 2]).to_digit(16).unwrap_or(0);
                decoded.push(u8::try_from(hi * 16 + lo).unwrap_or(b'?'));
                i += 3;
            } else {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
        map.push(end - start);
        if end - start >= 12 {
            // Only valid UTF-8 keeps the offset map exact.
            if let Ok(decoded) = String::from_utf8(decoded) {
                out.push((start, end, decoded, map));
            }
        }
        at = end.max(pct + 1);
    }
    out
}

fn is_escape(bytes: &[u8], at: usize) -> bool {
    bytes.get(at) == Some(&b'%')
        && bytes.get(at + 1).is_some_and(u8::is_ascii_hexdigit)
        && bytes.get(at + 2).is_some_and(u8::is_ascii_hexdigit)
}

/// Text holding JSON string escapes (`\n`, `\"`, `\t`, `\\`, `\/`, `\uXXXX`) —
/// a JSON document or a multi-line value printed inside a log line — unescaped, with for
/// each decoded byte its offset in `text` (and `text.len()` at the end). `None` when
/// there is nothing to unescape.
pub fn unescape(text: &str) -> Option<(String, Vec<usize>)> {
    let bytes = text.as_bytes();
    let first = bytes
        .windows(2)
        .position(|w| w[0] == b'\\' && matches!(w[1], b'n' | b'"' | b't' | b'r'))?;
    let mut decoded: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut map = Vec::with_capacity(bytes.len() + 1);
    decoded.extend_from_slice(&bytes[..first]);
    map.extend(0..first);
    let mut i = first;
    while i < bytes.len() {
        map.push(i);
        if bytes[i] == b'\\' && i + 1 < bytes.len() {
            let replacement = match bytes[i + 1] {
                b'n' => Some(b'\n'),
                b't' => Some(b'\t'),
                b'r' => Some(b'\r'),
                b'"' => Some(b'"'),
                b'\\' => Some(b'\\'),
                b'/' => Some(b'/'),
                _ => None,
            };
            if let Some(byte) = replacement {
                decoded.push(byte);
                i += 2;
                continue;
            }
        }
        decoded.push(bytes[i]);
        i += 1;
    }
    map.push(bytes.len());
    // Escapes only produce ASCII, so the result is UTF-8 whenever the input was.
    String::from_utf8(decoded)
        .ok()
        .map(|decoded| (decoded, map))
}
