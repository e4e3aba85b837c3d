//! Kernel-side interception: loading the eBPF programs, attaching them to a cgroup, and
//! keeping them pinned in bpffs so that they outlive the agent.
//!
//! Why pinned: a bpf_link is released when its last fd closes. If the agent held the only
//! fd, a crash would silently let connections to MCP ports bypass it (fail open). Pinned,
//! the programs keep redirecting to the agent's listener while the agent is down, and the
//! client gets "connection refused" (fail closed). A restarted agent finds the pins,
//! re-opens the maps, writes its own pid and carries on without attaching twice.
//!
//! Layout of one attachment: `<pin_dir>/v3-cgroup-<cgroup inode>/` holding the five links
//! and the four maps. The cgroup inode (= cgroup id) keys it so that one pin_dir can serve
//! agents for different cgroups; the version changes whenever the programs or map layouts
//! do (v2: the agent is exempted by its pid in its own PID namespace; v3: two more links
//! refuse UDP and other non-TCP traffic to MCP ports). An attachment of an older layout for
//! the same cgroup is removed once the new one is pinned, so an upgrade never leaves the
//! old programs redirecting the new agent's own connects, and never has a moment without
//! any.

mod bpffs;
mod conn_table;
mod inspect;

use std::{
    net::SocketAddr,
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
    sync::Arc,
};

use aya::{
    EbpfLoader,
    maps::{Array, HashMap, Map, MapData},
    programs::{
        CgroupAttachMode, CgroupSockAddr, SockOps,
        links::{FdLink, PinnedLink},
    },
};
use gateway_common::{
    MAP_BY_ADDR, MAP_CONFIG, MAP_PENDING, MAP_PORTS, PROG_CONNECT4, PROG_CONNECT6, PROG_SENDMSG4,
    PROG_SENDMSG6, PROG_SOCKOPS, RedirectConfig,
};

pub use bpffs::BpffsError;
pub use conn_table::{ConnTable, socket_addr};
pub use inspect::{PinnedConfig, PinnedState, inspect};

/// The eBPF object built by build.rs from gateway-ebpf.
static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/gateway"));

const LAYOUT_VERSION: &str = "v3";
/// Layouts earlier agents pinned; removed once this version is attached.
const OLD_LAYOUT_VERSIONS: [&str; 2] = ["v1", "v2"];
const LINKS: [(&str, &str); 5] = [
    (PROG_CONNECT4, "link_connect4"),
    (PROG_CONNECT6, "link_connect6"),
    (PROG_SOCKOPS, "link_sockops"),
    (PROG_SENDMSG4, "link_sendmsg4"),
    (PROG_SENDMSG6, "link_sendmsg6"),
];
const MAPS: [&str; 4] = [MAP_CONFIG, MAP_PORTS, MAP_PENDING, MAP_BY_ADDR];

#[derive(Debug, thiserror::Error)]
pub enum InterceptError {
    #[error(transparent)]
    Bpffs(#[from] BpffsError),
    #[error("cannot open cgroup {path}: {source}")]
    Cgroup {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "cannot load the eBPF object: {0} (loading needs root, or CAP_BPF + CAP_NET_ADMIN, \
         and a kernel with cgroup sock_addr and sockops support)"
    )]
    Load(#[from] aya::EbpfError),
    #[error("eBPF program {name}: {source}")]
    Program {
        name: &'static str,
        source: aya::programs::ProgramError,
    },
    #[error("pinning {path}: {message}")]
    Pin { path: PathBuf, message: String },
    #[error("eBPF map {name}: {source}")]
    Map {
        name: &'static str,
        source: aya::maps::MapError,
    },
    #[error("cannot read /proc/self/ns/pid (the agent's own PID namespace): {source}")]
    PidNamespace { source: std::io::Error },
    #[error("cannot remove {path}: {source}")]
    Remove {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What the programs need to know about the running agent.
#[derive(Debug, Clone)]
pub struct RedirectTarget {
    pub ports: Vec<u16>,
    pub listen4: SocketAddr,
    pub listen6: SocketAddr,
    /// Entries of each connection-record map (`PENDING`, `BY_ADDR`); applies when the
    /// programs are attached, not to an attachment re-used from pins.
    pub max_tracked: u32,
}

/// A live attachment of the interception programs to one cgroup.
pub struct Interception {
    instance: PathBuf,
    config: Array<MapData, RedirectConfig>,
    table: Arc<ConnTable>,
    reused: bool,
}

impl Interception {
    /// Attaches the programs to `cgroup` (or re-opens an attachment an earlier agent left
    /// pinned) and points them at this agent. Call only once the listeners are bound:
    /// connects redirected before that would be refused.
    pub fn establish(
        pin_dir: &Path,
        cgroup: &Path,
        target: &RedirectTarget,
    ) -> Result<Self, InterceptError> {
        bpffs::ensure_pin_dir(pin_dir)?;
        let instance = instance_dir(pin_dir, cgroup)?;
        let reused = LINKS.iter().all(|(_, pin)| instance.join(pin).exists());
        if reused {
            let config = configure(&instance, target)?;
            warn_if_resized(&instance, target.max_tracked);
            return Self::open(instance, config, true);
        }
        // A partial attachment (crash between pins) is discarded and rebuilt.
        remove_instance(&instance)?;
        std::fs::create_dir_all(&instance).map_err(|source| BpffsError::CreateDir {
            path: instance.display().to_string(),
            source,
        })?;
        match attach_fresh(&instance, cgroup, target) {
            Ok(config) => {
                for old in old_instance_dirs(pin_dir, cgroup)? {
                    if old.exists() {
                        remove_instance(&old)?;
                        tracing::info!(pins = %old.display(), "removed an older agent's attachment");
                    }
                }
                Self::open(instance, config, false)
            }
            Err(err) => {
                if let Err(cleanup) = remove_instance(&instance) {
                    tracing::warn!(error = %cleanup, "cleaning up a failed attach");
                }
                Err(err)
            }
        }
    }

    fn open(
        instance: PathBuf,
        config: Array<MapData, RedirectConfig>,
        reused: bool,
    ) -> Result<Self, InterceptError> {
        let by_addr = open_pinned_map(&instance, MAP_BY_ADDR)?;
        let by_addr = HashMap::try_from(by_addr).map_err(|source| InterceptError::Map {
            name: MAP_BY_ADDR,
            source,
        })?;
        Ok(Self {
            instance,
            config,
            table: Arc::new(ConnTable::new(by_addr)),
            reused,
        })
    }

    /// True when an earlier agent's pinned attachment was re-used.
    pub fn reused(&self) -> bool {
        self.reused
    }

    pub fn instance_dir(&self) -> &Path {
        &self.instance
    }

    pub fn table(&self) -> Arc<ConnTable> {
        Arc::clone(&self.table)
    }

    /// Leaves the programs attached but forgets this agent's pid: from now on every
    /// connect to an MCP port is redirected to a listener nobody serves, and refused.
    pub fn release_fail_closed(mut self) -> Result<(), InterceptError> {
        let mut cfg = self
            .config
            .get(&0, 0)
            .map_err(|source| InterceptError::Map {
                name: MAP_CONFIG,
                source,
            })?;
        cfg.agent_tgid = 0;
        self.config
            .set(0, cfg, 0)
            .map_err(|source| InterceptError::Map {
                name: MAP_CONFIG,
                source,
            })
    }

    /// Removes the attachment entirely: MCP connections go direct again.
    pub fn detach(self) -> Result<(), InterceptError> {
        let instance = self.instance.clone();
        drop(self);
        remove_instance(&instance)
    }
}

/// Removes a pinned attachment left for `cgroup` under `pin_dir`, if any. Returns whether
/// one was found.
/// Attachments of older layouts are removed too.
pub fn detach_pinned(pin_dir: &Path, cgroup: &Path) -> Result<bool, InterceptError> {
    let mut existed = false;
    let current = instance_dir(pin_dir, cgroup)?;
    for instance in std::iter::once(current).chain(old_instance_dirs(pin_dir, cgroup)?) {
        existed |= instance.exists();
        remove_instance(&instance)?;
    }
    Ok(existed)
}

fn instance_dir(pin_dir: &Path, cgroup: &Path) -> Result<PathBuf, InterceptError> {
    Ok(versioned_dir(pin_dir, LAYOUT_VERSION, cgroup_ino(cgroup)?))
}

fn old_instance_dirs(pin_dir: &Path, cgroup: &Path) -> Result<Vec<PathBuf>, InterceptError> {
    let ino = cgroup_ino(cgroup)?;
    Ok(OLD_LAYOUT_VERSIONS
        .iter()
        .map(|version| versioned_dir(pin_dir, version, ino))
        .collect())
}

fn versioned_dir(pin_dir: &Path, version: &str, ino: u64) -> PathBuf {
    pin_dir.join(format!("{version}-cgroup-{ino}"))
}

fn cgroup_ino(cgroup: &Path) -> Result<u64, InterceptError> {
    Ok(std::fs::metadata(cgroup)
        .map_err(|source| InterceptError::Cgroup {
            path: cgroup.to_owned(),
            source,
        })?
        .ino())
}

/// Unlinking a link pin detaches it (no other fd holds it); unlinking a map pin frees the
/// map once no program uses it.
fn remove_instance(instance: &Path) -> Result<(), InterceptError> {
    let remove_err = |path: &Path, source| InterceptError::Remove {
        path: path.to_owned(),
        source,
    };
    let entries = match std::fs::read_dir(instance) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(remove_err(instance, err)),
    };
    for entry in entries {
        let path = entry.map_err(|err| remove_err(instance, err))?.path();
        let is_link = path
            .file_name()
            .is_some_and(|name| name.to_string_lossy().starts_with("link_"));
        if is_link {
            unpin_link(&path)?;
        } else {
            std::fs::remove_file(&path).map_err(|err| remove_err(&path, err))?;
        }
    }
    std::fs::remove_dir(instance).map_err(|err| remove_err(instance, err))
}

/// Unlinking a link's last pin releases it from a kernel workqueue, so the programs would
/// stay attached for a moment after we return. Holding our own fd across the unlink makes
/// our close() the final reference, and the detach completes before close() returns.
fn unpin_link(path: &Path) -> Result<(), InterceptError> {
    match PinnedLink::from_pin(path) {
        Ok(link) => {
            let fd_link = link.unpin().map_err(|source| InterceptError::Remove {
                path: path.to_owned(),
                source,
            })?;
            drop(fd_link);
            Ok(())
        }
        // Not a link after all (or unreadable): remove the pin the plain way.
        Err(_) => std::fs::remove_file(path).map_err(|source| InterceptError::Remove {
            path: path.to_owned(),
            source,
        }),
    }
}

fn attach_fresh(
    instance: &Path,
    cgroup: &Path,
    target: &RedirectTarget,
) -> Result<Array<MapData, RedirectConfig>, InterceptError> {
    let mut loader = EbpfLoader::new();
    for name in MAPS {
        loader.map_pin_path(name, instance.join(name));
    }
    loader.map_max_entries(MAP_PENDING, target.max_tracked);
    loader.map_max_entries(MAP_BY_ADDR, target.max_tracked);
    let mut ebpf = loader.load(EBPF_OBJECT)?;
    // Point the programs at this agent before they can see a single connect.
    let config = configure(instance, target)?;
    let cgroup_dir = std::fs::File::open(cgroup).map_err(|source| InterceptError::Cgroup {
        path: cgroup.to_owned(),
        source,
    })?;
    for (name, pin) in LINKS {
        let program = ebpf.program_mut(name).ok_or(InterceptError::Program {
            name,
            source: aya::programs::ProgramError::UnexpectedProgramType,
        })?;
        let program_err = |source| InterceptError::Program { name, source };
        // Single: this kernel rejects AllowMultiple for bpf_link_create with EINVAL, and
        // links coexist with other programs on the cgroup regardless.
        let link: FdLink = if name == PROG_SOCKOPS {
            let program: &mut SockOps = program.try_into().map_err(program_err)?;
            program.load().map_err(program_err)?;
            let id = program
                .attach(&cgroup_dir, CgroupAttachMode::Single)
                .map_err(program_err)?;
            program.take_link(id).map_err(program_err)?.try_into()
        } else {
            let program: &mut CgroupSockAddr = program.try_into().map_err(program_err)?;
            program.load().map_err(program_err)?;
            let id = program
                .attach(&cgroup_dir, CgroupAttachMode::Single)
                .map_err(program_err)?;
            program.take_link(id).map_err(program_err)?.try_into()
        }
        .map_err(|err: aya::programs::links::LinkError| InterceptError::Pin {
            path: instance.join(pin),
            message: err.to_string(),
        })?;
        link.pin(instance.join(pin))
            .map_err(|err| InterceptError::Pin {
                path: instance.join(pin),
                message: err.to_string(),
            })?;
    }
    Ok(config)
}

/// Map sizes are fixed when the maps are created: a re-used attachment keeps the size it
/// was created with until it is detached, which the operator is told.
fn warn_if_resized(instance: &Path, wanted: u32) {
    let pinned = MapData::from_pin(instance.join(MAP_BY_ADDR))
        .and_then(|map| map.info())
        .map(|info| info.max_entries());
    if let Ok(pinned) = pinned
        && pinned != wanted
    {
        tracing::warn!(
            pinned,
            configured = wanted,
            "intercept.max_tracked_connections differs from the pinned maps' size, which stays \
             until the attachment is re-created (`gateway-agent detach`, then start)"
        );
    }
}

/// Writes this agent's listeners, pid and ports into the pinned maps.
fn configure(
    instance: &Path,
    target: &RedirectTarget,
) -> Result<Array<MapData, RedirectConfig>, InterceptError> {
    let map_err = |name| move |source| InterceptError::Map { name, source };
    let mut ports: HashMap<MapData, u16, u8> =
        HashMap::try_from(open_pinned_map(instance, MAP_PORTS)?).map_err(map_err(MAP_PORTS))?;
    let stale: Vec<u16> = ports
        .keys()
        .filter_map(Result::ok)
        .filter(|port| !target.ports.contains(port))
        .collect();
    for port in stale {
        ports.remove(&port).map_err(map_err(MAP_PORTS))?;
    }
    for port in &target.ports {
        ports.insert(port, 1, 0).map_err(map_err(MAP_PORTS))?;
    }
    let mut config: Array<MapData, RedirectConfig> =
        Array::try_from(open_pinned_map(instance, MAP_CONFIG)?).map_err(map_err(MAP_CONFIG))?;
    config
        .set(0, redirect_config(target)?, 0)
        .map_err(map_err(MAP_CONFIG))?;
    Ok(config)
}

fn open_pinned_map(instance: &Path, name: &'static str) -> Result<Map, InterceptError> {
    let data = MapData::from_pin(instance.join(name))
        .map_err(|source| InterceptError::Map { name, source })?;
    Map::from_map_data(data).map_err(|source| InterceptError::Map { name, source })
}

fn redirect_config(target: &RedirectTarget) -> Result<RedirectConfig, InterceptError> {
    let SocketAddr::V4(listen4) = target.listen4 else {
        unreachable!("config validation guarantees an IPv4 listener");
    };
    let SocketAddr::V6(listen6) = target.listen6 else {
        unreachable!("config validation guarantees an IPv6 listener");
    };
    // Without it the agent could not be told apart from its clients: refuse to start.
    let (agent_pidns_dev, agent_pidns_ino) =
        own_pid_namespace().map_err(|source| InterceptError::PidNamespace { source })?;
    Ok(RedirectConfig {
        agent_tgid: std::process::id(),
        agent_pidns_dev,
        agent_pidns_ino,
        enabled: 1,
        listen4_addr: u32::from_ne_bytes(listen4.ip().octets()),
        listen4_port: listen4.port(),
        listen6_port: listen6.port(),
        listen6_addr: conn_table::ip6_words(listen6.ip()),
    })
}

/// `st_dev`/`st_ino` of our PID namespace, which `bpf_get_ns_current_pid_tgid` matches.
pub fn own_pid_namespace() -> std::io::Result<(u64, u64)> {
    std::fs::metadata("/proc/self/ns/pid").map(|meta| (meta.dev(), meta.ino()))
}
