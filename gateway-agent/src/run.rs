//! The subcommands, composed from the modules: config → cgroup → listeners → interception
//! → proxy, in that order, because connects redirected before a listener exists would be
//! refused.

use std::{collections::HashMap, net::SocketAddr, path::Path, sync::Arc, time::Duration};

use anyhow::Context as _;
use tokio::{net::TcpListener, signal::unix::SignalKind, sync::Semaphore};
use tracing::{info, warn};

use crate::{
    cgroup,
    config::Config,
    credential::Credential,
    http::{HttpLimits, LegacySessions, Pipeline},
    intercept::{Interception, RedirectTarget, detach_pinned},
    mask::Masker,
    policy::{DEFAULT_POLICY, PolicySet},
    process::IdentityResolver,
    proxy::Proxy,
};

pub fn check(path: Option<&Path>) -> anyhow::Result<()> {
    let config = Config::load(path)?;
    let cgroup = cgroup::resolve(config.intercept.cgroup.as_deref()).context(origin(path))?;
    let policy = load_policy(&config)?;
    Masker::new(&config.mask).context(origin(path))?;
    load_credentials(&config)?;
    println!(
        "{}: ok (ports {:?}, listen {} and {}, cgroup {}, {} policy rules, masking {})",
        origin(path),
        config.intercept.ports,
        config.intercept.listen,
        config.listen6(),
        cgroup.display(),
        policy.len(),
        if config.mask.enabled { "on" } else { "off" },
    );
    Ok(())
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

pub fn run(path: Option<&Path>, detach_on_exit: bool) -> anyhow::Result<()> {
    let config = Config::load(path)?;
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
        let listener4 = TcpListener::bind(listen4)
            .await
            .with_context(|| format!("binding intercept.listen {listen4}"))?;
        // Without IPv6 on the host there is nothing to intercept over IPv6; IPv6 connects
        // then go to an unbound address and are refused, which is still closed.
        let listener6 = match TcpListener::bind(listen6).await {
            Ok(listener) => Some(listener),
            Err(err) => {
                warn!(%listen6, error = %err, "cannot bind intercept.listen6; IPv6 MCP connects will be refused");
                None
            }
        };
        let target = RedirectTarget {
            ports: config.intercept.ports.clone(),
            listen4,
            listen6,
        };
        let pipeline = Arc::new(build_pipeline(&config, path)?);
        let credentials = load_credentials(&config)?;
        let interception = Interception::establish(&config.intercept.pin_dir, &cgroup, &target)
            .with_context(|| format!("attaching interception to cgroup {}", cgroup.display()))?;
        info!(
            cgroup = %cgroup.display(),
            pins = %interception.instance_dir().display(),
            reused = interception.reused(),
            ports = ?config.intercept.ports,
            %listen4,
            %listen6,
            "interception active"
        );
        let proxy = Arc::new(Proxy {
            table: interception.table(),
            identities: Arc::new(IdentityResolver::default()),
            connect_timeout: Duration::from_millis(config.proxy.connect_timeout_ms),
            slots: Arc::new(Semaphore::new(config.proxy.max_connections)),
            own_listeners: vec![listen4, listen6],
            pipeline: Some(Arc::clone(&pipeline)),
            server_names: config
                .servers
                .iter()
                .map(|server| (server.addr, server.name.clone()))
                .collect(),
            credentials,
        });
        let mut servers = tokio::task::JoinSet::new();
        servers.spawn(Arc::clone(&proxy).serve(listener4));
        if let Some(listener6) = listener6 {
            servers.spawn(Arc::clone(&proxy).serve(listener6));
        }
        let signal = stop
            .wait(|| match load_policy(&config) {
                Ok(policy) => {
                    let rules = policy.len();
                    *pipeline.policy.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(policy);
                    info!(rules, "SIGHUP: policy reloaded");
                }
                Err(err) => warn!(error = %format!("{err:#}"), "SIGHUP: policy reload failed; keeping the previous policy"),
            })
            .await;
        info!(signal, "stopping");
        servers.abort_all();
        if detach_on_exit {
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

/// The credentials configured for servers, by address (read now: a missing file is an
/// error at start, not at the first request).
fn load_credentials(config: &Config) -> anyhow::Result<HashMap<SocketAddr, Arc<Credential>>> {
    let mut credentials = HashMap::new();
    for server in &config.servers {
        if let Some(credential) = &server.credential {
            credentials.insert(
                server.addr,
                Arc::new(Credential::load(credential, &server.name)?),
            );
        }
    }
    Ok(credentials)
}

/// The policy directory's files, or the shipped default policy.
fn load_policy(config: &Config) -> anyhow::Result<PolicySet> {
    Ok(match &config.policy.dir {
        Some(dir) => PolicySet::load_dir(dir)?,
        None => PolicySet::parse(DEFAULT_POLICY, "default policy (embedded)")?,
    })
}

fn build_pipeline(config: &Config, path: Option<&Path>) -> anyhow::Result<Pipeline> {
    let policy = load_policy(config)?;
    let masker = Masker::new(&config.mask).context(origin(path))?;
    info!(
        rules = policy.len(),
        masking = config.mask.enabled,
        "MCP pipeline ready"
    );
    let unmasked = Masker::new(&crate::mask::MaskConfig {
        enabled: false,
        ..config.mask.clone()
    })?;
    Ok(Pipeline {
        masker: Arc::new(masker),
        unmasked: Arc::new(unmasked),
        legacy: Arc::new(LegacySessions::default()),
        policy: Arc::new(std::sync::RwLock::new(Arc::new(policy))),
        limits: HttpLimits {
            max_request_body: config.http.max_request_body_bytes,
            max_response_body: config.http.max_response_body_bytes,
            max_sse_event: config.http.max_sse_event_bytes,
        },
    })
}

fn origin(path: Option<&Path>) -> String {
    path.map_or_else(
        || "embedded default config".to_owned(),
        |p| p.display().to_string(),
    )
}
