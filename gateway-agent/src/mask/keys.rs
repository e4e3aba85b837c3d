//! Which JSON keys hold secrets, whatever their spelling: `apiKey`, `API_KEY`, `api-key`
//! and `Api Key` are one key once case and separators are dropped.

/// Normalised names that are secret wherever they appear.
const EXACT: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "pass",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "xapikey",
    "accesskey",
    "secretkey",
    "secretaccesskey",
    "privatekey",
    "clientsecret",
    "authorization",
    "proxyauthorization",
    "cookie",
    "setcookie",
    "session",
    "sessionid",
    "sessiontoken",
    "connectionstring",
    "dsn",
    "credential",
    "credentials",
    "signingkey",
    "encryptionkey",
    "masterkey",
    "webhooksecret",
];

/// Normalised suffixes that make a key secret (`db_password`, `githubToken`, …).
const SUFFIXES: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "accesskey",
    "secretkey",
    "privatekey",
    "connectionstring",
    "credentials",
];

/// Keys that end like a secret but are not one, and whose masking would break clients
/// (pagination cursors) or hide harmless counters.
const NOT_SECRET: &[&str] = &[
    "pagetoken",
    "nextpagetoken",
    "continuationtoken",
    "nexttoken",
    "maxtoken",
    "tokentype",
];

/// Lowercase ASCII letters and digits only.
pub fn normalise(key: &str) -> String {
    key.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

pub struct SensitiveKeys {
    extra: Vec<String>,
}

impl SensitiveKeys {
    /// `extra`: operator-configured names, normalised like the built-ins.
    pub fn new(extra: &[String]) -> Self {
        Self {
            extra: extra
                .iter()
                .map(|k| normalise(k))
                .filter(|k| !k.is_empty())
                .collect(),
        }
    }

    pub fn is_sensitive(&self, key: &str) -> bool {
        let key = normalise(key);
        if NOT_SECRET.contains(&key.as_str()) {
            return false;
        }
        EXACT.contains(&key.as_str())
            || SUFFIXES.iter().any(|suffix| key.ends_with(suffix))
            || self.extra.contains(&key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_key_match() {
        let keys = SensitiveKeys::new(&[]);
        for key in [
            "apiKey",
            "API_KEY",
            "api-key",
            "Api Key",
            "x-api-key",
            "password",
            "DB_PASSWORD",
            "client_secret",
            "githubToken",
            "private_key",
            "Authorization",
            "set-cookie",
            "connection_string",
            "aws_secret_access_key",
            "refresh_token",
            "id_token",
        ] {
            assert!(keys.is_sensitive(key), "{key}");
        }
    }

    #[test]
    fn look_alikes_do_not_match() {
        let keys = SensitiveKeys::new(&[]);
        for key in [
            "max_tokens",
            "token_count",
            "tokenizer",
            "tokens",
            "password_policy",
            "nextPageToken",
            "page_token",
            "secretary",
            "passed",
            "username",
            "description",
            "token_type",
            "keyboard",
        ] {
            assert!(!keys.is_sensitive(key), "{key}");
        }
    }

    #[test]
    fn extra_keys_are_normalised() {
        let keys = SensitiveKeys::new(&["X-Vendor-Auth".to_owned()]);
        assert!(keys.is_sensitive("x_vendor_auth"));
        assert!(!keys.is_sensitive("vendor"));
    }
}
