//! `bench-client --hold-sse N`: N SSE streams held open at once, for the agent's memory
//! with that many streams in flight (`bench --rss`).
//!
//! Each stream is its own connection (a `GET` whose response never ends, as an MCP
//! client's standalone stream). The client prints one JSON line once every stream has
//! delivered its first event, then holds them until its stdin closes, bounded by
//! [`HOLD_LIMIT`] so a benchmark that dies cannot leave it running.

use std::{io::Write as _, sync::Arc, time::Duration};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper::{Request, Uri, header};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::{net::TcpStream, sync::Semaphore};

/// Upper bound on holding the streams, whatever stdin does.
const HOLD_LIMIT: Duration = Duration::from_secs(120);
/// Bound on opening one stream (connect, headers, first event).
const OPEN_TIMEOUT: Duration = Duration::from_secs(30);
/// Streams being opened at once: a burst of thousands of connects is not what is measured.
const OPENING: usize = 64;

/// The line printed once the streams are open.
#[derive(Debug, Serialize, Deserialize)]
pub struct HoldReport {
    pub open: usize,
    pub errors: usize,
    pub first_error: Option<String>,
}

/// One open stream: dropping it closes the connection.
struct Held {
    _sender: hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    _body: hyper::body::Incoming,
}

pub fn run(url: &str, streams: usize) -> anyhow::Result<()> {
    let uri: Uri = url.parse().with_context(|| format!("--url {url}"))?;
    let authority = uri
        .authority()
        .with_context(|| format!("--url {url} has no host:port"))?
        .to_string();
    let path = uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the client runtime")?;
    runtime.block_on(async {
        let target = Arc::new((authority, path));
        let opening = Arc::new(Semaphore::new(OPENING));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..streams {
            let target = Arc::clone(&target);
            let opening = Arc::clone(&opening);
            tasks.spawn(async move {
                let _permit = opening.acquire_owned().await.ok();
                tokio::time::timeout(OPEN_TIMEOUT, open(&target.0, &target.1))
                    .await
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("opening timed out")))
            });
        }
        let mut held = Vec::with_capacity(streams);
        let mut report = HoldReport {
            open: 0,
            errors: 0,
            first_error: None,
        };
        while let Some(done) = tasks.join_next().await {
            match done.context("a stream task panicked")? {
                Ok(stream) => held.push(stream),
                Err(err) => {
                    report.errors += 1;
                    report.first_error.get_or_insert(format!("{err:#}"));
                }
            }
        }
        report.open = held.len();
        let mut stdout = std::io::stdout();
        writeln!(stdout, "{}", serde_json::to_string(&report)?)?;
        stdout.flush()?;
        // Until stdin closes (the benchmark has measured), bounded.
        let stdin = tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
        });
        let _ = tokio::time::timeout(HOLD_LIMIT, stdin).await;
        drop(held);
        anyhow::Ok(())
    })
}

/// Opens one stream and waits for its first complete event.
async fn open(authority: &str, path: &str) -> anyhow::Result<Held> {
    let stream = TcpStream::connect(authority)
        .await
        .with_context(|| format!("connecting to {authority}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP/1.1 handshake")?;
    tokio::spawn(connection);
    let request = Request::get(path)
        .header(header::HOST, authority)
        .header(header::ACCEPT, "text/event-stream")
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    if !response.status().is_success() {
        bail!("stream refused: {}", response.status());
    }
    let mut body = response.into_body();
    let mut seen = Vec::new();
    while !seen.windows(2).any(|w| w == b"\n\n") {
        let Some(frame) = body.frame().await else {
            bail!("stream ended before its first event");
        };
        if let Ok(data) = frame?.into_data() {
            seen.extend_from_slice(&data);
        }
    }
    Ok(Held {
        _sender: sender,
        _body: body,
    })
}
