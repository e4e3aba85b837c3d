//! What the agent knows about each MCP server, by the address clients dial: its name, how
//! its callers authenticate, and the credential the agent holds for it.
//!
//! Built from `[[server]]` and `[identity]` at start and rebuilt on SIGHUP (credentials are
//! re-read, so a rotated secret file takes effect without dropping connections: each
//! request looks its server up afresh). A server nobody configured gets the defaults:
//! no name, `[identity] mode`, no credential.

use std::{collections::HashMap, net::SocketAddr, sync::Arc};

use crate::{
    config::{AuthMode, Config},
    credential::{Credential, CredentialError},
    mask::seam::StreamHoldback,
};

/// One server's settings.
#[derive(Debug, Default)]
pub struct ServerSettings {
    pub name: Option<String>,
    pub auth: AuthMode,
    /// Scopes its callers' tokens need beyond their issuer's.
    pub scopes: Vec<String>,
    /// The audience its callers' tokens must name, if pinned.
    pub audience: Option<String>,
    /// Its canonical URI for RFC 9728 metadata, if configured.
    pub resource: Option<String>,
    pub credential: Option<Arc<Credential>>,
    /// Secrets masked in its responses become handles (`mask_mode = "handle"`).
    pub handles: bool,
    /// How long an SSE notification waits to be joined with the next message, if at all.
    pub stream_holdback: Option<StreamHoldback>,
}

#[derive(Debug, Default)]
pub struct ServerTable {
    by_addr: HashMap<SocketAddr, Arc<ServerSettings>>,
    default: Arc<ServerSettings>,
}

impl ServerTable {
    /// Reads every configured credential now: a missing one is an error at start (or
    /// keeps the previous table on SIGHUP), never a failure at the first request.
    pub fn load(config: &Config) -> Result<Self, CredentialError> {
        let mut by_addr = HashMap::new();
        for server in &config.servers {
            let credential = match &server.credential {
                Some(credential) => Some(Arc::new(Credential::load(credential, &server.name)?)),
                None => None,
            };
            let settings = ServerSettings {
                name: Some(server.name.clone()),
                auth: server.auth.unwrap_or(config.identity.mode),
                scopes: server.scopes.clone(),
                audience: server.audience.clone(),
                resource: server.resource.clone(),
                credential,
                handles: server.mask_mode == crate::handles::MaskMode::Handle,
                stream_holdback: server.mask.stream_holdback.or(config.mask.stream_holdback),
            };
            by_addr.insert(canonical(server.addr), Arc::new(settings));
        }
        Ok(Self {
            by_addr,
            default: Arc::new(ServerSettings {
                auth: config.identity.mode,
                stream_holdback: config.mask.stream_holdback,
                ..ServerSettings::default()
            }),
        })
    }

    pub fn get(&self, addr: SocketAddr) -> Arc<ServerSettings> {
        Arc::clone(self.by_addr.get(&canonical(addr)).unwrap_or(&self.default))
    }

    /// The settings of the server configured under `name`.
    pub fn named(&self, name: &str) -> Option<Arc<ServerSettings>> {
        self.by_addr
            .values()
            .find(|s| s.name.as_deref() == Some(name))
            .map(Arc::clone)
    }

    pub fn credentials(&self) -> usize {
        self.by_addr
            .values()
            .filter(|s| s.credential.is_some())
            .count()
    }
}

/// A v4-mapped connect reaches the same server as its IPv4 form.
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}
