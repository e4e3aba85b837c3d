//! The tamper matrix: files edited the way an attacker with write access to the audit
//! directory could, each change reported against the right file and row.

use std::{
    fs::{self, File},
    path::Path,
};

use parquet::{
    arrow::{ArrowWriter, arrow_reader::ParquetRecordBatchReaderBuilder},
    file::{metadata::KeyValue, properties::WriterProperties},
};

use super::{config, paths, three_files, write};
use crate::audit::{
    VerifyError, chain,
    record::{self, AuditRecord},
    sign, verify, writer,
};

/// Reads a file's rows, lets `edit` change them, writes them back under the same name
/// with the same footer metadata (an attacker who knows the format would).
fn rewrite(path: &Path, edit: impl FnOnce(&mut Vec<AuditRecord>)) {
    rewrite_with_footer(path, |rows, _| edit(rows));
}

/// [`rewrite`], also letting `edit` change the footer metadata.
fn rewrite_with_footer(path: &Path, edit: impl FnOnce(&mut Vec<AuditRecord>, &mut Vec<KeyValue>)) {
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap();
    let mut kv = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .cloned()
        .unwrap();
    let mut rows = Vec::new();
    for batch in builder.build().unwrap() {
        rows.extend(record::from_batch(&batch.unwrap()).unwrap());
    }
    edit(&mut rows, &mut kv);
    let batch = record::to_batch(&rows).unwrap();
    let props = WriterProperties::builder().build();
    let mut writer =
        ArrowWriter::try_new(File::create(path).unwrap(), batch.schema(), Some(props)).unwrap();
    writer.write(&batch).unwrap();
    for pair in kv.into_iter().filter(|kv| kv.key.starts_with("gateway.")) {
        writer.append_key_value_metadata(KeyValue::new(pair.key, pair.value));
    }
    writer.close().unwrap();
}

#[track_caller]
fn assert_broken(dir: &Path, expected: impl Fn(&VerifyError) -> bool) {
    match verify(dir) {
        Ok(report) => panic!("tampering not detected: {report:?}"),
        Err(error) => assert!(expected(&error), "wrong finding: {error}"),
    }
}

#[test]
fn detects_a_changed_value() {
    let (dir, f) = three_files();
    rewrite(&f[1], |rows| rows[4].tool = Some("innocent".into()));
    assert_broken(
        dir.path(),
        |e| matches!(e, VerifyError::RowHash { file, row: 4 } if *file == f[1]),
    );
}

#[test]
fn detects_a_changed_value_with_its_hash_recomputed() {
    let (dir, f) = three_files();
    rewrite(&f[1], |rows| {
        rows[4].payload = None;
        rows[4].hash = chain::row_hash(&rows[4]);
    });
    assert_broken(
        dir.path(),
        |e| matches!(e, VerifyError::Link { file, row: 5 } if *file == f[1]),
    );
}

#[test]
fn detects_a_deleted_row() {
    let (dir, f) = three_files();
    rewrite(&f[1], |rows| {
        rows.remove(4);
    });
    assert_broken(
        dir.path(),
        |e| matches!(e, VerifyError::Link { file, row: 4 } if *file == f[1]),
    );
}

#[test]
fn detects_a_deleted_last_row() {
    let (dir, f) = three_files();
    rewrite(&f[1], |rows| {
        rows.pop();
    });
    assert_broken(
        dir.path(),
        |e| matches!(e, VerifyError::Metadata { file, key, .. } if *file == f[1] && *key == writer::META_LAST_HASH),
    );
}

/// The newest file's last rows cut off and its footer made to match: the chain alone
/// cannot see it (nothing follows), the signature can.
#[test]
fn detects_cut_off_rows_with_a_rewritten_footer() {
    let (dir, f) = three_files();
    rewrite_with_footer(&f[2], |rows, kv| {
        rows.truncate(7);
        let last = chain::to_hex(&rows[6].hash);
        for pair in kv.iter_mut() {
            match pair.key.as_str() {
                writer::META_LAST_HASH => pair.value = Some(last.clone()),
                writer::META_ROWS => pair.value = Some("7".into()),
                _ => {}
            }
        }
    });
    assert_broken(
        dir.path(),
        |e| matches!(e, VerifyError::Signature { file, .. } if *file == f[2]),
    );

    // Without the pinned public key the same cut is not visible, and the report says so.
    fs::remove_file(dir.path().join(sign::PUB_FILE)).unwrap();
    let report = verify(dir.path()).unwrap();
    assert_eq!((report.rows, report.signed), (27, false));
}

#[test]
fn writer_keeps_its_signing_key_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    write(&config(dir.path(), 10), 0, 5);
    let public = fs::read_to_string(dir.path().join(sign::PUB_FILE)).unwrap();
    write(&config(dir.path(), 10), 5, 5);
    assert_eq!(
        fs::read_to_string(dir.path().join(sign::PUB_FILE)).unwrap(),
        public
    );
    assert!(
        !dir.path().join(sign::KEY_FILE).exists(),
        "key beside the trail"
    );
    let location = sign::key_location(&config(dir.path(), 10));
    let key = location.path();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(verify(dir.path()).unwrap().signed);
}

#[test]
fn detects_reordered_rows() {
    let (dir, f) = three_files();
    rewrite(&f[1], |rows| rows.swap(3, 6));
    assert_broken(
        dir.path(),
        |e| matches!(e, VerifyError::Link { file, row: 3 } if *file == f[1]),
    );
}

#[test]
fn detects_a_deleted_middle_file() {
    let (dir, f) = three_files();
    fs::remove_file(&f[1]).unwrap();
    assert_broken(
        dir.path(),
        |e| matches!(e, VerifyError::FileLink { file, previous } if *file == f[2] && *previous == f[0]),
    );
}

#[test]
fn detects_swapped_files() {
    let (dir, f) = three_files();
    let aside = f[0].with_extension("aside");
    fs::rename(&f[0], &aside).unwrap();
    fs::rename(&f[1], &f[0]).unwrap();
    fs::rename(&aside, &f[1]).unwrap();
    assert_broken(
        dir.path(),
        |e| matches!(e, VerifyError::FileLink { file, .. } if *file == f[1]),
    );
}

#[test]
fn detects_truncated_and_corrupt_files() {
    let (dir, f) = three_files();
    let bytes = fs::read(&f[1]).unwrap();
    fs::write(&f[1], &bytes[..bytes.len() / 2]).unwrap();
    assert_broken(
        dir.path(),
        |e| matches!(e, VerifyError::Unreadable { file, .. } if *file == f[1]),
    );

    // A damaged footer (here its closing magic) makes the file unreadable.
    let (dir, f) = three_files();
    let mut bytes = fs::read(&f[2]).unwrap();
    let len = bytes.len();
    bytes[len - 4..].copy_from_slice(b"XXXX");
    fs::write(&f[2], &bytes).unwrap();
    assert_broken(
        dir.path(),
        |e| matches!(e, VerifyError::Unreadable { file, .. } if *file == f[2]),
    );
}

/// Flipping any one byte of a file either is reported against that file or leaves every
/// decoded value as it was (bytes such as page statistics or CRC fields that no row is
/// read from): verify judges the rows, and never accepts a changed one.
#[test]
fn a_flipped_byte_never_changes_a_row_unnoticed() {
    let dir = tempfile::tempdir().unwrap();
    write(&config(dir.path(), 10), 0, 10);
    let file = paths(dir.path()).remove(0);
    let good = verify(dir.path()).unwrap();
    let original = fs::read(&file).unwrap();
    // Every 29th byte keeps the debug-build test to seconds while still hitting page
    // headers, compressed values and the footer.
    for offset in (4..original.len() - 8).step_by(29) {
        let mut bytes = original.clone();
        bytes[offset] ^= 0x01;
        fs::write(&file, &bytes).unwrap();
        match verify(dir.path()) {
            Ok(report) => assert_eq!(report, good, "offset {offset}"),
            Err(e) => assert_eq!(e.file(), Some(file.as_path()), "offset {offset}: {e}"),
        }
    }
}
