use std::{fs, path::Path};

use super::{
    LockMode, ShipConfig,
    manifest::{self, Manifest},
    rfc3339,
};

fn config(toml_text: &str) -> ShipConfig {
    toml::from_str(toml_text).expect("parses")
}

#[test]
fn keys_follow_the_hive_layout() {
    let c = config("bucket = \"b\"\nhost = \"web-1\"\n");
    assert_eq!(c.prefix, "gateway-audit");
    assert_eq!(c.lock_mode, LockMode::Governance);
    assert_eq!(
        c.key("web-1", "2026-11-30", "audit-x-000001.parquet"),
        "gateway-audit/host=web-1/dt=2026-11-30/audit-x-000001.parquet"
    );
    let c = config("bucket = \"b\"\nprefix = \"/fleet/audit/\"\nlock_mode = \"compliance\"\n");
    assert_eq!(c.key("h", "d", "f"), "fleet/audit/host=h/dt=d/f");
    assert_eq!(c.lock_mode.as_header(), "COMPLIANCE");
}

#[test]
fn bad_names_are_refused_before_start() {
    for (text, needle) in [
        ("bucket = \"b\"\nhost = \"a/b\"\n", "host"),
        ("bucket = \"b\"\nhost = \"..\"\n", "host"),
        ("bucket = \"\"\nhost = \"h\"\n", "bucket"),
        ("bucket = \"b\"\nhost = \"h\"\nprefix = \"a b\"\n", "prefix"),
        (
            "bucket = \"b\"\nhost = \"h\"\nendpoint = \"ftp://x\"\n",
            "endpoint",
        ),
        (
            "bucket = \"b\"\nhost = \"h\"\nretain_days = 0\n",
            "retain_days",
        ),
    ] {
        let err = config(text).validate().expect_err(text);
        assert!(err.contains(needle), "{text}: {err}");
    }
    assert!(
        config("bucket = \"b\"\nhost = \"h.example_1-2\"\n")
            .validate()
            .is_ok()
    );
    assert!(toml::from_str::<ShipConfig>("bucket = \"b\"\nbukket = 1\n").is_err());
}

#[test]
fn retain_until_dates_are_rfc3339_utc() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(rfc3339(1_796_083_199), "2026-11-30T23:59:59Z");
}

#[test]
fn manifest_survives_reload_and_ignores_a_torn_line() {
    let dir = tempfile::tempdir().unwrap();
    let sha = "ab".repeat(32);
    let mut m = Manifest::load(dir.path()).unwrap();
    assert!(m.is_empty());
    m.record(
        "dt=2026-11-30/a.parquet",
        &sha,
        "p/host=h/dt=2026-11-30/a.parquet",
    )
    .unwrap();
    // A crash mid-append leaves half a line.
    let path = dir.path().join(manifest::FILE);
    let mut text = fs::read_to_string(&path).unwrap();
    text.push_str("dt=2026-11-30/b.parquet\tab");
    fs::write(&path, &text).unwrap();
    let mut m = Manifest::load(dir.path()).unwrap();
    assert_eq!(m.len(), 1);
    assert!(m.contains("dt=2026-11-30/a.parquet"));
    assert!(!m.contains("dt=2026-11-30/b.parquet"));
    // The next record starts on its own line, so both survive another reload.
    m.record("dt=2026-11-30/b.parquet", &sha, "k").unwrap();
    let m = Manifest::load(dir.path()).unwrap();
    assert!(m.contains("dt=2026-11-30/a.parquet") && m.contains("dt=2026-11-30/b.parquet"));
}

#[test]
fn retention_keeps_unshipped_files_once_shipping_is_on() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dt=2026-11-30/a.parquet");
    // No manifest: shipping was never on here, retention is unchanged.
    assert!(manifest::may_delete(dir.path(), &file));
    fs::write(dir.path().join(manifest::FILE), "").unwrap();
    assert!(!manifest::may_delete(dir.path(), &file));
    let mut m = Manifest::load(dir.path()).unwrap();
    m.record("dt=2026-11-30/a.parquet", &"00".repeat(32), "k")
        .unwrap();
    assert!(manifest::may_delete(dir.path(), &file));
    assert!(!manifest::may_delete(
        dir.path(),
        Path::new("/elsewhere/a.parquet")
    ));
}

#[test]
fn retries_back_off_doubling_to_the_ceiling() {
    use std::time::Duration;
    let secs = |n| super::task::backoff(n, 300);
    assert_eq!(secs(1), Duration::from_secs(1));
    assert_eq!(secs(2), Duration::from_secs(2));
    assert_eq!(secs(5), Duration::from_secs(16));
    assert_eq!(secs(30), Duration::from_secs(300));
    assert_eq!(super::task::backoff(u32::MAX, 0), Duration::from_secs(1));
}

#[test]
fn keyrings_name_the_bad_line() {
    use super::fleet::Keyring;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys");
    let key = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    fs::write(&path, format!("# fleet\n\nalpha {key}\nbeta  {key}\n")).unwrap();
    assert!(Keyring::load(&path).is_ok());
    for (text, line) in [
        (format!("alpha {key}\nalpha {key}\n"), 2),
        ("alpha\n".to_owned(), 1),
        ("# c\nalpha abcd\n".to_owned(), 2),
    ] {
        fs::write(&path, &text).unwrap();
        let err = Keyring::load(&path).unwrap_err().to_string();
        assert!(err.contains(&format!("line {line}")), "{text:?}: {err}");
    }
}

#[test]
fn a_directory_without_hosts_is_not_a_fleet_copy() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("dt=2026-11-30")).unwrap();
    let err = super::fleet::verify_dir(dir.path(), None).unwrap_err();
    assert!(err.to_string().contains("host="), "{err}");
}

/// Three files for `host` under `root/host=<host>`, as an agent would write them, signed
/// by the host's own key in `keys` (outside the synced copy, as on a real host).
fn write_host(root: &Path, keys: &Path, host: &str) -> Vec<std::path::PathBuf> {
    use crate::audit::{AuditConfig, AuditRecord, AuditWriter, RotationConfig, writer};
    let dir = root.join(format!("host={host}"));
    let config = AuditConfig {
        dir: dir.clone(),
        signing_key: Some(keys.join(format!("{host}.key"))),
        rotation: RotationConfig {
            max_rows: 2,
            ..RotationConfig::default()
        },
        ..AuditConfig::default()
    };
    let mut w = AuditWriter::open(&config).unwrap();
    for i in 0..6 {
        w.append(AuditRecord {
            time_us: 1_796_000_000_000_000 + i,
            session: format!("s{i}"),
            ..AuditRecord::default()
        })
        .unwrap();
    }
    w.close().unwrap();
    writer::closed_files(&dir)
        .unwrap()
        .into_iter()
        .map(|f| f.path)
        .collect()
}

#[test]
fn fleet_reports_per_host_and_names_a_gap() {
    use super::fleet::{Keyring, verify_dir};
    let root = tempfile::tempdir().unwrap();
    let signing = tempfile::tempdir().unwrap();
    let alpha = write_host(root.path(), signing.path(), "alpha");
    let beta = write_host(root.path(), signing.path(), "beta");
    assert_eq!(alpha.len(), 3);
    let keys = signing.path().join("keyring");
    let pubkey = |h: &str| {
        fs::read_to_string(root.path().join(format!("host={h}/audit-signing.pub"))).unwrap()
    };
    fs::write(
        &keys,
        format!("alpha {}beta {}", pubkey("alpha"), pubkey("beta")),
    )
    .unwrap();
    let keyring = Keyring::load(&keys).unwrap();
    let reports = verify_dir(root.path(), Some(&keyring)).unwrap();
    assert_eq!(reports.len(), 2);
    for r in &reports {
        assert!(r.problems.is_empty(), "{r}");
        assert_eq!((r.files, r.rows), (3, 6), "{r}");
        assert_eq!(r.first_us, Some(1_796_000_000_000_000));
        assert_eq!(r.last_us, Some(1_796_000_000_000_005));
        assert!(r.to_string().ends_with("intact"), "{r}");
    }
    fs::remove_file(&beta[1]).unwrap();
    let reports = verify_dir(root.path(), Some(&keyring)).unwrap();
    assert!(reports[0].problems.is_empty());
    let beta_report = reports[1].to_string();
    assert!(beta_report.starts_with("host=beta:"), "{beta_report}");
    assert!(
        beta_report.contains("gap") && beta_report.contains(&beta[2].display().to_string()),
        "{beta_report}"
    );
}

#[test]
fn retention_deletes_only_shipped_files() {
    use crate::audit::writer::delete_older_than;
    let root = tempfile::tempdir().unwrap();
    let signing = tempfile::tempdir().unwrap();
    let files = write_host(root.path(), signing.path(), "h");
    let dir = root.path().join("host=h");
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(10 * 86_400);
    fs::write(dir.join(manifest::FILE), "").unwrap();
    assert!(delete_older_than(&dir, 1, later).unwrap().is_empty());
    let first = files[0].strip_prefix(&dir).unwrap().to_str().unwrap();
    Manifest::load(&dir)
        .unwrap()
        .record(first, &"00".repeat(32), "k")
        .unwrap();
    assert_eq!(
        delete_older_than(&dir, 1, later).unwrap(),
        vec![files[0].clone()]
    );
    assert!(files[1].exists() && files[2].exists());
}

#[test]
fn credentials_come_from_a_file_or_a_systemd_credential() {
    let c = config("bucket = \"b\"\ncredentials_systemd = \"audit-ship\"\n");
    assert_eq!(
        c.credentials_path_in(Some(std::ffi::OsStr::new("/run/credentials/x")))
            .unwrap(),
        Some(std::path::PathBuf::from("/run/credentials/x/audit-ship"))
    );
    let err = c.credentials_path_in(None).unwrap_err();
    assert!(err.contains("CREDENTIALS_DIRECTORY"), "{err}");
    let both = config("bucket = \"b\"\ncredentials_systemd = \"a\"\ncredentials_file = \"/f\"\n");
    assert!(both.validate().unwrap_err().contains("not both"));
    let bad = config("bucket = \"b\"\ncredentials_systemd = \"../etc/passwd\"\n");
    assert!(
        bad.credentials_path_in(Some(std::ffi::OsStr::new("/c")))
            .is_err()
    );
    assert_eq!(
        config("bucket = \"b\"\n")
            .credentials_path_in(None)
            .unwrap(),
        None
    );
}

#[test]
fn refusals_name_what_to_fix() {
    use super::s3::{Refusal, S3Error, error_code};
    let refused = |status: u16, body: &str| S3Error::Status {
        method: "PUT",
        key: "k".into(),
        status,
        code: error_code(body),
        body: body.into(),
    };
    let doc = |code: &str| {
        format!("<?xml version=\"1.0\"?><Error><Code>{code}</Code><Message>m</Message></Error>")
    };
    for (status, code, refusal, words) in [
        (
            403,
            "InvalidAccessKeyId",
            Refusal::Credentials,
            "credentials",
        ),
        (
            403,
            "SignatureDoesNotMatch",
            Refusal::Credentials,
            "credentials",
        ),
        (400, "ExpiredToken", Refusal::Credentials, "session token"),
        (403, "AccessDenied", Refusal::AccessDenied, "s3:PutObject"),
        (404, "NoSuchBucket", Refusal::NoBucket, "create it"),
        (403, "RequestTimeTooSkewed", Refusal::ClockSkew, "time sync"),
        (503, "SlowDown", Refusal::Service, "backoff"),
    ] {
        let err = refused(status, &doc(code));
        assert_eq!(err.refusal(), refusal, "{code}");
        let text = err.to_string();
        assert!(text.contains(code) && text.contains(words), "{text}");
    }
    // A HEAD has no body: the status alone.
    assert_eq!(refused(502, "").refusal(), Refusal::Service);
    assert_eq!(refused(502, "").kind(), "service_unavailable");
    // An unexplained refusal keeps the service's words; junk is not taken for a code.
    let other = refused(400, &doc("InvalidArgument"));
    assert!(
        other.to_string().contains("<Message>m</Message>"),
        "{other}"
    );
    assert_eq!(error_code("<Code>a b</Code>"), None);
    assert_eq!(error_code("<Code>Unclosed"), None);
}
