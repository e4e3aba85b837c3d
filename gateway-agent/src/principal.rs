//! Who is asking: the one identity type that policy, approval and audit all use.
//!
//! Two halves with different provenance, kept apart so nobody confuses them. `process` comes
//! from the kernel (captured at connect() by the eBPF programs; the caller cannot forge
//! it). `token` comes from a validated OIDC bearer token (the identity stage, a later issue)
//! and is `None` until then. Either may be missing, and every accessor says so with an
//! `Option` or an empty slice: policy treats "unknown" as "does not match", never as a
//! wildcard, so an unidentified caller cannot satisfy an identity condition.

use std::{borrow::Cow, path::Path, sync::Arc};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::process::ProcessIdentity;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Principal {
    /// The local process that opened the connection, if the kernel recorded one. Shared:
    /// every request on a connection has the same one.
    pub process: Option<Arc<ProcessIdentity>>,
    /// Claims of the caller's validated bearer token, if it presented one.
    pub token: Option<TokenClaims>,
}

/// The claims of a validated token, normalised so policy need not know each identity
/// provider's spelling (`scope` as a string vs `scp` as a list, `azp` vs `client_id`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TokenClaims {
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub groups: Vec<String>,
    pub client_id: Option<String>,
    pub scopes: Vec<String>,
    /// Every other claim, for `claim = { … }` policy conditions.
    pub extra: Map<String, Value>,
}

impl TokenClaims {
    /// Normalises a validated token's claim set. `groups_claim` names the claim that holds
    /// group membership (`groups`, `roles`, `cognito:groups`… differ by provider). `None`
    /// when `iss` or `sub` is missing: such a token identifies nobody.
    pub fn from_claims(mut claims: Map<String, Value>, groups_claim: &str) -> Option<Self> {
        let mut text = |name: &str| match claims.remove(name) {
            Some(Value::String(value)) => Some(value),
            Some(other) => {
                claims.insert(name.to_owned(), other);
                None
            }
            None => None,
        };
        let issuer = text("iss")?;
        let subject = text("sub")?;
        let email = text("email");
        let name = text("name");
        let client_id = text("client_id").or_else(|| text("azp"));
        let groups = claims.remove(groups_claim).map(strings).unwrap_or_default();
        // RFC 8693 `scope` is space-separated; Azure AD and others send `scp`, sometimes
        // as a list.
        let scopes = claims
            .remove("scope")
            .or_else(|| claims.remove("scp"))
            .map(strings)
            .unwrap_or_default();
        Some(Self {
            issuer,
            subject,
            email,
            name,
            groups,
            client_id,
            scopes,
            extra: claims,
        })
    }
}

/// A claim holding a list, or one space-separated string, as a list of strings.
fn strings(value: Value) -> Vec<String> {
    match value {
        Value::String(text) => text.split_whitespace().map(str::to_owned).collect(),
        Value::Array(items) => items.iter().map(|v| text_of(v).into_owned()).collect(),
        other => vec![text_of(&other).into_owned()],
    }
}

fn one(value: Option<&String>) -> Vec<Cow<'_, str>> {
    value
        .map(|v| Cow::Borrowed(v.as_str()))
        .into_iter()
        .collect()
}

fn many(values: &[String]) -> Vec<Cow<'_, str>> {
    values.iter().map(|v| Cow::Borrowed(v.as_str())).collect()
}

/// Strings as they are; other JSON values in their JSON text (`42`, `true`).
fn text_of(value: &Value) -> Cow<'_, str> {
    match value {
        Value::String(text) => Cow::Borrowed(text),
        other => Cow::Owned(other.to_string()),
    }
}

impl Principal {
    /// A caller known only by its local process (what the agent has before OIDC).
    pub fn from_process(process: ProcessIdentity) -> Self {
        Self {
            process: Some(Arc::new(process)),
            token: None,
        }
    }

    /// The local user name (resolved from the uid; `None` if the lookup failed).
    pub fn user(&self) -> Option<&str> {
        self.process.as_ref()?.user.as_deref()
    }

    pub fn uid(&self) -> Option<u32> {
        self.process.as_ref().map(|p| p.uid)
    }

    pub fn gid(&self) -> Option<u32> {
        self.process.as_ref().map(|p| p.gid)
    }

    pub fn comm(&self) -> Option<&str> {
        self.process.as_ref().map(|p| p.comm.as_str())
    }

    /// A `Path`, not a `str`: an executable's path need not be UTF-8, and a lossy
    /// conversion would let a crafted name slip past an `exe` rule.
    pub fn exe(&self) -> Option<&Path> {
        self.process.as_ref()?.exe.as_deref()
    }

    /// The cgroup v2 path, e.g. `/system.slice/ci-runner.service`.
    pub fn cgroup(&self) -> Option<&str> {
        self.process.as_ref()?.cgroup.as_deref()
    }

    /// The systemd unit, e.g. `ci-runner.service` (see [`crate::process::systemd_unit`]).
    pub fn unit(&self) -> Option<&str> {
        self.process.as_ref()?.unit.as_deref()
    }

    /// The container id, when the process runs in a container.
    pub fn container(&self) -> Option<&str> {
        self.process.as_ref()?.container.as_deref()
    }

    /// The token's groups; empty without a token.
    pub fn groups(&self) -> &[String] {
        self.token.as_ref().map_or(&[], |t| t.groups.as_slice())
    }

    /// A token claim as text, for `claim = { name = "glob" }` conditions: every value for
    /// a list claim (`groups`, `scope`, an array in `extra`), one for a scalar, none when
    /// the claim or the token is absent. Standard claim names (`iss`, `sub`, `email`,
    /// `name`, `client_id`/`azp`, `groups`, `scope`) read the normalised fields; any other
    /// name reads `extra`.
    pub fn claim(&self, name: &str) -> Vec<Cow<'_, str>> {
        let Some(token) = self.token.as_ref() else {
            return Vec::new();
        };
        match name {
            "iss" | "issuer" => one(Some(&token.issuer)),
            "sub" | "subject" => one(Some(&token.subject)),
            "email" => one(token.email.as_ref()),
            "name" => one(token.name.as_ref()),
            "client_id" | "azp" => one(token.client_id.as_ref()),
            "groups" => many(&token.groups),
            "scope" | "scopes" | "scp" => many(&token.scopes),
            other => match token.extra.get(other) {
                Some(Value::Array(items)) => items.iter().map(text_of).collect(),
                Some(value) => vec![text_of(value)],
                None => Vec::new(),
            },
        }
    }
}

#[cfg(test)]
mod tests;
