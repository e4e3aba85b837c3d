//! gateway-agent: transparently intercepts connections to MCP servers on this host (via
//! eBPF cgroup programs) and proxies them, knowing which process opened each one.
//!
//! One module per stage of the data path (see README.md, Data path); `run` composes them.
#![forbid(unsafe_code)]

pub mod approval;
pub mod audit;
pub mod cgroup;
pub mod config;
pub mod credential;
pub mod discover;
pub mod handles;
pub mod http;
pub mod identity;
pub mod intercept;
pub mod listeners;
pub mod logging;
pub mod mask;
pub mod mcp;
pub mod metrics;
pub mod pins;
pub mod policy;
pub mod principal;
pub mod process;
pub mod proxy;
pub mod run;
pub mod sd_notify;
pub mod servers;
pub mod ship;
pub mod status;
pub mod tls;
pub mod workers;
