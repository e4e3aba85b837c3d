use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};

use super::*;

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_new_directory_and_what_is_made_in_it_are_owner_only() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("state/audit");
    assert_eq!(prepare(&dir, None).unwrap(), 0);
    assert_eq!(mode(&dir), 0o700);
    create_dir(&dir.join("dt=2026-01-01")).unwrap();
    assert_eq!(mode(&dir.join("dt=2026-01-01")), 0o700);
    let file = dir.join("dt=2026-01-01/a.parquet.tmp");
    drop(create_file(&file, true).unwrap());
    assert_eq!(mode(&file), 0o600);
    assert!(
        create_file(&file, true).is_err(),
        "create_new must not reuse a file"
    );
    drop(open_rw(&dir.join(".lock")).unwrap());
    assert_eq!(mode(&dir.join(".lock")), 0o600);
}

#[test]
fn existing_state_readable_by_others_is_corrected() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("audit");
    fs::create_dir_all(dir.join("dt=2026-01-01")).unwrap();
    fs::create_dir_all(dir.join("wal")).unwrap();
    fs::write(dir.join("dt=2026-01-01/audit-1.parquet"), b"x").unwrap();
    fs::write(dir.join("wal/wal-1.log"), b"x").unwrap();
    fs::write(dir.join("audit-signing.pub"), b"x").unwrap();
    chmod(&dir, 0o755);
    chmod(&dir.join("dt=2026-01-01"), 0o755);
    chmod(&dir.join("dt=2026-01-01/audit-1.parquet"), 0o644);
    chmod(&dir.join("wal"), 0o750);
    chmod(&dir.join("wal/wal-1.log"), 0o666);
    chmod(&dir.join("audit-signing.pub"), 0o644);

    let fixed = prepare(&dir, None).unwrap();

    assert_eq!(fixed, 6);
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("dt=2026-01-01")), 0o700);
    assert_eq!(mode(&dir.join("wal")), 0o700);
    assert_eq!(mode(&dir.join("dt=2026-01-01/audit-1.parquet")), 0o600);
    assert_eq!(mode(&dir.join("wal/wal-1.log")), 0o600);
    assert_eq!(mode(&dir.join("audit-signing.pub")), 0o600);
    assert_eq!(
        prepare(&dir, None).unwrap(),
        0,
        "a second pass changes nothing"
    );
}

#[test]
fn a_world_writable_directory_is_refused_and_left_alone() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("audit");
    fs::create_dir(&dir).unwrap();
    chmod(&dir, 0o777);
    let err = prepare(&dir, None).unwrap_err();
    assert!(
        matches!(err, AccessError::WorldWritable { mode: 0o777, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("world-writable"), "{err}");
    assert_eq!(mode(&dir), 0o777, "refused, not silently repaired");
}

#[test]
fn a_directory_owned_by_another_user_is_refused() {
    if !Uid::effective().is_root() {
        eprintln!("skipped: needs root to chown");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("audit");
    fs::create_dir(&dir).unwrap();
    nix::unistd::chown(&dir, Some(Uid::from_raw(65534)), None).unwrap();
    let err = prepare(&dir, None).unwrap_err();
    assert!(
        matches!(err, AccessError::NotOwner { owner: 65534, .. }),
        "{err:?}"
    );
}

#[test]
fn a_reader_group_gets_read_access_and_no_more() {
    let Some(group) = ["daemon", "adm", "nogroup"]
        .into_iter()
        .find_map(|name| Group::from_name(name).ok().flatten())
    else {
        eprintln!("skipped: no group to test with");
        return;
    };
    if !Uid::effective().is_root() {
        eprintln!("skipped: needs root to chgrp");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("audit");
    fs::create_dir_all(dir.join("dt=2026-01-01")).unwrap();
    fs::write(dir.join("dt=2026-01-01/old.parquet"), b"x").unwrap();
    chmod(&dir.join("dt=2026-01-01/old.parquet"), 0o666);

    prepare(&dir, Some(&group.name)).unwrap();
    create_dir(&dir.join("wal")).unwrap();
    drop(create_file(&dir.join("wal/new.log"), false).unwrap());

    for (path, want) in [
        (dir.clone(), 0o2750),
        (dir.join("dt=2026-01-01"), 0o2750),
        (dir.join("wal"), 0o2750),
        (dir.join("dt=2026-01-01/old.parquet"), 0o640),
        (dir.join("wal/new.log"), 0o640),
    ] {
        assert_eq!(mode(&path), want, "{}", path.display());
        assert_eq!(
            fs::metadata(&path).unwrap().gid(),
            group.gid.as_raw(),
            "{}",
            path.display()
        );
    }
}

#[test]
fn an_unknown_reader_group_is_a_clear_error() {
    let root = tempfile::tempdir().unwrap();
    let err = prepare(&root.path().join("audit"), Some("no-such-group-gw")).unwrap_err();
    assert!(err.to_string().contains("no such group"), "{err}");
}
