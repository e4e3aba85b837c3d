use std::os::unix::fs::PermissionsExt as _;

use super::*;
use crate::audit::{AuditWriter, access, verify, writer};

/// An audit dir and a key location outside it, both in one temporary directory.
fn setup() -> (tempfile::TempDir, AuditConfig) {
    let root = tempfile::tempdir().unwrap();
    let config = AuditConfig {
        dir: root.path().join("audit"),
        ..AuditConfig::default()
    };
    access::prepare(&config.dir, None).unwrap();
    (root, config)
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn the_default_key_lives_beside_the_audit_dir_not_in_it() {
    let (root, config) = setup();
    let signer = FileSigner::open(&config).unwrap();
    let key = root.path().join("keys").join(KEY_FILE);
    assert_eq!(
        key_location_in(&config, None),
        KeyLocation::File(key.clone())
    );
    assert_eq!(mode(&key), 0o600);
    assert_eq!(mode(key.parent().unwrap()), 0o700);
    assert!(!config.dir.join(KEY_FILE).exists());
    let public = public_hex(&signer.key);
    for pub_file in [key.with_file_name(PUB_FILE), config.dir.join(PUB_FILE)] {
        assert_eq!(fs::read_to_string(&pub_file).unwrap().trim(), public);
    }
    // Reopened: the same key.
    let again = FileSigner::open(&config).unwrap();
    assert_eq!(public_hex(&again.key), public);
    assert_eq!(public_hex(&read_key(&config).unwrap()), public);
    assert_eq!(
        default_key_path(Path::new("/var/lib/gateway-agent/audit")),
        Path::new("/var/lib/gateway-agent/keys/audit-signing.key")
    );
}

#[test]
fn a_key_configured_inside_the_audit_dir_is_refused() {
    let (root, mut config) = setup();
    for inside in [
        config.dir.join("k.key"),
        config.dir.join("dt=2026-01-01/k.key"),
        // `..` and a link cannot hide it either.
        root.path().join("keys/../audit/k.key"),
    ] {
        config.signing_key = Some(inside.clone());
        let err = FileSigner::open(&config)
            .err()
            .unwrap_or_else(|| panic!("{inside:?} accepted"));
        assert!(
            matches!(err, KeyError::InsideAuditDir { .. }),
            "{inside:?}: {err}"
        );
        assert!(
            err.to_string().contains("inside the audit directory"),
            "{err}"
        );
    }
    std::os::unix::fs::symlink(&config.dir, root.path().join("alias")).unwrap();
    config.signing_key = Some(root.path().join("alias/k.key"));
    assert!(matches!(
        FileSigner::open(&config),
        Err(KeyError::InsideAuditDir { .. })
    ));
}

#[test]
fn a_key_left_in_the_audit_dir_is_moved_out() {
    let (root, config) = setup();
    let old = config.dir.join(KEY_FILE);
    fs::write(&old, [7u8; 32]).unwrap();
    let signer = FileSigner::open(&config).unwrap();
    assert!(!old.exists(), "the old key must be gone from the audit dir");
    let moved = root.path().join("keys").join(KEY_FILE);
    assert_eq!(fs::read(&moved).unwrap(), [7u8; 32]);
    assert_eq!(mode(&moved), 0o600);
    assert_eq!(
        signer.key.to_bytes(),
        [7u8; 32],
        "the same key keeps signing"
    );

    // The same key again in the audit dir: the copy is removed.
    fs::write(&old, [7u8; 32]).unwrap();
    FileSigner::open(&config).unwrap();
    assert!(!old.exists());

    // A different one: refused, both left for the operator.
    fs::write(&old, [8u8; 32]).unwrap();
    let err = FileSigner::open(&config).err().expect("conflict");
    assert!(matches!(err, KeyError::Conflict { .. }), "{err}");
    assert!(old.exists() && moved.exists());
}

#[test]
fn a_systemd_credential_is_used_and_never_written() {
    let (root, config) = setup();
    let creds = root.path().join("creds");
    fs::create_dir(&creds).unwrap();
    assert_eq!(
        key_location_in(&config, Some(creds.as_os_str())),
        KeyLocation::File(root.path().join("keys").join(KEY_FILE)),
        "no credential file: the default"
    );
    let seed_hex = "11".repeat(32);
    fs::write(creds.join(CREDENTIAL), format!("{seed_hex}\n")).unwrap();
    let location = key_location_in(&config, Some(creds.as_os_str()));
    assert_eq!(location, KeyLocation::Credential(creds.join(CREDENTIAL)));
    let signer = FileSigner::open_at(&config, location).unwrap();
    assert_eq!(signer.key.to_bytes(), [0x11; 32]);
    assert!(
        !root.path().join("keys").exists(),
        "nothing written for a credential"
    );
    assert!(!creds.join(PUB_FILE).exists());

    let missing = KeyLocation::Credential(creds.join("absent"));
    assert!(matches!(
        FileSigner::open_at(&config, missing),
        Err(KeyError::Missing { .. })
    ));
}

#[test]
fn verify_with_a_pinned_key_names_a_file_signed_by_another() {
    let (root, mut config) = setup();
    config.rotation.max_rows = 2;
    let write_rows = |config: &AuditConfig, n: u64| {
        let mut writer = AuditWriter::open(config).unwrap();
        for i in 0..n {
            writer.append(crate::audit::tests::sample_row(i)).unwrap();
        }
        writer.close().unwrap();
    };
    write_rows(&config, 4);
    let first = read_key(&config).unwrap().verifying_key();
    assert!(verify::verify_pinned(&config.dir, Some(first)).is_ok());

    // The key is replaced (an intruder who could write it): new files verify with the
    // directory's (rewritten) .pub, not with the pinned one.
    config.signing_key = Some(root.path().join("other/k.key"));
    write_rows(&config, 2);
    let files = writer::closed_files(&config.dir).unwrap();
    assert_eq!(files.len(), 3);
    let err = verify::verify_pinned(&config.dir, Some(first)).unwrap_err();
    assert!(
        matches!(&err, verify::VerifyError::Signature { file, .. } if *file == files[2].path),
        "{err}"
    );
    assert!(
        err.to_string().contains(&*files[2].path.to_string_lossy()),
        "{err}"
    );
}

#[test]
fn a_key_directory_shared_with_other_files_is_checked_not_re_moded() {
    let (root, mut config) = setup();
    let etc = root.path().join("etc");
    fs::create_dir(&etc).unwrap();
    fs::set_permissions(&etc, fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(etc.join("agent.toml"), "x").unwrap();
    fs::set_permissions(etc.join("agent.toml"), fs::Permissions::from_mode(0o644)).unwrap();
    config.signing_key = Some(etc.join("audit.key"));
    FileSigner::open(&config).unwrap();
    assert_eq!(mode(&etc), 0o755, "the directory is left as it was");
    assert_eq!(mode(&etc.join("agent.toml")), 0o644, "its other files too");
    assert_eq!(mode(&etc.join("audit.key")), 0o600);

    // A key someone made readable is restricted again.
    fs::set_permissions(etc.join("audit.key"), fs::Permissions::from_mode(0o644)).unwrap();
    FileSigner::open(&config).unwrap();
    assert_eq!(mode(&etc.join("audit.key")), 0o600);

    // A world-writable key directory is refused.
    fs::set_permissions(&etc, fs::Permissions::from_mode(0o777)).unwrap();
    assert!(matches!(
        FileSigner::open(&config),
        Err(KeyError::Access(AccessError::WorldWritable { .. }))
    ));
}
