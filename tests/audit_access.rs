//! Who can read and re-sign the audit trail, end to end. The agent is run with umask 0022
//! (what `cargo xtask run` and most shells have) and must still leave its trail owner-only,
//! its signing key outside the trail, and refuse a world-writable audit directory. Needs
//! root and the test virtualenv.

mod support;

use std::{
    fs,
    os::unix::fs::{MetadataExt as _, PermissionsExt as _},
    path::Path,
    process::{Command, Output, Stdio},
    time::Instant,
};

use support::{AGENT, McpServer, Scenario, WAIT, require_root};

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

/// Every directory and file below `dir` (and `dir`), with its mode.
fn walk(dir: &Path, out: &mut Vec<(std::path::PathBuf, u32, bool)>) {
    let meta = fs::symlink_metadata(dir).unwrap();
    out.push((dir.to_owned(), meta.mode() & 0o7777, meta.is_dir()));
    if meta.is_dir() {
        for entry in fs::read_dir(dir).unwrap() {
            walk(&entry.unwrap().path(), out);
        }
    }
}

/// Asserts every directory below `dir` is 0700 and every file 0600; returns the paths.
#[track_caller]
fn owner_only(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut entries = Vec::new();
    walk(dir, &mut entries);
    for (path, mode, is_dir) in &entries {
        let want = if *is_dir { 0o700 } else { 0o600 };
        assert_eq!(*mode, want, "{} is {mode:o}", path.display());
    }
    entries.into_iter().map(|(p, _, _)| p).collect()
}

fn agent_cli(args: &[&str]) -> Output {
    Command::new(AGENT)
        .args(args)
        .output()
        .expect("run gateway-agent")
}

#[test]
fn trail_and_key_are_owner_only_under_umask_0022_and_the_key_is_pinned_elsewhere() {
    if !require_root(
        "trail_and_key_are_owner_only_under_umask_0022_and_the_key_is_pinned_elsewhere",
    ) {
        return;
    }
    // SAFETY: umask(2) cannot fail; the agent inherits it.
    unsafe { libc::umask(0o022) };
    let server = McpServer::start("stateful", "json");
    let scenario = Scenario::new();
    let audit = scenario.audit_dir();
    // What an older version left: a 0755 directory, a 0644 file, the key inside.
    fs::create_dir_all(&audit).unwrap();
    fs::set_permissions(&audit, fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(audit.join("audit-signing.key"), [42u8; 32]).unwrap();
    fs::write(audit.join("audit-signing.pub"), "stale\n").unwrap();
    fs::set_permissions(
        audit.join("audit-signing.pub"),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();

    let config = scenario.config(&[server.port]);
    let agent = scenario.start_agent(&config);
    agent.wait_for(
        "moved the audit signing key out of the audit directory",
        |_| true,
    );
    server.client_in(&scenario, "legacy");
    // The session is listed while the agent runs, before any file is closed.
    let out = agent_cli(&[
        "audit",
        "sessions",
        "--dir",
        &audit.to_string_lossy(),
        "--json",
    ]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).lines().count() >= 1,
        "no session listed while running: {out:?}"
    );
    // While it runs (WAL segment, open `.tmp` file) and after it stopped (closed files).
    let running = owner_only(&audit);
    assert!(
        running
            .iter()
            .any(|p| p.to_string_lossy().contains("/wal/wal-")),
        "no WAL segment: {running:?}"
    );
    assert!(agent.stop(libc::SIGTERM).success());
    let stopped = owner_only(&audit);
    assert!(
        stopped
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "parquet")),
        "no Parquet file written: {stopped:?}"
    );
    assert!(
        !audit.join("audit-signing.key").exists(),
        "key left in the trail"
    );
    let keys = scenario.dir.path().join("keys");
    assert_eq!(mode(&keys), 0o700);
    assert_eq!(mode(&keys.join("audit-signing.key")), 0o600);
    assert_eq!(
        fs::read(keys.join("audit-signing.key")).unwrap(),
        [42u8; 32]
    );

    // The public key, exported and pinned outside the trail, verifies every file.
    let out = agent_cli(&["audit", "pubkey", "--config", &config.to_string_lossy()]);
    assert!(out.status.success(), "{out:?}");
    let public = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(public.len(), 64, "{public}");
    let pinned = scenario.dir.path().join("pinned.pub");
    fs::write(&pinned, format!("{public}\n")).unwrap();
    let verify = |pubkey: &Path| {
        agent_cli(&[
            "audit",
            "verify",
            "--dir",
            &audit.to_string_lossy(),
            "--pubkey",
            &pubkey.to_string_lossy(),
        ])
    };
    let out = verify(&pinned);
    assert!(out.status.success(), "{out:?}");

    // A key that did not sign them: every file fails, the first named.
    let other = scenario.dir.path().join("other.pub");
    fs::write(
        &other,
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a\n",
    )
    .unwrap();
    let out = verify(&other);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "verified with a foreign key: {out:?}"
    );
    assert!(
        stderr.contains(".parquet") && stderr.contains("signature"),
        "{stderr}"
    );
}

/// `gateway-agent run`, bounded: its exit status and output (killed by PID if it is
/// still running after [`WAIT`]).
fn run_bounded(config: &Path) -> Output {
    let mut child = Command::new(AGENT)
        .args(["run", "--config"])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + WAIT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_world_writable_audit_dir_stops_the_start() {
    if !require_root("a_world_writable_audit_dir_stops_the_start") {
        return;
    }
    let scenario = Scenario::new();
    let audit = scenario.audit_dir();
    fs::create_dir_all(&audit).unwrap();
    fs::set_permissions(&audit, fs::Permissions::from_mode(0o777)).unwrap();
    let out = run_bounded(&scenario.config(&[support::free_port("127.0.0.1")]));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "started anyway: {text}");
    assert!(text.contains("world-writable"), "{text}");
    assert_eq!(mode(&audit), 0o777, "left for the operator to inspect");
    assert!(
        fs::read_dir(&audit).unwrap().next().is_none(),
        "wrote into it"
    );
}

#[test]
fn a_signing_key_configured_inside_the_audit_dir_stops_the_start() {
    if !require_root("a_signing_key_configured_inside_the_audit_dir_stops_the_start") {
        return;
    }
    let scenario = Scenario::new();
    let audit = scenario.audit_dir();
    let config = scenario.config_with(
        &[support::free_port("127.0.0.1")],
        &format!(
            "\n[audit]\ndir = \"{}\"\nsigning_key = \"{}\"\n",
            audit.display(),
            audit.join("keys/k.key").display()
        ),
    );
    let out = run_bounded(&config);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started anyway: {stderr}");
    assert!(stderr.contains("inside the audit directory"), "{stderr}");
}

/// The trail's newest files are removed (an intruder cutting the tail; with the key, new
/// rows could follow, re-signed): every remaining file verifies, but the last checkpoint
/// the agent logged names a head the trail no longer has.
#[test]
fn a_cut_tail_is_caught_by_the_last_logged_checkpoint() {
    if !require_root("a_cut_tail_is_caught_by_the_last_logged_checkpoint") {
        return;
    }
    let server = McpServer::start("stateful", "json");
    let scenario = Scenario::new();
    let audit = scenario.audit_dir();
    let config = scenario.config_with(
        &[server.port],
        &format!(
            "\n[audit]\ndir = \"{}\"\n[audit.rotation]\nmax_rows = 2\n",
            audit.display()
        ),
    );
    let agent = scenario.start_agent(&config);
    server.client_in(&scenario, "legacy");
    agent.wait_for("audit checkpoint", |l| l["rows"].as_u64() > Some(2));
    let line = agent
        .lines("audit checkpoint")
        .last()
        .cloned()
        .expect("a checkpoint");
    assert!(agent.stop(libc::SIGTERM).success());
    let checkpoint = line["checkpoint"]
        .as_str()
        .expect("checkpoint field")
        .to_owned();
    let head = line["head"].as_str().unwrap().to_owned();

    let verify = |extra: &[&str]| {
        let mut args = vec!["audit", "verify", "--dir"];
        let dir = audit.to_string_lossy().into_owned();
        args.push(&dir);
        args.extend_from_slice(extra);
        agent_cli(&args)
    };
    let out = verify(&["--checkpoint", &line.to_string()]);
    assert!(out.status.success(), "{out:?}");

    // Cut from the file that holds the checkpoint's head onwards.
    let files = gateway_agent::audit::writer::closed_files(&audit).unwrap();
    let holds = files
        .iter()
        .position(|f| {
            gateway_agent::audit::writer::row_hashes(&f.path)
                .unwrap()
                .iter()
                .any(|h| gateway_agent::audit::chain::to_hex(h) == head)
        })
        .expect("head in the trail");
    assert!(
        holds > 0,
        "the checkpoint is in the first file; nothing would remain"
    );
    for file in &files[holds..] {
        fs::remove_file(&file.path).unwrap();
    }
    let out = verify(&[]);
    assert!(
        out.status.success(),
        "the cut trail verifies alone: {out:?}"
    );
    let out = verify(&["--checkpoint", &checkpoint]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "cut not detected: {out:?}");
    assert!(stderr.contains("not in the trail"), "{stderr}");
}
