//! `cargo xtask …`: the commands README.md promises, each doing its own set-up on a fresh
//! machine of this kind, idempotently.
#![forbid(unsafe_code)]

mod bench;
mod fuzz;
mod package;
mod setup;
mod soak;

use std::process::Command;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "gateway-agent developer tasks")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install the eBPF toolchain and test prerequisites (skips what is present).
    Setup,
    /// Set up, then run every test (unit, CLI, and the privileged end-to-end tests).
    Test {
        /// Extra arguments for `cargo test` (e.g. a test name filter).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Set up, build in release mode and run the agent (embedded default config unless
    /// `--config FILE` is passed through).
    Run {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Set up, build in release mode and measure requests/s and p50/p99 latency of
    /// keep-alive HTTP requests, direct vs through the agent (needs root).
    Bench(bench::BenchArgs),
    /// Run every cargo-fuzz target (nightly, libFuzzer) for `--secs` each from the
    /// committed corpora; fails with the reproducer on a crash.
    Fuzz(fuzz::FuzzArgs),
    /// The benchmark's load generator (started by `bench`, directly or in the agent's
    /// cgroup); prints one JSON line.
    #[command(hide = true)]
    BenchClient(bench::client::ClientArgs),
    /// Set up, build in release mode and run N concurrent real MCP sessions through the
    /// agent for M minutes: RSS and descriptors over time, p99, errors, audit rows against
    /// messages, `audit verify` (needs root; not for CI).
    Soak(soak::SoakArgs),
    /// The soak's load (started by `soak` in the agent's cgroup); prints one JSON line.
    #[command(hide = true)]
    SoakClient(soak::client::SoakClientArgs),
    /// Build the Debian package (release binary, hardened unit, conffiles, man page,
    /// completions, maintainer scripts) into target/debian/.
    Package(package::PackageArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Task::Setup => setup::ensure_all(),
        Task::Test { args } => {
            setup::ensure_all()?;
            // Every test binary runs even when one fails, so one run shows every failure.
            cargo(&["test", "--no-fail-fast"], &args)
        }
        Task::Run { args } => {
            setup::ensure_all()?;
            cargo(
                &[
                    "run",
                    "--release",
                    "--package",
                    "gateway-agent",
                    "--",
                    "run",
                ],
                &args,
            )
        }
        Task::Bench(args) => bench::run(&args),
        Task::Fuzz(args) => fuzz::run(&args),
        Task::BenchClient(args) => bench::client::run(&args),
        Task::Soak(args) => soak::run(&args),
        Task::SoakClient(args) => soak::client::run(&args),
        Task::Package(args) => {
            if args.setup() {
                setup::ensure_all()?;
            }
            package::run(&args)
        }
    }
}

fn cargo(base: &[&str], extra: &[String]) -> anyhow::Result<()> {
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(base)
        .args(extra)
        .status()
        .with_context(|| format!("running cargo {}", base.join(" ")))?;
    if !status.success() {
        bail!("cargo {} failed ({status})", base.join(" "));
    }
    Ok(())
}
