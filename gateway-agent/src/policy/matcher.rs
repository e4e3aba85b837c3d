//! Compiled rules, and how one request is matched against one rule.
//!
//! Everything an operator can get wrong was rejected when the file was compiled
//! (`file.rs`), so matching cannot fail: it only answers yes or no. Every "unknown" — no
//! process identity, no user name, no token, no tool name, a JSON pointer that does not
//! resolve — answers no.

use std::{
    borrow::Cow,
    net::{IpAddr, SocketAddr},
    path::Path,
};

use globset::{GlobMatcher, GlobSet};
use regex::Regex;
use serde_json::Value;

use super::{Decision, MaskProfile, RequestFacts};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    Allow,
    Deny,
    Approve,
}

#[derive(Debug)]
pub(super) struct Rule {
    pub id: String,
    /// The file it came from, for duplicate-id errors.
    pub origin: String,
    pub action: Action,
    /// Empty for allow rules.
    pub reason: String,
    pub mask: MaskProfile,
    pub conditions: Conditions,
}

/// `None` (or an empty list for the keyed ones) means the condition is absent and
/// matches anything. Each list is compiled into one `GlobSet`: one automaton per
/// condition, linear in the length of the value whatever the patterns.
#[derive(Debug, Default)]
pub(super) struct Conditions {
    pub server: Option<Vec<ServerPattern>>,
    pub method: Option<GlobSet>,
    pub tool: Option<GlobSet>,
    pub user: Option<GlobSet>,
    pub uid: Option<Vec<u32>>,
    pub gid: Option<Vec<u32>>,
    pub comm: Option<GlobSet>,
    pub exe: Option<GlobSet>,
    pub cgroup: Option<GlobSet>,
    pub unit: Option<GlobSet>,
    pub container: Option<GlobSet>,
    pub group: Option<GlobSet>,
    pub claim: Vec<(String, GlobSet)>,
    pub argument: Vec<ArgumentCondition>,
}

/// One `server = [...]` entry. Addresses are compared as addresses, not as text, so
/// `127.0.0.1:8000` also matches a client that dialled `[::ffff:127.0.0.1]:8000` (the
/// same socket; matching text would let a v4-mapped connect walk past a deny rule).
#[derive(Debug)]
pub(super) enum ServerPattern {
    /// `IP:PORT`
    Addr(SocketAddr),
    /// `IP:*`
    Ip(IpAddr),
    /// `*:PORT`
    Port(u16),
    /// Anything without a `:`: a glob on the configured server name.
    Name(GlobMatcher),
}

#[derive(Debug)]
pub(super) struct ArgumentCondition {
    /// RFC 6901, into `params.arguments`.
    pub pointer: String,
    pub regex: Regex,
}

impl Rule {
    pub fn decision(&self) -> Decision {
        match self.action {
            Action::Allow => Decision::Allow {
                rule: Some(self.id.clone()),
                mask: self.mask,
            },
            Action::Deny => Decision::Deny {
                rule: self.id.clone(),
                reason: self.reason.clone(),
            },
            Action::Approve => Decision::Approve {
                rule: self.id.clone(),
                reason: self.reason.clone(),
            },
        }
    }
}

impl Conditions {
    pub fn matches(&self, request: &RequestFacts<'_>) -> bool {
        self.matches_without_arguments(request) && self.arguments_match(request.arguments)
    }

    pub fn has_argument_conditions(&self) -> bool {
        !self.argument.is_empty()
    }

    /// Everything but the argument conditions (which `tool_hidden` cannot decide).
    pub fn matches_without_arguments(&self, request: &RequestFacts<'_>) -> bool {
        let p = request.principal;
        self.server_matches(request.server.addr, request.server.name)
            && glob(&self.method, Some(request.method))
            && glob(&self.tool, request.tool)
            && glob(&self.user, p.user())
            && number(&self.uid, p.uid())
            && number(&self.gid, p.gid())
            && glob(&self.comm, p.comm())
            && glob::<&Path>(&self.exe, p.exe())
            && glob(&self.cgroup, p.cgroup())
            && glob(&self.unit, p.unit())
            && glob(&self.container, p.container())
            && self
                .group
                .as_ref()
                .is_none_or(|set| p.groups().iter().any(|g| set.is_match(g)))
            && self.claim.iter().all(|(name, set)| {
                p.claim(name)
                    .iter()
                    .any(|value| set.is_match(value.as_ref()))
            })
    }

    fn server_matches(&self, addr: SocketAddr, name: Option<&str>) -> bool {
        let Some(patterns) = &self.server else {
            return true;
        };
        let addr = canonical(addr);
        patterns.iter().any(|pattern| match pattern {
            ServerPattern::Addr(want) => *want == addr,
            ServerPattern::Ip(ip) => *ip == addr.ip(),
            ServerPattern::Port(port) => *port == addr.port(),
            ServerPattern::Name(glob) => name.is_some_and(|name| glob.is_match(name)),
        })
    }

    /// All argument conditions hold. Without arguments (not a `tools/call`, or a call
    /// with none) or where the pointer does not resolve, a condition does not hold.
    fn arguments_match(&self, arguments: Option<&Value>) -> bool {
        self.argument.iter().all(|condition| {
            arguments
                .and_then(|args| args.pointer(&condition.pointer))
                .is_some_and(|value| condition.regex.is_match(&value_text(value)))
        })
    }
}

/// v4-mapped IPv6 → IPv4, so one server has one address whichever way it was dialled.
pub(super) fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// Absent condition: matches. Absent value: does not.
fn glob<V: AsRef<Path>>(set: &Option<GlobSet>, value: Option<V>) -> bool {
    set.as_ref()
        .is_none_or(|set| value.is_some_and(|v| set.is_match(v)))
}

fn number(list: &Option<Vec<u32>>, value: Option<u32>) -> bool {
    list.as_ref()
        .is_none_or(|list| value.is_some_and(|v| list.contains(&v)))
}

/// What an argument regex sees: a string as it is (no quotes), anything else as its
/// compact JSON text (`42`, `true`, `null`, `["a","b"]`).
fn value_text(value: &Value) -> Cow<'_, str> {
    match value {
        Value::String(text) => Cow::Borrowed(text),
        other => Cow::Owned(other.to_string()),
    }
}
