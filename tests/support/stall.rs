//! Upstreams that misbehave on purpose (stall mid-head, mid-body, never answer, or stay
//! quiet on a stream), counting the connections they still hold, for the fault tests.

use std::{
    io::Write as _,
    net::{TcpListener, TcpStream},
    sync::{
        Arc, Condvar, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use super::WAIT;

/// How an upstream misbehaves.
#[derive(Clone, Copy)]
pub enum Stall {
    /// Half a response head, then nothing.
    Head,
    /// A whole head declaring 100 bytes, 10 of them, then nothing.
    Body,
    /// An SSE stream: a comment, 3 s of silence, one event, the end.
    QuietStream,
    /// Reads the request and never answers.
    Silent,
}

/// Connections a [`CountingServer`] holds open, with a condition variable for waiters.
pub type OpenCount = (Mutex<usize>, Condvar);

/// A loopback upstream that serves each connection on its own thread with `serve`, which
/// counts the connections it still holds in [`OpenCount`] and returns once the test ends
/// (the stop flag) or the agent closes the connection. Stopped and joined on drop.
pub struct CountingServer {
    pub port: u16,
    open: Arc<OpenCount>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl CountingServer {
    pub fn start<F>(serve: F) -> Self
    where
        F: Fn(TcpStream, &OpenCount, &AtomicBool) + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let open = Arc::new((Mutex::new(0usize), Condvar::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (counter, stopping) = (Arc::clone(&open), Arc::clone(&stop));
        let serve = Arc::new(serve);
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (counter, stopping) = (Arc::clone(&counter), Arc::clone(&stopping));
                let serve = Arc::clone(&serve);
                std::thread::spawn(move || serve(conn, &counter, &stopping));
            }
        });
        Self {
            port,
            open,
            stop,
            thread: Some(thread),
        }
    }

    /// Waits (bounded) until `want` connections are open; returns how many are.
    pub fn wait_open(&self, want: usize) -> usize {
        let (count, cond) = &*self.open;
        let deadline = Instant::now() + WAIT;
        let mut guard = count.lock().unwrap();
        while *guard != want && Instant::now() < deadline {
            guard = cond
                .wait_timeout(guard, deadline - Instant::now())
                .unwrap()
                .0;
        }
        *guard
    }
}

impl Drop for CountingServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ =
            TcpStream::connect_timeout(&([127, 0, 0, 1], self.port).into(), Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// An upstream that misbehaves as told and counts connections still open (closed when a
/// read sees EOF or an error).
pub struct StallingServer(CountingServer);

impl StallingServer {
    pub fn start(stall: Stall) -> Self {
        Self(CountingServer::start(move |conn, open, stop| {
            misbehave(conn, stall, open, stop)
        }))
    }
}

impl std::ops::Deref for StallingServer {
    type Target = CountingServer;

    fn deref(&self) -> &CountingServer {
        &self.0
    }
}

fn misbehave(mut conn: TcpStream, stall: Stall, open: &OpenCount, stop: &AtomicBool) {
    if super::read_request_head(&mut conn).is_none() {
        return;
    }
    let change = |delta: isize| {
        let (count, cond) = open;
        let mut count = count.lock().unwrap();
        *count = count.saturating_add_signed(delta);
        cond.notify_all();
    };
    change(1);
    let _ = match stall {
        Stall::Head => conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: applic"),
        Stall::Body => conn.write_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"jsonrpc\"",
        ),
        Stall::QuietStream => quiet_stream(&mut conn),
        Stall::Silent => Ok(()),
    };
    // Held until the agent closes it (or the test ends).
    hold_until_closed(&mut conn, stop);
    change(-1);
}

/// Reads and discards what `conn` sends until the peer closes it or `stop` is set (short
/// read timeouts only so the thread notices the test ending).
pub fn hold_until_closed(conn: &mut TcpStream, stop: &AtomicBool) {
    let _ = conn.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf = [0u8; 1024];
    while !stop.load(Ordering::SeqCst) {
        match std::io::Read::read(conn, &mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
}

/// Opens an SSE stream, stays silent for twice the longest deadline, then sends one event
/// and ends the stream.
fn quiet_stream(conn: &mut TcpStream) -> std::io::Result<()> {
    let open = ": open\n\n";
    write!(
        conn,
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{open}\r\n",
        open.len()
    )?;
    conn.flush()?;
    // The fixture's silence, not a wait for the test: what the deadlines must tolerate.
    std::thread::sleep(Duration::from_millis(3000));
    let event = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"data\":\"after the quiet\"}}\n\n";
    write!(conn, "{:x}\r\n{event}\r\n0\r\n\r\n", event.len())?;
    conn.flush()
}
