//! The host's listening TCP sockets, from /proc/net/tcp{,6} (this network namespace), and
//! the process owning each one, from the `socket:[inode]` links under /proc/PID/fd.
//! Every read is bounded: a host with more processes or descriptors than the limits is
//! reported partially, never scanned without end.

use std::{
    collections::{HashMap, HashSet},
    fs,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    path::Path,
};

/// Processes looked at for socket owners.
const MAX_PIDS: usize = 32_768;
/// Descriptors looked at per process.
const MAX_FDS: usize = 65_536;
/// Listeners reported.
pub const MAX_LISTENERS: usize = 1024;

/// A listening socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub addr: SocketAddr,
    pub uid: u32,
    pub inode: u64,
    pub owner: Option<Owner>,
}

/// The process holding a socket, and its systemd unit when it runs under one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub pid: u32,
    pub comm: String,
    pub exe: Option<String>,
    pub unit: Option<String>,
}

/// Every listening TCP socket of this namespace, with owners where /proc tells.
pub fn listeners(proc_root: &Path) -> Vec<Listener> {
    let mut out = Vec::new();
    for (file, v6) in [("net/tcp", false), ("net/tcp6", true)] {
        if let Ok(text) = fs::read_to_string(proc_root.join(file)) {
            out.extend(parse_table(&text, v6));
        }
    }
    out.sort_by_key(|l| (l.addr.port(), l.addr.ip()));
    out.dedup_by_key(|l| l.inode);
    out.truncate(MAX_LISTENERS);
    let inodes: HashSet<u64> = out.iter().map(|l| l.inode).collect();
    let owners = owners(proc_root, &inodes);
    for listener in &mut out {
        listener.owner = owners.get(&listener.inode).cloned();
    }
    out
}

/// The LISTEN (state 0A) rows of one /proc/net/tcp{,6} table.
pub fn parse_table(text: &str, v6: bool) -> Vec<Listener> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.get(3) != Some(&"0A") {
                return None;
            }
            let (ip, port) = fields.get(1)?.split_once(':')?;
            let port = u16::from_str_radix(port, 16).ok()?;
            let ip = if v6 { parse_v6(ip)? } else { parse_v4(ip)? };
            Some(Listener {
                addr: SocketAddr::new(ip, port),
                uid: fields.get(7)?.parse().ok()?,
                inode: fields.get(9)?.parse().ok()?,
                owner: None,
            })
        })
        .collect()
}

/// The kernel prints the address as the native-endian u32 of its network-order bytes.
fn parse_v4(hex: &str) -> Option<IpAddr> {
    if hex.len() != 8 {
        return None;
    }
    let word = u32::from_str_radix(hex, 16).ok()?;
    Some(IpAddr::V4(Ipv4Addr::from(word.to_ne_bytes())))
}

fn parse_v6(hex: &str) -> Option<IpAddr> {
    if hex.len() != 32 {
        return None;
    }
    let mut bytes = [0u8; 16];
    for i in 0..4 {
        let word = u32::from_str_radix(hex.get(i * 8..i * 8 + 8)?, 16).ok()?;
        bytes[i * 4..i * 4 + 4].copy_from_slice(&word.to_ne_bytes());
    }
    Some(IpAddr::V6(Ipv6Addr::from(bytes)))
}

/// inode → the first process found holding it.
fn owners(proc_root: &Path, inodes: &HashSet<u64>) -> HashMap<u64, Owner> {
    let mut found = HashMap::new();
    let Ok(entries) = fs::read_dir(proc_root) else {
        return found;
    };
    let pids = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .take(MAX_PIDS);
    for pid in pids {
        if found.len() == inodes.len() {
            break;
        }
        let dir = proc_root.join(pid.to_string());
        let Ok(fds) = fs::read_dir(dir.join("fd")) else {
            continue;
        };
        for fd in fds.filter_map(Result::ok).take(MAX_FDS) {
            let Ok(target) = fs::read_link(fd.path()) else {
                continue;
            };
            let Some(inode) = target
                .to_str()
                .and_then(|t| t.strip_prefix("socket:["))
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse::<u64>().ok())
            else {
                continue;
            };
            if inodes.contains(&inode) && !found.contains_key(&inode) {
                found.insert(inode, owner(&dir, pid));
            }
        }
    }
    found
}

fn owner(dir: &Path, pid: u32) -> Owner {
    let comm = fs::read_to_string(dir.join("comm"))
        .map(|c| c.trim_end().to_owned())
        .unwrap_or_default();
    let exe = fs::read_link(dir.join("exe"))
        .ok()
        .map(|p| p.display().to_string());
    let unit = fs::read_to_string(dir.join("cgroup"))
        .ok()
        .and_then(|text| unit_of(&text));
    Owner {
        pid,
        comm,
        exe,
        unit,
    }
}

/// The systemd unit in a /proc/PID/cgroup text: the innermost `*.service` or `*.scope`.
pub fn unit_of(cgroup: &str) -> Option<String> {
    let path = cgroup.lines().find_map(|l| l.strip_prefix("0::"))?;
    path.rsplit('/')
        .find(|part| part.ends_with(".service") || part.ends_with(".scope"))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 4243 1 0000000000000000 100 0 0 10 0
   2: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 17 1 0000000000000000 100 0 0 10 0
";

    #[test]
    fn listening_rows_only_with_their_addresses() {
        let rows = parse_table(TCP, false);
        assert_eq!(rows.len(), 2);
        if cfg!(target_endian = "little") {
            assert_eq!(rows[0].addr, "127.0.0.1:8080".parse().unwrap());
            assert_eq!(rows[1].addr, "0.0.0.0:22".parse().unwrap());
        }
        assert_eq!((rows[0].uid, rows[0].inode), (0, 4242));
    }

    #[test]
    fn ipv6_rows() {
        let text = "header\n   0: 00000000000000000000000001000000:0BB8 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 99 1\n";
        let rows = parse_table(text, true);
        if cfg!(target_endian = "little") {
            assert_eq!(rows[0].addr, "[::1]:3000".parse().unwrap());
        }
        assert_eq!(rows[0].uid, 1000);
    }

    #[test]
    fn garbage_is_skipped() {
        assert!(parse_table("h\n 0: zz:zz 0 0A\n 1: 0100007F 00 0A\n", false).is_empty());
    }

    #[test]
    fn systemd_units() {
        assert_eq!(
            unit_of("0::/system.slice/mcp-github.service\n").as_deref(),
            Some("mcp-github.service")
        );
        assert_eq!(
            unit_of("0::/user.slice/user-1000.slice/user@1000.service/app.slice/run-r1.scope\n")
                .as_deref(),
            Some("run-r1.scope")
        );
        assert_eq!(unit_of("0::/\n"), None);
    }

    #[test]
    fn this_process_listener_is_found_with_its_owner() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let found = listeners(Path::new("/proc"));
        let mine = found
            .iter()
            .find(|l| l.addr == addr)
            .expect("own listener listed");
        assert_eq!(mine.owner.as_ref().map(|o| o.pid), Some(std::process::id()));
    }
}
