//! Read-only look at a pinned attachment, for `gateway-agent status`: it must work while
//! no agent runs (that is when an operator most needs it), so it reads bpffs only.

use std::{
    net::{Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
};

use aya::maps::{Array, HashMap, MapData};
use gateway_common::{MAP_CONFIG, MAP_PORTS, RedirectConfig};

use super::{InterceptError, LINKS, instance_dir, open_pinned_map};

/// What is pinned for one cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedState {
    /// `<pin_dir>/v3-cgroup-<id>`.
    pub instance: PathBuf,
    /// The link pins present (all five: the programs are attached).
    pub links: Vec<&'static str>,
    /// From the pinned maps, when they could be read (needs CAP_BPF).
    pub maps: Option<PinnedConfig>,
}

/// The pinned `CONFIG` and `PORTS` maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedConfig {
    /// The kernel-side pid the programs exempt; 0 when the last agent released them
    /// (fail closed) or never wrote them.
    pub agent_tgid: u32,
    /// Where connects are redirected.
    pub listen4: SocketAddr,
    pub ports: Vec<u16>,
}

impl PinnedState {
    /// Every link is pinned: connects to the ports are redirected.
    pub fn attached(&self) -> bool {
        self.links.len() == LINKS.len()
    }

    /// How many links a complete attachment pins.
    pub fn expected_links() -> usize {
        LINKS.len()
    }
}

/// The attachment pinned for `cgroup` under `pin_dir`; `None` when nothing is pinned.
pub fn inspect(pin_dir: &Path, cgroup: &Path) -> Result<Option<PinnedState>, InterceptError> {
    let instance = instance_dir(pin_dir, cgroup)?;
    if !instance.is_dir() {
        return Ok(None);
    }
    let links = LINKS
        .iter()
        .filter(|(_, pin)| instance.join(pin).exists())
        .map(|(_, pin)| *pin)
        .collect();
    let maps = read_maps(&instance).ok();
    Ok(Some(PinnedState {
        instance,
        links,
        maps,
    }))
}

fn read_maps(instance: &Path) -> Result<PinnedConfig, InterceptError> {
    let map_err = |name| move |source| InterceptError::Map { name, source };
    let config: Array<MapData, RedirectConfig> =
        Array::try_from(open_pinned_map(instance, MAP_CONFIG)?).map_err(map_err(MAP_CONFIG))?;
    let entry = config.get(&0, 0).map_err(map_err(MAP_CONFIG))?;
    let ports: HashMap<MapData, u16, u8> =
        HashMap::try_from(open_pinned_map(instance, MAP_PORTS)?).map_err(map_err(MAP_PORTS))?;
    let mut ports: Vec<u16> = ports.keys().filter_map(Result::ok).collect();
    ports.sort_unstable();
    Ok(PinnedConfig {
        agent_tgid: entry.agent_tgid,
        listen4: SocketAddr::new(
            Ipv4Addr::from(entry.listen4_addr.to_ne_bytes()).into(),
            entry.listen4_port,
        ),
        ports,
    })
}
