//! Upstream credentials the agent holds for MCP servers, so callers never hold them.
//!
//! MCP forbids token passthrough: a caller's token is for the gateway, not for the server
//! behind it. For a server with a configured credential the agent removes the caller's
//! `Authorization` (and the credential's own header) and injects the credential instead;
//! and because a server might echo it back, any response text containing the secret has
//! it masked. The secret is read once at start from a file, an environment variable or
//! systemd's `$CREDENTIALS_DIRECTORY` (`LoadCredential=`), is never logged (`Debug` is
//! redacted, the header value is marked sensitive) and is zeroised when dropped.

use std::path::PathBuf;

use http::{HeaderName, HeaderValue};
use serde::Deserialize;
use zeroize::Zeroizing;

/// `[server.credential]`: exactly one of `file`, `env`, `systemd`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialConfig {
    /// The header that carries it. Default `Authorization`.
    pub header: Option<String>,
    /// Put before the secret with a space, e.g. `Bearer`. Default: none. With `Basic` the
    /// secret is `user:password` and the agent sends it base64-encoded (RFC 7617).
    pub scheme: Option<String>,
    /// A file holding the secret (surrounding whitespace is trimmed).
    pub file: Option<PathBuf>,
    /// An environment variable of the agent holding the secret.
    pub env: Option<String>,
    /// The name of a systemd credential (`LoadCredential=NAME:…`), read from
    /// `$CREDENTIALS_DIRECTORY/NAME`.
    pub systemd: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("server {server}: credential: set exactly one of file, env, systemd")]
    Source { server: String },
    #[error("server {server}: credential: {what}: {problem}")]
    Read {
        server: String,
        what: String,
        problem: String,
    },
    #[error("server {server}: credential: header {header:?} is not a valid header name")]
    Header { server: String, header: String },
    #[error("server {server}: credential: the secret is empty or not a valid header value")]
    Value { server: String },
    #[error("server {server}: credential: a Basic credential must be `user:password`")]
    Basic { server: String },
}

pub struct Credential {
    header: HeaderName,
    value: HeaderValue,
    secret: Zeroizing<String>,
    /// The secret as it travels, when that differs (Basic's base64): a server echoing
    /// the header it received repeats this form.
    encoded: Option<Zeroizing<String>>,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("header", &self.header)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// The placeholder for the credential wherever a response repeats it.
pub const PLACEHOLDER: &str = "[MASKED:upstream_credential]";

impl Credential {
    pub fn load(config: &CredentialConfig, server: &str) -> Result<Self, CredentialError> {
        let read_err = |what: String, problem: String| CredentialError::Read {
            server: server.to_owned(),
            what,
            problem,
        };
        let raw: Zeroizing<String> = match (&config.file, &config.env, &config.systemd) {
            (Some(path), None, None) => Zeroizing::new(
                std::fs::read_to_string(path)
                    .map_err(|e| read_err(path.display().to_string(), e.to_string()))?,
            ),
            (None, Some(var), None) => Zeroizing::new(
                std::env::var(var).map_err(|e| read_err(format!("${var}"), e.to_string()))?,
            ),
            (None, None, Some(name)) => {
                let dir = std::env::var_os("CREDENTIALS_DIRECTORY").ok_or_else(|| {
                    read_err(
                        format!("systemd credential {name}"),
                        "$CREDENTIALS_DIRECTORY is not set (is LoadCredential= in the unit?)"
                            .into(),
                    )
                })?;
                let path = PathBuf::from(dir).join(name);
                Zeroizing::new(
                    std::fs::read_to_string(&path)
                        .map_err(|e| read_err(path.display().to_string(), e.to_string()))?,
                )
            }
            _ => {
                return Err(CredentialError::Source {
                    server: server.to_owned(),
                });
            }
        };
        let secret = Zeroizing::new(raw.trim().to_owned());
        let header_name = config.header.as_deref().unwrap_or("authorization");
        let header = HeaderName::from_bytes(header_name.as_bytes()).map_err(|_| {
            CredentialError::Header {
                server: server.to_owned(),
                header: header_name.to_owned(),
            }
        })?;
        let basic = config
            .scheme
            .as_deref()
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("basic"));
        let encoded = if basic {
            if !secret.contains(':') {
                return Err(CredentialError::Basic {
                    server: server.to_owned(),
                });
            }
            use base64::Engine as _;
            Some(Zeroizing::new(
                base64::engine::general_purpose::STANDARD.encode(secret.as_bytes()),
            ))
        } else {
            None
        };
        let sent = encoded.as_deref().unwrap_or(&secret);
        let full = Zeroizing::new(match &config.scheme {
            Some(scheme) => format!("{scheme} {}", sent.as_str()),
            None => sent.as_str().to_owned(),
        });
        let mut value = HeaderValue::from_str(&full).map_err(|_| CredentialError::Value {
            server: server.to_owned(),
        })?;
        if secret.is_empty() {
            return Err(CredentialError::Value {
                server: server.to_owned(),
            });
        }
        value.set_sensitive(true);
        Ok(Self {
            header,
            value,
            secret,
            encoded,
        })
    }

    pub fn header(&self) -> &HeaderName {
        &self.header
    }

    pub fn header_value(&self) -> HeaderValue {
        self.value.clone()
    }

    /// Replaces every occurrence of the secret (and of its encoded form) in `text`;
    /// `None` if there is none.
    pub fn mask_in(&self, text: &str) -> Option<String> {
        let forms = std::iter::once(&self.secret).chain(self.encoded.as_ref());
        let mut out: Option<String> = None;
        for form in forms {
            let current = out.as_deref().unwrap_or(text);
            if current.contains(form.as_str()) {
                out = Some(current.replace(form.as_str(), PLACEHOLDER));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(file: &std::path::Path) -> CredentialConfig {
        CredentialConfig {
            header: None,
            scheme: Some("Bearer".into()),
            file: Some(file.to_owned()),
            env: None,
            systemd: None,
        }
    }

    #[test]
    fn loads_from_a_file_and_never_shows_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cr3t-upstream-token\n").unwrap();
        let credential = Credential::load(&config(&path), "billing").unwrap();
        assert_eq!(credential.header(), "authorization");
        assert_eq!(credential.header_value(), "Bearer s3cr3t-upstream-token");
        assert!(credential.header_value().is_sensitive());
        assert!(!format!("{credential:?}").contains("s3cr3t"));
        assert_eq!(
            credential
                .mask_in("echo: s3cr3t-upstream-token!")
                .as_deref(),
            Some("echo: [MASKED:upstream_credential]!")
        );
        assert_eq!(credential.mask_in("nothing here"), None);
    }

    #[test]
    fn basic_credentials_are_encoded_and_both_forms_masked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("basic");
        std::fs::write(&path, "svc-user:pa55-word\n").unwrap();
        let basic = CredentialConfig {
            scheme: Some("Basic".into()),
            ..config(&path)
        };
        let credential = Credential::load(&basic, "wiki").unwrap();
        assert_eq!(credential.header_value(), "Basic c3ZjLXVzZXI6cGE1NS13b3Jk");
        assert_eq!(
            credential
                .mask_in("got c3ZjLXVzZXI6cGE1NS13b3Jk = svc-user:pa55-word")
                .as_deref(),
            Some("got [MASKED:upstream_credential] = [MASKED:upstream_credential]")
        );
        std::fs::write(&path, "no-colon-here").unwrap();
        let err = Credential::load(&basic, "wiki").unwrap_err().to_string();
        assert!(err.contains("user:password"), "{err}");
    }

    #[test]
    fn bad_sources_are_named() {
        let both = CredentialConfig {
            env: Some("X".into()),
            ..config(std::path::Path::new("/x"))
        };
        assert!(
            Credential::load(&both, "s")
                .unwrap_err()
                .to_string()
                .contains("exactly one")
        );
        let missing = config(std::path::Path::new("/nonexistent/token"));
        let err = Credential::load(&missing, "billing")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("billing") && err.contains("/nonexistent/token"),
            "{err}"
        );
        let systemd = CredentialConfig {
            file: None,
            systemd: Some("billing".into()),
            ..config(std::path::Path::new("/x"))
        };
        // Only meaningful where systemd did not start us with credentials.
        if std::env::var_os("CREDENTIALS_DIRECTORY").is_none() {
            let err = Credential::load(&systemd, "billing")
                .unwrap_err()
                .to_string();
            assert!(err.contains("CREDENTIALS_DIRECTORY"), "{err}");
        }
    }
}
