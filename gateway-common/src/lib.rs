//! The `#[repr(C)]` values that cross the kernel/user boundary through eBPF maps, and the
//! map names and sizes both sides agree on.
//!
//! Every type is plain old data with explicit padding fields: the verifier rejects map
//! updates that would copy uninitialised stack bytes, and user space must read the same
//! layout the kernel wrote.
#![no_std]

/// Address families as the kernel numbers them (`AF_INET`, `AF_INET6`).
pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 10;

/// Map names, shared so user space opens exactly what the programs declare.
pub const MAP_CONFIG: &str = "CONFIG";
pub const MAP_PORTS: &str = "PORTS";
pub const MAP_PENDING: &str = "PENDING";
pub const MAP_BY_ADDR: &str = "BY_ADDR";

/// Program names (the eBPF functions' symbol names).
pub const PROG_CONNECT4: &str = "gateway_connect4";
pub const PROG_CONNECT6: &str = "gateway_connect6";
pub const PROG_SOCKOPS: &str = "gateway_sockops";
pub const PROG_SENDMSG4: &str = "gateway_sendmsg4";
pub const PROG_SENDMSG6: &str = "gateway_sendmsg6";

/// How many destination ports an operator may configure.
pub const MAX_PORTS: u32 = 1024;
/// Connections recorded at connect() whose TCP handshake has not completed yet. LRU: a
/// connect that never completes (refused, timed out) is evicted instead of leaking. The
/// agent may load the maps with another size (`[intercept] max_tracked_connections`).
pub const MAX_PENDING: u32 = 65_536;
/// Established, redirected connections the agent has not accepted yet. LRU for the same
/// reason; the agent deletes each entry as it consumes it.
pub const MAX_BY_ADDR: u32 = 65_536;

/// A socket address in the form both sides can build without parsing: the agent builds it
/// from `accept()`'s peer address, the kernel from `bpf_sock_ops`/`bpf_sock_addr` fields.
///
/// `addr` holds IPv4 in `addr[0]` (network byte order, other words zero) or IPv6 as four
/// network-order words. A v4-mapped IPv6 address is always stored as IPv4, because the
/// agent's IPv4 listener sees a v4-mapped client as a plain IPv4 peer.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SockKey {
    pub family: u16,
    /// Host byte order.
    pub port: u16,
    pub addr: [u32; 4],
}

impl SockKey {
    pub const fn v4(addr_be: u32, port: u16) -> Self {
        Self {
            family: AF_INET,
            port,
            addr: [addr_be, 0, 0, 0],
        }
    }

    /// Builds a key from an IPv6 address given as network-order words, folding
    /// v4-mapped addresses (`::ffff:a.b.c.d`) into IPv4.
    pub const fn v6(addr_be: [u32; 4], port: u16) -> Self {
        if is_v4_mapped(addr_be) {
            return Self::v4(addr_be[3], port);
        }
        Self {
            family: AF_INET6,
            port,
            addr: addr_be,
        }
    }
}

/// `::ffff:0:0/96`, tested on network-order words.
pub const fn is_v4_mapped(addr_be: [u32; 4]) -> bool {
    addr_be[0] == 0 && addr_be[1] == 0 && addr_be[2] == u32::from_be(0x0000_ffff)
}

/// Who connected where, captured in the kernel at connect() time so it cannot be spoofed
/// by the client and does not race with the process exiting.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnInfo {
    /// cgroup v2 id (the cgroup directory's inode number) of the connecting task.
    pub cgroup_id: u64,
    /// The destination the client asked for, before the redirect.
    pub orig_dst: SockKey,
    /// Process id (the kernel's tgid).
    pub pid: u32,
    /// Thread id (the kernel's pid) of the thread that called connect().
    pub tid: u32,
    pub uid: u32,
    pub gid: u32,
    /// `task->comm`, NUL padded.
    pub comm: [u8; 16],
    /// The process id as the agent's own PID namespace numbers it, or 0 when the caller
    /// lives in another PID namespace. `pid` is the host's number, which names a different
    /// process (or none) in /proc when the agent runs inside a PID namespace.
    pub ns_pid: u32,
}

/// The single entry of the `CONFIG` array map, written by the agent at start.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RedirectConfig {
    /// The running agent's tgid as its own PID namespace (`agent_pidns_*`) numbers it; its
    /// own connects are never redirected. Zero while no agent runs: everything to an MCP
    /// port then goes to the (closed) listener. Compared through
    /// `bpf_get_ns_current_pid_tgid`, never against the host tgid, so the exemption holds
    /// whether or not the agent runs in a PID namespace (systemd in a container, a pod).
    pub agent_tgid: u32,
    /// Non-zero once the agent has written this entry; until then nothing is redirected
    /// (an all-zero entry would otherwise send traffic to 0.0.0.0:0).
    pub enabled: u32,
    /// IPv4 listener address, network byte order.
    pub listen4_addr: u32,
    /// IPv4 listener port, host byte order.
    pub listen4_port: u16,
    /// IPv6 listener port, host byte order.
    pub listen6_port: u16,
    /// IPv6 listener address, network-order words.
    pub listen6_addr: [u32; 4],
    /// `st_dev` and `st_ino` of the agent's `/proc/self/ns/pid`: the PID namespace in which
    /// `agent_tgid` is meaningful and in which `ConnInfo::ns_pid` is reported.
    pub agent_pidns_dev: u64,
    pub agent_pidns_ino: u64,
}

#[cfg(feature = "user")]
mod user {
    // SAFETY: all three are #[repr(C)], contain only integers and integer arrays, and carry
    // explicit padding fields, so every bit pattern is a valid value.
    unsafe impl aya::Pod for super::SockKey {}
    unsafe impl aya::Pod for super::ConnInfo {}
    unsafe impl aya::Pod for super::RedirectConfig {}
}
