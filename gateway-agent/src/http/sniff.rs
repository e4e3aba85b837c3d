//! What a response body is, judged from its first bytes when its Content-Type does not
//! say (`text/plain`, none at all, or anything else): a server may send JSON-RPC under any
//! type, and what the client would act on must not pass uninspected because of a label.

use bytes::{Bytes, BytesMut};

use super::{body::BodyError, stream_pump::Source};

/// What the first bytes say the body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    /// Nothing but whitespace, then the end.
    Empty,
    /// Starts with `{` or `[`: JSON, filtered like `application/json`.
    Json,
    /// Starts with an SSE field (`data:`, `event:`, `id:`, `retry:`) or comment (`:`).
    Sse,
    /// Anything else: not MCP.
    Other,
}

#[derive(Debug, thiserror::Error)]
pub enum SniffError {
    #[error("more than {limit} bytes of whitespace before the first byte of content")]
    TooLarge { limit: usize },
    #[error(transparent)]
    Read(#[from] BodyError),
}

/// What `head` (the body's first bytes, `ended` if that is all of it) is; `None` while
/// more bytes are needed to tell.
pub fn classify(head: &[u8], ended: bool) -> Option<Sniffed> {
    let Some(start) = head.iter().position(|b| !b.is_ascii_whitespace()) else {
        return ended.then_some(Sniffed::Empty);
    };
    let rest = &head[start..];
    if matches!(rest[0], b'{' | b'[') {
        return Some(Sniffed::Json);
    }
    if rest[0] == b':' {
        return Some(Sniffed::Sse);
    }
    const FIELDS: [&[u8]; 4] = [b"data:", b"event:", b"id:", b"retry:"];
    if FIELDS.iter().any(|field| rest.starts_with(field)) {
        return Some(Sniffed::Sse);
    }
    if !ended && FIELDS.iter().any(|field| field.starts_with(rest)) {
        return None;
    }
    Some(Sniffed::Other)
}

/// Reads from `source` until its first bytes tell what it is, then puts them back.
/// `limit` bounds what is held meanwhile (a body of endless whitespace).
pub async fn read_head(source: &mut Source, limit: usize) -> Result<Sniffed, SniffError> {
    let mut head = BytesMut::new();
    let sniffed = loop {
        let chunk = source.next().await.transpose()?;
        let ended = chunk.is_none();
        if let Some(chunk) = chunk {
            head.extend_from_slice(&chunk);
        }
        if let Some(sniffed) = classify(&head, ended) {
            break sniffed;
        }
        if head.len() > limit {
            return Err(SniffError::TooLarge { limit });
        }
    };
    source.unread(Bytes::from(head));
    Ok(sniffed)
}

#[cfg(test)]
mod tests {
    use super::{Sniffed, classify};

    #[test]
    fn json_sse_and_everything_else() {
        for (head, ended, expected) in [
            (&b"{\"jsonrpc\""[..], false, Some(Sniffed::Json)),
            (b"\r\n [", false, Some(Sniffed::Json)),
            (b"data: {}", false, Some(Sniffed::Sse)),
            (b": ping\r\r", false, Some(Sniffed::Sse)),
            (b"event:message", false, Some(Sniffed::Sse)),
            (b"id: 3", false, Some(Sniffed::Sse)),
            (b"<!doctype html>", false, Some(Sniffed::Other)),
            (b"\x89PNG", false, Some(Sniffed::Other)),
            (b"Not Found", false, Some(Sniffed::Other)),
            (b"dat", false, None),
            (b"dat", true, Some(Sniffed::Other)),
            (b"  \n", false, None),
            (b"  \n", true, Some(Sniffed::Empty)),
            (b"", true, Some(Sniffed::Empty)),
        ] {
            assert_eq!(
                classify(head, ended),
                expected,
                "{:?}",
                String::from_utf8_lossy(head)
            );
        }
    }
}
