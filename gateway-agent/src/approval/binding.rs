//! Exact-call binding: what makes a later request "the call that was approved".
//!
//! An approval names one principal, one server, one method and tool, and one set of
//! arguments by digest. A retry matches when all of these are equal; the JSON-RPC id is
//! not part of it (SDKs and agents retry with a new id), and neither is the argument
//! members' order or layout: the digest is over a canonical form (RFC 8785 style: object
//! members sorted by key, no whitespace, strings and numbers as serde_json writes them).
//!
//! The principal key is the token's issuer and subject when the caller presented one, and
//! otherwise the kernel's uid plus the executable (comm when /proc could not tell): a
//! different user, or another program of the same user, does not ride on the approval.

use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::principal::Principal;

/// What a later request must equal to use an approval.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CallKey {
    pub principal: String,
    /// The original destination, `ip:port`.
    pub server_addr: String,
    pub method: String,
    pub tool: Option<String>,
    /// Lower-case hex SHA-256 of the canonical unmasked arguments (`params` for methods
    /// other than `tools/call`).
    pub digest: String,
    /// The policy rule that asked for approval (at the response stage: the rule that
    /// allowed the request, or `default`).
    pub rule: String,
    /// What is held: the request (an `approve` rule) or its response (too many secrets).
    /// An approval of one never releases the other.
    #[serde(default, skip_serializing_if = "Stage::is_request")]
    pub stage: Stage,
}

/// Which half of an exchange an approval holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    #[default]
    Request,
    Response,
}

impl Stage {
    pub fn is_request(&self) -> bool {
        *self == Stage::Request
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Request => "request",
            Stage::Response => "response",
        }
    }
}

/// The principal part of a [`CallKey`]; `None` when the caller is not identified at all
/// (no token, no process), which can never be bound to an approval.
pub fn principal_key(principal: &Principal) -> Option<String> {
    if let Some(token) = &principal.token {
        return Some(format!("sub:{} {}", token.issuer, token.subject));
    }
    let process = principal.process.as_ref()?;
    Some(match &process.exe {
        Some(exe) => format!("uid:{} exe:{}", process.uid, exe.display()),
        None => format!("uid:{} comm:{}", process.uid, process.comm),
    })
}

/// The canonical text of `value`: object members sorted by key (UTF-16 code unit order,
/// as RFC 8785 says), no insignificant whitespace.
pub fn canonical(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push('{');
            for (i, (key, member)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(member, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// Hex SHA-256 of the canonical form of `value`.
pub fn digest(value: &Value) -> String {
    let hash = Sha256::digest(canonical(value).as_bytes());
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// What in a request the digest covers: a tool call's `arguments`, otherwise `params`
/// (absent counts as `null`).
pub fn bound_arguments(message: &Value) -> &Value {
    let part = if crate::mcp::jsonrpc::method(message) == Some("tools/call") {
        crate::mcp::jsonrpc::tool_arguments(message)
    } else {
        message.get("params")
    };
    part.unwrap_or(&Value::Null)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{principal::TokenClaims, process::ProcessIdentity};

    #[test]
    fn canonical_sorts_members_and_drops_layout() {
        let a: Value = serde_json::from_str(r#"{ "b": [1, {"y":2,"x":1}], "a": "z" }"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":"z","b":[1,{"x":1,"y":2}]}"#).unwrap();
        assert_eq!(canonical(&a), r#"{"a":"z","b":[1,{"x":1,"y":2}]}"#);
        assert_eq!(digest(&a), digest(&b));
    }

    #[test]
    fn any_changed_value_changes_the_digest() {
        let base = json!({"path": "/etc/passwd", "lines": 10});
        assert_ne!(
            digest(&base),
            digest(&json!({"path": "/etc/shadow", "lines": 10}))
        );
        assert_ne!(
            digest(&base),
            digest(&json!({"path": "/etc/passwd", "lines": 11}))
        );
        assert_ne!(
            digest(&base),
            digest(&json!({"path": "/etc/passwd", "lines": "10"}))
        );
        assert_ne!(digest(&base), digest(&json!({"path": "/etc/passwd"})));
    }

    #[test]
    fn array_order_matters() {
        assert_ne!(digest(&json!(["a", "b"])), digest(&json!(["b", "a"])));
    }

    #[test]
    fn principal_is_token_subject_or_uid_and_executable() {
        let process = ProcessIdentity {
            pid: 10,
            tid: 10,
            uid: 1000,
            gid: 1000,
            comm: "python3".into(),
            cgroup_id: 1,
            user: Some("alice".into()),
            exe: Some("/usr/bin/python3".into()),
            cgroup: None,
            unit: None,
            container: None,
        };
        let local = Principal::from_process(process.clone());
        assert_eq!(
            principal_key(&local).unwrap(),
            "uid:1000 exe:/usr/bin/python3"
        );
        let mut other_pid = process.clone();
        other_pid.pid = 11;
        assert_eq!(
            principal_key(&local),
            principal_key(&Principal::from_process(other_pid))
        );
        let mut other_exe = process.clone();
        other_exe.exe = Some("/usr/bin/node".into());
        assert_ne!(
            principal_key(&local),
            principal_key(&Principal::from_process(other_exe))
        );
        let token = Principal {
            process: Some(std::sync::Arc::new(process)),
            token: Some(TokenClaims {
                issuer: "https://idp".into(),
                subject: "alice".into(),
                ..TokenClaims::default()
            }),
        };
        assert_eq!(principal_key(&token).unwrap(), "sub:https://idp alice");
        assert_eq!(principal_key(&Principal::default()), None);
    }

    #[test]
    fn tool_calls_bind_their_arguments_other_methods_their_params() {
        let call = json!({"jsonrpc":"2.0","id":1,"method":"tools/call",
            "params":{"name":"x","arguments":{"a":1},"_meta":{"progressToken":7}}});
        assert_eq!(bound_arguments(&call), &json!({"a":1}));
        let read =
            json!({"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///x"}});
        assert_eq!(bound_arguments(&read), &json!({"uri":"file:///x"}));
    }
}
