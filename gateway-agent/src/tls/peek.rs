//! Reads a client's ClientHello before anything is decided: its SNI and ALPN choose
//! between termination and passthrough.
//!
//! The bytes are read (not just peeked: a ClientHello can arrive in many small segments,
//! and waiting for "more than what is queued" cannot be expressed with `peek`) and kept,
//! so a passthrough connection replays them to the server unchanged, byte for byte. They
//! are parsed by rustls' own [`Acceptor`], never by hand; on termination the parsed hello
//! continues straight into the handshake. Reading is bounded in size
//! ([`MAX_HELLO_BYTES`]) and in time (`[tls] handshake_timeout_ms`).

use std::time::Duration;

use rustls::server::{Accepted, Acceptor};
use tokio::io::{AsyncRead, AsyncReadExt as _};

/// More than any real ClientHello (post-quantum key shares included): beyond this the
/// client is not sending one.
pub const MAX_HELLO_BYTES: usize = 64 * 1024;

/// A complete ClientHello.
pub struct Hello {
    /// The SNI host name, as sent.
    pub sni: Option<String>,
    /// The ALPN protocols offered, in the client's order.
    pub alpn: Vec<Vec<u8>>,
    /// Everything read from the client so far, for replay on passthrough.
    pub bytes: Vec<u8>,
    /// rustls' parsed hello, to continue the handshake from on termination.
    pub accepted: Accepted,
}

/// Why no ClientHello could be read; `bytes` is what arrived, for replay.
#[derive(Debug)]
pub struct NoHello {
    pub reason: NoHelloReason,
    pub bytes: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum NoHelloReason {
    #[error("no complete ClientHello within {0:?}")]
    Stalled(Duration),
    #[error("more than {MAX_HELLO_BYTES} bytes without a complete ClientHello")]
    TooLarge,
    #[error("client closed before completing its ClientHello")]
    Closed,
    #[error("malformed ClientHello: {0}")]
    Malformed(String),
    #[error("reading the ClientHello: {0}")]
    Io(std::io::Error),
}

impl NoHelloReason {
    /// A short stable label for logs and audit rows.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Stalled(_) => "stalled",
            Self::TooLarge => "too_large",
            Self::Closed => "closed",
            Self::Malformed(_) => "malformed",
            Self::Io(_) => "io_error",
        }
    }
}

/// Reads until rustls has a complete ClientHello, the client stops, or `timeout` passes.
pub async fn read_client_hello<S: AsyncRead + Unpin>(
    stream: &mut S,
    timeout: Duration,
) -> Result<Hello, NoHello> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut acceptor = Acceptor::default();
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    let fail = |reason, bytes| Err(NoHello { reason, bytes });
    loop {
        let n = match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Err(_) => return fail(NoHelloReason::Stalled(timeout), bytes),
            Ok(Err(err)) => return fail(NoHelloReason::Io(err), bytes),
            Ok(Ok(0)) => return fail(NoHelloReason::Closed, bytes),
            Ok(Ok(n)) => n,
        };
        bytes.extend_from_slice(&chunk[..n]);
        if bytes.len() > MAX_HELLO_BYTES {
            return fail(NoHelloReason::TooLarge, bytes);
        }
        let mut rest = &chunk[..n];
        while !rest.is_empty() {
            if let Err(err) = acceptor.read_tls(&mut rest) {
                return fail(NoHelloReason::Malformed(err.to_string()), bytes);
            }
        }
        match acceptor.accept() {
            Ok(None) => {}
            Ok(Some(accepted)) => {
                let hello = accepted.client_hello();
                let sni = hello.server_name().map(str::to_owned);
                let alpn = hello
                    .alpn()
                    .map(|protocols| protocols.map(<[u8]>::to_vec).collect())
                    .unwrap_or_default();
                return Ok(Hello {
                    sni,
                    alpn,
                    bytes,
                    accepted,
                });
            }
            Err((err, _alert)) => {
                return fail(NoHelloReason::Malformed(err.to_string()), bytes);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt as _;

    /// A real ClientHello, as rustls' client writes it.
    fn client_hello(sni: &str, alpn: &[&[u8]]) -> Vec<u8> {
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let mut conn =
            rustls::ClientConnection::new(Arc::new(config), sni.to_owned().try_into().unwrap())
                .unwrap();
        let mut out = Vec::new();
        conn.write_tls(&mut out).unwrap();
        out
    }

    use std::sync::Arc;

    #[tokio::test]
    async fn a_hello_split_into_single_bytes_is_read_whole() {
        let hello = client_hello("mcp.example", &[b"h2", b"http/1.1"]);
        let (mut client, mut server) = tokio::io::duplex(64);
        let sent = hello.clone();
        let writer = tokio::spawn(async move {
            for byte in sent {
                client.write_all(&[byte]).await.unwrap();
                client.flush().await.unwrap();
            }
            client
        });
        let got = read_client_hello(&mut server, Duration::from_secs(5))
            .await
            .map_err(|e| e.reason)
            .unwrap();
        assert_eq!(got.sni.as_deref(), Some("mcp.example"));
        assert_eq!(got.alpn, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
        assert_eq!(got.bytes, hello, "every byte kept for replay");
        drop(writer.await.unwrap());
    }

    #[tokio::test]
    async fn garbage_after_a_record_header_is_malformed_and_kept() {
        let mut garbage = vec![0x16, 0x03, 0x01, 0x00, 0x20];
        garbage.extend_from_slice(&[0xAB; 32]);
        let mut reader = &garbage[..];
        let err = read_client_hello(&mut reader, Duration::from_secs(5))
            .await
            .err()
            .unwrap();
        assert!(
            matches!(err.reason, NoHelloReason::Malformed(_)),
            "{:?}",
            err.reason
        );
        assert_eq!(err.bytes, garbage);
    }

    #[tokio::test]
    async fn a_stalled_hello_times_out() {
        let hello = client_hello("mcp.example", &[]);
        let (mut client, mut server) = tokio::io::duplex(64);
        client.write_all(&hello[..10]).await.unwrap();
        let err = read_client_hello(&mut server, Duration::from_millis(200))
            .await
            .err()
            .unwrap();
        assert!(matches!(err.reason, NoHelloReason::Stalled(_)));
        assert_eq!(err.bytes, hello[..10]);
        drop(client);
    }
}
