//! The on-disk format of `policies/*.toml`, and its validation into matchable rules.
//!
//! Deserialisation only checks shape (`deny_unknown_fields` everywhere, so a misspelt key
//! is an error, not a silently absent condition). Values that need context to judge —
//! actions, globs, regexes, JSON pointers, which keys go with which action — are strings
//! here and checked in [`RuleSpec::compile`], so each error can name the file, the rule and
//! the exact key (`match.tool[1]`), not just a line number.

use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr},
};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde::Deserialize;

use super::{
    Decision, MaskProfile, PolicyError,
    matcher::{Action, ArgumentCondition, Conditions, Rule, ServerPattern, canonical},
};

/// The pseudo rule id of the `[defaults]` decision. Brackets cannot occur in a rule id, so
/// it never collides with one.
pub(super) const DEFAULTS: &str = "[defaults]";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PolicyFile {
    pub defaults: Option<DefaultsSpec>,
    #[serde(default, rename = "rule")]
    pub rules: Vec<RuleSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DefaultsSpec {
    action: String,
    reason: Option<String>,
    mask: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RuleSpec {
    id: String,
    /// For the operator reading the file; checked to be text, otherwise unused.
    #[allow(dead_code)]
    description: Option<String>,
    action: String,
    reason: Option<String>,
    mask: Option<String>,
    #[serde(rename = "match", default)]
    conditions: MatchSpec,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct MatchSpec {
    server: Option<Vec<String>>,
    method: Option<Vec<String>>,
    tool: Option<Vec<String>>,
    user: Option<Vec<String>>,
    uid: Option<Vec<u32>>,
    gid: Option<Vec<u32>>,
    comm: Option<Vec<String>>,
    exe: Option<Vec<String>>,
    cgroup: Option<Vec<String>>,
    unit: Option<Vec<String>>,
    container: Option<Vec<String>>,
    group: Option<Vec<String>>,
    claim: Option<BTreeMap<String, OneOrMany>>,
    argument: Option<Vec<ArgumentSpec>>,
}

/// `claim = { email = "*@example.com" }` or `{ email = ["*@a.com", "*@b.com"] }`.
#[derive(Deserialize)]
#[serde(untagged, expecting = "a glob or a list of globs")]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ArgumentSpec {
    pointer: String,
    regex: String,
}

/// Where an error is: file and rule. Keys are added per error.
struct At<'a> {
    origin: &'a str,
    rule: String,
}

impl At<'_> {
    fn invalid(&self, key: impl Into<String>, problem: impl Into<String>) -> PolicyError {
        PolicyError::Invalid {
            origin: self.origin.to_owned(),
            rule: self.rule.clone(),
            key: key.into(),
            problem: problem.into(),
        }
    }
}

impl DefaultsSpec {
    pub(super) fn compile(self, origin: &str) -> Result<Decision, PolicyError> {
        let at = At {
            origin,
            rule: DEFAULTS.to_owned(),
        };
        let action = parse_action(&at, &self.action)?;
        let reason = parse_reason(&at, action, self.reason)?;
        let mask = parse_mask(&at, action, self.mask.as_deref())?;
        Ok(match action {
            Action::Allow => Decision::Allow { rule: None, mask },
            Action::Deny => Decision::Deny {
                rule: DEFAULTS.to_owned(),
                reason,
            },
            Action::Approve => Decision::Approve {
                rule: DEFAULTS.to_owned(),
                reason,
            },
        })
    }
}

impl RuleSpec {
    /// `index` is the rule's 0-based position in its file, named when the id is unusable.
    pub(super) fn compile(self, origin: &str, index: usize) -> Result<Rule, PolicyError> {
        let id_ok = !self.id.is_empty()
            && self
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        let at = At {
            origin,
            rule: if id_ok {
                format!("rule {:?}", self.id)
            } else {
                format!("rule #{}", index + 1)
            },
        };
        if !id_ok {
            // Ids go into logs, JSON-RPC errors and audit records: keep them plain.
            return Err(at.invalid(
                "id",
                format!(
                    "{:?}: a rule id is required and may only contain ASCII letters, digits, '-', '_' and '.'",
                    self.id
                ),
            ));
        }
        let action = parse_action(&at, &self.action)?;
        let reason = parse_reason(&at, action, self.reason)?;
        let mask = parse_mask(&at, action, self.mask.as_deref())?;
        let conditions = self.conditions.compile(&at)?;
        Ok(Rule {
            id: self.id,
            origin: origin.to_owned(),
            action,
            reason,
            mask,
            conditions,
        })
    }
}

impl MatchSpec {
    fn compile(self, at: &At<'_>) -> Result<Conditions, PolicyError> {
        let claim = match self.claim {
            None => Vec::new(),
            Some(claims) if claims.is_empty() => return Err(empty(at, "match.claim")),
            Some(claims) => claims
                .into_iter()
                .map(|(name, patterns)| {
                    let key = format!("match.claim.{name}");
                    if name.is_empty() {
                        return Err(at.invalid(key, "the claim name is empty"));
                    }
                    let patterns = match patterns {
                        OneOrMany::One(pattern) => vec![pattern],
                        OneOrMany::Many(patterns) => patterns,
                    };
                    Ok((name, glob_set(at, &key, patterns)?))
                })
                .collect::<Result<_, _>>()?,
        };
        Ok(Conditions {
            server: self.server.map(|list| servers(at, list)).transpose()?,
            method: globs(at, "match.method", self.method)?,
            tool: globs(at, "match.tool", self.tool)?,
            user: globs(at, "match.user", self.user)?,
            uid: numbers(at, "match.uid", self.uid)?,
            gid: numbers(at, "match.gid", self.gid)?,
            comm: globs(at, "match.comm", self.comm)?,
            exe: globs(at, "match.exe", self.exe)?,
            cgroup: globs(at, "match.cgroup", self.cgroup)?,
            unit: globs(at, "match.unit", self.unit)?,
            container: globs(at, "match.container", self.container)?,
            group: globs(at, "match.group", self.group)?,
            claim,
            argument: match self.argument {
                None => Vec::new(),
                Some(list) if list.is_empty() => return Err(empty(at, "match.argument")),
                Some(list) => list
                    .into_iter()
                    .enumerate()
                    .map(|(i, spec)| spec.compile(at, i))
                    .collect::<Result<_, _>>()?,
            },
        })
    }
}

impl ArgumentSpec {
    fn compile(self, at: &At<'_>, index: usize) -> Result<ArgumentCondition, PolicyError> {
        let key = format!("match.argument[{index}]");
        check_pointer(&self.pointer).map_err(|problem| {
            at.invalid(
                format!("{key}.pointer"),
                format!(
                    "{:?} is not a JSON pointer (RFC 6901): {problem}",
                    self.pointer
                ),
            )
        })?;
        let regex = regex::Regex::new(&self.regex).map_err(|err| {
            at.invalid(
                format!("{key}.regex"),
                format!("invalid regex {:?}: {err}", self.regex),
            )
        })?;
        Ok(ArgumentCondition {
            pointer: self.pointer,
            regex,
        })
    }
}

/// An empty list would match nothing, which is never what the author meant (removing the
/// key matches anything); refusing it catches a half-edited rule.
fn empty(at: &At<'_>, key: &str) -> PolicyError {
    at.invalid(
        key,
        "is empty; list at least one entry, or remove the key to match anything",
    )
}

fn parse_action(at: &At<'_>, action: &str) -> Result<Action, PolicyError> {
    match action {
        "allow" => Ok(Action::Allow),
        "deny" => Ok(Action::Deny),
        "approve" => Ok(Action::Approve),
        other => Err(at.invalid(
            "action",
            format!("unknown action {other:?}; expected \"allow\", \"deny\" or \"approve\""),
        )),
    }
}

/// The caller is told why it was refused, so deny and approve must say; an allow has no
/// one to tell (say why in `description`), so a reason there is a misunderstanding.
fn parse_reason(
    at: &At<'_>,
    action: Action,
    reason: Option<String>,
) -> Result<String, PolicyError> {
    match (action, reason) {
        (Action::Allow, None) => Ok(String::new()),
        (Action::Allow, Some(_)) => Err(at.invalid(
            "reason",
            "is only returned for deny and approve; document an allow in `description`",
        )),
        (_, Some(reason)) if !reason.trim().is_empty() => Ok(reason),
        (_, _) => Err(at.invalid(
            "reason",
            "is required for deny and approve: the caller is told why",
        )),
    }
}

/// Masking applies to responses, which only allowed requests get. (An approved request
/// is masked with the default profile once approved.)
fn parse_mask(at: &At<'_>, action: Action, mask: Option<&str>) -> Result<MaskProfile, PolicyError> {
    let profile = match mask {
        None | Some("default") => MaskProfile::Default,
        Some("none") => MaskProfile::None,
        Some(other) => {
            return Err(at.invalid(
                "mask",
                format!("unknown masking profile {other:?}; expected \"default\" or \"none\""),
            ));
        }
    };
    if mask.is_some() && action != Action::Allow {
        return Err(at.invalid("mask", "only applies to allow"));
    }
    Ok(profile)
}

fn numbers(
    at: &At<'_>,
    key: &str,
    list: Option<Vec<u32>>,
) -> Result<Option<Vec<u32>>, PolicyError> {
    match list {
        Some(list) if list.is_empty() => Err(empty(at, key)),
        list => Ok(list),
    }
}

/// Globs via `globset` (ripgrep's matcher) rather than a hand-written `*`/`?` matcher:
/// it reports malformed patterns (so `check` can refuse `[` instead of silently matching
/// it literally), offers `[a-z]` classes and `{a,b}` alternation, and compiles a whole
/// list into one automaton that runs in linear time on hostile input. `*` crosses `/` here
/// (`literal_separator` off): `tools/*` and `/usr/bin/*` mean what they read as.
/// Case-sensitive: MCP tool and method names are.
fn globs(
    at: &At<'_>,
    key: &str,
    list: Option<Vec<String>>,
) -> Result<Option<GlobSet>, PolicyError> {
    list.map(|list| glob_set(at, key, list)).transpose()
}

fn glob_set(at: &At<'_>, key: &str, list: Vec<String>) -> Result<GlobSet, PolicyError> {
    if list.is_empty() {
        return Err(empty(at, key));
    }
    let mut set = GlobSetBuilder::new();
    for (i, pattern) in list.iter().enumerate() {
        set.add(glob(pattern).map_err(|problem| at.invalid(format!("{key}[{i}]"), problem))?);
    }
    set.build()
        .map_err(|err| at.invalid(key, format!("cannot compile the globs: {err}")))
}

fn glob(pattern: &str) -> Result<globset::Glob, String> {
    if pattern.is_empty() {
        return Err("empty pattern (use \"*\" to match anything)".into());
    }
    GlobBuilder::new(pattern)
        .literal_separator(false)
        .build()
        .map_err(|err| format!("invalid glob {pattern:?}: {}", err.kind()))
}

/// `IP:PORT`, `IP:*` or `*:PORT` (IPv6 in brackets) for the original destination; anything
/// without a `:` is a glob on the configured server name. A `:` in anything else is an
/// error rather than a name that can never match, e.g. the address glob `10.0.0.*:80`.
fn servers(at: &At<'_>, list: Vec<String>) -> Result<Vec<ServerPattern>, PolicyError> {
    if list.is_empty() {
        return Err(empty(at, "match.server"));
    }
    list.iter()
        .enumerate()
        .map(|(i, entry)| {
            server(entry).map_err(|problem| at.invalid(format!("match.server[{i}]"), problem))
        })
        .collect()
}

fn server(entry: &str) -> Result<ServerPattern, String> {
    if let Ok(addr) = entry.parse::<SocketAddr>() {
        return Ok(ServerPattern::Addr(canonical(addr)));
    }
    if let Some(host) = entry.strip_suffix(":*") {
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(ServerPattern::Ip(ip.to_canonical()));
        }
    }
    if let Some(port) = entry.strip_prefix("*:")
        && let Ok(port) = port.parse::<u16>()
    {
        return Ok(ServerPattern::Port(port));
    }
    if entry.contains(':') {
        return Err(format!(
            "{entry:?} is neither an address (IP:PORT, IP:*, *:PORT; IPv6 in brackets) nor a server name (no ':')"
        ));
    }
    Ok(ServerPattern::Name(glob(entry)?.compile_matcher()))
}

/// RFC 6901: empty (the whole value) or `/`-prefixed, with `~` only in `~0` and `~1`.
fn check_pointer(pointer: &str) -> Result<(), &'static str> {
    if !(pointer.is_empty() || pointer.starts_with('/')) {
        return Err("it must be empty or start with '/'");
    }
    let mut chars = pointer.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return Err("'~' must be followed by 0 or 1 (~0 is '~', ~1 is '/')");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
