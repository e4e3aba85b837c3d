//! The agent's view of the kernel's connection records: given an accepted connection's
//! peer address, who opened it and where were they going.

use std::{
    net::{Ipv6Addr, SocketAddr},
    sync::Mutex,
};

use aya::maps::{HashMap, MapData, MapError};
use gateway_common::{ConnInfo, SockKey};

pub struct ConnTable {
    // aya's remove takes &mut; the lock is held for two syscalls.
    by_addr: Mutex<HashMap<MapData, SockKey, ConnInfo>>,
}

impl ConnTable {
    pub(super) fn new(by_addr: HashMap<MapData, SockKey, ConnInfo>) -> Self {
        Self {
            by_addr: Mutex::new(by_addr),
        }
    }

    /// Takes (looks up and deletes) the record for a connection accepted from `peer`, so
    /// the bounded map never fills with consumed entries.
    pub fn take(&self, peer: SocketAddr) -> Result<Option<ConnInfo>, MapError> {
        let key = sock_key(peer);
        let mut map = self
            .by_addr
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match map.get(&key, 0) {
            Ok(info) => {
                map.remove(&key)?;
                Ok(Some(info))
            }
            Err(MapError::KeyNotFound) => Ok(None),
            Err(err) => Err(err),
        }
    }
}

/// The key the kernel built for this peer in sockops (v4-mapped folded into IPv4).
pub fn sock_key(peer: SocketAddr) -> SockKey {
    match peer {
        SocketAddr::V4(v4) => SockKey::v4(u32::from_ne_bytes(v4.ip().octets()), v4.port()),
        SocketAddr::V6(v6) => SockKey::v6(ip6_words(v6.ip()), v6.port()),
    }
}

/// An IPv6 address as the kernel's four network-order words.
pub fn ip6_words(ip: &Ipv6Addr) -> [u32; 4] {
    let o = ip.octets();
    std::array::from_fn(|i| {
        u32::from_ne_bytes([o[4 * i], o[4 * i + 1], o[4 * i + 2], o[4 * i + 3]])
    })
}

/// The inverse of [`sock_key`], for reporting a record's original destination.
pub fn socket_addr(key: &SockKey) -> SocketAddr {
    if key.family == gateway_common::AF_INET6 {
        let mut octets = [0u8; 16];
        for (i, word) in key.addr.iter().enumerate() {
            octets[4 * i..4 * i + 4].copy_from_slice(&word.to_ne_bytes());
        }
        SocketAddr::new(Ipv6Addr::from(octets).into(), key.port)
    } else {
        SocketAddr::new(
            std::net::Ipv4Addr::from(key.addr[0].to_ne_bytes()).into(),
            key.port,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_round_trips() {
        let addr: SocketAddr = "127.0.0.1:18080".parse().unwrap();
        let key = sock_key(addr);
        assert_eq!(key.family, gateway_common::AF_INET);
        // Network order in memory: the first byte is 127.
        assert_eq!(key.addr[0].to_ne_bytes(), [127, 0, 0, 1]);
        assert_eq!(socket_addr(&key), addr);
    }

    #[test]
    fn v6_round_trips() {
        let addr: SocketAddr = "[2001:db8::42]:443".parse().unwrap();
        assert_eq!(socket_addr(&sock_key(addr)), addr);
    }

    #[test]
    fn v4_mapped_folds_into_v4() {
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:5555".parse().unwrap();
        let plain: SocketAddr = "127.0.0.1:5555".parse().unwrap();
        assert_eq!(sock_key(mapped), sock_key(plain));
    }
}
