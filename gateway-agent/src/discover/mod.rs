//! `gateway-agent discover`: the MCP servers on this host, configured or not ("shadow"
//! servers a developer started on a port nobody intercepts).
//!
//! Lists the listening TCP sockets (`sockets.rs`), probes each with a harmless MCP
//! `initialize` and `server/discover` (`probe.rs`), and says for each MCP server found
//! whether the agent intercepts it: its port is one of `[intercept] ports` (connects from
//! the intercepted cgroup are redirected into the agent) and, if configured, its
//! `[[server]]` name. Only the host's own addresses are probed (a listener's address is
//! one by definition; a wildcard listener is probed on loopback), a bounded number of
//! them at a time, within an overall deadline.

pub mod probe;
pub mod sockets;

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    path::Path,
    time::Duration,
};

use serde_json::{Value, json};

use crate::config::Config;
use probe::Verdict;
use sockets::Listener;

/// Probes in flight at once.
const PARALLEL: usize = 8;
/// All probing ends by then; listeners not probed by then are reported as such.
const DEADLINE: Duration = Duration::from_secs(30);

/// One listener and what it is.
#[derive(Debug, Clone)]
pub struct Found {
    pub listener: Listener,
    /// The address probed (`None`: not probed, see `verdict`).
    pub probed: Option<SocketAddr>,
    pub verdict: Verdict,
    /// Its port is redirected into the agent for the intercepted cgroup.
    pub intercepted: bool,
    /// The `[[server]]` it is configured as.
    pub configured: Option<String>,
}

/// The address to probe a listener on: a wildcard listener on loopback of its family.
fn probe_addr(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}

/// The agent's own listeners are not probed (they are not MCP servers, and a connect
/// that was not redirected is not theirs to serve).
fn is_agent(config: &Config, addr: SocketAddr) -> bool {
    let own = [Some(config.intercept.listen), config.intercept.listen6];
    own.iter()
        .flatten()
        .any(|l| l.port() == addr.port() && (l.ip() == addr.ip() || addr.ip().is_unspecified()))
}

fn configured(config: &Config, addr: SocketAddr) -> Option<String> {
    config
        .servers
        .iter()
        .find(|s| {
            s.addr.port() == addr.port()
                && (s.addr.ip().to_canonical() == addr.ip().to_canonical()
                    || addr.ip().is_unspecified())
        })
        .map(|s| s.name.clone())
}

/// Lists and probes every listener under `proc_root` (normally /proc); with `ports`,
/// only listeners on those ports.
pub fn discover(
    config: &Config,
    proc_root: &Path,
    limits: probe::Limits,
    ports: &[u16],
) -> std::io::Result<Vec<Found>> {
    let mut listeners = sockets::listeners(proc_root);
    if !ports.is_empty() {
        listeners.retain(|l| ports.contains(&l.addr.port()));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(runtime.block_on(probe_all(config, listeners, limits)))
}

async fn probe_all(config: &Config, listeners: Vec<Listener>, limits: probe::Limits) -> Vec<Found> {
    let semaphore = std::sync::Arc::new(tokio::sync::Semaphore::new(PARALLEL));
    let mut tasks = tokio::task::JoinSet::new();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    for (index, listener) in listeners.iter().enumerate() {
        if is_agent(config, listener.addr) {
            continue;
        }
        let addr = probe_addr(listener.addr);
        let semaphore = std::sync::Arc::clone(&semaphore);
        tasks.spawn(async move {
            let verdict = tokio::time::timeout_at(deadline, async {
                let _permit = semaphore.acquire_owned().await;
                probe::probe(addr, limits).await
            })
            .await;
            (index, addr, verdict.ok())
        });
    }
    let mut verdicts = vec![None; listeners.len()];
    while let Some(joined) = tasks.join_next().await {
        if let Ok((index, addr, verdict)) = joined {
            verdicts[index] = Some((addr, verdict));
        }
    }
    listeners
        .into_iter()
        .zip(verdicts)
        .map(|(listener, probed)| {
            let (probed, verdict) = match probed {
                None => (
                    None,
                    Verdict::NotHttp {
                        why: "the gateway agent's own listener".into(),
                    },
                ),
                Some((addr, None)) => (
                    Some(addr),
                    Verdict::NotHttp {
                        why: "not probed within the deadline".into(),
                    },
                ),
                Some((addr, Some(verdict))) => (Some(addr), verdict),
            };
            Found {
                intercepted: config.intercept.ports.contains(&listener.addr.port()),
                configured: configured(config, listener.addr),
                listener,
                probed,
                verdict,
            }
        })
        .collect()
}

/// One JSON object per listener.
pub fn to_json(found: &Found) -> Value {
    let owner = found.listener.owner.as_ref();
    let mut out = json!({
        "addr": found.listener.addr.to_string(),
        "uid": found.listener.uid,
        "pid": owner.map(|o| o.pid),
        "comm": owner.map(|o| o.comm.clone()),
        "exe": owner.and_then(|o| o.exe.clone()),
        "unit": owner.and_then(|o| o.unit.clone()),
        "probed": found.probed.map(|a| a.to_string()),
        "mcp": false,
        "intercepted": found.intercepted,
        "configured_server": found.configured,
    });
    match &found.verdict {
        Verdict::Mcp(server) => {
            out["mcp"] = true.into();
            out["server"] = json!({
                "name": server.name, "version": server.version, "path": server.path,
                "transport": server.transport, "generations": server.generations,
                "protocol_versions": server.protocol_versions,
            });
        }
        Verdict::Http { status } => out["http_status"] = (*status).into(),
        Verdict::NotHttp { why } => out["not_http"] = why.clone().into(),
    }
    out
}

/// A table of the MCP servers found, then a count of the other listeners.
pub fn render(found: &[Found]) -> String {
    let mut out = String::from(
        "ADDRESS\tSERVER\tVERSION\tGENERATIONS\tTRANSPORT\tPROCESS\tUNIT\tINTERCEPTED\n",
    );
    let mut others = 0;
    for f in found {
        let Verdict::Mcp(server) = &f.verdict else {
            others += 1;
            continue;
        };
        let owner = f.listener.owner.as_ref();
        out.push_str(&format!(
            "{}{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            f.listener.addr,
            server.path,
            server.name.as_deref().unwrap_or("-"),
            server.version.as_deref().unwrap_or("-"),
            server.generations.join(","),
            server.transport,
            owner.map_or("-".to_owned(), |o| format!("{} ({})", o.comm, o.pid)),
            owner.and_then(|o| o.unit.as_deref()).unwrap_or("-"),
            match (&f.configured, f.intercepted) {
                (Some(name), true) => format!("yes ({name})"),
                (None, true) => "yes".to_owned(),
                (Some(name), false) => format!("no (configured as {name}, port not intercepted)"),
                (None, false) => "NO".to_owned(),
            },
        ));
    }
    out.push_str(&format!(
        "{others} other listeners are not MCP servers (--json lists them)\n"
    ));
    out
}
