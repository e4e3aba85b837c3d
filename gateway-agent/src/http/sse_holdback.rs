//! `mask.stream_holdback`: an SSE notification is kept back until the next message of
//! its stream arrives (or the wait runs out), so a secret a server printed across two
//! events (a log line cut in two notifications, a progress message continued) can be
//! joined and masked in both ([`crate::mask::seam`]).
//!
//! Only notifications wait. A server request (elicitation, sampling) is answered by the
//! client, and a response usually ends its stream: holding either could stall the
//! exchange, so they go at once, though they are still joined with a notification held
//! before them. The cost is latency on notifications only: each is delivered when its
//! successor arrives or after the wait, whichever is first; at the end of the stream at
//! the latest. Without it, a secret split across two events is masked only if each half
//! matches alone.

use tokio::time::Instant;

use crate::{
    mask::{Doc, JsonKind, MAX_DEPTH, MaskReport, Masker, seam::StreamHoldback},
    mcp::sse::RawEvent,
};

/// An event ready to be filtered and released.
pub struct Ready {
    pub event: RawEvent,
    /// The data to filter: the event's own, or with part of a split secret masked.
    pub data: String,
    /// Whether `data` differs from the event's (its wire form must be rebuilt).
    pub edited: bool,
    /// What joining masked in `data`, counted in its rows.
    pub seam: MaskReport,
}

impl Ready {
    pub fn new(event: RawEvent, data: String) -> Self {
        Self {
            event,
            data,
            edited: false,
            seam: MaskReport::default(),
        }
    }

    fn absorb(&mut self, rewritten: Option<String>, report: MaskReport) {
        if let Some(data) = rewritten {
            self.data = data;
            self.edited = true;
        }
        self.seam.merge(&report);
    }
}

/// The stream's one held notification, if any.
pub struct Holdback {
    settings: StreamHoldback,
    held: Option<(Ready, Instant)>,
}

impl Holdback {
    pub fn new(settings: StreamHoldback) -> Self {
        Self {
            settings,
            held: None,
        }
    }

    /// Takes the stream's next message: returns what may go now, in stream order (the
    /// held notification, joined with `next`, then `next` unless it is held in turn).
    pub fn admit(&mut self, masker: &Masker, mut next: Ready) -> Vec<Ready> {
        let mut out = Vec::with_capacity(2);
        if let Some((mut earlier, _)) = self.held.take() {
            let seam = masker.mask_seam(&earlier.data, &next.data, self.settings.window);
            earlier.absorb(seam.earlier, seam.earlier_report);
            next.absorb(seam.later, seam.later_report);
            out.push(earlier);
        }
        if is_notification(&next.data) {
            self.held = Some((next, Instant::now() + self.settings.wait));
        } else {
            out.push(next);
        }
        out
    }

    /// When the held notification must go even if nothing follows it.
    pub fn due(&self) -> Option<Instant> {
        self.held.as_ref().map(|(_, until)| *until)
    }

    /// The held notification, to go now (its wait ran out, an event without a message
    /// came, or the stream ends).
    pub fn release(&mut self) -> Option<Ready> {
        self.held.take().map(|(ready, _)| ready)
    }
}

/// A JSON-RPC notification (a `method`, no `id`), read with the masker's span parser:
/// cheaper than building a `serde_json::Value` for every event.
fn is_notification(data: &str) -> bool {
    let Ok(doc) = Doc::parse(data, MAX_DEPTH) else {
        return false;
    };
    let root = doc.root();
    let is_string = |node| matches!(doc.kind(node), JsonKind::String { .. });
    doc.member(root, "jsonrpc")
        .is_some_and(|version| doc.str_is(version, "2.0"))
        && doc.member(root, "method").is_some_and(is_string)
        && doc.member(root, "id").is_none()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;
    use crate::mask::MaskConfig;

    fn ready(data: &str) -> Ready {
        let raw = Bytes::from(format!("data: {data}\n\n"));
        let event = RawEvent {
            raw,
            data: None,
            event: None,
        };
        Ready::new(event, data.to_owned())
    }

    fn holdback() -> (Holdback, Masker) {
        let settings = StreamHoldback {
            wait: Duration::from_secs(1),
            window: 4096,
        };
        let masker = Masker::new(&MaskConfig::default()).expect("rules compile");
        (Holdback::new(settings), masker)
    }

    const NOTE: &str =
        r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"message":"a"}}"#;
    const REQUEST: &str = r#"{"jsonrpc":"2.0","id":7,"method":"elicitation/create","params":{}}"#;
    const RESPONSE: &str = r#"{"jsonrpc":"2.0","id":1,"result":{"content":[]}}"#;

    #[test]
    fn only_notifications_wait_and_order_is_kept() {
        let (mut holdback, masker) = holdback();
        assert!(holdback.admit(&masker, ready(NOTE)).is_empty());
        assert!(holdback.due().is_some());
        // A server request goes at once (the client must answer it), after what was held.
        let out: Vec<String> = (holdback.admit(&masker, ready(REQUEST)).into_iter())
            .map(|r| r.data)
            .collect();
        assert_eq!(out, [NOTE, REQUEST]);
        assert!(holdback.due().is_none());
        let out = holdback.admit(&masker, ready(RESPONSE));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].data, RESPONSE);
    }

    #[test]
    fn the_held_notification_is_released_on_demand() {
        let (mut holdback, masker) = holdback();
        assert!(holdback.admit(&masker, ready(NOTE)).is_empty());
        let released = holdback.release().expect("held");
        assert_eq!(released.data, NOTE);
        assert!(!released.edited);
        assert!(holdback.release().is_none());
    }

    #[test]
    fn what_is_not_a_notification_is_not_held() {
        for data in [
            REQUEST,
            RESPONSE,
            "plain text",
            r#"{"method":"notifications/x"}"#,
            r#"{"jsonrpc":"2.0","method":3}"#,
            r#"[{"jsonrpc":"2.0","method":"notifications/x"}]"#,
        ] {
            assert!(!is_notification(data), "{data}");
        }
        assert!(is_notification(NOTE));
    }
}
