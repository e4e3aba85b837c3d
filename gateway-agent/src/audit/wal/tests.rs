//! Frame encoding and the torn-tail rule, byte by byte.

use super::*;
use crate::audit::record::{Direction, Kind};

fn row(i: u64) -> AuditRecord {
    let mut r = AuditRecord::new(format!("s{i}"), Direction::ServerToClient, Kind::Response);
    r.request_id = Some(i.to_string());
    r.time_us = 1_700_000_000_000_000 + i as i64;
    r.status = Some(200);
    r.rules = vec!["a".into(), "b".into()];
    r.principal.groups = vec!["eng".into()];
    r.principal.pid = Some(7);
    r.latency_us = Some(i);
    r
}

#[test]
fn rows_round_trip_without_hashes() {
    let mut buf = MAGIC.to_vec();
    for i in 1..=3 {
        encode_frame(&mut buf, i, &row(i));
    }
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("wal-1.log");
    fs::write(&path, &buf).unwrap();
    let mut got = Vec::new();
    let end = read_segment(&path, |seq, r| {
        got.push((seq, r));
        true
    })
    .unwrap();
    assert_eq!(end.torn, None);
    assert_eq!(end.valid_len, buf.len() as u64);
    assert_eq!(got.len(), 3);
    for (seq, r) in got {
        assert_eq!(r, row(seq));
    }
}

/// Every prefix of a log, and every single flipped byte, reads as whole frames only.
#[test]
fn a_torn_or_damaged_tail_is_never_misread() {
    let mut buf = MAGIC.to_vec();
    let mut ends = vec![buf.len()];
    for i in 1..=3 {
        encode_frame(&mut buf, i, &row(i));
        ends.push(buf.len());
    }
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("wal-1.log");
    for cut in MAGIC.len()..=buf.len() {
        fs::write(&path, &buf[..cut]).unwrap();
        let mut n = 0;
        let end = read_segment(&path, |seq, r| {
            n += 1;
            assert_eq!(r, row(seq));
            true
        })
        .unwrap();
        let whole = ends.iter().filter(|&&e| e <= cut).count() - 1;
        assert_eq!(n, whole, "cut at {cut}");
        assert_eq!(end.valid_len, ends[whole] as u64);
        assert_eq!(end.torn.is_some(), cut != ends[whole]);
    }
    for flip in ends[2]..ends[3] {
        let mut damaged = buf.clone();
        damaged[flip] ^= 0x40;
        fs::write(&path, &damaged).unwrap();
        let end = read_segment(&path, |_, _| true).unwrap();
        assert_eq!(end.valid_len, ends[2] as u64, "flip at {flip}");
        assert!(end.torn.is_some());
    }
}

/// A segment ends in preallocated zeros: every prefix of the frames, followed by zeros up
/// to a fixed size, reads as exactly the whole frames in that prefix; the zeros after the
/// last whole frame are a clean end, a partial frame before them is still a torn tail.
#[test]
fn a_preallocated_tail_is_a_clean_end_and_a_torn_frame_before_it_is_not() {
    let mut buf = MAGIC.to_vec();
    let mut ends = vec![buf.len()];
    for i in 1..=3 {
        encode_frame(&mut buf, i, &row(i));
        ends.push(buf.len());
    }
    let size = buf.len() + 4096;
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("wal-1.log");
    for cut in MAGIC.len()..=buf.len() {
        let mut padded = buf[..cut].to_vec();
        padded.resize(size, 0);
        fs::write(&path, &padded).unwrap();
        let mut n = 0;
        let end = read_segment(&path, |seq, r| {
            n += 1;
            assert_eq!(r, row(seq));
            true
        })
        .unwrap();
        let whole = ends.iter().filter(|&&e| e <= cut).count() - 1;
        assert_eq!(n, whole, "cut at {cut}");
        assert_eq!(end.valid_len, ends[whole] as u64, "cut at {cut}");
        // A cut whose missing bytes happen to be zeros is indistinguishable from (and as
        // harmless as) no write at all: only a nonzero byte past the end can be torn.
        let torn = padded[ends[whole]..].iter().any(|&b| b != 0);
        assert_eq!(end.torn.is_some(), torn, "cut at {cut}");
        if cut == ends[whole] {
            assert_eq!(end.torn, None, "whole frames then zeros, cut at {cut}");
        }
    }
    // Bytes written past the zeros (never by the writer, which appends in order) are
    // still reported, not skipped.
    let mut stray = buf.clone();
    stray.resize(size, 0);
    stray[size - 1] = 1;
    fs::write(&path, &stray).unwrap();
    let end = read_segment(&path, |_, _| true).unwrap();
    assert_eq!(end.valid_len, buf.len() as u64);
    assert!(end.torn.is_some());
}

/// The writer keeps zeroed room ahead of its frames, tops it up when groups outgrow it,
/// and every row reads back across segments: older segments' zero tails are clean ends,
/// not damage.
#[test]
fn writer_preallocates_and_every_row_reads_back_across_segments() {
    // Small segments (room = the whole segment), then segments larger than the room.
    for (segment_bytes, rows_per_group, groups) in [(8192, 5, 60), (2 << 20, 400, 60)] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("wal");
        let mut wal = WalWriter::create(&dir, 1, segment_bytes, vec![]).unwrap();
        let size = |path: &Path| fs::metadata(path).unwrap().len();
        let first = segments(&dir).unwrap()[0].path.clone();
        assert_eq!(size(&first), PREALLOC_BYTES.min(segment_bytes));
        let mut seq = 1;
        for group in 0..groups {
            let mut frames = Vec::new();
            let first_seq = seq;
            for _ in 0..rows_per_group - group % 3 {
                encode_frame(&mut frames, seq, &row(seq));
                seq += 1;
            }
            wal.write_group(&frames, first_seq).unwrap();
            let current = segments(&dir).unwrap().pop().unwrap().path;
            let end = read_segment(&current, |_, _| true).unwrap();
            assert_eq!(end.torn, None);
            assert_eq!(end.last_seq, Some(seq - 1));
            if end.valid_len < segment_bytes {
                assert!(size(&current) > end.valid_len, "no room kept ahead");
            }
        }
        let last = seq - 1;
        let segs = segments(&dir).unwrap();
        assert!(segs.len() >= 2, "{} segments", segs.len());
        assert!(size(&segs[0].path) > PREALLOC_BYTES.min(segment_bytes) / 2);
        let mut got = Vec::new();
        read_range(&dir, 1, last, |seq, r| {
            assert_eq!(r, row(seq));
            got.push(seq);
            Ok(())
        })
        .unwrap();
        assert_eq!(got, (1..=last).collect::<Vec<_>>());
    }
}
