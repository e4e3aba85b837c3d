//! What token validation costs per request: a token seen before (the steady state: a
//! SHA-256 and a cache lookup) against one verified for the first time (RS256, ES256).
//!
//! Tokens come from the test OpenID provider's keys (tests/oidc, `npm ci` in
//! tests/mcp/node); the `Authenticator` discovers that provider, as the agent does.

#[path = "../../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};
use gateway_agent::identity::{Authenticator, IssuerConfig};
use serde_json::json;
use support::oidc::{OidcProvider, mint_many};

const AUD: &str = "https://mcp.example.test/gateway";
/// Distinct tokens per algorithm; a fresh `Authenticator` (empty cache) every this many.
const BATCH: usize = 300;

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let idp = OidcProvider::start(&dir.path().join("keys.json"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let config = IssuerConfig::new(idp.issuer(), vec![AUD.to_owned()]);
    let discover = || {
        rt.block_on(Authenticator::discover(std::slice::from_ref(&config)))
            .unwrap()
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({
        "iss": idp.issuer(), "sub": "bench", "aud": AUD, "iat": now, "exp": now + 3600,
        "scope": "mcp:tools",
    });
    let tokens = |alg: &str| {
        mint_many(
            idp.key_file(),
            json!({"alg": alg}),
            claims.clone(),
            Some(BATCH),
        )
    };
    let rs256 = tokens("RS256");
    let es256 = tokens("ES256");

    let cached = discover();
    rt.block_on(cached.authenticate(&rs256[0], &[])).unwrap();
    c.bench_function("authenticate/cached", |b| {
        b.iter(|| rt.block_on(cached.authenticate(&rs256[0], &[])).unwrap())
    });

    for (name, tokens) in [("rs256", &rs256), ("es256", &es256)] {
        c.bench_function(&format!("authenticate/first_time_{name}"), |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                let mut done = 0;
                while done < iters {
                    // Untimed: a new Authenticator, so every token below is unseen.
                    let auth = discover();
                    let n = (iters - done).min(BATCH as u64) as usize;
                    spent += rt.block_on(async {
                        let start = Instant::now();
                        for token in &tokens[..n] {
                            auth.authenticate(token, &[]).await.unwrap();
                        }
                        start.elapsed()
                    });
                    done += n as u64;
                }
                spent
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
