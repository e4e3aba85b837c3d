//! `[[identity.issuer]]`: which OpenID providers the agent trusts, and for what.

use serde::Deserialize;

/// One trusted token issuer (an OpenID provider or an OAuth authorization server with
/// OpenID discovery).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// The issuer identifier, exactly as tokens carry it in `iss`. Also the discovery
    /// base: the agent reads `<issuer>/.well-known/openid-configuration` at start.
    /// `https://`, or `http://` on a loopback address only.
    pub issuer: String,
    /// Accepted audiences (this gateway's resource identifiers); a token's `aud` must
    /// contain at least one of them.
    pub audiences: Vec<String>,
    /// The claim holding the caller's groups (`groups`, `roles`, `cognito:groups`…).
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Tolerance for clock differences with the issuer when checking `exp`, `nbf`, `iat`.
    #[serde(default = "default_clock_skew_secs")]
    pub clock_skew_secs: u64,
    /// Scopes every token from this issuer must carry (in `scope` or `scp`).
    #[serde(default)]
    pub required_scopes: Vec<String>,
    /// Accepted JWS signature algorithms. `none` and the HMAC family (`HS*`) are refused:
    /// a gateway holds no shared secret with the issuer, and accepting HMAC would let a
    /// caller sign with the issuer's *public* key.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// How often the issuer's key set (JWKS) is fetched again, in seconds.
    #[serde(default = "default_jwks_refresh_secs")]
    pub jwks_refresh_secs: u64,
    /// A token signed with an unknown key id triggers a refresh at most this often, in
    /// seconds, so a stream of forged key ids cannot turn the agent against the issuer.
    #[serde(default = "default_jwks_min_refresh_secs")]
    pub jwks_min_refresh_secs: u64,
}

pub(crate) const DEFAULT_ALGORITHMS: [&str; 9] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

fn default_groups_claim() -> String {
    "groups".to_owned()
}
fn default_clock_skew_secs() -> u64 {
    60
}
fn default_algorithms() -> Vec<String> {
    DEFAULT_ALGORITHMS.iter().map(|&a| a.to_owned()).collect()
}
fn default_jwks_refresh_secs() -> u64 {
    3600
}
fn default_jwks_min_refresh_secs() -> u64 {
    30
}

impl IssuerConfig {
    /// A config with every default, for `issuer` and `audiences`.
    pub fn new(issuer: impl Into<String>, audiences: Vec<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audiences,
            groups_claim: default_groups_claim(),
            clock_skew_secs: default_clock_skew_secs(),
            required_scopes: Vec::new(),
            algorithms: default_algorithms(),
            jwks_refresh_secs: default_jwks_refresh_secs(),
            jwks_min_refresh_secs: default_jwks_min_refresh_secs(),
        }
    }

    /// Everything that can be checked without the network; `gateway-agent check` and
    /// `run` call the same function. The message names the issuer and the field.
    pub fn validate(&self) -> Result<(), String> {
        let name = &self.issuer;
        let fail = |what: String| Err(format!("identity issuer {name:?}: {what}"));
        let url = match openidconnect::url::Url::parse(&self.issuer) {
            Ok(url) => url,
            Err(e) => return fail(format!("issuer is not a URL: {e}")),
        };
        match url.scheme() {
            "https" => {}
            // Plain http leaks nothing secret (keys are public) but lets anyone on the path
            // swap the keys; only a loopback issuer (a local IdP, the tests) may use it.
            "http" if is_loopback(&url) => {}
            "http" => return fail("issuer must be https (http only on loopback)".into()),
            other => return fail(format!("issuer scheme {other:?} is not https")),
        }
        if url.query().is_some() || url.fragment().is_some() {
            return fail("issuer must not have a query or fragment (OpenID Discovery §2)".into());
        }
        if self.audiences.is_empty() || self.audiences.iter().any(|a| a.trim().is_empty()) {
            return fail("audiences must list at least one non-empty audience".into());
        }
        if self.groups_claim.trim().is_empty() {
            return fail("groups_claim is empty".into());
        }
        if self.algorithms.is_empty() {
            return fail("algorithms is empty: no token could ever be accepted".into());
        }
        for alg in &self.algorithms {
            if let Err(e) = super::jwt::parse_allowed_algorithm(alg) {
                return fail(format!("algorithms: {e}"));
            }
        }
        if self.jwks_refresh_secs == 0 {
            return fail("jwks_refresh_secs must be at least 1".into());
        }
        if self.jwks_min_refresh_secs > self.jwks_refresh_secs {
            return fail(format!(
                "jwks_min_refresh_secs ({}) is above jwks_refresh_secs ({})",
                self.jwks_min_refresh_secs, self.jwks_refresh_secs
            ));
        }
        Ok(())
    }
}

fn is_loopback(url: &openidconnect::url::Url) -> bool {
    match url.host() {
        Some(openidconnect::url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(openidconnect::url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(openidconnect::url::Host::Domain(d)) => d == "localhost",
        None => false,
    }
}
