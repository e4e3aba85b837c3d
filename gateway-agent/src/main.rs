//! The `gateway-agent` command line: parses arguments and hands over to [`run`].
#![forbid(unsafe_code)]

use std::path::PathBuf;

use gateway_agent::{logging, run};

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Log output: `text` for people, `json` for one object per line.
    #[arg(long, value_enum, global = true, default_value = "text")]
    log_format: logging::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Attach interception and proxy intercepted connections until SIGTERM/SIGINT.
    Run {
        /// TOML config file; without it the embedded default config is used.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Remove interception on exit instead of leaving it pinned (fail closed).
        #[arg(long)]
        detach_on_exit: bool,
    },
    /// Validate a config exactly as `run` would, without attaching anything.
    Check {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Remove the pinned interception for the config's cgroup: MCP traffic goes direct.
    Detach {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Work with the audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute every row hash and link of the Parquet audit trail; names the first
    /// broken file and row, exits non-zero if there is one.
    Verify {
        /// The audit directory (`[audit] dir`).
        #[arg(long, default_value = "/var/lib/gateway-agent/audit")]
        dir: PathBuf,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    let result = match cli.command {
        Command::Run {
            config,
            detach_on_exit,
        } => run::run(config.as_deref(), detach_on_exit),
        Command::Check { config } => run::check(config.as_deref()),
        Command::Detach { config } => run::detach(config.as_deref()),
        Command::Audit {
            command: AuditCommand::Verify { dir },
        } => gateway_agent::audit::verify(&dir)
            .map(|report| println!("{report}"))
            .map_err(Into::into),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("gateway-agent: error: {}", render_chain(&err));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The error and its causes, each cause once: many of our errors already quote their
/// cause in their own message, and `{:#}` would print it a second time.
fn render_chain(err: &anyhow::Error) -> String {
    let mut message = err.to_string();
    for cause in err.chain().skip(1) {
        let cause = cause.to_string();
        if !message.contains(&cause) {
            message.push_str(": ");
            message.push_str(&cause);
        }
    }
    message
}
