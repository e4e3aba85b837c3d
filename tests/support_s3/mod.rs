//! The S3 side of the shipping tests (tests/audit_ship.rs, tests/audit_ship_faults.rs):
//! moto's S3 server on loopback, tests/audit/s3.py to read the bucket back with boto3, and
//! the audit directory's closed files against the shipper's manifest.
#![allow(dead_code)] // each test binary uses a different subset

use std::{
    fs,
    net::TcpStream,
    path::Path,
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::support::{WAIT, python, workspace};

pub const BUCKET: &str = "fleet-audit";
pub const PREFIX: &str = "fleet";

/// moto's S3 server on a loopback port, killed by PID on drop.
pub struct S3Server {
    child: Child,
    port: u16,
}

impl S3Server {
    pub fn start(port: u16) -> Self {
        Self::spawn(port, None)
    }

    /// With IAM authentication on after the first `free_actions` requests (moto's
    /// `INITIAL_NO_AUTH_ACTION_COUNT`): from then on only a key moto issued, with a valid
    /// SigV4 signature, is accepted.
    pub fn start_with_auth(port: u16, free_actions: u32) -> Self {
        Self::spawn(port, Some(free_actions))
    }

    fn spawn(port: u16, free_actions: Option<u32>) -> Self {
        let moto = workspace().join("target/e2e/venv/bin/moto_server");
        let mut command = Command::new(&moto);
        if let Some(count) = free_actions {
            command.env("INITIAL_NO_AUTH_ACTION_COUNT", count.to_string());
        }
        let child = command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{} ({e}): run `cargo xtask setup`", moto.display()));
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto_server never listened on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, port }
    }

    pub fn endpoint(&self) -> String {
        endpoint(self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn endpoint(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// tests/audit/s3.py ENDPOINT BUCKET ARGS…; panics with its stderr on failure.
pub fn s3(endpoint: &str, args: &[&str]) -> Output {
    s3_as(endpoint, ("testing", "testing"), args)
}

/// [`s3`] signed with `(access key id, secret)`.
pub fn s3_as(endpoint: &str, key: (&str, &str), args: &[&str]) -> Output {
    let out = Command::new(python())
        .arg(workspace().join("tests/audit/s3.py"))
        .args([endpoint, BUCKET])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", key.0)
        .env("AWS_SECRET_ACCESS_KEY", key.1)
        .stdin(Stdio::null())
        .output()
        .expect("run tests/audit/s3.py");
    assert!(
        out.status.success(),
        "s3.py {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn s3_json(endpoint: &str, args: &[&str]) -> Value {
    s3_json_as(endpoint, ("testing", "testing"), args)
}

pub fn s3_json_as(endpoint: &str, key: (&str, &str), args: &[&str]) -> Value {
    serde_json::from_slice(&s3_as(endpoint, key, args).stdout).expect("s3.py prints JSON")
}

/// Closed audit files under `dir`, relative paths (`dt=…/audit-….parquet`).
pub fn closed(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for part in fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = part.file_name().to_string_lossy().into_owned();
        if !name.starts_with("dt=") {
            continue;
        }
        for file in fs::read_dir(part.path()).into_iter().flatten().flatten() {
            let file_name = file.file_name().to_string_lossy().into_owned();
            if file_name.ends_with(".parquet") || file_name.ends_with(".parquet.tmp") {
                out.push(format!("{name}/{file_name}"));
            }
        }
    }
    out.sort();
    out
}

/// Paths the shipper confirmed, from its manifest (complete lines only).
pub fn manifest(dir: &Path) -> Vec<String> {
    let text = fs::read_to_string(dir.join("ship-manifest.tsv")).unwrap_or_default();
    let mut out: Vec<String> = text
        .split_inclusive('\n')
        .filter(|l| l.ends_with('\n') && l.split('\t').count() == 3)
        .filter_map(|l| l.split('\t').next())
        .map(str::to_owned)
        .collect();
    out.sort();
    out
}

/// Waits (bounded) until every file the agent wrote is closed and in its manifest.
#[track_caller]
pub fn wait_all_shipped(dir: &Path, within: Duration) -> Vec<String> {
    let deadline = Instant::now() + within;
    loop {
        let files = closed(dir);
        if !files.is_empty()
            && files.iter().all(|f| f.ends_with(".parquet"))
            && manifest(dir) == files
        {
            return files;
        }
        assert!(
            Instant::now() < deadline,
            "not everything shipped: closed {files:?}, manifest {:?}",
            manifest(dir)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The bucket's keys for `host`, relative to its partition (`dt=…/audit-….parquet`).
pub fn shipped_keys(objects: &Value, host: &str) -> Vec<String> {
    let prefix = format!("{PREFIX}/host={host}/");
    let mut keys: Vec<String> = objects
        .as_object()
        .unwrap()
        .keys()
        .filter_map(|k| k.strip_prefix(&prefix).map(str::to_owned))
        .collect();
    keys.sort();
    keys
}
