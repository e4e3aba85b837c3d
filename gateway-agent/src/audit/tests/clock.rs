//! The wall clock jumping backwards during rotation (NTP stepping it, a VM restored from
//! a snapshot). The machine's clock cannot be moved from a test, so the writer's clock
//! seam is: files must keep unique names that sort in chain order (a file opened after
//! the jump names the newest start time already used, never an earlier one, and stays in
//! the newest day partition), nothing is overwritten, a restart while the clock is still
//! behind continues after the newest file, and `verify` finds the whole chain.

use std::sync::atomic::{AtomicI64, Ordering};

use super::*;

/// The fake wall clock, µs since the epoch (only this module's test sets it).
static NOW_US: AtomicI64 = AtomicI64::new(0);
const DAY: i64 = 86_400_000_000;
/// 2026-11-30T12:00:00Z.
const NOON: i64 = 1_796_040_000_000_000;

fn fake_now() -> i64 {
    NOW_US.load(Ordering::SeqCst)
}

fn writer_at(config: &AuditConfig, now: i64) -> AuditWriter {
    NOW_US.store(now, Ordering::SeqCst);
    let mut writer = AuditWriter::open(config).expect("open writer");
    writer.set_clock(fake_now);
    writer
}

fn append(writer: &mut AuditWriter, from: u64, count: u64) {
    for i in from..from + count {
        writer.append(sample(i)).expect("append");
    }
}

#[test]
fn a_clock_jumping_back_neither_overwrites_nor_misorders_files() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), 10);
    let mut writer = writer_at(&config, NOON);
    append(&mut writer, 0, 20);
    let before = closed_files(dir.path()).unwrap();
    assert_eq!(before.len(), 2);

    // Two days back, mid-file and across a rotation by size.
    NOW_US.store(NOON - 2 * DAY, Ordering::SeqCst);
    append(&mut writer, 20, 25);
    writer.rotate_if_due().unwrap();
    writer.close().unwrap();

    // A restart while the clock is still behind.
    let mut writer = writer_at(&config, NOON - 2 * DAY + 1);
    append(&mut writer, 45, 5);
    // The clock comes back, a day later than before: the day's rotation still happens.
    NOW_US.store(NOON + DAY, Ordering::SeqCst);
    writer.rotate_if_due().unwrap();
    append(&mut writer, 50, 3);
    writer.close().unwrap();

    let files = closed_files(dir.path()).unwrap();
    // 20 + 25 rows in files of 10, then 5, then 3: 2 + 3 + 1 + 1.
    assert_eq!(files.len(), 7, "{files:#?}");
    let seqs: Vec<u64> = files.iter().map(|f| f.seq).collect();
    assert_eq!(
        seqs,
        (0..7).collect::<Vec<_>>(),
        "chain order is creation order"
    );
    assert!(
        files.windows(2).all(|w| w[0].start <= w[1].start),
        "names never go back in time: {files:#?}"
    );
    let mut paths: Vec<_> = files.iter().map(|f| f.path.clone()).collect();
    paths.dedup();
    assert_eq!(paths.len(), 7, "a name was reused");
    let partitions: Vec<String> = files
        .iter()
        .map(|f| {
            let parent = f.path.parent().unwrap().file_name().unwrap();
            parent.to_string_lossy().into_owned()
        })
        .collect();
    assert!(
        partitions[..6].iter().all(|p| p == "dt=2026-11-30"),
        "no partition in the past: {partitions:?}"
    );
    assert_eq!(partitions[6], "dt=2026-12-01");
    // The files from before the jump are untouched.
    for file in &before {
        assert!(file.path.exists(), "{} vanished", file.path.display());
    }
    let report = verify(dir.path()).expect("the chain verifies after the jump");
    assert_eq!((report.files, report.rows), (7, 53));
    assert!(report.from_genesis());
}
