//! The agent's one typed configuration, read from TOML and validated up front.
//!
//! `gateway-agent check` and `gateway-agent run` call the same [`Config::load`], so a file
//! that passes `check` starts. Every error names the file and the offending key.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use serde::Deserialize;

/// Used when `run`/`check` get no `--config`.
pub const EMBEDDED_DEFAULT: &str = include_str!("../../config/default.toml");

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin}: {source}")]
    Parse {
        origin: String,
        source: Box<toml::de::Error>,
    },
    #[error("{origin}: {key}: {problem}")]
    Invalid {
        origin: String,
        key: &'static str,
        problem: String,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub intercept: InterceptConfig,
    #[serde(default)]
    pub proxy: ProxyConfig,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub policy: PolicyConfig,
    #[serde(default)]
    pub mask: crate::mask::MaskConfig,
    /// Names for MCP servers by original destination, for policy (`server = ["name"]`)
    /// and logs.
    #[serde(default, rename = "server")]
    pub servers: Vec<ServerConfig>,
    /// Who callers are: OIDC issuers and how servers authenticate callers.
    #[serde(default)]
    pub identity: IdentityConfig,
    /// The audit trail: on by default.
    #[serde(default)]
    pub audit: crate::audit::AuditConfig,
    /// Just-in-time human approval of `approve` rules; without it they refuse.
    pub approval: Option<crate::approval::ApprovalConfig>,
    /// TLS termination: the default mode and the local CA.
    #[serde(default)]
    pub tls: crate::tls::TlsConfig,
    /// Prometheus metrics: off unless `listen` is set.
    #[serde(default)]
    pub metrics: crate::metrics::MetricsConfig,
    /// Where the running agent describes itself for `gateway-agent status`.
    #[serde(default)]
    pub status: crate::status::StatusConfig,
    /// Pinned tool definitions (rug-pull detection): on by default, `warn`.
    #[serde(default)]
    pub pins: crate::pins::PinsConfig,
    /// Secret handles for servers with `mask_mode = "handle"`.
    #[serde(default)]
    pub handles: crate::handles::HandlesConfig,
}

/// How the gateway authenticates callers of a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// No token: the caller is its local process (kernel identity) only, and the
    /// `Authorization` header is the server's business (left as sent, unless the agent holds
    /// a credential for the server). For hosts whose clients cannot carry tokens.
    #[default]
    Local,
    /// A token is validated if present (an invalid one is refused) and then removed; a
    /// request without one proceeds as `local`.
    Optional,
    /// Every request needs a valid token: 401 without one, 403 without the scopes.
    Require,
}

impl AuthMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Optional => "optional",
            Self::Require => "require",
        }
    }
}

/// `[identity]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    /// The mode of servers without their own `auth`. Default `local`.
    #[serde(default)]
    pub mode: AuthMode,
    /// `[[identity.issuer]]`: the OpenID providers whose access tokens are accepted.
    #[serde(default, rename = "issuer")]
    pub issuers: Vec<crate::identity::IssuerConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// What policy rules and logs call this server.
    pub name: String,
    /// Its address as clients dial it (the original destination of intercepted connects).
    pub addr: SocketAddr,
    /// A credential the agent injects into requests to this server in place of the
    /// caller's `Authorization`.
    pub credential: Option<crate::credential::CredentialConfig>,
    /// How callers authenticate to this server; default `[identity] mode`.
    pub auth: Option<AuthMode>,
    /// Scopes a token must carry for this server, on top of its issuer's
    /// `required_scopes` (403 `insufficient_scope` otherwise).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The audience a token must name for this server (RFC 8707: a token minted for one
    /// server is not accepted by another). Default: any of the issuer's `audiences`.
    pub audience: Option<String>,
    /// The server's canonical URI, the `resource` of its RFC 9728 metadata document.
    /// Default: `http://HOST/PATH` of the request, as the client addressed it.
    pub resource: Option<String>,
    /// TLS server names (ClientHello SNI) that are this server: `host.example` or
    /// `*.example`. A TLS connection naming one is attributed to it wherever it goes.
    #[serde(default)]
    pub sni: Vec<String>,
    /// `terminate` or `passthrough`; default `[tls] mode`.
    pub tls: Option<crate::tls::TlsMode>,
    /// PEM certificate chain to present to clients instead of a leaf from the local CA
    /// (for a server on this host the agent fronts with its real certificate).
    pub cert: Option<PathBuf>,
    /// PEM private key of `cert`.
    pub key: Option<PathBuf>,
    /// Speak TLS to the server after terminating the client's (default). `false`: the
    /// server behind is plain HTTP, allowed only because it is configured.
    #[serde(default = "yes")]
    pub upstream_tls: bool,
    /// PEM files of CAs trusted for this server's certificate, on top of the system roots.
    #[serde(default)]
    pub upstream_ca: Vec<PathBuf>,
    /// A client certificate chain (PEM) the agent presents to this server (mTLS), with
    /// `upstream_client_key`: the agent holds it, like the other upstream credentials.
    pub upstream_client_cert: Option<PathBuf>,
    pub upstream_client_key: Option<PathBuf>,
    /// What a changed or added tool of this server gets; default `[pins] on_tool_change`.
    pub on_tool_change: Option<crate::pins::Action>,
    /// `handle`: secrets masked in its responses become handles the same caller can send
    /// back to it (`handles/`); default `mask`.
    #[serde(default)]
    pub mask_mode: crate::handles::MaskMode,
    /// This server's masking settings beyond `[mask]`.
    #[serde(default)]
    pub mask: ServerMaskConfig,
}

/// `mask.*` of one `[[server]]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerMaskConfig {
    /// Overrides `[mask] stream_holdback` for this server's SSE streams.
    pub stream_holdback: Option<crate::mask::seam::StreamHoldback>,
}

fn yes() -> bool {
    true
}

/// Limits on what the gateway buffers while inspecting MCP over HTTP.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Largest JSON-RPC request body accepted (it is read whole to apply policy); larger
    /// ones get HTTP 413 with a JSON-RPC error.
    pub max_request_body_bytes: usize,
    /// Largest JSON response body inspected (read whole to mask); larger ones are
    /// withheld with HTTP 502, never released unmasked.
    pub max_response_body_bytes: usize,
    /// Largest single SSE event; a stream with a longer one is cut.
    pub max_sse_event_bytes: usize,
    /// How long a client may take to send a request head, and how long an idle keep-alive
    /// connection waits for the next one (slowloris on the head).
    pub request_head_timeout_ms: u64,
    /// How long a client may take to send a whole request body the gateway reads.
    pub request_body_timeout_ms: u64,
    /// How long an upstream may take to start its answer (slow tools: keep it generous).
    pub response_head_timeout_ms: u64,
    /// Longest silence inside a response body the gateway reads whole; streams (SSE,
    /// chunked JSON) may stay quiet for ever and are never cut for it.
    pub response_body_idle_timeout_ms: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            max_request_body_bytes: 4 << 20,
            max_response_body_bytes: 64 << 20,
            max_sse_event_bytes: 16 << 20,
            request_head_timeout_ms: 30_000,
            request_body_timeout_ms: 60_000,
            response_head_timeout_ms: 300_000,
            response_body_idle_timeout_ms: 60_000,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Directory of `*.toml` policy files, read in file-name order. Without it the
    /// shipped default policy (policies/default.toml, embedded) applies.
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterceptConfig {
    /// Destination TCP ports whose connections are redirected into the agent.
    pub ports: Vec<u16>,
    /// The agent's IPv4 listener; IPv4 and v4-mapped IPv6 connects are redirected here.
    pub listen: SocketAddr,
    /// The agent's IPv6 listener for IPv6 connects. Default: `[::1]` on `listen`'s port.
    pub listen6: Option<SocketAddr>,
    /// cgroup v2 directory whose processes (and descendants) are intercepted.
    /// Default: the root of the cgroup2 mount found in /proc/mounts.
    pub cgroup: Option<PathBuf>,
    /// bpffs directory where programs, links and maps are pinned so interception (and
    /// refusal while the agent is down) outlives the agent process.
    #[serde(default = "default_pin_dir")]
    pub pin_dir: PathBuf,
    /// What a stopped agent (SIGTERM/SIGINT) leaves behind. Default `keep`: a config
    /// written for a service fails closed while the agent is down. The embedded default
    /// config (the try-it-out demo) says `detach`, so Ctrl-C gives the host its direct
    /// path back. A crash (SIGKILL) always leaves the pins: nothing runs to remove them.
    #[serde(default)]
    pub on_exit: OnExit,
    /// Entries of each kernel connection-record map: connects in flight plus connections
    /// established but not yet accepted by the agent. Beyond it the oldest records are
    /// evicted (LRU) and their connections refused, never proxied to a guessed destination.
    #[serde(default = "default_max_tracked_connections")]
    pub max_tracked_connections: u32,
}

/// The most `max_tracked_connections` may say: about 150 bytes of kernel memory per entry
/// in each of two maps.
pub const MAX_TRACKED_CONNECTIONS: u32 = 1 << 20;

fn default_max_tracked_connections() -> u32 {
    gateway_common::MAX_BY_ADDR
}

/// `[intercept] on_exit`, or `run --on-exit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum OnExit {
    /// Leave the programs pinned with no agent behind them: connections to the
    /// intercepted ports are refused until the agent runs again or `detach` removes them.
    #[default]
    Keep,
    /// Remove the programs: connections go direct, unseen, until the agent runs again.
    Detach,
}

impl OnExit {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Keep => "keep",
            Self::Detach => "detach",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyConfig {
    /// How long to wait for the original destination to accept before resetting the client.
    pub connect_timeout_ms: u64,
    /// Connections proxied at once; beyond this new clients are reset (and it is logged).
    pub max_connections: usize,
    /// Redirected connections the kernel queues for each data-path thread's listener while
    /// that thread is busy (listen(2) backlog; the kernel caps it at net.core.somaxconn).
    /// Beyond it a client's SYN is dropped and retried a second later. The Rust default,
    /// 128, was exceeded by a burst of a few hundred connects.
    pub listen_backlog: u32,
    /// Data-path threads, each serving the connections it accepts from start to end;
    /// default one per CPU the agent may use, at most [`DEFAULT_THREADS_MAX`].
    pub threads: Option<usize>,
}

/// A many-core host does not get a thread per core by default: four serve far more MCP
/// traffic than a host makes, and each thread keeps upstream connections of its own (a
/// caller whose connections land on every thread holds one kept connection per thread).
pub const DEFAULT_THREADS_MAX: usize = 4;

impl ProxyConfig {
    /// `threads`, else the CPUs this process may run on (its affinity and cgroup quota),
    /// at most [`DEFAULT_THREADS_MAX`].
    pub fn data_path_threads(&self) -> usize {
        self.threads.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map_or(1, std::num::NonZeroUsize::get)
                .min(DEFAULT_THREADS_MAX)
        })
    }
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            connect_timeout_ms: 5_000,
            max_connections: 10_000,
            listen_backlog: 4096,
            threads: None,
        }
    }
}

fn default_pin_dir() -> PathBuf {
    PathBuf::from("/sys/fs/bpf/gateway-agent")
}

impl Config {
    /// Reads and validates `path`, or the embedded default when `path` is `None`.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                Self::parse(&text, &path.display().to_string())
            }
            None => Self::parse(EMBEDDED_DEFAULT, "embedded default config"),
        }
    }

    /// `origin` names the source in error messages (a file path or "embedded default").
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|source| ConfigError::Parse {
            origin: origin.to_owned(),
            source: Box::new(source),
        })?;
        config.validate(origin)?;
        Ok(config)
    }

    fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let invalid = |key, problem: String| ConfigError::Invalid {
            origin: origin.to_owned(),
            key,
            problem,
        };
        let ic = &self.intercept;
        if ic.ports.is_empty() {
            return Err(invalid(
                "intercept.ports",
                "is empty; name at least one MCP server port".into(),
            ));
        }
        if ic.ports.len() > gateway_common::MAX_PORTS as usize {
            return Err(invalid(
                "intercept.ports",
                format!(
                    "has {} entries; at most {}",
                    ic.ports.len(),
                    gateway_common::MAX_PORTS
                ),
            ));
        }
        if ic.ports.contains(&0) {
            return Err(invalid("intercept.ports", "0 is not a TCP port".into()));
        }
        if !ic.listen.is_ipv4() {
            return Err(invalid(
                "intercept.listen",
                format!(
                    "{} is not an IPv4 address; put IPv6 in intercept.listen6",
                    ic.listen
                ),
            ));
        }
        if ic.listen.ip().is_unspecified() || ic.listen.port() == 0 {
            return Err(invalid(
                "intercept.listen",
                format!(
                    "{} must name a concrete address and port (connects are redirected to it)",
                    ic.listen
                ),
            ));
        }
        let listen6 = self.listen6();
        if !listen6.is_ipv6() || listen6.ip().is_unspecified() || listen6.port() == 0 {
            return Err(invalid(
                "intercept.listen6",
                format!("{listen6} must be a concrete IPv6 address and port"),
            ));
        }
        for listener in [ic.listen, listen6] {
            if ic.ports.contains(&listener.port()) {
                return Err(invalid(
                    "intercept.ports",
                    format!(
                        "contains {}, the agent's own listener port",
                        listener.port()
                    ),
                ));
            }
        }
        if let Some(cgroup) = &ic.cgroup
            && !cgroup.is_absolute()
        {
            return Err(invalid(
                "intercept.cgroup",
                format!(
                    "{} must be an absolute path to a cgroup v2 directory",
                    cgroup.display()
                ),
            ));
        }
        if !(16..=MAX_TRACKED_CONNECTIONS).contains(&ic.max_tracked_connections) {
            return Err(invalid(
                "intercept.max_tracked_connections",
                format!(
                    "{} is outside 16..={MAX_TRACKED_CONNECTIONS}",
                    ic.max_tracked_connections
                ),
            ));
        }
        if !ic.pin_dir.is_absolute() {
            return Err(invalid(
                "intercept.pin_dir",
                format!(
                    "{} must be an absolute path on a bpf filesystem",
                    ic.pin_dir.display()
                ),
            ));
        }
        for (i, server) in self.servers.iter().enumerate() {
            if server.name.trim().is_empty() {
                return Err(invalid(
                    "server.name",
                    format!("entry {} has an empty name", i + 1),
                ));
            }
            if self.servers[..i]
                .iter()
                .any(|s| s.name == server.name || s.addr == server.addr)
            {
                return Err(invalid(
                    "server",
                    format!(
                        "{} ({}) names a server or address twice",
                        server.name, server.addr
                    ),
                ));
            }
        }
        if let Some(addr) = self.metrics.listen
            && (addr.port() == 0 || addr == ic.listen || addr == listen6)
        {
            return Err(invalid(
                "metrics.listen",
                format!("{addr} must be a concrete port other than the intercept listeners"),
            ));
        }
        self.validate_identity(origin)?;
        crate::tls::config::validate(&self.tls, &self.servers)
            .map_err(|(key, problem)| invalid(key, problem))?;
        if self.proxy.connect_timeout_ms == 0 {
            return Err(invalid(
                "proxy.connect_timeout_ms",
                "must be at least 1".into(),
            ));
        }
        for (key, value) in [
            (
                "http.max_request_body_bytes",
                self.http.max_request_body_bytes,
            ),
            (
                "http.max_response_body_bytes",
                self.http.max_response_body_bytes,
            ),
            ("http.max_sse_event_bytes", self.http.max_sse_event_bytes),
        ] {
            if value < 1024 {
                return Err(invalid(key, format!("{value} is too small; at least 1024")));
            }
        }
        for (key, value) in [
            (
                "http.request_head_timeout_ms",
                self.http.request_head_timeout_ms,
            ),
            (
                "http.request_body_timeout_ms",
                self.http.request_body_timeout_ms,
            ),
            (
                "http.response_head_timeout_ms",
                self.http.response_head_timeout_ms,
            ),
            (
                "http.response_body_idle_timeout_ms",
                self.http.response_body_idle_timeout_ms,
            ),
        ] {
            if value == 0 {
                return Err(invalid(key, "must be at least 1".into()));
            }
        }
        if self.proxy.max_connections == 0 {
            return Err(invalid(
                "proxy.max_connections",
                "must be at least 1".into(),
            ));
        }
        if !(1..=65_535).contains(&self.proxy.listen_backlog) {
            return Err(invalid(
                "proxy.listen_backlog",
                format!("{} is outside 1..=65535", self.proxy.listen_backlog),
            ));
        }
        if let Some(threads) = self.proxy.threads
            && !(1..=1024).contains(&threads)
        {
            return Err(invalid(
                "proxy.threads",
                format!("{threads} is outside 1..=1024"),
            ));
        }
        if let Some(ship) = &self.audit.ship {
            ship.validate()
                .map_err(|problem| invalid("audit.ship", problem))?;
        }
        Ok(())
    }

    fn validate_identity(&self, origin: &str) -> Result<(), ConfigError> {
        let invalid = |key, problem: String| ConfigError::Invalid {
            origin: origin.to_owned(),
            key,
            problem,
        };
        for issuer in &self.identity.issuers {
            issuer.validate().map_err(|problem| {
                invalid("identity.issuer", format!("{}: {problem}", issuer.issuer))
            })?;
        }
        if self.identity.issuers.is_empty() {
            if self.identity.mode != AuthMode::Local {
                return Err(invalid(
                    "identity.mode",
                    format!(
                        "is {:?} but no [[identity.issuer]] is configured to validate tokens",
                        self.identity.mode.as_str()
                    ),
                ));
            }
            if let Some(server) = self
                .servers
                .iter()
                .find(|s| s.auth.is_some_and(|mode| mode != AuthMode::Local))
            {
                return Err(invalid(
                    "server.auth",
                    format!(
                        "server {} wants tokens but no [[identity.issuer]] is configured",
                        server.name
                    ),
                ));
            }
        }
        if let Some(approval) = &self.approval {
            if let Some((key, problem)) = approval.problems().into_iter().next() {
                return Err(invalid(key, problem));
            }
            if approval.http_listen.is_some() && self.identity.issuers.is_empty() {
                return Err(invalid(
                    "approval.http_listen",
                    "needs [[identity.issuer]]: its approvers are identified by token".into(),
                ));
            }
        }
        Ok(())
    }

    /// The configured name of the server at `addr`, if any.
    pub fn server_name(&self, addr: SocketAddr) -> Option<&str> {
        self.servers
            .iter()
            .find(|server| server.addr == addr)
            .map(|server| server.name.as_str())
    }

    pub fn listen6(&self) -> SocketAddr {
        self.intercept.listen6.unwrap_or_else(|| {
            SocketAddr::new(
                std::net::Ipv6Addr::LOCALHOST.into(),
                self.intercept.listen.port(),
            )
        })
    }
}

#[cfg(test)]
mod tests;
