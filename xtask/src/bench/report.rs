//! The benchmark's results: a table for people, JSON (target/bench/intercept.json) for
//! comparing runs.

use std::path::Path;

use anyhow::Context as _;
use serde::Serialize;

use super::client::ClientReport;

/// One concurrency level, measured both ways against the same backend in the same run.
#[derive(Debug, Serialize)]
pub struct Scenario {
    /// What the proxied run went through: `agent`, or a peer (`nginx`, `mitmproxy`).
    pub via: &'static str,
    pub concurrency: usize,
    /// The agent's audit setting: `off`, `sync` or `interval` (`-` for peers).
    pub audit: &'static str,
    /// `http` (kept-alive), `conn-new` (a new connection per request: connections/s),
    /// `tls` (kept-alive TLS connections) or `tls-new` (a new TLS connection per request).
    pub transport: &'static str,
    pub direct: ClientReport,
    pub proxied: ClientReport,
    /// "intercepted connection" lines the agent logged for the proxied client's PID: the
    /// proof that the proxied numbers are the agent's (0 for peers).
    pub intercepted_connections: usize,
    /// proxied rps / direct rps.
    pub rps_ratio: f64,
    /// Latency the agent adds, proxied minus direct.
    pub p50_added_us: i64,
    pub p99_added_us: i64,
    /// The proxy's (agent's or peer's) CPU time and scheduler runs per call answered.
    pub proxy_per_call: Option<super::cpu::PerCall>,
}

impl Scenario {
    pub fn new(
        via: &'static str,
        concurrency: usize,
        audit: &'static str,
        transport: &'static str,
        direct: ClientReport,
        proxied: ClientReport,
        intercepted_connections: usize,
    ) -> Self {
        let added = |proxied: u64, direct: u64| proxied as i64 - direct as i64;
        Self {
            via,
            concurrency,
            audit,
            transport,
            rps_ratio: if direct.rps > 0.0 {
                proxied.rps / direct.rps
            } else {
                0.0
            },
            p50_added_us: added(proxied.p50_us, direct.p50_us),
            p99_added_us: added(proxied.p99_us, direct.p99_us),
            direct,
            proxied,
            intercepted_connections,
            proxy_per_call: None,
        }
    }

    /// With the proxy's CPU time per call for its run.
    pub fn with_proxy_cpu(mut self, per_call: Option<super::cpu::PerCall>) -> Self {
        self.proxy_per_call = per_call;
        self
    }
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub command: String,
    pub kernel: String,
    pub cpus: usize,
    pub duration_ms: u64,
    pub warmup_ms: u64,
    pub scenarios: Vec<Scenario>,
    /// `--rss`: the agent's resident memory, per audit setting.
    pub memory: Vec<super::rss::Memory>,
}

impl Report {
    pub fn print(&self) {
        println!();
        println!("command: {}", self.command);
        println!(
            "kernel {}, {} CPUs; {} ms measured after {} ms warm-up per run",
            self.kernel, self.cpus, self.duration_ms, self.warmup_ms
        );
        println!();
        println!(
            "{:<38} | {:>10} {:>8} {:>8} | {:>10} {:>8} {:>8} | {:>9} {:>9} {:>9} | {:>10} {:>9}",
            "scenario",
            "direct rps",
            "p50 µs",
            "p99 µs",
            "proxy rps",
            "p50 µs",
            "p99 µs",
            "rps ratio",
            "+p50 µs",
            "+p99 µs",
            "CPU µs/call",
            "runs/call"
        );
        println!("{}", "-".repeat(159));
        for s in &self.scenarios {
            println!(
                "{:<38} | {:>10.0} {:>8} {:>8} | {:>10.0} {:>8} {:>8} | {:>9.3} {:>+9} {:>+9} | {:>10} {:>9}",
                format!(
                    "{} c={} audit={} {}",
                    s.via, s.concurrency, s.audit, s.transport
                ),
                s.direct.rps,
                s.direct.p50_us,
                s.direct.p99_us,
                s.proxied.rps,
                s.proxied.p50_us,
                s.proxied.p99_us,
                s.rps_ratio,
                s.p50_added_us,
                s.p99_added_us,
                s.proxy_per_call
                    .map_or("-".into(), |c| format!("{:.1}", c.cpu_us)),
                s.proxy_per_call
                    .map_or("-".into(), |c| format!("{:.2}", c.runs)),
            );
        }
        for m in &self.memory {
            println!(
                "{} RSS (audit={}): idle {:.1} MiB; {} SSE streams open: {:.1} MiB \
                 ({} of {} opened, {:.1} KiB per stream)",
                m.via,
                m.audit,
                m.idle_kib as f64 / 1024.0,
                m.streams_open,
                m.with_streams_kib as f64 / 1024.0,
                m.streams_open,
                m.streams_asked,
                m.with_streams_kib.saturating_sub(m.idle_kib) as f64 / m.streams_open.max(1) as f64
            );
        }
    }

    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let json = serde_json::to_string_pretty(self)?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))
    }
}
