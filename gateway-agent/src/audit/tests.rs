//! Writer, chain and verifier together, on real files in a temporary directory; the
//! tamper matrix is in `tests/tamper.rs`.

use std::{
    fs::{self, File},
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use super::{
    chain::{self, GENESIS},
    record::{self, AuditRecord, Direction, Kind, PrincipalColumns},
    writer::{self, closed_files, delete_older_than},
    *,
};
use crate::{
    principal::{Principal, TokenClaims},
    process::ProcessIdentity,
};

mod clock;
mod row_groups;
mod tamper;

pub(crate) fn sample_row(i: u64) -> AuditRecord {
    sample(i)
}

fn sample(i: u64) -> AuditRecord {
    let mut r = AuditRecord::new(
        format!("session-{}", i % 3),
        Direction::ClientToServer,
        Kind::Request,
    );
    r.time_us = 1_700_000_000_000_000 + i as i64;
    r.request_id = Some(i.to_string());
    r.transport = "streamable_http".into();
    r.protocol_version = Some("2025-06-18".into());
    r.server_name = i.is_multiple_of(2).then(|| "vault".into());
    r.server_addr = "10.0.0.5:8000".into();
    r.method = Some("tools/call".into());
    r.tool = Some(format!("tool_{}", i % 4));
    r.payload = Some(format!(
        r#"{{"arguments":{{"n":{i},"password":"[MASKED:json_key]"}}}}"#
    ));
    r.status = Some(200);
    r.error_code = i.is_multiple_of(5).then_some(-32010);
    r.decision = Some(if i.is_multiple_of(5) { "deny" } else { "allow" }.into());
    r.rules = vec![format!("rule-{}", i % 2)];
    r.masked_count = (i % 3) as u32;
    r.mask_rules = vec!["json_key".into(); (i % 3) as usize];
    r.latency_us = Some(100 + i);
    r.bytes = 200 + i;
    r.principal = PrincipalColumns {
        sub: Some("alice".into()),
        groups: vec!["eng".into(), "ops".into()],
        pid: Some(4242),
        uid: Some(1000),
        comm: Some("python3".into()),
        ..PrincipalColumns::default()
    };
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

fn write(config: &AuditConfig, from: u64, count: u64) -> [u8; 32] {
    let mut writer = AuditWriter::open(config).expect("open writer");
    let mut last = writer.last_hash();
    for i in from..from + count {
        last = writer.append(sample(i)).expect("append");
    }
    writer.close().expect("close");
    last
}

fn paths(dir: &Path) -> Vec<PathBuf> {
    closed_files(dir)
        .unwrap()
        .into_iter()
        .map(|f| f.path)
        .collect()
}

/// Three closed files of 10 rows each.
fn three_files() -> (tempfile::TempDir, Vec<PathBuf>) {
    let dir = tempfile::tempdir().unwrap();
    write(&config(dir.path(), 10), 0, 30);
    let files = paths(dir.path());
    assert_eq!(files.len(), 3);
    verify(dir.path()).expect("untampered trail verifies");
    (dir, files)
}

#[test]
fn arrow_round_trip_keeps_every_field() {
    let mut rows: Vec<_> = (0..5).map(sample).collect();
    let mut prev = GENESIS;
    for row in &mut rows {
        chain::seal(row, prev);
        prev = row.hash;
    }
    let back = record::from_batch(&record::to_batch(&rows).unwrap()).unwrap();
    assert_eq!(back, rows);
}

#[test]
fn hash_covers_nulls_lists_and_prev_hash() {
    let base = sample(1);
    let hash = |r: &AuditRecord| chain::row_hash(r);
    let mut empty_tool = base.clone();
    empty_tool.tool = Some(String::new());
    let mut no_tool = base.clone();
    no_tool.tool = None;
    assert_ne!(hash(&empty_tool), hash(&no_tool), "null and empty differ");
    // Moving a byte between neighbouring fields must change the hash (length prefixes).
    let mut a = base.clone();
    (a.host, a.session) = ("ab".into(), "c".into());
    let mut b = base.clone();
    (b.host, b.session) = ("a".into(), "bc".into());
    assert_ne!(hash(&a), hash(&b));
    let mut c = base.clone();
    c.rules = vec!["x,y".into()];
    let mut d = base.clone();
    d.rules = vec!["x".into(), "y".into()];
    assert_ne!(hash(&c), hash(&d));
    let mut e = base.clone();
    e.prev_hash = [1; 32];
    assert_ne!(hash(&e), hash(&base));
    let mut f = base.clone();
    f.hash = [9; 32];
    assert_eq!(hash(&f), hash(&base), "hash ignores its own column");
}

#[test]
fn principal_columns_come_from_principal() {
    let principal = Principal {
        process: Some(std::sync::Arc::new(ProcessIdentity {
            pid: 7,
            tid: 7,
            uid: 1000,
            gid: 1000,
            comm: "curl".into(),
            cgroup_id: 1,
            user: Some("alice".into()),
            exe: Some("/usr/bin/curl".into()),
            cgroup: Some("/user.slice".into()),
            unit: None,
            container: None,
        })),
        token: Some(TokenClaims {
            issuer: "https://idp".into(),
            subject: "u-1".into(),
            email: Some("a@example.com".into()),
            groups: vec!["eng".into()],
            ..TokenClaims::default()
        }),
    };
    let p = PrincipalColumns::from_principal(&principal);
    assert_eq!(p.sub.as_deref(), Some("u-1"));
    assert_eq!(p.issuer.as_deref(), Some("https://idp"));
    assert_eq!(p.email.as_deref(), Some("a@example.com"));
    assert_eq!(p.groups, ["eng"]);
    assert_eq!((p.pid, p.uid), (Some(7), Some(1000)));
    assert_eq!(p.user.as_deref(), Some("alice"));
    assert_eq!(p.exe.as_deref(), Some("/usr/bin/curl"));
    assert_eq!(p.cgroup.as_deref(), Some("/user.slice"));
    assert_eq!(
        PrincipalColumns::from_principal(&Principal::default()),
        PrincipalColumns::default()
    );
}

#[test]
fn rotates_and_chain_continues_across_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), 10);
    let last = write(&config, 0, 25);
    let files = closed_files(dir.path()).unwrap();
    assert_eq!(files.len(), 3);
    for file in &files {
        let partition = file
            .path
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(partition.starts_with("dt=20"), "{partition}");
    }
    let report = verify(dir.path()).unwrap();
    assert_eq!((report.files, report.rows, report.last_hash), (3, 25, last));
    assert!(report.from_genesis());
    assert!(report.signed, "the writer created the key pair");
    let shown = report.to_string();
    assert!(
        shown.starts_with("audit trail intact: 3 files, 25 rows, last hash "),
        "{shown}"
    );
    assert!(shown.ends_with(&chain::to_hex(&last)), "{shown}");

    // A new writer (an agent restart) links its first row to the last closed one.
    assert_eq!(AuditWriter::open(&config).unwrap().last_hash(), last);
    let last = write(&config, 25, 7);
    let report = verify(dir.path()).unwrap();
    assert_eq!((report.files, report.rows, report.last_hash), (4, 32, last));
    let seqs: Vec<u64> = closed_files(dir.path())
        .unwrap()
        .iter()
        .map(|f| f.seq)
        .collect();
    assert_eq!(seqs, [0, 1, 2, 3]);
}

#[test]
fn rotates_by_bytes_and_age() {
    let dir = tempfile::tempdir().unwrap();
    let mut by_bytes = config(dir.path(), u64::MAX);
    by_bytes.rotation.max_bytes = 1000;
    write(&by_bytes, 0, 12);
    assert!(paths(dir.path()).len() >= 3, "{:?}", paths(dir.path()));
    assert_eq!(verify(dir.path()).unwrap().rows, 12);

    let dir = tempfile::tempdir().unwrap();
    let mut by_age = config(dir.path(), u64::MAX);
    by_age.rotation.max_age_secs = 0;
    write(&by_age, 0, 4);
    assert_eq!(paths(dir.path()).len(), 4);
    assert_eq!(verify(dir.path()).unwrap().rows, 4);
}

#[test]
fn tmp_files_are_not_part_of_the_trail() {
    let (dir, files) = three_files();
    let partition = files[0].parent().unwrap();
    fs::write(
        partition.join("audit-20991231T000000000000Z-000099.parquet.tmp"),
        b"half",
    )
    .unwrap();
    fs::write(partition.join("notes.txt"), b"x").unwrap();
    assert_eq!(closed_files(dir.path()).unwrap().len(), 3);
    assert_eq!(verify(dir.path()).unwrap().rows, 30);

    // While a file is open it exists only as .tmp.
    let mut w = AuditWriter::open(&config(dir.path(), 100)).unwrap();
    w.append(sample(30)).unwrap();
    assert_eq!(closed_files(dir.path()).unwrap().len(), 3);
    assert_eq!(verify(dir.path()).unwrap().rows, 30);
    w.close().unwrap();
    assert_eq!(verify(dir.path()).unwrap().rows, 31);
}

#[test]
fn one_writer_per_directory() {
    let dir = tempfile::tempdir().unwrap();
    let first = AuditWriter::open(&config(dir.path(), 10)).unwrap();
    let second = AuditWriter::open(&config(dir.path(), 10))
        .err()
        .expect("second writer");
    let pid = std::process::id().to_string();
    assert!(
        matches!(&second, WriterError::Locked { holder, .. } if *holder == pid),
        "{second}"
    );
    drop(first);
    AuditWriter::open(&config(dir.path(), 10)).expect("lock released with the writer");
}

#[test]
fn writer_refuses_to_continue_from_a_corrupt_newest_file() {
    let (dir, f) = three_files();
    fs::write(&f[2], b"PAR1 not really").unwrap();
    let error = AuditWriter::open(&config(dir.path(), 10))
        .err()
        .expect("must fail closed");
    assert!(
        matches!(error, WriterError::Chain { ref path, .. } if *path == f[2]),
        "{error}"
    );
}

#[test]
fn retention_deletes_only_old_closed_files() {
    let (dir, f) = three_files();
    let now = SystemTime::now();
    let old = now - Duration::from_secs(40 * 86_400);
    File::options()
        .write(true)
        .open(&f[0])
        .unwrap()
        .set_modified(old)
        .unwrap();
    let tmp = f[0].with_extension("parquet.tmp");
    fs::write(&tmp, b"open").unwrap();
    File::options()
        .write(true)
        .open(&tmp)
        .unwrap()
        .set_modified(old)
        .unwrap();

    assert!(delete_older_than(dir.path(), 50, now).unwrap().is_empty());
    assert_eq!(
        delete_older_than(dir.path(), 30, now).unwrap(),
        [f[0].clone()]
    );
    assert!(tmp.exists(), "an open file is never deleted");
    let report = verify(dir.path()).unwrap();
    assert_eq!((report.files, report.rows), (2, 20));
    assert!(
        !report.from_genesis(),
        "the trail now starts after retention"
    );
}

#[test]
fn file_names_sort_in_time_order() {
    assert_eq!(writer::format_start_for_tests(0), "19700101T000000000000Z");
    let leap = 1_709_164_800_000_000 + 3_723_000_042; // 2024-02-29T01:02:03.000042Z
    assert_eq!(
        writer::format_start_for_tests(leap),
        "20240229T010203000042Z"
    );
    for us in [0, leap, 1_700_000_000_123_456, 4_102_444_800_000_000] {
        assert_eq!(
            writer::parse_start_for_tests(&writer::format_start_for_tests(us)),
            Some(us)
        );
    }
}

#[test]
fn config_defaults_and_unknown_keys() {
    let config: AuditConfig = toml::from_str("").unwrap();
    assert_eq!(config, AuditConfig::default());
    assert!(config.enabled);
    assert_eq!(config.dir, Path::new("/var/lib/gateway-agent/audit"));
    let config: AuditConfig =
        toml::from_str("dir = \"/tmp/a\"\nretention_days = 7\n[rotation]\nmax_rows = 5\n").unwrap();
    assert_eq!(
        (config.rotation.max_rows, config.retention_days),
        (5, Some(7))
    );
    assert!(toml::from_str::<AuditConfig>("dirr = \"/x\"").is_err());
    assert!(toml::from_str::<AuditConfig>("[rotation]\nmax_row = 1").is_err());
}

/// DuckDB (from PyPI, in the end-to-end venv) reads the files as written, with the `dt`
/// partition. Skipped with a reason when that venv or duckdb is missing.
#[test]
fn duckdb_reads_the_files() {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/e2e/venv/bin/python");
    let has_duckdb = std::process::Command::new(&python)
        .args(["-c", "import duckdb"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_duckdb {
        eprintln!(
            "skipped: no duckdb in {} (pip install duckdb there)",
            python.display()
        );
        return;
    }
    let (dir, _) = three_files();
    let script = format!(
        "import duckdb\n\
         r = duckdb.sql(\"SELECT count(*), any_value(method), count(DISTINCT dt), \
         sum(len(groups)), min(hex(hash)) IS NOT NULL FROM read_parquet('{}/**/*.parquet', \
         hive_partitioning=true)\").fetchall()[0]\n\
         print('|'.join(str(v) for v in r))",
        dir.path().display()
    );
    let out = std::process::Command::new(&python)
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<&str> = stdout.trim().split('|').collect();
    assert_eq!(fields[0], "30", "{stdout}");
    assert_eq!(fields[1], "tools/call");
    assert_eq!(fields[3], "60");
    assert_eq!(fields[4], "True");
}

/// The canonical encoding is a published format (independent verifiers recompute it):
/// a fixed row must keep its hash across refactors of the encoder.
#[test]
fn canonical_hash_is_stable() {
    let mut row = sample(5);
    row.host = "host-a".into();
    row.agent_version = "0.1.0".into();
    row.principal.exe = Some("/usr/bin/python3".into());
    row.prev_hash = [7; 32];
    assert_eq!(
        chain::to_hex(&chain::row_hash(&row)),
        "10bd9b58730d6dcc6635db8a41502e743b461d0e82401b2d0c2f920b082d4a0d"
    );
}
