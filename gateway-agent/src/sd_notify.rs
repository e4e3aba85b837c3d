//! The systemd service-manager notification protocol (`sd_notify(3)`), for `Type=notify`.
//!
//! A datagram of `KEY=VALUE` lines to the Unix socket named by `$NOTIFY_SOCKET` (a path, or
//! an abstract name written `@name`). Implemented here rather than taken from a crate: it
//! is one `sendto(2)` per message, and the std library already speaks abstract sockets.
//! Outside systemd (no `$NOTIFY_SOCKET`) every call is a no-op, so `run` behaves the same
//! from a shell.
//!
//! What the agent says, and when:
//! * `READY=1` once the eBPF programs are attached and the listeners serve, so
//!   `systemctl start` returns only when MCP connections are actually handled;
//! * `RELOADING=1` … `READY=1` around a SIGHUP reload (`systemctl reload`);
//! * `STOPPING=1` when it starts shutting down;
//! * `WATCHDOG=1` every half `WatchdogSec=`, from a task on the async runtime, so a wedged
//!   runtime stops feeding the watchdog and systemd restarts the agent.

use std::{
    os::{linux::net::SocketAddrExt as _, unix::net::UnixDatagram},
    time::Duration,
};

/// Longest `$NOTIFY_SOCKET` accepted: `sun_path` is 108 bytes.
const MAX_SOCKET_PATH: usize = 107;

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("NOTIFY_SOCKET {0:?} is not an absolute path or an @abstract name")]
    BadSocket(String),
    #[error("sending to NOTIFY_SOCKET: {0}")]
    Send(#[from] std::io::Error),
}

/// Where notifications go; `None` inside when not started by systemd.
#[derive(Debug, Clone)]
pub struct Notifier {
    socket: Option<String>,
}

impl Notifier {
    /// Reads `$NOTIFY_SOCKET` once.
    pub fn from_env() -> Self {
        Self {
            socket: std::env::var("NOTIFY_SOCKET")
                .ok()
                .filter(|socket| !socket.is_empty()),
        }
    }

    /// Whether systemd listens (the agent runs as a `Type=notify` service).
    pub fn enabled(&self) -> bool {
        self.socket.is_some()
    }

    /// Sends one notification (`"READY=1\nSTATUS=…"`). A no-op outside systemd.
    pub fn notify(&self, state: &str) -> Result<(), NotifyError> {
        let Some(socket) = &self.socket else {
            return Ok(());
        };
        if socket.len() > MAX_SOCKET_PATH {
            return Err(NotifyError::BadSocket(socket.clone()));
        }
        let addr = if let Some(name) = socket.strip_prefix('@') {
            std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?
        } else if socket.starts_with('/') {
            std::os::unix::net::SocketAddr::from_pathname(socket)?
        } else {
            return Err(NotifyError::BadSocket(socket.clone()));
        };
        let sender = UnixDatagram::unbound()?;
        sender.send_to_addr(state.as_bytes(), &addr)?;
        Ok(())
    }

    /// Like [`Notifier::notify`], logging a failure instead of returning it: systemd not
    /// hearing a status must not stop the agent from serving.
    pub fn send(&self, state: &str) {
        if let Err(err) = self.notify(state) {
            tracing::warn!(error = %err, state, "sd_notify failed");
        }
    }

    /// The keep-alive interval systemd asked for (`WatchdogSec=`), halved as sd_notify(3)
    /// advises; `None` when no watchdog is set or it is meant for another process.
    pub fn watchdog_interval() -> Option<Duration> {
        watchdog_interval_from(
            std::env::var("WATCHDOG_USEC").ok().as_deref(),
            std::env::var("WATCHDOG_PID").ok().as_deref(),
            std::process::id(),
        )
    }
}

fn watchdog_interval_from(usec: Option<&str>, pid: Option<&str>, own: u32) -> Option<Duration> {
    if let Some(pid) = pid
        && pid.parse::<u32>().ok() != Some(own)
    {
        return None;
    }
    let usec: u64 = usec?.parse().ok().filter(|&usec| usec > 0)?;
    Some(Duration::from_micros(usec / 2))
}

/// Feeds the watchdog from the async runtime until the task is aborted.
pub fn spawn_watchdog(notifier: Notifier, interval: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        loop {
            ticks.tick().await;
            notifier.send("WATCHDOG=1");
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notifier(socket: &str) -> Notifier {
        Notifier {
            socket: Some(socket.to_owned()),
        }
    }

    #[test]
    fn sends_to_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let receiver = UnixDatagram::bind(&path).unwrap();
        notifier(path.to_str().unwrap())
            .notify("READY=1\nSTATUS=serving")
            .unwrap();
        let mut buf = [0u8; 64];
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=serving");
    }

    #[test]
    fn sends_to_an_abstract_socket() {
        let name = format!("gateway-agent-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let receiver = UnixDatagram::bind_addr(&addr).unwrap();
        notifier(&format!("@{name}")).notify("STOPPING=1").unwrap();
        let mut buf = [0u8; 16];
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
    }

    #[test]
    fn outside_systemd_is_a_no_op_and_bad_sockets_are_errors() {
        Notifier { socket: None }.notify("READY=1").unwrap();
        assert!(matches!(
            notifier("relative/path").notify("READY=1"),
            Err(NotifyError::BadSocket(_))
        ));
        assert!(notifier("/nonexistent/notify").notify("READY=1").is_err());
    }

    #[test]
    fn watchdog_interval_is_half_and_only_for_us() {
        assert_eq!(
            watchdog_interval_from(Some("10000000"), None, 7),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            watchdog_interval_from(Some("10000000"), Some("7"), 7),
            Some(Duration::from_secs(5))
        );
        assert_eq!(watchdog_interval_from(Some("10000000"), Some("8"), 7), None);
        assert_eq!(watchdog_interval_from(None, None, 7), None);
        assert_eq!(watchdog_interval_from(Some("0"), None, 7), None);
        assert_eq!(watchdog_interval_from(Some("x"), None, 7), None);
    }
}
