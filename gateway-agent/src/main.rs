//! The `gateway-agent` command line: parses arguments and hands over to [`run`].
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use gateway_agent::{audit::replay, config::Config, logging, run, tls};

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
    /// Decide MCP calls held for approval, through the running agent's admin socket (you
    /// are identified by your uid; you can never approve your own request).
    Approvals {
        /// The admin socket. Default: `[approval] socket` of --config, else
        /// /run/gateway-agent/approvals.sock.
        #[arg(long, global = true)]
        socket: Option<PathBuf>,
        /// Read the socket path from this agent config.
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: ApprovalsCommand,
    },
    /// The local CA that signs the certificates of terminated TLS servers.
    Ca {
        /// Config whose `[tls] ca_dir` holds the CA; without it, the embedded default's.
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        /// The CA directory, overriding the config's `[tls] ca_dir`.
        #[arg(long, global = true)]
        dir: Option<PathBuf>,
        #[command(subcommand)]
        command: CaCommand,
    },
}

#[derive(Subcommand)]
enum ApprovalsCommand {
    /// Open approvals (oldest first), then recently closed ones.
    List {
        /// The approvals as one JSON array.
        #[arg(long)]
        json: bool,
    },
    /// One approval, every field, as JSON.
    Show { id: String },
    /// Approve: the held call goes through (once the quorum is reached).
    Approve {
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Deny: the caller is told the reason.
    Deny {
        id: String,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand)]
enum CaCommand {
    /// Create the CA (ECDSA P-256; key file 0600) unless one exists; never overwrites.
    Init,
    /// Print the CA certificate (PEM) to stdout.
    Export,
    /// Add the CA to the system trust store and print what other runtimes need.
    Install {
        /// Local certificate directory `update-ca-certificates` reads.
        #[arg(long, default_value = tls::install::DEFAULT_STORE)]
        store: PathBuf,
        /// Where `update-ca-certificates` writes the bundle and links.
        #[arg(long, default_value = tls::install::DEFAULT_ETC_CERTS)]
        etc_certs: PathBuf,
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
        /// Check every file's signature against this public key (hex, as `audit pubkey`
        /// prints it) instead of the directory's own `audit-signing.pub`, which is as
        /// writable as the trail.
        #[arg(long)]
        pubkey: Option<PathBuf>,
        /// A signed checkpoint the agent logged (`audit checkpoint`), as the log line or
        /// a file of log lines (the newest one counts): its head must still be in the
        /// trail, which catches a tail cut off and re-signed.
        #[arg(long, value_name = "LINE_OR_FILE")]
        checkpoint: Option<String>,
    },
    /// Print the public key that signs the audit files (hex), for verifiers to pin.
    Pubkey {
        /// Agent config whose `[audit]` locates the key; without it, the embedded
        /// default's.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// List sessions, one line each (newest last): first/last time, who, process, server,
    /// message, denied and masked counts. Reads the closed files and the rows still only
    /// in the write-ahead log, so a session is listed as soon as it is recorded.
    Sessions {
        /// The audit directory (`[audit] dir`).
        #[arg(long, default_value = "/var/lib/gateway-agent/audit")]
        dir: PathBuf,
        /// Only sessions with a row whose `user`, `sub` or `email` is this.
        #[arg(long)]
        user: Option<String>,
        /// Only rows at or after this time: RFC 3339 (`2026-11-26T10:00:00Z`) or an age
        /// (`30m`, `2h`, `7d`).
        #[arg(long)]
        since: Option<String>,
        /// One JSON object per session instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one session's messages in chain order: who, when, direction, method/tool,
    /// masked payload, status, decision and masking. Includes the rows still only in the
    /// write-ahead log.
    Replay {
        /// The session id (see `audit sessions`).
        session: String,
        /// The audit directory (`[audit] dir`).
        #[arg(long, default_value = "/var/lib/gateway-agent/audit")]
        dir: PathBuf,
        /// One JSON object per row (JSON lines), every column, hashes in hex.
        #[arg(long)]
        json: bool,
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
            command:
                AuditCommand::Verify {
                    dir,
                    pubkey,
                    checkpoint,
                },
        } => audit_verify(&dir, pubkey.as_deref(), checkpoint.as_deref()),
        Command::Audit {
            command: AuditCommand::Pubkey { config },
        } => Config::load(config.as_deref())
            .map_err(anyhow::Error::from)
            .and_then(|config| Ok(gateway_agent::audit::sign::read_key(&config.audit)?))
            .map(|key| println!("{}", gateway_agent::audit::sign::public_hex(&key))),
        Command::Audit {
            command:
                AuditCommand::Sessions {
                    dir,
                    user,
                    since,
                    json,
                },
        } => audit_sessions(&dir, user, since.as_deref(), json),
        Command::Audit {
            command: AuditCommand::Replay { session, dir, json },
        } => audit_replay(&dir, &session, json),
        Command::Approvals {
            socket,
            config,
            command,
        } => approvals(socket, config.as_deref(), command),
        Command::Ca {
            config,
            dir,
            command,
        } => ca(config.as_deref(), dir, command),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("gateway-agent: error: {}", render_chain(&err));
            std::process::ExitCode::FAILURE
        }
    }
}

fn audit_verify(dir: &Path, pubkey: Option<&Path>, checkpoint: Option<&str>) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use gateway_agent::audit::{checkpoint as cp, sign};
    let pinned = match pubkey {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the public key {}", path.display()))?;
            Some(
                sign::parse_public(&text)
                    .map_err(|problem| anyhow::anyhow!("{}: {problem}", path.display()))?,
            )
        }
    };
    let report = gateway_agent::audit::verify::verify_pinned(dir, pinned)?;
    println!("{report}");
    if let Some(path) = pubkey {
        println!("every file signed by the key in {}", path.display());
    }
    if let Some(arg) = checkpoint {
        let checkpoint = cp::load(arg).map_err(anyhow::Error::msg)?;
        let key = match pinned {
            Some(key) => Some(key),
            None => sign::pinned_key(dir).map_err(anyhow::Error::msg)?,
        };
        let found = cp::check(dir, &checkpoint, key.as_ref()).map_err(anyhow::Error::msg)?;
        println!(
            "checkpoint of {} (row {}) found at row {}, {} rows after it{}",
            checkpoint.time,
            checkpoint.rows,
            found.position,
            found.after,
            if found.position == checkpoint.rows {
                ""
            } else {
                " (older rows were removed since, e.g. by retention)"
            }
        );
    }
    Ok(())
}

fn audit_sessions(
    dir: &Path,
    user: Option<String>,
    since: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
    let filter = replay::SessionFilter {
        user,
        since_us: since
            .map(|text| replay::parse_since(text, now_us))
            .transpose()?,
    };
    let sessions = replay::sessions(dir, &filter)?;
    if json {
        for session in &sessions {
            println!("{}", replay::session_json(session));
        }
    } else {
        print!("{}", replay::render_sessions(&sessions));
    }
    Ok(())
}

fn ca(config: Option<&Path>, dir: Option<PathBuf>, command: CaCommand) -> anyhow::Result<()> {
    let dir = match dir {
        Some(dir) => dir,
        None => Config::load(config)?.tls.ca_dir,
    };
    match command {
        CaCommand::Init => match tls::ca::init(&dir)? {
            tls::ca::Init::Created => println!(
                "created the local CA in {} (key {} is readable by root only)",
                dir.display(),
                tls::ca::key_path(&dir).display()
            ),
            tls::ca::Init::AlreadyThere => {
                println!(
                    "a local CA already exists in {}; left as it is",
                    dir.display()
                )
            }
        },
        CaCommand::Export => print!("{}", tls::ca::load(&dir)?.cert_pem),
        CaCommand::Install { store, etc_certs } => {
            let installed = tls::install::install(&dir, &store, &etc_certs)?;
            println!(
                "installed {} into the system store; bundle: {}",
                installed.cert.display(),
                installed.bundle.display()
            );
            print!("{}", tls::install::runtime_lines(&installed));
        }
    }
    Ok(())
}

fn audit_replay(dir: &Path, session: &str, json: bool) -> anyhow::Result<()> {
    let rows = replay::replay(dir, session)?;
    if json {
        for row in &rows {
            println!("{}", replay::record_json(row));
        }
    } else {
        print!("{}", replay::render_replay(&rows));
    }
    Ok(())
}

fn approvals(
    socket: Option<PathBuf>,
    config: Option<&Path>,
    command: ApprovalsCommand,
) -> anyhow::Result<()> {
    use gateway_agent::approval::{admin::Request, client};
    let socket = match (socket, config) {
        (Some(socket), _) => socket,
        (None, Some(path)) => {
            gateway_agent::config::Config::load(Some(path))?
                .approval
                .unwrap_or_default()
                .socket
        }
        (None, None) => gateway_agent::approval::ApprovalConfig::default().socket,
    };
    let (request, list_json) = match command {
        ApprovalsCommand::List { json } => (Request::List, Some(json)),
        ApprovalsCommand::Show { id } => (Request::Show { id }, None),
        ApprovalsCommand::Approve { id, reason } => (Request::Approve { id, reason }, None),
        ApprovalsCommand::Deny { id, reason } => (
            Request::Deny {
                id,
                reason: Some(reason),
            },
            None,
        ),
    };
    let answer = client::call(&socket, &request)?;
    match list_json {
        Some(false) => print!(
            "{}",
            client::render_list(&answer, gateway_agent::approval::store::now_us())
        ),
        _ => println!("{}", serde_json::to_string_pretty(&answer)?),
    }
    Ok(())
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
