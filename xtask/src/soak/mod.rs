//! `cargo xtask soak --sessions N --minutes M`: N concurrent real MCP sessions (the Python
//! SDK's servers; a Rust client mixing Streamable HTTP JSON, SSE, held GET streams and the
//! legacy HTTP+SSE transport, see `client`) through interception with audit `sync`, for M
//! minutes. Reports the agent's RSS and open descriptors over time, call latency, errors
//! (must be 0), audit rows against messages (each exactly once), and `audit verify`.
//! Not for CI: the full run takes its minutes and most of a small machine.
//!
//! Like `bench`, it builds release binaries and re-runs itself from there (`--prebuilt`).

pub mod client;

use std::{
    io::Read as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use crate::{
    bench::fixture::{self, Agent, BoundedChild, Cgroup, PinDir},
    setup,
};
use client::SoakReport;

const AGENT_READY: Duration = Duration::from_secs(30);
/// Beyond its minutes, how long the client may take to finish its last calls.
const CLIENT_SLACK: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, clap::Args)]
pub struct SoakArgs {
    /// Concurrent MCP sessions (a quarter of each kind).
    #[arg(long, default_value_t = 1000)]
    sessions: usize,
    /// How long the sessions run.
    #[arg(long, default_value_t = 10)]
    minutes: u64,
    /// Pause between one session's tool calls. The default stays under uvicorn's 5 s
    /// keep-alive timeout: at about that pause, a call and the server's close of the idle
    /// connection race (README, "Soak").
    #[arg(long, default_value_t = 4_000)]
    interval_ms: u64,
    /// How often the agent's RSS and descriptors are sampled.
    #[arg(long, default_value_t = 10)]
    sample_secs: u64,
    /// `[audit.rotation] max_rows` for the agent (default: the agent's own): the open
    /// Parquet file's row group is held in memory until it closes, which shows in RSS.
    #[arg(long)]
    audit_max_rows: Option<u64>,
    #[arg(long, hide = true)]
    prebuilt: bool,
}

impl SoakArgs {
    fn options(&self) -> Vec<String> {
        vec![
            "--sessions".into(),
            self.sessions.to_string(),
            "--minutes".into(),
            self.minutes.to_string(),
            "--interval-ms".into(),
            self.interval_ms.to_string(),
            "--sample-secs".into(),
            self.sample_secs.to_string(),
        ]
        .into_iter()
        .chain(
            self.audit_max_rows
                .into_iter()
                .flat_map(|rows| ["--audit-max-rows".to_owned(), rows.to_string()]),
        )
        .collect()
    }

    fn client_limit(&self) -> Duration {
        Duration::from_secs(self.minutes * 60) + CLIENT_SLACK
    }
}

pub fn run(args: &SoakArgs) -> anyhow::Result<()> {
    fixture::require_root()?;
    if args.sessions == 0 || args.minutes == 0 || args.sample_secs == 0 {
        bail!("--sessions, --minutes and --sample-secs must be at least 1");
    }
    if args.prebuilt {
        return soak(args);
    }
    setup::ensure_all()?;
    crate::bench::build_release()?;
    let xtask = release_dir().join("xtask");
    let child = Command::new(&xtask)
        .args(["soak", "--prebuilt"])
        .args(args.options())
        .spawn()
        .with_context(|| format!("starting {}", xtask.display()))?;
    let limit = args.client_limit() + Duration::from_secs(300);
    let status = BoundedChild::new(child).wait_cleanup(limit)?;
    if !status.success() {
        bail!("the soak failed ({status})");
    }
    Ok(())
}

fn release_dir() -> PathBuf {
    setup::workspace_root().join("target/release")
}

/// One sample of the agent's footprint.
struct Sample {
    secs: u64,
    rss_kib: u64,
    fds: usize,
}

fn sample(pid: u32, started: Instant) -> Sample {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count);
    Sample {
        secs: started.elapsed().as_secs(),
        rss_kib,
        fds,
    }
}

/// The test suite's MCP server (tests/mcp/server.py) on a free port, killed on drop.
fn mcp_server(state: &str, response: &str) -> anyhow::Result<(BoundedChild, u16)> {
    let port = fixture::free_port()?;
    let root = setup::workspace_root();
    let child = Command::new(root.join("target/e2e/venv/bin/python"))
        .arg(root.join("tests/mcp/server.py"))
        .args([&port.to_string(), state, response])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting tests/mcp/server.py (run `cargo xtask setup`)")?;
    let child = BoundedChild::new(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("tests/mcp/server.py {state} {response} never listened on {port}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok((child, port))
}

fn soak(args: &SoakArgs) -> anyhow::Result<()> {
    let agent_bin = release_dir().join("gateway-agent");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting a runtime for signal handling")?;
    fixture::catch_interrupts(&runtime)?;
    fixture::ensure_bpffs()?;
    fixture::sweep_stale();
    let (_json, json_port) = mcp_server("stateful", "json")?;
    let (_sse, sse_port) = mcp_server("stateful", "sse")?;
    let (_legacy, legacy_port) = mcp_server("legacy-sse", "json")?;

    let cgroup = Cgroup::create()?;
    let dir = tempfile::Builder::new()
        .prefix("gateway-soak-")
        .tempdir()
        .context("creating a temporary directory")?;
    let config = dir.path().join("agent.toml");
    let pins = PinDir::new(&agent_bin, &config);
    let audit_dir = dir.path().join("audit");
    let listen_port = fixture::free_port()?;
    std::fs::write(
        &config,
        format!(
            "[intercept]\nports = {ports:?}\nlisten = \"127.0.0.1:{listen_port}\"\n\
             listen6 = \"[::1]:{listen_port}\"\ncgroup = \"{cgroup}\"\npin_dir = \"{pins}\"\n\n\
             [audit]\ndurability = \"sync\"\ndir = \"{audit}\"\n{rotation}",
            ports = [json_port, sse_port, legacy_port],
            cgroup = cgroup.path.display(),
            pins = pins.path.display(),
            audit = audit_dir.display(),
            rotation = args
                .audit_max_rows
                .map(|rows| format!("\n[audit.rotation]\nmax_rows = {rows}\n"))
                .unwrap_or_default(),
        ),
    )
    .with_context(|| format!("writing {}", config.display()))?;
    let agent = Agent::start(&agent_bin, &config, AGENT_READY)?;
    let pid = agent.pid();
    eprintln!(
        "xtask soak: {} sessions for {} min through the agent (pid {pid}, audit sync)",
        args.sessions, args.minutes
    );

    let exe = std::env::current_exe().context("locating the xtask binary")?;
    let mut command = Command::new("sh");
    command
        .args(["-c", "set -e; echo $$ > \"$0\"; exec \"$@\""])
        .arg(cgroup.procs())
        .arg(&exe)
        .args(["soak-client", "--json"])
        .arg(format!("127.0.0.1:{json_port}"))
        .arg("--sse")
        .arg(format!("127.0.0.1:{sse_port}"))
        .arg("--legacy")
        .arg(format!("127.0.0.1:{legacy_port}"))
        .args(["--sessions", &args.sessions.to_string()])
        .args(["--seconds", &(args.minutes * 60).to_string()])
        .args(["--interval-ms", &args.interval_ms.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let started = Instant::now();
    let mut samples = vec![sample(pid, started)];
    let mut child = command.spawn().context("starting the soak client")?;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        out
    });
    let mut child = BoundedChild::new(child);
    let deadline = started + args.client_limit();
    let mut next_sample = started + Duration::from_secs(args.sample_secs);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            bail!(
                "the soak client did not finish within {:?}",
                args.client_limit()
            );
        }
        fixture::check_interrupted()?;
        if Instant::now() >= next_sample {
            let s = sample(pid, started);
            eprintln!(
                "xtask soak: t={:>4}s rss={:>7} KiB fds={}",
                s.secs, s.rss_kib, s.fds
            );
            samples.push(s);
            next_sample += Duration::from_secs(args.sample_secs);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = reader.join().unwrap_or_default();
    if !status.success() {
        bail!("the soak client failed ({status})");
    }
    let report: SoakReport = serde_json::from_str(out.lines().last().unwrap_or_default())
        .with_context(|| format!("the soak client printed no report: {out:?}"))?;
    // Streams closed: what the agent holds once the sessions are gone.
    std::thread::sleep(Duration::from_secs(2));
    let after = sample(pid, started);
    drop(agent);

    let verify = Command::new(&agent_bin)
        .args(["audit", "verify", "--dir"])
        .arg(&audit_dir)
        .output()
        .context("running gateway-agent audit verify")?;
    let counts = audit_counts(&audit_dir)?;
    let verdict = Verdict::judge(&report, &counts, verify.status.success());
    let summary = json!({
        "command": format!("cargo xtask soak {}", args.options().join(" ")),
        "cpus": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "client": report,
        "agent": {
            "rss_kib": samples.iter().map(|s| json!([s.secs, s.rss_kib])).collect::<Vec<_>>(),
            "fds": samples.iter().map(|s| json!([s.secs, s.fds])).collect::<Vec<_>>(),
            "fds_after_sessions": after.fds,
            "rss_kib_after_sessions": after.rss_kib,
        },
        "audit": counts,
        "verify": String::from_utf8_lossy(&verify.stdout).trim(),
        "problems": verdict.problems,
    });
    let path = setup::workspace_root().join("target/soak/report.json");
    std::fs::create_dir_all(path.parent().expect("has a parent"))?;
    std::fs::write(&path, serde_json::to_string_pretty(&summary)?)?;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    println!("\nresults: {}", path.display());
    if !verdict.problems.is_empty() {
        bail!("the soak found problems: {:?}", verdict.problems);
    }
    Ok(())
}

/// Audit rows of MCP messages by direction, and request ids seen more than once, read
/// with DuckDB (the test virtualenv's) from the closed files.
fn audit_counts(dir: &Path) -> anyhow::Result<Value> {
    let script = format!(
        r#"
import duckdb, json
rows = "read_parquet('{dir}/**/*.parquet', hive_partitioning = true)"
# Client messages; server answers (not the legacy transport's `endpoint` event, nor the
# "not MCP" rows of its 202 Accepted bodies, which carry no request id).
sent = duckdb.sql(f"select count(*) from {{rows}} where direction = 'client_to_server'").fetchall()[0][0]
answers = duckdb.sql(f"select count(*) from {{rows}} where direction = 'server_to_client' and kind = 'response' and request_id is not null").fetchall()[0][0]
twice = duckdb.sql(f"select count(*) from (select session, request_id, direction, kind from {{rows}} where request_id is not null and kind in ('request', 'response') group by all having count(*) > 1)").fetchall()[0][0]
total = duckdb.sql(f"select count(*) from {{rows}}").fetchall()[0][0]
print(json.dumps({{"client_to_server": sent, "server_to_client": answers, "duplicated": twice, "rows": total}}))
"#,
        dir = dir.display()
    );
    let python = setup::workspace_root().join("target/e2e/venv/bin/python");
    let out = Command::new(python)
        .args(["-c", &script])
        .output()
        .context("counting audit rows with DuckDB")?;
    if !out.status.success() {
        bail!(
            "counting audit rows: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

struct Verdict {
    problems: Vec<String>,
}

impl Verdict {
    fn judge(report: &SoakReport, counts: &Value, verified: bool) -> Self {
        let mut problems = Vec::new();
        if report.errors > 0 {
            problems.push(format!("{} client errors", report.errors));
        }
        if !verified {
            problems.push("audit verify failed".into());
        }
        let sent = counts["client_to_server"].as_u64().unwrap_or(0);
        if sent != report.sent {
            problems.push(format!(
                "{} messages sent, {sent} client_to_server audit rows",
                report.sent
            ));
        }
        let received = counts["server_to_client"].as_u64().unwrap_or(0);
        if received != report.received {
            problems.push(format!(
                "{} answers received, {received} server_to_client audit rows",
                report.received
            ));
        }
        if counts["duplicated"].as_u64() != Some(0) {
            problems.push(format!(
                "request ids audited twice: {}",
                counts["duplicated"]
            ));
        }
        Self { problems }
    }
}
