use bytes::Bytes;

use super::*;

/// Every piece from feeding `chunks` in order, then `finish`.
fn frame(chunks: &[&[u8]]) -> Result<Vec<Piece>, JsonFrameError> {
    let mut framer = JsonFramer::new(1 << 20);
    let mut pieces = Vec::new();
    for chunk in chunks {
        framer.push(Bytes::copy_from_slice(chunk), &mut pieces)?;
    }
    framer.finish()?;
    Ok(pieces)
}

fn values(pieces: &[Piece]) -> Vec<String> {
    pieces
        .iter()
        .filter_map(|p| match p {
            Piece::Value(v) => Some(String::from_utf8(v.to_vec()).unwrap()),
            Piece::Gap(_) => None,
        })
        .collect()
}

fn joined(pieces: &[Piece]) -> Vec<u8> {
    pieces
        .iter()
        .flat_map(|p| match p {
            Piece::Value(b) | Piece::Gap(b) => b.to_vec(),
        })
        .collect()
}

#[test]
fn newline_delimited_values_and_the_gaps_between_them() {
    let text = b"{\"id\":1}\n{\"method\":\"a\"}\r\n[{\"x\":[1,2]}]\n";
    let pieces = frame(&[text]).unwrap();
    assert_eq!(
        values(&pieces),
        ["{\"id\":1}", "{\"method\":\"a\"}", "[{\"x\":[1,2]}]"]
    );
    assert_eq!(pieces[1], Piece::Gap(Bytes::from_static(b"\n")));
    assert_eq!(joined(&pieces), text);
}

#[test]
fn concatenated_values_and_any_whitespace_between() {
    let text = b"  {\"a\":1}{\"b\":2} \t\r\n [3]";
    let pieces = frame(&[text]).unwrap();
    assert_eq!(values(&pieces), ["{\"a\":1}", "{\"b\":2}", "[3]"]);
    assert_eq!(joined(&pieces), text);
}

#[test]
fn brackets_and_quotes_inside_strings_do_not_end_a_value() {
    let text = br#"{"s":"}]{[\"","t":"back\\","u":"\\\"}"}{"next":true}"#;
    let pieces = frame(&[text]).unwrap();
    assert_eq!(
        values(&pieces),
        [
            r#"{"s":"}]{[\"","t":"back\\","u":"\\\"}"}"#,
            r#"{"next":true}"#
        ]
    );
}

#[test]
fn a_split_anywhere_gives_the_same_values() {
    // Escapes, a multi-byte character and an emoji, so splits fall inside all of them.
    let text = "{\"jsonrpc\":\"2.0\",\"method\":\"n\",\"params\":{\"t\":\"é \\\"}\\\\ 🔑 ghp_x\"}}\n{\"id\":2,\"result\":[]}\n";
    let whole = frame(&[text.as_bytes()]).unwrap();
    let bytes = text.as_bytes();
    for split in 1..bytes.len() {
        for second in split..bytes.len() {
            let pieces = frame(&[&bytes[..split], &bytes[split..second], &bytes[second..]])
                .unwrap_or_else(|err| panic!("split at {split}/{second}: {err}"));
            assert_eq!(values(&pieces), values(&whole), "split at {split}/{second}");
            assert_eq!(joined(&pieces), bytes, "split at {split}/{second}");
        }
    }
    let one_by_one: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(values(&frame(&one_by_one).unwrap()), values(&whole));
}

#[test]
fn a_value_completes_as_soon_as_its_last_byte_arrives() {
    let mut framer = JsonFramer::new(1 << 20);
    let mut pieces = Vec::new();
    framer
        .push(Bytes::from_static(b"{\"a\":"), &mut pieces)
        .unwrap();
    assert_eq!(pieces, []);
    framer
        .push(Bytes::from_static(b"1}\n{"), &mut pieces)
        .unwrap();
    assert_eq!(
        pieces,
        [
            Piece::Value(Bytes::from_static(b"{\"a\":1}")),
            Piece::Gap(Bytes::from_static(b"\n"))
        ]
    );
    assert_eq!(framer.finish(), Err(JsonFrameError::Truncated { bytes: 1 }));
}

#[test]
fn a_value_over_the_limit_is_an_error_whatever_the_chunking() {
    let mut framer = JsonFramer::new(16);
    let mut pieces = Vec::new();
    framer
        .push(Bytes::from_static(b"{\"ok\":1}\n{\"long\":"), &mut pieces)
        .unwrap();
    let err = framer
        .push(Bytes::from_static(b"\"0123456789\"}"), &mut pieces)
        .unwrap_err();
    assert_eq!(err, JsonFrameError::ValueTooLarge { limit: 16 });
    assert!(err.to_string().contains("16 bytes"), "{err}");
    assert_eq!(values(&pieces), ["{\"ok\":1}"]);
    // Exactly at the limit is fine.
    let mut framer = JsonFramer::new(8);
    framer
        .push(Bytes::from_static(b"{\"a\":12}"), &mut pieces)
        .unwrap();
    assert_eq!(pieces.len(), 3);
}

#[test]
fn what_completed_before_garbage_in_the_same_chunk_is_kept() {
    let mut framer = JsonFramer::new(1 << 20);
    let mut pieces = Vec::new();
    let err = framer
        .push(Bytes::from_static(b"{\"a\":1}\n<html>"), &mut pieces)
        .unwrap_err();
    assert_eq!(
        err,
        JsonFrameError::Unexpected {
            byte: b'<',
            offset: 8
        }
    );
    assert_eq!(joined(&pieces), b"{\"a\":1}\n");
}

#[test]
fn garbage_is_refused() {
    for (text, byte, offset) in [
        (&b"<html>"[..], b'<', 0),
        (b"{\"a\":1}\n42", b'4', 8),
        (b"\"a string\"", b'"', 0),
        (b"{\"a\":1]", b']', 6),
        (b" }", b'}', 1),
        (b"[1}", b'}', 2),
    ] {
        let err = frame(&[text]).unwrap_err();
        assert_eq!(
            err,
            JsonFrameError::Unexpected { byte, offset },
            "{:?}",
            String::from_utf8_lossy(text)
        );
    }
}

#[test]
fn an_empty_or_blank_stream_is_fine() {
    assert_eq!(frame(&[]).unwrap(), []);
    assert_eq!(
        values(&frame(&[b"\n\n", b" "]).unwrap()),
        Vec::<String>::new()
    );
}
