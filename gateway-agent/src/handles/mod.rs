//! Secret handles (`[[server]] mask_mode = "handle"`): a secret masked in a response is
//! replaced by an unguessable, session-scoped handle (`[SECRET:h_<32 hex>]`) instead of a
//! blank, so an agent can pass it on to the same server without ever seeing it. When the
//! same principal, in the same MCP session, sends a request to the same server carrying
//! the handle, the agent swaps the real value back in before forwarding. A handle sent to
//! another server, by another principal, in another session, after it expired, or one the
//! agent never issued, is never resolved: the request is refused.
//!
//! Values live only here, in memory, zeroised when dropped; logs and the audit trail see
//! handles. The masker is not changed: handles are issued by aligning the masked text
//! with the original (`align.rs`), each `[MASKED:…]` placeholder standing for the
//! original span it replaced.

mod align;

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use ring::rand::SecureRandom as _;
use serde::Deserialize;
use zeroize::Zeroizing;

/// `[handles]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HandlesConfig {
    /// How long a handle resolves after it was issued.
    pub ttl_secs: u64,
    /// Live handles at once; past it the oldest are dropped (their requests refused).
    pub max_handles: usize,
}

impl Default for HandlesConfig {
    fn default() -> Self {
        Self {
            ttl_secs: 900,
            max_handles: 10_000,
        }
    }
}

/// Who a handle is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// `approval::binding::principal_key` of the caller.
    pub principal: String,
    /// The MCP session (or connection) id.
    pub session: String,
    /// The server key (`pins::server_key`).
    pub server: String,
}

impl Binding {
    /// Bound to nobody: no handle resolves for it.
    fn nobody() -> Self {
        Self {
            principal: String::new(),
            session: String::new(),
            server: String::new(),
        }
    }
}

struct Entry {
    /// The original span as it appeared in the server's JSON text (string-escaped where
    /// it was inside a string): swapped back verbatim into a request's JSON string.
    value: Zeroizing<String>,
    binding: Binding,
    issued: Instant,
}

/// The live handles of one agent.
pub struct Handles {
    ttl: Duration,
    max: usize,
    live: Mutex<HashMap<String, Entry>>,
}

const PREFIX: &str = "[SECRET:h_";
const HEX_LEN: usize = 32;

impl Handles {
    pub fn new(config: &HandlesConfig) -> Self {
        Self {
            ttl: Duration::from_secs(config.ttl_secs),
            max: config.max_handles.max(1),
            live: Mutex::new(HashMap::new()),
        }
    }

    fn mint(&self, value: &str, binding: &Binding) -> Option<String> {
        let mut bytes = [0u8; HEX_LEN / 2];
        ring::rand::SystemRandom::new().fill(&mut bytes).ok()?;
        let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        live.retain(|_, e| now.duration_since(e.issued) < self.ttl);
        if live.len() >= self.max
            && let Some(oldest) = live
                .iter()
                .min_by_key(|(_, e)| e.issued)
                .map(|(k, _)| k.clone())
        {
            live.remove(&oldest);
        }
        live.insert(
            id.clone(),
            Entry {
                value: Zeroizing::new(value.to_owned()),
                binding: binding.clone(),
                issued: now,
            },
        );
        Some(format!("{PREFIX}{id}]"))
    }

    /// `masked` (the masker's output for `original`) with each placeholder that stands
    /// for a recoverable span replaced by a new handle; `None` when nothing changed.
    pub fn issue(&self, original: &str, masked: &str, binding: &Binding) -> Option<String> {
        let spans = align::placeholders(original, masked)?;
        let mut out = String::with_capacity(masked.len());
        let mut at = 0;
        let mut issued = 0;
        for span in spans {
            let Some(handle) = self.mint(&original[span.original.clone()], binding) else {
                continue;
            };
            out.push_str(&masked[at..span.masked.start]);
            out.push_str(&handle);
            at = span.masked.end;
            issued += 1;
        }
        out.push_str(&masked[at..]);
        (issued > 0).then_some(out)
    }

    /// `body` with every handle swapped for its value, and how many; `Err` with the
    /// reason when one may not be resolved for `binding`. `Ok((None, 0))`: no handle.
    pub fn resolve(
        &self,
        body: &str,
        binding: &Binding,
    ) -> Result<(Option<String>, usize), String> {
        if !body.contains(PREFIX) {
            return Ok((None, 0));
        }
        let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::with_capacity(body.len());
        let mut rest = body;
        let mut count = 0;
        while let Some(start) = rest.find(PREFIX) {
            let after = &rest[start + PREFIX.len()..];
            let id = after
                .get(..HEX_LEN)
                .filter(|id| id.bytes().all(|b| b.is_ascii_hexdigit()));
            let (Some(id), true) = (id, after.get(HEX_LEN..HEX_LEN + 1) == Some("]")) else {
                // Not a handle's shape: text that merely looks like the start of one.
                out.push_str(&rest[..start + PREFIX.len()]);
                rest = after;
                continue;
            };
            let entry = live
                .get(id)
                .ok_or_else(|| format!("secret handle h_{id} is unknown or expired"))?;
            if Instant::now().duration_since(entry.issued) >= self.ttl {
                return Err(format!("secret handle h_{id} has expired"));
            }
            let b = &entry.binding;
            if b.server != binding.server {
                return Err(format!("secret handle h_{id} belongs to another server"));
            }
            if b.principal != binding.principal {
                return Err(format!("secret handle h_{id} belongs to another caller"));
            }
            if b.session != binding.session {
                return Err(format!(
                    "secret handle h_{id} belongs to another MCP session"
                ));
            }
            out.push_str(&rest[..start]);
            out.push_str(&entry.value);
            rest = &after[HEX_LEN + 1..];
            count += 1;
        }
        out.push_str(rest);
        Ok(((count > 0).then_some(out), count))
    }
}

#[cfg(test)]
mod tests;

/// A request body with the secret handles it carries swapped for their values (`None`:
/// it carries none, or handles are off), or why one may not be resolved for `binding`
/// (`None`: a caller that cannot be identified, for whom no handle ever resolves).
pub fn resolve_request(
    handles: Option<&Handles>,
    body: &[u8],
    binding: Option<&Binding>,
) -> Result<Option<String>, String> {
    let (Some(handles), Ok(text)) = (handles, std::str::from_utf8(body)) else {
        return Ok(None);
    };
    let Some(binding) = binding else {
        return match handles.resolve(text, &Binding::nobody()) {
            Ok(_) => Ok(None),
            Err(_) => Err("gateway: a secret handle needs an identified caller".to_owned()),
        };
    };
    let (resolved, count) = handles
        .resolve(text, binding)
        .map_err(|reason| format!("gateway: {reason}"))?;
    if count > 0 {
        tracing::info!(handles = count, "secret handles resolved for the upstream");
    }
    Ok(resolved)
}

/// How a server's masked secrets reach the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MaskMode {
    /// `[MASKED:rule]`.
    #[default]
    Mask,
    /// `[SECRET:h_…]`, resolvable by the same caller, session and server.
    Handle,
}
