//! Durable audit rows per second, on the real disk under the system temp directory (set
//! `TMPDIR` to measure another): the sink in `sync` mode with 1 and 32 concurrent
//! recorders (32 share fsyncs: group commit), `interval` mode, and as a baseline the bare
//! `AuditWriter::append` (Parquet encoding, no WAL, no fsync per row). `wal_commit/*`
//! times one WAL commit (one row, one flush) on a preallocated segment against the same
//! frames appended to a growing file (what every commit paid before preallocation), so
//! the two are compared in one run on the same disk load.
//!
//! `cargo bench -p gateway-agent --bench audit -- --warm-up-time 1 --measurement-time 5`

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gateway_agent::audit::{
    AuditConfig, AuditRecord, AuditSink, AuditWriter, Direction, Durability, Kind,
    wal::{self, WalWriter},
};

/// Rows per measured iteration.
const ROWS: u64 = 256;

fn row(i: u64) -> AuditRecord {
    let mut r = AuditRecord::new(
        format!("session-{}", i % 8),
        Direction::ClientToServer,
        Kind::Request,
    );
    r.request_id = Some(i.to_string());
    r.transport = "streamable_http".into();
    r.server_addr = "10.0.0.5:8000".into();
    r.method = Some("tools/call".into());
    r.tool = Some(format!("tool_{}", i % 4));
    r.payload = Some(format!(
        r#"{{"arguments":{{"n":{i},"q":"select * from t"}}}}"#
    ));
    r.decision = Some("allow".into());
    r.rules = vec!["allow-read".into()];
    r.latency_us = Some(120);
    r.bytes = 180;
    r
}

fn config(dir: &std::path::Path, durability: Durability) -> AuditConfig {
    AuditConfig {
        dir: dir.to_owned(),
        durability,
        interval_ms: 50,
        ..AuditConfig::default()
    }
}

fn sink_rows(c: &mut Criterion, name: &str, durability: Durability, recorders: u64) {
    let tmp = tempfile::tempdir().unwrap();
    let (sink, _) = AuditSink::open(&config(tmp.path(), durability)).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("audit");
    group.throughput(Throughput::Elements(ROWS));
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            rt.block_on(async {
                let tasks: Vec<_> = (0..recorders)
                    .map(|t| {
                        let sink = sink.clone();
                        tokio::spawn(async move {
                            for i in 0..iters * ROWS / recorders {
                                sink.record(vec![row(t << 32 | i)]).await.unwrap();
                            }
                        })
                    })
                    .collect();
                for task in tasks {
                    task.await.unwrap();
                }
            });
            start.elapsed()
        })
    });
    group.finish();
    sink.close().unwrap();
}

/// One row per commit, as a c=1 tools/call's request or response row is.
fn wal_commit(c: &mut Criterion) {
    let mut group = c.benchmark_group("wal_commit");
    group.throughput(Throughput::Elements(1));
    let tmp = tempfile::tempdir().unwrap();
    let mut frames = Vec::new();
    {
        let dir = tmp.path().join("prealloc");
        let mut writer = WalWriter::create(&dir, 1, 64 << 20, vec![]).unwrap();
        let mut seq = 0;
        group.bench_function("preallocated", |b| {
            b.iter(|| {
                seq += 1;
                frames.clear();
                wal::encode_frame(&mut frames, seq, &row(seq));
                writer.write_group(&frames, seq).unwrap();
            })
        });
    }
    {
        // The commit before preallocation: write at the end of the file, fdatasync, which
        // must then also flush the new size (a journal commit on ext4/XFS).
        use std::io::Write;
        let mut file = std::fs::File::create(tmp.path().join("growing.log")).unwrap();
        let mut seq = 0;
        group.bench_function("growing_file", |b| {
            b.iter(|| {
                seq += 1;
                frames.clear();
                wal::encode_frame(&mut frames, seq, &row(seq));
                file.write_all(&frames).unwrap();
                file.sync_data().unwrap();
            })
        });
    }
    group.finish();
}

fn bench(c: &mut Criterion) {
    wal_commit(c);
    {
        let tmp = tempfile::tempdir().unwrap();
        let mut writer = AuditWriter::open(&config(tmp.path(), Durability::Sync)).unwrap();
        let mut group = c.benchmark_group("audit");
        group.throughput(Throughput::Elements(ROWS));
        let mut n = 0;
        group.bench_function("writer_append_no_wal", |b| {
            b.iter(|| {
                for _ in 0..ROWS {
                    n += 1;
                    writer.append(row(n)).unwrap();
                }
            })
        });
        group.finish();
        writer.close().unwrap();
    }
    sink_rows(c, "sink_sync_1_recorder", Durability::Sync, 1);
    sink_rows(c, "sink_sync_32_recorders", Durability::Sync, 32);
    sink_rows(c, "sink_interval_1_recorder", Durability::Interval, 1);
    sink_rows(c, "sink_interval_32_recorders", Durability::Interval, 32);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    targets = bench
}
criterion_main!(benches);
