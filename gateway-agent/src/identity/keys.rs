//! One issuer's signing keys (its JWKS): choosing the key a token names, and fetching the
//! set again on a timer or when a token names a key not seen yet (the provider rotated).

use std::{
    sync::{
        Arc, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use openidconnect::{
    JsonWebKey as _, JsonWebKeyAlgorithm, JsonWebKeySetUrl, JsonWebKeyUse as _,
    JwsSigningAlgorithm as _,
    core::{CoreJsonWebKey, CoreJsonWebKeySet, CoreJwsSigningAlgorithm},
    reqwest,
};

use super::{TokenError, verify::Failure};

pub(crate) struct KeySet {
    issuer: String,
    url: JsonWebKeySetUrl,
    keys: RwLock<Arc<CoreJsonWebKeySet>>,
    /// Fetch attempts so far: a caller that saw attempt N and then waited for the refresh
    /// lock knows, if it now reads more than N, that someone refreshed for it.
    attempts: AtomicU64,
    /// Held for the whole fetch, so concurrent callers wait on one refresh instead of each
    /// starting their own (single flight); holds the time of the last attempt.
    refresh: tokio::sync::Mutex<Option<Instant>>,
    /// Why the last fetch failed; `None` after a good one.
    failing: RwLock<Option<String>>,
}

/// The outcome of a refresh, for the caller's log.
/// The longest a caller with an unknown `kid` waits for the refresh rate limit to pass.
pub(crate) const MAX_RATE_WAIT: Duration = Duration::from_secs(2);

pub(crate) enum Refreshed {
    /// The provider's set differs from the one held (rotation): verified tokens must be
    /// checked again.
    Changed,
    Unchanged,
    /// Too soon after the last attempt, or another caller just refreshed.
    Skipped,
    Failed(String),
}

impl KeySet {
    pub fn new(issuer: String, url: JsonWebKeySetUrl, keys: CoreJsonWebKeySet) -> Self {
        Self {
            issuer,
            url,
            keys: RwLock::new(Arc::new(keys)),
            attempts: AtomicU64::new(0),
            refresh: tokio::sync::Mutex::new(Some(Instant::now())),
            failing: RwLock::new(None),
        }
    }

    pub fn attempts(&self) -> u64 {
        self.attempts.load(Ordering::Acquire)
    }

    /// Why the last fetch of the set failed, while it is failing.
    pub fn failing(&self) -> Option<String> {
        self.failing
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn current(&self) -> Arc<CoreJsonWebKeySet> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The key for a token's `kid` and `alg`.
    pub fn find(
        &self,
        kid: Option<&str>,
        alg: &CoreJwsSigningAlgorithm,
    ) -> Result<CoreJsonWebKey, TokenError> {
        select(&self.current(), &self.issuer, kid, alg)
    }

    /// Fetches the set again unless another caller refreshed after this one read
    /// `seen_attempts`. Fetches are at most one per `min_interval`: a caller arriving
    /// sooner waits out the rest of the interval when that is at most [`MAX_RATE_WAIT`]
    /// (holding the single-flight lock), else is refused. So a token signed with a key
    /// the provider rotated in just after the last fetch is not refused for a moment's
    /// difference, and an attacker sending random `kid`s still causes no more than one
    /// fetch per interval. A failed fetch keeps the keys held: an IdP outage must not lock
    /// out callers with valid tokens.
    pub async fn refresh(
        &self,
        client: &reqwest::Client,
        seen_attempts: u64,
        min_interval: Duration,
    ) -> Refreshed {
        let mut last = self.refresh.lock().await;
        if self.attempts() != seen_attempts {
            return Refreshed::Skipped;
        }
        if let Some(at) = *last
            && let Some(rest) = min_interval.checked_sub(at.elapsed())
        {
            if rest > MAX_RATE_WAIT {
                return Refreshed::Skipped;
            }
            tokio::time::sleep(rest).await;
        }
        *last = Some(Instant::now());
        let fetched = CoreJsonWebKeySet::fetch_async(&self.url, client).await;
        self.attempts.fetch_add(1, Ordering::AcqRel);
        let outcome = match fetched {
            // openidconnect skips keys it cannot parse and leaves key material optional:
            // a set of nothing but garbage would otherwise replace good keys with none.
            Ok(fresh) if !fresh.keys().iter().any(has_material) => Refreshed::Failed(format!(
                "{}: the key set holds no key the agent can use",
                self.url.as_str()
            )),
            Ok(fresh) => {
                let mut held = self.keys.write().unwrap_or_else(|e| e.into_inner());
                if **held == fresh {
                    Refreshed::Unchanged
                } else {
                    *held = Arc::new(fresh);
                    Refreshed::Changed
                }
            }
            Err(e) => Refreshed::Failed(format!("{}: {}", self.url.as_str(), error_chain(&e))),
        };
        *self.failing.write().unwrap_or_else(|e| e.into_inner()) = match &outcome {
            Refreshed::Failed(problem) => Some(problem.clone()),
            _ => None,
        };
        outcome
    }
}

/// Does `key` carry the public material its type needs (RSA: `n`, `e`; EC: `crv`, `x`,
/// `y`; OKP: `crv`, `x`)? A key without it can verify nothing.
fn has_material(key: &CoreJsonWebKey) -> bool {
    let Ok(json) = serde_json::to_value(key) else {
        return false;
    };
    let present = |field: &str| json.get(field).is_some_and(|v| !v.is_null());
    match json.get("kty").and_then(|k| k.as_str()) {
        Some("RSA") => present("n") && present("e"),
        Some("EC") => present("crv") && present("x") && present("y"),
        Some("OKP") => present("crv") && present("x"),
        _ => false,
    }
}

/// Can `key` verify `alg` signatures? Its use (if stated) allows signing, its type fits
/// the algorithm, and its `alg` (if stated) is that algorithm. The curve is checked by
/// openidconnect when verifying.
fn usable(key: &CoreJsonWebKey, alg: &CoreJwsSigningAlgorithm) -> bool {
    key.key_use().is_none_or(|u| u.allows_signature())
        && alg.key_type().as_ref() == Some(key.key_type())
        && match key.signing_alg() {
            JsonWebKeyAlgorithm::Unspecified => true,
            JsonWebKeyAlgorithm::Algorithm(key_alg) => key_alg == alg,
            JsonWebKeyAlgorithm::Unsupported => false,
        }
}

/// By `kid` when the token names one; otherwise the one key usable with `alg` (with
/// several, guessing would mean trying each, so the token is refused).
pub(crate) fn select(
    set: &CoreJsonWebKeySet,
    issuer: &str,
    kid: Option<&str>,
    alg: &CoreJwsSigningAlgorithm,
) -> Result<CoreJsonWebKey, TokenError> {
    let unknown = || TokenError::UnknownKey {
        issuer: issuer.to_owned(),
        kid: kid.map(str::to_owned),
    };
    match kid {
        Some(kid) => {
            let mut named = set
                .keys()
                .iter()
                .filter(|k| k.key_id().is_some_and(|id| id.as_str() == kid))
                .peekable();
            if named.peek().is_none() {
                return Err(unknown());
            }
            named
                .find(|k| usable(k, alg))
                .cloned()
                .ok_or_else(|| TokenError::KeyMismatch {
                    kid: Some(kid.to_owned()),
                    alg: alg_name(alg),
                })
        }
        None => {
            let mut candidates = set.keys().iter().filter(|k| usable(k, alg));
            match (candidates.next(), candidates.next()) {
                (Some(key), None) => Ok(key.clone()),
                _ => Err(unknown()),
            }
        }
    }
}

/// Verifies with ring (see [`super::verify`]).
pub(crate) fn verify(
    key: &CoreJsonWebKey,
    alg: &CoreJwsSigningAlgorithm,
    signing_input: &[u8],
    signature: &[u8],
) -> Result<(), TokenError> {
    match super::verify::verify(key, alg, signing_input, signature) {
        Ok(()) => Ok(()),
        // The key's curve differs from the algorithm's (an ES384 header on a P-256 key).
        Err(Failure::KeyMismatch) => Err(TokenError::KeyMismatch {
            kid: key.key_id().map(|id| id.as_str().to_owned()),
            alg: alg_name(alg),
        }),
        Err(Failure::BadSignature) => Err(TokenError::BadSignature),
    }
}

pub(crate) fn alg_name(alg: &CoreJwsSigningAlgorithm) -> String {
    serde_json::to_value(alg)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{alg:?}"))
}

/// An error with its sources, `a: b: c`: reqwest's top-level message alone ("error sending
/// request") does not tell the operator it was a refused connection or a TLS failure.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
