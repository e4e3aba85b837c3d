//! `cargo xtask fuzz [--secs N] [--target NAME]`: runs every cargo-fuzz target in fuzz/
//! (nightly, libFuzzer) for N seconds each, starting from its committed corpus, and
//! reports executions per target. A crash stops with the reproducer's path (libFuzzer
//! writes it under fuzz/artifacts/<target>/): commit it, fix the code, and
//! tests/fuzz_regressions.rs replays it on stable from then on.

use std::process::Command;

use anyhow::{Context as _, bail};

use crate::setup::{ensure_cargo_fuzz, workspace_root};

/// Every target in fuzz/Cargo.toml, in the order they run.
pub const TARGETS: [&str; 7] = [
    "jsonrpc",
    "sse",
    "mask",
    "json_doc",
    "policy",
    "wal_frames",
    "tls_peek",
];

#[derive(clap::Args)]
pub struct FuzzArgs {
    /// Seconds per target.
    #[arg(long, default_value_t = 60)]
    pub secs: u64,
    /// Only this target.
    #[arg(long)]
    pub target: Option<String>,
    /// A smoke run for CI: an unoptimised build without AddressSanitizer, which compiles
    /// in a fraction of the time (the agent is safe Rust; panics and timeouts are still
    /// caught). Real fuzzing sessions leave it off.
    #[arg(long)]
    pub quick: bool,
}

pub fn run(args: &FuzzArgs) -> anyhow::Result<()> {
    ensure_cargo_fuzz()?;
    let fuzz_dir = workspace_root().join("fuzz");
    let targets: Vec<&str> = match &args.target {
        Some(t) if TARGETS.contains(&t.as_str()) => vec![t.as_str()],
        Some(t) => bail!("no fuzz target {t:?} (have {})", TARGETS.join(", ")),
        None => TARGETS.to_vec(),
    };
    let mut report = Vec::new();
    for target in targets {
        let corpus = fuzz_dir.join("corpus").join(target);
        // New inputs go to a scratch directory; the committed corpus is only read.
        let scratch = workspace_root().join("target/fuzz-corpus").join(target);
        std::fs::create_dir_all(&scratch).context("creating the scratch corpus")?;
        let output = Command::new("cargo")
            .args(["+nightly", "fuzz", "run"])
            .args(if args.quick {
                &["--dev", "--sanitizer", "none"][..]
            } else {
                &[][..]
            })
            .arg(target)
            .arg(&scratch)
            .arg(&corpus)
            .args([
                "--",
                &format!("-max_total_time={}", args.secs),
                "-rss_limit_mb=2048",
                "-max_len=65536",
                "-timeout=10",
            ])
            // The smoke run's seconds go to executions: libFuzzer's entropic schedule
            // spends most of an unoptimised target's time on its own bookkeeping (`mask`
            // managed ~600 runs in 5 s with it, ~6 000 without). It changes which inputs
            // are tried next, not what each run checks.
            .args(args.quick.then_some("-entropic=0"))
            .current_dir(&fuzz_dir)
            .output()
            .with_context(|| format!("running cargo fuzz run {target}"))?;
        let log = String::from_utf8_lossy(&output.stderr);
        let runs = executions(&log);
        if !output.status.success() {
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            bail!(
                "fuzz target {target} failed after {runs:?} executions:\n{}",
                tail.join("\n")
            );
        }
        println!(
            "fuzz {target}: {} executions in {} s, no crash",
            runs.unwrap_or(0),
            args.secs
        );
        report.push((target, runs));
    }
    let total: u64 = report.iter().filter_map(|(_, r)| *r).sum();
    println!(
        "fuzz: {} targets, {total} executions, no crash",
        report.len()
    );
    Ok(())
}

/// libFuzzer's closing `Done N runs in S second(s)`, else its last `#N` status line.
fn executions(log: &str) -> Option<u64> {
    log.lines().rev().find_map(|line| {
        if let Some(rest) = line.strip_prefix("Done ") {
            return rest.split_whitespace().next()?.parse().ok();
        }
        line.strip_prefix('#')?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    })
}
