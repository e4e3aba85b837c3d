//! `cargo xtask bench`: requests/s and p50/p99 latency of small keep-alive HTTP/1.1
//! requests, direct and through the agent, in the same run against the same backend.
//!
//! The agent intercepts by cgroup, so "direct" and "proxied" are the same client binary
//! started outside and inside the agent's cgroup: the only difference between the two
//! measurements is the agent in the path.
//!
//! `cargo xtask` runs a debug build, and a debug hyper client and server would be slow
//! enough to hide the agent's cost. So after set-up the command builds xtask in release
//! mode too and re-runs itself from there (`--prebuilt`); the backend and load generator
//! are then as optimised as the agent they measure.

pub mod client;
mod cpu;
pub mod fixture;
mod peers;
mod report;
mod rss;
mod server;
mod sse_hold;
mod tls;

use std::{path::PathBuf, process::Command, time::Duration};

use anyhow::{Context as _, bail};

use crate::setup;
use fixture::{Agent, BoundedChild, Cgroup, PinDir};
use report::{Report, Scenario};

/// Bound on the agent's start-up (eBPF load and attach).
const AGENT_READY: Duration = Duration::from_secs(30);
/// A client may run this much longer than its warm-up plus measured time (start-up, its
/// own per-request timeout, printing) before it is killed.
const CLIENT_SLACK: Duration = Duration::from_secs(30);
/// How long the agent's "intercepted connection" line may trail the proxied client.
const LOG_LAG: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Concurrency levels to measure (keep-alive connections), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,32")]
    concurrency: Vec<usize>,
    /// Measured time per run (each level runs direct, then proxied).
    #[arg(long, default_value_t = 5_000)]
    duration_ms: u64,
    /// Warm-up before each run's measurement starts.
    #[arg(long, default_value_t = 1_000)]
    warmup_ms: u64,
    /// Audit settings to measure the agent with, comma-separated: `off`, `sync` (every
    /// row fsynced before the traffic moves on: the default durability) or `interval`.
    /// Each gets its own agent; the direct baseline is measured again next to each.
    #[arg(long, value_delimiter = ',', default_value = "off,sync")]
    audit: Vec<AuditMode>,
    /// Also measure TLS: a TLS backend the agent terminates (its local CA towards the
    /// client, verified TLS to the backend), on kept-alive connections and with a new
    /// connection per request, next to plain HTTP in the same run.
    #[arg(long)]
    tls: bool,
    /// Also measure nginx (plain reverse proxy) and mitmproxy (`mitmdump`, reverse mode)
    /// in front of the same backend with the same load, kept-alive, each next to its own
    /// direct baseline (installed on first use).
    #[arg(long)]
    peers: bool,
    /// Also measure the agent's resident memory: idle, and with `--rss-streams` SSE
    /// streams held open through it at once.
    #[arg(long)]
    rss: bool,
    /// SSE streams held open for `--rss`.
    #[arg(long, default_value_t = 1_000)]
    rss_streams: usize,
    /// Another agent binary (an earlier build) to measure next to this one, with the same
    /// settings in the same run (labelled `baseline`): before/after figures that share the
    /// machine's load. Repeat it to compare several builds (each labelled by its file name).
    #[arg(long)]
    baseline_agent: Vec<PathBuf>,
    /// Set-up and release build are done: measure in this process.
    #[arg(long, hide = true)]
    prebuilt: bool,
}

impl BenchArgs {
    /// The arguments that reproduce this run, as a user would type them.
    fn options(&self) -> Vec<String> {
        let levels: Vec<String> = self.concurrency.iter().map(usize::to_string).collect();
        let mut options = vec![
            "--concurrency".into(),
            levels.join(","),
            "--duration-ms".into(),
            self.duration_ms.to_string(),
            "--warmup-ms".into(),
            self.warmup_ms.to_string(),
            "--audit".into(),
            self.audit
                .iter()
                .map(|mode| mode.as_str())
                .collect::<Vec<_>>()
                .join(","),
        ];
        if self.tls {
            options.push("--tls".into());
        }
        if self.peers {
            options.push("--peers".into());
        }
        if self.rss {
            options.push("--rss".into());
            options.push("--rss-streams".into());
            options.push(self.rss_streams.to_string());
        }
        for path in &self.baseline_agent {
            options.push("--baseline-agent".into());
            options.push(path.display().to_string());
        }
        options
    }

    fn command_line(&self) -> String {
        format!("cargo xtask bench {}", self.options().join(" "))
    }

    fn client_limit(&self) -> Duration {
        Duration::from_millis(self.warmup_ms + self.duration_ms) + CLIENT_SLACK
    }

    /// Upper bound for the whole measurement process.
    fn total_limit(&self) -> Duration {
        let transports = if self.tls { 4 } else { 2 };
        let peers = if self.peers { 4 } else { 0 };
        let runs =
            2 * u32::try_from(self.concurrency.len() * (self.audit.len() * transports + peers))
                .unwrap_or(u32::MAX);
        let builds = 1 + u32::try_from(self.baseline_agent.len()).unwrap_or(u32::MAX);
        let runs = runs * builds;
        let agents = u32::try_from(self.audit.len()).unwrap_or(u32::MAX) * builds;
        let rss = if self.rss {
            rss::LIMIT * agents
        } else {
            Duration::ZERO
        };
        // Peers may be installed on first use (apt, pip).
        let install = if self.peers {
            Duration::from_secs(600)
        } else {
            Duration::ZERO
        };
        AGENT_READY * agents + self.client_limit() * runs + rss + install + Duration::from_secs(60)
    }
}

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    fixture::require_root()?;
    if args.concurrency.is_empty() || args.concurrency.contains(&0) || args.duration_ms == 0 {
        bail!("--concurrency needs levels of at least 1, and --duration-ms at least 1");
    }
    if args.prebuilt {
        measure(args)
    } else {
        build_and_rerun(args)
    }
}

/// The release agent and this xtask (whose hidden subcommands are the load clients).
pub(crate) fn build_release() -> anyhow::Result<()> {
    crate::cargo(
        &[
            "build",
            "--release",
            "--package",
            "gateway-agent",
            "--package",
            "xtask",
        ],
        &[],
    )
}

fn release_dir() -> PathBuf {
    setup::workspace_root().join("target/release")
}

fn build_and_rerun(args: &BenchArgs) -> anyhow::Result<()> {
    setup::ensure_all()?;
    if args.peers {
        peers::ensure_installed()?;
    }
    build_release()?;
    // Ctrl-C reaches the release process too, which then cleans up; this one waits for
    // that instead of returning the shell while clean-up is still running.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting a runtime for signal handling")?;
    fixture::catch_interrupts(&runtime)?;
    let xtask = release_dir().join("xtask");
    let child = Command::new(&xtask)
        .args(["bench", "--prebuilt"])
        .args(args.options())
        .spawn()
        .with_context(|| format!("starting {}", xtask.display()))?;
    let status = BoundedChild::new(child).wait_cleanup(args.total_limit())?;
    if !status.success() {
        bail!("the benchmark failed ({status})");
    }
    Ok(())
}

fn measure(args: &BenchArgs) -> anyhow::Result<()> {
    let agent_bin = release_dir().join("gateway-agent");
    if !agent_bin.exists() {
        bail!(
            "{} is missing: run `cargo xtask bench`",
            agent_bin.display()
        );
    }
    fixture::ensure_bpffs()?;
    fixture::sweep_stale();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the backend runtime")?;
    fixture::catch_interrupts(&runtime)?;
    let backend = server::start(&runtime)?;
    let url = format!("http://{backend}/mcp");
    let tls_dir = tempfile::Builder::new()
        .prefix("gateway-bench-tls-")
        .tempdir()
        .context("creating a temporary directory")?;
    let backend_ca = tls_dir.path().join("backend-ca.pem");
    let agent_ca_dir = tls_dir.path().join("agent-ca");
    // (label, url, extra client arguments) for each kind of traffic measured.
    // `sse`: the answer as an SSE stream of one event (the MCP SDKs' default).
    // `conn-new`: a new connection per request (connections/s through interception).
    let mut transports = vec![
        ("http", url.clone(), Vec::new()),
        (
            "sse",
            format!("http://{backend}{}", server::SSE_ANSWER_PATH),
            Vec::new(),
        ),
        (
            "conn-new",
            url.clone(),
            vec!["--fresh-connections".to_owned()],
        ),
    ];
    let mut tls_config = String::new();
    let mut ports = vec![backend.port()];
    if args.tls {
        let tls_backend = server::start_tls(&runtime, tls::backend(&backend_ca)?)?;
        let init = Command::new(&agent_bin)
            .args(["ca", "init", "--dir"])
            .arg(&agent_ca_dir)
            .output()
            .context("running gateway-agent ca init")?;
        if !init.status.success() {
            bail!(
                "gateway-agent ca init: {}",
                String::from_utf8_lossy(&init.stderr)
            );
        }
        let tls_url = format!("https://localhost:{}/mcp", tls_backend.port());
        let cas = vec![
            "--ca".to_owned(),
            backend_ca.display().to_string(),
            "--ca".to_owned(),
            agent_ca_dir.join("ca.pem").display().to_string(),
        ];
        let mut fresh = cas.clone();
        fresh.push("--fresh-connections".to_owned());
        transports.push(("tls", tls_url.clone(), cas));
        transports.push(("tls-new", tls_url, fresh));
        ports.push(tls_backend.port());
        tls_config = format!(
            "\n[tls]\nca_dir = \"{}\"\n\n[[server]]\nname = \"bench-tls\"\naddr = \"{tls_backend}\"\n\
             tls = \"terminate\"\nupstream_ca = [\"{}\"]\n",
            agent_ca_dir.display(),
            backend_ca.display()
        );
    }

    // Declared in set-up order, so they are dropped in reverse: agent stopped, then
    // interception detached (needs the config), then the config dir and the cgroup.
    let cgroup = Cgroup::create()?;
    let dir = tempfile::Builder::new()
        .prefix("gateway-bench-")
        .tempdir()
        .context("creating a temporary directory")?;
    let config = dir.path().join("agent.toml");
    let pins = PinDir::new(&agent_bin, &config);
    let listen_port = fixture::free_port()?;
    let exe = std::env::current_exe().context("locating the xtask binary")?;
    let mut scenarios = Vec::new();
    let mut memory = Vec::new();
    let mut agents = vec![("agent", agent_bin.clone())];
    for path in &args.baseline_agent {
        agents.push((
            baseline_label(path, args.baseline_agent.len()),
            path.clone(),
        ));
    }
    for &audit in &args.audit {
        for &(via, ref agent_bin) in &agents {
            let audit_dir = dir.path().join(format!("audit-{}-{via}", audit.as_str()));
            std::fs::write(
                &config,
                format!(
                    "[intercept]\nports = {ports:?}\nlisten = \"127.0.0.1:{listen_port}\"\n\
                 listen6 = \"[::1]:{listen_port}\"\ncgroup = \"{cgroup}\"\npin_dir = \"{pins}\"\n\
                 {tls_config}\n[audit]\n{audit_settings}dir = \"{audit_dir}\"\n",
                    cgroup = cgroup.path.display(),
                    pins = pins.path.display(),
                    audit_settings = audit.settings(),
                    audit_dir = audit_dir.display(),
                ),
            )
            .with_context(|| format!("writing {}", config.display()))?;
            let agent = Agent::start(agent_bin, &config, AGENT_READY)?;
            eprintln!(
                "xtask bench: backend {backend}, {via} (audit {}) on 127.0.0.1:{listen_port} intercepting {}",
                audit.as_str(),
                cgroup.path.display()
            );
            if args.rss {
                let sse_url = format!("http://{backend}/sse");
                let probe = rss::Probe {
                    exe: &exe,
                    cgroup_procs: cgroup.procs(),
                    url: &sse_url,
                    streams: args.rss_streams,
                };
                memory.push(rss::measure(&agent, &probe, via, audit.as_str())?);
            }
            for &concurrency in &args.concurrency {
                for (transport, url, extra) in &transports {
                    let mut client_args = vec![
                        "bench-client".to_owned(),
                        "--url".to_owned(),
                        url.clone(),
                        "--concurrency".to_owned(),
                        concurrency.to_string(),
                        "--duration-ms".to_owned(),
                        args.duration_ms.to_string(),
                        "--warmup-ms".to_owned(),
                        args.warmup_ms.to_string(),
                    ];
                    client_args.extend(extra.iter().cloned());
                    eprintln!("xtask bench: c={concurrency} {transport} direct");
                    let mut direct = Command::new(&exe);
                    direct.args(&client_args);
                    let (_, direct) = run_client(direct, args)?;

                    eprintln!(
                        "xtask bench: c={concurrency} {transport} through the agent (audit {})",
                        audit.as_str()
                    );
                    // sh moves itself into the cgroup, then execs the client: same PID, so the
                    // client's connects are the cgroup's from its first instruction.
                    let mut proxied = Command::new("sh");
                    proxied
                        .args(["-c", "set -e; echo $$ > \"$0\"; exec \"$@\""])
                        .arg(cgroup.procs())
                        .arg(&exe)
                        .args(&client_args);
                    let before = cpu::sample(&[agent.pid()]);
                    let (pid, proxied) = run_client(proxied, args)?;
                    let agent_cpu = before.per_call(cpu::sample(&[agent.pid()]), proxied.completed);
                    let intercepted = agent.intercepted_from(pid, LOG_LAG);
                    if intercepted == 0 {
                        bail!(
                            "the proxied client (pid {pid}) never went through the agent: no \
                         \"intercepted connection\" line for it; agent log tail:\n{}",
                            agent.tail()
                        );
                    }
                    scenarios.push(
                        Scenario::new(
                            via,
                            concurrency,
                            audit.as_str(),
                            transport,
                            direct,
                            proxied,
                            intercepted,
                        )
                        .with_proxy_cpu(agent_cpu),
                    );
                }
            }
            // Stopped (SIGTERM) before the next agent binds the same listener.
            drop(agent);
        }
    }
    if args.peers {
        scenarios.extend(measure_peers(args, &exe, backend)?);
    }

    let report = Report {
        command: args.command_line(),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_owned(),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        duration_ms: args.duration_ms,
        warmup_ms: args.warmup_ms,
        scenarios,
        memory,
    };
    report.print();
    let json = setup::workspace_root().join("target/bench/intercept.json");
    report.write(&json)?;
    println!("\nresults: {}", json.display());
    Ok(())
}

/// `baseline` for the one earlier build; with several, each by its file name (a row label
/// lives as long as the report).
fn baseline_label(path: &std::path::Path, builds: usize) -> &'static str {
    match path.file_name() {
        Some(name) if builds > 1 => Box::leak(name.to_string_lossy().into_owned().into_boxed_str()),
        _ => "baseline",
    }
}

/// nginx and mitmproxy in front of the same backend, each level measured direct then
/// through the peer, plain HTTP kept alive and with a new connection per call (the
/// agent's `http` and `conn-new` scenarios).
fn measure_peers(
    args: &BenchArgs,
    exe: &std::path::Path,
    backend: std::net::SocketAddr,
) -> anyhow::Result<Vec<Scenario>> {
    let direct_url = format!("http://{backend}/mcp");
    let mut scenarios = Vec::new();
    for start in [peers::start_nginx, peers::start_mitmproxy] {
        let peer = start(backend)?;
        eprintln!(
            "xtask bench: {} on {} in front of {backend}",
            peer.name, peer.addr
        );
        for &concurrency in &args.concurrency {
            for (transport, extra) in [("http", None), ("conn-new", Some("--fresh-connections"))] {
                let client = |url: &str| {
                    let mut command = Command::new(exe);
                    command.args([
                        "bench-client",
                        "--url",
                        url,
                        "--concurrency",
                        &concurrency.to_string(),
                        "--duration-ms",
                        &args.duration_ms.to_string(),
                        "--warmup-ms",
                        &args.warmup_ms.to_string(),
                    ]);
                    command.args(extra);
                    command
                };
                eprintln!("xtask bench: c={concurrency} {transport} direct");
                let (_, direct) = run_client(client(&direct_url), args)?;
                eprintln!(
                    "xtask bench: c={concurrency} {transport} through {}",
                    peer.name
                );
                let before = cpu::sample(&peer.pids());
                let (_, proxied) = run_client(client(&peer.url()), args)?;
                let peer_cpu = before.per_call(cpu::sample(&peer.pids()), proxied.completed);
                scenarios.push(
                    Scenario::new(peer.name, concurrency, "-", transport, direct, proxied, 0)
                        .with_proxy_cpu(peer_cpu),
                );
            }
        }
    }
    Ok(scenarios)
}

/// How the measured agent audits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum AuditMode {
    Off,
    Sync,
    Interval,
}

impl AuditMode {
    fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Sync => "sync",
            Self::Interval => "interval",
        }
    }

    /// Lines for the config's `[audit]` table.
    fn settings(self) -> &'static str {
        match self {
            Self::Off => "enabled = false\n",
            Self::Sync => "durability = \"sync\"\n",
            Self::Interval => "durability = \"interval\"\n",
        }
    }
}

/// Runs one bench-client, bounded, and parses its report. A run with failed requests is
/// not a measurement of the agent's speed, so it fails the benchmark.
fn run_client(command: Command, args: &BenchArgs) -> anyhow::Result<(u32, client::ClientReport)> {
    let (pid, stdout) = fixture::run_captured(command, args.client_limit())?;
    let line = stdout.lines().last().unwrap_or_default();
    let report: client::ClientReport = serde_json::from_str(line)
        .with_context(|| format!("bench-client printed no report: {stdout:?}"))?;
    if report.errors > 0 || report.requests == 0 {
        bail!(
            "bench-client had {} error(s) and {} measured requests: {line}",
            report.errors,
            report.requests
        );
    }
    Ok((pid, report))
}
