//! Fleet shipping under faults, end to end: a real agent (eBPF interception, real MCP
//! traffic) ships to moto's S3 server on loopback while the bucket side goes wrong. For
//! every fault the log names what to fix (`kind`), the agent keeps serving, nothing is
//! recorded as shipped that is not in the bucket, and once the fault is gone every closed
//! file ships exactly once without a restart.
//!
//! Refused credentials, a missing bucket and signatures are moto's own (IAM auth on). A
//! 5xx storm, a stalled endpoint and a clock-skew refusal come from a small gate in front
//! of moto (tests/audit/s3_gate.py) that answers as S3 documents, because moto neither
//! fails on demand nor checks request times. Needs root and `cargo xtask setup`.

mod support;
mod support_s3;

use std::{
    fs,
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;
use support::{McpServer, Scenario, WAIT, free_port, python, require_root, workspace};
use support_s3::{
    BUCKET, PREFIX, S3Server, closed, endpoint, manifest, s3, s3_as, s3_json, s3_json_as,
    shipped_keys, wait_all_shipped,
};

const FAILED: &str = "audit shipping failed; files stay queued locally and are retried";

/// Small files (2 rows or 1 s of quiet), one-second retries and upload timeout, signing
/// keys from `creds` (re-read by the agent when it changes). The backlog alarm is out of
/// reach, so every failed attempt logs the same message whatever the backlog (past it,
/// the message is the alarm's, at error level).
fn config(scenario: &Scenario, server: &McpServer, endpoint: &str, creds: &Path) -> PathBuf {
    let extra = format!(
        "\n[audit]\ndir = \"{dir}\"\nwal_segment_bytes = 1048576\n\n[audit.rotation]\n\
         max_rows = 2\nmax_age_secs = 1\n\n[audit.ship]\nendpoint = \"{endpoint}\"\n\
         bucket = \"{BUCKET}\"\nprefix = \"{PREFIX}\"\nhost = \"faulty\"\n\
         credentials_file = \"{creds}\"\nmax_backoff_secs = 1\nscan_secs = 1\ntimeout_secs = 1\nbacklog_alarm = 100000\n",
        dir = scenario.audit_dir().display(),
        creds = creds.display(),
    );
    scenario.config_with(&[server.port], &extra)
}

fn write_credentials(path: &Path, key_id: &str, secret: &str) {
    fs::write(
        path,
        format!("access_key_id = \"{key_id}\"\nsecret_access_key = \"{secret}\"\n"),
    )
    .unwrap();
}

/// Waits for a failed attempt of `kind` whose error mentions `needle`.
#[track_caller]
fn failed_with(agent: &support::Agent, kind: &str, needle: &str) -> Value {
    agent.wait_for(FAILED, |l| {
        l["kind"] == kind && l["error"].as_str().is_some_and(|e| e.contains(needle))
    })
}

/// Every object in the bucket was written once, and they are exactly the closed files.
#[track_caller]
fn each_shipped_once(objects: &Value, files: &[String]) {
    assert_eq!(&shipped_keys(objects, "faulty"), files);
    for (key, object) in objects.as_object().unwrap() {
        assert_eq!(object["versions"], 1, "{key} uploaded more than once");
    }
}

#[test]
fn refused_credentials_and_a_missing_bucket_are_named_and_fixed_without_a_restart() {
    if !require_root(
        "refused_credentials_and_a_missing_bucket_are_named_and_fixed_without_a_restart",
    ) {
        return;
    }
    // Three free requests make the shipping user; from then on moto checks every key and
    // signature.
    let s3_server = S3Server::start_with_auth(free_port("127.0.0.1"), 3);
    let endpoint = s3_server.endpoint();
    let key = s3_json(&endpoint, &["iam-key"]);
    let good = (
        key["access_key_id"].as_str().unwrap().to_owned(),
        key["secret_access_key"].as_str().unwrap().to_owned(),
    );
    let good = (good.0.as_str(), good.1.as_str());

    let mcp = McpServer::start("stateful", "json");
    let scenario = Scenario::new();
    let dir = scenario.audit_dir();
    let creds = scenario.dir.path().join("s3-credentials.toml");
    write_credentials(&creds, "AKIAIOSFODNN7EXAMPLE", "not-the-secret");
    let agent = scenario.start_agent(&config(&scenario, &mcp, &endpoint, &creds));

    // An unknown key: named, and the agent keeps serving (client_in asserts success).
    mcp.client_in(&scenario, "legacy");
    failed_with(&agent, "credentials_refused", "InvalidAccessKeyId");
    // The right key with the wrong secret: the signature does not verify.
    write_credentials(&creds, good.0, "not-the-secret");
    mcp.client_in(&scenario, "legacy");
    failed_with(&agent, "credentials_refused", "SignatureDoesNotMatch");
    assert!(manifest(&dir).is_empty(), "nothing was accepted yet");

    // The right credentials, picked up without a restart; the bucket does not exist yet.
    write_credentials(&creds, good.0, good.1);
    failed_with(&agent, "no_such_bucket", "NoSuchBucket");
    assert!(manifest(&dir).is_empty());

    s3_as(&endpoint, good, &["create", "lock"]);
    mcp.client_in(&scenario, "legacy");
    let files = wait_all_shipped(&dir, WAIT);
    agent.wait_for("audit shipping resumed", |_| true);
    assert!(agent.stop(libc::SIGTERM).success());
    // Files closed at shutdown ship at the next start; what is here is in the bucket once.
    each_shipped_once(&s3_json_as(&endpoint, good, &["objects"]), &manifest(&dir));
    assert!(files.iter().all(|f| manifest(&dir).contains(f)));
}

/// tests/audit/s3_gate.py between the agent and moto, its mode in a file; killed on drop.
struct Gate {
    child: Child,
    port: u16,
    mode: PathBuf,
}

impl Gate {
    fn start(upstream: u16, dir: &Path) -> Self {
        let port = free_port("127.0.0.1");
        let mode = dir.join("gate-mode");
        fs::write(&mode, "pass").unwrap();
        let child = Command::new(python())
            .arg(workspace().join("tests/audit/s3_gate.py"))
            .args([port.to_string(), upstream.to_string()])
            .arg(&mode)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("run tests/audit/s3_gate.py");
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "s3_gate.py never listened");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, port, mode }
    }

    fn set(&self, mode: &str) {
        fs::write(&self.mode, mode).unwrap();
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_5xx_storm_a_stalled_endpoint_and_clock_skew_queue_files_that_each_ship_once_after() {
    if !require_root(
        "a_5xx_storm_a_stalled_endpoint_and_clock_skew_queue_files_that_each_ship_once_after",
    ) {
        return;
    }
    let s3_server = S3Server::start(free_port("127.0.0.1"));
    s3(&s3_server.endpoint(), &["create", "lock"]);
    let mcp = McpServer::start("stateful", "json");
    let scenario = Scenario::new();
    let dir = scenario.audit_dir();
    let gate = Gate::start(s3_server.port(), scenario.dir.path());
    let creds = scenario.dir.path().join("s3-credentials.toml");
    write_credentials(&creds, "testing", "testing");
    gate.set("503");
    let agent = scenario.start_agent(&config(&scenario, &mcp, &endpoint(gate.port), &creds));

    mcp.client_in(&scenario, "legacy");
    let storm = failed_with(&agent, "service_unavailable", "HTTP 503");
    assert!(storm["backlog"].as_u64().unwrap() > 0, "{storm}");

    gate.set("stall");
    mcp.client_in(&scenario, "legacy");
    failed_with(&agent, "timeout", "no answer within timeout_secs");

    gate.set("skew");
    mcp.client_in(&scenario, "legacy");
    failed_with(&agent, "clock_skew", "RequestTimeTooSkewed");
    assert!(manifest(&dir).is_empty(), "nothing was accepted yet");
    let queued = closed(&dir).len();
    assert!(queued >= 3, "each phase closed files: {:?}", closed(&dir));

    gate.set("pass");
    let files = wait_all_shipped(&dir, WAIT);
    agent.wait_for("audit shipping resumed", |_| true);
    assert!(files.len() >= queued);
    each_shipped_once(&s3_json(&s3_server.endpoint(), &["objects"]), &files);
    assert!(agent.stop(libc::SIGTERM).success());
}

/// A tmpfs of `size` mounted at `path` (owner-only, as the agent wants its audit dir),
/// lazily unmounted on drop.
struct SmallDisk {
    path: PathBuf,
}

impl SmallDisk {
    fn mount(path: &Path, size: &str) -> Self {
        fs::create_dir_all(path).unwrap();
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(path)
            .status()
            .expect("run mount");
        assert!(status.success(), "mount tmpfs at {}", path.display());
        Self {
            path: path.to_owned(),
        }
    }

    /// Writes a filler file until the disk refuses (ENOSPC); returns its path.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let filler = self.path.join("filler");
        let mut file = fs::File::create(&filler).unwrap();
        let block = vec![0u8; 64 << 10];
        for _ in 0..10_000 {
            match file.write(&block) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => return filler,
                Err(e) => panic!("filling {}: {e}", self.path.display()),
            }
        }
        panic!("{} never filled up", self.path.display());
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

#[test]
fn a_full_disk_while_files_queue_loses_nothing_and_ships_each_once_after() {
    if !require_root("a_full_disk_while_files_queue_loses_nothing_and_ships_each_once_after") {
        return;
    }
    let mcp = McpServer::start("stateful", "json");
    let scenario = Scenario::new();
    let dir = scenario.audit_dir();
    let disk = SmallDisk::mount(&dir, "16m");
    let port = free_port("127.0.0.1");
    let creds = scenario.dir.path().join("s3-credentials.toml");
    write_credentials(&creds, "testing", "testing");
    let agent = scenario.start_agent(&config(&scenario, &mcp, &endpoint(port), &creds));

    // The endpoint is down: files queue on the small disk.
    mcp.client_in(&scenario, "legacy");
    failed_with(&agent, "unreachable", "cannot connect");
    let queued: Vec<String> = closed(&dir)
        .into_iter()
        .filter(|f| f.ends_with(".parquet"))
        .collect();
    assert!(!queued.is_empty());

    // The disk fills up; then the endpoint comes back. Uploads only read, so they go
    // through; recording them in the manifest cannot.
    let filler = disk.fill();
    let s3_server = S3Server::start(port);
    s3(&s3_server.endpoint(), &["create", "lock"]);
    failed_with(&agent, "local_io", "ship-manifest.tsv");
    let uploaded = s3_json(&s3_server.endpoint(), &["objects"]);
    assert!(
        !shipped_keys(&uploaded, "faulty").is_empty(),
        "an upload went through"
    );
    assert!(manifest(&dir).is_empty(), "nothing recorded on a full disk");
    for file in &queued {
        assert!(
            dir.join(file).exists(),
            "{file} lost while the disk was full"
        );
    }

    // Room again: the uploaded file is found by its hash and recorded, not sent twice.
    fs::remove_file(filler).unwrap();
    let files = wait_all_shipped(&dir, WAIT);
    assert!(queued.iter().all(|f| files.contains(f)));
    each_shipped_once(&s3_json(&s3_server.endpoint(), &["objects"]), &files);
    mcp.client_in(&scenario, "legacy");
    assert!(agent.stop(libc::SIGTERM).success());
}
