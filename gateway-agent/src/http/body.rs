//! Body plumbing: one boxed body type for everything the proxy sends (forwarded streams,
//! buffered and rewritten JSON, re-framed SSE), and the bounded collection of bodies the
//! gateway must read whole.

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt as _, Full, combinators::BoxBody};

use super::timeouts::Wait;

pub type ProxyBody = BoxBody<Bytes, BodyError>;

/// Errors inside a body stream (upstream resets, limits, SSE framing).
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error(transparent)]
    Hyper(#[from] hyper::Error),
    #[error("{0}")]
    Cut(String),
}

pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

pub fn empty() -> ProxyBody {
    full(Bytes::new())
}

pub fn forward(body: hyper::body::Incoming) -> ProxyBody {
    body.map_err(BodyError::from).boxed()
}

#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("body larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("reading body: {0}")]
    Read(#[from] hyper::Error),
    #[error("body stalled: {0}")]
    Stalled(Wait),
}

/// Reads a whole body, refusing to hold more than `limit` bytes or to wait longer than
/// `wait` allows (a peer that stalls mid-body must not hold the exchange for ever).
pub async fn collect_limited(
    mut body: hyper::body::Incoming,
    limit: usize,
    wait: Wait,
) -> Result<Bytes, CollectError> {
    let started = tokio::time::Instant::now();
    let mut out = BytesMut::new();
    loop {
        let until = match wait {
            Wait::Total(total) => started + total,
            Wait::Idle(idle) => tokio::time::Instant::now() + idle,
        };
        let next = tokio::time::timeout_at(until, body.frame()).await;
        let frame = match next {
            Err(_) => return Err(CollectError::Stalled(wait)),
            Ok(None) => return Ok(out.freeze()),
            Ok(Some(frame)) => frame?,
        };
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > limit {
                return Err(CollectError::TooLarge { limit });
            }
            out.extend_from_slice(&data);
        }
    }
}

/// Decodes a compressed response body, refusing to inflate past `limit` bytes (a small
/// compressed body can expand without bound).
pub fn decode(encoding: &str, bytes: &[u8], limit: usize) -> Result<Bytes, String> {
    use std::io::Read;
    let reader: Box<dyn Read + '_> = match encoding {
        "gzip" | "x-gzip" => Box::new(flate2::read::GzDecoder::new(bytes)),
        "deflate" => Box::new(flate2::read::ZlibDecoder::new(bytes)),
        "br" => Box::new(brotli_decompressor::Decompressor::new(bytes, 4096)),
        other => return Err(format!("unsupported Content-Encoding {other}")),
    };
    let mut out = Vec::new();
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|err| err.to_string())?;
    if out.len() > limit {
        return Err(format!("decoded body exceeds {limit} bytes"));
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::decode;

    #[test]
    fn decodes_gzip_deflate_and_br_within_the_limit() {
        let text = b"{\"password\":\"hunter2\"}".repeat(10);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&text).unwrap();
        let gz = gz.finish().unwrap();
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        zlib.write_all(&text).unwrap();
        let zlib = zlib.finish().unwrap();
        let mut br = Vec::new();
        brotli::BrotliCompress(&mut &text[..], &mut br, &Default::default()).unwrap();
        assert_eq!(&decode("br", &br, 1 << 20).unwrap()[..], &text[..]);
        assert_eq!(&decode("gzip", &gz, 1 << 20).unwrap()[..], &text[..]);
        assert_eq!(&decode("deflate", &zlib, 1 << 20).unwrap()[..], &text[..]);
        assert!(decode("compress", &gz, 1 << 20).is_err());
    }

    #[test]
    fn a_decompression_bomb_stops_at_the_limit() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&vec![b'a'; 8 << 20]).unwrap();
        let gz = gz.finish().unwrap();
        assert!(gz.len() < 64 << 10);
        let err = decode("gzip", &gz, 1 << 20).unwrap_err();
        assert!(err.contains("exceeds"), "{err}");
    }
}

/// Incremental decoding of a compressed stream (an SSE or JSON body), chunk by chunk, so
/// a compressed stream is inspected like a plain one without being buffered whole. What one
/// chunk may inflate to is bounded: a few compressed bytes can expand without limit.
pub enum StreamDecoder {
    Gzip(flate2::write::GzDecoder<Capped>),
    Deflate(flate2::write::ZlibDecoder<Capped>),
    Brotli(Box<brotli_decompressor::DecompressorWriter<Capped>>),
}

/// The decoder's output for one chunk, refusing to grow past `limit` bytes.
pub struct Capped {
    out: Vec<u8>,
    limit: usize,
}

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.out.len() + buf.len() > self.limit {
            return Err(std::io::Error::other(format!(
                "one compressed chunk decodes to more than {} bytes",
                self.limit
            )));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl StreamDecoder {
    /// `None` for an encoding the gateway cannot decode; `limit` bounds what one chunk
    /// may decode to.
    pub fn new(encoding: &str, limit: usize) -> Option<Self> {
        let out = Capped {
            out: Vec::new(),
            limit,
        };
        Some(match encoding {
            "gzip" | "x-gzip" => Self::Gzip(flate2::write::GzDecoder::new(out)),
            "deflate" => Self::Deflate(flate2::write::ZlibDecoder::new(out)),
            "br" => Self::Brotli(Box::new(brotli_decompressor::DecompressorWriter::new(
                out, 4096,
            ))),
            _ => return None,
        })
    }

    /// Decodes `chunk`, returning what it produced so far.
    pub fn push(&mut self, chunk: &[u8]) -> std::io::Result<Vec<u8>> {
        use std::io::Write as _;
        let out = match self {
            Self::Gzip(decoder) => {
                decoder.write_all(chunk)?;
                decoder.flush()?;
                decoder.get_mut()
            }
            Self::Deflate(decoder) => {
                decoder.write_all(chunk)?;
                decoder.flush()?;
                decoder.get_mut()
            }
            Self::Brotli(decoder) => {
                decoder.write_all(chunk)?;
                decoder.flush()?;
                decoder.get_mut()
            }
        };
        Ok(std::mem::take(&mut out.out))
    }
}

#[cfg(test)]
mod stream_tests {
    use std::io::Write as _;

    use super::StreamDecoder;

    #[test]
    fn decodes_a_gzip_stream_in_pieces() {
        let text = b"data: {\"a\":1}\n\n".repeat(100);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&text).unwrap();
        let gz = gz.finish().unwrap();
        let mut decoder = StreamDecoder::new("gzip", 1 << 20).unwrap();
        let mut out = Vec::new();
        for piece in gz.chunks(7) {
            out.extend(decoder.push(piece).unwrap());
        }
        assert_eq!(out, text);
        assert!(StreamDecoder::new("zstd", 1 << 20).is_none());
    }

    #[test]
    fn a_chunk_that_inflates_past_the_limit_is_an_error() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&vec![b'a'; 8 << 20]).unwrap();
        let gz = gz.finish().unwrap();
        let mut decoder = StreamDecoder::new("gzip", 1 << 20).unwrap();
        let err = gz
            .chunks(16 << 10)
            .map(|piece| decoder.push(piece))
            .find_map(Result::err)
            .expect("a bomb is refused");
        assert!(err.to_string().contains("more than 1048576 bytes"), "{err}");
    }
}
