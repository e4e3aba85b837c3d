//! Body plumbing: one boxed body type for everything the proxy sends (forwarded streams,
//! buffered and rewritten JSON, re-framed SSE), and the bounded collection of bodies the
//! gateway must read whole.

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, combinators::BoxBody};

pub type ProxyBody = BoxBody<Bytes, BodyError>;

/// Errors inside a body stream (upstream resets, limits, SSE framing).
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error(transparent)]
    Hyper(#[from] hyper::Error),
    #[error("{0}")]
    Cut(String),
}

pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

pub fn empty() -> ProxyBody {
    full(Bytes::new())
}

pub fn forward(body: hyper::body::Incoming) -> ProxyBody {
    body.map_err(BodyError::from).boxed()
}

#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("body larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("reading body: {0}")]
    Read(#[from] hyper::Error),
}

/// Reads a whole body, refusing to hold more than `limit` bytes.
pub async fn collect_limited(
    body: hyper::body::Incoming,
    limit: usize,
) -> Result<Bytes, CollectError> {
    let limited = http_body_util::Limited::new(body, limit);
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) => match err.downcast::<hyper::Error>() {
            Ok(hyper_err) => Err(CollectError::Read(*hyper_err)),
            Err(_) => Err(CollectError::TooLarge { limit }),
        },
    }
}
