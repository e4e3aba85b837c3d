//! Data-path threads: an intercepted connection lives its whole life on the thread that
//! accepted it.
//!
//! A proxied call wakes the agent twice (the request arrives, the answer arrives). On
//! tokio's work-stealing runtime each of those wakes also woke the idle second worker to
//! look for work to steal: 3.9 context switches per call at one call in flight, where
//! nginx's one-loop-per-worker design needs 1.9, and each switch on a virtual CPU is paid
//! in full (`perf`: a quarter of the agent's samples were the switch itself). Here every
//! thread runs a current-thread runtime and accepts on listening sockets of its own
//! (`SO_REUSEPORT`, see [`crate::listeners`]: the kernel picks the thread of each new
//! connection and wakes no other), so a connection, the upstream connection it opens and
//! its body pumps are scheduled on one thread, as nginx's workers do; kept upstream
//! connections are pooled per thread for the same reason (`http::pool`). A thread per CPU
//! keeps every CPU usable under load.
//!
//! The trade: a CPU-bound step delays the other connections of its thread, which the
//! work-stealing runtime would have moved to the other worker. So the long one, filtering
//! a message of 256 KiB or more, runs on the runtime's blocking pool (`http::offload`);
//! what stays on the thread takes well under a millisecond per message. Everything else
//! (audit sink, approvals, metrics, signals, background refreshes) stays on the main
//! runtime.

use std::{net::TcpListener as StdListener, sync::Arc, thread::JoinHandle};

use anyhow::Context as _;
use tokio::{net::TcpListener, sync::watch};
use tracing::warn;

use crate::proxy::Proxy;

/// Where the data-path threads are in the agent's stop sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Serving,
    /// No new connections; those being served go on (held approvals answer "pending").
    Draining,
    /// Every connection's task is dropped and the threads end.
    Exit,
}

pub struct DataPath {
    phase: watch::Sender<Phase>,
    threads: Vec<JoinHandle<()>>,
}

impl DataPath {
    /// Starts a thread per entry of `per_thread`, each accepting on the listening sockets
    /// of its entry.
    pub fn start(proxy: &Arc<Proxy>, per_thread: Vec<Vec<StdListener>>) -> anyhow::Result<Self> {
        let (phase, _) = watch::channel(Phase::Serving);
        let mut threads = Vec::new();
        for (index, listeners) in per_thread.into_iter().enumerate() {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting a data-path runtime")?;
            let proxy = Arc::new(proxy.for_thread());
            let phase = phase.subscribe();
            let thread = std::thread::Builder::new()
                .name(format!("data-path-{index}"))
                .spawn(move || runtime.block_on(serve(proxy, listeners, phase)))
                .context("starting a data-path thread")?;
            threads.push(thread);
        }
        Ok(Self { phase, threads })
    }

    /// Stops accepting new connections; connections being served go on until `finish`.
    pub fn stop_accepting(&self) {
        self.phase.send_replace(Phase::Draining);
    }

    /// Drops every connection still open (their tasks end with the threads' runtimes) and
    /// waits for the threads.
    pub fn finish(self) {
        self.phase.send_replace(Phase::Exit);
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

async fn serve(proxy: Arc<Proxy>, listeners: Vec<StdListener>, mut phase: watch::Receiver<Phase>) {
    proxy.pool.spawn_sweeper();
    let mut accepting = tokio::task::JoinSet::new();
    for listener in listeners {
        // Registers the socket with this thread's reactor. Should that fail, the socket is
        // closed (dropped with the error), so the kernel hashes no connection to it.
        match TcpListener::from_std(listener) {
            Ok(listener) => {
                accepting.spawn(Arc::clone(&proxy).serve(listener));
            }
            Err(err) => {
                warn!(error = %err, "a data-path thread cannot watch its listener; the other threads accept the new connections")
            }
        }
    }
    let _ = phase.wait_for(|phase| *phase >= Phase::Draining).await;
    accepting.abort_all();
    let _ = phase.wait_for(|phase| *phase == Phase::Exit).await;
}
