//! Policy: which MCP requests a principal may make, read from `policies/*.toml`.
//!
//! Evaluation is **first match wins**, like a firewall: files in lexical file-name order
//! (`10-base.toml` before `20-team.toml`), rules in file order; the first rule whose
//! conditions all hold decides. When none matches, the `[defaults]` action applies (set in
//! at most one file; `allow` if no file sets it). Chosen over most-specific-wins because
//! an operator can read the outcome off the files top to bottom.
//!
//! Conditions within a rule are ANDed; the entries of one condition are ORed; an absent
//! condition matches anything. A condition on something the request or principal does not
//! have (a tool on `tools/list`, a uid when the process is unknown) does not match, so a
//! rule that allows by identity never allows an unidentified caller.

mod file;
mod glob;

use std::{net::SocketAddr, path::Path};

use serde_json::Value;

use self::glob::Glob;
use crate::principal::Principal;

/// The shipped default policy, used when the config names no policy directory.
pub const DEFAULT_POLICY: &str = include_str!("../../../policies/default.toml");

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("policy directory {dir}: {source}")]
    Dir { dir: String, source: std::io::Error },
    #[error("policy file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{origin}: {source}")]
    Parse {
        origin: String,
        source: Box<toml::de::Error>,
    },
    #[error("{origin}: {rule}: {key}: {problem}")]
    Invalid {
        origin: String,
        rule: String,
        key: String,
        problem: String,
    },
    #[error("{second}: rule id {id:?} is already used in {first}")]
    DuplicateId {
        id: String,
        first: String,
        second: String,
    },
    #[error("{second}: [defaults] is already set in {first}; set it in one file only")]
    Defaults { first: String, second: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Allow,
    Deny,
    Approve,
}

/// How responses to an allowed request are masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaskProfile {
    Default,
    /// No masking: for servers an operator trusts to return nothing secret.
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// `rule` is `None` when the default action allowed it.
    Allow {
        rule: Option<String>,
        mask: MaskProfile,
    },
    Deny {
        rule: String,
        reason: String,
    },
    Approve {
        rule: String,
        reason: String,
    },
}

/// The MCP server a request goes to.
pub struct ServerRef<'a> {
    pub addr: SocketAddr,
    pub name: Option<&'a str>,
}

pub struct RequestFacts<'a> {
    pub server: ServerRef<'a>,
    pub method: &'a str,
    pub tool: Option<&'a str>,
    pub arguments: Option<&'a Value>,
    pub principal: &'a Principal,
}

struct Rule {
    id: String,
    #[allow(dead_code)] // kept for `check` output and audit later
    origin: String,
    action: Action,
    reason: String,
    mask: MaskProfile,
    conditions: Conditions,
}

struct Conditions {
    server: Option<Vec<Glob>>,
    method: Option<Vec<Glob>>,
    tool: Option<Vec<Glob>>,
    user: Option<Vec<Glob>>,
    uid: Option<Vec<u32>>,
    comm: Option<Vec<Glob>>,
    exe: Option<Vec<Glob>>,
    cgroup: Option<Vec<Glob>>,
    group: Option<Vec<Glob>>,
    claim: Vec<(String, Glob)>,
    arguments: Vec<(String, regex::Regex)>,
}

pub struct PolicySet {
    rules: Vec<Rule>,
    default: Decision,
}

impl PolicySet {
    /// All `*.toml` files in `dir`, in file-name order.
    pub fn load_dir(dir: &Path) -> Result<Self, PolicyError> {
        let dir_err = |source| PolicyError::Dir {
            dir: dir.display().to_string(),
            source,
        };
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .map_err(dir_err)?
            .map(|entry| entry.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(dir_err)?;
        paths.retain(|p| p.extension().is_some_and(|ext| ext == "toml"));
        paths.sort();
        let mut files = Vec::new();
        for path in paths {
            let text = std::fs::read_to_string(&path).map_err(|source| PolicyError::Read {
                path: path.display().to_string(),
                source,
            })?;
            files.push((path.display().to_string(), text));
        }
        Self::from_files(
            files
                .iter()
                .map(|(origin, text)| (origin.as_str(), text.as_str())),
        )
    }

    /// One file's worth of policy (the embedded default, tests).
    pub fn parse(text: &str, origin: &str) -> Result<Self, PolicyError> {
        Self::from_files([(origin, text)])
    }

    fn from_files<'a>(
        files: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, PolicyError> {
        let mut rules: Vec<Rule> = Vec::new();
        let mut default: Option<(String, Decision)> = None;
        for (origin, text) in files {
            let parsed: file::PolicyFile =
                toml::from_str(text).map_err(|source| PolicyError::Parse {
                    origin: origin.to_owned(),
                    source: Box::new(source),
                })?;
            if let Some(defaults) = parsed.defaults {
                if let Some((first, _)) = &default {
                    return Err(PolicyError::Defaults {
                        first: first.clone(),
                        second: origin.to_owned(),
                    });
                }
                let invalid = |key: &str, problem: String| PolicyError::Invalid {
                    origin: origin.to_owned(),
                    rule: "[defaults]".into(),
                    key: key.to_owned(),
                    problem,
                };
                let mask =
                    file::parse_mask(defaults.mask.as_deref()).map_err(|p| invalid("mask", p))?;
                let decision = match defaults.action {
                    file::ActionName::Allow => Decision::Allow { rule: None, mask },
                    file::ActionName::Deny => Decision::Deny {
                        rule: "default".into(),
                        reason: defaults
                            .reason
                            .unwrap_or_else(|| "no policy rule allows this request".into()),
                    },
                    file::ActionName::Approve => {
                        return Err(invalid(
                            "action",
                            "the default action must be allow or deny".into(),
                        ));
                    }
                };
                default = Some((origin.to_owned(), decision));
            }
            for (index, spec) in parsed.rules.into_iter().enumerate() {
                let rule = spec.compile(origin, index)?;
                if let Some(existing) = rules.iter().find(|r| r.id == rule.id) {
                    return Err(PolicyError::DuplicateId {
                        id: rule.id,
                        first: existing.origin.clone(),
                        second: origin.to_owned(),
                    });
                }
                rules.push(rule);
            }
        }
        Ok(Self {
            rules,
            default: default.map_or(
                Decision::Allow {
                    rule: None,
                    mask: MaskProfile::Default,
                },
                |(_, d)| d,
            ),
        })
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn evaluate(&self, request: &RequestFacts<'_>) -> Decision {
        self.rules
            .iter()
            .find(|rule| rule.conditions.matches(request, true))
            .map_or_else(|| self.default.clone(), Rule::decision)
    }

    /// Would a `tools/call` of `tool` be denied whatever its arguments? Rules with
    /// argument conditions cannot be decided without arguments and are skipped; a tool
    /// that needs approval stays visible (the call itself will say so).
    pub fn tool_hidden(&self, server: &ServerRef<'_>, tool: &str, principal: &Principal) -> bool {
        let request = RequestFacts {
            server: ServerRef {
                addr: server.addr,
                name: server.name,
            },
            method: "tools/call",
            tool: Some(tool),
            arguments: None,
            principal,
        };
        let decision = self
            .rules
            .iter()
            .find(|rule| {
                rule.conditions.arguments.is_empty() && rule.conditions.matches(&request, false)
            })
            .map_or_else(|| self.default.clone(), Rule::decision);
        matches!(decision, Decision::Deny { .. })
    }
}

impl Rule {
    fn decision(&self) -> Decision {
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

/// Does `value` satisfy an optional list of globs? Absent list: yes. Absent value: no.
fn any_glob(globs: &Option<Vec<Glob>>, value: Option<&str>) -> bool {
    match globs {
        None => true,
        Some(globs) => value.is_some_and(|v| globs.iter().any(|g| g.matches(v))),
    }
}

impl Conditions {
    fn matches(&self, request: &RequestFacts<'_>, check_arguments: bool) -> bool {
        let p = request.principal;
        let server_ok = match &self.server {
            None => true,
            Some(globs) => {
                let addr = request.server.addr.to_string();
                globs
                    .iter()
                    .any(|g| g.matches(&addr) || request.server.name.is_some_and(|n| g.matches(n)))
            }
        };
        server_ok
            && any_glob(&self.method, Some(request.method))
            && any_glob(&self.tool, request.tool)
            && any_glob(&self.user, p.user())
            && self
                .uid
                .as_ref()
                .is_none_or(|uids| p.uid().is_some_and(|uid| uids.contains(&uid)))
            && any_glob(&self.comm, p.comm())
            && any_glob(&self.exe, p.exe().as_deref())
            && any_glob(&self.cgroup, p.cgroup())
            && self.group.as_ref().is_none_or(|globs| {
                p.groups()
                    .iter()
                    .any(|group| globs.iter().any(|g| g.matches(group)))
            })
            && self
                .claim
                .iter()
                .all(|(name, glob)| p.claim(name).is_some_and(|v| glob.matches(&v)))
            && (!check_arguments || self.arguments_match(request.arguments))
    }

    fn arguments_match(&self, arguments: Option<&Value>) -> bool {
        self.arguments.iter().all(|(pointer, regex)| {
            let Some(value) = arguments.and_then(|args| args.pointer(pointer)) else {
                return false;
            };
            match value {
                Value::String(text) => regex.is_match(text),
                other => regex.is_match(&other.to_string()),
            }
        })
    }
}

#[cfg(test)]
mod tests;
