//! Deadlines against peers that stall (slowloris in either direction). Each bounds one
//! thing the gateway waits for and would otherwise hold a task, a buffer and two sockets
//! for as long as the peer liked:
//! - the client's request head (hyper's header read timeout, which also closes keep-alive
//!   connections idle between requests);
//! - the client's request body, when the gateway reads it whole (a total deadline: a
//!   byte every few seconds must not keep it going);
//! - the upstream's response head (slow tools are legitimate, so this one is generous);
//! - silence inside a response body the gateway reads whole (an idle deadline: a large
//!   body from a slow but moving server is fine).
//!
//! Streams (SSE, chunked JSON) are never cut for being quiet: a subscription with nothing
//! to say is normal, and a client that goes away releases its upstream at once anyway.

use std::time::Duration;

use crate::config::HttpConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub request_head: Duration,
    pub request_body: Duration,
    pub response_head: Duration,
    pub response_body_idle: Duration,
}

impl Timeouts {
    pub fn from_config(http: &HttpConfig) -> Self {
        Self {
            request_head: Duration::from_millis(http.request_head_timeout_ms),
            request_body: Duration::from_millis(http.request_body_timeout_ms),
            response_head: Duration::from_millis(http.response_head_timeout_ms),
            response_body_idle: Duration::from_millis(http.response_body_idle_timeout_ms),
        }
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Self::from_config(&HttpConfig::default())
    }
}

/// How long [`super::body::collect_limited`] may wait.
#[derive(Debug, Clone, Copy)]
pub enum Wait {
    /// The whole body within this time.
    Total(Duration),
    /// No gap between two pieces of the body longer than this.
    Idle(Duration),
}

impl std::fmt::Display for Wait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Wait::Total(d) => write!(f, "not complete within {} ms", d.as_millis()),
            Wait::Idle(d) => write!(f, "silent for {} ms", d.as_millis()),
        }
    }
}
