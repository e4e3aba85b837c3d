//! The load generator, `cargo xtask bench-client` (hidden): N keep-alive HTTP/1.1
//! connections, each sending one small JSON-RPC POST after another, for a fixed time.
//!
//! It runs as its own process so the benchmark can start the very same binary either
//! outside the intercepted cgroup (direct) or inside it (through the agent): the cgroup is
//! a property of the process, so nothing else about the two runs differs.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt as _, Full};
use hyper::{Request, StatusCode, Uri, client::conn::http1::SendRequest, header};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;

use super::server::{RESPONSE_BODY, SSE_ANSWER, SSE_ANSWER_PATH};

/// A small MCP `tools/call`, so the agent's request side (JSON-RPC parse, policy) runs.
const REQUEST_BODY: &[u8] = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"}}}"#;
/// No single request or connect may hang the run.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Latencies above this (µs) are clamped into the histogram's top bucket.
const MAX_LATENCY_US: u64 = 60_000_000;

#[derive(Debug, Clone, clap::Args)]
pub struct ClientArgs {
    /// `http://host:port/path` of the server.
    #[arg(long)]
    pub url: String,
    /// Keep-alive connections, each with one request in flight.
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
    /// Measured time, after the warm-up.
    #[arg(long, default_value_t = 5_000)]
    pub duration_ms: u64,
    /// Time before measuring starts (connections open, caches and pools warm up).
    #[arg(long, default_value_t = 1_000)]
    pub warmup_ms: u64,
    /// `https` URLs: PEM CA files to trust (repeatable).
    #[arg(long)]
    pub ca: Vec<std::path::PathBuf>,
    /// A new connection for every request, its set-up (TCP, TLS) inside the measured
    /// latency: connections/s rather than requests/s on a warm connection.
    #[arg(long)]
    pub fresh_connections: bool,
    /// Instead of a load: open this many SSE streams (`GET`), wait for each one's first
    /// event, print how many are open, and hold them until stdin closes (`bench --rss`).
    #[arg(long)]
    pub hold_sse: Option<usize>,
}

/// The one JSON line the client prints.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClientReport {
    /// Requests that started after the warm-up and completed within the measured window.
    pub requests: u64,
    pub seconds: f64,
    pub rps: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    /// Failed requests and connects over the whole run, warm-up included.
    pub errors: u64,
    /// TCP connections opened (one per worker unless one had to reconnect).
    pub connections: u64,
    /// Requests answered over the whole run, warm-up included: what the proxy's CPU time
    /// over the whole run is divided by.
    #[serde(default)]
    pub completed: u64,
}

/// Where and what to send, shared by all workers.
struct Target {
    authority: String,
    path: String,
    /// For `https`: the connector and the name the server must prove.
    tls: Option<(
        tokio_rustls::TlsConnector,
        rustls_pki_types::ServerName<'static>,
    )>,
    fresh: bool,
}

/// The measured window: requests count only if they start at or after `from` and finish
/// by `until`.
#[derive(Clone, Copy)]
struct Window {
    from: Instant,
    until: Instant,
}

struct WorkerStats {
    latencies: Histogram<u64>,
    completed: u64,
    errors: u64,
    connections: u64,
    first_error: Option<String>,
}

pub fn run(args: &ClientArgs) -> anyhow::Result<()> {
    if let Some(streams) = args.hold_sse {
        return super::sse_hold::run(&args.url, streams);
    }
    if args.concurrency == 0 || args.duration_ms == 0 {
        bail!("--concurrency and --duration-ms must be at least 1");
    }
    let uri: Uri = args
        .url
        .parse()
        .with_context(|| format!("--url {}", args.url))?;
    let authority = uri
        .authority()
        .with_context(|| format!("--url {} has no host:port", args.url))?;
    let tls = match uri.scheme_str() {
        Some("https") => {
            let config = super::tls::client(&args.ca)?;
            let name = rustls_pki_types::ServerName::try_from(authority.host().to_owned())
                .with_context(|| format!("--url {}: not a TLS server name", args.url))?;
            Some((tokio_rustls::TlsConnector::from(config), name))
        }
        _ => None,
    };
    let target = Arc::new(Target {
        authority: authority.to_string(),
        path: uri
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .to_owned(),
        tls,
        fresh: args.fresh_connections,
    });
    // No more workers than cores: with one connection, a single thread avoids cross-thread
    // wake-ups that would add latency of the client's own making.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.concurrency.min(cores))
        .enable_all()
        .build()
        .context("starting the client runtime")?;
    let start = Instant::now();
    let window = Window {
        from: start + Duration::from_millis(args.warmup_ms),
        until: start + Duration::from_millis(args.warmup_ms + args.duration_ms),
    };
    let stats = runtime.block_on(async {
        let workers: Vec<_> = (0..args.concurrency)
            .map(|_| tokio::spawn(worker(Arc::clone(&target), window)))
            .collect();
        let mut all = Vec::with_capacity(workers.len());
        for worker in workers {
            all.push(worker.await.context("client worker panicked")?);
        }
        anyhow::Ok(all)
    })?;

    let mut latencies = new_histogram();
    let (mut errors, mut connections, mut completed) = (0, 0, 0);
    for stat in &stats {
        completed += stat.completed;
        latencies
            .add(&stat.latencies)
            .context("merging histograms")?;
        errors += stat.errors;
        connections += stat.connections;
    }
    if let Some(err) = stats.iter().find_map(|s| s.first_error.as_deref()) {
        eprintln!("bench-client: {errors} error(s); first: {err}");
    }
    let seconds = args.duration_ms as f64 / 1000.0;
    let report = ClientReport {
        requests: latencies.len(),
        seconds,
        rps: latencies.len() as f64 / seconds,
        p50_us: latencies.value_at_quantile(0.50),
        p99_us: latencies.value_at_quantile(0.99),
        errors,
        connections,
        completed,
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid histogram bounds")
}

/// One connection, one request at a time, until the window closes. A failed connection
/// is counted and replaced, so one hiccup does not silence a worker for the whole run.
async fn worker(target: Arc<Target>, window: Window) -> WorkerStats {
    let mut stats = WorkerStats {
        latencies: new_histogram(),
        completed: 0,
        errors: 0,
        connections: 0,
        first_error: None,
    };
    let body = Bytes::from_static(REQUEST_BODY);
    if target.fresh {
        fresh_connections(&target, window, &body, &mut stats).await;
        return stats;
    }
    'connections: while Instant::now() < window.until {
        let connected = tokio::time::timeout(REQUEST_TIMEOUT, connect(&target))
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("connect timed out")));
        let mut sender = match connected {
            Ok(sender) => sender,
            Err(err) => {
                stats.record_error(format!("{err:#}"));
                // Do not spin on a refusing server.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        stats.connections += 1;
        loop {
            let started = Instant::now();
            if started >= window.until {
                break 'connections;
            }
            match tokio::time::timeout(REQUEST_TIMEOUT, exchange(&mut sender, &target, &body)).await
            {
                Ok(Ok(())) => {
                    stats.completed += 1;
                    let done = Instant::now();
                    if started >= window.from && done <= window.until {
                        let micros = (done - started).as_micros().max(1);
                        stats
                            .latencies
                            .saturating_record(u64::try_from(micros).unwrap_or(u64::MAX));
                    }
                }
                Ok(Err(err)) if err.reconnect => {
                    stats.record_error(format!("{:#}", err.error));
                    continue 'connections;
                }
                Ok(Err(err)) => stats.record_error(format!("{:#}", err.error)),
                Err(_) => {
                    stats.record_error("request timed out".to_owned());
                    continue 'connections;
                }
            }
        }
    }
    stats
}

/// One request per connection; the latency includes the connect (and TLS handshake).
async fn fresh_connections(target: &Target, window: Window, body: &Bytes, stats: &mut WorkerStats) {
    loop {
        let started = Instant::now();
        if started >= window.until {
            return;
        }
        let attempt = async {
            let mut sender = connect(target).await?;
            exchange(&mut sender, target, body)
                .await
                .map_err(|e| e.error)
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, attempt).await {
            Ok(Ok(())) => {
                stats.connections += 1;
                stats.completed += 1;
                let done = Instant::now();
                if started >= window.from && done <= window.until {
                    let micros = (done - started).as_micros().max(1);
                    stats
                        .latencies
                        .saturating_record(u64::try_from(micros).unwrap_or(u64::MAX));
                }
            }
            Ok(Err(err)) => {
                stats.record_error(format!("{err:#}"));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(_) => stats.record_error("request timed out".to_owned()),
        }
    }
}

impl WorkerStats {
    fn record_error(&mut self, error: String) {
        self.errors += 1;
        self.first_error.get_or_insert(error);
    }
}

async fn connect(target: &Target) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(&target.authority)
        .await
        .with_context(|| format!("connecting to {}", target.authority))?;
    stream.set_nodelay(true)?;
    if let Some((connector, name)) = &target.tls {
        let stream = connector
            .connect(name.clone(), stream)
            .await
            .context("TLS handshake")?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP/1.1 handshake")?;
        tokio::spawn(connection);
        return Ok(sender);
    }
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP/1.1 handshake")?;
    tokio::spawn(connection);
    Ok(sender)
}

/// A failed exchange; `reconnect` when the connection itself is no longer usable.
struct ExchangeError {
    error: anyhow::Error,
    reconnect: bool,
}

async fn exchange(
    sender: &mut SendRequest<Full<Bytes>>,
    target: &Target,
    body: &Bytes,
) -> Result<(), ExchangeError> {
    let broken = |error: hyper::Error| ExchangeError {
        error: error.into(),
        reconnect: true,
    };
    sender.ready().await.map_err(broken)?;
    let request = Request::post(target.path.as_str())
        .header(header::HOST, target.authority.as_str())
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/json, text/event-stream")
        .body(Full::new(body.clone()))
        .map_err(|err| ExchangeError {
            error: err.into(),
            reconnect: false,
        })?;
    let response = sender.send_request(request).await.map_err(broken)?;
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(broken)?
        .to_bytes();
    let expected = if target.path == SSE_ANSWER_PATH {
        SSE_ANSWER
    } else {
        RESPONSE_BODY
    };
    if status != StatusCode::OK || bytes.as_ref() != expected {
        return Err(ExchangeError {
            error: anyhow::anyhow!(
                "unexpected response {status}: {}",
                String::from_utf8_lossy(&bytes)
            ),
            reconnect: false,
        });
    }
    Ok(())
}
