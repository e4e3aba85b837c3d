//! Incremental Server-Sent Events framing, for inspecting MCP streams event by event
//! without ever buffering a whole stream.
//!
//! Masking must see whole decoded events: a secret split across two TCP reads (or two
//! HTTP chunks) is only visible once the event that carries it is complete. So bytes are
//! accumulated until a blank line ends an event, then the event is handed over. Events
//! whose data the caller leaves unchanged are re-emitted byte for byte (ids, `event:`,
//! `retry:`, comments and empty priming events all survive exactly); changed events are
//! rebuilt with their other lines in the original order.
//!
//! Line endings follow the SSE spec: `\n`, `\r\n` or a lone `\r`.

use bytes::{Bytes, BytesMut};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SseError {
    #[error("SSE event exceeds {limit} bytes without ending; the stream was cut")]
    EventTooLarge { limit: usize },
}

/// One complete event as it appeared on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEvent {
    /// The exact bytes, including the terminating blank line.
    pub raw: Bytes,
    /// The joined `data:` lines, or `None` if the event had none (comments, priming).
    pub data: Option<String>,
    /// The `event:` field, if any (e.g. `endpoint` or `message` on the legacy transport).
    pub event: Option<String>,
}

impl RawEvent {
    /// The wire form of this event with `data` replacing its data lines. Other lines keep
    /// their order; the data lines go where the first one was, written the way the
    /// server wrote its own (`data:` with or without a space, and its line ending).
    pub fn with_data(&self, data: &str) -> Bytes {
        let eol = line_ending(&self.raw);
        let mut out = BytesMut::with_capacity(self.raw.len() + data.len());
        let mut data_written = false;
        for line in split_lines(&self.raw) {
            if line.is_empty() {
                continue;
            }
            if field_name(line) == b"data" {
                if !data_written {
                    let prefix: &[u8] = if line.starts_with(b"data: ") {
                        b"data: "
                    } else {
                        b"data:"
                    };
                    for data_line in data.split('\n') {
                        out.extend_from_slice(prefix);
                        out.extend_from_slice(data_line.as_bytes());
                        out.extend_from_slice(eol);
                    }
                    data_written = true;
                }
                continue;
            }
            out.extend_from_slice(line);
            out.extend_from_slice(eol);
        }
        out.extend_from_slice(eol);
        out.freeze()
    }
}

/// The line ending an event uses (the first one in it): `\r\n`, `\n` or a lone `\r`.
fn line_ending(raw: &[u8]) -> &'static [u8] {
    match raw.iter().position(|&b| b == b'\n' || b == b'\r') {
        Some(i) if raw[i] == b'\n' => b"\n",
        Some(i) if raw.get(i + 1) == Some(&b'\n') => b"\r\n",
        Some(_) => b"\r",
        None => b"\n",
    }
}

/// Splits a byte stream into events. Feed it chunks with [`SseParser::push`].
pub struct SseParser {
    buf: BytesMut,
    /// How far `buf` has been scanned for an event end, so a long event arriving in many
    /// chunks is scanned once, not once per chunk.
    scanned: usize,
    max_event: usize,
    /// The last event ended with a lone `\r` at the end of what had arrived: a `\n` that
    /// comes next is the rest of that terminator, not the start of an event.
    pending_lf: bool,
}

impl SseParser {
    pub fn new(max_event: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            scanned: 0,
            max_event,
            pending_lf: false,
        }
    }

    /// Adds `chunk` and returns every event it completed.
    pub fn push(&mut self, mut chunk: &[u8]) -> Result<Vec<RawEvent>, SseError> {
        let mut events = Vec::new();
        if std::mem::take(&mut self.pending_lf)
            && let Some(rest) = chunk.strip_prefix(b"\n")
        {
            // Passed on by itself so the client gets the bytes as they came.
            events.push(parse_event(Bytes::from_static(b"\n")));
            chunk = rest;
        }
        self.buf.extend_from_slice(chunk);
        while let Some(end) = self.find_event_end() {
            let raw = self.buf.split_to(end).freeze();
            self.scanned = 0;
            events.push(parse_event(raw));
        }
        if self.buf.len() > self.max_event {
            return Err(SseError::EventTooLarge {
                limit: self.max_event,
            });
        }
        Ok(events)
    }

    /// Bytes of an unfinished event left when the stream ended (a server that closed
    /// mid-event). Returned raw so the caller can decide; they never form an event.
    pub fn finish(self) -> Bytes {
        self.buf.freeze()
    }

    /// The end offset (exclusive) of the first complete event: after a line terminator
    /// that is immediately followed by another one.
    fn find_event_end(&mut self) -> Option<usize> {
        let buf = &self.buf[..];
        // Resume a little before where we stopped: a terminator pair may straddle chunks.
        let mut i = self.scanned.saturating_sub(2);
        // Position just after the previous line terminator (0 = start of event).
        let mut line_start = if i == 0 { 0 } else { usize::MAX };
        while i < buf.len() {
            match buf[i] {
                b'\n' => {
                    if line_start == i {
                        return Some(i + 1);
                    }
                    i += 1;
                    line_start = i;
                }
                b'\r' => {
                    if i + 1 == buf.len() {
                        if line_start == i {
                            // The event ends here whether or not a \n follows: a stream
                            // with lone-CR line endings must not wait for the next event.
                            self.pending_lf = true;
                            return Some(i + 1);
                        }
                        // Could be the first half of \r\n: wait for the next byte.
                        break;
                    }
                    let end = if buf[i + 1] == b'\n' { i + 2 } else { i + 1 };
                    if line_start == i {
                        return Some(end);
                    }
                    i = end;
                    line_start = i;
                }
                _ => i += 1,
            }
        }
        self.scanned = i;
        None
    }
}

fn parse_event(raw: Bytes) -> RawEvent {
    let mut data: Option<String> = None;
    let mut event = None;
    for line in split_lines(&raw) {
        if line.is_empty() || line[0] == b':' {
            continue;
        }
        let value = field_value(line);
        match field_name(line) {
            b"data" => {
                let value = String::from_utf8_lossy(value);
                match &mut data {
                    Some(joined) => {
                        joined.push('\n');
                        joined.push_str(&value);
                    }
                    None => data = Some(value.into_owned()),
                }
            }
            b"event" => event = Some(String::from_utf8_lossy(value).into_owned()),
            _ => {}
        }
    }
    RawEvent { raw, data, event }
}

/// Lines of one event, without their terminators.
fn split_lines(raw: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = raw;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = rest
            .iter()
            .position(|&b| b == b'\n' || b == b'\r')
            .unwrap_or(rest.len());
        let line = &rest[..end];
        let skip = match rest.get(end..end + 2) {
            Some(b"\r\n") => 2,
            _ if end < rest.len() => 1,
            _ => 0,
        };
        rest = &rest[end + skip..];
        Some(line)
    })
}

fn field_name(line: &[u8]) -> &[u8] {
    let colon = line.iter().position(|&b| b == b':').unwrap_or(line.len());
    &line[..colon]
}

/// The value after `name:`, with the single optional leading space removed.
fn field_value(line: &[u8]) -> &[u8] {
    match line.iter().position(|&b| b == b':') {
        Some(colon) => {
            let value = &line[colon + 1..];
            value.strip_prefix(b" ").unwrap_or(value)
        }
        None => &[],
    }
}

#[cfg(test)]
mod tests;
