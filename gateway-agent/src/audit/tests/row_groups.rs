//! The open file's row group is written out as it grows, so a busy agent's memory does
//! not grow with its open audit file (up to `max_bytes`, 128 MiB by default).

use parquet::file::reader::{FileReader, SerializedFileReader};

use super::*;

#[test]
fn a_large_file_is_written_in_bounded_row_groups_and_verifies() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("audit");
    let config = AuditConfig {
        dir: dir.clone(),
        ..AuditConfig::default()
    };
    let mut writer = AuditWriter::open(&config).expect("open writer");
    let mut peak = 0;
    // Payloads that do not compress away: about 40 MiB of rows in one file.
    for i in 0..20_000u64 {
        let mut row = sample(i);
        let noise: String = (0..256)
            .map(|j| format!("{:08x}", (i * 2_654_435_761 + j * 40_503) as u32))
            .collect();
        row.payload = Some(noise);
        writer.append(row).expect("append");
        peak = peak.max(writer.buffered_bytes());
    }
    writer.close().expect("close");

    let files = closed_files(&dir).unwrap();
    assert_eq!(files.len(), 1, "one file: {files:?}");
    let reader = SerializedFileReader::new(File::open(&files[0].path).unwrap()).unwrap();
    let groups = reader.metadata().num_row_groups();
    assert!(groups >= 4, "{groups} row group(s) for ~40 MiB of rows");
    // Bounded by the row group limit plus one batch being encoded.
    assert!(peak < 16 << 20, "the open row group held {peak} bytes");
    let report = verify::verify(&dir).unwrap();
    assert_eq!(report.rows, 20_000);
}
