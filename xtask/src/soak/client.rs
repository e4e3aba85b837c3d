//! The soak load, `cargo xtask soak-client` (hidden): N concurrent MCP sessions against
//! real MCP servers (the Python SDK's), each its own kind, for a fixed time:
//! - `json`: Streamable HTTP, JSON responses (initialize, initialized, tools/call…);
//! - `sse`: Streamable HTTP answering each POST as an SSE stream;
//! - `stream`: an `sse` session that also holds the standalone GET stream open all along
//!   (quiet: the server has nothing to push);
//! - `legacy`: the deprecated HTTP+SSE transport (GET /sse, POSTs to the endpoint it
//!   names, answers on the stream).
//!
//! Every JSON-RPC message sent and received is counted, so the soak can check the audit
//! trail holds each exactly once. Prints one JSON line.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, anyhow, bail};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt as _, Full};
use hyper::{
    Request, Response, StatusCode, body::Incoming, client::conn::http1::SendRequest, header,
};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::{net::TcpStream, sync::mpsc};

/// No single exchange may hang a session.
const TIMEOUT: Duration = Duration::from_secs(30);
const PROTOCOL: &str = "2025-06-18";

#[derive(Debug, Clone, clap::Args)]
pub struct SoakClientArgs {
    /// host:port of the Streamable HTTP server answering JSON.
    #[arg(long)]
    pub json: String,
    /// host:port of the Streamable HTTP server answering SSE.
    #[arg(long)]
    pub sse: String,
    /// host:port of the legacy HTTP+SSE server.
    #[arg(long)]
    pub legacy: String,
    #[arg(long, default_value_t = 50)]
    pub sessions: usize,
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
    /// Pause between one session's tool calls.
    #[arg(long, default_value_t = 2_000)]
    pub interval_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SoakReport {
    pub sessions: usize,
    /// Sessions per kind: json, sse, stream, legacy.
    pub kinds: [usize; 4],
    /// JSON-RPC messages sent (requests and notifications) and responses received.
    pub sent: u64,
    pub received: u64,
    pub calls: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    pub errors: u64,
    pub first_errors: Vec<String>,
    /// GET streams (standalone and legacy) that stayed open until the end.
    pub streams_held: u64,
}

#[derive(Default)]
struct Stats {
    sent: AtomicU64,
    received: AtomicU64,
    errors: AtomicU64,
    streams_held: AtomicU64,
    first_errors: Mutex<Vec<String>>,
    latencies: Mutex<Option<Histogram<u64>>>,
}

impl Stats {
    fn error(&self, err: &anyhow::Error) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_errors.lock().unwrap_or_else(|p| p.into_inner());
        if first.len() < 5 {
            first.push(format!("{err:#}"));
        }
    }

    fn latency(&self, took: Duration) {
        let mut guard = self.latencies.lock().unwrap_or_else(|p| p.into_inner());
        let histogram = guard.get_or_insert_with(|| {
            Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
        });
        let _ = histogram.record((took.as_micros() as u64).clamp(1, 600_000_000));
    }
}

pub fn run(args: &SoakClientArgs) -> anyhow::Result<()> {
    if args.sessions == 0 || args.seconds == 0 {
        bail!("--sessions and --seconds must be at least 1");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the soak runtime")?;
    let stats = Arc::new(Stats::default());
    let until = Instant::now() + Duration::from_secs(args.seconds);
    // Sessions start spread over the first tenth of the run (at most 30 s): a herd of
    // simultaneous initializes measures the servers' start-up, not the steady state.
    let ramp = Duration::from_secs(args.seconds / 10).min(Duration::from_secs(30));
    let mut kinds = [0usize; 4];
    runtime.block_on(async {
        let mut tasks = Vec::with_capacity(args.sessions);
        for n in 0..args.sessions {
            let kind = n % 4;
            kinds[kind] += 1;
            let delay = ramp.mul_f64(n as f64 / args.sessions as f64);
            let session = Session {
                stats: Arc::clone(&stats),
                interval: Duration::from_millis(args.interval_ms),
                until,
                tag: n,
            };
            let target = match kind {
                0 => args.json.clone(),
                3 => args.legacy.clone(),
                _ => args.sse.clone(),
            };
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let outcome = match kind {
                    3 => session.legacy(&target).await,
                    _ => session.streamable(&target, kind == 2).await,
                };
                if let Err(err) = outcome {
                    session.stats.error(&err);
                }
            }));
        }
        for task in tasks {
            let _ = task.await;
        }
    });
    let histogram = stats
        .latencies
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    let (calls, p50, p99, max) = histogram.map_or((0, 0, 0, 0), |h| {
        (
            h.len(),
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99),
            h.max(),
        )
    });
    let report = SoakReport {
        sessions: args.sessions,
        kinds,
        sent: stats.sent.load(Ordering::SeqCst),
        received: stats.received.load(Ordering::SeqCst),
        calls,
        p50_us: p50,
        p99_us: p99,
        max_us: max,
        errors: stats.errors.load(Ordering::SeqCst),
        first_errors: stats
            .first_errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone(),
        streams_held: stats.streams_held.load(Ordering::SeqCst),
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

struct Session {
    stats: Arc<Stats>,
    interval: Duration,
    until: Instant,
    tag: usize,
}

impl Session {
    /// Streamable HTTP: initialize, initialized, then a tools/call every `interval`;
    /// with `stream`, the standalone GET stream held open meanwhile.
    async fn streamable(&self, authority: &str, stream: bool) -> anyhow::Result<()> {
        let mut conn = connect(authority).await?;
        let init = self.initialize(0);
        let response = self.post(&mut conn, authority, "/mcp", None, &init).await?;
        let session = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("initialize answered without Mcp-Session-Id"))?;
        self.expect_answer(response, 0).await?;
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let response = self
            .post(&mut conn, authority, "/mcp", Some(&session), &initialized)
            .await?;
        if response.status() != StatusCode::ACCEPTED {
            bail!("initialized notification: HTTP {}", response.status());
        }
        let held = if stream {
            Some(self.open_get_stream(authority, &session).await?)
        } else {
            None
        };
        let mut id = 1u64;
        while Instant::now() + self.interval < self.until {
            tokio::time::sleep(self.interval).await;
            let call = self.call(id);
            let started = Instant::now();
            let response = self
                .post(&mut conn, authority, "/mcp", Some(&session), &call)
                .await?;
            self.expect_answer(response, id).await?;
            self.stats.latency(started.elapsed());
            id += 1;
        }
        if let Some(held) = held {
            if held.is_finished() {
                bail!("session {}: its GET stream ended early", self.tag);
            }
            self.stats.streams_held.fetch_add(1, Ordering::Relaxed);
            held.abort();
        }
        Ok(())
    }

    /// The deprecated HTTP+SSE transport: the stream names the endpoint; every POST is
    /// answered 202 and its response arrives on the stream.
    async fn legacy(&self, authority: &str) -> anyhow::Result<()> {
        let mut stream_conn = connect(authority).await?;
        let request = Request::get("/sse")
            .header(header::HOST, authority)
            .header(header::ACCEPT, "text/event-stream")
            .body(Full::new(Bytes::new()))?;
        let response = timed(stream_conn.send_request(request)).await??;
        if response.status() != StatusCode::OK {
            bail!("GET /sse: HTTP {}", response.status());
        }
        let (events_tx, mut events) = mpsc::channel(16);
        let reader = tokio::spawn(read_events(response.into_body(), events_tx));
        let endpoint = match timed(events.recv()).await? {
            Some(Event {
                name: Some(name),
                data,
            }) if name == "endpoint" => data,
            other => bail!("legacy stream began with {other:?}, not an endpoint"),
        };
        let mut conn = connect(authority).await?;
        let mut id = 0u64;
        let mut next = self.initialize(0);
        loop {
            let started = Instant::now();
            let response = self
                .post(&mut conn, authority, &endpoint, None, &next)
                .await?;
            if response.status() != StatusCode::ACCEPTED {
                bail!("legacy POST: HTTP {}", response.status());
            }
            drain(response).await?;
            let message = loop {
                let event = timed(events.recv())
                    .await?
                    .ok_or_else(|| anyhow!("the legacy stream ended"))?;
                let message: Value = serde_json::from_str(&event.data)
                    .with_context(|| format!("legacy event data: {}", event.data))?;
                if message.get("id").is_some() {
                    break message;
                }
            };
            self.answered(&message, id)?;
            if id == 0 {
                let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
                let response = self
                    .post(&mut conn, authority, &endpoint, None, &initialized)
                    .await?;
                drain(response).await?;
            } else {
                self.stats.latency(started.elapsed());
            }
            if Instant::now() + self.interval >= self.until {
                break;
            }
            tokio::time::sleep(self.interval).await;
            id += 1;
            next = self.call(id);
        }
        if reader.is_finished() {
            bail!("session {}: the legacy stream ended early", self.tag);
        }
        self.stats.streams_held.fetch_add(1, Ordering::Relaxed);
        reader.abort();
        Ok(())
    }

    fn initialize(&self, id: u64) -> Value {
        json!({"jsonrpc": "2.0", "id": id, "method": "initialize", "params": {
            "protocolVersion": PROTOCOL, "capabilities": {},
            "clientInfo": {"name": "gateway-soak", "version": "1"}}})
    }

    fn call(&self, id: u64) -> Value {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
            "name": "echo", "arguments": {"message": format!("soak {} call {id}", self.tag)}}})
    }

    async fn post(
        &self,
        conn: &mut SendRequest<Full<Bytes>>,
        authority: &str,
        path: &str,
        session: Option<&str>,
        message: &Value,
    ) -> anyhow::Result<Response<Incoming>> {
        let mut request = Request::post(path)
            .header(header::HOST, authority)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json, text/event-stream")
            .header("mcp-protocol-version", PROTOCOL);
        if let Some(session) = session {
            request = request.header("mcp-session-id", session);
        }
        let request = request.body(Full::new(Bytes::from(message.to_string())))?;
        // A kept-alive connection the other side closed while idle is replaced, as HTTP
        // clients do; a request it never sent is sent again on the new one.
        if conn.is_closed() || timed(conn.ready()).await?.is_err() {
            *conn = connect(authority).await?;
        }
        let response = match timed(conn.try_send_request(request)).await? {
            Ok(response) => response,
            Err(mut unsent) => match unsent.take_message() {
                Some(request) => {
                    *conn = connect(authority).await?;
                    timed(conn.send_request(request)).await??
                }
                None => return Err(unsent.into_error().into()),
            },
        };
        self.stats.sent.fetch_add(1, Ordering::Relaxed);
        Ok(response)
    }

    /// Reads a POST's answer (JSON, or an SSE stream that ends after it) and checks it
    /// answers `id` without an error.
    async fn expect_answer(&self, response: Response<Incoming>, id: u64) -> anyhow::Result<()> {
        let status = response.status();
        let sse = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("text/event-stream"));
        let body = timed(response.into_body().collect()).await??.to_bytes();
        if status != StatusCode::OK {
            bail!("HTTP {status}: {}", String::from_utf8_lossy(&body));
        }
        let text = String::from_utf8_lossy(&body);
        let message: Value = if sse {
            let data = parse_events(&text)
                .into_iter()
                .map(|e| e.data)
                .find(|d| d.contains("\"id\""))
                .ok_or_else(|| anyhow!("SSE answer without a response: {text}"))?;
            serde_json::from_str(&data)?
        } else {
            serde_json::from_str(&text).with_context(|| format!("JSON answer: {text}"))?
        };
        self.answered(&message, id)
    }

    fn answered(&self, message: &Value, id: u64) -> anyhow::Result<()> {
        if message.get("id") != Some(&json!(id)) || message.get("error").is_some() {
            bail!(
                "session {}: expected the answer to {id}, got {message}",
                self.tag
            );
        }
        if message.pointer("/result/isError") == Some(&Value::Bool(true)) {
            bail!("session {}: tool error: {message}", self.tag);
        }
        self.stats.received.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Opens the session's standalone GET stream on its own connection; the task reads it
    /// until the session ends (or the stream does, which the session reports).
    async fn open_get_stream(
        &self,
        authority: &str,
        session: &str,
    ) -> anyhow::Result<tokio::task::JoinHandle<()>> {
        let mut conn = connect(authority).await?;
        let request = Request::get("/mcp")
            .header(header::HOST, authority)
            .header(header::ACCEPT, "text/event-stream")
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", PROTOCOL)
            .body(Full::new(Bytes::new()))?;
        let response = timed(conn.send_request(request)).await??;
        if response.status() != StatusCode::OK {
            bail!("GET stream: HTTP {}", response.status());
        }
        let (tx, mut rx) = mpsc::channel(16);
        Ok(tokio::spawn(async move {
            let reader = tokio::spawn(read_events(response.into_body(), tx));
            // Server-initiated messages, if any, are read and dropped.
            while rx.recv().await.is_some() {}
            let _ = reader.await;
            drop(conn);
        }))
    }
}

#[derive(Debug)]
struct Event {
    name: Option<String>,
    data: String,
}

/// Events in a complete SSE text (LF or CRLF line endings).
fn parse_events(text: &str) -> Vec<Event> {
    text.replace('\r', "")
        .split("\n\n")
        .filter_map(|block| {
            let mut name = None;
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("event:") {
                    name = Some(value.trim().to_owned());
                } else if let Some(value) = line.strip_prefix("data:") {
                    data.push(value.strip_prefix(' ').unwrap_or(value));
                }
            }
            (!data.is_empty()).then(|| Event {
                name,
                data: data.join("\n"),
            })
        })
        .collect()
}

/// Forwards each complete event of a streamed body until it ends (bounded buffer).
async fn read_events(mut body: Incoming, events: mpsc::Sender<Event>) {
    let mut pending = String::new();
    while let Some(Ok(frame)) = body.frame().await {
        let Ok(data) = frame.into_data() else {
            continue;
        };
        pending.push_str(&String::from_utf8_lossy(&data));
        pending = pending.replace('\r', "");
        while let Some(end) = pending.find("\n\n") {
            let block: String = pending.drain(..end + 2).collect();
            for event in parse_events(&block) {
                if events.send(event).await.is_err() {
                    return;
                }
            }
        }
        if pending.len() > 1 << 20 {
            return;
        }
    }
}

async fn drain(response: Response<Incoming>) -> anyhow::Result<()> {
    timed(response.into_body().collect()).await??;
    Ok(())
}

async fn connect(authority: &str) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = timed(TcpStream::connect(authority)).await??;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

async fn timed<T>(future: impl Future<Output = T>) -> anyhow::Result<T> {
    tokio::time::timeout(TIMEOUT, future)
        .await
        .map_err(|_| anyhow!("no answer within {TIMEOUT:?}"))
}
