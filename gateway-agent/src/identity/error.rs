//! Why a token was refused, in the caller's and the operator's terms, and how that is
//! said on the wire (RFC 6750 §3 `WWW-Authenticate`, with RFC 9728's `resource_metadata`).

/// Setting up the identity stage failed (at start; the agent does not run without it).
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("{0}")]
    Config(String),
    #[error("identity issuer {issuer:?}: {problem}")]
    Discovery { issuer: String, problem: String },
}

/// A bearer token was refused. `Display` is for the agent's log (it may name the key id
/// or issuer the token claimed; never the token); [`TokenError::www_authenticate`] is what
/// the caller sees, and says only which check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("no bearer token")]
    Missing,
    #[error("malformed token: {0}")]
    Malformed(String),
    #[error("token signature algorithm {0:?} is not accepted")]
    UnsupportedAlgorithm(String),
    #[error("token type {0:?} is not an access token (want at+jwt or JWT)")]
    WrongType(String),
    #[error("token issuer {0:?} is not a configured issuer")]
    UnknownIssuer(String),
    #[error("token signing key {kid:?} is not in issuer {issuer}'s key set")]
    UnknownKey { issuer: String, kid: Option<String> },
    /// A key the agent does not hold, while the issuer's key set cannot be fetched (down,
    /// or answering something that is not a key set): the token may be fine, so the
    /// answer is 503 with Retry-After, not a 401 that tells the client to drop it.
    #[error(
        "token signing key {kid:?} is not held and issuer {issuer}'s key set cannot be fetched: {problem}"
    )]
    KeysUnavailable {
        issuer: String,
        kid: Option<String>,
        problem: String,
    },
    #[error("token signing key {kid:?} cannot be used with algorithm {alg}")]
    KeyMismatch { kid: Option<String>, alg: String },
    #[error("token signature does not verify")]
    BadSignature,
    #[error("token audience is not one of this gateway's audiences")]
    WrongAudience,
    #[error("token lacks the {0} claim")]
    MissingClaim(&'static str),
    #[error("token expired")]
    Expired,
    #[error("token is not valid yet (nbf)")]
    NotYetValid,
    #[error("token issued in the future (iat)")]
    IssuedInFuture,
    #[error("token lacks scopes {missing:?}")]
    InsufficientScope {
        /// The scopes the token lacks.
        missing: Vec<String>,
        /// Every scope the request needs (what a client should ask for, RFC 6750 §3).
        required: Vec<String>,
    },
}

impl TokenError {
    /// The HTTP status: 403 when the caller is known but lacks scope, 401 otherwise.
    pub fn status(&self) -> u16 {
        match self {
            Self::InsufficientScope { .. } => 403,
            Self::KeysUnavailable { .. } => 503,
            _ => 401,
        }
    }

    /// The RFC 6750 error code; `None` for a request without a token (§3.1: "SHOULD NOT
    /// include an error code").
    pub fn error_code(&self) -> Option<&'static str> {
        match self {
            Self::Missing | Self::KeysUnavailable { .. } => None,
            Self::InsufficientScope { .. } => Some("insufficient_scope"),
            _ => Some("invalid_token"),
        }
    }

    /// A fixed description per kind: nothing from the token is echoed, so a crafted `kid`
    /// or `iss` cannot inject header syntax.
    fn description(&self) -> &'static str {
        match self {
            Self::Missing => "no bearer token",
            Self::Malformed(_) => "malformed token",
            Self::UnsupportedAlgorithm(_) => "signature algorithm not accepted",
            Self::WrongType(_) => "not an access token",
            Self::UnknownIssuer(_) => "issuer not trusted",
            Self::UnknownKey { .. } => "unknown signing key",
            Self::KeysUnavailable { .. } => "signing keys unavailable",
            Self::KeyMismatch { .. } => "signing key does not match algorithm",
            Self::BadSignature => "bad signature",
            Self::WrongAudience => "wrong audience",
            Self::MissingClaim(_) => "required claim missing",
            Self::Expired => "token expired",
            Self::NotYetValid => "token not yet valid",
            Self::IssuedInFuture => "token issued in the future",
            Self::InsufficientScope { .. } => "insufficient scope",
        }
    }

    /// The `WWW-Authenticate` value, e.g.
    /// `Bearer error="invalid_token", error_description="token expired", resource_metadata="…"`.
    pub fn www_authenticate(&self, resource_metadata_url: &str) -> String {
        let mut out = String::from("Bearer ");
        if let Some(code) = self.error_code() {
            out.push_str(&format!(
                "error=\"{code}\", error_description=\"{}\", ",
                self.description()
            ));
        }
        if let Self::InsufficientScope { required, .. } = self {
            out.push_str(&format!("scope=\"{}\", ", quotable(&required.join(" "))));
        }
        out.push_str(&format!(
            "resource_metadata=\"{}\"",
            quotable(resource_metadata_url)
        ));
        out
    }
}

/// RFC 6750 §3 limits attribute values to printable ASCII without `"` and `\`; anything
/// else is dropped rather than escaped, since the grammar has no escapes.
fn quotable(text: &str) -> String {
    text.chars()
        .filter(|&c| (' '..='~').contains(&c) && c != '"' && c != '\\')
        .collect()
}
