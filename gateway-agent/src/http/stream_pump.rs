//! What every streamed response filter shares (SSE events, JSON values, bodies passed
//! through): a [`Source`] that yields the upstream's decoded bytes, and a [`Downstream`]
//! that is the client's response body.
//!
//! A pump reads the source and sends what it releases into a bounded channel that the
//! client's body drains: the upstream is read no faster than the client reads
//! (backpressure), nothing waits for the stream to end, and there is no idle timeout.
//! The pump runs inside the client's body ([`driven`]): hyper polls it in the task that
//! writes the response, so a streamed answer (SSE is the MCP SDKs' default) costs no task
//! spawn and no wake-up between a pump task and the connection's. When the client goes
//! away hyper drops the body, and with it the pump and the upstream body, even while the
//! upstream is silent.
//! A message's audit rows are durable before the message is released; a trail that cannot
//! take them ends the stream rather than release an unrecorded message.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use tokio::sync::{Notify, mpsc};
use tracing::{error, warn};

use super::body::{BodyError, ProxyBody, StreamDecoder};
use crate::audit::{AuditRecord, AuditSink};

/// Items in flight between the upstream reader and the client.
const CHANNEL_ITEMS: usize = 16;
/// How long an ending error waits for the client to take what was released before it.
const DRAIN_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The upstream body as decoded bytes: first whatever was already read (while deciding
/// what the body is), then the rest, decoded on the fly when it is compressed.
pub struct Source {
    prefix: Option<Bytes>,
    body: Incoming,
    decoder: Option<StreamDecoder>,
}

impl Source {
    pub fn new(body: Incoming, decoder: Option<StreamDecoder>) -> Self {
        Self {
            prefix: None,
            body,
            decoder,
        }
    }

    /// Puts decoded bytes already read back in front of the rest.
    pub fn unread(&mut self, prefix: Bytes) {
        if !prefix.is_empty() {
            self.prefix = Some(prefix);
        }
    }

    /// The next decoded bytes, `None` at the end. Cancel-safe: nothing is lost if the
    /// future is dropped while it waits.
    pub async fn next(&mut self) -> Option<Result<Bytes, BodyError>> {
        if let Some(prefix) = self.prefix.take() {
            return Some(Ok(prefix));
        }
        loop {
            let data = match self.body.frame().await? {
                Ok(frame) => match frame.into_data() {
                    Ok(data) => data,
                    Err(_trailers) => continue,
                },
                Err(err) => return Some(Err(BodyError::Hyper(err))),
            };
            return Some(match self.decoder.as_mut().map(|d| d.push(&data)) {
                None => Ok(data),
                Some(Ok(decoded)) => Ok(Bytes::from(decoded)),
                Some(Err(err)) => {
                    warn!(error = %err, "undecodable compressed stream cut");
                    Err(BodyError::Cut(format!(
                        "cannot decode the upstream stream: {err}"
                    )))
                }
            });
        }
    }
}

/// What [`Source::pull`] got.
pub enum Pulled {
    /// Decoded upstream bytes.
    Data(Bytes),
    /// The upstream body failed.
    Failed(BodyError),
    /// The upstream body ended.
    End,
}

/// The client's side of a streamed response.
pub struct Downstream {
    tx: mpsc::Sender<Result<Bytes, BodyError>>,
    audit: Option<AuditSink>,
    /// Signalled by the body each time it hands hyper the last queued item.
    drained: Arc<Notify>,
}

/// A response body that runs `pump` (which feeds the [`Downstream`] it is given) as it is
/// polled, in the task that writes the response: see the module docs.
pub fn driven<F, Fut>(audit: Option<AuditSink>, pump: F) -> ProxyBody
where
    F: FnOnce(Downstream) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    driven_body(audit, pump).boxed()
}

/// [`driven`], not yet boxed: [`DrivenBody::prime`] it first.
pub fn driven_body<F, Fut>(audit: Option<AuditSink>, pump: F) -> DrivenBody
where
    F: FnOnce(Downstream) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (downstream, channel) = channel_parts(audit);
    let pump: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(pump(downstream));
    DrivenBody {
        channel,
        pump: Some(std::sync::Mutex::new(pump)),
    }
}

/// A channel-backed response body and the sender that feeds it.
pub fn channel(audit: Option<AuditSink>) -> (Downstream, ProxyBody) {
    let (downstream, body) = channel_parts(audit);
    (downstream, body.boxed())
}

fn channel_parts(audit: Option<AuditSink>) -> (Downstream, ChannelBody) {
    let (tx, rx) = mpsc::channel(CHANNEL_ITEMS);
    let drained = Arc::new(Notify::new());
    let body = ChannelBody {
        rx,
        drained: Arc::clone(&drained),
    };
    (Downstream { tx, audit, drained }, body)
}

impl Source {
    /// The next bytes, as a pump matches on them. A client that goes away needs no watch
    /// here: hyper drops its body, and the pump running inside it ([`driven`]) with it.
    pub async fn pull(&mut self) -> Pulled {
        match self.next().await {
            Some(Ok(bytes)) => Pulled::Data(bytes),
            Some(Err(err)) => Pulled::Failed(err),
            None => Pulled::End,
        }
    }
}

impl Downstream {
    /// Sends bytes that carry no message (gaps, comments); false once the client is gone.
    pub async fn send(&self, bytes: Bytes) -> bool {
        self.tx.send(Ok(bytes)).await.is_ok()
    }

    /// Makes `rows` durable, then sends `bytes`; false when the stream must end (the
    /// client is gone, or the trail could not take the rows: then the client's body ends
    /// with an error instead).
    pub async fn release(&self, rows: Vec<AuditRecord>, bytes: Bytes) -> bool {
        if let (Some(sink), false) = (&self.audit, rows.is_empty())
            && let Err(err) = sink.record(rows).await
        {
            error!(error = %err, "audit trail unavailable; response stream cut");
            self.cut(format!("audit trail unavailable: {err}")).await;
            return false;
        }
        self.send(bytes).await
    }

    /// Ends the client's body with an error (it sees a broken transfer, not a clean end).
    pub async fn cut(&self, reason: String) {
        self.end_with(BodyError::Cut(reason)).await;
    }

    /// Ends the client's body with `err` from the source.
    pub async fn fail(&self, err: BodyError) {
        self.end_with(err).await;
    }

    /// Sends the error only once the client's body has taken everything queued before it
    /// (bounded by [`DRAIN_WAIT`]): hyper drops what it has buffered but not yet written
    /// when a body fails, so an error queued right behind released events would lose
    /// them, events the trail records as delivered.
    async fn end_with(&self, err: BodyError) {
        let drained = async {
            while self.tx.capacity() < self.tx.max_capacity() && !self.tx.is_closed() {
                self.drained.notified().await;
            }
            // One turn for hyper to write out what it took with the last item.
            tokio::task::yield_now().await;
        };
        let _ = tokio::time::timeout(DRAIN_WAIT, drained).await;
        let _ = self.tx.send(Err(err)).await;
    }
}

/// Copies `source` to the client unchanged (a body that carries no MCP message).
pub async fn pass_through(mut source: Source, downstream: Downstream) {
    loop {
        match source.pull().await {
            Pulled::Data(bytes) => {
                if !downstream.send(bytes).await {
                    return;
                }
            }
            Pulled::Failed(err) => return downstream.fail(err).await,
            Pulled::End => return,
        }
    }
}

struct ChannelBody {
    rx: mpsc::Receiver<Result<Bytes, BodyError>>,
    drained: Arc<Notify>,
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let item = self.rx.poll_recv(cx);
        if item.is_ready() && self.rx.is_empty() {
            self.drained.notify_one();
        }
        item.map(|item| item.map(|result| result.map(Frame::data)))
    }
}

/// [`ChannelBody`] with its pump inside. The mutex only makes the body `Sync`, as boxed
/// bodies must be; it is never locked (`get_mut`).
pub struct DrivenBody {
    channel: ChannelBody,
    /// `None` once the pump has returned (its sender dropped: the channel ends after
    /// what it still holds).
    pump: Option<std::sync::Mutex<Pin<Box<dyn Future<Output = ()> + Send>>>>,
}

impl DrivenBody {
    /// Lets the pump take what the upstream has delivered already, and the upstream's end
    /// if it follows at once, before the response head goes out. A short stream (the SSE
    /// answer to a POST, what the MCP SDKs' servers send, ends after one event) then
    /// reaches the client in one write, head, event and end together ([`Body::is_end_stream`]
    /// tells hyper there is no more). Without it the event went out with the head, and the
    /// end in a second write a moment later: a second wake-up of the client per call. The
    /// upstream connection's task hands over its body one chunk at a time, so it needs a
    /// turn between the pump's two looks. Never waits for the upstream.
    pub async fn prime(&mut self) {
        self.poll_pump_once().await;
        tokio::task::yield_now().await;
        self.poll_pump_once().await;
    }

    async fn poll_pump_once(&mut self) {
        std::future::poll_fn(|cx| {
            // A look, not a wait: a pump still reading stays for the body's polls.
            let _ = self.poll_pump(cx);
            Poll::Ready(())
        })
        .await;
    }

    /// Lets the pump read on (it registers `cx` with whatever it waits for: the upstream,
    /// room in the channel, an approval); `Ready` once it has returned, now or before.
    fn poll_pump(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(pump) = self.pump.as_mut() else {
            return Poll::Ready(());
        };
        let pump = pump
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let polled = pump.as_mut().poll(cx);
        if polled.is_ready() {
            self.pump = None;
        }
        polled
    }

    pub fn boxed(self) -> ProxyBody {
        http_body_util::BodyExt::boxed(self)
    }
}

impl Body for DrivenBody {
    type Data = Bytes;
    type Error = BodyError;

    /// The pump has returned (dropping its sender) and the client has taken everything.
    fn is_end_stream(&self) -> bool {
        self.pump.is_none() && self.channel.rx.is_empty() && self.channel.rx.is_closed()
    }

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        loop {
            if let Poll::Ready(item) = Pin::new(&mut this.channel).poll_frame(cx) {
                return Poll::Ready(item);
            }
            // Nothing queued: let the pump read on.
            if this.pump.is_none() {
                return Poll::Pending;
            }
            match this.poll_pump(cx) {
                Poll::Ready(()) => {}
                Poll::Pending if this.channel.rx.is_empty() => return Poll::Pending,
                // It queued something, then waited: hand that over first.
                Poll::Pending => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The next frame's data, if the body has one ready now.
    async fn ready_data(body: &mut DrivenBody) -> Option<Bytes> {
        std::future::poll_fn(|cx| match Pin::new(&mut *body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => Poll::Ready(frame.into_data().ok()),
            _ => Poll::Ready(None),
        })
        .await
    }

    /// As with a short upstream stream: the pump releases an event, then learns of the end
    /// only once another task (the upstream connection's, handing over one chunk at a
    /// time) has had a turn. Primed, the body holds the event and says it ends with it.
    #[tokio::test]
    async fn a_primed_body_holds_its_event_and_its_end() {
        let (end_tx, end_rx) = tokio::sync::oneshot::channel::<()>();
        let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = go_rx.await;
            let _ = end_tx.send(());
        });
        let mut body = driven_body(None, move |downstream| async move {
            downstream.send(Bytes::from_static(b"data: x\n\n")).await;
            let _ = go_tx.send(());
            let _ = end_rx.await;
        });
        assert!(!body.is_end_stream());
        body.prime().await;
        let data = ready_data(&mut body).await;
        assert_eq!(data.as_deref(), Some(&b"data: x\n\n"[..]));
        assert!(body.is_end_stream(), "the end was not seen with the event");
    }

    /// Priming never waits: a pump that needs more from the upstream is left pending, and
    /// what it released is there to send.
    #[tokio::test]
    async fn priming_does_not_wait_for_a_stream_that_goes_on() {
        let (_keep, never) = tokio::sync::oneshot::channel::<()>();
        let mut body = driven_body(None, move |downstream| async move {
            downstream.send(Bytes::from_static(b"data: x\n\n")).await;
            let _ = never.await;
        });
        tokio::time::timeout(std::time::Duration::from_secs(5), body.prime())
            .await
            .expect("priming waited for the upstream");
        assert!(!body.is_end_stream());
        let data = ready_data(&mut body).await;
        assert_eq!(data.as_deref(), Some(&b"data: x\n\n"[..]));
        assert!(!body.is_end_stream());
    }
}
