//! The kernel half of interception.
//!
//! * `gateway_connect4` / `gateway_connect6` (cgroup/connect4, cgroup/connect6) run on every
//!   connect() in the attached cgroup. When the destination port is an MCP port they record
//!   who is connecting where (keyed by socket cookie) and rewrite the destination to the
//!   agent's listener.
//! * `gateway_sockops` (sockops) runs when the client's handshake completes and re-keys that
//!   record by the client's local address, which is the only thing the agent can see of
//!   the connection when it accepts it.
//! * Everything else to an MCP port is refused with EPERM, because the agent can only proxy
//!   TCP: a UDP (or other non-TCP) `connect()` in connect4/6, and an unconnected UDP
//!   `sendto`/`sendmsg` in `gateway_sendmsg4` / `gateway_sendmsg6` (cgroup/sendmsg4,
//!   cgroup/sendmsg6, which run for every UDP send that names a destination). A server
//!   that also answers HTTP/3 (QUIC) on an intercepted port would otherwise be reachable
//!   around the agent; refused, QUIC clients fall back to TCP, which is intercepted.
//!
//! The agent's own connects are skipped so it can reach the real server. "Own" is decided in
//! the agent's PID namespace (`bpf_get_ns_current_pid_tgid`), never by the host tgid the
//! agent cannot see when it runs in a PID namespace; a connect to the agent's own listener
//! is never redirected either, so no configuration can make the agent proxy to itself.
#![no_std]
#![no_main]

use aya_ebpf::{
    EbpfContext,
    bindings::{BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB, bpf_pidns_info, bpf_sock_addr},
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_uid_gid,
        generated::{
            bpf_get_current_cgroup_id, bpf_get_ns_current_pid_tgid, bpf_get_socket_cookie,
        },
    },
    macros::{cgroup_sock_addr, map, sock_ops},
    maps::{Array, HashMap, LruHashMap},
    programs::{SockAddrContext, SockOpsContext},
};
use gateway_common::{
    AF_INET, AF_INET6, ConnInfo, MAX_BY_ADDR, MAX_PENDING, MAX_PORTS, RedirectConfig, SockKey,
    is_v4_mapped,
};

/// Verdict for cgroup sock_addr programs: let the (possibly rewritten) call proceed.
const ALLOW: i32 = 1;
/// Verdict for cgroup sock_addr programs: fail the call with EPERM.
const DENY: i32 = 0;
const SOCK_STREAM: u32 = 1;
const IPPROTO_TCP: u32 = 6;

#[map]
static CONFIG: Array<RedirectConfig> = Array::with_max_entries(1, 0);

/// Destination ports to intercept (host byte order → unused value).
#[map]
static PORTS: HashMap<u16, u8> = HashMap::with_max_entries(MAX_PORTS, 0);

/// Socket cookie → connection record, from connect() until the handshake completes.
#[map]
static PENDING: LruHashMap<u64, ConnInfo> = LruHashMap::with_max_entries(MAX_PENDING, 0);

/// Client local address → connection record, until the agent accepts and consumes it.
#[map]
static BY_ADDR: LruHashMap<SockKey, ConnInfo> = LruHashMap::with_max_entries(MAX_BY_ADDR, 0);

#[cgroup_sock_addr(connect4)]
pub fn gateway_connect4(ctx: SockAddrContext) -> i32 {
    let sa = ctx.sock_addr;
    let Some(cfg) = redirect_config() else {
        return ALLOW;
    };
    // SAFETY: `sa` is the context pointer the kernel passed in; user_ip4/user_port are
    // readable 4-byte fields of bpf_sock_addr for connect4.
    let (ip_be, port) = unsafe {
        (
            core::ptr::read_volatile(&(*sa).user_ip4),
            port_from_user(core::ptr::read_volatile(&(*sa).user_port)),
        )
    };
    if is_tcp(&ctx) && is_own_listener4(&cfg, ip_be, port) {
        return ALLOW;
    }
    let Some(ns_pid) = should_redirect(&cfg, port) else {
        return ALLOW;
    };
    if !is_tcp(&ctx) {
        return DENY;
    }
    remember(&ctx, SockKey::v4(ip_be, port), ns_pid);
    // SAFETY: as above; both fields are writable in connect4.
    unsafe {
        core::ptr::write_volatile(&mut (*sa).user_ip4, cfg.listen4_addr);
        core::ptr::write_volatile(&mut (*sa).user_port, port_to_user(cfg.listen4_port));
    }
    ALLOW
}

#[cgroup_sock_addr(connect6)]
pub fn gateway_connect6(ctx: SockAddrContext) -> i32 {
    let sa = ctx.sock_addr;
    let Some(cfg) = redirect_config() else {
        return ALLOW;
    };
    // SAFETY: user_ip6 must be read as 4-byte words (the verifier rejects wider loads).
    let (ip6, port) = unsafe { (read_user_ip6(sa), port_from_user((*sa).user_port)) };
    if is_tcp(&ctx) && is_own_listener6(&cfg, ip6, port) {
        return ALLOW;
    }
    let Some(ns_pid) = should_redirect(&cfg, port) else {
        return ALLOW;
    };
    if !is_tcp(&ctx) {
        return DENY;
    }
    remember(&ctx, SockKey::v6(ip6, port), ns_pid);
    // A v4-mapped destination travels over IPv4 on the wire, so it must go to the IPv4
    // listener, still addressed as v4-mapped because the socket is AF_INET6.
    let (new_ip6, new_port) = if is_v4_mapped(ip6) {
        (
            [0, 0, u32::from_be(0x0000_ffff), cfg.listen4_addr],
            cfg.listen4_port,
        )
    } else {
        (cfg.listen6_addr, cfg.listen6_port)
    };
    // SAFETY: user_ip6 words and user_port are writable in connect6; 4-byte volatile
    // stores keep LLVM from merging them into 8-byte stores the verifier rejects.
    unsafe {
        write_user_ip6(sa, new_ip6);
        core::ptr::write_volatile(&mut (*sa).user_port, port_to_user(new_port));
    }
    ALLOW
}

/// An unconnected UDP send (`sendto`, `sendmsg`, `sendmmsg` with a destination) to an MCP
/// port from anyone but the agent: refused (EPERM). Connected UDP sockets never get here;
/// their `connect()` was already refused by connect4/6. v4-mapped destinations on an IPv6
/// socket are sent by the IPv4 path, which runs this program.
#[cgroup_sock_addr(sendmsg4)]
pub fn gateway_sendmsg4(ctx: SockAddrContext) -> i32 {
    let Some(cfg) = redirect_config() else {
        return ALLOW;
    };
    // SAFETY: user_port is a readable 4-byte field of bpf_sock_addr for sendmsg4.
    let port = unsafe { port_from_user(core::ptr::read_volatile(&(*ctx.sock_addr).user_port)) };
    match should_redirect(&cfg, port) {
        Some(_) => DENY,
        None => ALLOW,
    }
}

/// `gateway_sendmsg4` for IPv6 destinations.
#[cgroup_sock_addr(sendmsg6)]
pub fn gateway_sendmsg6(ctx: SockAddrContext) -> i32 {
    let Some(cfg) = redirect_config() else {
        return ALLOW;
    };
    // SAFETY: user_port is a readable 4-byte field of bpf_sock_addr for sendmsg6.
    let port = unsafe { port_from_user(core::ptr::read_volatile(&(*ctx.sock_addr).user_port)) };
    match should_redirect(&cfg, port) {
        Some(_) => DENY,
        None => ALLOW,
    }
}

#[sock_ops]
pub fn gateway_sockops(ctx: SockOpsContext) -> u32 {
    if ctx.op() != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB {
        return 1;
    }
    // SAFETY: bpf_get_socket_cookie accepts a sock_ops context.
    let cookie = unsafe { bpf_get_socket_cookie(ctx.as_ptr()) };
    // sockops local_port is host byte order; local_ip4/ip6 are network order.
    let port = ctx.local_port() as u16;
    let key = match ctx.family() as u16 {
        AF_INET => SockKey::v4(ctx.local_ip4(), port),
        AF_INET6 => SockKey::v6(ctx.local_ip6(), port),
        _ => return 1,
    };
    // SAFETY: the value is copied out before any other map operation could free it.
    let Some(info) = (unsafe { PENDING.get(&cookie) }).copied() else {
        // No record: not redirected, or its record was evicted from the LRU map under
        // pressure. In the second case a record an earlier connection left under the same
        // local address (one the agent never accepted) must not be taken for this one's:
        // the agent would proxy to that connection's destination. Dropping it makes the
        // agent find nothing and refuse.
        if is_to_agent(&ctx) {
            let _ = BY_ADDR.remove(&key);
        }
        return 1;
    };
    // If the insert fails the agent must find no record and refuse the connection
    // (closed), not an older one left under this key.
    if BY_ADDR.insert(&key, &info, 0).is_err() {
        let _ = BY_ADDR.remove(&key);
    }
    let _ = PENDING.remove(&cookie);
    1
}

/// The established connection's peer is one of the agent's listeners.
fn is_to_agent(ctx: &SockOpsContext) -> bool {
    let Some(cfg) = redirect_config() else {
        return false;
    };
    // sockops remote_port is the network-order port shifted into the high half (on
    // little-endian hosts), so `ntohl` of the whole word is the port.
    let port = u32::from_be(ctx.remote_port()) as u16;
    match ctx.family() as u16 {
        AF_INET => is_own_listener4(&cfg, ctx.remote_ip4(), port),
        AF_INET6 => is_own_listener6(&cfg, ctx.remote_ip6(), port),
        _ => false,
    }
}

fn redirect_config() -> Option<RedirectConfig> {
    let cfg = CONFIG.get(0).copied()?;
    (cfg.enabled != 0).then_some(cfg)
}

/// Only TCP can be proxied: connect4/6 also run for UDP connect(), refused for MCP ports.
/// (MPTCP passes: the kernel connects its first subflow, a TCP socket, through the hook.)
fn is_tcp(ctx: &SockAddrContext) -> bool {
    // SAFETY: `type` and `protocol` are readable 4-byte fields of bpf_sock_addr.
    let (sock_type, protocol) = unsafe {
        (
            core::ptr::read_volatile(&(*ctx.sock_addr).type_),
            core::ptr::read_volatile(&(*ctx.sock_addr).protocol),
        )
    };
    sock_type == SOCK_STREAM && protocol == IPPROTO_TCP
}

/// `Some(caller's pid in the agent's PID namespace, 0 if it lives elsewhere)` when this
/// connect must be redirected: an MCP port, and not the agent itself.
fn should_redirect(cfg: &RedirectConfig, port: u16) -> Option<u32> {
    // SAFETY: only tests presence; the value is not read.
    unsafe { PORTS.get(&port) }?;
    let ns_pid = pid_in_agent_ns(cfg);
    if cfg.agent_tgid != 0 && ns_pid == cfg.agent_tgid {
        return None;
    }
    Some(ns_pid)
}

/// The current tgid as the agent's PID namespace numbers it; 0 when the task is not in
/// exactly that namespace (the helper fails), and 0 is never a process's tgid.
fn pid_in_agent_ns(cfg: &RedirectConfig) -> u32 {
    let mut ns = bpf_pidns_info { pid: 0, tgid: 0 };
    // SAFETY: `ns` is a valid, writable bpf_pidns_info of the size passed.
    let ret = unsafe {
        bpf_get_ns_current_pid_tgid(
            cfg.agent_pidns_dev,
            cfg.agent_pidns_ino,
            &mut ns,
            core::mem::size_of::<bpf_pidns_info>() as u32,
        )
    };
    if ret == 0 { ns.tgid } else { 0 }
}

/// A connect straight to the agent's listener (its port on its address, or on any address
/// when it listens on the wildcard) is left alone: redirecting it would loop.
fn is_own_listener4(cfg: &RedirectConfig, ip_be: u32, port: u16) -> bool {
    port == cfg.listen4_port && (ip_be == cfg.listen4_addr || cfg.listen4_addr == 0)
}

fn is_own_listener6(cfg: &RedirectConfig, ip6: [u32; 4], port: u16) -> bool {
    if is_v4_mapped(ip6) {
        return is_own_listener4(cfg, ip6[3], port);
    }
    // Word by word: an array compare may become a memcmp call, which eBPF cannot make.
    let l = cfg.listen6_addr;
    let any = (l[0] | l[1] | l[2] | l[3]) == 0;
    let same = ip6[0] == l[0] && ip6[1] == l[1] && ip6[2] == l[2] && ip6[3] == l[3];
    port == cfg.listen6_port && (any || same)
}

/// Records who is connecting where, keyed by the socket cookie that sockops will see.
fn remember(ctx: &SockAddrContext, orig_dst: SockKey, ns_pid: u32) {
    let pid_tgid = bpf_get_current_pid_tgid();
    let uid_gid = bpf_get_current_uid_gid();
    let info = ConnInfo {
        // SAFETY: helper without arguments, allowed in cgroup sock_addr programs.
        cgroup_id: unsafe { bpf_get_current_cgroup_id() },
        orig_dst,
        pid: (pid_tgid >> 32) as u32,
        tid: pid_tgid as u32,
        uid: uid_gid as u32,
        gid: (uid_gid >> 32) as u32,
        comm: bpf_get_current_comm().unwrap_or_default(),
        ns_pid,
    };
    // SAFETY: bpf_get_socket_cookie accepts a sock_addr context.
    let cookie = unsafe { bpf_get_socket_cookie(ctx.as_ptr()) };
    // A failed insert still redirects: the agent then has no record and refuses the
    // connection, which is the closed failure we want.
    let _ = PENDING.insert(&cookie, &info, 0);
}

/// `user_port` holds the big-endian port in its low 16 bits.
fn port_from_user(user_port: u32) -> u16 {
    u16::from_be(user_port as u16)
}

fn port_to_user(port: u16) -> u32 {
    port.to_be() as u32
}

/// # Safety
/// `sa` must be the connect6 context pointer.
unsafe fn read_user_ip6(sa: *mut bpf_sock_addr) -> [u32; 4] {
    // SAFETY: per the function contract; each word is a separate 4-byte load.
    unsafe {
        [
            core::ptr::read_volatile(&(*sa).user_ip6[0]),
            core::ptr::read_volatile(&(*sa).user_ip6[1]),
            core::ptr::read_volatile(&(*sa).user_ip6[2]),
            core::ptr::read_volatile(&(*sa).user_ip6[3]),
        ]
    }
}

/// # Safety
/// `sa` must be the connect6 context pointer.
unsafe fn write_user_ip6(sa: *mut bpf_sock_addr, ip6: [u32; 4]) {
    // SAFETY: per the function contract; each word is a separate 4-byte store.
    unsafe {
        core::ptr::write_volatile(&mut (*sa).user_ip6[0], ip6[0]);
        core::ptr::write_volatile(&mut (*sa).user_ip6[1], ip6[1]);
        core::ptr::write_volatile(&mut (*sa).user_ip6[2], ip6[2]);
        core::ptr::write_volatile(&mut (*sa).user_ip6[3], ip6[3]);
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
