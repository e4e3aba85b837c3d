//! The JWT access token itself (RFC 9068 over RFC 7519/7515): splitting the compact form,
//! the header checks made before any key is looked at, and the claim checks made after
//! the signature verified. Pure functions, no I/O, so every rule has a unit test.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use openidconnect::core::CoreJwsSigningAlgorithm;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{IssuerConfig, TokenError, config::DEFAULT_ALGORITHMS};

/// Longer than any real access token by far; bounds the work a garbage header causes.
pub(crate) const MAX_TOKEN_LEN: usize = 16 * 1024;

/// The JOSE header fields the agent acts on; others are ignored (RFC 7515 §4).
#[derive(Debug, Deserialize)]
pub(crate) struct Header {
    pub alg: String,
    pub kid: Option<String>,
    pub typ: Option<String>,
    /// Critical extensions (RFC 7515 §4.1.11): the agent understands none, so any is fatal.
    pub crit: Option<Value>,
}

/// A token split and decoded, signature not yet checked.
#[derive(Debug)]
pub(crate) struct Unverified<'a> {
    pub header: Header,
    pub alg: CoreJwsSigningAlgorithm,
    pub claims: Map<String, Value>,
    /// `base64url(header) "." base64url(payload)`: what the signature covers.
    pub signing_input: &'a [u8],
    pub signature: Vec<u8>,
}

/// The algorithms the agent can verify. Anything else — `none`, the HMAC family (whose
/// "key" would be the issuer's public key, the classic confusion attack), ES512 (which
/// openidconnect cannot verify) — is refused in config and in tokens alike.
pub(crate) fn parse_allowed_algorithm(name: &str) -> Result<CoreJwsSigningAlgorithm, String> {
    if name.eq_ignore_ascii_case("none") {
        return Err("\"none\" (unsigned tokens) is never accepted".into());
    }
    if name.len() >= 2 && name[..2].eq_ignore_ascii_case("HS") {
        return Err(format!(
            "{name:?}: HMAC algorithms are never accepted (the gateway shares no secret with \
             the issuer)"
        ));
    }
    if !DEFAULT_ALGORITHMS.contains(&name) {
        return Err(format!(
            "{name:?} is not supported (supported: {})",
            DEFAULT_ALGORITHMS.join(" ")
        ));
    }
    serde_json::from_value(Value::String(name.to_owned())).map_err(|e| format!("{name:?}: {e}"))
}

fn b64(part: &str, what: &str) -> Result<Vec<u8>, TokenError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::Malformed(format!("{what} is not base64url")))
}

/// Splits and decodes a compact JWS. Refuses unsigned and HMAC tokens here, before any
/// issuer or key is consulted.
pub(crate) fn parse(token: &str) -> Result<Unverified<'_>, TokenError> {
    if token.is_empty() {
        return Err(TokenError::Missing);
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed(format!(
            "longer than {MAX_TOKEN_LEN} bytes"
        )));
    }
    let parts: Vec<&str> = token.split('.').collect();
    let [header, payload, signature] = parts[..] else {
        return Err(TokenError::Malformed(if parts.len() == 5 {
            "encrypted tokens (JWE) are not supported".into()
        } else {
            format!("{} dot-separated parts, want 3 (a signed JWT)", parts.len())
        }));
    };
    let header: Header = serde_json::from_slice(&b64(header, "header")?)
        .map_err(|e| TokenError::Malformed(format!("header: {e}")))?;
    let alg = parse_allowed_algorithm(&header.alg)
        .map_err(|_| TokenError::UnsupportedAlgorithm(header.alg.clone()))?;
    if header.crit.is_some() {
        return Err(TokenError::Malformed(
            "critical header extensions (crit) are not understood".into(),
        ));
    }
    if let Some(typ) = &header.typ {
        // RFC 9068 §2.1 asks for `at+jwt`; many providers (Entra ID, Keycloak) send `JWT`.
        // Anything else (`id+jwt`, `logout+jwt`…) is some other kind of token.
        let bare = typ.strip_prefix("application/").unwrap_or(typ);
        if !bare.eq_ignore_ascii_case("at+jwt") && !bare.eq_ignore_ascii_case("jwt") {
            return Err(TokenError::WrongType(typ.clone()));
        }
    }
    let claims = match serde_json::from_slice(&b64(payload, "payload")?) {
        Ok(Value::Object(claims)) => claims,
        Ok(_) => return Err(TokenError::Malformed("payload is not a JSON object".into())),
        Err(e) => return Err(TokenError::Malformed(format!("payload: {e}"))),
    };
    let signature = b64(signature, "signature")?;
    let signing_input = &token.as_bytes()[..token.len() - parts[2].len() - 1];
    Ok(Unverified {
        header,
        alg,
        claims,
        signing_input,
        signature,
    })
}

/// A NumericDate claim (RFC 7519 §2: seconds, possibly fractional).
fn date(claims: &Map<String, Value>, name: &'static str) -> Result<Option<f64>, TokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .map(Some)
            .ok_or_else(|| TokenError::Malformed(format!("{name} is not a number"))),
        Some(_) => Err(TokenError::Malformed(format!("{name} is not a number"))),
    }
}

/// The checks on a token whose signature verified: issuer, audience, validity window.
/// `now` in Unix seconds. Returns `exp`, for the cache.
pub(crate) fn check_claims(
    claims: &Map<String, Value>,
    issuer: &IssuerConfig,
    now: u64,
) -> Result<u64, TokenError> {
    match claims.get("iss") {
        Some(Value::String(iss)) if *iss == issuer.issuer => {}
        Some(Value::String(iss)) => return Err(TokenError::UnknownIssuer(iss.clone())),
        _ => return Err(TokenError::MissingClaim("iss")),
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => issuer.audiences.contains(aud),
        Some(Value::Array(list)) => list.iter().any(|a| {
            a.as_str()
                .is_some_and(|a| issuer.audiences.iter().any(|c| c == a))
        }),
        None => return Err(TokenError::MissingClaim("aud")),
        Some(_) => return Err(TokenError::Malformed("aud is not a string or list".into())),
    };
    if !audience_ok {
        return Err(TokenError::WrongAudience);
    }
    let now = now as f64;
    let skew = issuer.clock_skew_secs as f64;
    let exp = date(claims, "exp")?.ok_or(TokenError::MissingClaim("exp"))?;
    // RFC 7519 §4.1.4: valid only *before* exp.
    if now >= exp + skew {
        return Err(TokenError::Expired);
    }
    if date(claims, "nbf")?.is_some_and(|nbf| nbf > now + skew) {
        return Err(TokenError::NotYetValid);
    }
    if date(claims, "iat")?.is_some_and(|iat| iat > now + skew) {
        return Err(TokenError::IssuedInFuture);
    }
    // Saturating float-to-int: a huge exp caches for a long time but the cache bounds it.
    Ok(exp as u64)
}

/// The scopes of `required` not in `granted`, in `required`'s order, without repeats.
pub(crate) fn missing_scopes<'a>(
    granted: &[String],
    required: impl IntoIterator<Item = &'a String>,
) -> Vec<String> {
    let mut missing: Vec<String> = Vec::new();
    for scope in required {
        if !granted.contains(scope) && !missing.contains(scope) {
            missing.push(scope.clone());
        }
    }
    missing
}
