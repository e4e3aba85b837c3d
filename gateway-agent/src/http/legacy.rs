//! The deprecated HTTP+SSE transport (2024-11-05): the client opens `GET /sse`, the server
//! names a POST endpoint in an `endpoint` event (`/messages?sessionId=…`), and every
//! response to a POSTed request travels on the SSE stream, not in the POST's answer.
//!
//! So when the gateway refuses a POSTed request, the refusal must be delivered on that
//! session's stream for the client to see it. Streams register here when their `endpoint`
//! event passes; a refused POST looks its session up and injects the answer.
//!
//! For the same reason a response on the stream can only be matched to its request
//! through the session: forwarded POSTs note their requests' ids and methods here, and
//! the stream takes them back when the responses pass. Only responses are looked up, so
//! the server's own requests on the stream (which reuse the same id numbers in the other
//! direction) never collide with them.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use bytes::Bytes;
use tokio::sync::mpsc;

/// Messages a refused POST may queue on a stream before the client reads them.
pub const INJECT_QUEUE: usize = 64;
/// Requests awaiting their response, per session; beyond this new ones go unnoted (their
/// responses then fall back to recognition by shape).
const MAX_PENDING: usize = 4096;

type Key = (SocketAddr, String);

struct Stream {
    inject: mpsc::Sender<Bytes>,
    /// JSON text of a request id → its method.
    /// Request id → (method, tool of a tools/call).
    pending: HashMap<String, (String, Option<String>)>,
}

#[derive(Default)]
pub struct LegacySessions {
    streams: Mutex<HashMap<Key, Stream>>,
}

/// Removes its session from the registry when the stream ends.
pub struct Registration {
    sessions: Arc<LegacySessions>,
    key: Key,
}

impl Registration {
    pub fn session(&self) -> &str {
        &self.key.1
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut streams = self
            .sessions
            .streams
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        streams.remove(&self.key);
    }
}

impl LegacySessions {
    /// Registers the stream that announced `endpoint` for `server`.
    pub fn register(
        self: &Arc<Self>,
        server: SocketAddr,
        endpoint: &str,
        inject: mpsc::Sender<Bytes>,
    ) -> Option<Registration> {
        let session = session_id(endpoint)?;
        let key = (server, session.to_owned());
        let mut streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        streams.insert(
            key.clone(),
            Stream {
                inject,
                pending: HashMap::new(),
            },
        );
        Some(Registration {
            sessions: Arc::clone(self),
            key,
        })
    }

    /// Queues a JSON-RPC message on the stream of the session `post_uri` belongs to.
    /// Returns false when there is no such stream (or it is full), so the caller can
    /// answer in the POST instead.
    pub fn inject(&self, server: SocketAddr, post_uri: &str, message: &serde_json::Value) -> bool {
        let Some(session) = session_id(post_uri) else {
            return false;
        };
        let streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        let Some(stream) = streams.get(&(server, session.to_owned())) else {
            return false;
        };
        let event = format!("event: message\ndata: {message}\n\n");
        stream.inject.try_send(Bytes::from(event)).is_ok()
    }

    /// Notes the requests a POST to `post_uri` forwards, if it belongs to a registered
    /// legacy session.
    pub fn note_requests<'a>(
        &self,
        server: SocketAddr,
        post_uri: &str,
        requests: impl IntoIterator<Item = (&'a serde_json::Value, &'a str, Option<&'a str>)>,
    ) {
        let Some(session) = session_id(post_uri) else {
            return;
        };
        let mut streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(stream) = streams.get_mut(&(server, session.to_owned())) {
            for (id, method, tool) in requests {
                if stream.pending.len() < MAX_PENDING {
                    stream
                        .pending
                        .insert(id.to_string(), (method.to_owned(), tool.map(str::to_owned)));
                }
            }
        }
    }

    /// The method (and tool) of the request `id` answers, taken out of the session's
    /// table.
    pub fn take_method(
        &self,
        server: SocketAddr,
        session: &str,
        id: &serde_json::Value,
    ) -> Option<(String, Option<String>)> {
        let mut streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        streams
            .get_mut(&(server, session.to_owned()))?
            .pending
            .remove(&id.to_string())
    }
}

/// The session id in an endpoint URI's query: `sessionId` (TypeScript SDK) or
/// `session_id` (Python SDK).
pub fn session_id(uri: &str) -> Option<&str> {
    let query = uri.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        matches!(name, "sessionId" | "session_id").then_some(value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_session_ids_of_both_sdks() {
        assert_eq!(session_id("/messages?sessionId=abc"), Some("abc"));
        assert_eq!(session_id("/messages/?x=1&session_id=d2f"), Some("d2f"));
        assert_eq!(session_id("/messages"), None);
    }

    #[tokio::test]
    async fn injects_into_the_registered_stream_until_it_ends() {
        let sessions = Arc::new(LegacySessions::default());
        let server: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let (tx, mut rx) = mpsc::channel(INJECT_QUEUE);
        let registration = sessions
            .register(server, "/messages?sessionId=s1", tx)
            .unwrap();
        let message = serde_json::json!({"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"no"}});
        assert!(sessions.inject(server, "/messages?sessionId=s1", &message));
        let event = rx.recv().await.unwrap();
        assert!(event.starts_with(b"event: message\ndata: {"));
        assert!(!sessions.inject(server, "/messages?sessionId=other", &message));
        drop(registration);
        assert!(!sessions.inject(server, "/messages?sessionId=s1", &message));
    }

    #[test]
    fn responses_find_their_request_by_session_and_id() {
        let sessions = Arc::new(LegacySessions::default());
        let server: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let (tx, _rx) = mpsc::channel(INJECT_QUEUE);
        let _registration = sessions
            .register(server, "/messages/?session_id=a", tx)
            .unwrap();
        let (one, two) = (serde_json::json!(1), serde_json::json!("2"));
        sessions.note_requests(
            server,
            "/messages/?session_id=a",
            [(&one, "tools/call", Some("echo")), (&two, "ping", None)],
        );
        // Unregistered sessions note nothing.
        sessions.note_requests(
            server,
            "/messages/?session_id=b",
            [(&one, "tools/call", None)],
        );
        assert_eq!(
            sessions.take_method(server, "a", &one),
            Some(("tools/call".to_owned(), Some("echo".to_owned())))
        );
        assert_eq!(sessions.take_method(server, "a", &one), None, "taken once");
        assert_eq!(
            sessions.take_method(server, "a", &serde_json::json!(2)),
            None,
            "1 ≠ \"1\""
        );
        assert_eq!(
            sessions.take_method(server, "a", &two),
            Some(("ping".to_owned(), None))
        );
        assert_eq!(sessions.take_method(server, "b", &one), None);
    }
}
