//! The sink on real files: group commit, recovery after a real SIGKILL, a torn WAL tail,
//! an open `.tmp` at crash time, and a full disk (a tiny tmpfs).

use std::{
    collections::BTreeSet,
    fs::File,
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, Stdio},
};

use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::*;
use crate::audit::{
    Direction, Kind, RotationConfig, record, verify,
    wal::{self, WalWriter},
    writer::closed_files,
};

fn row(i: u64, payload_bytes: usize) -> AuditRecord {
    let mut r = AuditRecord::new("session", Direction::ClientToServer, Kind::Request);
    r.request_id = Some(i.to_string());
    r.method = Some("tools/call".into());
    r.server_addr = "10.0.0.5:8000".into();
    r.payload = Some("x".repeat(payload_bytes));
    r
}

fn config(dir: &Path, max_rows: u64) -> AuditConfig {
    AuditConfig {
        dir: dir.to_owned(),
        rotation: RotationConfig {
            max_rows,
            ..RotationConfig::default()
        },
        ..AuditConfig::default()
    }
}

/// Every `request_id` in the closed files, in chain order.
fn ids(dir: &Path) -> Vec<u64> {
    let mut out = Vec::new();
    for file in closed_files(dir).unwrap() {
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&file.path).unwrap())
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            for r in record::from_batch(&batch.unwrap()).unwrap() {
                out.push(r.request_id.unwrap().parse().unwrap());
            }
        }
    }
    out
}

/// All of `expected`, each once, and a chain `verify` accepts.
fn assert_trail(dir: &Path, expected: &BTreeSet<u64>) {
    let got = ids(dir);
    let unique: BTreeSet<u64> = got.iter().copied().collect();
    assert_eq!(got.len(), unique.len(), "duplicate rows: {got:?}");
    assert_eq!(&unique, expected);
    let report = verify(dir).unwrap_or_else(|e| panic!("verify: {e}"));
    assert_eq!(report.rows, expected.len() as u64);
    assert!(
        wal::segments(&wal::wal_dir(dir)).unwrap().is_empty(),
        "close retires the WAL"
    );
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn concurrent_records_share_fsyncs_and_all_arrive() {
    let tmp = tempfile::tempdir().unwrap();
    let (sink, recovered) = AuditSink::open(&config(tmp.path(), 100)).unwrap();
    assert_eq!(recovered, 0);
    runtime().block_on(async {
        let tasks: Vec<_> = (0..32u64)
            .map(|t| {
                let sink = sink.clone();
                tokio::spawn(async move {
                    for i in 0..50u64 {
                        sink.record(vec![row(t * 1000 + i, 40)]).await.unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    sink.close().unwrap();
    let expected = (0..32u64)
        .flat_map(|t| (0..50).map(move |i| t * 1000 + i))
        .collect();
    assert_trail(tmp.path(), &expected);
}

#[test]
fn interval_mode_keeps_every_row_through_close() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path(), 1000);
    cfg.durability = Durability::Interval;
    cfg.interval_ms = 5;
    let (sink, _) = AuditSink::open(&cfg).unwrap();
    runtime().block_on(async {
        for i in 0..300 {
            sink.record(vec![row(i, 10)]).await.unwrap();
        }
    });
    sink.close().unwrap();
    assert_trail(tmp.path(), &(0..300).collect());
}

/// In interval mode rows wait in the queue while a flush is pending; a burst that fills
/// half of it wakes the WAL thread, so callers never wait out the interval for a slot
/// (with a minute's interval and no wake-up, the 4097th record would wait that minute),
/// and close does not wait for the interval either.
#[test]
fn interval_mode_takes_a_burst_larger_than_the_queue_without_waiting_for_the_interval() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path(), 100_000);
    cfg.durability = Durability::Interval;
    cfg.interval_ms = 60_000;
    let (sink, _) = AuditSink::open(&cfg).unwrap();
    let burst = 3 * QUEUE_REQUESTS as u64;
    runtime().block_on(async {
        let recorded = async {
            for i in 0..burst {
                sink.record(vec![row(i, 10)]).await.unwrap();
            }
        };
        tokio::time::timeout(Duration::from_secs(30), recorded)
            .await
            .expect("a full queue woke the WAL thread before the interval");
    });
    sink.close().unwrap();
    assert_trail(tmp.path(), &(0..burst).collect());
}

/// An enqueued row (a connection's `open`) is on disk, ahead of it, by the time the
/// `record` that follows it resolves: it needs no flush of its own.
#[test]
fn an_enqueued_row_is_durable_when_the_next_record_resolves() {
    let tmp = tempfile::tempdir().unwrap();
    let (sink, _) = AuditSink::open(&config(tmp.path(), 1000)).unwrap();
    let wal_dir = wal::wal_dir(tmp.path());
    let logged = || {
        let mut ids = Vec::new();
        for seg in wal::segments(&wal_dir).unwrap() {
            wal::read_segment(&seg.path, |_, r| {
                ids.push(r.request_id.unwrap().parse::<u64>().unwrap());
                true
            })
            .unwrap();
        }
        ids
    };
    let rt = runtime();
    for i in 0..20u64 {
        rt.block_on(sink.enqueue(vec![row(2 * i, 10)])).unwrap();
        rt.block_on(sink.record(vec![row(2 * i + 1, 10)])).unwrap();
        // Read straight from the log (the Parquet thread may not have seen them yet).
        let on_disk = logged();
        assert_eq!(
            on_disk[on_disk.len() - 2..],
            [2 * i, 2 * i + 1],
            "round {i}"
        );
    }
    sink.close().unwrap();
    assert_trail(tmp.path(), &(0..40).collect());
}

const CHILD_ENV: &str = "GATEWAY_AUDIT_CRASH_CHILD_DIR";
const CHILD_ROWS: u64 = 50;

/// Runs only as the child of `sigkill_after_record_loses_nothing`: records rows, says
/// so, and waits to be killed.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (sink, _) = AuditSink::open(&config(Path::new(&dir), 7)).unwrap();
    runtime().block_on(async {
        for i in 0..CHILD_ROWS {
            sink.record(vec![row(i, 40)]).await.unwrap();
        }
    });
    println!("recorded");
    std::thread::sleep(Duration::from_secs(60));
    panic!("the parent should have killed this process");
}

#[test]
fn sigkill_after_record_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "audit::sink::tests::crash_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, tmp.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let said = stdout
        .lines()
        .map_while(Result::ok)
        .any(|line| line.contains("recorded"));
    // SIGKILL: no destructor, no close, no flush.
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(said, "the child never reported its rows recorded");

    let closed_before = ids(tmp.path()).len() as u64;
    let (sink, recovered) = AuditSink::open(&config(tmp.path(), 7)).unwrap();
    assert_eq!(recovered, CHILD_ROWS - closed_before);
    assert!(recovered > 0, "rows 49.. were in the open file at the kill");
    sink.close().unwrap();
    assert_trail(tmp.path(), &(0..CHILD_ROWS).collect());
}

/// Writes rows `1..=n` straight into a WAL segment, as a sink would before a crash.
fn wal_with_rows(dir: &Path, n: u64) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let wal_dir = wal::wal_dir(dir);
    let mut wal = WalWriter::create(&wal_dir, 1, 64 << 20, vec![]).unwrap();
    let mut frames = Vec::new();
    for seq in 1..=n {
        wal::encode_frame(&mut frames, seq, &row(seq, 30));
    }
    wal.write_group(&frames, 1).unwrap();
    wal::segments(&wal_dir).unwrap().remove(0).path
}

#[test]
fn torn_wal_tail_is_cut_and_the_rest_recovered() {
    let tmp = tempfile::tempdir().unwrap();
    let segment = wal_with_rows(tmp.path(), 10);
    // Half of an eleventh frame: what a crash in the middle of a write leaves.
    let mut frame = Vec::new();
    wal::encode_frame(&mut frame, 11, &row(11, 30));
    // The segment is preallocated: the half frame lands on the zeros right after row 10.
    let valid = wal::read_segment(&segment, |_, _| true).unwrap().valid_len;
    assert!(File::open(&segment).unwrap().metadata().unwrap().len() > valid + frame.len() as u64);
    let file = File::options().write(true).open(&segment).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, &frame[..frame.len() / 2], valid).unwrap();
    drop(file);

    let (sink, recovered) = AuditSink::open(&config(tmp.path(), 1000)).unwrap();
    assert_eq!(recovered, 10);
    // New rows continue the sequence after the cut.
    runtime().block_on(sink.record(vec![row(11, 30)])).unwrap();
    sink.close().unwrap();
    assert_trail(tmp.path(), &(1..=11).collect());
}

#[test]
fn crash_with_open_parquet_file_comes_back_from_the_wal() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), 1000);
    wal_with_rows(tmp.path(), 20);
    // Before the crash the Parquet thread had closed a file with rows 1..=10 and was
    // writing 11..=15 into an open `.tmp`.
    let mut writer = AuditWriter::open(&cfg).unwrap();
    for seq in 1..=15 {
        writer.append_logged(row(seq, 30), seq).unwrap();
        if seq == 10 {
            writer.finish_file().unwrap();
        }
    }
    writer.abandon();
    let tmp_files = |dir: &Path| {
        walk(dir)
            .into_iter()
            .filter(|p| p.to_string_lossy().ends_with(".parquet.tmp"))
            .count()
    };
    assert_eq!(tmp_files(tmp.path()), 1);

    let (sink, recovered) = AuditSink::open(&cfg).unwrap();
    assert_eq!(recovered, 10, "rows 11..=20: not in a closed file");
    assert_eq!(tmp_files(tmp.path()), 0);
    sink.close().unwrap();
    assert_trail(tmp.path(), &(1..=20).collect());
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// A tmpfs of `size` mounted on a fresh temporary directory, unmounted on drop (also when
/// the test panics).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let options = format!("size={size}");
        match nix::mount::mount(
            Some("tmpfs"),
            dir.path(),
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some(options.as_str()),
        ) {
            Ok(()) => Some(Self { dir }),
            Err(e) => {
                eprintln!("skipped: cannot mount a tmpfs ({e}); needs root");
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(self.dir.path(), nix::mount::MntFlags::MNT_DETACH);
    }
}

#[test]
fn full_disk_refuses_then_recovers_when_space_is_freed() {
    let Some(fs) = Tmpfs::mount("2m") else { return };
    let dir = fs.dir.path().join("audit");
    let (sink, _) = AuditSink::open(&config(&dir, 20)).unwrap();
    // Leave little room, then fill it with audit rows.
    let ballast = fs.dir.path().join("ballast");
    let _ = std::fs::write(&ballast, vec![0u8; 1536 << 10]);
    let rt = runtime();
    let mut accepted = BTreeSet::new();
    let mut error = None;
    for i in 0..10_000u64 {
        match rt.block_on(sink.record(vec![row(i, 8 << 10)])) {
            Ok(()) => {
                accepted.insert(i);
            }
            Err(e) => {
                error = Some((i, e.to_string()));
                break;
            }
        }
    }
    let (failed_at, message) = error.expect("a 2 MiB disk fills up");
    assert!(
        message.contains("No space left on device") && message.contains(&*dir.to_string_lossy()),
        "{message}"
    );
    // Still full: still refused, never accepted and dropped.
    assert!(
        rt.block_on(sink.record(vec![row(failed_at, 8 << 10)]))
            .is_err()
    );
    assert_wal_whole(&dir);

    std::fs::remove_file(&ballast).unwrap();
    for i in failed_at..failed_at + 30 {
        rt.block_on(sink.record(vec![row(i, 8 << 10)]))
            .unwrap_or_else(|e| panic!("after freeing space: {e}"));
        accepted.insert(i);
    }
    assert_wal_whole(&dir);
    sink.close().unwrap();
    assert_trail(&dir, &accepted);
}

/// Every WAL segment reads to its last byte: a failed write left no partial frame that
/// would end the log early for the rows written after it.
fn assert_wal_whole(dir: &Path) {
    for seg in wal::segments(&wal::wal_dir(dir)).unwrap() {
        let end = wal::read_segment(&seg.path, |_, _| true).unwrap();
        // Torn is `None` only when everything after the last good frame is zeros
        // (preallocated room), never a partial frame.
        assert_eq!(end.torn, None, "{}", seg.path.display());
    }
}
