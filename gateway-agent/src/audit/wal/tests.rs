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
