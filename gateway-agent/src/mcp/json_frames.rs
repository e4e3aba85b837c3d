//! Incremental framing of a stream of JSON values (newline-delimited or simply
//! concatenated), for inspecting a streamed `application/json` body message by message
//! without ever buffering the whole stream.
//!
//! A long-lived response such as 2026-07-28's `subscriptions/listen` answer is a chunked
//! JSON body that never ends: an acknowledgement, then notifications. Masking must see each
//! message whole (a secret split across two HTTP chunks is only visible once the value that
//! carries it is complete), and the client must get each message as soon as it completes.
//! So bytes are accumulated only while a value is open; the whitespace between values is
//! handed back as it came, so the concatenation of every piece is the input, byte for byte.
//!
//! The framer only tracks strings, escapes and brackets: it finds where a value ends, and
//! refuses what cannot start or continue a stream of objects or arrays (anything else at
//! the top level, or a closing bracket that does not match). Whether a finished value is
//! valid JSON is for the caller's parser to say. Structural bytes are ASCII and UTF-8
//! continuation bytes never are, so a chunk may split anywhere, even inside a character.

use bytes::{Bytes, BytesMut};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JsonFrameError {
    #[error("JSON value exceeds {limit} bytes without ending; the stream was cut")]
    ValueTooLarge { limit: usize },
    #[error(
        "not a stream of JSON objects or arrays: unexpected byte {byte:#04x} at offset {offset}"
    )]
    Unexpected { byte: u8, offset: u64 },
    #[error("JSON stream ended inside a value ({bytes} bytes unfinished)")]
    Truncated { bytes: usize },
}

/// One piece of the stream, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Whitespace between values: forwarded as it came.
    Gap(Bytes),
    /// One complete top-level value (an object or an array), its exact bytes.
    Value(Bytes),
}

/// Splits a byte stream into JSON values. Feed it chunks with [`JsonFramer::push`].
pub struct JsonFramer {
    /// Bytes of the value in progress (empty between values).
    buf: BytesMut,
    /// The closing brackets the open value still needs, innermost last.
    open: Vec<u8>,
    in_string: bool,
    escaped: bool,
    /// Stream offset of the next byte `push` will see, for error messages.
    offset: u64,
    max_value: usize,
}

impl JsonFramer {
    pub fn new(max_value: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            open: Vec::new(),
            in_string: false,
            escaped: false,
            offset: 0,
            max_value,
        }
    }

    /// Adds `chunk`, appending the pieces it completed to `pieces`: gaps at once, values
    /// once whole. On an error, what completed before it is still in `pieces`.
    pub fn push(&mut self, chunk: Bytes, pieces: &mut Vec<Piece>) -> Result<(), JsonFrameError> {
        let mut at = 0;
        while at < chunk.len() {
            if self.open.is_empty() {
                let gap = chunk[at..]
                    .iter()
                    .position(|b| !is_whitespace(*b))
                    .unwrap_or(chunk.len() - at);
                if gap > 0 {
                    pieces.push(Piece::Gap(chunk.slice(at..at + gap)));
                    at += gap;
                    self.offset += gap as u64;
                    continue;
                }
                if !matches!(chunk[at], b'{' | b'[') {
                    return Err(JsonFrameError::Unexpected {
                        byte: chunk[at],
                        offset: self.offset,
                    });
                }
            }
            let start = at;
            let done = self.scan(&chunk, start, &mut at)?;
            self.offset += (at - start) as u64;
            if !done {
                self.buf.extend_from_slice(&chunk[start..at]);
                continue;
            }
            let value = if self.buf.is_empty() {
                // Whole within this chunk: no copy.
                chunk.slice(start..at)
            } else {
                self.buf.extend_from_slice(&chunk[start..at]);
                self.buf.split().freeze()
            };
            pieces.push(Piece::Value(value));
        }
        Ok(())
    }

    /// The stream ended: an error if it ended inside a value (its bytes never form a
    /// message, so nothing of them may be released).
    pub fn finish(self) -> Result<(), JsonFrameError> {
        match self.buf.len() {
            0 => Ok(()),
            bytes => Err(JsonFrameError::Truncated { bytes }),
        }
    }

    /// Scans the open value from `chunk[*at]` (this scan began at `start`, which is stream
    /// offset `self.offset`), advancing `at`; true once the value closed.
    fn scan(&mut self, chunk: &[u8], start: usize, at: &mut usize) -> Result<bool, JsonFrameError> {
        while *at < chunk.len() {
            let byte = chunk[*at];
            let offset = self.offset + (*at - start) as u64;
            *at += 1;
            if self.buf.len() + (*at - start) > self.max_value {
                return Err(JsonFrameError::ValueTooLarge {
                    limit: self.max_value,
                });
            }
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if byte == b'\\' {
                    self.escaped = true;
                } else if byte == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            match byte {
                b'"' => self.in_string = true,
                b'{' => self.open.push(b'}'),
                b'[' => self.open.push(b']'),
                b'}' | b']' => {
                    if self.open.pop() != Some(byte) {
                        return Err(JsonFrameError::Unexpected { byte, offset });
                    }
                    if self.open.is_empty() {
                        return Ok(true);
                    }
                }
                _ => {}
            }
        }
        Ok(false)
    }
}

fn is_whitespace(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
}

#[cfg(test)]
mod tests;
