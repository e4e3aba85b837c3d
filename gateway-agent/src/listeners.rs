//! The intercept listeners: one listening socket per data-path thread, all bound to the
//! same address with `SO_REUSEPORT`, and a guard that keeps that address this agent's.
//!
//! With one listening socket shared by the data-path threads, every idle thread woke for
//! each new connection: each thread's epoll watched the socket, epoll wakes every watcher,
//! and tokio cannot ask for `EPOLLEXCLUSIVE` (through a nested epoll it has no effect). One
//! thread accepted; the others ran for nothing, on a host whose CPUs the client and the
//! MCP server share. With a socket per thread the kernel picks one socket for each new
//! connection (by a hash of its addresses and ports) and wakes only its thread: at one
//! connection at a time, 2.7 scheduler runs per new connection against 4.0, and 0.82× the
//! CPU per connection (`cargo xtask bench`, README "Benchmark").
//!
//! `SO_REUSEPORT` alone would also let a second agent, started by mistake, bind the same
//! address and silently take part of the connections. The guard keeps the old behaviour: a
//! socket bound to the address first, *without* `SO_REUSEPORT`, that never listens. Linux
//! lets the per-thread sockets bind beside it (all of them set `SO_REUSEADDR` and it does
//! not listen), but a second agent's guard conflicts with the listening sockets, which it
//! cannot share without `SO_REUSEPORT`: that agent stops with "address in use" before it
//! attaches anything, as it did when there was one socket.
//!
//! The trade: a new connection waits for the thread its hash picked, even if another
//! thread is idle (before, whichever thread was free accepted it). Steps long enough to
//! matter, filtering a large message, run off the thread (`http::offload`), so that wait is
//! a fraction of a millisecond.

use std::net::{SocketAddr, TcpListener as StdListener};

use tokio::net::TcpSocket;

/// The listening sockets for one address, one per data-path thread, and the guard that
/// keeps other processes from joining them. Dropping it closes them all.
pub struct ThreadListeners {
    /// Bound, never listening: see the module doc. Held for as long as the listeners.
    guard: TcpSocket,
    per_thread: Vec<StdListener>,
}

impl ThreadListeners {
    /// Binds the guard, then `threads` (at least one) listening sockets with `backlog`
    /// queued connections each. Must run inside a tokio runtime (the sockets are handed
    /// over as std listeners for each thread's own runtime to register).
    pub fn bind(addr: SocketAddr, backlog: u32, threads: usize) -> std::io::Result<Self> {
        let guard = new_socket(addr)?;
        // As tokio's bind does: a restarted agent rebinds while old connections linger.
        guard.set_reuseaddr(true)?;
        guard.bind(addr)?;
        // The port the guard got, should `addr` ask for any.
        let addr = guard.local_addr()?;
        let per_thread = (0..threads.max(1))
            .map(|_| {
                let socket = new_socket(addr)?;
                socket.set_reuseaddr(true)?;
                socket.set_reuseport(true)?;
                socket.bind(addr)?;
                socket.listen(backlog)?.into_std()
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(Self { guard, per_thread })
    }

    /// The address every socket is bound to.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.guard.local_addr()
    }

    /// Hands out the listening sockets, one per thread; the guard stays with `self`.
    pub fn take_per_thread(&mut self) -> Vec<StdListener> {
        std::mem::take(&mut self.per_thread)
    }
}

fn new_socket(addr: SocketAddr) -> std::io::Result<TcpSocket> {
    if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read as _, Write as _};

    /// A second set on the same address fails as a second plain bind would; a plain
    /// listener cannot take the address either.
    #[tokio::test]
    async fn a_second_agent_cannot_bind_the_address() {
        let first = ThreadListeners::bind("127.0.0.1:0".parse().unwrap(), 16, 2).unwrap();
        let addr = first.local_addr().unwrap();
        let second = ThreadListeners::bind(addr, 16, 2);
        let err = second.err().expect("a second set bound the same address");
        assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse, "{err}");
        let plain = StdListener::bind(addr);
        assert!(plain.is_err(), "a plain listener bound beside the set");
    }

    /// Every per-thread socket accepts connections: the kernel spreads new connections
    /// over all of them, so a socket nobody accepts on would leave clients hanging.
    #[tokio::test]
    async fn the_kernel_spreads_connections_over_every_socket() {
        let mut set = ThreadListeners::bind("127.0.0.1:0".parse().unwrap(), 64, 4).unwrap();
        let addr = set.local_addr().unwrap();
        let listeners = set.take_per_thread();
        assert_eq!(listeners.len(), 4);
        let mut clients = Vec::new();
        for _ in 0..64 {
            let mut client = std::net::TcpStream::connect(addr).unwrap();
            client.write_all(b"x").unwrap();
            clients.push(client);
        }
        // Each connection is queued on exactly one socket; with 64 connections hashed
        // over 4 sockets, each gets some (all on three or fewer: about 4 × 0.75^64).
        let mut accepted = Vec::new();
        for listener in &listeners {
            listener.set_nonblocking(true).unwrap();
            let mut count = 0;
            while let Ok((mut conn, _)) = listener.accept() {
                conn.set_nonblocking(false).unwrap();
                let mut byte = [0u8; 1];
                conn.read_exact(&mut byte).unwrap();
                count += 1;
            }
            accepted.push(count);
        }
        assert_eq!(accepted.iter().sum::<usize>(), 64, "{accepted:?}");
        assert!(accepted.iter().all(|&n| n > 0), "{accepted:?}");
        drop(clients);
    }

    /// Dropping the set frees the address for the next agent.
    #[tokio::test]
    async fn dropping_the_set_frees_the_address() {
        let set = ThreadListeners::bind("127.0.0.1:0".parse().unwrap(), 16, 2).unwrap();
        let addr = set.local_addr().unwrap();
        drop(set);
        ThreadListeners::bind(addr, 16, 2).expect("the address is free again");
    }
}
