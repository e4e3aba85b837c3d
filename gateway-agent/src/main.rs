//! The `gateway-agent` command line: parses arguments and hands over to [`run`].
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use gateway_agent::{audit::replay, config::Config, logging, run, tls};

use clap::{CommandFactory as _, Parser, Subcommand};

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
        /// On SIGTERM/SIGINT: `detach` removes interception (connections go direct),
        /// `keep` leaves it pinned (connections refused until the agent is back).
        /// Default: the config's `[intercept] on_exit` (embedded default: detach; a
        /// config file without the key: keep).
        #[arg(long, value_enum)]
        on_exit: Option<gateway_agent::config::OnExit>,
        /// Same as `--on-exit detach`.
        #[arg(long, conflicts_with = "on_exit")]
        detach_on_exit: bool,
    },
    /// Validate a config exactly as `run` would, without attaching anything.
    Check {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Is interception on, is an agent behind it, how far behind is the audit trail.
    /// Reads the pins and the agent's status file, so it answers while the agent is down.
    /// Exit code: 0 active, 3 agent down (connections refused), 4 detached, 5 inconsistent.
    Status {
        #[arg(long)]
        config: Option<PathBuf>,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
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
    /// Pinned MCP tool definitions (rug-pull detection): list them, accept a changed tool
    /// after review, export the pinned set for `policies/pins/`.
    Pins {
        /// Read the state file's path from this agent config (`[pins] file`, else
        /// `pins.json` next to `[audit] dir`).
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        /// The state file, overriding the config.
        #[arg(long, global = true)]
        file: Option<PathBuf>,
        #[command(subcommand)]
        command: PinsCommand,
    },
    /// Find the MCP servers on this host, intercepted or not: lists listening TCP sockets,
    /// probes each with a harmless MCP `initialize` and `server/discover` (never a tool
    /// call), and says which the agent intercepts (per --config's ports and servers).
    Discover {
        #[arg(long)]
        config: Option<PathBuf>,
        /// One JSON object per listener (MCP or not), for fleets.
        #[arg(long)]
        json: bool,
        /// Milliseconds each probe step (connect, each request) may take.
        #[arg(long, default_value_t = 1500)]
        step_ms: u64,
        /// Only listeners on this port (repeatable); default: every listener.
        #[arg(long = "port")]
        ports: Vec<u16>,
    },
    /// Print a shell completion script (the .deb installs bash, zsh and fish ones).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) for gateway-agent(1).
    #[command(hide = true)]
    Manpage,
}

#[derive(Subcommand)]
enum PinsCommand {
    /// Every tool seen, per server: pinned, changed or added, with digests and markers.
    List {
        /// One JSON array, with each changed tool's diff.
        #[arg(long)]
        json: bool,
    },
    /// Re-pin TOOL of SERVER (its configured name, else ip:port) to the definition the
    /// agent last saw: after review, the tool is trusted again.
    Accept { server: String, tool: String },
    /// Print the pinned set as TOML for `policies/pins/*.toml` (`[pins] dir`).
    Export {
        /// Only this server's tools.
        #[arg(long)]
        server: Option<String>,
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
        /// The audit directory (`[audit] dir`), or a synced copy of a fleet's bucket
        /// (`host=<host>/…` directories), which is then verified per host.
        #[arg(long, default_value = "/var/lib/gateway-agent/audit")]
        dir: PathBuf,
        /// Verify a fleet's trail in a bucket instead: `s3://BUCKET/PREFIX` (credentials
        /// from the standard AWS environment).
        #[arg(long, conflicts_with = "dir")]
        s3: Option<String>,
        /// S3-compatible endpoint for `--s3` (`http(s)://host:port`); default AWS.
        #[arg(long, requires = "s3")]
        endpoint: Option<String>,
        /// Region for `--s3`.
        #[arg(long, requires = "s3")]
        region: Option<String>,
        /// Fleet: pinned public keys, lines `<host> <hex Ed25519 key>` (each host's
        /// `audit-signing.pub`). Without it, signatures are not checked.
        #[arg(long)]
        keyring: Option<PathBuf>,
        /// Check every file's signature against this public key (hex, as `audit pubkey`
        /// prints it) instead of the directory's own `audit-signing.pub`, which is as
        /// writable as the trail.
        #[arg(long, conflicts_with_all = ["s3", "keyring"])]
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
    let output = match cli.command {
        Command::Run { .. } => logging::Output::Background,
        _ => logging::Output::Direct,
    };
    let _log_writer = logging::init(cli.log_format, output);
    if let Command::Status { config, json } = &cli.command {
        return match run::status(config.as_deref(), *json) {
            Ok(code) => std::process::ExitCode::from(code),
            Err(err) => {
                eprintln!("gateway-agent: error: {}", render_chain(&err));
                std::process::ExitCode::FAILURE
            }
        };
    }
    let result = match cli.command {
        Command::Status { .. } => unreachable!("answered above"),
        Command::Run {
            config,
            on_exit,
            detach_on_exit,
        } => run::run(
            config.as_deref(),
            on_exit.or(detach_on_exit.then_some(gateway_agent::config::OnExit::Detach)),
        ),
        Command::Check { config } => run::check(config.as_deref()),
        Command::Detach { config } => run::detach(config.as_deref()),
        Command::Audit {
            command:
                AuditCommand::Verify {
                    dir,
                    s3,
                    endpoint,
                    region,
                    keyring,
                    ..
                },
        } if s3.is_some() || keyring.is_some() || is_fleet_copy(&dir) => verify_fleet(
            &dir,
            s3.as_deref(),
            endpoint.as_deref(),
            region.as_deref(),
            keyring.as_deref(),
        ),
        Command::Audit {
            command:
                AuditCommand::Verify {
                    dir,
                    pubkey,
                    checkpoint,
                    ..
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
        Command::Pins {
            config,
            file,
            command,
        } => pins(config.as_deref(), file, command),
        Command::Discover {
            config,
            json,
            step_ms,
            ports,
        } => discover(config.as_deref(), json, step_ms, &ports),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "gateway-agent",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Manpage => clap_mangen::Man::new(Cli::command())
            .render(&mut std::io::stdout())
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

/// A synced bucket: `host=…` directories instead of `dt=…` ones.
fn is_fleet_copy(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("host="))
    })
}

/// `audit verify` over a fleet (a bucket, or a synced copy): one line per host; fails if
/// any host has a problem.
fn verify_fleet(
    dir: &Path,
    s3: Option<&str>,
    endpoint: Option<&str>,
    region: Option<&str>,
    keyring: Option<&Path>,
) -> anyhow::Result<()> {
    use gateway_agent::ship::{download, fleet};
    let keyring = keyring.map(fleet::Keyring::load).transpose()?;
    // A bucket is copied to a private temporary directory, removed when done.
    let copy = match s3 {
        Some(url) => {
            use std::os::unix::fs::DirBuilderExt as _;
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let tmp =
                std::env::temp_dir().join(format!("gateway-verify-{}-{nanos}", std::process::id()));
            // A new directory only this user can read (fails if the name exists).
            std::fs::DirBuilder::new().mode(0o700).create(&tmp)?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let fetched = runtime.block_on(download::download(url, endpoint, region, &tmp));
            if let Err(err) = fetched {
                let _ = std::fs::remove_dir_all(&tmp);
                return Err(err.into());
            }
            Some(tmp)
        }
        None => None,
    };
    let root = copy.as_deref().unwrap_or(dir);
    let reports = fleet::verify_dir(root, keyring.as_ref());
    if let Some(tmp) = &copy {
        let _ = std::fs::remove_dir_all(tmp);
    }
    let reports = reports?;
    let mut failed = Vec::new();
    for report in &reports {
        // Paths inside the temporary copy are shown as the objects they came from.
        let line = report.to_string();
        let line = match (&copy, s3) {
            (Some(tmp), Some(url)) => line.replace(
                &format!("{}/", tmp.display()),
                &format!("{}/", url.trim_end_matches('/')),
            ),
            _ => line,
        };
        println!("{line}");
        if !report.problems.is_empty() {
            failed.push(report.host.clone());
        }
    }
    if keyring.is_none() {
        println!("signatures not checked: no --keyring");
    }
    anyhow::ensure!(
        failed.is_empty(),
        "fleet audit trail broken on host(s): {}",
        failed.join(", ")
    );
    Ok(())
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

fn discover(config: Option<&Path>, json: bool, step_ms: u64, ports: &[u16]) -> anyhow::Result<()> {
    use gateway_agent::discover;
    let config = Config::load(config)?;
    let limits = discover::probe::Limits {
        step: std::time::Duration::from_millis(step_ms),
        ..discover::probe::Limits::default()
    };
    let found = discover::discover(&config, Path::new("/proc"), limits, ports)?;
    if json {
        for one in &found {
            println!("{}", discover::to_json(one));
        }
    } else {
        print!("{}", discover::render(&found));
    }
    Ok(())
}

fn pins(config: Option<&Path>, file: Option<PathBuf>, command: PinsCommand) -> anyhow::Result<()> {
    use gateway_agent::pins::cli;
    let file = match file {
        Some(file) => file,
        None => {
            let config = Config::load(config)?;
            config.pins.state_file(&config.audit.dir)
        }
    };
    match command {
        PinsCommand::List { json } => print!("{}", cli::list(&file, json)?),
        PinsCommand::Accept { server, tool } => {
            let sha = cli::accept(&file, &server, &tool)?;
            println!("pinned {tool} of {server} to sha256 {sha}");
        }
        PinsCommand::Export { server } => print!("{}", cli::export(&file, server.as_deref())?),
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
