//! `bench --rss`: the agent's resident memory idle, and with many SSE streams held open
//! through it at once (each a client connection, an upstream connection and a filter).
//!
//! Read from /proc/<pid>/status (`VmRSS`) of the agent process while a `bench-client
//! --hold-sse` inside the intercepted cgroup holds its streams; the client is told to let
//! go by closing its stdin, and killed by PID if it does not.

use std::{
    io::{BufRead as _, BufReader, Write as _},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use anyhow::{Context as _, bail};
use serde::Serialize;

use super::{
    fixture::{Agent, BoundedChild},
    sse_hold::HoldReport,
};

/// Bound on one measurement: opening the streams, sampling, closing.
pub const LIMIT: Duration = Duration::from_secs(120);

/// The agent's memory with one audit setting.
#[derive(Debug, Serialize)]
pub struct Memory {
    /// `agent`, or `baseline` (`--baseline-agent`).
    pub via: &'static str,
    pub audit: &'static str,
    /// Right after start-up, before any traffic.
    pub idle_kib: u64,
    pub streams_asked: usize,
    pub streams_open: usize,
    /// While the streams were held open.
    pub with_streams_kib: u64,
}

/// How to hold the streams.
pub struct Probe<'a> {
    /// The xtask binary (its `bench-client --hold-sse`).
    pub exe: &'a Path,
    pub cgroup_procs: PathBuf,
    /// The backend's SSE URL.
    pub url: &'a str,
    pub streams: usize,
}

pub fn measure(
    agent: &Agent,
    probe: &Probe<'_>,
    via: &'static str,
    audit: &'static str,
) -> anyhow::Result<Memory> {
    let idle_kib = rss_kib(agent.pid())?;
    eprintln!(
        "xtask bench: agent RSS idle {idle_kib} KiB; holding {} SSE streams through it",
        probe.streams
    );
    // sh moves itself into the cgroup, then execs the client (same PID).
    let mut child = Command::new("sh")
        .args(["-c", "set -e; echo $$ > \"$0\"; exec \"$@\""])
        .arg(&probe.cgroup_procs)
        .arg(probe.exe)
        .args(["bench-client", "--url", probe.url, "--hold-sse"])
        .arg(probe.streams.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting bench-client --hold-sse")?;
    let stdin = child.stdin.take().expect("stdin is piped");
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut child = BoundedChild::new(child);
    let (line_tx, line_rx) = mpsc::channel();
    // Ends with the client's stdout.
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = line_tx.send(line);
    });
    let line = line_rx
        .recv_timeout(LIMIT)
        .context("bench-client --hold-sse did not report its streams in time")?;
    let report: HoldReport = serde_json::from_str(line.trim())
        .with_context(|| format!("bench-client --hold-sse printed {line:?}"))?;
    let with_streams_kib = rss_kib(agent.pid())?;
    // Closing stdin lets the client go; it exits and its connections close.
    let mut stdin = stdin;
    let _ = stdin.flush();
    drop(stdin);
    let status = child.wait(LIMIT)?;
    if !status.success() {
        bail!("bench-client --hold-sse failed ({status})");
    }
    if report.open == 0 {
        bail!(
            "no SSE stream opened through the agent: {}",
            report.first_error.unwrap_or_default()
        );
    }
    if let Some(err) = &report.first_error {
        eprintln!(
            "xtask bench: {} stream(s) failed; first: {err}",
            report.errors
        );
    }
    Ok(Memory {
        via,
        audit,
        idle_kib,
        streams_asked: probe.streams,
        streams_open: report.open,
        with_streams_kib,
    })
}

/// `VmRSS` of `pid`, in KiB.
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc/<pid>/status")
}
