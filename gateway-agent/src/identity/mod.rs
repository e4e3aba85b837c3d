//! Who the caller says it is, proven: validation of OAuth 2.0 bearer tokens that are JWT
//! access tokens (RFC 9068) from configured OpenID providers.
//!
//! At start each issuer's discovery document and key set (JWKS) are fetched with
//! openidconnect; the keys are fetched again on a timer and when a token names a key not
//! seen yet. A token is checked in this order, cheapest and most dangerous first: shape;
//! algorithm (`none` and HMAC refused before any key is looked at, then the issuer's
//! allow-list); issuer by its (so far unverified) `iss`; key by `kid`; signature
//! (openidconnect's JWK code, never our own crypto); then `iss`, `aud`, `exp`, `nbf`,
//! `iat` and scopes. Verified tokens are cached by their SHA-256 until they expire.
//! Tokens are never logged.

mod cache;
mod config;
mod error;
mod jwt;
mod keys;
mod verify;

/// Also used by other HTTP clients of the agent (approval webhooks).
pub(crate) use keys::error_chain;

use std::{
    sync::{Arc, Weak},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use openidconnect::{
    IssuerUrl,
    core::{CoreJwsSigningAlgorithm, CoreProviderMetadata},
    reqwest,
};

pub use config::IssuerConfig;
pub use error::{IdentityError, TokenError};

use crate::principal::TokenClaims;
use keys::{KeySet, Refreshed};

/// Verified tokens held at most; see [`cache`].
const CACHE_CAPACITY: usize = 10_000;
/// Bound on each discovery or JWKS request.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

struct Issuer {
    config: IssuerConfig,
    algorithms: Vec<CoreJwsSigningAlgorithm>,
    keys: KeySet,
}

/// Validates bearer tokens against the configured issuers. `Send + Sync`; share it in an
/// `Arc`.
pub struct Authenticator {
    issuers: Vec<Issuer>,
    client: reqwest::Client,
    cache: cache::TokenCache,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("issuers", &self.authorization_servers())
            .finish_non_exhaustive()
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Authenticator {
    /// Discovery and JWKS fetch for every issuer; the error names the issuer and what
    /// failed.
    pub async fn discover(issuers: &[IssuerConfig]) -> Result<Self, IdentityError> {
        let client = reqwest::Client::builder()
            // openidconnect's advice: a redirect from the IdP could point discovery at an
            // internal address (SSRF); real providers serve these documents directly.
            .redirect(reqwest::redirect::Policy::none())
            // Key fetches are minutes to hours apart; a pooled connection would by then
            // have been closed by the IdP or its load balancer, and the refresh that
            // matters most (a rotation) would fail on it. A new connection each time.
            .pool_max_idle_per_host(0)
            .timeout(HTTP_TIMEOUT)
            .build()
            .map_err(|e| IdentityError::Config(format!("identity: HTTP client: {e}")))?;
        let mut out = Vec::with_capacity(issuers.len());
        for config in issuers {
            config.validate().map_err(IdentityError::Config)?;
            let algorithms = config
                .algorithms
                .iter()
                .filter_map(|a| jwt::parse_allowed_algorithm(a).ok())
                .collect();
            let fail = |problem: String| IdentityError::Discovery {
                issuer: config.issuer.clone(),
                problem,
            };
            let url = IssuerUrl::new(config.issuer.clone())
                .map_err(|e| fail(format!("not a URL: {e}")))?;
            let metadata = CoreProviderMetadata::discover_async(url, &client)
                .await
                .map_err(|e| {
                    fail(format!(
                        "discovery ({}/.well-known/openid-configuration, then its jwks_uri) \
                         failed: {}",
                        config.issuer.trim_end_matches('/'),
                        keys::error_chain(&e)
                    ))
                })?;
            tracing::info!(
                issuer = %config.issuer,
                jwks_uri = %metadata.jwks_uri().as_str(),
                keys = metadata.jwks().keys().len(),
                "identity issuer discovered"
            );
            let keys = KeySet::new(
                config.issuer.clone(),
                metadata.jwks_uri().clone(),
                metadata.jwks().clone(),
            );
            out.push(Issuer {
                config: config.clone(),
                algorithms,
                keys,
            });
        }
        Ok(Self {
            issuers: out,
            client,
            cache: cache::TokenCache::new(CACHE_CAPACITY),
        })
    }

    /// Validates a bearer token (the text after `Bearer `). `extra_scopes`: scopes the
    /// target server requires on top of the issuer's `required_scopes`.
    pub async fn authenticate(
        &self,
        token: &str,
        extra_scopes: &[String],
    ) -> Result<TokenClaims, TokenError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(TokenError::Missing);
        }
        let now = unix_now();
        let hash = cache::hash(token);
        if let Some(claims) = self.cache.get(&hash, now) {
            self.check_scopes(&claims, extra_scopes)?;
            return Ok(claims);
        }
        let unverified = jwt::parse(token)?;
        let iss = match unverified.claims.get("iss") {
            Some(serde_json::Value::String(iss)) => iss.as_str(),
            _ => return Err(TokenError::MissingClaim("iss")),
        };
        let issuer = self
            .issuers
            .iter()
            .find(|i| i.config.issuer == iss)
            .ok_or_else(|| TokenError::UnknownIssuer(iss.to_owned()))?;
        if !issuer.algorithms.contains(&unverified.alg) {
            return Err(TokenError::UnsupportedAlgorithm(unverified.header.alg));
        }
        let kid = unverified.header.kid.as_deref();
        let key = match issuer.keys.find(kid, &unverified.alg) {
            Err(TokenError::UnknownKey { .. }) => {
                // Perhaps the provider rotated: look once more after a (rate-limited,
                // shared) refresh.
                let seen = issuer.keys.attempts();
                let min = Duration::from_secs(issuer.config.jwks_min_refresh_secs);
                self.refreshed(issuer, issuer.keys.refresh(&self.client, seen, min).await);
                match (
                    issuer.keys.find(kid, &unverified.alg),
                    issuer.keys.failing(),
                ) {
                    // Not known, and the provider cannot say whether it is now: 503.
                    (Err(TokenError::UnknownKey { .. }), Some(problem)) => {
                        return Err(TokenError::KeysUnavailable {
                            issuer: iss.to_owned(),
                            kid: kid.map(str::to_owned),
                            problem,
                        });
                    }
                    (found, _) => found?,
                }
            }
            found => found?,
        };
        keys::verify(
            &key,
            &unverified.alg,
            unverified.signing_input,
            &unverified.signature,
        )?;
        let exp = jwt::check_claims(&unverified.claims, &issuer.config, now)?;
        let claims = TokenClaims::from_claims(unverified.claims, &issuer.config.groups_claim)
            .ok_or(TokenError::MissingClaim("sub"))?;
        let entry = cache::Entry {
            claims: claims.clone(),
            valid_until: exp.saturating_add(issuer.config.clock_skew_secs),
        };
        self.cache.insert(hash, entry, now);
        self.check_scopes(&claims, extra_scopes)?;
        Ok(claims)
    }

    fn check_scopes(&self, claims: &TokenClaims, extra: &[String]) -> Result<(), TokenError> {
        let issuer_scopes = self
            .issuers
            .iter()
            .find(|i| i.config.issuer == claims.issuer)
            .map_or(&[][..], |i| &i.config.required_scopes[..]);
        let required: Vec<String> = jwt::missing_scopes(&[], issuer_scopes.iter().chain(extra));
        let missing = jwt::missing_scopes(&claims.scopes, &required);
        if missing.is_empty() {
            Ok(())
        } else {
            Err(TokenError::InsufficientScope { missing, required })
        }
    }

    /// Logs a refresh's outcome; a changed key set also empties the token cache, so a
    /// token signed by a key the provider withdrew is checked (and refused) again.
    fn refreshed(&self, issuer: &Issuer, outcome: Refreshed) {
        let name = &issuer.config.issuer;
        match outcome {
            Refreshed::Changed => {
                self.cache.clear();
                tracing::info!(issuer = %name, "identity issuer's signing keys changed");
            }
            Refreshed::Unchanged => tracing::debug!(issuer = %name, "signing keys unchanged"),
            Refreshed::Skipped => {}
            Refreshed::Failed(problem) => tracing::warn!(
                issuer = %name,
                %problem,
                "could not refresh the issuer's signing keys; keeping the keys held"
            ),
        }
    }

    /// Spawns the periodic JWKS refresh on the current tokio runtime, one task per issuer.
    /// The tasks end when the `Authenticator` is dropped.
    pub fn spawn_refresh(self: &Arc<Self>) {
        for index in 0..self.issuers.len() {
            let weak: Weak<Self> = Arc::downgrade(self);
            let period = Duration::from_secs(self.issuers[index].config.jwks_refresh_secs);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(period).await;
                    let Some(this) = weak.upgrade() else { break };
                    let issuer = &this.issuers[index];
                    let seen = issuer.keys.attempts();
                    let outcome = issuer
                        .keys
                        .refresh(&this.client, seen, Duration::ZERO)
                        .await;
                    this.refreshed(issuer, outcome);
                }
            });
        }
    }

    /// The issuer URLs, for RFC 9728's `authorization_servers`.
    pub fn authorization_servers(&self) -> Vec<String> {
        self.issuers
            .iter()
            .map(|i| i.config.issuer.clone())
            .collect()
    }

    /// Every issuer's `required_scopes`, for RFC 9728's `scopes_supported`.
    pub fn scopes_supported(&self) -> Vec<String> {
        let all = self.issuers.iter().flat_map(|i| &i.config.required_scopes);
        jwt::missing_scopes(&[], all)
    }
}

#[cfg(test)]
mod tests;
