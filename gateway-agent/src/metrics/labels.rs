//! Label values: bounded sets, so nothing a client sends can create new time series.

use crate::identity::TokenError;

/// MCP's request methods (2025-06-18 through 2026-07-28); anything else is `other`.
const METHODS: &[&str] = &[
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "sampling/createMessage",
    "elicitation/create",
    "roots/list",
    "tasks/get",
    "tasks/list",
    "tasks/result",
    "tasks/cancel",
];

/// `method` if it is an MCP method, else `other`.
pub fn method_label(method: &str) -> &'static str {
    METHODS
        .iter()
        .find(|known| **known == method)
        .copied()
        .unwrap_or("other")
}

/// A fixed name per refusal kind (what the token claimed is never a label).
pub fn refusal_reason(err: Option<&TokenError>) -> &'static str {
    let Some(err) = err else {
        return "issuer_unreachable";
    };
    match err {
        TokenError::Missing => "missing_token",
        TokenError::Malformed(_) => "malformed",
        TokenError::UnsupportedAlgorithm(_) => "unsupported_algorithm",
        TokenError::WrongType(_) => "wrong_type",
        TokenError::UnknownIssuer(_) => "unknown_issuer",
        TokenError::UnknownKey { .. } => "unknown_key",
        TokenError::KeysUnavailable { .. } => "keys_unavailable",
        TokenError::KeyMismatch { .. } => "key_mismatch",
        TokenError::BadSignature => "bad_signature",
        TokenError::WrongAudience => "wrong_audience",
        TokenError::MissingClaim(_) => "missing_claim",
        TokenError::Expired => "expired",
        TokenError::NotYetValid => "not_yet_valid",
        TokenError::IssuedInFuture => "issued_in_future",
        TokenError::InsufficientScope { .. } => "insufficient_scope",
    }
}
