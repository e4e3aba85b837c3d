//! The identity stage: who is calling, by bearer token, per the server's auth mode; and
//! the OAuth 2.0 Protected Resource Metadata (RFC 9728) an MCP client needs to find out
//! where to get a token, served by the gateway on the server's behalf.
//!
//! MCP authorization (2025-06-18 onwards) makes the MCP server an OAuth resource server:
//! a request without a valid token gets 401 with `WWW-Authenticate: Bearer
//! resource_metadata="…"`, the client fetches that document, finds the authorization
//! server and comes back with a token for this resource. The gateway plays the resource
//! server for every intercepted server in `require`/`optional` mode, and the token is
//! then removed: it was issued to the gateway's audience, and MCP forbids passing it on.

use http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use serde_json::{Value, json};
use tracing::{info, warn};

use super::{body::ProxyBody, exchange::json_response};
use crate::{
    config::AuthMode,
    identity::{Authenticator, TokenError},
    mcp::jsonrpc::{self, codes},
    principal::TokenClaims,
    servers::ServerSettings,
};

/// RFC 9728 §3: the metadata lives at this well-known path, with the resource's own path
/// (if any) appended.
pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// What the identity stage decided about one request.
pub enum Admission {
    /// Proceed, as the token's subject if a valid one came.
    Admit(Option<TokenClaims>),
    /// Answer the client ourselves (401, 403, or the metadata document).
    Respond(http::Response<ProxyBody>, Refusal),
}

/// Why a request was answered by the identity stage: for logs and the audit row.
pub struct Refusal {
    pub status: u16,
    /// `None` for the metadata document (not a refusal).
    pub reason: Option<String>,
}

/// Applies `server`'s auth mode to a request. On admission with a token, the caller's
/// `Authorization` has been removed from `parts`.
pub async fn admit(
    parts: &mut Parts,
    server: &ServerSettings,
    authenticator: Option<&Authenticator>,
) -> Admission {
    if server.auth == AuthMode::Local {
        return Admission::Admit(None);
    }
    let Some(authenticator) = authenticator else {
        // The issuers' discovery has not succeeded yet (IdP unreachable at start): tokens
        // cannot be checked, so nothing that needs one goes through.
        return unavailable();
    };
    if parts.method == http::Method::GET && parts.uri.path().starts_with(METADATA_PATH) {
        let document = metadata_document(parts, server, authenticator);
        return Admission::Respond(
            json_response(StatusCode::OK, &document),
            Refusal {
                status: 200,
                reason: None,
            },
        );
    }
    let token = match bearer(&parts.headers) {
        Ok(token) => token.map(str::to_owned),
        Err(problem) => {
            return refuse(
                &TokenError::Malformed(problem.into()),
                &metadata_url(parts, server),
                problem,
            );
        }
    };
    // The token (valid or not) is for the gateway; it never goes upstream.
    parts.headers.remove(header::AUTHORIZATION);
    let Some(token) = token else {
        if server.auth == AuthMode::Optional || parts.method == http::Method::OPTIONS {
            // A CORS preflight carries no credentials by design.
            return Admission::Admit(None);
        }
        return refuse(
            &TokenError::Missing,
            &metadata_url(parts, server),
            "no bearer token",
        );
    };
    let claims = match authenticator.authenticate(&token, &server.scopes).await {
        Ok(claims) => claims,
        Err(err) => {
            let reason = err.to_string();
            return refuse(&err, &metadata_url(parts, server), &reason);
        }
    };
    if let Some(audience) = &server.audience
        && !audience_named(&claims, audience)
    {
        let err = TokenError::WrongAudience;
        return refuse(
            &err,
            &metadata_url(parts, server),
            &format!("token is not for this server's audience {audience}"),
        );
    }
    info!(sub = %claims.subject, iss = %claims.issuer, client_id = claims.client_id.as_deref().unwrap_or(""), "caller authenticated");
    Admission::Admit(Some(claims))
}

fn refuse(err: &TokenError, metadata_url: &str, reason: &str) -> Admission {
    let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::UNAUTHORIZED);
    warn!(status = status.as_u16(), %reason, "request refused by the identity stage");
    crate::metrics::get().identity_refused(Some(err));
    let challenge = HeaderValue::from_str(&err.www_authenticate(metadata_url))
        .unwrap_or_else(|_| HeaderValue::from_static("Bearer"));
    let message = format!(
        "gateway: {}: {reason}",
        status.canonical_reason().unwrap_or("refused")
    );
    let body = jsonrpc::error_response(&Value::Null, codes::UNAUTHORIZED, &message);
    let mut response = json_response(status, &body);
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, challenge);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    Admission::Respond(
        response,
        Refusal {
            status: status.as_u16(),
            reason: Some(reason.to_owned()),
        },
    )
}

fn unavailable() -> Admission {
    let reason = "the identity provider has not been reached yet, so tokens cannot be checked";
    crate::metrics::get().identity_refused(None);
    warn!(
        status = 503,
        reason, "request refused by the identity stage"
    );
    let body = jsonrpc::error_response(
        &Value::Null,
        codes::UNAUTHORIZED,
        &format!("gateway: {reason}; retry later"),
    );
    let mut response = json_response(StatusCode::SERVICE_UNAVAILABLE, &body);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    Admission::Respond(
        response,
        Refusal {
            status: 503,
            reason: Some(reason.to_owned()),
        },
    )
}

/// The bearer token of a request, if any. Two `Authorization` headers, or one in another
/// scheme, are refused rather than guessed at: a server behind us might read the other one.
fn bearer(headers: &HeaderMap) -> Result<Option<&str>, &'static str> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err("more than one Authorization header");
    }
    let value = value
        .to_str()
        .map_err(|_| "Authorization header is not text")?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or("Authorization header is not `Bearer TOKEN`")?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err("Authorization scheme is not Bearer");
    }
    let token = token.trim();
    if token.is_empty() {
        return Err("empty bearer token");
    }
    Ok(Some(token))
}

fn audience_named(claims: &TokenClaims, audience: &str) -> bool {
    match claims.extra.get("aud") {
        Some(Value::String(aud)) => aud == audience,
        Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(audience)),
        _ => false,
    }
}

/// The resource's URI as the client addressed it (RFC 9728 §1.2: the protected
/// resource is identified by its URL), unless the operator pinned one.
fn resource_uri(parts: &Parts, server: &ServerSettings) -> String {
    if let Some(resource) = &server.resource {
        return resource.clone();
    }
    let path = parts
        .uri
        .path()
        .strip_prefix(METADATA_PATH)
        .unwrap_or(parts.uri.path());
    let path = if path == "/" { "" } else { path };
    format!("http://{}{path}", authority(parts))
}

/// RFC 9728 §3.1: `https://host/.well-known/oauth-protected-resource/path`.
fn metadata_url(parts: &Parts, server: &ServerSettings) -> String {
    let resource = resource_uri(parts, server);
    match resource.split_once("://") {
        Some((scheme, rest)) => {
            let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let path = path.trim_end_matches('/');
            format!("{scheme}://{host}{METADATA_PATH}{path}")
        }
        None => format!("http://{}{METADATA_PATH}", authority(parts)),
    }
}

fn authority(parts: &Parts) -> String {
    parts
        .uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            parts
                .headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "localhost".to_owned())
}

fn metadata_document(parts: &Parts, server: &ServerSettings, auth: &Authenticator) -> Value {
    let mut scopes = auth.scopes_supported();
    for scope in &server.scopes {
        if !scopes.contains(scope) {
            scopes.push(scope.clone());
        }
    }
    let mut document = json!({
        "resource": resource_uri(parts, server),
        "authorization_servers": auth.authorization_servers(),
        "bearer_methods_supported": ["header"],
        "scopes_supported": scopes,
    });
    if let Some(name) = &server.name {
        document["resource_name"] = name.clone().into();
    }
    document
}

#[cfg(test)]
mod tests;
