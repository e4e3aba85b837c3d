//! The subcommands, composed from the modules: config → cgroup → listeners → interception
//! → proxy, in that order, because connects redirected before a listener exists would be
//! refused.

use std::{path::Path, sync::Arc, time::Duration};

use anyhow::Context as _;
use tokio::{net::TcpListener, signal::unix::SignalKind, sync::Semaphore};
use tracing::{info, warn};

use crate::{
    approval::{self, Approvals},
    audit::AuditSink,
    cgroup,
    config::{Config, OnExit},
    http::{HttpLimits, LegacySessions, Pipeline, Recorder},
    identity::Authenticator,
    intercept::{Interception, RedirectTarget, detach_pinned},
    listeners::ThreadListeners,
    mask::Masker,
    policy::{DEFAULT_POLICY, PolicySet},
    process::IdentityResolver,
    proxy::Proxy,
    sd_notify::{self, Notifier},
    servers::ServerTable,
    status,
    tls::TlsSetup,
    workers::DataPath,
};

pub fn check(path: Option<&Path>) -> anyhow::Result<()> {
    let config = Config::load(path)?;
    let cgroup = cgroup::resolve(config.intercept.cgroup.as_deref()).context(origin(path))?;
    let policy = load_policy(&config)?;
    Masker::new(&config.mask).context(origin(path))?;
    let servers = ServerTable::load(&config)?;
    let tls = TlsSetup::load(&config).context(origin(path))?;
    println!(
        "{}: ok (ports {:?}, listen {} and {}, cgroup {}, on exit {}, {} policy rules, masking {}, {} held credentials, {} token issuers, audit {}, approvals {}, TLS terminated for {} servers)",
        origin(path),
        config.intercept.ports,
        config.intercept.listen,
        config.listen6(),
        cgroup.display(),
        config.intercept.on_exit.as_str(),
        policy.len(),
        if config.mask.enabled { "on" } else { "off" },
        servers.credentials(),
        config.identity.issuers.len(),
        if config.audit.enabled {
            config.audit.dir.display().to_string()
        } else {
            "off".to_owned()
        },
        config.approval.as_ref().map_or_else(
            || "off (approve rules refuse)".to_owned(),
            |a| format!("held {} s, socket {}", a.hold_secs, a.socket.display())
        ),
        tls.terminating(),
    );
    Ok(())
}

/// Prints the status report; returns the exit code (see [`status::exit_code`]).
pub fn status(path: Option<&Path>, json: bool) -> anyhow::Result<u8> {
    let config = Config::load(path)?;
    let cgroup = cgroup::resolve(config.intercept.cgroup.as_deref()).context(origin(path))?;
    let report = status::Report::gather(&config, &cgroup)?;
    if json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    Ok(status::exit_code(report.health))
}

pub fn detach(path: Option<&Path>) -> anyhow::Result<()> {
    let config = Config::load(path)?;
    let cgroup = cgroup::resolve(config.intercept.cgroup.as_deref()).context(origin(path))?;
    if detach_pinned(&config.intercept.pin_dir, &cgroup)? {
        println!("detached interception from {}", cgroup.display());
    } else {
        println!("no interception pinned for {}", cgroup.display());
    }
    Ok(())
}

/// `on_exit` overrides the config's `[intercept] on_exit`.
pub fn run(path: Option<&Path>, on_exit: Option<OnExit>) -> anyhow::Result<()> {
    let config = Config::load(path)?;
    let on_exit = on_exit.unwrap_or(config.intercept.on_exit);
    let cgroup = cgroup::resolve(config.intercept.cgroup.as_deref()).context(origin(path))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        // Handlers first: a SIGTERM that arrived before them would kill the agent without
        // its shutdown step (release or detach).
        let stop = StopSignals::install()?;
        let listen4 = config.intercept.listen;
        let listen6 = config.listen6();
        let backlog = config.proxy.listen_backlog;
        let threads = config.proxy.data_path_threads();
        let mut listener4 = ThreadListeners::bind(listen4, backlog, threads)
            .with_context(|| format!("binding intercept.listen {listen4}"))?;
        // Without IPv6 on the host there is nothing to intercept over IPv6; IPv6 connects
        // then go to an unbound address and are refused, which is still closed.
        let mut listener6 = match ThreadListeners::bind(listen6, backlog, threads) {
            Ok(listener) => Some(listener),
            Err(err) => {
                warn!(%listen6, error = %err, "cannot bind intercept.listen6; IPv6 MCP connects will be refused");
                None
            }
        };
        // Bound before anything is attached: a port in use must stop the start cleanly.
        let metrics_listener = match config.metrics.listen {
            Some(addr) => Some((
                addr,
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding metrics.listen {addr}"))?,
            )),
            None => None,
        };
        let target = RedirectTarget {
            ports: config.intercept.ports.clone(),
            listen4,
            listen6,
            max_tracked: config.intercept.max_tracked_connections,
        };
        let servers = Arc::new(std::sync::RwLock::new(Arc::new(ServerTable::load(&config)?)));
        let tls_setup = TlsSetup::load(&config).context(origin(path))?;
        info!(terminating = tls_setup.terminating(), default_mode = config.tls.mode.as_str(), "TLS ready");
        let tls = Arc::new(std::sync::RwLock::new(Arc::new(tls_setup)));
        let authenticator = Arc::new(std::sync::OnceLock::new());
        if !config.identity.issuers.is_empty() {
            discover_issuers(config.identity.issuers.clone(), Arc::clone(&authenticator)).await;
        }
        let sink = if config.audit.enabled {
            let (sink, recovered) = AuditSink::open(&config.audit).with_context(|| {
                format!("opening the audit trail in {}", config.audit.dir.display())
            })?;
            info!(dir = %config.audit.dir.display(), recovered, "audit trail open");
            if let Some(ship) = &config.audit.ship {
                // Runs until the process exits; files it has not shipped wait on disk.
                crate::ship::spawn(config.audit.dir.clone(), ship.clone())
                    .context("starting audit shipping ([audit.ship])")?;
            }
            Some(sink)
        } else {
            warn!("auditing is off ([audit] enabled = false): MCP traffic is not recorded");
            None
        };
        let approvals = start_approvals(&config, sink.clone(), &authenticator).await?;
        let mut pipeline = build_pipeline(
            &config,
            path,
            Arc::clone(&servers),
            authenticator,
            sink.clone(),
        )?;
        pipeline.approvals = approvals.clone();
        let pipeline = Arc::new(pipeline);
        let interception = Interception::establish(&config.intercept.pin_dir, &cgroup, &target)
            .with_context(|| format!("attaching interception to cgroup {}", cgroup.display()))?;
        info!(
            cgroup = %cgroup.display(),
            pins = %interception.instance_dir().display(),
            reused = interception.reused(),
            on_exit = on_exit.as_str(),
            ports = ?config.intercept.ports,
            %listen4,
            %listen6,
            "interception active"
        );
        // The template of each data-path thread's own pool (`Proxy::for_thread`).
        let pool = Arc::new(crate::http::UpstreamPool::new(Duration::from_millis(
            config.proxy.connect_timeout_ms,
        )));
        let proxy = Arc::new(Proxy {
            table: interception.table(),
            identities: Arc::new(IdentityResolver::default()),
            slots: Arc::new(Semaphore::new(config.proxy.max_connections)),
            own_listeners: vec![listen4, listen6],
            pipeline: Some(Arc::clone(&pipeline)),
            servers: Arc::clone(&servers),
            tls: Some(Arc::clone(&tls)),
            pool,
        });
        let mut listeners = tokio::task::JoinSet::new();
        if let Some((addr, listener)) = metrics_listener {
            listeners.spawn(crate::metrics::serve::serve(listener, approvals.clone()));
            info!(%addr, "metrics served at /metrics");
        }
        // Thread i accepts on the i-th socket of each address; the guards stay here, held
        // until the agent exits.
        let mut per_thread: Vec<Vec<_>> = listener4
            .take_per_thread()
            .into_iter()
            .map(|listener| vec![listener])
            .collect();
        if let Some(listener6) = listener6.as_mut() {
            for (thread, listener) in per_thread.iter_mut().zip(listener6.take_per_thread()) {
                thread.push(listener);
            }
        }
        let data_path = DataPath::start(&proxy, per_thread)?;
        info!(threads, "data path serving");
        let record = agent_record(&config, path, &cgroup, &interception, on_exit);
        if let Err(err) = status::write(&config.status.file, &record) {
            warn!(file = %config.status.file.display(), error = %err, "cannot write the status file; `gateway-agent status` will report the agent as down");
        }
        // systemd (Type=notify): programs attached, listeners serving.
        let notifier = Notifier::from_env();
        notifier.send(&format!("READY=1\nSTATUS=intercepting ports {:?}", config.intercept.ports));
        let watchdog = Notifier::watchdog_interval()
            .filter(|_| notifier.enabled())
            .map(|interval| sd_notify::spawn_watchdog(notifier.clone(), interval));
        let signal = stop
            .wait(|| {
                notifier.send("RELOADING=1");
                match load_policy(&config) {
                    Ok(policy) => {
                        let rules = policy.len();
                        *pipeline.policy.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(policy);
                        info!(rules, "SIGHUP: policy reloaded");
                    }
                    Err(err) => warn!(error = %format!("{err:#}"), "SIGHUP: policy reload failed; keeping the previous policy"),
                }
                // Rotated secrets take effect for the next request; connections stay up.
                match ServerTable::load(&config) {
                    Ok(table) => {
                        let credentials = table.credentials();
                        *servers.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(table);
                        info!(credentials, "SIGHUP: credentials re-read");
                    }
                    Err(err) => warn!(error = %err, "SIGHUP: re-reading credentials failed; keeping the previous ones"),
                }
                // Rotated certificate files (and the CA) for the next TLS connection.
                match TlsSetup::load(&config) {
                    Ok(setup) => {
                        let terminating = setup.terminating();
                        *tls.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(setup);
                        info!(terminating, "SIGHUP: TLS certificates re-read");
                    }
                    Err(err) => warn!(error = %err, "SIGHUP: re-reading TLS certificates failed; keeping the previous ones"),
                }
                notifier.send("READY=1");
            })
            .await;
        notifier.send("STOPPING=1");
        if let Some(watchdog) = watchdog {
            watchdog.abort();
        }
        info!(signal, "stopping");
        listeners.abort_all();
        data_path.stop_accepting();
        status::remove(&config.status.file);
        if let Some(approvals) = &approvals {
            // Held exchanges answer "pending" now; their approvals stay in the journal.
            approvals.stop();
            approvals.drained(Duration::from_secs(2)).await;
            let _ = std::fs::remove_file(&approvals.config().socket);
        }
        // Connections still open end here, before the audit trail closes: no traffic
        // moves that could not be recorded.
        tokio::task::spawn_blocking(move || data_path.finish())
            .await
            .context("stopping the data-path threads")?;
        // Files closed and the WAL retired: what was recorded is readable now.
        if let Some(sink) = sink {
            let closer = tokio::task::spawn_blocking(move || sink.close());
            match closer.await {
                Ok(Ok(())) => info!("audit trail closed"),
                Ok(Err(err)) => warn!(error = %err, "closing the audit trail failed; the next start recovers it from the write-ahead log"),
                Err(err) => warn!(error = %err, "closing the audit trail failed"),
            }
        }
        if on_exit == OnExit::Detach {
            interception.detach()?;
            info!("interception detached; MCP connections now go direct");
        } else {
            interception.release_fail_closed()?;
            info!("interception left pinned: MCP connections are refused until the agent runs again (`gateway-agent detach` removes it)");
        }
        Ok(())
    })
}

/// SIGTERM/SIGINT stop the agent; SIGHUP reloads policy (without a handler it would kill
/// the agent).
struct StopSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> anyhow::Result<Self> {
        let install =
            |kind| tokio::signal::unix::signal(kind).context("installing signal handlers");
        Ok(Self {
            term: install(SignalKind::terminate())?,
            int: install(SignalKind::interrupt())?,
            hup: install(SignalKind::hangup())?,
        })
    }

    async fn wait(mut self, on_hangup: impl Fn()) -> &'static str {
        loop {
            tokio::select! {
                _ = self.term.recv() => return "SIGTERM",
                _ = self.int.recv() => return "SIGINT",
                _ = self.hup.recv() => on_hangup(),
            }
        }
    }
}

/// Discovers the OIDC issuers. An identity provider that is down when the agent starts
/// must not take the host's MCP traffic down with it: servers in `local` mode are served
/// at once, servers that need tokens answer 503 until discovery succeeds, retried here in
/// the background with backoff.
async fn discover_issuers(
    issuers: Vec<crate::identity::IssuerConfig>,
    slot: Arc<std::sync::OnceLock<Arc<Authenticator>>>,
) {
    let attempt = |issuers: Vec<crate::identity::IssuerConfig>| async move {
        let authenticator = Arc::new(Authenticator::discover(&issuers).await?);
        authenticator.spawn_refresh();
        Ok::<_, crate::identity::IdentityError>(authenticator)
    };
    match attempt(issuers.clone()).await {
        Ok(authenticator) => {
            let _ = slot.set(authenticator);
        }
        Err(err) => {
            warn!(error = %err, "identity issuers not reachable; servers that need tokens answer 503 until discovery succeeds (retrying)");
            tokio::spawn(async move {
                let mut backoff = Duration::from_secs(1);
                loop {
                    tokio::time::sleep(backoff).await;
                    match attempt(issuers.clone()).await {
                        Ok(authenticator) => {
                            let _ = slot.set(authenticator);
                            info!("identity issuers discovered; token validation active");
                            return;
                        }
                        Err(err) => {
                            warn!(error = %err, "identity discovery retry failed");
                            backoff = (backoff * 2).min(Duration::from_secs(60));
                        }
                    }
                }
            });
        }
    }
}

/// `[approval]`: the journal reloaded, the admin socket listening, expiry running.
async fn start_approvals(
    config: &Config,
    sink: Option<AuditSink>,
    authenticator: &Arc<std::sync::OnceLock<Arc<Authenticator>>>,
) -> anyhow::Result<Option<Arc<Approvals>>> {
    let Some(settings) = &config.approval else {
        return Ok(None);
    };
    let approvals = Approvals::open(settings.clone(), &config.audit.dir, sink)?;
    let listener = approval::admin::bind(&settings.socket, settings.socket_group.as_deref())?;
    tokio::spawn(approval::admin::serve(Arc::clone(&approvals), listener));
    approvals.spawn_expiry();
    if let Some(addr) = settings.http_listen {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding approval.http_listen {addr}"))?;
        tokio::spawn(approval::http_admin::serve(
            Arc::clone(&approvals),
            listener,
            Arc::clone(authenticator),
        ));
        info!(%addr, "approval HTTP endpoint listening");
    }
    info!(
        socket = %settings.socket.display(),
        journal = %settings.journal_path(&config.audit.dir).display(),
        hold_secs = settings.hold_secs,
        "approvals ready"
    );
    Ok(Some(approvals))
}

/// The policy directory's files, or the shipped default policy.
fn load_policy(config: &Config) -> anyhow::Result<PolicySet> {
    Ok(match &config.policy.dir {
        Some(dir) => PolicySet::load_dir(dir)?,
        None => PolicySet::parse(DEFAULT_POLICY, "default policy (embedded)")?,
    })
}

fn build_pipeline(
    config: &Config,
    path: Option<&Path>,
    servers: Arc<std::sync::RwLock<Arc<ServerTable>>>,
    authenticator: Arc<std::sync::OnceLock<Arc<Authenticator>>>,
    sink: Option<AuditSink>,
) -> anyhow::Result<Pipeline> {
    let policy = load_policy(config)?;
    let masker = Masker::new(&config.mask).context(origin(path))?;
    info!(
        rules = policy.len(),
        masking = config.mask.enabled,
        "MCP pipeline ready"
    );
    let unmasked = masker.disabled_twin();
    let masker = Arc::new(masker);
    Ok(Pipeline {
        recorder: Recorder {
            sink,
            masker: Arc::clone(&masker),
        },
        servers,
        authenticator,
        masker,
        unmasked: Arc::new(unmasked),
        legacy: Arc::new(LegacySessions::default()),
        policy: Arc::new(std::sync::RwLock::new(Arc::new(policy))),
        limits: HttpLimits {
            max_request_body: config.http.max_request_body_bytes,
            max_response_body: config.http.max_response_body_bytes,
            max_sse_event: config.http.max_sse_event_bytes,
            timeouts: crate::http::Timeouts::from_config(&config.http),
        },
        approvals: None,
        pins: load_pins(config)?,
        handles: config
            .servers
            .iter()
            .any(|s| s.mask_mode == crate::handles::MaskMode::Handle)
            .then(|| Arc::new(crate::handles::Handles::new(&config.handles))),
    })
}

fn agent_record(
    config: &Config,
    path: Option<&Path>,
    cgroup: &Path,
    interception: &Interception,
    on_exit: OnExit,
) -> status::AgentRecord {
    let (pid, start_ticks, started_unix) = status::AgentRecord::this_process();
    status::AgentRecord {
        pid,
        start_ticks,
        started_unix,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        config: path.map(Path::to_owned),
        cgroup: cgroup.to_owned(),
        pins: interception.instance_dir().to_owned(),
        ports: config.intercept.ports.clone(),
        listen: config.intercept.listen,
        listen6: config.listen6(),
        on_exit: on_exit.as_str().to_owned(),
        audit_dir: config.audit.enabled.then(|| config.audit.dir.clone()),
        metrics: config.metrics.listen,
    }
}

/// `[pins]`, with each configured server's own `on_tool_change`.
fn load_pins(config: &Config) -> anyhow::Result<Option<Arc<crate::pins::Pins>>> {
    if !config.pins.enabled {
        return Ok(None);
    }
    let per_server = config
        .servers
        .iter()
        .filter_map(|s| Some((s.name.clone(), s.on_tool_change?)))
        .collect();
    let pins = crate::pins::Pins::load(&config.pins, &config.audit.dir, per_server)?;
    info!(file = %pins.file().display(), on_tool_change = config.pins.on_tool_change.as_str(), "tool pins ready");
    Ok(Some(Arc::new(pins)))
}

fn origin(path: Option<&Path>) -> String {
    path.map_or_else(
        || "embedded default config".to_owned(),
        |p| p.display().to_string(),
    )
}
