//! `[tls]` and the TLS keys of `[[server]]`, and their validation.
//!
//! Kept apart from `config.rs` so the TLS stage owns its own settings; `Config::validate`
//! calls [`validate`] and reports its errors under the same "file: key: problem" form.

use std::path::PathBuf;

use serde::Deserialize;

use crate::config::ServerConfig;

/// What the agent does with a TLS connection to a configured server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Relay the bytes unseen (attributed in the log and the audit trail).
    #[default]
    Passthrough,
    /// Terminate with a certificate the client trusts, run the MCP pipeline on the
    /// plaintext, and originate verified TLS to the real server.
    Terminate,
}

impl TlsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Passthrough => "passthrough",
            Self::Terminate => "terminate",
        }
    }
}

/// `[tls]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// The mode of `[[server]]` entries without their own `tls`. Default `passthrough`,
    /// the behaviour before termination existed: opening a server's TLS is an opt-in.
    pub mode: TlsMode,
    /// Where the local CA lives (`ca.pem`, and `ca.key`, mode 0600).
    pub ca_dir: PathBuf,
    /// Bound on reading a client's ClientHello and on each handshake (client and upstream).
    pub handshake_timeout_ms: u64,
    /// Lifetime of a minted leaf certificate (at most 168 hours: 7 days).
    pub leaf_validity_hours: u32,
    /// Leaf certificates kept (least recently used ones are dropped beyond this).
    pub leaf_cache: usize,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            mode: TlsMode::Passthrough,
            ca_dir: PathBuf::from("/var/lib/gateway-agent/ca"),
            handshake_timeout_ms: 10_000,
            leaf_validity_hours: 168,
            leaf_cache: 1024,
        }
    }
}

/// Longest leaf lifetime: short-lived leaves limit what a leaked leaf key is worth.
pub const MAX_LEAF_VALIDITY_HOURS: u32 = 7 * 24;

/// Does `name` (a client's SNI) match `pattern` (`host.example` exactly, or
/// `*.example`: any name ending in `.example`, one label or more)? Both are compared in
/// lower case; the patterns are lower-cased by validation.
pub fn sni_matches(pattern: &str, name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(suffix) => name.len() > suffix.len() + 1 && name.ends_with(&format!(".{suffix}")),
        None => name == pattern,
    }
}

/// Checks `[tls]` and every server's TLS keys; `Err((key, problem))`.
pub fn validate(tls: &TlsConfig, servers: &[ServerConfig]) -> Result<(), (&'static str, String)> {
    if !tls.ca_dir.is_absolute() {
        return Err((
            "tls.ca_dir",
            format!("{} must be an absolute path", tls.ca_dir.display()),
        ));
    }
    if tls.handshake_timeout_ms == 0 {
        return Err(("tls.handshake_timeout_ms", "must be at least 1".into()));
    }
    if tls.leaf_validity_hours == 0 || tls.leaf_validity_hours > MAX_LEAF_VALIDITY_HOURS {
        return Err((
            "tls.leaf_validity_hours",
            format!(
                "{} is out of range; 1..={MAX_LEAF_VALIDITY_HOURS} (7 days)",
                tls.leaf_validity_hours
            ),
        ));
    }
    if tls.leaf_cache == 0 {
        return Err(("tls.leaf_cache", "must be at least 1".into()));
    }
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for server in servers {
        for pattern in &server.sni {
            check_pattern(pattern)
                .map_err(|problem| ("server.sni", format!("{}: {problem}", server.name)))?;
            if let Some((_, other)) = seen.iter().find(|(p, _)| p.eq_ignore_ascii_case(pattern)) {
                return Err((
                    "server.sni",
                    format!("{pattern:?} is claimed by both {other} and {}", server.name),
                ));
            }
            seen.push((pattern, &server.name));
        }
        if server.cert.is_some() != server.key.is_some() {
            return Err((
                "server.cert",
                format!(
                    "{}: `cert` and `key` go together (a chain and its private key)",
                    server.name
                ),
            ));
        }
        if server.upstream_client_cert.is_some() != server.upstream_client_key.is_some() {
            return Err((
                "server.upstream_client_cert",
                format!(
                    "{}: `upstream_client_cert` and `upstream_client_key` go together",
                    server.name
                ),
            ));
        }
        for (key, path) in server
            .cert
            .iter()
            .map(|p| ("server.cert", p))
            .chain(server.key.iter().map(|p| ("server.key", p)))
            .chain(server.upstream_ca.iter().map(|p| ("server.upstream_ca", p)))
            .chain(
                server
                    .upstream_client_cert
                    .iter()
                    .map(|p| ("server.upstream_client_cert", p)),
            )
            .chain(
                server
                    .upstream_client_key
                    .iter()
                    .map(|p| ("server.upstream_client_key", p)),
            )
        {
            if !path.is_absolute() {
                return Err((
                    key,
                    format!(
                        "{}: {} must be an absolute path",
                        server.name,
                        path.display()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// A DNS name or `*.` wildcard, in lower case.
fn check_pattern(pattern: &str) -> Result<(), String> {
    let host = pattern.strip_prefix("*.").unwrap_or(pattern);
    let valid = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{pattern:?} is not a lower-case DNS name or a `*.` wildcard of one"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_wildcard_patterns() {
        assert!(sni_matches("mcp.example", "MCP.example."));
        assert!(!sni_matches("mcp.example", "x.mcp.example"));
        assert!(sni_matches("*.corp.example", "a.corp.example"));
        assert!(sni_matches("*.corp.example", "a.b.corp.example"));
        assert!(!sni_matches("*.corp.example", "corp.example"));
        assert!(!sni_matches("*.corp.example", "evilcorp.example"));
    }

    #[test]
    fn patterns_are_checked() {
        assert!(check_pattern("mcp.github.example").is_ok());
        assert!(check_pattern("*.corp.example").is_ok());
        for bad in ["", "*", "a..b", "Upper.example", "*.*.x", "a b", "x.*.y"] {
            assert!(check_pattern(bad).is_err(), "{bad:?}");
        }
    }
}
