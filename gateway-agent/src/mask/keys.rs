//! Which names hold secrets, whatever their spelling: JSON keys, and the names of
//! assignments in text (`DB_PASS=…`, `--client-secret …`, `<password>…`).
//!
//! A key is split into words at separators and camelCase humps (`adminPwd` → admin pwd,
//! `APIKey` → api key), trailing words that still name the secret itself are dropped
//! ([`SAME_THING`]: `password_hash`, `client-key-data`), and the rest, lowercased and
//! joined (`apiKey`, `API_KEY`, `api-key` and `Api Key` all become `apikey`), is secret
//! when it
//!
//! - equals a name in [`EXACT`] (or one the operator configured), or
//! - ends with a suffix in [`SUFFIXES`] (`db_password`, `githubToken`,
//!   `aws_secret_access_key`), unless it ends like one of the few [`NOT_SECRET`] names
//!   that are protocol state a client needs back (`nextPageToken`, MCP's
//!   `progressToken`), or
//! - its last word is a short password word ([`SHORT_WORDS`]: `smtp_pass`, `DB_PASS`,
//!   `adminPwd`) — as a word, so `bypass`, `compass` and `passenger` stay.
//!
//! Suffixes, not prefixes or substrings: the word that names a secret comes last in
//! English compound keys, while a leading one names something *about* the secret
//! (`password_policy`, `token_count`, `tokenizer`, `secret_name`) or a count
//! (`max_tokens`). `credential(s)` is secret: in tool output it nearly always holds one.

/// Normalised names that are secret wherever they appear.
const EXACT: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "pass",
    "passphrase",
    "passcode",
    "secret",
    "token",
    "jwt",
    "bearer",
    "apikey",
    "xapikey",
    "accesskey",
    "secretkey",
    "privatekey",
    "privkey",
    "clientsecret",
    "authorization",
    "proxyauthorization",
    "cookie",
    "cookies",
    "setcookie",
    "session",
    "sessionid",
    "sessionkey",
    "connectionstring",
    "connstr",
    // docker `config.json` `auths.*.auth` (base64 `user:password`), `requests`' `auth`.
    "auth",
    "dsn",
    "credential",
    "credentials",
    "signingkey",
    "encryptionkey",
    "masterkey",
    // Wi-Fi (`wpa_supplicant.conf`'s `psk="…"`), IPsec and VPN pre-shared keys.
    "psk",
];

/// Normalised endings that make a key secret.
const SUFFIXES: &[&str] = &[
    "password",
    "passwords",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "apikeys",
    "accesskey",
    "secretkey",
    "privatekey",
    "signingkey",
    "encryptionkey",
    "connectionstring",
    "credential",
    "credentials",
    "cookie",
    // `X_KEY` names whose first word says the key is a credential.
    "appkey",
    "authkey",
    "clientkey",
    "accountkey",
    "masterkey",
    "serverkey",
    "licensekey",
    "sharedkey",
    "subscriptionkey",
    "accesstokens",
    "apitokens",
    "authtokens",
    "refreshtokens",
    "basicauth",
    "httpauth",
    "proxyauth",
    // MySQL's `mysql.user` password hash column.
    "authenticationstring",
    // Java keytool's `-storepass`, `-srcstorepass`, `-keypass`.
    "storepass",
    "keypass",
    // Pre-shared keys: `wpa_psk`, WireGuard's `PresharedKey`, IPsec `ike_psk`.
    "psk",
    "presharedkey",
];

/// Last words that name a password on their own but are too short to be an ending:
/// `smtp_pass`, `adminPwd`, `DB_PASS` — yet `bypass`, `compass`, `passenger` are single
/// words and stay.
const SHORT_WORDS: &[&str] = &["pass", "pwd", "pw", "passwd", "pword"];

/// Trailing words that still name the secret itself (`password_hash`, `secret_value`,
/// kubeconfig's `client-key-data`, Rails' `secret_key_base`): dropped before matching.
/// Any other trailing word names something *about* it (`password_policy`,
/// `token_count`, `secret_name`) and makes the key not secret.
const SAME_THING: &[&str] = &[
    "value",
    "hash",
    "digest",
    "b64",
    "base64",
    "base",
    "hex",
    "enc",
    "encrypted",
    "plain",
    "plaintext",
    "raw",
    "data",
    "bytes",
];

/// End like a secret, but are pagination cursors, protocol state or counts: masking them
/// breaks the client (it cannot fetch the next page or match progress notifications) and
/// hides nothing an attacker could use. Matched as endings of the normalised key.
const NOT_SECRET: &[&str] = &[
    "pagetoken",
    "nextpagetoken",
    "prevpagetoken",
    "previouspagetoken",
    "paginationtoken",
    "continuationtoken",
    "cancellationtoken",
    "idempotencytoken",
    "nexttoken",
    "synctoken",
    "resumetoken",
    "progresstoken",
    "maxtoken",
    "mintoken",
    "numtoken",
    "tokentype",
];

/// Last words too general to name a secret alone (`cache_key`, `sort_key`, `use_auth`,
/// `max_tokens`) but that hold one when the value looks generated (`SENDGRID_KEY`,
/// `REDIS_AUTH`, a YAML `tokens:` list): see [`SensitiveKeys::is_weak`].
const WEAK_WORDS: &[&str] = &["key", "keys", "auth", "tokens", "secrets"];

/// Words that make a `…_key` name structural or public, whatever its value looks like
/// (anywhere before the last word: `vapid_public_key`, `stripe_publishable_key`).
const WEAK_NOT_SECRET: &[&str] = &[
    "public",
    "pub",
    "publishable",
    "site",
    "verify",
    "verification",
    "primary",
    "foreign",
    "sort",
    "partition",
    "range",
    "cache",
    "idempotency",
    "object",
    "routing",
    "lookup",
    "unique",
    "dedup",
    "translation",
    "i18n",
    "host",
    "gpg",
    "pgp",
    "license",
];

/// Words a key is split into (at separators and camelCase humps), at most this many.
const MAX_WORDS: usize = 16;

/// Longest normalised key checked without allocating; longer keys are rare and take a
/// slower path.
const INLINE: usize = 64;

pub struct SensitiveKeys {
    extra: Vec<String>,
    /// The last three characters of every built-in name and suffix: a key ending
    /// otherwise (`type`, `text`, `id`, `url` — nearly all keys) is rejected after one
    /// lookup in this short list instead of ~70 comparisons.
    /// As a bit set indexed by a hash of the three bytes: one load per key, where a
    /// linear scan of ~60 byte arrays showed in profiles. A hash collision only sends a
    /// key on to the exact checks.
    endings: Box<[u64; ENDING_WORDS]>,
    /// Every built-in exact name, suffix and not-secret ending, sorted by its last three
    /// bytes: a key that passed the bit set is compared with the few entries that end
    /// like it, not with all ~90 (a key such as `max_tokens` ends like `accesstokens`, and
    /// repeats in every record of a listing).
    by_ending: Vec<([u8; 3], Entry)>,
}

/// What a built-in name in [`SensitiveKeys::by_ending`] is.
#[derive(Clone, Copy)]
enum Entry {
    Exact(&'static str),
    Suffix(&'static str),
    NotSecret(&'static str),
}

/// Size of the endings bit set in 64-bit words (32 768 bits for ~60 endings: collisions
/// are rare).
const ENDING_WORDS: usize = 512;

impl SensitiveKeys {
    /// `extra`: operator-configured names, normalised like the built-ins. Returns the
    /// first entry that normalises to nothing (it would match no key, or every key
    /// made only of separators).
    pub fn new(extra: &[String]) -> Result<Self, String> {
        let mut normalised = Vec::with_capacity(extra.len());
        for key in extra {
            let norm = normalise(key);
            if norm.is_empty() {
                return Err(key.clone());
            }
            normalised.push(norm);
        }
        let mut endings = Box::new([0u64; ENDING_WORDS]);
        for end in EXACT
            .iter()
            .chain(SUFFIXES)
            .chain(SHORT_WORDS)
            .chain(SAME_THING)
            .map(|name| name.as_bytes())
            .chain(normalised.iter().map(String::as_bytes))
            .filter_map(|name| name.last_chunk::<3>())
        {
            let bit = ending_bit(end);
            endings[bit / 64] |= 1 << (bit % 64);
        }
        let mut by_ending: Vec<([u8; 3], Entry)> = EXACT
            .iter()
            .map(|name| Entry::Exact(name))
            .chain(SUFFIXES.iter().map(|name| Entry::Suffix(name)))
            .chain(NOT_SECRET.iter().map(|name| Entry::NotSecret(name)))
            .filter_map(|entry| {
                let (Entry::Exact(name) | Entry::Suffix(name) | Entry::NotSecret(name)) = entry;
                name.as_bytes().last_chunk::<3>().map(|end| (*end, entry))
            })
            .collect();
        by_ending.sort_by_key(|(end, _)| *end);
        Ok(Self {
            extra: normalised,
            endings,
            by_ending,
        })
    }

    /// Called for every key of every object, so the common case does not allocate.
    pub fn is_sensitive(&self, key: &str) -> bool {
        if self.cannot_match(key) {
            return false;
        }
        let Some(words) = Words::split(key) else {
            // Longer than any real key: the normalised form alone decides.
            let norm = normalise(key);
            return self.extra.contains(&norm)
                || (!NOT_SECRET.iter().any(|n| norm.ends_with(n))
                    && SUFFIXES.iter().any(|s| norm.ends_with(s)));
        };
        if !self.extra.is_empty() && self.extra.iter().any(|e| e.as_bytes() == words.all()) {
            return true;
        }
        let core = words.core();
        if core.is_empty() {
            return false;
        }
        if !self.extra.is_empty() && self.extra.iter().any(|e| e.as_bytes() == core) {
            return true;
        }
        if SHORT_WORDS
            .iter()
            .any(|w| w.as_bytes() == words.last_core_word())
        {
            return true;
        }
        let Some(end) = core.last_chunk::<3>() else {
            return false;
        };
        if !self.ends_like_one(end) {
            return false;
        }
        // Only names ending in the same three bytes can equal `core` or end it (every
        // built-in name is at least three long).
        let from = self.by_ending.partition_point(|(e, _)| e < end);
        let to = self.by_ending.partition_point(|(e, _)| e <= end);
        let same_end = &self.by_ending[from..to];
        if same_end
            .iter()
            .any(|(_, e)| matches!(e, Entry::NotSecret(n) if core.ends_with(n.as_bytes())))
        {
            return false;
        }
        same_end.iter().any(|(_, e)| match e {
            Entry::Exact(name) => name.as_bytes() == core,
            Entry::Suffix(suffix) => core.ends_with(suffix.as_bytes()),
            Entry::NotSecret(_) => false,
        })
    }

    /// The fast "no" for nearly every key: its last three letters or digits end no
    /// name, suffix, short word or same-thing word (a trailing digit or `pw` always takes
    /// the full look, and so do operator names shorter than three).
    fn cannot_match(&self, key: &str) -> bool {
        let mut end = [0u8; 3];
        let mut n = 0;
        for b in key.bytes().rev().filter(u8::is_ascii_alphanumeric) {
            if n == 0 && b.is_ascii_digit() {
                return false;
            }
            n += 1;
            end[3 - n] = b.to_ascii_lowercase();
            if n == 3 {
                break;
            }
        }
        if n < 3 || end[1..] == *b"pw" || self.extra.iter().any(|e| e.len() < 3) {
            return false;
        }
        !self.ends_like_one(&end)
    }

    /// Whether `end` may end a name (never false for one that does).
    fn ends_like_one(&self, end: &[u8; 3]) -> bool {
        let bit = ending_bit(end);
        self.endings[bit / 64] & (1 << (bit % 64)) != 0
    }

    /// Is `key` a name whose last word is too general to call secret alone ([`WEAK_WORDS`]:
    /// `SENDGRID_KEY`, `REDIS_AUTH`, `tokens`)? Callers mask its value only when the value
    /// looks generated (`values::looks_generated`). `key`/`auth` need a word before them
    /// (a bare `key:` is any key); the plurals stand alone (a `tokens:` list).
    pub fn is_weak(&self, key: &str) -> bool {
        let tail = key.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
        let tail = &tail.as_bytes()[tail.len().saturating_sub(7)..];
        if ![&b"key"[..], b"keys", b"auth", b"tokens", b"secrets"]
            .iter()
            .any(|w| tail.len() >= w.len() && tail[tail.len() - w.len()..].eq_ignore_ascii_case(w))
        {
            return false;
        }
        let Some(words) = Words::split(key) else {
            return false;
        };
        if words.kept == 0 || words.kept != words.count {
            return false;
        }
        let last = words.word(words.kept - 1);
        if !WEAK_WORDS.iter().any(|w| w.as_bytes() == last) {
            return false;
        }
        let plural = matches!(last, b"tokens" | b"secrets" | b"keys");
        if words.kept == 1 {
            return plural;
        }
        !(0..words.kept - 1).any(|i| {
            let word = words.word(i);
            WEAK_NOT_SECRET.iter().any(|w| w.as_bytes() == word)
        })
    }

    /// For the name of a name/value pair (`{"name": "DB_PASSWORD", "value": …}`, an
    /// XML `<add key="DbPassword" value="…"/>`, an SSM parameter `/prod/db/password`):
    /// the name is judged like a key; for a path, by its last segment.
    pub fn is_sensitive_name_value(&self, name: &str) -> bool {
        let name = name.trim().trim_end_matches('/');
        let last = name.rsplit(['/', ':']).next().unwrap_or(name);
        self.is_sensitive(last)
    }
}

/// An ending's bit in [`SensitiveKeys::endings`]: a multiplicative hash of its three
/// bytes, top 15 bits.
fn ending_bit(end: &[u8; 3]) -> usize {
    let packed = u32::from_be_bytes([0, end[0], end[1], end[2]]);
    (packed.wrapping_mul(0x9E37_79B1) >> 17) as usize
}

/// A key's words, lowercased and concatenated, with where each word ends.
struct Words {
    buf: [u8; INLINE],
    len: usize,
    ends: [u8; MAX_WORDS],
    count: usize,
    /// Words left after dropping trailing [`SAME_THING`] and all-digit words.
    kept: usize,
}

impl Words {
    /// `None` when the key is longer than [`INLINE`] letters or [`MAX_WORDS`] words.
    fn split(key: &str) -> Option<Self> {
        let mut words = Words {
            buf: [0; INLINE],
            len: 0,
            ends: [0; MAX_WORDS],
            count: 0,
            kept: 0,
        };
        let bytes = key.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            if !b.is_ascii_alphanumeric() {
                words.close()?;
                continue;
            }
            let prev = i.checked_sub(1).map(|p| bytes[p]);
            let next = bytes.get(i + 1).copied();
            // A hump: `adminPwd` (lower→Upper) or `APIKey` (the K of UPPER→Upper lower).
            let hump = b.is_ascii_uppercase()
                && prev.is_some_and(|p| {
                    p.is_ascii_lowercase()
                        || p.is_ascii_digit()
                        || (p.is_ascii_uppercase() && next.is_some_and(|n| n.is_ascii_lowercase()))
                });
            if hump {
                words.close()?;
            }
            if words.len == INLINE {
                return None;
            }
            words.buf[words.len] = b.to_ascii_lowercase();
            words.len += 1;
        }
        words.close()?;
        words.kept = words.count;
        while words.kept > 1 {
            let last = words.word(words.kept - 1);
            if last.iter().all(u8::is_ascii_digit)
                || SAME_THING.iter().any(|s| s.as_bytes() == last)
            {
                words.kept -= 1;
            } else {
                break;
            }
        }
        Some(words)
    }

    /// Ends the current word, if one is open.
    fn close(&mut self) -> Option<()> {
        let start = self
            .count
            .checked_sub(1)
            .map_or(0, |i| usize::from(self.ends[i]));
        if self.len > start {
            if self.count == MAX_WORDS {
                return None;
            }
            self.ends[self.count] = u8::try_from(self.len).ok()?;
            self.count += 1;
        }
        Some(())
    }

    fn word(&self, i: usize) -> &[u8] {
        let start = i.checked_sub(1).map_or(0, |p| usize::from(self.ends[p]));
        &self.buf[start..usize::from(self.ends[i])]
    }

    /// Every letter and digit: the classic normalised form.
    fn all(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The normalised form without trailing same-thing words.
    fn core(&self) -> &[u8] {
        match self.kept {
            0 => &[],
            n => &self.buf[..usize::from(self.ends[n - 1])],
        }
    }

    /// The last kept word without trailing digits (`pass2` → `pass`).
    fn last_core_word(&self) -> &[u8] {
        if self.kept == 0 {
            return &[];
        }
        let word = self.word(self.kept - 1);
        let digits = word.iter().rev().take_while(|b| b.is_ascii_digit()).count();
        &word[..word.len() - digits]
    }
}

/// Lowercase ASCII letters and digits only.
pub fn normalise(key: &str) -> String {
    key.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}
