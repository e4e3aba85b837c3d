//! Replays every committed fuzz corpus entry and crash reproducer (fuzz/corpus/<target>/,
//! fuzz/artifacts/<target>/) through the same checks the fuzz targets run, on stable, so
//! what fuzzing found stays fixed. `cargo xtask fuzz` grows the corpora.

#[path = "fuzz/checks.rs"]
mod checks;

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut replayed = 0;
    for dir in ["corpus", "artifacts"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| check(&data));
            assert!(outcome.is_ok(), "{target}: {} fails again", path.display());
            replayed += 1;
        }
    }
    assert!(
        replayed > 0,
        "no corpus for {target} under {}",
        root.display()
    );
}

#[test]
fn jsonrpc() {
    replay("jsonrpc", checks::jsonrpc);
}

#[test]
fn sse() {
    replay("sse", checks::sse);
}

#[test]
fn mask() {
    replay("mask", checks::mask);
}

#[test]
fn json_doc() {
    replay("json_doc", checks::json_doc);
}

#[test]
fn policy() {
    replay("policy", checks::policy);
}

#[test]
fn wal_frames() {
    replay("wal_frames", checks::wal_frames);
}

#[test]
fn tls_peek() {
    replay("tls_peek", checks::tls_peek);
}

/// Writes the WAL corpus seed (two real frames) once: `cargo test --test fuzz_regressions
/// -- --ignored write_wal_seed`.
#[test]
#[ignore = "generates fuzz/corpus/wal_frames/frames.bin"]
fn write_wal_seed() {
    use gateway_agent::audit::{
        AuditRecord, Direction, Kind,
        wal::{self, encode_frame},
    };
    let mut frames = Vec::new();
    let mut row = AuditRecord::new("s-1", Direction::ClientToServer, Kind::Request);
    row.method = Some("tools/call".into());
    row.payload = Some(r#"{"name":"echo"}"#.into());
    encode_frame(&mut frames, 1, &row);
    encode_frame(
        &mut frames,
        2,
        &AuditRecord::new("s-1", Direction::ServerToClient, Kind::Response),
    );
    let _ = wal::MAGIC;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/wal_frames/frames.bin");
    std::fs::write(path, frames).unwrap();
}
