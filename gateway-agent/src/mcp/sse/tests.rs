use super::*;

fn parse_all(chunks: &[&[u8]]) -> Vec<RawEvent> {
    let mut parser = SseParser::new(1 << 20);
    chunks
        .iter()
        .flat_map(|chunk| parser.push(chunk).unwrap())
        .collect()
}

#[test]
fn splits_events_and_joins_data_lines() {
    let events = parse_all(&[b"id: 1\nevent: message\ndata: {\"a\":\ndata: 1}\n\n: keepalive\n\n"]);
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].data.as_deref(), Some("{\"a\":\n1}"));
    assert_eq!(events[0].event.as_deref(), Some("message"));
    assert_eq!(
        &events[0].raw[..],
        b"id: 1\nevent: message\ndata: {\"a\":\ndata: 1}\n\n"
    );
    assert_eq!(events[1].data, None);
    assert_eq!(&events[1].raw[..], b": keepalive\n\n");
}

#[test]
fn an_event_split_across_chunks_arrives_whole() {
    let text = b"data: secret-part-one-part-two\n\n";
    for split in 1..text.len() {
        let events = parse_all(&[&text[..split], &text[split..]]);
        assert_eq!(events.len(), 1, "split at {split}");
        assert_eq!(events[0].data.as_deref(), Some("secret-part-one-part-two"));
    }
}

#[test]
fn crlf_and_lone_cr_line_endings() {
    let events = parse_all(&[b"data: a\r\n\r\ndata: b\r\rdata: c\n\n"]);
    let data: Vec<_> = events.iter().map(|e| e.data.clone().unwrap()).collect();
    assert_eq!(data, ["a", "b", "c"]);
    // A CR at a chunk boundary may be the first half of CRLF: the event is released at
    // the CR, and the LF that follows passes on by itself (same bytes, no new event).
    let events = parse_all(&[b"data: a\r", b"\n\r", b"\n"]);
    assert_eq!(events.len(), 2);
    assert_eq!(&events[0].raw[..], b"data: a\r\n\r");
    assert_eq!(events[0].data.as_deref(), Some("a"));
    assert_eq!((&events[1].raw[..], &events[1].data), (&b"\n"[..], &None));
}

#[test]
fn a_lone_cr_event_is_released_without_waiting_for_more_bytes() {
    let mut parser = SseParser::new(1 << 20);
    let events = parser.push(b"data: {\"a\":1}\rid: 2\r\r").unwrap();
    assert_eq!(events.len(), 1, "held back until the next chunk");
    assert_eq!(events[0].data.as_deref(), Some("{\"a\":1}"));
    // The next event starts with neither CR nor LF: nothing is swallowed.
    let events = parser.push(b"data: b\r\r").unwrap();
    assert_eq!(&events[0].raw[..], b"data: b\r\r");
    assert!(parser.finish().is_empty());
}

#[test]
fn priming_event_and_retry_are_kept() {
    let events = parse_all(&[b"id: 0\nretry: 3000\ndata:\n\n"]);
    assert_eq!(events[0].data.as_deref(), Some(""));
    assert_eq!(&events[0].raw[..], b"id: 0\nretry: 3000\ndata:\n\n");
}

#[test]
fn with_data_rebuilds_in_place() {
    let events = parse_all(&[b"id: 7\ndata: old\ndata: lines\nevent: message\n\n"]);
    let rebuilt = events[0].with_data("new\nvalue");
    assert_eq!(
        &rebuilt[..],
        b"id: 7\ndata: new\ndata: value\nevent: message\n\n"
    );
    let reparsed = parse_all(&[&rebuilt]);
    assert_eq!(reparsed[0].data.as_deref(), Some("new\nvalue"));
}

#[test]
fn with_data_keeps_the_servers_line_endings_and_field_style() {
    // sse-starlette (the Python SDK's) writes CRLF; some servers omit the space.
    for (raw, expected) in [
        (
            &b"event: message\r\ndata: {\"a\":1}\r\n\r\n"[..],
            &b"event: message\r\ndata: {\"a\":2}\r\n\r\n"[..],
        ),
        (b"data:{\"a\":1}\n\n", b"data:{\"a\":2}\n\n"),
        (b"id:1\rdata: {\"a\":1}\r\r", b"id:1\rdata: {\"a\":2}\r\r"),
    ] {
        let events = parse_all(&[raw]);
        assert_eq!(&events[0].with_data("{\"a\":2}")[..], expected);
    }
}

#[test]
fn a_never_ending_line_is_cut_at_the_limit() {
    let mut parser = SseParser::new(1024);
    let mut result = Ok(Vec::new());
    for _ in 0..10 {
        result = parser.push(&[b'x'; 200]);
        if result.is_err() {
            break;
        }
    }
    assert_eq!(result, Err(SseError::EventTooLarge { limit: 1024 }));
}

#[test]
fn unfinished_tail_is_returned_on_finish() {
    let mut parser = SseParser::new(1024);
    assert!(parser.push(b"data: complete\n\ndata: cut").unwrap().len() == 1);
    assert_eq!(&parser.finish()[..], b"data: cut");
}
