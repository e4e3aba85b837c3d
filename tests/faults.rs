//! Faults end to end: what the agent does when a peer misbehaves or goes away. Needs root.
//!
//! A client that closes a streamed response must release the upstream connection at once,
//! even when the upstream has nothing to say (a subscription or standalone GET stream):
//! before, the pump only noticed the client had gone at its next write, so quiet streams
//! held their upstream connections for as long as the server stayed silent.

mod support;

use std::{
    io::{BufRead as _, BufReader, Write as _},
    net::{TcpListener, TcpStream},
    sync::atomic::AtomicBool,
    time::Instant,
};

use support::{
    Scenario, require_root,
    stall::{CountingServer, OpenCount},
};

/// An upstream that answers every request with the head and first piece of a chunked
/// streaming body, then says nothing more, and counts the connections still open (a
/// connection is closed when a read sees EOF or an error).
fn quiet_server(content_type: &'static str, first: &'static str) -> CountingServer {
    CountingServer::start(move |conn, open, stop| hold(conn, content_type, first, open, stop))
}

fn hold(mut conn: TcpStream, content_type: &str, first: &str, open: &OpenCount, stop: &AtomicBool) {
    if support::read_request_head(&mut conn).is_none() {
        return;
    }
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{first}\r\n",
        first.len()
    );
    if conn.write_all(head.as_bytes()).is_err() {
        return;
    }
    let change = |delta: isize| {
        let (count, cond) = open;
        let mut count = count.lock().unwrap();
        *count = count.saturating_add_signed(delta);
        cond.notify_all();
    };
    change(1);
    support::stall::hold_until_closed(&mut conn, stop);
    change(-1);
}

/// `clients` streams opened through the agent against a quiet server, then their client
/// process killed: every upstream connection must be closed, without the server writing.
fn quiet_streams_released(content_type: &'static str, first: &'static str, marker: &str) {
    const CLIENTS: usize = 100;
    let server = quiet_server(content_type, first);
    let scenario = Scenario::new();
    let _agent = scenario.start_agent(&scenario.config(&[server.port]));

    let script = support::workspace().join("tests/faults/quiet_clients.py");
    let mut clients = scenario.spawn_in_cgroup(&[
        "python3",
        &script.to_string_lossy(),
        &server.port.to_string(),
        &CLIENTS.to_string(),
        content_type,
        marker,
    ]);
    let mut line = String::new();
    BufReader::new(clients.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(
        line.trim(),
        "open",
        "the clients never saw their streams open"
    );
    assert_eq!(server.wait_open(CLIENTS), CLIENTS, "upstream connections");

    let closed_at = Instant::now();
    // SAFETY: kill(2) on the PID of our own child, not yet reaped.
    unsafe { libc::kill(clients.id() as i32, libc::SIGKILL) };
    let _ = clients.wait();
    let still_open = server.wait_open(0);
    assert_eq!(
        still_open, 0,
        "{still_open} of {CLIENTS} upstream connections still open after the clients closed \
         their {content_type} streams"
    );
    eprintln!(
        "{content_type}: {CLIENTS} upstream connections released {:?} after the clients closed",
        closed_at.elapsed()
    );
}

#[test]
fn closed_sse_streams_release_their_quiet_upstream_connections() {
    if !require_root("closed_sse_streams_release_their_quiet_upstream_connections") {
        return;
    }
    quiet_streams_released("text/event-stream", ": open\n\n", ": open");
}

#[test]
fn closed_json_streams_release_their_quiet_upstream_connections() {
    if !require_root("closed_json_streams_release_their_quiet_upstream_connections") {
        return;
    }
    quiet_streams_released(
        "application/json",
        "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{}}\n",
        "notifications/message",
    );
}

/// An upstream that, for each of `connections` connections, sends one whole SSE event,
/// then half of the next (carrying a secret) and ends the connection: the first with a
/// FIN, the others with a reset.
fn resetting_sse_server(connections: usize) -> (u16, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        for n in 0..connections {
            let Ok((conn, _)) = listener.accept() else {
                return;
            };
            reset_mid_event(conn, n > 0);
        }
    });
    (port, handle)
}

fn reset_mid_event(mut conn: TcpStream, reset: bool) {
    if support::read_request_head(&mut conn).is_none() {
        return;
    }
    let whole = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"data\":\"first\"}}\n\n";
    let half = format!(
        "event: message\ndata: {{\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{{\"data\":\"token {SECRET}"
    );
    let _ = write!(
        conn,
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{whole}\r\n{:x}\r\n{half}\r\n",
        whole.len(),
        half.len()
    );
    let _ = conn.flush();
    // RST instead of FIN: linger 0, then close.
    if !reset {
        return;
    }
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt(2) on a socket we own, with a correctly sized linger struct.
    unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&conn),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    drop(conn);
}

const SECRET: &str = "ghp_Q1w2E3r4T5y6U7i8O9p0A1s2D3f4G5h6J7k8";

/// Upstream ends in the middle of an SSE event, with a FIN then with a reset: the client
/// gets a broken transfer (not a clean end), the whole event before the cut (after a FIN;
/// after a reset the kernel may drop what was not read yet), never the cut event's
/// secret unmasked, and the agent keeps serving.
#[test]
fn upstream_reset_mid_sse_event_cuts_the_stream_and_leaks_nothing() {
    if !require_root("upstream_reset_mid_sse_event_cuts_the_stream_and_leaks_nothing") {
        return;
    }
    let (port, server) = resetting_sse_server(2);
    let scenario = Scenario::new();
    let _agent = scenario.start_agent(&scenario.config(&[port]));
    let url = format!("http://127.0.0.1:{port}/mcp");
    // Twice: the agent keeps serving after an upstream reset.
    for attempt in 0..2 {
        let out = scenario.curl_output(&[
            "-N",
            "-H",
            "accept: text/event-stream",
            "-H",
            "mcp-session-id: s-reset",
            &url,
        ]);
        let body = String::from_utf8_lossy(&out.stdout);
        assert!(
            attempt > 0 || body.contains("\"first\""),
            "the whole event before the cut: {body} {out:?}"
        );
        assert!(
            !body.contains(SECRET),
            "secret from the cut event released: {body}"
        );
        assert!(
            !out.status.success(),
            "attempt {attempt}: a reset upstream must not look like a clean end"
        );
    }
    server.join().unwrap();
}
