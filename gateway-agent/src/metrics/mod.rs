//! Prometheus metrics: one registry for the process and typed handles, so that every call
//! site in the data path is a single line (`crate::metrics::get().request(..)`).
//!
//! Why a process-wide registry instead of a handle threaded through the pipeline: the
//! counters are recorded from many modules that others change concurrently; a global
//! keeps each of those diffs to one line, and recording costs an atomic add whether or not
//! `[metrics] listen` serves them. Label values are bounded: methods outside the MCP
//! method set count as `other`, servers are configured names (or `unconfigured`), mask
//! rules and refusal reasons are fixed sets, so a client cannot grow the registry.

mod labels;
pub mod serve;

use std::{
    future::Future,
    net::SocketAddr,
    sync::{
        LazyLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};
use serde::Deserialize;

pub use labels::{method_label, refusal_reason};

/// `[metrics]`: off unless `listen` is set.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Where `GET /metrics` is served (Prometheus text format), e.g. `127.0.0.1:9464`.
    /// Unauthenticated, like every node exporter: keep it on loopback or a node network
    /// only Prometheus reaches.
    pub listen: Option<SocketAddr>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnectionLabels {
    server: String,
    /// `plaintext` (HTTP inspected), `terminated` (TLS inspected), `passthrough` (TLS
    /// relayed unseen) or `opaque` (neither HTTP nor TLS, relayed unseen).
    mode: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    /// Static (a known method or `other`): a label set built per request allocates nothing.
    method: &'static str,
    /// `allow`, `deny` or `approve` (the policy's decision).
    decision: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuleLabels {
    rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

/// The typed handles. Cloning a prometheus-client metric shares its value, so the
/// registry and these handles see the same numbers.
pub struct Metrics {
    registry: Registry,
    connections: Family<ConnectionLabels, Counter>,
    requests: Family<RequestLabels, Counter>,
    masked: Family<RuleLabels, Counter>,
    identity_refusals: Family<ReasonLabels, Counter>,
    wal_lag: Gauge,
    fsync: Histogram,
    upstream: Histogram,
    approvals_pending: Gauge,
    ship_backlog: Gauge,
    ship_uploads: Counter,
    ship_failures: Counter,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn get() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("gateway");
        let connections = Family::<ConnectionLabels, Counter>::default();
        registry.register(
            "connections_intercepted",
            "Connections redirected into the agent, by server and how they were handled",
            connections.clone(),
        );
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "MCP requests by method and policy decision",
            requests.clone(),
        );
        let masked = Family::<RuleLabels, Counter>::default();
        registry.register(
            "masked_secrets",
            "Secrets masked in server responses, by masking rule",
            masked.clone(),
        );
        let identity_refusals = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "identity_refusals",
            "Requests refused by the identity stage, by reason",
            identity_refusals.clone(),
        );
        let wal_lag = Gauge::default();
        registry.register(
            "audit_wal_lag_rows",
            "Audit rows durable in the write-ahead log but not yet in a closed Parquet file",
            wal_lag.clone(),
        );
        // 50 µs .. ~3.3 s: a healthy fsync is sub-millisecond on SSDs, seconds on a sick disk.
        let fsync = Histogram::new(exponential_buckets(0.000_05, 2.0, 17));
        registry.register(
            "audit_fsync_seconds",
            "Time to write and fsync one group of audit rows to the write-ahead log",
            fsync.clone(),
        );
        // 1 ms .. ~65 s: tool calls range from pings to long-running jobs.
        let upstream = Histogram::new(exponential_buckets(0.001, 2.0, 17));
        registry.register(
            "upstream_latency_seconds",
            "Time from forwarding a request to the MCP server until its response headers",
            upstream.clone(),
        );
        let approvals_pending = Gauge::default();
        registry.register(
            "approvals_pending",
            "Approvals waiting for a person's decision",
            approvals_pending.clone(),
        );
        let ship_backlog = Gauge::default();
        registry.register(
            "audit_ship_backlog_files",
            "Closed audit files not yet confirmed in the bucket ([audit.ship])",
            ship_backlog.clone(),
        );
        let ship_uploads = Counter::default();
        registry.register(
            "audit_ship_uploads",
            "Audit files confirmed shipped to the bucket",
            ship_uploads.clone(),
        );
        let ship_failures = Counter::default();
        registry.register(
            "audit_ship_failures",
            "Failed shipping attempts (each is retried with backoff)",
            ship_failures.clone(),
        );
        Self {
            registry,
            connections,
            requests,
            masked,
            identity_refusals,
            wal_lag,
            fsync,
            upstream,
            approvals_pending,
            ship_backlog,
            ship_uploads,
            ship_failures,
        }
    }

    /// One intercepted connection to `server` (its configured name), handled as `mode`.
    pub fn connection(&self, server: Option<&str>, mode: &str) {
        self.connections
            .get_or_create(&ConnectionLabels {
                server: server.unwrap_or("unconfigured").to_owned(),
                mode: mode.to_owned(),
            })
            .inc();
    }

    /// A connection whose first bytes were sniffed: HTTP is `plaintext`, anything else
    /// but TLS `opaque`. TLS is counted where it is terminated or passed through, once
    /// the agent knows which.
    pub fn sniffed(&self, server: Option<&str>, tls: bool, http: bool) {
        match (tls, http) {
            (true, _) => {}
            (false, true) => self.connection(server, "plaintext"),
            (false, false) => self.connection(server, "opaque"),
        }
    }

    /// One MCP request and the policy's decision on it.
    pub fn request(&self, method: &str, decision: &'static str) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method_label(method),
                decision,
            })
            .inc();
    }

    /// What masking replaced in one server→client body.
    pub fn masked(&self, report: &crate::mask::MaskReport) {
        for (rule, count) in &report.rules {
            self.masked
                .get_or_create(&RuleLabels {
                    rule: (*rule).to_owned(),
                })
                .inc_by(*count as u64);
        }
    }

    /// A request refused by the identity stage; `None`: the identity provider was not
    /// reachable yet (503).
    pub fn identity_refused(&self, err: Option<&crate::identity::TokenError>) {
        self.identity_refusals
            .get_or_create(&ReasonLabels {
                reason: refusal_reason(err).to_owned(),
            })
            .inc();
    }

    /// The audit WAL's progress: `durable` is the last row fsynced to the WAL, `closed`
    /// the last row in a closed Parquet file.
    pub fn audit_progress(&self, durable: &AtomicU64, closed: &AtomicU64) {
        let lag = durable
            .load(Ordering::Acquire)
            .saturating_sub(closed.load(Ordering::Acquire));
        self.wal_lag.set(i64::try_from(lag).unwrap_or(i64::MAX));
    }

    /// Runs one WAL write+fsync, recording how long it took.
    pub fn timed_fsync<T>(&self, write: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let result = write();
        self.fsync.observe(started.elapsed().as_secs_f64());
        result
    }

    /// Awaits an upstream request until its response headers, recording how long it took.
    pub async fn timed_upstream<T>(&self, send: impl Future<Output = T>) -> T {
        let started = Instant::now();
        let result = send.await;
        self.upstream.observe(started.elapsed().as_secs_f64());
        result
    }

    pub fn set_approvals_pending(&self, pending: usize) {
        self.approvals_pending
            .set(i64::try_from(pending).unwrap_or(i64::MAX));
    }

    /// Audit shipping: files waiting, one more shipped, one failed attempt.
    pub fn ship_backlog(&self, files: usize) {
        self.ship_backlog
            .set(i64::try_from(files).unwrap_or(i64::MAX));
    }

    pub fn ship_uploaded(&self) {
        self.ship_uploads.inc();
    }

    pub fn ship_failed(&self) {
        self.ship_failures.inc();
    }

    /// The registry in the Prometheus/OpenMetrics text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// How long a scrape may take to be answered before the connection is dropped.
pub const SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests;
