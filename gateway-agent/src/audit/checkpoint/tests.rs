use super::*;
use crate::audit::{AuditConfig, AuditWriter, RotationConfig, access, sign, verify};

fn setup(max_rows: u64) -> (tempfile::TempDir, AuditConfig) {
    let root = tempfile::tempdir().unwrap();
    let config = AuditConfig {
        dir: root.path().join("audit"),
        rotation: RotationConfig {
            max_rows,
            ..RotationConfig::default()
        },
        ..AuditConfig::default()
    };
    access::prepare(&config.dir, None).unwrap();
    (root, config)
}

fn write(config: &AuditConfig, from: u64, count: u64) -> [u8; 32] {
    let mut writer = AuditWriter::open(config).unwrap();
    let mut last = writer.last_hash();
    for i in from..from + count {
        last = writer.append(crate::audit::tests::sample_row(i)).unwrap();
    }
    writer.close().unwrap();
    last
}

#[test]
fn a_checkpoint_round_trips_through_a_log_line_and_is_signed() {
    let key = SigningKey::from_bytes(&[9; 32]);
    let cp = Checkpoint::sign(&key, [3; 32], 42, 1_700_000_000);
    let line =
        format!(r#"{{"level":"INFO","message":"audit checkpoint","checkpoint":"{cp}","rows":42}}"#);
    let older = Checkpoint::sign(&key, [2; 32], 41, 1_699_999_000);
    let journal = format!("{older}\n{line}\n");
    assert_eq!(Checkpoint::find_last(&journal).unwrap().unwrap(), cp);
    assert!(cp.verifies_with(&key.verifying_key()));
    let mut forged = cp.clone();
    forged.rows = 41;
    assert!(!forged.verifies_with(&key.verifying_key()));
    let other = SigningKey::from_bytes(&[8; 32]).verifying_key();
    assert!(!cp.verifies_with(&other));
    assert!(Checkpoint::find_last("no checkpoint here").is_none());
    assert!("gwcp1:1:zz:1:00".parse::<Checkpoint>().is_err());
}

#[test]
fn a_truncated_and_re_signed_tail_fails_the_last_checkpoint() {
    let (_root, config) = setup(4);
    let head = write(&config, 0, 10);
    let key = sign::read_key(&config).unwrap();
    let rows = closed_rows(&config.dir).unwrap();
    assert_eq!(rows, 10);
    let cp = Checkpoint::sign(&key, head, rows, 1);
    let public = key.verifying_key();
    assert_eq!(
        check(&config.dir, &cp, Some(&public)).unwrap(),
        Found {
            position: 10,
            after: 0
        }
    );

    // The intruder (who holds the key) removes the newest file and writes new rows
    // after what is left: every file verifies and is signed, but the checkpoint's head
    // is gone.
    let files = writer::closed_files(&config.dir).unwrap();
    std::fs::remove_file(&files.last().unwrap().path).unwrap();
    write(&config, 100, 3);
    let report = verify::verify(&config.dir).expect("the rewritten trail verifies");
    assert!(report.signed);
    let err = check(&config.dir, &cp, Some(&public)).unwrap_err();
    assert!(err.contains("not in the trail"), "{err}");

    // A checkpoint not signed by the trail's key is refused.
    let forged = Checkpoint::sign(&SigningKey::from_bytes(&[1; 32]), head, rows, 1);
    assert!(check(&config.dir, &forged, Some(&public)).is_err());
}

#[test]
fn later_rows_are_counted_after_the_checkpoint() {
    let (_root, config) = setup(4);
    let head = write(&config, 0, 5);
    let cp = Checkpoint::sign(&sign::read_key(&config).unwrap(), head, 5, 1);
    write(&config, 5, 6);
    assert_eq!(
        check(&config.dir, &cp, None).unwrap(),
        Found {
            position: 5,
            after: 6
        }
    );
}

#[test]
fn load_takes_a_line_or_the_newest_in_a_file() {
    let key = SigningKey::from_bytes(&[9; 32]);
    let a = Checkpoint::sign(&key, [1; 32], 1, 1);
    let b = Checkpoint::sign(&key, [2; 32], 2, 2);
    assert_eq!(
        load(&format!("Nov 30 host gateway-agent: checkpoint={a}")).unwrap(),
        a
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("journal.txt");
    std::fs::write(&file, format!("x {a}\ny {b}\nz\n")).unwrap();
    assert_eq!(load(&file.to_string_lossy()).unwrap(), b);
    assert!(load(&dir.path().join("absent").to_string_lossy()).is_err());
}
