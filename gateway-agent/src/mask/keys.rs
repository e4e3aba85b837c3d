//! Which JSON keys hold secrets, whatever their spelling.
//!
//! A key is normalised to lowercase ASCII letters and digits (`apiKey`, `API_KEY`,
//! `api-key` and `Api Key` all become `apikey`) and is secret when the normalised form
//!
//! - equals a name in [`EXACT`] (or one the operator configured), or
//! - ends with a suffix in [`SUFFIXES`] (`db_password`, `githubToken`,
//!   `aws_secret_access_key`), unless it is one of the few [`NOT_SECRET`] names that end
//!   like a secret but are protocol state a client needs back (`nextPageToken`, MCP's
//!   `progressToken`).
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
    "dsn",
    "credential",
    "credentials",
    "signingkey",
    "encryptionkey",
    "masterkey",
];

/// Normalised endings that make a key secret.
const SUFFIXES: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "accesskey",
    "secretkey",
    "privatekey",
    "signingkey",
    "encryptionkey",
    "connectionstring",
    "credential",
    "credentials",
    "cookie",
];

/// End like a secret, but are pagination cursors or protocol state: masking them breaks
/// the client (it cannot fetch the next page or match progress notifications) and hides
/// nothing an attacker could use.
const NOT_SECRET: &[&str] = &[
    "pagetoken",
    "nextpagetoken",
    "prevpagetoken",
    "previouspagetoken",
    "continuationtoken",
    "nexttoken",
    "synctoken",
    "resumetoken",
    "progresstoken",
    "maxtoken",
    "tokentype",
];

/// Longest normalised key checked without allocating; longer keys are rare and take a
/// slower path.
const INLINE: usize = 64;

pub struct SensitiveKeys {
    extra: Vec<String>,
    /// The last three characters of every name and suffix: a key ending otherwise
    /// (`type`, `text`, `id`, `url` — nearly all keys) is rejected after one lookup in
    /// this short list instead of ~60 comparisons.
    endings: Vec<[u8; 3]>,
}

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
        let mut endings: Vec<[u8; 3]> = EXACT
            .iter()
            .chain(SUFFIXES)
            .map(|name| name.as_bytes())
            .chain(normalised.iter().map(String::as_bytes))
            .filter_map(ending)
            .collect();
        endings.sort_unstable();
        endings.dedup();
        Ok(Self {
            extra: normalised,
            endings,
        })
    }

    /// Called for every key of every object, so the common case does not allocate.
    pub fn is_sensitive(&self, key: &str) -> bool {
        let mut buf = [0u8; INLINE];
        let mut len = 0;
        for b in key.bytes().filter(u8::is_ascii_alphanumeric) {
            if len == INLINE {
                return self.matches(normalise(key).as_bytes());
            }
            buf[len] = b.to_ascii_lowercase();
            len += 1;
        }
        self.matches(&buf[..len])
    }

    fn matches(&self, key: &[u8]) -> bool {
        // Names shorter than three characters (only an operator's) have no ending.
        let Some(end) = ending(key) else {
            return self.extra.iter().any(|e| e.as_bytes() == key);
        };
        let is = |name: &&str| name.as_bytes() == key;
        if !self.endings.contains(&end) || NOT_SECRET.iter().any(is) {
            return false;
        }
        EXACT.iter().any(is)
            || SUFFIXES.iter().any(|s| key.ends_with(s.as_bytes()))
            || self.extra.iter().any(|e| e.as_bytes() == key)
    }
}

fn ending(name: &[u8]) -> Option<[u8; 3]> {
    name.last_chunk().copied()
}

/// Lowercase ASCII letters and digits only.
pub fn normalise(key: &str) -> String {
    key.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}
