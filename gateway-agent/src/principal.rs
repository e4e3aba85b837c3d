//! Who is asking: the one identity type policy, approval and audit all use.
//!
//! Two halves with different provenance. `process` comes from the kernel (captured at
//! connect() by the eBPF programs) and cannot be forged by the caller. `token` will come
//! from a validated OIDC bearer token (a later stage); until then it is `None`.

use serde::Serialize;

use crate::process::ProcessIdentity;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Principal {
    pub process: Option<ProcessIdentity>,
    pub token: Option<TokenClaims>,
}

/// The claims policy can match on, from a validated token.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TokenClaims {
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub groups: Vec<String>,
    pub client_id: Option<String>,
    pub scopes: Vec<String>,
    /// Every other claim, for `claim = { … }` policy conditions.
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Principal {
    pub fn user(&self) -> Option<&str> {
        self.process.as_ref()?.user.as_deref()
    }

    pub fn uid(&self) -> Option<u32> {
        self.process.as_ref().map(|p| p.uid)
    }

    pub fn comm(&self) -> Option<&str> {
        self.process.as_ref().map(|p| p.comm.as_str())
    }

    pub fn exe(&self) -> Option<String> {
        self.process
            .as_ref()?
            .exe
            .as_ref()
            .map(|exe| exe.display().to_string())
    }

    pub fn cgroup(&self) -> Option<&str> {
        self.process.as_ref()?.cgroup.as_deref()
    }

    pub fn groups(&self) -> &[String] {
        self.token.as_ref().map_or(&[], |t| t.groups.as_slice())
    }

    /// A claim as text: the named fields first, then `extra` (strings as they are, other
    /// JSON values in their JSON form).
    pub fn claim(&self, name: &str) -> Option<String> {
        let token = self.token.as_ref()?;
        match name {
            "iss" | "issuer" => Some(token.issuer.clone()),
            "sub" | "subject" => Some(token.subject.clone()),
            "email" => token.email.clone(),
            "name" => token.name.clone(),
            "client_id" | "azp" => token.client_id.clone(),
            other => token.extra.get(other).map(|value| match value {
                serde_json::Value::String(text) => text.clone(),
                value => value.to_string(),
            }),
        }
    }
}
